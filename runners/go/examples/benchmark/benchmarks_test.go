package main

import (
	"math"
	"testing"
)

// Known minima: Branin's three minimizers share the value 0.397887; Hartmann6
// has -3.32237 at x*; Currin at (0, 1) is 3 (1 - e^-1/2).
func TestBenchmarksAtKnownPoints(t *testing.T) {
	toUnit := func(x1, x2 float64) []float64 { return []float64{(x1 + 5) / 15, x2 / 15} }
	cases := []struct {
		name string
		got  float64
		want float64
	}{
		{"branin at (-pi, 12.275)", branin(toUnit(-math.Pi, 12.275)), 0.397887},
		{"branin at (pi, 2.275)", branin(toUnit(math.Pi, 2.275)), 0.397887},
		{"branin at (9.42478, 2.475)", branin(toUnit(9.42478, 2.475)), 0.397887},
		{"hartmann6 at x*", hartmann6([]float64{0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573}), -3.32237},
		{"currin at (0, 1)", currin([]float64{0, 1}), 3 * (1 - math.Exp(-0.5))},
		{"currin at x2 = 0", currin([]float64{0.5, 0}), (2300*0.125 + 1900*0.25 + 2092*0.5 + 60) / (100*0.125 + 500*0.25 + 4*0.5 + 20)},
	}
	for _, c := range cases {
		if math.Abs(c.got-c.want) > 1e-5 {
			t.Errorf("%s = %.6f, want %.6f", c.name, c.got, c.want)
		}
	}
}

func TestLearningCurveApproachesTheFinalValue(t *testing.T) {
	x := []float64{0.3, 0.6}
	final := branin(x)
	previous := math.Inf(1)
	for step := range steps {
		value := learningCurve("branin", x, step)
		if !(value > final && value < previous) {
			t.Fatalf("step %d: %v is not between the final %v and step %d's %v", step, value, final, step-1, previous)
		}
		previous = value
	}
}
