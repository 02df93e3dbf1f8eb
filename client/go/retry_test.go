package polytrial

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestBackoffStaysWithinItsGrowingCap(t *testing.T) {
	policy := RetryPolicy{MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		Multiplier: 2, TotalTimeout: time.Minute}
	caps := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}
	for retry, limit := range caps {
		for range 200 {
			if wait := policy.Backoff(retry); wait < 0 || wait > limit {
				t.Fatalf("retry %d waited %s, outside [0, %s]", retry, wait, limit)
			}
		}
	}
}

func TestOnlyUnavailableAndDeadlineExceededAreRetried(t *testing.T) {
	policy := RetryPolicy{MaxAttempts: 4, TotalTimeout: time.Minute}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for code, wantAttempts := range map[codes.Code]int{
		codes.Unavailable: 4, codes.DeadlineExceeded: 4, codes.NotFound: 1, codes.Internal: 1,
	} {
		attempts := 0
		err := callWithRetry(context.Background(), policy, time.Second, quiet, "Test", "id", func(context.Context) error {
			attempts++
			return status.Error(code, "no")
		})
		if attempts != wantAttempts || status.Code(err) != code {
			t.Errorf("%s: %d attempts ending in %v, want %d", code, attempts, err, wantAttempts)
		}
	}
}

func TestRequestIDIsAVersion4UUID(t *testing.T) {
	pattern := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	first, second := NewRequestID(), NewRequestID()
	if !pattern.MatchString(first) || first == second {
		t.Errorf("request ids %q and %q are not two distinct version-4 UUIDs", first, second)
	}
}

func TestWithoutAttemptLimitRetriesGoOnUntilTheCallSucceeds(t *testing.T) {
	policy := RetryPolicy{MaxAttempts: 0, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		Multiplier: 2, TotalTimeout: time.Minute}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	attempts := 0

	err := callWithRetry(context.Background(), policy, time.Second, quiet, "Test", "id", func(context.Context) error {
		attempts++
		if attempts <= 20 {
			return status.Error(codes.Unavailable, "restarting")
		}
		return nil
	})

	if err != nil || attempts != 21 {
		t.Errorf("%d attempts ending in %v, want success at attempt 21", attempts, err)
	}
}

func TestDefaultPolicyHasNoAttemptLimitAndTheBudgetOfThePythonClient(t *testing.T) {
	if DefaultRetryPolicy.MaxAttempts != 0 || DefaultRetryPolicy.TotalTimeout != 60*time.Second {
		t.Errorf("DefaultRetryPolicy %+v, want no attempt limit within 60 s", DefaultRetryPolicy)
	}
}

func TestBackoffOfAnUnlimitedRetryNumberStaysFiniteAndCapped(t *testing.T) {
	for _, policy := range []RetryPolicy{
		{InitialBackoff: 0, MaxBackoff: time.Second, Multiplier: 2},
		{InitialBackoff: time.Millisecond, MaxBackoff: time.Second, Multiplier: 2},
	} {
		if wait := policy.Backoff(5000); wait < 0 || wait > time.Second {
			t.Errorf("%+v: retry 5000 waits %s, want within [0, 1s]", policy, wait)
		}
	}
}

func TestAnAttemptLongerThanTheBudgetKeepsItsWholeDeadline(t *testing.T) {
	// SuggestTrials' 300 s attempt under the default 60 s budget, scaled down.
	policy := RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Multiplier: 2,
		TotalTimeout: time.Second}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var left time.Duration

	err := callWithRetry(context.Background(), policy, time.Minute, quiet, "SuggestTrials", "id", func(ctx context.Context) error {
		deadline, _ := ctx.Deadline()
		left = time.Until(deadline)
		return nil
	})

	if err != nil || left < 55*time.Second || left > time.Minute {
		t.Errorf("the attempt had %s before its deadline (%v), want the whole minute, not the 1 s budget", left, err)
	}
}

func TestARetryWithinTheBudgetIsStillCutToWhatIsLeftOfIt(t *testing.T) {
	policy := RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		Multiplier: 2, TotalTimeout: time.Second}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var lefts []time.Duration

	_ = callWithRetry(context.Background(), policy, 800*time.Millisecond, quiet, "GetTrial", "", func(ctx context.Context) error {
		deadline, _ := ctx.Deadline()
		lefts = append(lefts, time.Until(deadline))
		time.Sleep(400 * time.Millisecond)
		return status.Error(codes.Unavailable, "restarting")
	})

	// The second attempt starts 400 ms into the 1 s budget: 600 ms are left,
	// less than its own 800 ms.
	if len(lefts) != 2 || lefts[1] > 700*time.Millisecond || lefts[1] >= lefts[0] {
		t.Errorf("attempts had %v before their deadlines, want the second cut below 700ms by the budget", lefts)
	}
}
