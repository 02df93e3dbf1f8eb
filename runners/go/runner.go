// Package runner is Polytrial's runner SDK for Go: implement Runner, call Serve,
// and the Polytrial server can deploy trials on your system.
//
//	type myRunner struct{}
//
//	func (myRunner) StagingRequired() bool { return false }
//	func (myRunner) Run(ctx context.Context, t *runner.Trial, key string) (map[string]any, error) {
//		return map[string]any{"name": submitJob(t.Arms[0].Parameters)}, nil
//	}
//
//	func main() {
//		// Serve returns nil after a clean SIGINT or SIGTERM.
//		if err := runner.Serve(myRunner{}, "127.0.0.1:50061"); err != nil {
//			log.Fatal(err)
//		}
//	}
//
// Poller, Stopper and Fetcher are optional; a runner that does not implement
// one answers UNIMPLEMENTED, which the server copes with. Errors made with
// status.Errorf keep their code: InvalidArgument and FailedPrecondition make
// the server mark the trial FAILED, Unavailable makes it retry with the same
// deployment key. Any other error becomes Internal.
package runner

import (
	"context"
)

// TrialKind says whether a trial has one arm or is a batch.
type TrialKind int

const (
	// SingleArm is a trial of one arm.
	SingleArm TrialKind = 1
	// Batch is a trial of several arms evaluated together.
	Batch TrialKind = 2
)

// State is the external system's view of a deployed trial.
type State int

const (
	// Staged means the trial waits for its staging period to end.
	Staged State = 1
	// Running means the trial is being evaluated.
	Running State = 2
	// Completed means the trial finished and its data can be fetched.
	Completed State = 3
	// Failed means the trial's evaluation failed.
	Failed State = 4
	// Stopped means the trial was stopped on request.
	Stopped State = 5
)

// Arm is one arm to evaluate.
type Arm struct {
	// Name is "{trial index}_{arm index}", for example "3_0".
	Name string
	// Parameters holds each parameter's value: bool, int64, float64 or string.
	Parameters map[string]any
	// Weight is the arm's relative weight in a batch trial (1 otherwise).
	Weight float64
}

// Float returns parameter name as a float64, converting an int64, and whether
// it is numeric.
func (a Arm) Float(name string) (float64, bool) {
	switch v := a.Parameters[name].(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// Trial is the trial a call is about, with what the server stored for it.
type Trial struct {
	// ExperimentID is the id of the experiment.
	ExperimentID string
	// TrialIndex is the index of the trial within the experiment.
	TrialIndex int64
	// Kind is SingleArm or Batch.
	Kind TrialKind
	// Arms are the arms.
	Arms []Arm
	// RunMetadata is what Run returned (empty during Run), so a runner needs
	// no state of its own. Numbers come back as float64.
	RunMetadata map[string]any
	// MetricNames are the metrics the experiment wants.
	MetricNames []string
}

// Status is a polled state and, for Failed, why.
type Status struct {
	// State is the trial's state.
	State State
	// Reason says why the trial failed.
	Reason string
}

// Observation is one observed value of one metric for one arm.
type Observation struct {
	// ArmName is the arm, for example "3_0".
	ArmName string
	// MetricName is the metric.
	MetricName string
	// Mean is the observed mean; it must be finite.
	Mean float64
	// SEM is the standard error of the mean; nil means unknown (not zero).
	SEM *float64
	// Step marks an intermediate observation; nil for final data.
	Step *int64
}

// Runner deploys trials on some external system.
type Runner interface {
	// Run starts the trial's job and returns its metadata at once; a string
	// under "name" becomes the trial's deployed name. The SDK calls it once per
	// deployment key and answers repeats with the first answer.
	Run(ctx context.Context, trial *Trial, deploymentKey string) (map[string]any, error)
	// StagingRequired says whether deployed trials start Staged.
	StagingRequired() bool
}

// Poller is implemented by runners that report a deployed trial's state.
type Poller interface {
	// PollTrialStatus returns the external system's view of the trial.
	PollTrialStatus(ctx context.Context, trial *Trial) (Status, error)
}

// Stopper is implemented by runners that can stop a deployed trial.
type Stopper interface {
	// StopTrial stops the trial and returns metadata to merge into the trial's.
	StopTrial(ctx context.Context, trial *Trial, reason string) (map[string]any, error)
}

// Fetcher is implemented by runners (and metric services) that return a
// deployed trial's observations.
type Fetcher interface {
	// FetchTrialData returns observations of the given metrics, or of every
	// metric the runner has when metricNames is empty.
	FetchTrialData(ctx context.Context, trial *Trial, metricNames []string) ([]Observation, error)
}
