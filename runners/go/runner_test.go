package runner

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// countingRunner counts Run calls and answers with the parameters it saw.
type countingRunner struct {
	calls atomic.Int32
	delay time.Duration
	fail  error
}

func (r *countingRunner) StagingRequired() bool { return true }

func (r *countingRunner) Run(_ context.Context, trial *Trial, key string) (map[string]any, error) {
	n := r.calls.Add(1)
	time.Sleep(r.delay)
	if r.fail != nil {
		return nil, r.fail
	}
	x, _ := trial.Arms[0].Float("x")
	return map[string]any{"name": key, "call": float64(n), "x": x, "kind": float64(trial.Kind)}, nil
}

// dial serves runner on a free loopback port and returns a client for it.
func dial(t *testing.T, runner Runner) pb.RunnerServiceClient {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := NewServer(runner)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	conn, err := grpc.NewClient(listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewRunnerServiceClient(conn)
}

func runRequest(key string) *pb.RunRequest {
	return &pb.RunRequest{
		DeploymentKey: key,
		Trial: &pb.RunnerTrial{
			ExperimentId: "exp",
			TrialIndex:   3,
			Kind:         pb.TrialKind_TRIAL_KIND_BATCH,
			Arms: []*pb.RunnerArm{{
				Name:       "3_0",
				Parameters: map[string]*pb.ParameterValue{"x": {Kind: &pb.ParameterValue_IntValue{IntValue: 7}}},
			}},
		},
	}
}

func callContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRepeatedRunWithSameKeyStartsOneJobAndReturnsFirstAnswer(t *testing.T) {
	runner := &countingRunner{}
	client := dial(t, runner)
	first, err := client.Run(callContext(t), runRequest("key-1"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := client.Run(callContext(t), runRequest("key-1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := runner.calls.Load(); got != 1 {
		t.Fatalf("Run called %d times, want 1", got)
	}
	if first.GetRunMetadata().AsMap()["call"] != second.GetRunMetadata().AsMap()["call"] {
		t.Fatalf("repeat answered %v, first %v", second.GetRunMetadata(), first.GetRunMetadata())
	}
	if got := first.GetRunMetadata().AsMap()["x"]; got != 7.0 {
		t.Fatalf("runner saw x=%v, want the int parameter 7", got)
	}
	if got := first.GetRunMetadata().AsMap()["kind"]; got != float64(Batch) {
		t.Fatalf("runner saw kind %v, want Batch", got)
	}
}

func TestConcurrentRepeatsWaitForTheFirstRun(t *testing.T) {
	runner := &countingRunner{delay: 200 * time.Millisecond}
	client := dial(t, runner)
	var wg sync.WaitGroup
	names := make([]any, 4)
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			response, err := client.Run(callContext(t), runRequest("same"))
			if err != nil {
				t.Error(err)
				return
			}
			names[i] = response.GetRunMetadata().AsMap()["call"]
		}()
	}
	wg.Wait()
	if got := runner.calls.Load(); got != 1 {
		t.Fatalf("Run called %d times, want 1", got)
	}
	for _, name := range names {
		if name != names[0] {
			t.Fatalf("answers differ: %v", names)
		}
	}
}

func TestDifferentKeysStartDifferentJobs(t *testing.T) {
	runner := &countingRunner{}
	client := dial(t, runner)
	for _, key := range []string{"a", "b"} {
		if _, err := client.Run(callContext(t), runRequest(key)); err != nil {
			t.Fatal(err)
		}
	}
	if got := runner.calls.Load(); got != 2 {
		t.Fatalf("Run called %d times, want 2", got)
	}
}

func TestStatusErrorKeepsItsCodeAndFailedRunIsRetried(t *testing.T) {
	runner := &countingRunner{fail: status.Error(codes.FailedPrecondition, "cluster is full")}
	client := dial(t, runner)
	for range 2 {
		_, err := client.Run(callContext(t), runRequest("k"))
		if status.Code(err) != codes.FailedPrecondition || status.Convert(err).Message() != "cluster is full" {
			t.Fatalf("got %v, want FAILED_PRECONDITION with the runner's message", err)
		}
	}
	if got := runner.calls.Load(); got != 2 {
		t.Fatalf("Run called %d times, want 2 (a failed Run is not remembered)", got)
	}
}

func TestPlainErrorBecomesInternalWithoutDetails(t *testing.T) {
	client := dial(t, &countingRunner{fail: errors.New("secret path /etc/x")})
	_, err := client.Run(callContext(t), runRequest("k"))
	if status.Code(err) != codes.Internal {
		t.Fatalf("got %v, want INTERNAL", err)
	}
	if msg := status.Convert(err).Message(); msg == "" || strings.Contains(msg, "secret") {
		t.Fatalf("message %q leaks the error", msg)
	}
}

func TestMissingDeploymentKeyIsInvalidArgument(t *testing.T) {
	runner := &countingRunner{}
	client := dial(t, runner)
	_, err := client.Run(callContext(t), runRequest(""))
	if status.Code(err) != codes.InvalidArgument || runner.calls.Load() != 0 {
		t.Fatalf("got %v after %d calls, want INVALID_ARGUMENT and no call", err, runner.calls.Load())
	}
}

func TestOptionalMethodsAreUnimplementedAndStagingIsReported(t *testing.T) {
	client := dial(t, &countingRunner{})
	trial := runRequest("k").GetTrial()
	_, pollErr := client.PollTrialStatus(callContext(t), &pb.PollTrialStatusRequest{Trial: trial})
	_, stopErr := client.StopTrial(callContext(t), &pb.RunnerServiceStopTrialRequest{Trial: trial})
	_, fetchErr := client.FetchTrialData(callContext(t), &pb.FetchTrialDataRequest{Trial: trial})
	for _, err := range []error{pollErr, stopErr, fetchErr} {
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("got %v, want UNIMPLEMENTED", err)
		}
	}
	staging, err := client.StagingRequired(callContext(t), &pb.StagingRequiredRequest{})
	if err != nil || !staging.GetStagingRequired() {
		t.Fatalf("StagingRequired = %v, %v; want true", staging, err)
	}
}

// oddMetadataRunner returns metadata from Run and records the stops it gets.
type oddMetadataRunner struct {
	metadata map[string]any
	mu       sync.Mutex
	stops    []stopCall
}

type stopCall struct {
	metadata map[string]any
	reason   string
}

func (r *oddMetadataRunner) StagingRequired() bool { return false }

func (r *oddMetadataRunner) Run(context.Context, *Trial, string) (map[string]any, error) {
	return r.metadata, nil
}

func (r *oddMetadataRunner) StopTrial(_ context.Context, trial *Trial, reason string) (map[string]any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stops = append(r.stops, stopCall{metadata: trial.RunMetadata, reason: reason})
	return nil, nil
}

// unstoppableRunner has no StopTrial.
type unstoppableRunner struct{ metadata map[string]any }

func (r unstoppableRunner) StagingRequired() bool { return false }

func (r unstoppableRunner) Run(context.Context, *Trial, string) (map[string]any, error) {
	return r.metadata, nil
}

func TestRunMetadataJSONCannotHoldIsRefusedNamingTheFieldAndStopsTheJob(t *testing.T) {
	cases := []struct {
		value any
		want  string
	}{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "run metadata field 'bad' is a time.Time, which JSON cannot hold"},
		{make(chan int), "run metadata field 'bad' is a chan int, which JSON cannot hold"},
		{map[string]any{"l": []any{1.0, struct{}{}}}, "run metadata field 'bad.l[1]' is a struct {}, which JSON cannot hold"},
		{[]string{"a"}, "run metadata field 'bad' is a []string; use []any or map[string]any"},
	}
	for _, tc := range cases {
		runner := &oddMetadataRunner{metadata: map[string]any{"name": "j", "bad": tc.value}}
		_, err := dial(t, runner).Run(callContext(t), runRequest("k"))
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), tc.want) {
			t.Fatalf("Run answered %v, want FailedPrecondition with %q", err, tc.want)
		}
		if len(runner.stops) != 1 || runner.stops[0].reason != tc.want {
			t.Fatalf("stops %v, want one with reason %q", runner.stops, tc.want)
		}
		if got := runner.stops[0].metadata; len(got) != 1 || got["name"] != "j" {
			t.Fatalf("stop saw metadata %v, want only the representable name", got)
		}
	}
}

func TestUnanswerableRunMetadataWithoutStopTrialIsStillRefused(t *testing.T) {
	_, err := dial(t, unstoppableRunner{metadata: map[string]any{"when": time.Now()}}).Run(callContext(t), runRequest("k"))
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "'when' is a time.Time") {
		t.Fatalf("Run answered %v", err)
	}
}

func TestJSONRunMetadataOfEveryKindIsAnsweredUnchanged(t *testing.T) {
	runner := &oddMetadataRunner{metadata: map[string]any{
		"s": "x", "i": 3, "f": 1.5, "b": true, "z": nil, "l": []any{"a", map[string]any{"k": int64(2)}},
	}}
	response, err := dial(t, runner).Run(callContext(t), runRequest("k"))
	if err != nil {
		t.Fatal(err)
	}
	got := response.GetRunMetadata().AsMap()
	if got["s"] != "x" || got["i"] != 3.0 || got["f"] != 1.5 || got["b"] != true || got["z"] != nil || len(got["l"].([]any)) != 2 {
		t.Fatalf("answered %v", got)
	}
	if len(runner.stops) != 0 {
		t.Fatalf("stopped %v", runner.stops)
	}
}
