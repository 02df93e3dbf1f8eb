package polytrial

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
)

// TrialStatus is a trial's place in its lifecycle:
//
//	CANDIDATE -> STAGED -> RUNNING -> COMPLETED | FAILED | EARLY_STOPPED
//	any status that is not final -> ABANDONED
type TrialStatus = pb.TrialStatus

// The trial statuses.
const (
	StatusCandidate    = pb.TrialStatus_TRIAL_STATUS_CANDIDATE
	StatusStaged       = pb.TrialStatus_TRIAL_STATUS_STAGED
	StatusRunning      = pb.TrialStatus_TRIAL_STATUS_RUNNING
	StatusCompleted    = pb.TrialStatus_TRIAL_STATUS_COMPLETED
	StatusFailed       = pb.TrialStatus_TRIAL_STATUS_FAILED
	StatusEarlyStopped = pb.TrialStatus_TRIAL_STATUS_EARLY_STOPPED
	StatusAbandoned    = pb.TrialStatus_TRIAL_STATUS_ABANDONED
)

// Objective is one metric to minimize or maximize.
type Objective struct {
	MetricName string
	Minimize   bool
}

// Experiment is what the server stores for an experiment; Proto has the rest.
type Experiment struct {
	// ID is the experiment's id, for example "quadratic".
	ID string
	// Name is the resource name, "experiments/{ID}".
	Name string
	// ParameterNames are the search space's parameters, in order.
	ParameterNames []string
	// Objectives are the optimization config's objectives, in order.
	Objectives []Objective
	// TrialCounts counts the trials by status name.
	TrialCounts map[string]int64
	// Proto is the message the server answered.
	Proto *pb.Experiment
}

func experimentFromProto(message *pb.Experiment) *Experiment {
	experiment := &Experiment{
		ID:          message.GetExperimentId(),
		Name:        message.GetName(),
		TrialCounts: message.GetTrialCounts(),
		Proto:       message,
	}
	for _, p := range message.GetSearchSpace().GetParameters() {
		experiment.ParameterNames = append(experiment.ParameterNames, p.GetName())
	}
	for _, o := range message.GetOptimizationConfig().GetObjectives() {
		experiment.Objectives = append(experiment.Objectives, Objective{o.GetMetricName(), o.GetMinimize()})
	}
	return experiment
}

func (e *Experiment) objectiveNames() []string {
	names := make([]string, len(e.Objectives))
	for i, o := range e.Objectives {
		names[i] = o.MetricName
	}
	return names
}

// Arm is one parameterization in a trial.
type Arm struct {
	// Name is "{trial index}_{arm index}", for example "3_0".
	Name       string
	Parameters Parameters
	Weight     float64
}

// Observation is one reported value of one metric for one arm.
type Observation struct {
	ArmName    string
	MetricName string
	Mean       float64
	// SEM is the standard error, nil when unknown.
	SEM *float64
	// Step is the step of intermediate data, nil for final data.
	Step *int64
}

// Trial is one evaluation of one arm (or of a batch of arms).
type Trial struct {
	// Name is "experiments/{experiment}/trials/{index}".
	Name string
	// ExperimentID is the experiment's id.
	ExperimentID string
	// Index is the trial's dense index in its experiment, from 0.
	Index  int64
	Status TrialStatus
	// Arms are the trial's arms; one unless it is a batch trial.
	Arms []Arm
	// Parameters are the first arm's parameters (the only arm's, usually).
	Parameters Parameters
	// Generator is what made the arms ("sobol", "botorch", "manual", ...).
	Generator string
	// StatusReason says why a trial failed or was abandoned.
	StatusReason string
	Observations []Observation
	// DeployedName is the runner's name for a deployed trial, if it gave one.
	DeployedName string
	// RunMetadata is what the runner returned when it started (and stopped)
	// the trial's job; nil when the trial was never deployed.
	RunMetadata map[string]any
	// DeploymentError is the error of the last failed deployment attempt,
	// "" when there was none.
	DeploymentError string
	// Proto is the message the server answered.
	Proto *pb.Trial
}

func trialFromProto(message *pb.Trial) *Trial {
	experimentID, _, _ := splitTrialName(message.GetName())
	trial := &Trial{
		Name:         message.GetName(),
		ExperimentID: experimentID,
		Index:        message.GetIndex(),
		Status:       message.GetStatus(),
		Generator:    message.GetGeneration().GetGenerator(),
		StatusReason: message.GetStatusReason(),
		Proto:        message,

		DeployedName:    message.GetDeployedName(),
		DeploymentError: message.GetDeploymentError(),
	}
	if metadata := message.GetRunMetadata(); len(metadata.GetFields()) > 0 {
		trial.RunMetadata = metadata.AsMap()
	}
	for _, a := range message.GetArms() {
		trial.Arms = append(trial.Arms, Arm{
			Name:       a.GetArm().GetName(),
			Parameters: parametersFromProto(a.GetArm().GetParameters()),
			Weight:     a.GetWeight(),
		})
	}
	if len(trial.Arms) > 0 {
		trial.Parameters = trial.Arms[0].Parameters
	}
	for _, o := range message.GetObservations() {
		trial.Observations = append(trial.Observations, Observation{
			ArmName: o.GetArmName(), MetricName: o.GetMetricName(), Mean: o.GetMean(), SEM: o.Sem, Step: o.Step,
		})
	}
	return trial
}

// MetricSummary is an arm's mean of one metric over its trials.
type MetricSummary struct {
	Mean float64
	// SEM is the standard error, nil when unknown.
	SEM   *float64
	Count int64
}

// ArmResult is an arm with its observed metrics (best arm, Pareto frontier).
type ArmResult struct {
	ArmName      string
	Parameters   Parameters
	TrialIndices []int64
	Metrics      map[string]MetricSummary
}

func armResultFromProto(message *pb.ArmResult) *ArmResult {
	result := &ArmResult{
		ArmName:      message.GetArm().GetName(),
		Parameters:   parametersFromProto(message.GetArm().GetParameters()),
		TrialIndices: message.GetTrialIndices(),
		Metrics:      map[string]MetricSummary{},
	}
	for _, m := range message.GetMetrics() {
		result.Metrics[m.GetMetricName()] = MetricSummary{Mean: m.GetMean(), SEM: m.Sem, Count: m.GetCount()}
	}
	return result
}

// experimentName returns "experiments/{id}" for an id, or a name unchanged.
func experimentName(experiment string) string {
	if strings.HasPrefix(experiment, "experiments/") {
		return experiment
	}
	return "experiments/" + experiment
}

// splitTrialName returns the experiment id and index of a trial name.
func splitTrialName(name string) (string, int64, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "experiments" || parts[2] != "trials" || parts[1] == "" {
		return "", 0, invalidArgument("name", "%q is not a trial name (experiments/{experiment}/trials/{index})", name)
	}
	index, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || index < 0 {
		return "", 0, invalidArgument("name", "%q is not a trial name: the index is not a whole number", name)
	}
	return parts[1], index, nil
}

// TrialName returns "experiments/{experimentID}/trials/{index}".
func TrialName(experimentID string, index int64) string {
	return fmt.Sprintf("experiments/%s/trials/%d", experimentID, index)
}

// RunnerConfig is a runner service that deploys trials: an experiment's
// (ExperimentBuilder.Runner) or one trial's (Client.DeployTrial).
type RunnerConfig struct {
	// Address is "host:port" or "unix:/path".
	Address string
	// Timeout bounds each call to the runner; 0 means the server's default
	// (10 s). Any other value is sent as it is, so the server refuses a
	// negative one as InvalidArgument naming runner.timeout_s.
	Timeout time.Duration
}

func (r RunnerConfig) toProto() *pb.RunnerConfig {
	message := &pb.RunnerConfig{Address: r.Address}
	if r.Timeout != 0 {
		seconds := r.Timeout.Seconds()
		message.TimeoutS = &seconds
	}
	return message
}
