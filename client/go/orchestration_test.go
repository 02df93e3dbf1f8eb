package polytrial_test

import (
	"testing"
	"time"

	polytrial "github.com/polytrial/polytrial/client/go"
	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
	"google.golang.org/protobuf/proto"
)

func TestOrchestrationRunsTheBudgetThroughTheRunnerAndCompletes(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := newExperimentID("go-orchestrate")
	definition, err := polytrial.NewExperiment(id).Float("x", -5, 5).Minimize("loss").
		Runner(polytrial.RunnerConfig{Address: serveRunner(t, &fakeRunner{}), Timeout: 5 * time.Second}).
		RunnerMetric("loss").Sobol().Seed(7).Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateExperiment(ctx, definition); err != nil {
		t.Fatal(err)
	}

	started, err := client.StartOrchestration(ctx, id, &pb.OrchestrationOptions{
		MaxTrials: 4, MaxParallelTrials: 2, PollIntervalS: proto.Float64(0.1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if started.State != polytrial.OrchestrationRunning || started.ExperimentID != id {
		t.Fatalf("started %+v, want RUNNING for %s", started, id)
	}
	// An interval of 0 means DefaultOrchestrationPollInterval (it panicked
	// in NewTicker once); a negative one on the ended orchestration too.
	done, err := client.WaitForOrchestration(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := client.WaitForOrchestration(ctx, id, -time.Second); err != nil || again.State != done.State {
		t.Fatalf("waiting again with a negative interval answered %v, %v; want %s", again, err, done.State)
	}

	if done.State != polytrial.OrchestrationCompleted || done.TrialsCreated != 4 {
		t.Fatalf("ended %v with %d trials (%s), want COMPLETED with 4", done.State, done.TrialsCreated, done.StateMessage)
	}
	if done.TrialCounts[polytrial.StatusCompleted] != 4 || len(done.TrialIndices) != 4 {
		t.Fatalf("counts %v, indices %v; want 4 COMPLETED", done.TrialCounts, done.TrialIndices)
	}
	if _, err := client.GetBestArm(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestOrchestrationOfAnExperimentWithoutRunnerIsFailedPreconditionAndStopNotFound(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := newExperimentID("go-orchestrate-none")
	definition, err := polytrial.NewExperiment(id).Float("x", -5, 5).Minimize("loss").Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateExperiment(ctx, definition); err != nil {
		t.Fatal(err)
	}

	_, err = client.StartOrchestration(ctx, id, &pb.OrchestrationOptions{MaxTrials: 3})
	if !polytrial.IsFailedPrecondition(err) {
		t.Fatalf("start without a runner: %v, want FailedPrecondition", err)
	}
	if _, err := client.StopOrchestration(ctx, id, ""); !polytrial.IsNotFound(err) {
		t.Fatalf("stop of a never-started orchestration: %v, want NotFound", err)
	}
	_, err = client.StartOrchestration(ctx, id, &pb.OrchestrationOptions{MaxTrials: 0})
	if !polytrial.IsInvalidArgument(err) {
		t.Fatalf("start with max_trials 0: %v, want InvalidArgument", err)
	}
}
