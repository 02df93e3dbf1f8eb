/**
 * Orchestrations: the server keeps an experiment going through its runner.
 *
 *     await client.startOrchestration("tune", { maxTrials: 30, maxParallelTrials: 3 });
 *     const done = await client.waitForOrchestration("tune");
 *     console.log(done.state, done.trialCounts);
 */

import {
  type Orchestration as OrchestrationMessage,
  type OrchestrationOptions,
  OrchestrationState,
} from "../../../protos/gen/ts/polytrial/v1/orchestration_service";
import { checkInt32, checkNumber, checkOptions, optional } from "./checks";

export { OrchestrationState, type OrchestrationOptions };

/** An experiment's orchestration. */
export interface Orchestration {
  /** "experiments/{experiment}/orchestration". */
  readonly name: string;
  readonly experimentId: string;
  /** A new id for every start. */
  readonly uid: string;
  /** The options, defaults filled in by the server. */
  readonly options: OrchestrationOptions;
  readonly state: OrchestrationState;
  /** Why it is in its state: the failure counts of a FAILED one, say. */
  readonly stateMessage: string;
  readonly trialsCreated: number;
  /** Its trials by status name ("COMPLETED", ...); they add up to `trialsCreated`. */
  readonly trialCounts: Readonly<Record<string, number>>;
  readonly trialIndices: readonly number[];
  /** The server replica driving it; empty once it ended. */
  readonly driver: string;
  /** Whether it has ended (COMPLETED, FAILED or STOPPED). */
  readonly done: boolean;
  readonly message: OrchestrationMessage;
}

/** Options of `Client.startOrchestration`; unset ones take the server's defaults. */
export interface StartOrchestrationOptions {
  /** The budget: trials the orchestration creates. */
  readonly maxTrials: number;
  /** Trials in flight at most (default 1). */
  readonly maxParallelTrials?: number;
  readonly toleratedFailureRate?: number;
  readonly minFailedTrialsForFailureCheck?: number;
  readonly pollIntervalS?: number;
  readonly dataGracePeriodS?: number;
  readonly runnerUnreachableTimeoutS?: number;
  readonly timeoutS?: number;
}

// A Record over the interface's keys, so the compiler keeps the two in step.
const START_OPTIONS: Record<keyof StartOrchestrationOptions, true> = {
  maxTrials: true,
  maxParallelTrials: true,
  toleratedFailureRate: true,
  minFailedTrialsForFailureCheck: true,
  pollIntervalS: true,
  dataGracePeriodS: true,
  runnerUnreachableTimeoutS: true,
  timeoutS: true,
};

/**
 * The OrchestrationOptions message of the options.
 *
 * @throws InvalidArgumentError `options` is not an object, has a key not
 *   listed above, an integer option is not an int32, or another option is not
 *   a number; the violation names it.
 */
export function orchestrationOptionsMessage(options: StartOrchestrationOptions): OrchestrationOptions {
  const given = checkOptions("options", options, START_OPTIONS);
  const number = (key: keyof StartOrchestrationOptions): number | undefined =>
    optional(checkNumber, `options.${key}`, given[key]);
  return {
    maxTrials: checkInt32("options.maxTrials", given.maxTrials),
    maxParallelTrials: optional(checkInt32, "options.maxParallelTrials", given.maxParallelTrials) ?? 0,
    toleratedFailureRate: number("toleratedFailureRate"),
    minFailedTrialsForFailureCheck: optional(
      checkInt32,
      "options.minFailedTrialsForFailureCheck",
      given.minFailedTrialsForFailureCheck,
    ),
    pollIntervalS: number("pollIntervalS"),
    dataGracePeriodS: number("dataGracePeriodS"),
    runnerUnreachableTimeoutS: number("runnerUnreachableTimeoutS"),
    timeoutS: number("timeoutS"),
  };
}

export function orchestrationFromMessage(message: OrchestrationMessage): Orchestration {
  return {
    name: message.name,
    experimentId: message.name.replace(/^experiments\//, "").replace(/\/orchestration$/, ""),
    uid: message.uid,
    options: message.options ?? { maxTrials: 0, maxParallelTrials: 0 },
    state: message.state,
    stateMessage: message.stateMessage,
    trialsCreated: message.trialsCreated,
    trialCounts: { ...message.trialCounts },
    trialIndices: [...message.trialIndices],
    driver: message.driver,
    done: message.state !== OrchestrationState.ORCHESTRATION_STATE_RUNNING,
    message,
  };
}
