package polytrial

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RetryPolicy says how often and how long a call that is safe to repeat is
// retried. A call is safe to repeat when it only reads, or when it carries a
// request id the server deduplicates (SuggestTrials, AttachTrial,
// CompleteTrial): the client draws the id once per logical call and sends the
// same one on every attempt, so a retry after a lost answer returns the first
// result instead of acting twice. Only Unavailable and DeadlineExceeded are
// retried; every other answer is final.
//
// The n-th wait (from 0) is drawn uniformly from [0, min(MaxBackoff,
// InitialBackoff * Multiplier^n)] ("full jitter"), so many clients that lost
// the server at once do not come back in step.
//
// DefaultRetryPolicy, like the Python client's default, retries until its
// 60 s budget is spent, so a call bridges a server restart: the waits grow
// 0.1 s, 0.2 s, 0.4 s, ... up to 5 s between attempts.
type RetryPolicy struct {
	// MaxAttempts counts every attempt, the first included; 1 disables
	// retries and 0 sets no limit but TotalTimeout.
	MaxAttempts int
	// InitialBackoff caps the first wait.
	InitialBackoff time.Duration
	// MaxBackoff caps every wait.
	MaxBackoff time.Duration
	// Multiplier is the growth of the cap per attempt.
	Multiplier float64
	// TotalTimeout bounds all attempts and waits together; no attempt starts,
	// and no attempt's deadline reaches, beyond it. A call whose attempt
	// deadline is longer (SuggestTrials, 300 s by default) gets that deadline
	// as its budget instead, as in the Python client, so its first attempt
	// is never cut short.
	TotalTimeout time.Duration
}

// DefaultRetryPolicy is the policy of a client given no other.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:    0,
	InitialBackoff: 100 * time.Millisecond,
	MaxBackoff:     5 * time.Second,
	Multiplier:     2,
	TotalTimeout:   60 * time.Second,
}

// NoRetry makes every call exactly once.
var NoRetry = RetryPolicy{MaxAttempts: 1, TotalTimeout: 24 * time.Hour}

// Backoff returns the wait before retry number retry (0 for the first retry).
func (p RetryPolicy) Backoff(retry int) time.Duration {
	// Without an attempt limit the retry number can grow until the power
	// overflows to +Inf, and 0 * +Inf is NaN: both end at a cap or at 0.
	limit := math.Min(float64(p.MaxBackoff), float64(p.InitialBackoff)*math.Pow(p.Multiplier, float64(retry)))
	if math.IsNaN(limit) || limit <= 0 {
		return 0
	}
	return time.Duration(mrand.Float64() * limit)
}

func (p RetryPolicy) validate() error {
	if p.MaxAttempts < 0 {
		return invalidArgument("RetryPolicy.MaxAttempts", "must be 0 (no limit) or more, not %d", p.MaxAttempts)
	}
	if p.InitialBackoff < 0 {
		return invalidArgument("RetryPolicy.InitialBackoff", "must not be negative, not %s", p.InitialBackoff)
	}
	if p.MaxBackoff < 0 {
		return invalidArgument("RetryPolicy.MaxBackoff", "must not be negative, not %s", p.MaxBackoff)
	}
	if p.TotalTimeout <= 0 {
		return invalidArgument("RetryPolicy.TotalTimeout", "must be positive, not %s", p.TotalTimeout)
	}
	return nil
}

// attemptsLeft reports whether a retry may follow attempt number retry
// (from 0), counting attempts only; the time budget is checked apart.
func (p RetryPolicy) attemptsLeft(retry int) bool {
	return p.MaxAttempts == 0 || retry+1 < p.MaxAttempts
}

func retryable(err error) bool {
	code := status.Code(err)
	return code == codes.Unavailable || code == codes.DeadlineExceeded
}

// callWithRetry runs attempt until it succeeds, fails for good, or time is
// up. Each attempt gets a context whose deadline is the per-attempt timeout,
// cut to what is left of the budget and of ctx. The budget is the policy's
// TotalTimeout, or attemptTimeout when that is longer: a 300 s SuggestTrials
// attempt under the default 60 s budget would otherwise end at 60 s. The
// error returned is the last attempt's, not yet mapped to *Error.
func callWithRetry(ctx context.Context, policy RetryPolicy, attemptTimeout time.Duration,
	logger *slog.Logger, method, requestID string, attempt func(context.Context) error) error {
	giveUpAt := time.Now().Add(max(policy.TotalTimeout, attemptTimeout))
	for retry := 0; ; retry++ {
		attemptDeadline := time.Now().Add(attemptTimeout)
		if giveUpAt.Before(attemptDeadline) {
			attemptDeadline = giveUpAt
		}
		attemptCtx, cancel := context.WithDeadline(ctx, attemptDeadline)
		err := attempt(attemptCtx)
		cancel()
		if err == nil {
			return nil
		}

		// The caller's own cancellation or deadline is final, whatever code
		// the transport reported for it.
		if ctx.Err() != nil || !retryable(err) || !policy.attemptsLeft(retry) {
			return err
		}
		wait := policy.Backoff(retry)
		if time.Now().Add(wait).After(giveUpAt) {
			return err
		}
		logger.Warn("polytrial call failed; retrying", "method", method, "code", status.Code(err).String(),
			"request_id", requestID, "retry", retry+1, "wait", wait, "budget_left", time.Until(giveUpAt).Round(time.Millisecond))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
	}
}

// NewRequestID returns a random version-4 UUID, the idempotency key the
// client sends with SuggestTrials, AttachTrial and CompleteTrial.
func NewRequestID() string {
	var b [16]byte
	// crypto/rand.Read never fails on supported platforms (it panics instead).
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
