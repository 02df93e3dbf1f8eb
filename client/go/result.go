package polytrial

import (
	"fmt"
	"math"
	"sort"

	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
)

// Result is what a caller reports for a single-arm trial:
//
//	polytrial.Number(1.23)                             the single objective
//	polytrial.MeanSEM{Mean: 1.23, SEM: 0.05}           with its standard error
//	polytrial.Metrics{"loss": polytrial.Number(1.2),   by metric
//		"acc": polytrial.MeanSEM{Mean: 0.9, SEM: 0.01}}
//
// A Number has no standard error: that says "unknown", not "noiseless".
// Report MeanSEM{Mean: v, SEM: 0} for a noiseless measurement. A batch
// trial's result is ByArm, one Result per arm name.
type Result interface {
	// observations expands the result for one arm, given the experiment's
	// objectives (needed only by a bare number).
	observations(armName string, objectives []string) ([]*pb.Observation, error)
}

// Metric is the value of one metric in Metrics: a Number or a MeanSEM.
type Metric interface {
	meanAndSEM() (float64, *float64)
}

// Number is one value with an unknown standard error.
type Number float64

// MeanSEM is a mean and its standard error.
type MeanSEM struct {
	Mean float64
	SEM  float64
}

// Metrics is a result by metric name.
type Metrics map[string]Metric

// ByArm is a batch trial's result by arm name ("{trial index}_{arm index}"),
// each a Number, MeanSEM or Metrics.
type ByArm map[string]Result

func (b ByArm) observations(_ string, objectives []string) ([]*pb.Observation, error) {
	if len(b) == 0 {
		return nil, invalidArgument("observations", "the ByArm result has no arm")
	}
	arms := make([]string, 0, len(b))
	for arm := range b {
		arms = append(arms, arm)
	}
	sort.Strings(arms)
	var messages []*pb.Observation
	for _, arm := range arms {
		if _, nested := b[arm].(ByArm); nested || b[arm] == nil {
			return nil, invalidArgument("observations", "arm %s: give a Number, MeanSEM or Metrics", arm)
		}
		armMessages, err := b[arm].observations(arm, objectives)
		if err != nil {
			return nil, err
		}
		messages = append(messages, armMessages...)
	}
	return messages, nil
}

// needsObjectives reports whether a result has a bare value, which stands
// for the experiment's single objective.
func needsObjectives(result Result) bool {
	switch r := result.(type) {
	case Metrics:
		return false
	case ByArm:
		for _, arm := range r {
			if needsObjectives(arm) {
				return true
			}
		}
		return false
	}
	return true
}

func (n Number) meanAndSEM() (float64, *float64) { return float64(n), nil }

func (m MeanSEM) meanAndSEM() (float64, *float64) {
	sem := m.SEM
	return m.Mean, &sem
}

func (n Number) observations(armName string, objectives []string) ([]*pb.Observation, error) {
	return single(n, armName, objectives)
}

func (m MeanSEM) observations(armName string, objectives []string) ([]*pb.Observation, error) {
	return single(m, armName, objectives)
}

func single(metric Metric, armName string, objectives []string) ([]*pb.Observation, error) {
	if len(objectives) != 1 {
		return nil, invalidArgument("observations", "arm %s: a bare value needs exactly one objective, and the "+
			"experiment has %v; report Metrics", armName, objectives)
	}
	return Metrics{objectives[0]: metric}.observations(armName, objectives)
}

func (m Metrics) observations(armName string, _ []string) ([]*pb.Observation, error) {
	if len(m) == 0 {
		return nil, invalidArgument("observations", "arm %s: the result has no metric; name at least one", armName)
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names) // a stable order makes a retried request identical
	messages := make([]*pb.Observation, 0, len(m))
	for _, name := range names {
		if m[name] == nil {
			return nil, invalidArgument("observations", "arm %s, metric %q: no value", armName, name)
		}
		mean, sem := m[name].meanAndSEM()
		messages = append(messages, &pb.Observation{ArmName: armName, MetricName: name, Mean: mean, Sem: sem})
	}
	return messages, nil
}

// checkFinite returns why the observations cannot be reported, or "".
func checkFinite(messages []*pb.Observation) string {
	for _, o := range messages {
		if math.IsNaN(o.GetMean()) || math.IsInf(o.GetMean(), 0) {
			return fmt.Sprintf("the evaluation returned %v for %q", o.GetMean(), o.GetMetricName())
		}
		if o.Sem != nil && (math.IsNaN(o.GetSem()) || math.IsInf(o.GetSem(), 0) || o.GetSem() < 0) {
			return fmt.Sprintf("the evaluation returned the standard error %v for %q", o.GetSem(), o.GetMetricName())
		}
	}
	return ""
}
