/**
 * The synchronous paradigm: hand over a function, get the best arm back.
 *
 * `optimize` runs ask -> evaluate -> tell for a number of trials. The function
 * takes the parameters and returns (or resolves to) a number, a [mean, sem]
 * pair, or an object of metrics. A trial whose evaluation throws, or returns
 * something that is not a finite number, is marked FAILED with the reason and
 * the loop goes on. A trial whose evaluation ends after the optional abort
 * signal fired is marked ABANDONED before the abort propagates, so the loop
 * leaves no trial RUNNING.
 */

import { Client } from "./client";
import { checkInt32, checkOptions, invalidArgument } from "./checks";
import { FailedPreconditionError, InvalidArgumentError, SearchSpaceExhaustedError } from "./errors";
import { type ArmResult, type Experiment, type Trial, TrialStatus } from "./types";
import { type Parameters, problemWith, type Result, toObservations } from "./values";

/**
 * Maps parameters to a result; a thrown error fails the trial. `signal` is the
 * loop's abort signal (undefined when it has none), for long evaluations.
 */
export type Evaluate = (parameters: Parameters, signal: AbortSignal | undefined) => Result | Promise<Result>;

/** Options of `optimize`. */
export interface OptimizeOptions {
  /** Stops the loop: the running trial is abandoned and the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Called after every trial with its outcome. */
  readonly onTrial?: (outcome: TrialOutcome) => void;
}

/** What one iteration of the loop did. */
export interface TrialOutcome {
  /** 1-based position of the trial in this run. */
  readonly position: number;
  /** The trial's index in the experiment. */
  readonly index: number;
  readonly parameters: Parameters;
  /** COMPLETED or FAILED. */
  readonly status: TrialStatus;
  /** Why the trial failed; "" when it completed. */
  readonly reason: string;
  /** What made the arm ("sobol", "botorch", ...). */
  readonly generator: string;
  readonly evaluationMs: number;
}

/** The result of `optimize`. */
export interface OptimizationSummary {
  readonly experiment: Experiment;
  readonly trials: readonly TrialOutcome[];
  /** The server's best arm (single objective), undefined without data. */
  readonly best: ArmResult | undefined;
  /** The server's Pareto-optimal arms (several objectives). */
  readonly paretoFrontier: readonly ArmResult[];
  /** Why the loop stopped before `numTrials`; "" if it did not. */
  readonly stoppedReason: string;
  readonly numCompleted: number;
  readonly numFailed: number;
}

/**
 * Runs ask -> evaluate -> tell for up to `numTrials` trials of an existing
 * experiment. Stops early, saying why in `stoppedReason`, when a finite
 * search space runs out.
 *
 * @throws InvalidArgumentError the server refused a reported result (an
 *   unknown metric, say); the trial is marked FAILED first, and the loop stops
 *   since every later trial would be refused alike.
 * @throws NotFoundError the experiment does not exist.
 */
export async function optimize(
  client: Client,
  experimentId: string,
  evaluate: Evaluate,
  numTrials: number,
  options: OptimizeOptions = {},
): Promise<OptimizationSummary> {
  checkOptions("options", options, { signal: true, onTrial: true } satisfies Record<
    keyof OptimizeOptions,
    true
  >);
  const { signal, onTrial } = options;
  if (checkInt32("numTrials", numTrials) < 0) throw invalidArgument("numTrials", "must not be negative");
  const experiment = await client.getExperiment(experimentId);
  const objectives = experiment.objectives.map((o) => o.metricName);
  const outcomes: TrialOutcome[] = [];
  let stoppedReason = "";
  for (let position = 1; position <= numTrials; position++) {
    // Ask.
    signal?.throwIfAborted();
    let trial: Trial;
    try {
      trial = await client.suggest(experiment.experimentId);
    } catch (error) {
      if (!(error instanceof SearchSpaceExhaustedError)) throw error;
      stoppedReason = error.message;
      break;
    }

    // Evaluate and tell.
    const outcome = { position, ...(await runTrial(client, trial, evaluate, objectives, signal)) };
    outcomes.push(outcome);
    onTrial?.(outcome);
  }

  // The best arm(s); "no data yet" is not an error of the loop.
  const orNothing = <T>(error: unknown, nothing: T): T => {
    if (error instanceof FailedPreconditionError) return nothing;
    throw error;
  };
  const best =
    objectives.length === 1
      ? await client.getBestArm(experiment.experimentId).catch((e: unknown) => orNothing(e, undefined))
      : undefined;
  const paretoFrontier =
    objectives.length > 1
      ? await client.getParetoFrontier(experiment.experimentId).catch((e: unknown) => orNothing(e, []))
      : [];
  return {
    experiment,
    trials: outcomes,
    best,
    paretoFrontier,
    stoppedReason,
    numCompleted: outcomes.filter((o) => o.status === TrialStatus.TRIAL_STATUS_COMPLETED).length,
    numFailed: outcomes.filter((o) => o.status === TrialStatus.TRIAL_STATUS_FAILED).length,
  };
}

async function runTrial(
  client: Client,
  trial: Trial,
  evaluate: Evaluate,
  objectives: readonly string[],
  signal: AbortSignal | undefined,
): Promise<Omit<TrialOutcome, "position">> {
  const base = { index: trial.index, parameters: trial.parameters, generator: trial.generator };
  const started = performance.now();
  const fail = async (reason: string): Promise<Omit<TrialOutcome, "position">> => {
    const failed = await client.failTrial(trial, reason);
    return { ...base, status: failed.status, reason, evaluationMs: performance.now() - started };
  };

  // The evaluation is the caller's code: any failure of it is this trial's
  // failure, not the loop's.
  let result: Result | undefined;
  let evaluationError: unknown;
  try {
    result = await evaluate({ ...trial.parameters }, signal);
  } catch (error) {
    evaluationError = error;
  }
  if (signal?.aborted === true) {
    await client.abandonTrial(trial, "the optimization loop was aborted");
    throw signal.reason;
  }
  if (result === undefined) {
    const error = evaluationError;
    if (error === undefined) return fail("the evaluation returned undefined instead of a number");
    return fail(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  }
  const evaluationMs = performance.now() - started;

  // Check the result here, so a NaN or a wrong type fails this trial with a
  // clear reason instead of being refused by the server.
  let problem: string;
  try {
    problem = problemWith(toObservations(result, trial.arms[0]?.name ?? `${trial.index}_0`, objectives));
  } catch (error) {
    problem = `the evaluation returned an unusable result: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (problem !== "") return fail(problem);

  try {
    const completed = await client.completeTrial(trial, result);
    return { ...base, status: completed.status, reason: "", evaluationMs };
  } catch (error) {
    if (error instanceof InvalidArgumentError) {
      await client.failTrial(trial, `the server refused the result: ${error.message}`);
    }
    throw error;
  }
}
