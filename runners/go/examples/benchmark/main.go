// Command benchmark is an example runner whose background jobs evaluate
// Branin, Currin and Hartmann6 on parameters x1..xd in [0, 1].
//
// Run returns at once; each job waits out its staging period (two seconds by
// default: this example needs staging), runs for a few seconds reporting
// intermediate values at steps 0, 1 and 2 (a learning curve approaching the
// final value), then evaluates every metric it knows for every arm. A parameter run_delay_s on
// the first arm delays Run's answer, to show how the server treats a slow
// runner; a parameter job_seconds overrides how long that trial's job runs.
// Each started job is printed as "job started name=... key=...".
//
//	go run ./examples/benchmark -address 127.0.0.1:50062
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	runner "github.com/polytrial/polytrial/runners/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// job is one trial's background work and what it produced.
type job struct {
	name     string
	inputs   map[string]map[string][]float64 // arm -> metric -> x
	duration time.Duration
	state    runner.State
	results  []runner.Observation
	stop     chan struct{}
}

// benchmarkRunner runs each trial as a goroutine that evaluates benchmarks.
type benchmarkRunner struct {
	jobDuration     time.Duration
	stagingDuration time.Duration
	mu              sync.Mutex // guards jobs and each job's state and results
	jobs            map[string]*job
}

func (r *benchmarkRunner) StagingRequired() bool { return r.stagingDuration > 0 }

func (r *benchmarkRunner) Run(_ context.Context, trial *runner.Trial, key string) (map[string]any, error) {
	inputs := map[string]map[string][]float64{}
	for _, arm := range trial.Arms {
		inputs[arm.Name] = map[string][]float64{}
		for _, metric := range trial.MetricNames {
			if _, known := benchmarks[metric]; !known {
				continue
			}
			x, err := armInputs(arm, metric)
			if err != nil {
				return nil, err
			}
			inputs[arm.Name][metric] = x
		}
	}
	if len(trial.Arms) > 0 {
		if delay, ok := trial.Arms[0].Float("run_delay_s"); ok && delay > 0 {
			time.Sleep(time.Duration(delay * float64(time.Second)))
		}
	}

	duration := r.jobDuration
	if len(trial.Arms) > 0 {
		if seconds, ok := trial.Arms[0].Float("job_seconds"); ok && seconds >= 0 {
			duration = time.Duration(seconds * float64(time.Second))
		}
	}
	name := fmt.Sprintf("%s-%d-%08x", trial.ExperimentID, trial.TrialIndex, rand.Uint32())
	started := &job{name: name, inputs: inputs, duration: duration, state: runner.Staged, stop: make(chan struct{})}
	if !r.StagingRequired() {
		started.state = runner.Running
	}
	r.mu.Lock()
	r.jobs[name] = started
	r.mu.Unlock()
	go r.work(started)
	fmt.Printf("job started name=%s key=%s\n", name, key)
	return map[string]any{
		"name":      name,
		"job_s":     duration.Seconds(),
		"staging_s": r.stagingDuration.Seconds(),
	}, nil
}

func (r *benchmarkRunner) PollTrialStatus(_ context.Context, trial *runner.Trial) (runner.Status, error) {
	found, err := r.job(trial)
	if err != nil {
		return runner.Status{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return runner.Status{State: found.state}, nil
}

func (r *benchmarkRunner) StopTrial(_ context.Context, trial *runner.Trial, reason string) (map[string]any, error) {
	found, err := r.job(trial)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if found.state == runner.Staged || found.state == runner.Running {
		found.state = runner.Stopped
		close(found.stop)
	}
	return map[string]any{"stop_reason": reason, "final_state": stateName(found.state)}, nil
}

func (r *benchmarkRunner) FetchTrialData(_ context.Context, trial *runner.Trial, metricNames []string) ([]runner.Observation, error) {
	found, err := r.job(trial)
	if err != nil {
		return nil, err
	}
	wanted := map[string]bool{}
	for _, name := range metricNames {
		wanted[name] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var results []runner.Observation
	for _, observation := range found.results {
		if len(wanted) == 0 || wanted[observation.MetricName] {
			results = append(results, observation)
		}
	}
	return results, nil
}

func (r *benchmarkRunner) job(trial *runner.Trial) (*job, error) {
	name, _ := trial.RunMetadata["name"].(string)
	r.mu.Lock()
	defer r.mu.Unlock()
	found, ok := r.jobs[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no job named %q; the runner may have restarted", name)
	}
	return found, nil
}

func (r *benchmarkRunner) work(j *job) {
	// Staging, then running; a stop request ends either wait early.
	select {
	case <-j.stop:
		return
	case <-time.After(r.stagingDuration):
	}
	r.mu.Lock()
	if j.state != runner.Staged && j.state != runner.Running {
		r.mu.Unlock()
		return
	}
	j.state = runner.Running
	r.mu.Unlock()

	// Intermediate data at the start of each of steps equal parts of the job.
	for step := range steps {
		var curve []runner.Observation
		for arm, byMetric := range j.inputs {
			for metric, x := range byMetric {
				k := int64(step)
				curve = append(curve, runner.Observation{ArmName: arm, MetricName: metric, Mean: learningCurve(metric, x, step), Step: &k})
			}
		}
		r.mu.Lock()
		if j.state != runner.Running {
			r.mu.Unlock()
			return
		}
		j.results = append(j.results, curve...)
		r.mu.Unlock()
		select {
		case <-j.stop:
			return
		case <-time.After(j.duration / steps):
		}
	}

	// Final data: every metric for every arm; noiseless, so the SEM is 0.
	var final []runner.Observation
	for arm, byMetric := range j.inputs {
		for metric, x := range byMetric {
			sem := 0.0
			final = append(final, runner.Observation{ArmName: arm, MetricName: metric, Mean: benchmarks[metric].eval(x), SEM: &sem})
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if j.state == runner.Running {
		j.results = append(j.results, final...)
		j.state = runner.Completed
	}
}

// steps is the number of intermediate observations per job, at steps 0..2.
const steps = 3

// learningCurve is an intermediate value that approaches the final one:
// f + (1 + |f|) / (step + 1).
func learningCurve(metric string, x []float64, step int) float64 {
	final := benchmarks[metric].eval(x)
	return final + (1+math.Abs(final))/float64(step+1)
}

// armInputs returns x1..xd of arm for metric, or InvalidArgument naming the gap.
func armInputs(arm runner.Arm, metric string) ([]float64, error) {
	dims := benchmarks[metric].dims
	x := make([]float64, dims)
	for i := range dims {
		name := "x" + strconv.Itoa(i+1)
		value, ok := arm.Float(name)
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "arm %s has no numeric parameter %s, which %s needs", arm.Name, name, metric)
		}
		if value < 0 || value > 1 {
			return nil, status.Errorf(codes.InvalidArgument, "arm %s: %s=%v is outside [0, 1], which %s needs", arm.Name, name, value, metric)
		}
		x[i] = value
	}
	return x, nil
}

func stateName(state runner.State) string {
	return map[runner.State]string{
		runner.Staged: "STAGED", runner.Running: "RUNNING", runner.Completed: "COMPLETED",
		runner.Failed: "FAILED", runner.Stopped: "STOPPED",
	}[state]
}

// envSeconds returns the environment variable name as seconds, or fallback.
func envSeconds(name string, fallback float64) float64 {
	if value, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return value
	}
	return fallback
}

func main() {
	address := flag.String("address", "127.0.0.1:50062", "host:port to serve on; port 0 picks a free one")
	jobSeconds := flag.Float64("job-seconds", envSeconds("POLYTRIAL_EXAMPLE_JOB_SECONDS", 3), "how long each job runs (env POLYTRIAL_EXAMPLE_JOB_SECONDS)")
	stagingSeconds := flag.Float64("staging-seconds", envSeconds("POLYTRIAL_EXAMPLE_STAGING_SECONDS", 2), "staging period; > 0 makes StagingRequired true (env POLYTRIAL_EXAMPLE_STAGING_SECONDS)")
	flag.Parse()

	r := &benchmarkRunner{
		jobDuration:     time.Duration(*jobSeconds * float64(time.Second)),
		stagingDuration: time.Duration(*stagingSeconds * float64(time.Second)),
		jobs:            map[string]*job{},
	}
	err := runner.Serve(r, *address, func(bound net.Addr) {
		fmt.Printf("listening on %s\n", bound)
	})
	if err != nil {
		log.Fatal(err)
	}
}
