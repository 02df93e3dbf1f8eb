package polytrial_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	polytrial "github.com/polytrial/polytrial/client/go"
	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
)

// fakeRunner is a RunnerService on a loopback port: its jobs complete at once
// with loss = x*x, and it records the stops it is asked for.
type fakeRunner struct {
	pb.UnimplementedRunnerServiceServer

	mu    sync.Mutex
	stops []string // guarded by mu
}

func (r *fakeRunner) StagingRequired(context.Context, *pb.StagingRequiredRequest) (*pb.StagingRequiredResponse, error) {
	return &pb.StagingRequiredResponse{}, nil
}

func (r *fakeRunner) Run(_ context.Context, request *pb.RunRequest) (*pb.RunResponse, error) {
	metadata, err := structpb.NewStruct(map[string]any{"name": "job-" + request.GetDeploymentKey()})
	if err != nil {
		return nil, err
	}
	return &pb.RunResponse{RunMetadata: metadata}, nil
}

func (r *fakeRunner) PollTrialStatus(context.Context, *pb.PollTrialStatusRequest) (*pb.PollTrialStatusResponse, error) {
	return &pb.PollTrialStatusResponse{State: pb.RunnerTrialState_RUNNER_TRIAL_STATE_COMPLETED}, nil
}

func (r *fakeRunner) FetchTrialData(_ context.Context, request *pb.FetchTrialDataRequest) (*pb.FetchTrialDataResponse, error) {
	response := &pb.FetchTrialDataResponse{}
	for _, arm := range request.GetTrial().GetArms() {
		x := arm.GetParameters()["x"].GetFloatValue()
		response.Observations = append(response.Observations, &pb.Observation{
			ArmName: arm.GetName(), MetricName: "loss", Mean: x * x,
		})
	}
	return response, nil
}

func (r *fakeRunner) StopTrial(_ context.Context, request *pb.RunnerServiceStopTrialRequest) (*pb.RunnerServiceStopTrialResponse, error) {
	r.mu.Lock()
	r.stops = append(r.stops, request.GetReason())
	r.mu.Unlock()
	metadata, err := structpb.NewStruct(map[string]any{"stopped": true})
	if err != nil {
		return nil, err
	}
	return &pb.RunnerServiceStopTrialResponse{RunMetadata: metadata}, nil
}

func (r *fakeRunner) stopReasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.stops...)
}

// serveRunner starts runner on a free loopback port and returns its address.
func serveRunner(t *testing.T, runner pb.RunnerServiceServer) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	pb.RegisterRunnerServiceServer(server, runner)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return listener.Addr().String()
}

// closedAddress returns a loopback address nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := listener.Addr().String()
	if err := listener.Close(); err != nil {
		t.Fatal(err)
	}
	return address
}

// createRunnerExperiment creates an experiment deployed through runnerAddress
// whose "loss" data the runner returns, and suggests one CANDIDATE trial.
func createRunnerExperiment(t *testing.T, ctx context.Context, client *polytrial.Client, prefix, runnerAddress string) *polytrial.Trial {
	t.Helper()
	id := newExperimentID(prefix)
	definition, err := polytrial.NewExperiment(id).Float("x", -5, 5).Minimize("loss").
		Runner(polytrial.RunnerConfig{Address: runnerAddress, Timeout: 5 * time.Second}).
		RunnerMetric("loss").Sobol().Seed(7).Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateExperiment(ctx, definition); err != nil {
		t.Fatal(err)
	}
	candidate, err := client.Suggest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if candidate.Status != pb.TrialStatus_TRIAL_STATUS_CANDIDATE {
		t.Fatalf("a runner experiment's suggestion is %v, want CANDIDATE", candidate.Status)
	}
	return candidate
}

func TestDeployedTrialIsRefreshedToCompletionWithTheRunnersData(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	candidate := createRunnerExperiment(t, ctx, client, "go-deploy", serveRunner(t, &fakeRunner{}))

	deployed, err := client.DeployTrial(ctx, candidate.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if deployed.Status != pb.TrialStatus_TRIAL_STATUS_RUNNING || deployed.DeployedName == "" {
		t.Fatalf("deployed trial is %v named %q, want RUNNING with a name", deployed.Status, deployed.DeployedName)
	}
	if deployed.RunMetadata["name"] != deployed.DeployedName {
		t.Fatalf("run metadata %v does not carry the deployed name %q", deployed.RunMetadata, deployed.DeployedName)
	}

	completed, err := client.RefreshTrial(ctx, candidate.Name)
	if err != nil {
		t.Fatal(err)
	}
	if completed.Status != pb.TrialStatus_TRIAL_STATUS_COMPLETED {
		t.Fatalf("refreshed trial is %v, want COMPLETED", completed.Status)
	}
	x, _ := candidate.Parameters.Float("x")
	if len(completed.Observations) != 1 || completed.Observations[0].Mean != x*x {
		t.Fatalf("observations %+v, want one loss of %v", completed.Observations, x*x)
	}
}

func TestStoppedTrialKeepsTheJobsLastDataAndItsRunnerIsAskedWithTheReason(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	runner := &fakeRunner{}
	candidate := createRunnerExperiment(t, ctx, client, "go-stop", serveRunner(t, runner))
	if _, err := client.DeployTrial(ctx, candidate.Name, nil); err != nil {
		t.Fatal(err)
	}

	stopped, err := client.StopTrial(ctx, candidate.Name, "no longer needed")
	if err != nil {
		t.Fatal(err)
	}
	// The stop fetched the job's data, so the trial is early-stopped, not
	// abandoned.
	if stopped.Status != pb.TrialStatus_TRIAL_STATUS_EARLY_STOPPED || stopped.StatusReason != "no longer needed" {
		t.Fatalf("stopped trial is %v (%q), want EARLY_STOPPED with the reason", stopped.Status, stopped.StatusReason)
	}
	if len(stopped.Observations) != 1 {
		t.Fatalf("observations %+v, want the job's one", stopped.Observations)
	}
	if reasons := runner.stopReasons(); len(reasons) != 1 || reasons[0] != "no longer needed" {
		t.Fatalf("runner was asked to stop %q, want once with the reason", reasons)
	}
	if stopped.RunMetadata["stopped"] != true {
		t.Fatalf("run metadata %v lacks the runner's stop metadata", stopped.RunMetadata)
	}

	// Stopping again is a state change that cannot happen twice.
	_, err = client.StopTrial(ctx, candidate.Name, "again")
	if !polytrial.IsFailedPrecondition(err) {
		t.Fatalf("second stop: %v, want FailedPrecondition", err)
	}
}

func TestDeployingThroughAnUnreachableRunnerIsUnavailableAndTheTrialStaysCandidate(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	candidate := createRunnerExperiment(t, ctx, client, "go-down", serveRunner(t, &fakeRunner{}))
	down := closedAddress(t)

	_, err := client.DeployTrial(ctx, candidate.Name, &polytrial.RunnerConfig{Address: down, Timeout: time.Second})

	var typed *polytrial.Error
	if !errors.As(err, &typed) || !polytrial.IsUnavailable(err) {
		t.Fatalf("error %v (%T), want an Unavailable *polytrial.Error", err, err)
	}
	if typed.Reason != polytrial.ReasonRunnerUnavailable {
		t.Fatalf("reason %q, want %q", typed.Reason, polytrial.ReasonRunnerUnavailable)
	}
	kept, err := client.GetTrial(ctx, candidate.Name)
	if err != nil {
		t.Fatal(err)
	}
	if kept.Status != pb.TrialStatus_TRIAL_STATUS_CANDIDATE || kept.DeploymentError == "" {
		t.Fatalf("trial is %v with deployment error %q, want CANDIDATE with one", kept.Status, kept.DeploymentError)
	}
}

func TestStoppingOrRefreshingAnUndeployedTrialIsFailedPreconditionOrUnchanged(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	runner := &fakeRunner{}
	candidate := createRunnerExperiment(t, ctx, client, "go-undeployed", serveRunner(t, runner))

	if _, err := client.StopTrial(ctx, candidate.Name, ""); !polytrial.IsFailedPrecondition(err) {
		t.Fatalf("stop of a CANDIDATE: %v, want FailedPrecondition", err)
	}
	refreshed, err := client.RefreshTrial(ctx, candidate.Name)
	if err != nil {
		t.Fatal(err)
	}
	if refreshed.Status != pb.TrialStatus_TRIAL_STATUS_CANDIDATE || len(runner.stopReasons()) != 0 {
		t.Fatalf("refresh of a CANDIDATE gave %v, stops %v; want it unchanged", refreshed.Status, runner.stopReasons())
	}
}
