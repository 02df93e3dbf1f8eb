package polytrial_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	polytrial "github.com/polytrial/polytrial/client/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// wantInvalidArgument fails the test unless err is the client's typed
// InvalidArgument *Error with one field violation naming field.
func wantInvalidArgument(t *testing.T, err error, field string) {
	t.Helper()
	var typed *polytrial.Error
	if !errors.As(err, &typed) || polytrial.CodeOf(err) != codes.InvalidArgument || !polytrial.IsInvalidArgument(err) {
		t.Fatalf("got %v (%T, code %s), want an InvalidArgument *polytrial.Error", err, err, polytrial.CodeOf(err))
	}
	if len(typed.FieldViolations) == 0 || typed.FieldViolations[0].Field != field {
		t.Fatalf("field violations %+v (%v), want one naming %s", typed.FieldViolations, err, field)
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("status.Code sees %s through %v, want InvalidArgument", status.Code(err), err)
	}
}

func TestEmptyMetricsAreInvalidArgumentNamingObservationsAndTheTrialStaysRunning(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "empty-metrics")
	trial, err := client.Suggest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	_, err = client.CompleteTrial(ctx, trial.Name, polytrial.Metrics{})

	wantInvalidArgument(t, err, "observations")
	stored, err := client.GetTrial(ctx, trial.Name)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != polytrial.StatusRunning {
		t.Errorf("the trial is %s after a refused result, want RUNNING", stored.Status)
	}
}

func TestNilResultAndBadTrialNameAreInvalidArgumentNamingTheField(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "nil-result")
	trial, err := client.Suggest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	_, nilErr := client.CompleteTrial(ctx, trial.Name, nil)
	_, nameErr := client.CompleteTrial(ctx, "experiments/"+id+"/trials/first", polytrial.Number(1))

	wantInvalidArgument(t, nilErr, "observations")
	wantInvalidArgument(t, nameErr, "name")
}

func TestZeroPinnedValueIsInvalidArgumentNamingThePinAndNothingIsStored(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "zero-pin")

	_, err := client.SuggestTrials(ctx, id, 1, polytrial.SuggestOptions{Pinned: polytrial.Parameters{"n": {}}})

	wantInvalidArgument(t, err, `pinned_parameters["n"]`)
	for trial, err := range client.ListTrials(ctx, id, polytrial.ListTrialsOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		t.Fatalf("trial %s was stored for a refused request", trial.Name)
	}
}

func TestZeroChoiceValueIsInvalidArgumentNamingItsPathInTheExperiment(t *testing.T) {
	_, err := polytrial.NewExperiment("zero-choice").Float("x", 0, 1).
		Choice("optimizer", polytrial.String("adam"), polytrial.Value{}).Minimize("loss").Build()

	wantInvalidArgument(t, err, "experiment.search_space.parameters[1].choice.values[1]")
}

func TestNegativeNumTrialsIsInvalidArgument(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "negative-trials")

	_, err := polytrial.Optimize(ctx, client, id, nil, -1)

	wantInvalidArgument(t, err, "numTrials")
}

func TestNegativeRunnerTimeoutIsSentAndRefusedNamingTheField(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := newExperimentID("negative-runner-timeout")
	runner := polytrial.RunnerConfig{Address: closedAddress(t), Timeout: -time.Second}
	definition, err := polytrial.NewExperiment(id).Float("x", 0, 1).Minimize("loss").Runner(runner).Build()
	if err != nil {
		t.Fatal(err)
	}

	_, createErr := client.CreateExperiment(ctx, definition)

	wantInvalidArgument(t, createErr, "experiment.runner.timeout_s")
	if _, err := client.GetExperiment(ctx, id); !polytrial.IsNotFound(err) {
		t.Fatalf("GetExperiment after a refused create answered %v, want NotFound", err)
	}

	// The same config given for one trial's deployment.
	other := createSobol(t, ctx, client, "negative-deploy-timeout")
	trial, err := client.SuggestTrials(ctx, other, 1, polytrial.SuggestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, deployErr := client.DeployTrial(ctx, trial[0].Name, &runner)
	wantInvalidArgument(t, deployErr, "runner.timeout_s")
}

func TestEmptyOrPortlessAddressIsInvalidArgumentWithoutDialling(t *testing.T) {
	// A context without deadline: Dial would wait DefaultDialTimeout and
	// answer Unavailable if it tried to connect.
	for _, bad := range []string{"", "  ", "nohost", "localhost:", "dns:///nohost", "localhost:port"} {
		_, err := polytrial.Dial(context.Background(), bad)
		wantInvalidArgument(t, err, "address")
	}
}

func TestEmptyHostOrPortOutsideOneTo65535IsInvalidArgumentWithoutDialling(t *testing.T) {
	// As the Python client: ":58051" has no host, and port 0 reaches no server.
	for _, bad := range []string{":58051", "[]:58051", "dns:///:58051", " :58051"} {
		_, err := polytrial.Dial(context.Background(), bad)
		wantInvalidArgument(t, err, "address")
		if !strings.Contains(err.Error(), "has no host") {
			t.Errorf("Dial(%q): %v does not say the host is missing", bad, err)
		}
	}
	for _, bad := range []string{"localhost:0", "127.0.0.1:65536", "127.0.0.1:99999", "[::1]:0"} {
		_, err := polytrial.Dial(context.Background(), bad)
		wantInvalidArgument(t, err, "address")
		if !strings.Contains(err.Error(), "from 1 to 65535") {
			t.Errorf("Dial(%q): %v does not say the port is from 1 to 65535", bad, err)
		}
	}
}

func TestRetryPolicyOutOfRangeIsInvalidArgumentWithoutDialling(t *testing.T) {
	_, err := polytrial.Dial(context.Background(), address, polytrial.WithRetryPolicy(polytrial.RetryPolicy{MaxAttempts: -1}))
	wantInvalidArgument(t, err, "RetryPolicy.MaxAttempts")
}

func TestNonPositiveTimeoutsAreInvalidArgumentNamingTheOptionWithoutDialling(t *testing.T) {
	// A context without deadline, as above: a refused option never dials.
	for _, bad := range []time.Duration{0, -time.Second} {
		_, err := polytrial.Dial(context.Background(), address, polytrial.WithSuggestTimeout(bad))
		wantInvalidArgument(t, err, "suggest_timeout")
		if !strings.Contains(err.Error(), "WithSuggestTimeout") {
			t.Errorf("%v does not name WithSuggestTimeout", err)
		}
		_, err = polytrial.Dial(context.Background(), address, polytrial.WithTimeout(bad))
		wantInvalidArgument(t, err, "timeout")
	}
}

func TestAddressWithASchemeOrAPortStillConnects(t *testing.T) {
	ctx := testContext(t)
	for _, good := range []string{address, "dns:///" + address, "passthrough:///" + address} {
		client, err := polytrial.Dial(ctx, good)
		if err != nil {
			t.Fatalf("Dial(%q): %v", good, err)
		}
		_ = client.Close()
	}
}

func TestOptimizeFailsATrialWhoseResultHasNoMetricSayingWhy(t *testing.T) {
	ctx := testContext(t)
	client := dial(t)
	id := createSobol(t, ctx, client, "optimize-empty")
	evaluate := func(context.Context, polytrial.Parameters) (polytrial.Result, error) {
		return polytrial.Metrics{}, nil
	}

	summary, err := polytrial.Optimize(ctx, client, id, evaluate, 1)

	if err != nil {
		t.Fatal(err)
	}
	outcome := summary.Trials[0]
	if outcome.Status != polytrial.StatusFailed || outcome.Reason !=
		"the evaluation returned an unusable result: observations: arm 0_0: the result has no metric; name at least one" {
		t.Errorf("outcome %+v, want FAILED saying the result has no metric", outcome)
	}
}
