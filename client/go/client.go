// Package polytrial is the Go client of a Polytrial server: ask/tell over
// gRPC, and a synchronous Optimize loop.
//
//	client, err := polytrial.Dial(ctx, "localhost:50051")
//	if err != nil { ... }
//	defer client.Close()
//	definition, _ := polytrial.NewExperiment("quadratic").Float("x", -5, 5).Minimize("loss").Build()
//	if _, err := client.CreateExperiment(ctx, definition); err != nil { ... }
//	trial, err := client.Suggest(ctx, "quadratic")                       // ask
//	x, _ := trial.Parameters.Float("x")
//	_, err = client.CompleteTrial(ctx, trial.Name, polytrial.Number(x*x)) // tell
//
// Errors the server answers on purpose come back as *Error (use errors.As, or
// IsNotFound and its siblings), and so do requests the client refuses before
// sending them (InvalidArgument naming the field); every other error is
// returned unchanged. Reads, and the mutations that carry a request id
// (SuggestTrials, AttachTrial, CompleteTrial, StartOrchestration), are
// retried on Unavailable and DeadlineExceeded with the same request id, by
// default for up to 60 s (DefaultRetryPolicy), so a call bridges a server
// restart; other mutations are made once, since repeating a state change
// that did happen would answer FailedPrecondition. Each attempt has a 30 s
// deadline (WithTimeout), except SuggestTrials' 300 s (WithSuggestTimeout),
// whose budget grows to match.
package polytrial

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
)

// DefaultTimeout is the deadline of one call attempt unless WithTimeout says
// otherwise. SuggestTrials has its own, DefaultSuggestTimeout.
const DefaultTimeout = 30 * time.Second

// DefaultSuggestTimeout is the deadline of one SuggestTrials attempt unless
// WithSuggestTimeout says otherwise, as in the Python client: a
// Bayesian-optimization batch of many trials can take minutes on a busy
// server. A retry after a missed deadline carries the same request id, so the
// server still makes the trials once.
const DefaultSuggestTimeout = 300 * time.Second

// DefaultDialTimeout bounds Dial's wait for the server when ctx has no
// deadline.
const DefaultDialTimeout = 10 * time.Second

// Client is a connection to a Polytrial server. It is safe for concurrent use.
type Client struct {
	address     string
	conn        *grpc.ClientConn
	experiments pb.ExperimentServiceClient
	trials      pb.TrialServiceClient
	results     pb.ResultServiceClient
	timeout     time.Duration
	// suggestTimeout is SuggestTrials' per-attempt deadline, in place of timeout.
	suggestTimeout time.Duration
	retry          RetryPolicy
	logger         *slog.Logger

	// Objectives never change after creation, so the names needed to expand
	// a bare number into an observation are fetched once per experiment.
	mu         sync.Mutex // guards objectives
	objectives map[string][]string
}

type options struct {
	timeout        time.Duration
	suggestTimeout time.Duration
	retry          RetryPolicy
	credentials    credentials.TransportCredentials
	dialOptions    []grpc.DialOption
	logger         *slog.Logger
}

// Option configures Dial.
type Option func(*options)

// WithTimeout sets the deadline of each call attempt (DefaultTimeout), except
// SuggestTrials' (see WithSuggestTimeout).
func WithTimeout(timeout time.Duration) Option {
	return func(o *options) { o.timeout = timeout }
}

// WithSuggestTimeout sets the deadline of each SuggestTrials attempt
// (DefaultSuggestTimeout), which Suggest and Optimize use too. When it is
// longer than the retry policy's TotalTimeout, the call's budget grows to it,
// so the budget never cuts the first attempt short.
func WithSuggestTimeout(timeout time.Duration) Option {
	return func(o *options) { o.suggestTimeout = timeout }
}

// WithRetryPolicy sets how calls that are safe to repeat are retried
// (DefaultRetryPolicy); NoRetry turns retries off.
func WithRetryPolicy(policy RetryPolicy) Option {
	return func(o *options) { o.retry = policy }
}

// WithTransportCredentials opens a TLS channel; without it the channel is
// plaintext.
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(o *options) { o.credentials = creds }
}

// WithDialOptions passes extra options to grpc.NewClient (interceptors, say).
func WithDialOptions(dialOptions ...grpc.DialOption) Option {
	return func(o *options) { o.dialOptions = append(o.dialOptions, dialOptions...) }
}

// WithLogger sets where retries are logged (slog.Default()).
func WithLogger(logger *slog.Logger) Option {
	return func(o *options) { o.logger = logger }
}

// Dial connects to the server at address and returns once the channel is
// ready. The address is "host:port" ("localhost:50051", "[::1]:50051"),
// "unix:/path", or any gRPC target with a scheme ("dns:///host:port").
//
// Errors: InvalidArgument, at once and without a connection attempt, for an
// empty address, an empty host, a host without a port, a port outside
// 1-65535, or an option out of range;
// Unavailable when no server answered before ctx ended, or within
// DefaultDialTimeout when ctx has no deadline.
func Dial(ctx context.Context, address string, opts ...Option) (*Client, error) {
	o := options{
		timeout: DefaultTimeout, suggestTimeout: DefaultSuggestTimeout,
		retry: DefaultRetryPolicy, logger: slog.Default(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkAddress(address); err != nil {
		return nil, err
	}
	if o.timeout <= 0 {
		return nil, invalidArgument("timeout", "the call timeout (WithTimeout) must be positive, not %s", o.timeout)
	}
	if o.suggestTimeout <= 0 {
		return nil, invalidArgument("suggest_timeout",
			"the SuggestTrials timeout (WithSuggestTimeout) must be positive, not %s", o.suggestTimeout)
	}
	if err := o.retry.validate(); err != nil {
		return nil, err
	}
	creds := o.credentials
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(address, append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, o.dialOptions...)...)
	if err != nil {
		return nil, invalidArgument("address", "cannot open a channel to %q: %v", address, err)
	}

	if _, hasDeadline := ctx.Deadline(); !hasDeadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultDialTimeout)
		defer cancel()
	}
	for state := conn.GetState(); state != connectivity.Ready; state = conn.GetState() {
		// An idle channel (new, or back from a failed attempt) connects only
		// when asked to.
		if state == connectivity.Idle {
			conn.Connect()
		}
		if !conn.WaitForStateChange(ctx, state) {
			_ = conn.Close()
			return nil, &Error{Code: codes.Unavailable, Message: fmt.Sprintf(
				"no Polytrial server answered at %s before the dial context ended", address)}
		}
	}

	return &Client{
		address:        address,
		conn:           conn,
		experiments:    pb.NewExperimentServiceClient(conn),
		trials:         pb.NewTrialServiceClient(conn),
		results:        pb.NewResultServiceClient(conn),
		timeout:        o.timeout,
		suggestTimeout: o.suggestTimeout,
		retry:          o.retry,
		logger:         o.logger,
		objectives:     map[string][]string{},
	}, nil
}

// checkAddress refuses the addresses that could never reach a server, which
// gRPC would otherwise try to resolve until the dial timeout: an empty one, a
// host without a port (gRPC would quietly pick 443), an empty host (":50051")
// and a port outside 1-65535, as the Python client does. Targets whose
// scheme names a resolver other than dns (unix:, passthrough:, ...) are left
// to that resolver, as grpc.NewClient leaves them.
func checkAddress(address string) error {
	const example = `give "host:port", for example "localhost:50051"`
	if strings.TrimSpace(address) == "" {
		return invalidArgument("address", "the server address is empty; %s", example)
	}
	hostPort := address
	if scheme, rest, found := strings.Cut(address, ":"); found && resolver.Get(scheme) != nil {
		if scheme != "dns" {
			return nil
		}
		// dns:host:port, dns:///host:port or dns://authority/host:port.
		hostPort = rest[strings.LastIndex(rest, "/")+1:]
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil || port == "" {
		return invalidArgument("address", "%q has no port; %s", address, example)
	}
	// Port 0 reaches no server, and an empty host is refused as the Python
	// client refuses it, rather than left to resolve to this machine.
	if strings.TrimSpace(host) == "" {
		return invalidArgument("address", "%q has no host; %s", address, example)
	}
	if number, err := strconv.ParseUint(port, 10, 16); err != nil || number == 0 {
		return invalidArgument("address", "%q: the port %q is not a number from 1 to 65535; %s", address, port, example)
	}
	return nil
}

// Close closes the channel; calls in flight are cancelled.
func (c *Client) Close() error { return c.conn.Close() }

// Experiments ----------------------------------------------------------------

// CreateExperiment creates an experiment from a definition (see
// NewExperiment). It is made once: a repeat after a lost answer would be
// refused as AlreadyExists.
//
// Errors: InvalidArgument with FieldViolations naming the bad fields;
// AlreadyExists when the id is taken.
func (c *Client) CreateExperiment(ctx context.Context, experiment *pb.Experiment) (*Experiment, error) {
	request := &pb.CreateExperimentRequest{Experiment: experiment}
	message, err := invoke(ctx, c, "CreateExperiment", false, "", c.experiments.CreateExperiment, request)
	if err != nil {
		return nil, err
	}
	return c.remember(experimentFromProto(message)), nil
}

// CreateOrGetExperiment creates an experiment, or returns the existing one
// when an experiment with the same id, parameter names and objectives exists
// already: create-or-get for many workers started at once. Unlike
// CreateExperiment it is retried.
//
// Errors: AlreadyExists when the id is taken by an experiment with other
// parameters or objectives; InvalidArgument as for CreateExperiment.
func (c *Client) CreateOrGetExperiment(ctx context.Context, experiment *pb.Experiment) (*Experiment, error) {
	request := &pb.CreateExperimentRequest{Experiment: experiment}
	message, err := invoke(ctx, c, "CreateExperiment", true, "", c.experiments.CreateExperiment, request)
	if err == nil {
		return c.remember(experimentFromProto(message)), nil
	}
	if !IsAlreadyExists(err) {
		return nil, err
	}
	existing, err := c.GetExperiment(ctx, experiment.GetExperimentId())
	if err != nil {
		return nil, err
	}
	wanted := experimentFromProto(experiment)
	if fmt.Sprint(existing.ParameterNames, existing.Objectives) != fmt.Sprint(wanted.ParameterNames, wanted.Objectives) {
		return nil, &Error{Code: codes.AlreadyExists, Reason: "ALREADY_EXISTS", Message: fmt.Sprintf(
			"%s exists with parameters %v and objectives %v, not the ones asked for",
			existing.Name, existing.ParameterNames, existing.Objectives)}
	}
	return existing, nil
}

// GetExperiment returns an experiment, given its id or name.
//
// Errors: NotFound.
func (c *Client) GetExperiment(ctx context.Context, experiment string) (*Experiment, error) {
	request := &pb.GetExperimentRequest{Name: experimentName(experiment)}
	message, err := invoke(ctx, c, "GetExperiment", true, "", c.experiments.GetExperiment, request)
	if err != nil {
		return nil, err
	}
	return c.remember(experimentFromProto(message)), nil
}

// ListExperiments yields every experiment in order of creation, fetching
// pageSize at a time (0 is the server's default). It stops after the first
// error it yields.
func (c *Client) ListExperiments(ctx context.Context, pageSize int32) iter.Seq2[*Experiment, error] {
	return func(yield func(*Experiment, error) bool) {
		request := &pb.ListExperimentsRequest{PageSize: pageSize}
		for {
			response, err := invoke(ctx, c, "ListExperiments", true, "", c.experiments.ListExperiments, request)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, message := range response.GetExperiments() {
				if !yield(experimentFromProto(message), nil) {
					return
				}
			}
			if response.GetNextPageToken() == "" {
				return
			}
			request = &pb.ListExperimentsRequest{PageSize: pageSize, PageToken: response.GetNextPageToken()}
		}
	}
}

// DeleteExperiment deletes an experiment with its trials, data and ended
// orchestration.
//
// Errors: NotFound; FailedPrecondition (reason ORCHESTRATION_RUNNING) while its
// orchestration is RUNNING, when nothing is deleted: stop it first with
// StopOrchestration, which also stops its trials in flight.
func (c *Client) DeleteExperiment(ctx context.Context, experiment string) error {
	request := &pb.DeleteExperimentRequest{Name: experimentName(experiment)}
	_, err := invoke(ctx, c, "DeleteExperiment", false, "", c.experiments.DeleteExperiment, request)
	return err
}

// Trials: reading ------------------------------------------------------------

// GetTrial returns a trial by name ("experiments/{e}/trials/{index}").
//
// Errors: NotFound.
func (c *Client) GetTrial(ctx context.Context, trialName string) (*Trial, error) {
	request := &pb.GetTrialRequest{Name: trialName}
	return trialCall(ctx, c, "GetTrial", true, "", c.trials.GetTrial, request)
}

// ListTrialsOptions narrows and pages ListTrials.
type ListTrialsOptions struct {
	// Statuses keeps only trials in one of these statuses; empty means all.
	Statuses []TrialStatus
	// PageSize is the number of trials per call; 0 is the server's default.
	PageSize int32
}

// ListTrials yields an experiment's trials by index, fetching page by page.
// It stops after the first error it yields (NotFound for a missing
// experiment, say).
func (c *Client) ListTrials(ctx context.Context, experiment string, opts ListTrialsOptions) iter.Seq2[*Trial, error] {
	return func(yield func(*Trial, error) bool) {
		pageToken := ""
		for {
			request := &pb.ListTrialsRequest{
				Parent: experimentName(experiment), Statuses: opts.Statuses,
				PageSize: opts.PageSize, PageToken: pageToken,
			}
			response, err := invoke(ctx, c, "ListTrials", true, "", c.trials.ListTrials, request)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, message := range response.GetTrials() {
				if !yield(trialFromProto(message), nil) {
					return
				}
			}
			pageToken = response.GetNextPageToken()
			if pageToken == "" {
				return
			}
		}
	}
}

// Trials: asking -------------------------------------------------------------

// SuggestOptions shapes SuggestTrials.
type SuggestOptions struct {
	// Batch makes one batch trial of count arms instead of count trials.
	Batch bool
	// Pinned holds these parameters at fixed values in every arm.
	Pinned Parameters
	// TTL is each trial's time-to-live: a trial without a heartbeat or a
	// result for that long is declared lost. 0 means none.
	TTL time.Duration
	// RequestID is the idempotency key; one is drawn when empty.
	RequestID string
}

// SuggestTrials generates count new trials (or one batch trial of count
// arms), RUNNING and ready for the caller to evaluate. Each attempt has the
// suggest deadline (WithSuggestTimeout, 300 s by default), not the client's
// call timeout, since a Bayesian-optimization batch can take minutes.
//
// Errors: NotFound; FailedPrecondition with reason SEARCH_SPACE_EXHAUSTED
// (IsSearchSpaceExhausted) when a finite space has no new arm left.
func (c *Client) SuggestTrials(ctx context.Context, experiment string, count int32, opts SuggestOptions) ([]*Trial, error) {
	pinned, err := opts.Pinned.proto("pinned_parameters")
	if err != nil {
		return nil, err
	}
	requestID := opts.RequestID
	if requestID == "" {
		requestID = NewRequestID()
	}
	request := &pb.SuggestTrialsRequest{
		Parent: experimentName(experiment), Count: count, Batch: opts.Batch,
		PinnedParameters: pinned, RequestId: requestID, TtlS: opts.TTL.Seconds(),
	}
	response, err := invokeWithin(ctx, c, "SuggestTrials", true, requestID, c.suggestTimeout,
		c.trials.SuggestTrials, request)
	if err != nil {
		return nil, err
	}
	trials := make([]*Trial, 0, len(response.GetTrials()))
	for _, message := range response.GetTrials() {
		trials = append(trials, trialFromProto(message))
	}
	return trials, nil
}

// Suggest generates one single-arm trial: the "ask" of ask/tell.
func (c *Client) Suggest(ctx context.Context, experiment string) (*Trial, error) {
	trials, err := c.SuggestTrials(ctx, experiment, 1, SuggestOptions{})
	if err != nil {
		return nil, err
	}
	if len(trials) != 1 {
		return nil, fmt.Errorf("polytrial: SuggestTrials answered %d trials for a count of 1", len(trials))
	}
	return trials[0], nil
}

// AttachTrial makes a RUNNING trial of parameterizations the caller chose:
// one arm makes a single-arm trial, several a batch trial.
//
// Errors: InvalidArgument when a value is out of bounds, of the wrong type,
// or missing (no trial is made).
func (c *Client) AttachTrial(ctx context.Context, experiment string, arms ...Parameters) (*Trial, error) {
	request := &pb.AttachTrialRequest{Parent: experimentName(experiment), RequestId: NewRequestID()}
	for i, arm := range arms {
		parameters, err := arm.proto(fmt.Sprintf("arms[%d].parameters", i))
		if err != nil {
			return nil, err
		}
		request.Arms = append(request.Arms, &pb.ArmInput{Parameters: parameters})
	}
	return trialCall(ctx, c, "AttachTrial", true, request.RequestId, c.trials.AttachTrial, request)
}

// Trials: telling ------------------------------------------------------------

// CompleteTrial records final data of a RUNNING trial and moves it to
// COMPLETED: the "tell" of ask/tell. A Number or MeanSEM is the experiment's
// single objective; Metrics names each metric; ByArm gives a batch trial's
// result per arm.
//
// Errors: FailedPrecondition when the trial is not RUNNING (completed
// already, say; nothing changes); InvalidArgument when a value is not finite
// or a metric is unknown; NotFound.
func (c *Client) CompleteTrial(ctx context.Context, trialName string, result Result) (*Trial, error) {
	experimentID, index, err := splitTrialName(trialName)
	if err != nil {
		return nil, err
	}
	if result == nil {
		return nil, invalidArgument("observations", "trial %s: the result is nil", trialName)
	}
	var objectives []string
	if needsObjectives(result) {
		if objectives, err = c.objectiveNames(ctx, experimentID); err != nil {
			return nil, err
		}
	}
	// Arms are named "{trial index}_{arm index}" by the API's rule, so a
	// single-arm trial's arm name is known without a round trip.
	observations, err := result.observations(fmt.Sprintf("%d_0", index), objectives)
	if err != nil {
		return nil, err
	}
	requestID := NewRequestID()
	request := &pb.CompleteTrialRequest{Name: trialName, Observations: observations, RequestId: requestID}
	return trialCall(ctx, c, "CompleteTrial", true, requestID, c.trials.CompleteTrial, request)
}

// FailTrial moves a trial to FAILED with a reason. It is made once.
//
// Errors: FailedPrecondition when the trial is final already.
func (c *Client) FailTrial(ctx context.Context, trialName, reason string) (*Trial, error) {
	request := &pb.FailTrialRequest{Name: trialName, Reason: reason}
	return trialCall(ctx, c, "FailTrial", false, "", c.trials.FailTrial, request)
}

// AbandonTrial moves a trial to ABANDONED with a reason; its arm may be
// suggested again. It is made once.
//
// Errors: FailedPrecondition when the trial is final already.
func (c *Client) AbandonTrial(ctx context.Context, trialName, reason string) (*Trial, error) {
	request := &pb.AbandonTrialRequest{Name: trialName, Reason: reason}
	return trialCall(ctx, c, "AbandonTrial", false, "", c.trials.AbandonTrial, request)
}

// Heartbeat renews the time-to-live of a RUNNING trial; ttl 0 keeps the
// previous length. Renewing twice is harmless, so it is retried.
//
// Errors: FailedPrecondition when the trial is not RUNNING (it may have been
// declared lost already).
func (c *Client) Heartbeat(ctx context.Context, trialName string, ttl time.Duration) (*Trial, error) {
	request := &pb.HeartbeatTrialRequest{Name: trialName, TtlS: ttl.Seconds()}
	return trialCall(ctx, c, "HeartbeatTrial", true, "", c.trials.HeartbeatTrial, request)
}

// Runners --------------------------------------------------------------------

// DeployTrial deploys a CANDIDATE trial through the experiment's runner, or
// through runner when it is not nil (for this trial only). It answers at
// once with the trial STAGED or RUNNING; RefreshTrial follows it from there.
// It is made once, like the other state changes: the server gives every
// deployment of a trial the same key, so calling it again after an error
// never starts a second job.
//
// Errors: FailedPrecondition when the trial is not CANDIDATE or has no
// runner; Unavailable (the trial stays CANDIDATE with its DeploymentError)
// when the runner cannot be reached or has too many calls in flight (reason
// ReasonRunnerBusy); DeadlineExceeded when it is too slow; Aborted when
// another deployment of the trial is in flight through a different runner.
func (c *Client) DeployTrial(ctx context.Context, trialName string, runner *RunnerConfig) (*Trial, error) {
	request := &pb.DeployTrialRequest{Name: trialName}
	if runner != nil {
		request.Runner = runner.toProto()
	}
	return trialCall(ctx, c, "DeployTrial", false, "", c.trials.DeployTrial, request)
}

// StopTrial asks the trial's runner to stop its job, fetches the job's last
// data and records the outcome: EARLY_STOPPED when a RUNNING trial has data,
// ABANDONED otherwise. It is made once.
//
// Errors: FailedPrecondition when the trial is not STAGED or RUNNING, or the
// runner refused; Unavailable or DeadlineExceeded when the runner could not
// be reached in time (nothing changed).
func (c *Client) StopTrial(ctx context.Context, trialName, reason string) (*Trial, error) {
	request := &pb.StopTrialRequest{Name: trialName, Reason: reason}
	return trialCall(ctx, c, "StopTrial", false, "", c.trials.StopTrial, request)
}

// RefreshTrial polls a deployed trial's runner, fetches its metric data and
// stores what changed (a completed job completes the trial). A trial that is
// not STAGED or RUNNING comes back unchanged. It is made once.
//
// Errors: FailedPrecondition when the trial has no runner or the runner
// refused; Unavailable or DeadlineExceeded when the runner could not be
// reached in time (nothing changed).
func (c *Client) RefreshTrial(ctx context.Context, trialName string) (*Trial, error) {
	request := &pb.RefreshTrialRequest{Name: trialName}
	return trialCall(ctx, c, "RefreshTrial", false, "", c.trials.RefreshTrial, request)
}

// Results --------------------------------------------------------------------

// GetBestArm returns the best arm by observed mean of the single objective.
//
// Errors: FailedPrecondition when no trial has data for the objective yet.
func (c *Client) GetBestArm(ctx context.Context, experiment string) (*ArmResult, error) {
	request := &pb.GetBestArmRequest{Parent: experimentName(experiment)}
	response, err := invoke(ctx, c, "GetBestArm", true, "", c.results.GetBestArm, request)
	if err != nil {
		return nil, err
	}
	return armResultFromProto(response.GetBest()), nil
}

// GetParetoFrontier returns the Pareto-optimal arms of a multi-objective
// experiment.
//
// Errors: FailedPrecondition when no trial has data for every objective yet.
func (c *Client) GetParetoFrontier(ctx context.Context, experiment string) ([]*ArmResult, error) {
	request := &pb.GetParetoFrontierRequest{Parent: experimentName(experiment)}
	response, err := invoke(ctx, c, "GetParetoFrontier", true, "", c.results.GetParetoFrontier, request)
	if err != nil {
		return nil, err
	}
	arms := make([]*ArmResult, 0, len(response.GetArms()))
	for _, message := range response.GetArms() {
		arms = append(arms, armResultFromProto(message))
	}
	return arms, nil
}

// Plumbing -------------------------------------------------------------------

func (c *Client) remember(experiment *Experiment) *Experiment {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.objectives[experiment.ID] = experiment.objectiveNames()
	return experiment
}

func (c *Client) objectiveNames(ctx context.Context, experimentID string) ([]string, error) {
	c.mu.Lock()
	names, found := c.objectives[experimentID]
	c.mu.Unlock()
	if found {
		return names, nil
	}
	experiment, err := c.GetExperiment(ctx, experimentID)
	if err != nil {
		return nil, err
	}
	return experiment.objectiveNames(), nil
}

func trialCall[Req any](ctx context.Context, c *Client, method string, retry bool, requestID string,
	rpc func(context.Context, Req, ...grpc.CallOption) (*pb.Trial, error), request Req) (*Trial, error) {
	message, err := invoke(ctx, c, method, retry, requestID, rpc, request)
	if err != nil {
		return nil, err
	}
	return trialFromProto(message), nil
}

// invoke makes one logical call: attempts with the client's call timeout,
// retries with the same request, and the mapping of the final error to *Error.
func invoke[Req, Res any](ctx context.Context, c *Client, method string, retry bool, requestID string,
	rpc func(context.Context, Req, ...grpc.CallOption) (Res, error), request Req) (Res, error) {
	return invokeWithin(ctx, c, method, retry, requestID, c.timeout, rpc, request)
}

// invokeWithin is invoke with attemptTimeout as each attempt's deadline.
func invokeWithin[Req, Res any](ctx context.Context, c *Client, method string, retry bool, requestID string,
	attemptTimeout time.Duration, rpc func(context.Context, Req, ...grpc.CallOption) (Res, error),
	request Req) (Res, error) {
	policy := NoRetry
	if retry {
		policy = c.retry
	}
	var response Res
	err := callWithRetry(ctx, policy, attemptTimeout, c.logger, method, requestID, func(attemptCtx context.Context) error {
		var err error
		response, err = rpc(attemptCtx, request)
		return err
	})
	if err != nil {
		var zero Res
		return zero, fromRPCError(err)
	}
	return response, nil
}
