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
