package runner

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// service adapts a Runner to the generated RunnerServiceServer.
type service struct {
	pb.UnimplementedRunnerServiceServer
	runner Runner
	keys   *deploymentKeys
}

// NewServer returns a gRPC server with runner registered as RunnerService.
// Options are passed to grpc.NewServer.
func NewServer(runner Runner, opts ...grpc.ServerOption) *grpc.Server {
	server := grpc.NewServer(opts...)
	pb.RegisterRunnerServiceServer(server, &service{runner: runner, keys: newDeploymentKeys()})
	return server
}

// Serve serves runner on address (host:port; port 0 picks a free one) until
// SIGINT or SIGTERM, then stops gracefully. onListening, when not nil, is
// called with the bound address once the listener is open.
func Serve(runner Runner, address string, onListening ...func(net.Addr)) error {
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", address, err)
	}
	server := NewServer(runner)
	for _, callback := range onListening {
		callback(listener.Addr())
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		stopGracefully(server, 5*time.Second)
	}()
	if err := server.Serve(listener); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// stopGracefully lets in-flight calls finish for up to grace, then cuts them.
func stopGracefully(server *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		server.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		server.Stop()
	}
}

// Run implements RunnerService.Run.
func (s *service) Run(ctx context.Context, request *pb.RunRequest) (*pb.RunResponse, error) {
	if request.GetDeploymentKey() == "" {
		return nil, status.Error(codes.InvalidArgument, "deployment_key: required, so a retried Run starts no second job")
	}
	trial, err := trialFromProto(request.GetTrial())
	if err != nil {
		return nil, err
	}
	return s.keys.runOnce(request.GetDeploymentKey(), func() (*pb.RunResponse, error) {
		// The job outlives this call, so it must not be cancelled with it.
		metadata, err := s.runner.Run(context.WithoutCancel(ctx), trial, request.GetDeploymentKey())
		if err != nil {
			return nil, asStatus("Run", err)
		}
		if problem := metadataProblem(metadata); problem != "" {
			s.stopUnanswerable(ctx, trial, metadata, problem)
			return nil, status.Errorf(codes.FailedPrecondition, "%s; the job was asked to stop", problem)
		}
		fields, err := structpb.NewStruct(metadata)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "run metadata cannot be stored: %v", err)
		}
		return &pb.RunResponse{RunMetadata: fields}, nil
	})
}

// stopUnanswerable asks the job Run started to stop because its metadata
// cannot be answered: the server never learns of a job whose Run fails, so it
// would not stop it. The stop gets the fields JSON can hold; a runner without
// StopTrial, or a stop that fails, is only logged.
func (s *service) stopUnanswerable(ctx context.Context, trial *Trial, metadata map[string]any, problem string) {
	log.Printf("experiment %s trial %d: %s; asking the job to stop", trial.ExperimentID, trial.TrialIndex, problem)
	stopper, ok := s.runner.(Stopper)
	if !ok {
		log.Printf("experiment %s trial %d: the runner cannot stop trials; its job keeps running", trial.ExperimentID, trial.TrialIndex)
		return
	}
	started := *trial
	started.RunMetadata = representableFields(metadata)
	if _, err := stopper.StopTrial(context.WithoutCancel(ctx), &started, problem); err != nil {
		log.Printf("experiment %s trial %d: stopping the job failed: %v", trial.ExperimentID, trial.TrialIndex, err)
	}
}

// StagingRequired implements RunnerService.StagingRequired.
func (s *service) StagingRequired(context.Context, *pb.StagingRequiredRequest) (*pb.StagingRequiredResponse, error) {
	return &pb.StagingRequiredResponse{StagingRequired: s.runner.StagingRequired()}, nil
}

// PollTrialStatus implements RunnerService.PollTrialStatus.
func (s *service) PollTrialStatus(ctx context.Context, request *pb.PollTrialStatusRequest) (*pb.PollTrialStatusResponse, error) {
	poller, ok := s.runner.(Poller)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this runner does not poll trials")
	}
	trial, err := trialFromProto(request.GetTrial())
	if err != nil {
		return nil, err
	}
	polled, err := poller.PollTrialStatus(ctx, trial)
	if err != nil {
		return nil, asStatus("PollTrialStatus", err)
	}
	return &pb.PollTrialStatusResponse{State: pb.RunnerTrialState(polled.State), Reason: polled.Reason}, nil
}

// StopTrial implements RunnerService.StopTrial.
func (s *service) StopTrial(ctx context.Context, request *pb.RunnerServiceStopTrialRequest) (*pb.RunnerServiceStopTrialResponse, error) {
	stopper, ok := s.runner.(Stopper)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this runner does not stop trials")
	}
	trial, err := trialFromProto(request.GetTrial())
	if err != nil {
		return nil, err
	}
	metadata, err := stopper.StopTrial(ctx, trial, request.GetReason())
	if err != nil {
		return nil, asStatus("StopTrial", err)
	}
	fields, err := structpb.NewStruct(metadata)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "stop metadata cannot be stored: %v", err)
	}
	return &pb.RunnerServiceStopTrialResponse{RunMetadata: fields}, nil
}

// FetchTrialData implements RunnerService.FetchTrialData.
func (s *service) FetchTrialData(ctx context.Context, request *pb.FetchTrialDataRequest) (*pb.FetchTrialDataResponse, error) {
	fetcher, ok := s.runner.(Fetcher)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this runner does not fetch trial data")
	}
	trial, err := trialFromProto(request.GetTrial())
	if err != nil {
		return nil, err
	}
	found, err := fetcher.FetchTrialData(ctx, trial, request.GetMetricNames())
	if err != nil {
		return nil, asStatus("FetchTrialData", err)
	}
	response := &pb.FetchTrialDataResponse{}
	for _, observation := range found {
		if math.IsNaN(observation.Mean) || math.IsInf(observation.Mean, 0) {
			return nil, status.Errorf(codes.Internal, "observation of %s for arm %s is not finite", observation.MetricName, observation.ArmName)
		}
		response.Observations = append(response.Observations, &pb.Observation{
			ArmName:    observation.ArmName,
			MetricName: observation.MetricName,
			Mean:       observation.Mean,
			Sem:        observation.SEM,
			Step:       observation.Step,
		})
	}
	return response, nil
}

// asStatus keeps the code of a status error and turns any other error into
// Internal, logging it, so no runner internals leak to the server.
func asStatus(method string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Errorf(codes.DeadlineExceeded, "%s: %v", method, err)
	}
	log.Printf("runner method %s failed: %v", method, err)
	return status.Errorf(codes.Internal, "%s failed with an unexpected error; see the runner's log", method)
}

// trialFromProto converts the wire trial to the SDK's Trial.
func trialFromProto(message *pb.RunnerTrial) (*Trial, error) {
	trial := &Trial{
		ExperimentID: message.GetExperimentId(),
		TrialIndex:   message.GetTrialIndex(),
		Kind:         SingleArm,
		RunMetadata:  message.GetRunMetadata().AsMap(),
		MetricNames:  message.GetMetricNames(),
	}
	if message.GetKind() == pb.TrialKind_TRIAL_KIND_BATCH {
		trial.Kind = Batch
	}
	for _, arm := range message.GetArms() {
		parameters := make(map[string]any, len(arm.GetParameters()))
		for name, value := range arm.GetParameters() {
			switch kind := value.GetKind().(type) {
			case *pb.ParameterValue_FloatValue:
				parameters[name] = kind.FloatValue
			case *pb.ParameterValue_IntValue:
				parameters[name] = kind.IntValue
			case *pb.ParameterValue_StringValue:
				parameters[name] = kind.StringValue
			case *pb.ParameterValue_BoolValue:
				parameters[name] = kind.BoolValue
			default:
				return nil, status.Errorf(codes.InvalidArgument, "trial.arms[%s].parameters[%s]: no kind of value is set", arm.GetName(), name)
			}
		}
		weight := arm.GetWeight()
		if weight == 0 {
			weight = 1
		}
		trial.Arms = append(trial.Arms, Arm{Name: arm.GetName(), Parameters: parameters, Weight: weight})
	}
	return trial, nil
}
