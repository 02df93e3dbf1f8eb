/**
 * The gRPC side of the runner SDK: a RunnerService around a `Runner`.
 *
 * `listen` binds a server and returns its real port (tests bind port 0);
 * `serve` is the one-call helper that runs until SIGINT or SIGTERM. Requests
 * become the plain types of `types.ts`, `RunnerError`s become their status
 * codes, and deployment keys are remembered so a repeated Run never starts a
 * second job.
 */

import * as grpc from "@grpc/grpc-js";

import {
  Observation as ObservationMessage,
  ParameterValue as ParameterValueMessage,
} from "../../../protos/gen/ts/polytrial/v1/values";
import {
  FetchTrialDataRequest,
  FetchTrialDataResponse,
  PollTrialStatusRequest,
  PollTrialStatusResponse,
  RunnerServiceServer,
  RunnerServiceService,
  RunnerServiceStopTrialRequest,
  RunnerServiceStopTrialResponse,
  RunnerTrial,
  RunnerTrialState,
  RunRequest,
  RunResponse,
  StagingRequiredRequest,
  StagingRequiredResponse,
  TrialKind as TrialKindMessage,
} from "../../../protos/gen/ts/polytrial/v1/runner_service";
import { InvalidTrial, NotSupported, RunnerError, TrialRefused } from "./errors";
import { DeploymentKeys } from "./keys";
import { metadataProblem, representableFields } from "./metadata";
import type { JsonObject, ParameterValue, Runner, Trial, TrialState } from "./types";

const STATE_CODES: Record<TrialState, RunnerTrialState> = {
  STAGED: RunnerTrialState.RUNNER_TRIAL_STATE_STAGED,
  RUNNING: RunnerTrialState.RUNNER_TRIAL_STATE_RUNNING,
  COMPLETED: RunnerTrialState.RUNNER_TRIAL_STATE_COMPLETED,
  FAILED: RunnerTrialState.RUNNER_TRIAL_STATE_FAILED,
  STOPPED: RunnerTrialState.RUNNER_TRIAL_STATE_STOPPED,
};

/** Returns the plain value of a typed parameter value. */
function parameterValue(name: string, value: ParameterValueMessage): ParameterValue {
  const kind = value.kind;
  switch (kind?.$case) {
    case "floatValue":
      return kind.floatValue;
    case "intValue":
      return kind.intValue;
    case "stringValue":
      return kind.stringValue;
    case "boolValue":
      return kind.boolValue;
    default:
      throw new InvalidTrial(`parameter ${name}: no kind of value is set`);
  }
}

/** Returns the plain `Trial` of a `RunnerTrial` message. */
export function trialFromMessage(message: RunnerTrial | undefined): Trial {
  const trial = message ?? RunnerTrial.fromPartial({});
  return {
    experimentId: trial.experimentId,
    trialIndex: trial.trialIndex,
    kind: trial.kind === TrialKindMessage.TRIAL_KIND_BATCH ? "BATCH" : "SINGLE_ARM",
    arms: trial.arms.map((arm) => ({
      name: arm.name,
      parameters: Object.fromEntries(
        Object.entries(arm.parameters).map(([name, value]) => [name, parameterValue(name, value)]),
      ),
      weight: arm.weight || 1,
    })),
    runMetadata: (trial.runMetadata ?? {}) as JsonObject,
    metricNames: [...trial.metricNames],
  };
}

/** Turns a thrown value into a status the server can act on. */
function toServiceError(method: string, error: unknown): Partial<grpc.StatusObject> {
  if (error instanceof RunnerError) {
    return { code: error.code, details: error.message };
  }
  console.error(`runner method ${method} failed:`, error);
  return {
    code: grpc.status.INTERNAL,
    details: `${method} failed with an unexpected error; see the runner's log`,
  };
}

/** Adapts a unary handler body that may throw or reject to a grpc-js handler. */
function unary<Req, Res>(
  method: string,
  body: (request: Req) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    body(call.request).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(method, error)),
    );
  };
}

/**
 * Asks the job `run` started to stop because its metadata cannot be answered:
 * the server never learns of a job whose Run fails, so it would not stop it.
 * The stop gets the fields JSON can hold; a runner without `stopTrial`, or a
 * stop that fails, is only logged.
 */
async function stopUnanswerable(
  runner: Runner,
  trial: Trial,
  metadata: unknown,
  problem: string,
): Promise<void> {
  const which = `experiment ${trial.experimentId} trial ${trial.trialIndex}`;
  console.warn(`${which}: ${problem}; asking the job to stop`);
  if (runner.stopTrial === undefined) {
    console.warn(`${which}: the runner cannot stop trials; its job keeps running`);
    return;
  }
  const started: Trial = { ...trial, runMetadata: representableFields(metadata) as JsonObject };
  try {
    await runner.stopTrial(started, problem);
  } catch (error: unknown) {
    console.error(`${which}: stopping the job failed:`, error);
  }
}

/** Builds the RunnerService implementation for `runner`. */
export function runnerService(runner: Runner): RunnerServiceServer {
  const keys = new DeploymentKeys<RunResponse>();
  return {
    run: unary("Run", async (request: RunRequest): Promise<RunResponse> => {
      if (!request.deploymentKey) {
        throw new InvalidTrial("deployment_key: required, so a retried Run starts no second job");
      }
      const trial = trialFromMessage(request.trial);
      return keys.runOnce(request.deploymentKey, async () => {
        const metadata: unknown = await runner.run(trial, request.deploymentKey);
        const problem = metadataProblem(metadata);
        if (problem !== undefined) {
          await stopUnanswerable(runner, trial, metadata, problem);
          throw new TrialRefused(`${problem}; the job was asked to stop`);
        }
        return { runMetadata: metadata as JsonObject | undefined };
      });
    }),

    stagingRequired: unary(
      "StagingRequired",
      async (_request: StagingRequiredRequest): Promise<StagingRequiredResponse> => ({
        stagingRequired: runner.stagingRequired ?? false,
      }),
    ),

    pollTrialStatus: unary(
      "PollTrialStatus",
      async (request: PollTrialStatusRequest): Promise<PollTrialStatusResponse> => {
        if (runner.pollTrialStatus === undefined) {
          throw new NotSupported("this runner does not poll trials");
        }
        const polled = await runner.pollTrialStatus(trialFromMessage(request.trial));
        return { state: STATE_CODES[polled.state], reason: polled.reason ?? "" };
      },
    ),

    stopTrial: unary(
      "StopTrial",
      async (request: RunnerServiceStopTrialRequest): Promise<RunnerServiceStopTrialResponse> => {
        if (runner.stopTrial === undefined) {
          throw new NotSupported("this runner does not stop trials");
        }
        const metadata = await runner.stopTrial(trialFromMessage(request.trial), request.reason);
        return { runMetadata: metadata ?? {} };
      },
    ),

    fetchTrialData: unary(
      "FetchTrialData",
      async (request: FetchTrialDataRequest): Promise<FetchTrialDataResponse> => {
        if (runner.fetchTrialData === undefined) {
          throw new NotSupported("this runner does not fetch trial data");
        }
        const found = await runner.fetchTrialData(trialFromMessage(request.trial), request.metricNames);
        const observations: ObservationMessage[] = found.map((observation) => {
          if (!Number.isFinite(observation.mean)) {
            throw new Error(
              `observation of ${observation.metricName} for arm ${observation.armName} is not finite`,
            );
          }
          return { ...observation };
        });
        return { observations };
      },
    ),
  };
}

/** Returns a gRPC server (not yet bound) serving `runner`. */
export function createServer(runner: Runner, options?: grpc.ServerOptions): grpc.Server {
  const server = new grpc.Server(options);
  server.addService(RunnerServiceService, runnerService(runner) as grpc.UntypedServiceImplementation);
  return server;
}

/**
 * Binds a server for `runner` to `address` (host:port; port 0 picks a free
 * one) and resolves with the server and its real port.
 */
export function listen(runner: Runner, address: string): Promise<{ server: grpc.Server; port: number }> {
  const server = createServer(runner);
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error !== null) {
        reject(new Error(`cannot bind runner server to ${address}: ${error.message}`));
      } else {
        resolve({ server, port });
      }
    });
  });
}

/** Lets in-flight calls finish for up to `graceMs`, then cuts them. */
export function stopGracefully(server: grpc.Server, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Serves `runner` on `address` until SIGINT or SIGTERM, then stops gracefully.
 * `onListening` is called with the bound "host:port".
 */
export async function serve(
  runner: Runner,
  address = "127.0.0.1:50063",
  onListening?: (bound: string) => void,
): Promise<void> {
  const { server, port } = await listen(runner, address);
  const bound = `${address.slice(0, address.lastIndexOf(":"))}:${port}`;
  onListening?.(bound);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await stopGracefully(server);
}
