package polytrial

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Evaluate computes the result of one arm's parameters. An error fails the
// trial (with the error's text as reason) and the loop goes on.
type Evaluate func(ctx context.Context, parameters Parameters) (Result, error)

// TrialOutcome is what one iteration of Optimize did.
type TrialOutcome struct {
	// Position is the 1-based position of the trial in this run.
	Position int
	// Index is the trial's index in the experiment.
	Index      int64
	Parameters Parameters
	// Status is StatusCompleted or StatusFailed.
	Status TrialStatus
	// Reason says why the trial failed; "" when it completed.
	Reason string
	// Generator made the arm ("sobol", "botorch", ...).
	Generator  string
	Evaluation time.Duration
}

// OptimizationSummary is the result of Optimize.
type OptimizationSummary struct {
	Experiment *Experiment
	// Trials has one outcome per trial run, in order.
	Trials []TrialOutcome
	// Best is the server's best arm (single objective), nil without data.
	Best *ArmResult
	// ParetoFrontier holds the Pareto-optimal arms (several objectives).
	ParetoFrontier []*ArmResult
	// StoppedReason says why the loop stopped before numTrials; "" if not.
	StoppedReason string
}

// NumCompleted counts the trials of this run that completed.
func (s *OptimizationSummary) NumCompleted() int { return s.count(StatusCompleted) }

// NumFailed counts the trials of this run that failed.
func (s *OptimizationSummary) NumFailed() int { return s.count(StatusFailed) }

func (s *OptimizationSummary) count(status TrialStatus) int {
	n := 0
	for _, t := range s.Trials {
		if t.Status == status {
			n++
		}
	}
	return n
}

// abandonTimeout bounds the AbandonTrial call made after ctx has ended.
const abandonTimeout = 5 * time.Second

// Optimize runs ask -> evaluate -> tell for up to numTrials trials of an
// existing experiment. A trial whose evaluation returns an error, or a result
// that is not finite, is marked FAILED with the reason and the loop goes on.
// When ctx ends during an evaluation the trial is marked ABANDONED and
// Optimize returns ctx's error, so the loop leaves no trial RUNNING.
//
// The loop stops early, saying why in StoppedReason, when a finite search
// space runs out. It returns an error when a call fails, including
// InvalidArgument when the server refuses a result (an unknown metric, say):
// that trial is marked FAILED first, since every later trial would be
// refused alike.
func Optimize(ctx context.Context, client *Client, experimentID string, evaluate Evaluate, numTrials int) (*OptimizationSummary, error) {
	if numTrials < 0 {
		return nil, invalidArgument("numTrials", "must not be negative, not %d", numTrials)
	}
	experiment, err := client.GetExperiment(ctx, experimentID)
	if err != nil {
		return nil, err
	}
	summary := &OptimizationSummary{Experiment: experiment}
	for position := 1; position <= numTrials; position++ {
		// Ask.
		trial, err := client.Suggest(ctx, experiment.ID)
		if IsSearchSpaceExhausted(err) {
			var typed *Error
			errors.As(err, &typed)
			summary.StoppedReason = typed.Message
			break
		}
		if err != nil {
			return summary, err
		}

		// Evaluate and tell.
		outcome, err := runTrial(ctx, client, experiment, trial, evaluate)
		if err != nil {
			return summary, err
		}
		outcome.Position = position
		summary.Trials = append(summary.Trials, outcome)
	}

	// Report the best arm(s); "no data yet" is not an error of the loop.
	if len(experiment.Objectives) == 1 {
		summary.Best, err = client.GetBestArm(ctx, experiment.ID)
	} else if len(experiment.Objectives) > 1 {
		summary.ParetoFrontier, err = client.GetParetoFrontier(ctx, experiment.ID)
	}
	if err != nil && !IsFailedPrecondition(err) {
		return summary, err
	}
	return summary, nil
}

func runTrial(ctx context.Context, client *Client, experiment *Experiment, trial *Trial, evaluate Evaluate) (TrialOutcome, error) {
	outcome := TrialOutcome{Index: trial.Index, Parameters: trial.Parameters, Generator: trial.Generator}
	fail := func(reason string) (TrialOutcome, error) {
		client.logger.Warn("polytrial trial failed", "experiment", experiment.ID, "trial", trial.Index, "reason", reason)
		failed, err := client.FailTrial(ctx, trial.Name, reason)
		if err != nil {
			return outcome, err
		}
		outcome.Status, outcome.Reason = failed.Status, reason
		return outcome, nil
	}

	// Evaluate: the function is the caller's code, so any failure of it is
	// this trial's failure, not the loop's; a cancelled run abandons it.
	started := time.Now()
	result, err := evaluate(ctx, trial.Parameters)
	outcome.Evaluation = time.Since(started)
	if ctx.Err() != nil {
		abandonCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonTimeout)
		defer cancel()
		_, _ = client.AbandonTrial(abandonCtx, trial.Name, "the optimization loop was cancelled")
		return outcome, ctx.Err()
	}
	if err != nil {
		return fail(err.Error())
	}
	if result == nil {
		return fail("the evaluation returned a nil result")
	}

	// Check the result here, so a NaN fails this trial with a clear reason
	// instead of being refused by the server.
	observations, err := result.observations(fmt.Sprintf("%d_0", trial.Index), experiment.objectiveNames())
	var refused *Error
	if errors.As(err, &refused) {
		return fail("the evaluation returned an unusable result: " + refused.Message)
	}
	if err != nil {
		return fail("the evaluation returned an unusable result: " + err.Error())
	}
	if problem := checkFinite(observations); problem != "" {
		return fail(problem)
	}

	// Tell.
	completed, err := client.CompleteTrial(ctx, trial.Name, result)
	if IsInvalidArgument(err) {
		_, _ = client.FailTrial(ctx, trial.Name, "the server refused the result: "+err.Error())
		return outcome, err
	}
	if err != nil {
		return outcome, err
	}
	outcome.Status = completed.Status
	return outcome, nil
}
