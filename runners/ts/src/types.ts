/**
 * What a runner sees and answers: plain TypeScript, no protobuf.
 *
 * The vocabulary matches the Python and Go SDKs. Parameter values are numbers,
 * strings or booleans (JavaScript has one number type, so ints and floats
 * both arrive as `number`). Run metadata is a JSON object.
 */

/** A JSON value, as stored in run metadata. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** A JSON object, as stored in run metadata. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** The value of one parameter. */
export type ParameterValue = number | string | boolean;

/** Whether a trial has one arm or is a batch evaluated together. */
export type TrialKind = "SINGLE_ARM" | "BATCH";

/** The external system's view of a deployed trial (what a poll returns). */
export type TrialState = "STAGED" | "RUNNING" | "COMPLETED" | "FAILED" | "STOPPED";

/** One arm to evaluate. */
export interface Arm {
  /** `{trial index}_{arm index}`, for example "3_0". */
  readonly name: string;
  /** The value of every parameter, by name. */
  readonly parameters: Readonly<Record<string, ParameterValue>>;
  /** Relative weight in a batch trial (1 for single-arm trials). */
  readonly weight: number;
}

/** The trial a call is about, with what the server stored for it. */
export interface Trial {
  /** Id of the experiment. */
  readonly experimentId: string;
  /** Index of the trial within the experiment. */
  readonly trialIndex: number;
  /** Single-arm or batch. */
  readonly kind: TrialKind;
  /** The arms. */
  readonly arms: readonly Arm[];
  /** What `run` returned (empty during `run`), so a runner needs no state. */
  readonly runMetadata: JsonObject;
  /** The metrics the experiment wants. */
  readonly metricNames: readonly string[];
}

/** A polled state and, for FAILED, why. */
export interface TrialStatus {
  readonly state: TrialState;
  readonly reason?: string;
}

/** One observed value of one metric for one arm. */
export interface Observation {
  /** The arm, for example "3_0". */
  readonly armName: string;
  /** The metric. */
  readonly metricName: string;
  /** The observed mean; must be finite. */
  readonly mean: number;
  /** Standard error of the mean; undefined means unknown (not zero). */
  readonly sem?: number;
  /** Step of an intermediate observation; undefined for final data. */
  readonly step?: number;
}

/** A value or a promise of it: runner methods may be sync or async. */
export type Awaitable<T> = T | Promise<T>;

/**
 * Deploys trials on some external system. Only `run` is required; a runner
 * without `pollTrialStatus`, `stopTrial` or `fetchTrialData` answers
 * UNIMPLEMENTED for it, which the server copes with.
 */
export interface Runner {
  /** Whether deployed trials start STAGED rather than RUNNING (default false). */
  readonly stagingRequired?: boolean;
  /**
   * Starts the trial's job and returns its metadata at once; a string under
   * "name" becomes the trial's deployed name. Called once per deployment key:
   * the SDK answers repeats with the first answer.
   */
  run(trial: Trial, deploymentKey: string): Awaitable<JsonObject>;
  /** Returns the external system's view of the trial. */
  pollTrialStatus?(trial: Trial): Awaitable<TrialStatus>;
  /** Stops the trial; returns metadata to merge into the trial's. */
  stopTrial?(trial: Trial, reason: string): Awaitable<JsonObject | undefined>;
  /** Returns observations of the given metrics, or all when the list is empty. */
  fetchTrialData?(trial: Trial, metricNames: readonly string[]): Awaitable<readonly Observation[]>;
}
