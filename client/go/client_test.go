package polytrial_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	polytrial "github.com/polytrial/polytrial/client/go"
	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// address is the real `polytrial serve` subprocess TestMain starts.
var address string

var listening = regexp.MustCompile(`listening on [^\s]+:(\d+)`)

func TestMain(m *testing.M) {
	os.Exit(runWithServer(m))
}

// runWithServer starts `polytrial serve` on a fresh SQLite file and a port it
// picks itself, runs the tests and stops it.
func runWithServer(m *testing.M) int {
	dir, err := os.MkdirTemp("", "polytrial-go-client-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	server, err := startServer("sqlite:///"+filepath.Join(dir, "t.db"), "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer server.stop()
	address = server.address
	return m.Run()
}

// serverProcess is a running `polytrial serve` subprocess.
type serverProcess struct {
	cmd *exec.Cmd
	// address is "127.0.0.1:{port}", the port read from the server's log.
	address string
	// exited is closed once the process has exited and been waited for.
	exited chan struct{}

	logMu sync.Mutex
	log   strings.Builder
}

// startServer starts `polytrial serve` ($POLYTRIAL_BIN, or the repository's
// venv) on database db, listening on listen ("127.0.0.1:0" lets it pick a
// port), and returns once its log says where it listens.
func startServer(db, listen string) (*serverProcess, error) {
	bin := os.Getenv("POLYTRIAL_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", ".venv", "bin", "polytrial")
	}
	server := &serverProcess{
		cmd:    exec.Command(bin, "serve", "--db", db, "--address", listen, "--log-level", "INFO"),
		exited: make(chan struct{}),
	}
	stderr, err := server.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := server.cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s (set POLYTRIAL_BIN): %w", bin, err)
	}

	// The log is read to its end, so the server never blocks on a full pipe;
	// it is shown only when the server does not come up. Wait comes after
	// the last read, as os/exec requires.
	ports := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			server.logMu.Lock()
			server.log.WriteString(scanner.Text() + "\n")
			server.logMu.Unlock()
			if match := listening.FindStringSubmatch(scanner.Text()); match != nil {
				select {
				case ports <- match[1]:
				default:
				}
			}
		}
		close(ports)
		_ = server.cmd.Wait()
		close(server.exited)
	}()
	select {
	case port, ok := <-ports:
		if !ok {
			server.logMu.Lock()
			defer server.logMu.Unlock()
			return nil, fmt.Errorf("the server exited before listening:\n%s", server.log.String())
		}
		server.address = "127.0.0.1:" + port
		return server, nil
	case <-time.After(60 * time.Second):
		server.stop()
		return nil, errors.New("the server did not listen within 60 s")
	}
}

// stop ends the server as an operator would (SIGTERM), killing it when it
// does not exit within 15 s, and returns once it has exited.
func (s *serverProcess) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

var experimentCounter atomic.Int32

// newExperimentID returns an id no other test of this run uses.
func newExperimentID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1_000_000, experimentCounter.Add(1))
}

func dial(t *testing.T, opts ...polytrial.Option) *polytrial.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := polytrial.Dial(ctx, address, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createSobol creates a Sobol-only experiment with x in [-5, 5] and n in
// [1, 10], minimizing "loss".
func createSobol(t *testing.T, ctx context.Context, client *polytrial.Client, prefix string) string {
	t.Helper()
	id := newExperimentID(prefix)
	definition, err := polytrial.NewExperiment(id).Float("x", -5, 5).Int("n", 1, 10).
		Minimize("loss").Sobol().Seed(7).Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateExperiment(ctx, definition); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestCreatedExperimentIsReturnedByGet(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := newExperimentID("create")
	definition, err := polytrial.NewExperiment(id).Description("two parameters").
		LogFloat("lr", 1e-4, 1e-1).Choice("optimizer", polytrial.String("adam"), polytrial.String("sgd")).
		Maximize("accuracy").Sobol().Build()
	if err != nil {
		t.Fatal(err)
	}

	created, err := client.CreateExperiment(ctx, definition)
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.GetExperiment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	if got.Name != "experiments/"+id || got.ID != id || created.Name != got.Name {
		t.Errorf("names: created %q, got %q (id %q)", created.Name, got.Name, got.ID)
	}
	if strings.Join(got.ParameterNames, ",") != "lr,optimizer" {
		t.Errorf("parameters %v, want [lr optimizer]", got.ParameterNames)
	}
	if len(got.Objectives) != 1 || got.Objectives[0] != (polytrial.Objective{MetricName: "accuracy", Minimize: false}) {
		t.Errorf("objectives %+v, want accuracy maximized", got.Objectives)
	}
	if got.Proto.GetDescription() != "two parameters" {
		t.Errorf("description %q", got.Proto.GetDescription())
	}
}

func TestAskTellLoopCompletesSobolTrialsAndFindsTheBestArm(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "asktell")

	losses := map[int64]float64{}
	for range 4 {
		trial, err := client.Suggest(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if trial.Status != polytrial.StatusRunning || trial.Generator != "sobol" {
			t.Fatalf("suggested trial %d is %s from %q, want RUNNING from sobol", trial.Index, trial.Status, trial.Generator)
		}
		x, okX := trial.Parameters.Float("x")
		n, okN := trial.Parameters.Int("n")
		if !okX || !okN || x < -5 || x > 5 || n < 1 || n > 10 {
			t.Fatalf("trial %d parameters %v are not a float x in [-5, 5] and an int n in [1, 10]", trial.Index, trial.Parameters)
		}
		if _, err := client.Heartbeat(ctx, trial.Name, 0); err != nil {
			t.Fatal(err)
		}
		loss := x*x + float64(n)
		losses[trial.Index] = loss
		var result polytrial.Result = polytrial.Number(loss)
		if trial.Index%2 == 1 {
			result = polytrial.MeanSEM{Mean: loss, SEM: 0.1}
		}
		completed, err := client.CompleteTrial(ctx, trial.Name, result)
		if err != nil {
			t.Fatal(err)
		}
		if completed.Status != polytrial.StatusCompleted || len(completed.Observations) != 1 ||
			completed.Observations[0].Mean != loss {
			t.Fatalf("completed trial %d: %s with %+v, want COMPLETED with loss %v", trial.Index,
				completed.Status, completed.Observations, loss)
		}
		if (trial.Index%2 == 1) != (completed.Observations[0].SEM != nil) {
			t.Errorf("trial %d: SEM %v does not match what was reported", trial.Index, completed.Observations[0].SEM)
		}
	}

	best, err := client.GetBestArm(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	wantIndex, wantLoss := int64(-1), math.Inf(1)
	for index, loss := range losses {
		if loss < wantLoss {
			wantIndex, wantLoss = index, loss
		}
	}
	if len(best.TrialIndices) != 1 || best.TrialIndices[0] != wantIndex || best.Metrics["loss"].Mean != wantLoss {
		t.Errorf("best arm %+v, want trial %d with loss %v", best, wantIndex, wantLoss)
	}
}

func TestAttachedTrialKeepsTheCallersParameters(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "attach")

	trial, err := client.AttachTrial(ctx, id, polytrial.Parameters{"x": polytrial.Float(1.5), "n": polytrial.Int(3)})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := trial.Parameters.Float("x")
	n, _ := trial.Parameters.Int("n")
	if x != 1.5 || n != 3 || trial.Status != polytrial.StatusRunning {
		t.Errorf("attached trial %v is %s, want x=1.5 n=3 RUNNING", trial.Parameters, trial.Status)
	}
	abandoned, err := client.AbandonTrial(ctx, trial.Name, "changed my mind")
	if err != nil {
		t.Fatal(err)
	}
	if abandoned.Status != polytrial.StatusAbandoned || abandoned.StatusReason != "changed my mind" {
		t.Errorf("abandoned trial is %s (%q)", abandoned.Status, abandoned.StatusReason)
	}
}

func TestMissingExperimentIsNotFound(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)

	_, err := client.GetExperiment(ctx, "no-such-experiment")

	var typed *polytrial.Error
	if !errors.As(err, &typed) {
		t.Fatalf("error %v (%T) is not a *polytrial.Error", err, err)
	}
	if !polytrial.IsNotFound(err) || typed.Code != codes.NotFound || typed.Reason != "NOT_FOUND" {
		t.Errorf("error %+v, want NOT_FOUND with reason NOT_FOUND", typed)
	}
	if typed.Metadata["resource_name"] != "experiments/no-such-experiment" {
		t.Errorf("metadata %v does not name the experiment", typed.Metadata)
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("status.Code sees %s through the *Error", status.Code(err))
	}

	// Listing the trials of a missing experiment yields the same error once.
	var errs []error
	for _, err := range client.ListTrials(ctx, "no-such-experiment", polytrial.ListTrialsOptions{}) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !polytrial.IsNotFound(errs[0]) {
		t.Errorf("ListTrials yielded %v, want one NOT_FOUND", errs)
	}
}

func TestMinAboveMaxIsInvalidArgumentNamingTheField(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := newExperimentID("badspace")
	definition, err := polytrial.NewExperiment(id).Float("x", 5, 1).Minimize("loss").Build()
	if err != nil {
		t.Fatal(err)
	}

	_, err = client.CreateExperiment(ctx, definition)

	var typed *polytrial.Error
	if !errors.As(err, &typed) || !polytrial.IsInvalidArgument(err) {
		t.Fatalf("error %v, want INVALID_ARGUMENT", err)
	}
	if len(typed.FieldViolations) == 0 {
		t.Fatalf("INVALID_ARGUMENT %q carries no field violation", typed.Message)
	}
	violation := typed.FieldViolations[0]
	if !strings.Contains(violation.Field, "search_space.parameters[0]") || violation.Description == "" {
		t.Errorf("violation %+v does not name the first parameter", violation)
	}
	// A refused request stores nothing.
	if _, err := client.GetExperiment(ctx, id); !polytrial.IsNotFound(err) {
		t.Errorf("after the refusal GetExperiment answered %v, want NOT_FOUND", err)
	}
}

func TestCompletingTwiceIsFailedPreconditionAndChangesNothing(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "twice")
	trial, err := client.Suggest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CompleteTrial(ctx, trial.Name, polytrial.Metrics{"loss": polytrial.Number(1)}); err != nil {
		t.Fatal(err)
	}

	_, err = client.CompleteTrial(ctx, trial.Name, polytrial.Metrics{"loss": polytrial.Number(2)})

	if !polytrial.IsFailedPrecondition(err) || polytrial.CodeOf(err) != codes.FailedPrecondition {
		t.Fatalf("second completion answered %v, want FAILED_PRECONDITION", err)
	}
	stored, err := client.GetTrial(ctx, trial.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Observations) != 1 || stored.Observations[0].Mean != 1 {
		t.Errorf("stored observations %+v, want only the first completion's loss 1", stored.Observations)
	}
}

func TestListTrialsWalksEveryPage(t *testing.T) {
	ctx := testContext(t)
	var listCalls atomic.Int32
	countLists := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/ListTrials") {
			listCalls.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	client := dial(t, polytrial.WithDialOptions(grpc.WithUnaryInterceptor(countLists)))
	id := createSobol(t, ctx, client, "paging")
	if _, err := client.SuggestTrials(ctx, id, 5, polytrial.SuggestOptions{}); err != nil {
		t.Fatal(err)
	}

	var indices []int64
	for trial, err := range client.ListTrials(ctx, id, polytrial.ListTrialsOptions{PageSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		indices = append(indices, trial.Index)
	}

	if fmt.Sprint(indices) != "[0 1 2 3 4]" {
		t.Errorf("listed trial indices %v, want [0 1 2 3 4]", indices)
	}
	if listCalls.Load() != 3 {
		t.Errorf("%d ListTrials calls for 5 trials at 2 a page, want 3", listCalls.Load())
	}

	// Breaking out of the loop stops fetching.
	listCalls.Store(0)
	for range client.ListTrials(ctx, id, polytrial.ListTrialsOptions{PageSize: 2}) {
		break
	}
	if listCalls.Load() != 1 {
		t.Errorf("%d ListTrials calls after a break on the first trial, want 1", listCalls.Load())
	}
}

func TestLostAnswerIsRetriedWithTheSameRequestIDAndActsOnce(t *testing.T) {
	ctx := testContext(t)
	var mu sync.Mutex
	var requestIDs []string
	// The first SuggestTrials reaches the server, but its answer is "lost":
	// the client sees UNAVAILABLE and must retry with the same request id.
	loseFirstAnswer := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		suggest, ok := req.(*pb.SuggestTrialsRequest)
		if !ok {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		requestIDs = append(requestIDs, suggest.GetRequestId())
		if len(requestIDs) == 1 {
			return status.Error(codes.Unavailable, "the answer was lost on the way")
		}
		return err
	}
	policy := polytrial.DefaultRetryPolicy
	policy.InitialBackoff = 10 * time.Millisecond
	client := dial(t, polytrial.WithDialOptions(grpc.WithUnaryInterceptor(loseFirstAnswer)),
		polytrial.WithRetryPolicy(policy))
	id := createSobol(t, ctx, client, "retry")

	trial, err := client.Suggest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	if len(requestIDs) != 2 || requestIDs[0] != requestIDs[1] || requestIDs[0] == "" {
		t.Fatalf("request ids of the attempts %q, want two equal non-empty ones", requestIDs)
	}
	var count int
	for _, err := range client.ListTrials(ctx, id, polytrial.ListTrialsOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		count++
	}
	if count != 1 || trial.Index != 0 {
		t.Errorf("%d trials stored (answered index %d), want the one trial 0", count, trial.Index)
	}
}

// deadlineRecorder is a unary interceptor that records, by method
// ("SuggestTrials"), how long each attempt had left before its deadline when
// it went out; an attempt without a deadline is recorded as 0.
type deadlineRecorder struct {
	mu   sync.Mutex
	left map[string][]time.Duration
}

func (r *deadlineRecorder) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var left time.Duration
	if deadline, ok := ctx.Deadline(); ok {
		left = time.Until(deadline)
	}
	name := method[strings.LastIndex(method, "/")+1:]
	r.mu.Lock()
	r.left[name] = append(r.left[name], left)
	r.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

// wantDeadlines fails the test unless every attempt of the methods the
// recorder saw had want left, give or take the few seconds a busy machine
// takes between computing the deadline and sending the call.
func (r *deadlineRecorder) wantDeadlines(t *testing.T, want func(method string) time.Duration) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for method, lefts := range r.left {
		for _, left := range lefts {
			if left > want(method) || left < want(method)-5*time.Second {
				t.Errorf("a %s attempt had %s before its deadline, want %s", method, left, want(method))
			}
		}
	}
}

func TestSuggestAttemptsHaveTheSuggestTimeoutAndEveryOtherCallTheCallTimeout(t *testing.T) {
	// The caller's context outlasts both timeouts, so it cuts no deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	recorder := &deadlineRecorder{left: map[string][]time.Duration{}}
	// 90 s is past the default policy's 60 s budget: the budget must not cut
	// the suggest attempt to 60 s.
	client := dial(t, polytrial.WithTimeout(20*time.Second), polytrial.WithSuggestTimeout(90*time.Second),
		polytrial.WithDialOptions(grpc.WithUnaryInterceptor(recorder.intercept)))
	id := createSobol(t, ctx, client, "suggest-deadline")
	evaluate := func(_ context.Context, p polytrial.Parameters) (polytrial.Result, error) {
		x, _ := p.Float("x")
		return polytrial.Number(x * x), nil
	}

	// Optimize reaches SuggestTrials through Suggest; a batch goes direct.
	if _, err := polytrial.Optimize(ctx, client, id, evaluate, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := client.SuggestTrials(ctx, id, 2, polytrial.SuggestOptions{Batch: true}); err != nil {
		t.Fatal(err)
	}

	recorder.wantDeadlines(t, func(method string) time.Duration {
		if method == "SuggestTrials" {
			return 90 * time.Second
		}
		return 20 * time.Second
	})
	for _, method := range []string{"SuggestTrials", "CreateExperiment", "GetExperiment", "CompleteTrial", "GetBestArm"} {
		if len(recorder.left[method]) == 0 {
			t.Errorf("no %s call was seen; seen %v", method, recorder.left)
		}
	}
	if got := len(recorder.left["SuggestTrials"]); got != 3 {
		t.Errorf("%d SuggestTrials attempts, want 3 (two by Optimize, one batch)", got)
	}
}

func TestSuggestAttemptsDefaultToFiveMinutesAndOtherCallsToThirtySeconds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	recorder := &deadlineRecorder{left: map[string][]time.Duration{}}
	client := dial(t, polytrial.WithDialOptions(grpc.WithUnaryInterceptor(recorder.intercept)))
	id := createSobol(t, ctx, client, "suggest-default-deadline")

	if _, err := client.Suggest(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetExperiment(ctx, id); err != nil {
		t.Fatal(err)
	}

	if polytrial.DefaultSuggestTimeout != 300*time.Second || polytrial.DefaultTimeout != 30*time.Second {
		t.Fatalf("DefaultSuggestTimeout %s and DefaultTimeout %s, want 5m0s and 30s as in the Python client",
			polytrial.DefaultSuggestTimeout, polytrial.DefaultTimeout)
	}
	recorder.wantDeadlines(t, func(method string) time.Duration {
		if method == "SuggestTrials" {
			return polytrial.DefaultSuggestTimeout
		}
		return polytrial.DefaultTimeout
	})
	if len(recorder.left["SuggestTrials"]) != 1 || len(recorder.left["GetExperiment"]) != 1 {
		t.Errorf("attempts seen %v, want one SuggestTrials and one GetExperiment", recorder.left)
	}
}

func TestOptimizeMarksAFailingEvaluationFailedAndGoesOn(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "optimize")
	calls := 0
	evaluate := func(_ context.Context, p polytrial.Parameters) (polytrial.Result, error) {
		calls++
		if calls == 2 {
			return nil, errors.New("the simulation diverged")
		}
		if calls == 3 {
			return polytrial.Number(math.NaN()), nil
		}
		x, _ := p.Float("x")
		return polytrial.Number(x * x), nil
	}

	summary, err := polytrial.Optimize(ctx, client, id, evaluate, 4)
	if err != nil {
		t.Fatal(err)
	}

	if len(summary.Trials) != 4 || summary.NumCompleted() != 2 || summary.NumFailed() != 2 {
		t.Fatalf("outcomes %+v, want 2 completed and 2 failed", summary.Trials)
	}
	diverged, err := client.GetTrial(ctx, polytrial.TrialName(id, summary.Trials[1].Index))
	if err != nil {
		t.Fatal(err)
	}
	if diverged.Status != polytrial.StatusFailed || diverged.StatusReason != "the simulation diverged" {
		t.Errorf("the trial whose evaluation erred is %s (%q), want FAILED with the error", diverged.Status, diverged.StatusReason)
	}
	if summary.Trials[2].Status != polytrial.StatusFailed || !strings.Contains(summary.Trials[2].Reason, "NaN") {
		t.Errorf("the NaN trial is %+v, want FAILED naming NaN", summary.Trials[2])
	}
	if summary.Best == nil || summary.Best.TrialIndices[0] == summary.Trials[1].Index {
		t.Errorf("best arm %+v, want one of the completed trials", summary.Best)
	}
}

func TestOptimizeAbandonsTheTrialWhenCancelled(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "cancel")
	runCtx, cancel := context.WithCancel(ctx)
	evaluate := func(ctx context.Context, _ polytrial.Parameters) (polytrial.Result, error) {
		cancel()
		return nil, ctx.Err()
	}

	_, err := polytrial.Optimize(runCtx, client, id, evaluate, 3)

	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Optimize answered %v, want context.Canceled", err)
	}
	trial, err := client.GetTrial(ctx, polytrial.TrialName(id, 0))
	if err != nil {
		t.Fatal(err)
	}
	if trial.Status != polytrial.StatusAbandoned {
		t.Errorf("the interrupted trial is %s, want ABANDONED", trial.Status)
	}
}

func TestDialWithoutAServerIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()

	// Port 1 on loopback has no listener on a test machine.
	_, err := polytrial.Dial(ctx, "127.0.0.1:1")

	if !polytrial.IsUnavailable(err) {
		t.Errorf("Dial answered %v, want UNAVAILABLE", err)
	}
}

func TestTrialIsToldByNameFromANewClient(t *testing.T) {
	ctx := testContext(t)
	asker := dial(t)
	id := createSobol(t, ctx, asker, "restart")
	trial, err := asker.Suggest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	_ = asker.Close()

	// A new client knows nothing of the experiment: it fetches the objective
	// a bare number stands for.
	completed, err := dial(t).CompleteTrial(ctx, trial.Name, polytrial.Number(2.5))
	if err != nil {
		t.Fatal(err)
	}

	if completed.Status != polytrial.StatusCompleted || len(completed.Observations) != 1 {
		t.Fatalf("completed trial is %s with %+v", completed.Status, completed.Observations)
	}
	o := completed.Observations[0]
	if o.ArmName != "0_0" || o.MetricName != "loss" || o.Mean != 2.5 {
		t.Errorf("observation %+v, want arm 0_0, loss 2.5", o)
	}
}

func TestNaNMeanIsInvalidArgumentNamingArmAndMetricAndTheTrialStaysRunning(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "nan")
	trial, err := client.Suggest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	_, err = client.CompleteTrial(ctx, trial.Name, polytrial.Number(math.NaN()))

	var typed *polytrial.Error
	if !errors.As(err, &typed) || typed.Code != codes.InvalidArgument {
		t.Fatalf("a NaN mean answered %v, want INVALID_ARGUMENT", err)
	}
	fields := ""
	for _, v := range typed.FieldViolations {
		fields += " " + v.Field
	}
	if !strings.Contains(typed.Message+fields, "0_0") || !strings.Contains(typed.Message, "loss") {
		t.Errorf("refusal %q (fields%s) does not name arm 0_0 and metric loss", typed.Message, fields)
	}
	stored, err := client.GetTrial(ctx, trial.Name)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != polytrial.StatusRunning || len(stored.Observations) != 0 {
		t.Errorf("after the refusal the trial is %s with %d observations", stored.Status, len(stored.Observations))
	}
}

func TestBestArmBeforeAnyDataIsFailedPrecondition(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "nodata")
	if _, err := client.SuggestTrials(ctx, id, 2, polytrial.SuggestOptions{}); err != nil {
		t.Fatal(err)
	}

	_, err := client.GetBestArm(ctx, id)

	if !polytrial.IsFailedPrecondition(err) {
		t.Errorf("GetBestArm without data answered %v, want FAILED_PRECONDITION", err)
	}
}

func TestBatchTrialIsCompletedByArm(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "batch")
	trials, err := client.SuggestTrials(ctx, id, 2, polytrial.SuggestOptions{Batch: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != 1 || len(trials[0].Arms) != 2 {
		t.Fatalf("a batch of 2 gave %d trials", len(trials))
	}
	batch := trials[0]

	completed, err := client.CompleteTrial(ctx, batch.Name, polytrial.ByArm{
		batch.Arms[0].Name: polytrial.Number(1),
		batch.Arms[1].Name: polytrial.Metrics{"loss": polytrial.MeanSEM{Mean: 2, SEM: 0.5}},
	})
	if err != nil {
		t.Fatal(err)
	}

	got := map[string]float64{}
	for _, o := range completed.Observations {
		got[o.ArmName] = o.Mean
	}
	if completed.Status != polytrial.StatusCompleted || got[batch.Arms[0].Name] != 1 || got[batch.Arms[1].Name] != 2 {
		t.Errorf("batch trial is %s with %v", completed.Status, got)
	}
}

func TestCreateOrGetReturnsTheExistingExperimentAndRefusesADifferentOne(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := newExperimentID("createorget")
	build := func(metric string) *pb.Experiment {
		definition, err := polytrial.NewExperiment(id).Float("x", 0, 1).Minimize(metric).Build()
		if err != nil {
			t.Fatal(err)
		}
		return definition
	}
	first, err := client.CreateOrGetExperiment(ctx, build("loss"))
	if err != nil {
		t.Fatal(err)
	}

	second, err := client.CreateOrGetExperiment(ctx, build("loss"))
	if err != nil || second.Name != first.Name {
		t.Fatalf("the second create-or-get answered %v, %v", second, err)
	}
	_, err = client.CreateOrGetExperiment(ctx, build("error"))
	if !polytrial.IsAlreadyExists(err) {
		t.Errorf("create-or-get with another objective answered %v, want ALREADY_EXISTS", err)
	}
}
