package main

import "math"

// benchmark is a test function of dims parameters x1..xd in [0, 1].
type benchmark struct {
	dims int
	eval func(x []float64) float64
}

// benchmarks maps a metric name to the function that computes it.
var benchmarks = map[string]benchmark{
	"branin":    {2, branin},
	"currin":    {2, currin},
	"hartmann6": {6, hartmann6},
}

// branin is Branin on [0, 1]^2, rescaled to x1 in [-5, 10], x2 in [0, 15] as
// in BoTorch's Branin-Currin problem; its minimum is 0.397887.
func branin(x []float64) float64 {
	x1, x2 := 15*x[0]-5, 15*x[1]
	b, c, t := 5.1/(4*math.Pi*math.Pi), 5/math.Pi, 1/(8*math.Pi)
	return math.Pow(x2-b*x1*x1+c*x1-6, 2) + 10*(1-t)*math.Cos(x1) + 10
}

// currin is Currin's exponential function on [0, 1]^2 (Currin et al. 1991).
func currin(x []float64) float64 {
	x1, x2 := x[0], x[1]
	// At x2 = 0 the exponent is -Inf, so the factor is exactly 1.
	factor := 1.0
	if x2 != 0 {
		factor = 1 - math.Exp(-1/(2*x2))
	}
	numerator := 2300*x1*x1*x1 + 1900*x1*x1 + 2092*x1 + 60
	denominator := 100*x1*x1*x1 + 500*x1*x1 + 4*x1 + 20
	return factor * numerator / denominator
}

var (
	hartmannAlpha = [4]float64{1.0, 1.2, 3.0, 3.2}
	hartmannA     = [4][6]float64{
		{10, 3, 17, 3.5, 1.7, 8},
		{0.05, 10, 17, 0.1, 8, 14},
		{3, 3.5, 1.7, 10, 17, 8},
		{17, 8, 0.05, 10, 0.1, 14},
	}
	hartmannP = [4][6]float64{
		{0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886},
		{0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991},
		{0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650},
		{0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381},
	}
)

// hartmann6 is Hartmann's 6-dimensional function on [0, 1]^6; its minimum is
// -3.32237.
func hartmann6(x []float64) float64 {
	total := 0.0
	for i := range hartmannAlpha {
		inner := 0.0
		for j := range 6 {
			inner += hartmannA[i][j] * math.Pow(x[j]-hartmannP[i][j], 2)
		}
		total += hartmannAlpha[i] * math.Exp(-inner)
	}
	return -total
}
