package polytrial

import (
	"context"
	"strings"
	"time"

	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
)

// OrchestrationState is where an orchestration stands: RUNNING, then
// COMPLETED (budget used), FAILED (failure rate exceeded) or STOPPED.
type OrchestrationState = pb.OrchestrationState

// The orchestration states.
const (
	OrchestrationRunning   = pb.OrchestrationState_ORCHESTRATION_STATE_RUNNING
	OrchestrationCompleted = pb.OrchestrationState_ORCHESTRATION_STATE_COMPLETED
	OrchestrationFailed    = pb.OrchestrationState_ORCHESTRATION_STATE_FAILED
	OrchestrationStopped   = pb.OrchestrationState_ORCHESTRATION_STATE_STOPPED
)

// Orchestration is an experiment's orchestration: the server deploying its
// trials through the experiment's runner until a budget is used.
type Orchestration struct {
	Name          string // "experiments/{id}/orchestration"
	ExperimentID  string
	UID           string // new for every start
	Options       *pb.OrchestrationOptions
	State         OrchestrationState
	StateMessage  string // why: the failure counts of a FAILED one, say
	TrialsCreated int64
	TrialCounts   map[TrialStatus]int64 // they add up to TrialsCreated
	TrialIndices  []int64
	Driver        string // the server replica driving it; empty once it ended
}

// Done reports whether the orchestration has ended.
func (o *Orchestration) Done() bool { return o.State != OrchestrationRunning }

func orchestrationFromProto(message *pb.Orchestration) *Orchestration {
	counts := map[TrialStatus]int64{}
	for name, count := range message.GetTrialCounts() {
		if value, found := pb.TrialStatus_value["TRIAL_STATUS_"+name]; found {
			counts[TrialStatus(value)] = count
		}
	}
	experimentID := strings.TrimSuffix(strings.TrimPrefix(message.GetName(), "experiments/"), "/orchestration")
	return &Orchestration{
		Name:          message.GetName(),
		ExperimentID:  experimentID,
		UID:           message.GetUid(),
		Options:       message.GetOptions(),
		State:         message.GetState(),
		StateMessage:  message.GetStateMessage(),
		TrialsCreated: message.GetTrialsCreated(),
		TrialCounts:   counts,
		TrialIndices:  message.GetTrialIndices(),
		Driver:        message.GetDriver(),
	}
}

func orchestrationName(experiment string) string {
	return experimentName(experiment) + "/orchestration"
}

// StartOrchestration has the server run the experiment through its runner
// until options.MaxTrials trials were created, options.MaxParallelTrials at
// a time; unset optional options take the server's defaults. It carries a
// request id and is retried with it, so a retry returns the orchestration
// the first attempt started.
//
// Errors: InvalidArgument naming a bad option; NotFound; FailedPrecondition
// when the experiment has no runner, an objective has no runner or service
// metric source, or an orchestration is RUNNING (reason
// ORCHESTRATION_RUNNING).
func (c *Client) StartOrchestration(ctx context.Context, experiment string, options *pb.OrchestrationOptions) (*Orchestration, error) {
	request := &pb.StartOrchestrationRequest{
		Name: orchestrationName(experiment), Options: options, RequestId: NewRequestID(),
	}
	stub := pb.NewOrchestrationServiceClient(c.conn)
	message, err := invoke(ctx, c, "StartOrchestration", true, request.RequestId, stub.StartOrchestration, request)
	if err != nil {
		return nil, err
	}
	return orchestrationFromProto(message), nil
}

// GetOrchestration returns the experiment's orchestration.
//
// Errors: NotFound when the experiment does not exist or was never
// orchestrated.
func (c *Client) GetOrchestration(ctx context.Context, experiment string) (*Orchestration, error) {
	request := &pb.GetOrchestrationRequest{Name: orchestrationName(experiment)}
	stub := pb.NewOrchestrationServiceClient(c.conn)
	message, err := invoke(ctx, c, "GetOrchestration", true, "", stub.GetOrchestration, request)
	if err != nil {
		return nil, err
	}
	return orchestrationFromProto(message), nil
}

// StopOrchestration stops the experiment's orchestration and, best effort,
// its trials in flight. Stopping one that ended returns it unchanged, so the
// call is retried.
//
// Errors: NotFound when there is no orchestration.
func (c *Client) StopOrchestration(ctx context.Context, experiment, reason string) (*Orchestration, error) {
	request := &pb.StopOrchestrationRequest{Name: orchestrationName(experiment), Reason: reason}
	stub := pb.NewOrchestrationServiceClient(c.conn)
	message, err := invoke(ctx, c, "StopOrchestration", true, "", stub.StopOrchestration, request)
	if err != nil {
		return nil, err
	}
	return orchestrationFromProto(message), nil
}

// DefaultOrchestrationPollInterval is WaitForOrchestration's wait between
// two reads when it is given an interval of 0 or less; the Python client
// waits as long.
const DefaultOrchestrationPollInterval = time.Second

// WaitForOrchestration reads the orchestration every pollInterval until it
// ends, and returns it; an interval of 0 or less means
// DefaultOrchestrationPollInterval. It gives up when ctx ends (the
// orchestration goes on on the server) and returns ctx's error.
func (c *Client) WaitForOrchestration(ctx context.Context, experiment string, pollInterval time.Duration) (*Orchestration, error) {
	if pollInterval <= 0 {
		pollInterval = DefaultOrchestrationPollInterval
	}
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		current, err := c.GetOrchestration(ctx, experiment)
		if err != nil {
			return nil, err
		}
		if current.Done() {
			return current, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ticker.C:
		}
	}
}
