/**
 * The TypeScript client of a Polytrial server: plain values in, plain objects out.
 *
 *     const client = new Client("localhost:50051");
 *     const trial = await client.suggest("tune");                    // ask
 *     await client.completeTrial(trial, train(trial.parameters));   // tell
 *
 * Reads, and the three mutations that carry a request id (suggest, attach,
 * complete), are retried on UNAVAILABLE and DEADLINE_EXCEEDED with the same
 * request id; other mutations are made once, since repeating a state change
 * that did happen would answer FAILED_PRECONDITION. Each attempt has a 30 s
 * deadline (`timeoutMs`), except SuggestTrials' 300 s (`suggestTimeoutMs`),
 * whose retry budget grows to match.
 */

import * as grpc from "@grpc/grpc-js";

import type { Experiment as ExperimentMessage } from "../../../protos/gen/ts/polytrial/v1/experiment";
import { ExperimentServiceClient } from "../../../protos/gen/ts/polytrial/v1/experiment_service";
import { OrchestrationServiceClient } from "../../../protos/gen/ts/polytrial/v1/orchestration_service";
import { ResultServiceClient } from "../../../protos/gen/ts/polytrial/v1/result_service";
import type { Trial as TrialMessage } from "../../../protos/gen/ts/polytrial/v1/trial";
import { type ArmInput, TrialServiceClient } from "../../../protos/gen/ts/polytrial/v1/trial_service";
import { checkInt32, checkNumber, checkOptions, checkString, invalidArgument, optional } from "./checks";
import {
  AlreadyExistsError,
  DeadlineExceededError,
  fromServiceError,
  isServiceError,
  UnavailableError,
} from "./errors";
import {
  type Orchestration,
  orchestrationFromMessage,
  orchestrationOptionsMessage,
  type StartOrchestrationOptions,
} from "./orchestration";
import { callWithRetry, DEFAULT_RETRY_POLICY, newRequestId, NO_RETRY, type RetryPolicy } from "./retry";
import { type ExperimentSpec, experimentMessage, type RunnerSpec, runnerMessage } from "./spec";
import {
  type ArmResult,
  armResultFromMessage,
  type Experiment,
  experimentFromMessage,
  experimentName,
  splitTrialName,
  type Trial,
  trialFromMessage,
  TrialStatus,
} from "./types";
import {
  type BatchResult,
  needsObjectives,
  numberKinds,
  type NumberKinds,
  type Parameters,
  type Result,
  toParametersMessage,
  toTrialObservations,
} from "./values";

/** Deadline of one call attempt unless the client is given another; SuggestTrials has its own. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Deadline of one SuggestTrials attempt unless the client is given another, as
 * in the Python client: a Bayesian-optimization batch of many trials can take
 * minutes on a busy server. A retry after a missed deadline carries the same
 * request id, so the server still makes the trials once.
 */
export const DEFAULT_SUGGEST_TIMEOUT_MS = 300_000;

/** How a `Client` connects and retries. */
export interface ClientOptions {
  /** Deadline of each call attempt but SuggestTrials', in milliseconds. */
  readonly timeoutMs?: number;
  /**
   * Deadline of each SuggestTrials attempt (`suggestTrials`, `suggest`,
   * `optimize`), in milliseconds. When it is longer than the retry policy's
   * `totalTimeoutMs`, that call's budget grows to it, so the budget never cuts
   * the first attempt short.
   */
  readonly suggestTimeoutMs?: number;
  /** How calls that are safe to repeat are retried; `NO_RETRY` turns retries off. */
  readonly retry?: RetryPolicy;
  /** TLS credentials; plaintext when unset. */
  readonly credentials?: grpc.ChannelCredentials;
  /** Extra grpc-js client options (interceptors, channel arguments). */
  readonly grpcOptions?: grpc.ClientOptions;
  /** Called before each retry, for logging. */
  readonly onRetry?: (
    method: string,
    requestId: string,
    error: unknown,
    retry: number,
    waitMs: number,
  ) => void;
}

// Records over the interfaces' keys, so the compiler keeps them in step.
const CLIENT_OPTIONS: Record<keyof ClientOptions, true> = {
  timeoutMs: true,
  suggestTimeoutMs: true,
  retry: true,
  credentials: true,
  grpcOptions: true,
  onRetry: true,
};

/** A trial, or its name "experiments/{experiment}/trials/{index}". */
export type TrialRef = Trial | string;

/** Options of `Client.suggestTrials`. */
export interface SuggestOptions {
  /** Make one batch trial of `count` arms instead of `count` trials. */
  readonly batch?: boolean;
  /** Parameters held at these values in every arm. */
  readonly pinned?: Readonly<Parameters>;
  /** Time-to-live in seconds: a trial without a heartbeat or result for that long is declared lost. */
  readonly ttlS?: number;
  /** Idempotency key; one is drawn when unset. */
  readonly requestId?: string;
}

const SUGGEST_OPTIONS: Record<keyof SuggestOptions, true> = {
  batch: true,
  pinned: true,
  ttlS: true,
  requestId: true,
};

type Callback<Res> = (error: grpc.ServiceError | null, response: Res) => void;
type Unary<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: Callback<Res>,
) => grpc.ClientUnaryCall;

/** A connection to a Polytrial server; safe to share between concurrent calls. */
export class Client {
  readonly address: string;
  private readonly timeoutMs: number;
  private readonly suggestTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly onRetry: ClientOptions["onRetry"];
  private readonly experiments: ExperimentServiceClient;
  private readonly trials: TrialServiceClient;
  private readonly results: ResultServiceClient;
  private readonly orchestrations: OrchestrationServiceClient;
  // The objectives and number kinds never change after creation, so they are
  // fetched once per experiment.
  private readonly definitions = new Map<string, { objectives: string[]; kinds: NumberKinds }>();

  /**
   * Makes the channel; it connects on the first call (or `waitUntilReady`).
   *
   * @throws InvalidArgumentError `address` is not "host:port" with a port from
   *   1 to 65535 ("[ipv6]:port"), "unix:/path" or a gRPC target URI; or an
   *   option is unknown or out of range. The violation names it.
   */
  constructor(address: string, options: ClientOptions = {}) {
    checkAddress(address);
    checkOptions("options", options, CLIENT_OPTIONS);
    if (options.timeoutMs !== undefined && !(checkNumber("options.timeoutMs", options.timeoutMs) > 0))
      throw invalidArgument("options.timeoutMs", "must be positive");
    // Finite too: the call's retry budget grows to this deadline, and grpc-js
    // cannot send an infinite one.
    if (options.suggestTimeoutMs !== undefined) {
      const suggestTimeoutMs = checkNumber("options.suggestTimeoutMs", options.suggestTimeoutMs);
      if (!(suggestTimeoutMs > 0 && Number.isFinite(suggestTimeoutMs)))
        throw invalidArgument(
          "options.suggestTimeoutMs",
          `${suggestTimeoutMs} is not a positive, finite number`,
        );
    }
    this.address = address;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.suggestTimeoutMs = options.suggestTimeoutMs ?? DEFAULT_SUGGEST_TIMEOUT_MS;
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.onRetry = options.onRetry;
    const credentials = options.credentials ?? grpc.credentials.createInsecure();
    try {
      this.experiments = new ExperimentServiceClient(address, credentials, options.grpcOptions);
    } catch (error) {
      // grpc-js throws a plain Error for a target it cannot parse.
      throw invalidArgument(
        "address",
        `cannot open a channel to ${JSON.stringify(address)}: ${String(error)}`,
      );
    }
    // One channel for the three services: grpc-js shares it when given one.
    const channelOverride = this.experiments.getChannel();
    const shared = { ...options.grpcOptions, channelOverride };
    this.trials = new TrialServiceClient(address, credentials, shared);
    this.results = new ResultServiceClient(address, credentials, shared);
    this.orchestrations = new OrchestrationServiceClient(address, credentials, shared);
  }

  /** Closes the channel; calls in flight are cancelled. */
  close(): void {
    this.experiments.close();
  }

  /**
   * Resolves once the channel is connected.
   *
   * @throws UnavailableError no server answered within `timeoutMs`.
   */
  waitUntilReady(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.experiments.waitForReady(Date.now() + timeoutMs, (error) => {
        if (error === undefined || error === null) resolve();
        else
          reject(
            new UnavailableError(`no Polytrial server answered at ${this.address} within ${timeoutMs} ms`),
          );
      });
    });
  }

  // Experiments --------------------------------------------------------------

  /**
   * Creates an experiment. It is made once: a repeat after a lost answer
   * would be refused as ALREADY_EXISTS.
   *
   * @throws InvalidArgumentError a part of the definition is invalid; its `violations` name the fields.
   * @throws AlreadyExistsError the id is taken (with `existOk`: by an
   *   experiment with other parameters or objectives).
   */
  async createExperiment(
    experimentId: string,
    spec: ExperimentSpec,
    options: { readonly existOk?: boolean } = {},
  ): Promise<Experiment> {
    checkOptions("options", options, { existOk: true });
    const message = experimentMessage(experimentId, spec);
    if (options.existOk !== true) return this.createExperimentFromMessage(message);

    // Create-or-get for many workers started at once; retried, since a
    // repeat that finds the experiment is answered the same way.
    try {
      return this.remember(
        await this.call("CreateExperiment", this.experiments, this.experiments.createExperiment, {
          experiment: message,
        }),
      );
    } catch (error) {
      if (!(error instanceof AlreadyExistsError)) throw error;
    }
    const existing = await this.getExperiment(experimentId);
    const wanted = experimentFromMessage(message);
    const shape = (e: Experiment): string => JSON.stringify([e.parameterNames, e.objectives]);
    if (shape(existing) !== shape(wanted)) {
      throw new AlreadyExistsError(
        `${existing.name} exists with parameters [${existing.parameterNames.join(", ")}] and objectives ` +
          `[${existing.objectives.map((o) => o.metricName).join(", ")}], not the ones asked for`,
        { reason: "ALREADY_EXISTS" },
      );
    }
    return existing;
  }

  /** Creates an experiment from the API's message, as `createExperiment` does. */
  async createExperimentFromMessage(experiment: ExperimentMessage): Promise<Experiment> {
    const message = await this.call(
      "CreateExperiment",
      this.experiments,
      this.experiments.createExperiment,
      { experiment },
      false,
    );
    return this.remember(message);
  }

  /**
   * Returns an experiment, given its id or name.
   *
   * @throws NotFoundError it does not exist.
   */
  async getExperiment(experiment: string): Promise<Experiment> {
    const message = await this.call("GetExperiment", this.experiments, this.experiments.getExperiment, {
      name: experimentName(experiment),
    });
    return this.remember(message);
  }

  /** Yields every experiment in order of creation, fetching `pageSize` at a time (0: the server's default). */
  async *listExperiments(
    options: { readonly pageSize?: number } = {},
  ): AsyncGenerator<Experiment, void, undefined> {
    checkOptions("options", options, { pageSize: true });
    let pageToken = "";
    do {
      const response = await this.call(
        "ListExperiments",
        this.experiments,
        this.experiments.listExperiments,
        {
          pageSize: optional(checkInt32, "options.pageSize", options.pageSize) ?? 0,
          pageToken,
        },
      );
      for (const message of response.experiments) yield experimentFromMessage(message);
      pageToken = response.nextPageToken;
    } while (pageToken !== "");
  }

  /**
   * Deletes an experiment with its trials, data and ended orchestration.
   *
   * @throws NotFoundError it does not exist.
   * @throws FailedPreconditionError its orchestration is RUNNING (reason
   *   ORCHESTRATION_RUNNING); nothing is deleted. Stop it first with
   *   stopOrchestration, which also stops its trials in flight.
   */
  async deleteExperiment(experiment: string): Promise<void> {
    await this.call(
      "DeleteExperiment",
      this.experiments,
      this.experiments.deleteExperiment,
      { name: experimentName(experiment) },
      false,
    );
  }

  // Trials: reading ----------------------------------------------------------

  /**
   * Returns a trial.
   *
   * @throws NotFoundError the trial or its experiment does not exist.
   */
  async getTrial(trial: TrialRef): Promise<Trial> {
    return this.trialCall("GetTrial", this.trials, this.trials.getTrial, { name: nameOf(trial) }, true);
  }

  /**
   * Yields an experiment's trials by index, fetching page by page.
   *
   * @throws NotFoundError the experiment does not exist.
   */
  async *listTrials(
    experiment: string,
    options: { readonly statuses?: readonly TrialStatus[]; readonly pageSize?: number } = {},
  ): AsyncGenerator<Trial, void, undefined> {
    checkOptions("options", options, { statuses: true, pageSize: true });
    let pageToken = "";
    do {
      const response = await this.call("ListTrials", this.trials, this.trials.listTrials, {
        parent: experimentName(experiment),
        statuses: (options.statuses ?? []).map((value, i) =>
          checkTrialStatus(`options.statuses[${i}]`, value),
        ),
        pageSize: optional(checkInt32, "options.pageSize", options.pageSize) ?? 0,
        pageToken,
      });
      for (const message of response.trials) yield trialFromMessage(message);
      pageToken = response.nextPageToken;
    } while (pageToken !== "");
  }

  // Trials: asking -----------------------------------------------------------

  /**
   * Generates `count` RUNNING trials (or one batch trial of `count` arms).
   * Each attempt has the client's `suggestTimeoutMs` (300 s by default), not
   * `timeoutMs`, since a Bayesian-optimization batch can take minutes.
   *
   * @throws SearchSpaceExhaustedError a finite space has no new arm left.
   * @throws NotFoundError the experiment does not exist.
   * @throws InvalidArgumentError `count` is not an int32, `ttlS` not a number, ...
   */
  async suggestTrials(experiment: string, count: number, options: SuggestOptions = {}): Promise<Trial[]> {
    checkInt32("count", count);
    const given = checkOptions("options", options, SUGGEST_OPTIONS);
    const requestId = optional(checkString, "options.requestId", given.requestId) ?? newRequestId();
    const ttlS = optional(checkNumber, "options.ttlS", given.ttlS) ?? 0;
    const kinds = options.pinned === undefined ? undefined : (await this.definition(experiment)).kinds;
    const request = {
      parent: experimentName(experiment),
      count,
      batch: options.batch === true,
      pinnedParameters: toParametersMessage(options.pinned ?? {}, kinds),
      requestId,
      ttlS,
    };
    const response = await this.call(
      "SuggestTrials",
      this.trials,
      this.trials.suggestTrials,
      request,
      true,
      requestId,
      this.suggestTimeoutMs,
    );
    return response.trials.map(trialFromMessage);
  }

  /** Generates one single-arm trial: the "ask" of ask/tell. */
  async suggest(experiment: string, options: Omit<SuggestOptions, "batch"> = {}): Promise<Trial> {
    const trials = await this.suggestTrials(experiment, 1, options);
    if (trials.length !== 1)
      throw new Error(`SuggestTrials answered ${trials.length} trials for a count of 1`);
    return trials[0];
  }

  /**
   * Makes a RUNNING trial of parameterizations the caller chose: one makes a
   * single-arm trial, several a batch trial.
   *
   * @throws InvalidArgumentError a value is out of bounds, of the wrong type, or missing.
   */
  async attachTrial(experiment: string, ...arms: Readonly<Parameters>[]): Promise<Trial> {
    const { kinds } = await this.definition(experiment);
    const requestId = newRequestId();
    const armInputs: ArmInput[] = arms.map((parameters) => ({
      parameters: toParametersMessage(parameters, kinds),
      weight: 0,
    }));
    const request = { parent: experimentName(experiment), arms: armInputs, batch: false, requestId, ttlS: 0 };
    return this.trialCall("AttachTrial", this.trials, this.trials.attachTrial, request, true, requestId);
  }

  // Trials: telling ----------------------------------------------------------

  /**
   * Records final data of a RUNNING trial and moves it to COMPLETED: the
   * "tell" of ask/tell.
   *
   * @param result a number or [mean, sem] for the single objective, or an
   *   object metric name -> number | [mean, sem | null]; for a batch trial an
   *   object arm name -> any of those.
   * @throws FailedPreconditionError the trial is not RUNNING (completed already, say); nothing changes.
   * @throws InvalidArgumentError a value is not finite or a metric is unknown.
   */
  async completeTrial(trial: TrialRef, result: Result | BatchResult): Promise<Trial> {
    const name = nameOf(trial);
    const [experimentId, index] = splitTrialName(name);
    const objectives = needsObjectives(result, index) ? (await this.definition(experimentId)).objectives : [];
    // Arms are named "{trial index}_{arm index}" by the API's rule, so a
    // single-arm trial's arm name is known without a round trip.
    const observations = toTrialObservations(result, index, `${index}_0`, objectives);
    const requestId = newRequestId();
    return this.trialCall(
      "CompleteTrial",
      this.trials,
      this.trials.completeTrial,
      { name, observations, requestId },
      true,
      requestId,
    );
  }

  /**
   * Moves a trial to FAILED with a reason. Made once.
   *
   * @throws FailedPreconditionError the trial is final already.
   */
  async failTrial(trial: TrialRef, reason = ""): Promise<Trial> {
    return this.trialCall(
      "FailTrial",
      this.trials,
      this.trials.failTrial,
      { name: nameOf(trial), reason },
      false,
    );
  }

  /**
   * Moves a trial to ABANDONED with a reason; its arm may come again. Made once.
   *
   * @throws FailedPreconditionError the trial is final already.
   */
  async abandonTrial(trial: TrialRef, reason = ""): Promise<Trial> {
    return this.trialCall(
      "AbandonTrial",
      this.trials,
      this.trials.abandonTrial,
      { name: nameOf(trial), reason },
      false,
    );
  }

  /**
   * Renews the time-to-live of a RUNNING trial (0 keeps the previous length).
   * Renewing twice is harmless, so it is retried.
   *
   * @throws FailedPreconditionError the trial is not RUNNING (it may have been declared lost).
   */
  async heartbeat(trial: TrialRef, ttlS = 0): Promise<Trial> {
    return this.trialCall(
      "HeartbeatTrial",
      this.trials,
      this.trials.heartbeatTrial,
      { name: nameOf(trial), ttlS: checkNumber("ttlS", ttlS) },
      true,
    );
  }

  // Runners ------------------------------------------------------------------

  /**
   * Deploys a CANDIDATE trial through the experiment's runner, or through
   * `runner` (for this trial only). It resolves at once with the trial STAGED
   * or RUNNING; `refreshTrial` follows it from there. Made once, like the
   * other state changes: every deployment of a trial carries the same key, so
   * deploying again after an error never starts a second job.
   *
   * @throws FailedPreconditionError the trial is not CANDIDATE, or has no runner.
   * @throws UnavailableError the runner cannot be reached (reason
   *   `RUNNER_UNAVAILABLE`) or has too many calls in flight (`RUNNER_BUSY`);
   *   the trial stays CANDIDATE with its `deploymentError`.
   * @throws DeadlineExceededError the runner is too slow; likewise.
   * @throws AbortedError another deployment of the trial is in flight through a different runner.
   */
  async deployTrial(trial: TrialRef, runner?: RunnerSpec): Promise<Trial> {
    return this.trialCall(
      "DeployTrial",
      this.trials,
      this.trials.deployTrial,
      { name: nameOf(trial), runner: runner === undefined ? undefined : runnerMessage(runner) },
      false,
    );
  }

  /**
   * Asks the trial's runner to stop its job, fetches the job's last data and
   * records the outcome: EARLY_STOPPED when a RUNNING trial has data,
   * ABANDONED otherwise. Made once.
   *
   * @throws FailedPreconditionError the trial is not STAGED or RUNNING, or the runner refused.
   * @throws UnavailableError the runner cannot be reached; nothing changed.
   * @throws DeadlineExceededError the runner is too slow; nothing changed.
   */
  async stopTrial(trial: TrialRef, reason = ""): Promise<Trial> {
    return this.trialCall(
      "StopTrial",
      this.trials,
      this.trials.stopTrial,
      { name: nameOf(trial), reason },
      false,
    );
  }

  /**
   * Polls a deployed trial's runner, fetches its metric data and stores what
   * changed (a completed job completes the trial). A trial that is not
   * STAGED or RUNNING comes back unchanged. Made once.
   *
   * @throws FailedPreconditionError the trial has no runner, or the runner refused.
   * @throws UnavailableError the runner cannot be reached; nothing changed.
   * @throws DeadlineExceededError the runner is too slow; nothing changed.
   */
  async refreshTrial(trial: TrialRef): Promise<Trial> {
    return this.trialCall(
      "RefreshTrial",
      this.trials,
      this.trials.refreshTrial,
      { name: nameOf(trial) },
      false,
    );
  }

  // Results ------------------------------------------------------------------

  /**
   * Returns the best arm by observed mean of the single objective.
   *
   * @throws FailedPreconditionError no trial has data for the objective yet.
   */
  async getBestArm(experiment: string): Promise<ArmResult> {
    const response = await this.call("GetBestArm", this.results, this.results.getBestArm, {
      parent: experimentName(experiment),
    });
    return armResultFromMessage(response.best);
  }

  /**
   * Returns the Pareto-optimal arms of a multi-objective experiment.
   *
   * @throws FailedPreconditionError no trial has data for every objective yet.
   */
  async getParetoFrontier(experiment: string): Promise<ArmResult[]> {
    const response = await this.call("GetParetoFrontier", this.results, this.results.getParetoFrontier, {
      parent: experimentName(experiment),
    });
    return response.arms.map(armResultFromMessage);
  }

  // Orchestrations: the server keeps the experiment going --------------------

  /**
   * Has the server run the experiment through its runner until `maxTrials`
   * trials were created. Carries a request id and is retried with it, so a
   * retry returns the orchestration the first attempt started.
   *
   * @throws InvalidArgumentError an option is out of range; its violation names the field.
   * @throws NotFoundError the experiment does not exist.
   * @throws FailedPreconditionError no runner, an objective without a runner or service
   *   metric source, or an orchestration is RUNNING (reason ORCHESTRATION_RUNNING).
   */
  async startOrchestration(experiment: string, options: StartOrchestrationOptions): Promise<Orchestration> {
    const requestId = newRequestId();
    const optionsMessage = orchestrationOptionsMessage(options);
    const message = await this.call(
      "StartOrchestration",
      this.orchestrations,
      this.orchestrations.startOrchestration,
      { name: orchestrationName(experiment), options: optionsMessage, requestId },
      true,
      requestId,
    );
    return orchestrationFromMessage(message);
  }

  /**
   * Returns the experiment's orchestration.
   *
   * @throws NotFoundError no such experiment, or it was never orchestrated.
   */
  async getOrchestration(experiment: string): Promise<Orchestration> {
    const message = await this.call(
      "GetOrchestration",
      this.orchestrations,
      this.orchestrations.getOrchestration,
      {
        name: orchestrationName(experiment),
      },
    );
    return orchestrationFromMessage(message);
  }

  /**
   * Stops the experiment's orchestration and, best effort, its trials in
   * flight. Stopping one that ended returns it unchanged, so it is retried.
   *
   * @throws NotFoundError no such experiment, or it was never orchestrated.
   */
  async stopOrchestration(experiment: string, reason = ""): Promise<Orchestration> {
    const message = await this.call(
      "StopOrchestration",
      this.orchestrations,
      this.orchestrations.stopOrchestration,
      {
        name: orchestrationName(experiment),
        reason,
      },
    );
    return orchestrationFromMessage(message);
  }

  /**
   * Reads the orchestration every `pollIntervalMs` until it ends, and returns it.
   *
   * @throws DeadlineExceededError it was still RUNNING after `timeoutMs` (it
   *   goes on on the server); its `cause` is unset. The Python client raises
   *   TimeoutError here; JavaScript has no such class, so the client's error
   *   for a deadline stands in.
   * @throws InvalidArgumentError a duration is not a positive number.
   */
  async waitForOrchestration(
    experiment: string,
    options: { readonly timeoutMs?: number; readonly pollIntervalMs?: number } = {},
  ): Promise<Orchestration> {
    const given = checkOptions("options", options, { timeoutMs: true, pollIntervalMs: true });
    const timeoutMs = optional(checkNumber, "options.timeoutMs", given.timeoutMs) ?? 3_600_000;
    const pollIntervalMs = optional(checkNumber, "options.pollIntervalMs", given.pollIntervalMs) ?? 1_000;
    if (!(timeoutMs >= 0)) throw invalidArgument("options.timeoutMs", "must not be negative");
    if (!(pollIntervalMs > 0)) throw invalidArgument("options.pollIntervalMs", "must be positive");
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = await this.getOrchestration(experiment);
      if (current.done) return current;
      const remaining = deadline - Date.now();
      if (remaining <= 0)
        throw new DeadlineExceededError(
          `${current.name} is still RUNNING after ${timeoutMs} ms; it goes on on the server`,
          { metadata: { resource_name: current.name } },
        );
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollIntervalMs, remaining)));
    }
  }

  // Plumbing -----------------------------------------------------------------

  /** The experiment's objective names and number kinds (fetched once). */
  async definition(experiment: string): Promise<{ objectives: string[]; kinds: NumberKinds }> {
    const id = experiment.replace(/^experiments\//, "");
    const known = this.definitions.get(id);
    if (known !== undefined) return known;
    await this.getExperiment(id);
    const fetched = this.definitions.get(id);
    if (fetched === undefined) throw new Error(`experiment ${id} was fetched but not remembered`);
    return fetched;
  }

  private remember(message: ExperimentMessage): Experiment {
    const experiment = experimentFromMessage(message);
    this.definitions.set(experiment.experimentId, {
      objectives: experiment.objectives.map((o) => o.metricName),
      kinds: numberKinds(message.searchSpace?.parameters ?? []),
    });
    return experiment;
  }

  private async trialCall<Req>(
    method: string,
    stub: grpc.Client,
    rpc: Unary<Req, TrialMessage>,
    request: Req,
    retry: boolean,
    requestId = "",
  ): Promise<Trial> {
    return trialFromMessage(await this.call(method, stub, rpc, request, retry, requestId));
  }

  /**
   * Makes one logical call: attempts of `timeoutMs` each, retries with the
   * same request, and typed errors.
   *
   * @throws PolytrialError a subclass for the codes the server answers on purpose.
   * @throws grpc.ServiceError every other code, unchanged.
   */
  private async call<Req, Res>(
    method: string,
    stub: grpc.Client,
    rpc: Unary<Req, Res>,
    request: Req,
    retry = true,
    requestId = "",
    timeoutMs = this.timeoutMs,
  ): Promise<Res> {
    const attempt = (deadline: Date): Promise<Res> =>
      new Promise<Res>((resolve, reject) => {
        rpc.call(stub, request, new grpc.Metadata(), { deadline }, (error, response) =>
          error === null ? resolve(response) : reject(error),
        );
      });
    try {
      return await callWithRetry(attempt, retry ? this.retry : NO_RETRY, timeoutMs, (error, n, waitMs) =>
        this.onRetry?.(method, requestId, error, n, waitMs),
      );
    } catch (error) {
      const typed = isServiceError(error) ? fromServiceError(error) : undefined;
      throw typed ?? error;
    }
  }
}

/**
 * Refuses an address grpc-js would take and then fail on only when the retry
 * budget is spent (port 99999: ERR_SOCKET_BAD_PORT after 60 s), as the Python
 * and Go clients refuse it: "host:port" with a non-empty host (an IPv6 one in
 * brackets) and a port from 1 to 65535, alone or after "dns:" ("dns:///host:port");
 * the targets of grpc-js's other resolvers ("unix:/path", "ipv4:...") and
 * other URIs are left to them.
 *
 * @throws InvalidArgumentError naming `address`.
 */
function checkAddress(address: unknown): void {
  const text = checkString("address", address);
  let hostPort = text;
  if (text.startsWith("dns:")) {
    // dns:host:port, dns:///host:port or dns://authority/host:port.
    const rest = text.slice("dns:".length);
    hostPort = rest.slice(rest.lastIndexOf("/") + 1);
  } else if (/^(unix|unix-abstract|ipv4|ipv6):/.test(text) || text.includes("://")) {
    return;
  }
  const refuse = (problem: string): never => {
    throw invalidArgument(
      "address",
      `${JSON.stringify(text)} ${problem}; give "host:port" with a port from 1 to 65535 ` +
        `(as "localhost:50051"), "[ipv6]:port", "unix:/path" or a gRPC target URI`,
    );
  };
  if (hostPort.trim() === "") refuse("is empty");
  const colon = hostPort.lastIndexOf(":");
  if (colon < 0) refuse("has no port");
  const host = hostPort.slice(0, colon).trim();
  const port = hostPort.slice(colon + 1);
  const bracketed = host.startsWith("[") && host.endsWith("]");
  if (host === "" || (bracketed && host.length === 2)) refuse("has no host");
  if (!bracketed && host.includes(":")) refuse("has an IPv6 host without brackets");
  if (!/^[0-9]+$/.test(port) || Number(port) < 1 || Number(port) > 65535)
    refuse(`has the port ${JSON.stringify(port)}, not a number from 1 to 65535`);
}

function orchestrationName(experiment: string): string {
  return `${experimentName(experiment)}/orchestration`;
}

/** `value` if it is a TrialStatus member (a number; ts-proto enums are numeric). */
function checkTrialStatus(field: string, value: unknown): TrialStatus {
  if (typeof value !== "number" || value < 0 || TrialStatus[value] === undefined)
    throw invalidArgument(
      field,
      `${String(value)} is not a TrialStatus (TrialStatus.TRIAL_STATUS_RUNNING, ...)`,
    );
  return value;
}

/**
 * The name of a trial or trial name.
 *
 * @throws InvalidArgumentError it is neither.
 */
function nameOf(trial: TrialRef): string {
  const name: unknown = typeof trial === "object" && trial !== null ? trial.name : trial;
  if (typeof name !== "string")
    throw invalidArgument(
      "trial",
      "is not a trial or a trial name (experiments/{experiment}/trials/{index})",
    );
  return name;
}
