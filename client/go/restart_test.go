package polytrial_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	polytrial "github.com/polytrial/polytrial/client/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// downtime is how long the server stays away before it is started again:
// longer than the whole retry budget the client once had (5 attempts, about
// 1 s), and to it comes the new server's start-up.
const downtime = 2 * time.Second

func TestDefaultRetriesBridgeAServerRestartOnTheSamePortAndDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	db := "sqlite:///" + filepath.Join(t.TempDir(), "restart.db")
	server, err := startServer(db, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.stop() })

	// Every attempt the channel answered UNAVAILABLE is counted, so the test
	// knows the loop really met the stopped server.
	var unavailable atomic.Int32
	countUnavailable := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if status.Code(err) == codes.Unavailable {
			unavailable.Add(1)
		}
		return err
	}
	client, err := polytrial.Dial(ctx, server.address, polytrial.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		polytrial.WithDialOptions(grpc.WithUnaryInterceptor(countUnavailable)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	id := createSobol(t, ctx, client, "restart")

	const trials, restartAt = 5, 2
	for i := range trials {
		// Ask.
		trial, err := client.Suggest(ctx, id)
		if err != nil {
			t.Fatalf("trial %d: Suggest: %v", i, err)
		}

		// The server goes away between the ask and the tell and comes back
		// on the same port and database a while later.
		var restarted chan error
		if i == restartAt {
			server.stop()
			restarted = make(chan error, 1)
			go func(listen string) {
				time.Sleep(downtime)
				next, err := startServer(db, listen)
				if err == nil {
					server = next
				}
				restarted <- err
			}(server.address)
		}

		// Tell.
		x, _ := trial.Parameters.Float("x")
		_, err = client.CompleteTrial(ctx, trial.Name, polytrial.Number(x*x))
		if restarted != nil {
			if startErr := <-restarted; startErr != nil {
				t.Fatalf("the server did not start again: %v", startErr)
			}
		}
		if err != nil {
			t.Fatalf("trial %d: CompleteTrial across the restart: %v", i, err)
		}
	}

	if unavailable.Load() == 0 {
		t.Fatal("no attempt met the stopped server; the test did not test a restart")
	}
	var completed []int64
	for trial, err := range client.ListTrials(ctx, id, polytrial.ListTrialsOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if trial.Status != polytrial.StatusCompleted {
			t.Errorf("trial %d is %s, want COMPLETED", trial.Index, trial.Status)
		}
		completed = append(completed, trial.Index)
	}
	if len(completed) != trials {
		t.Errorf("trials %v stored, want exactly %d: a retried call acted twice or not at all", completed, trials)
	}
}
