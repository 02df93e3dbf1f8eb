/**
 * Polytrial's runner SDK for TypeScript: implement `Runner`, call `serve`, and
 * the Polytrial server can deploy trials on your system.
 *
 *     import { serve } from "@polytrial/runner";
 *
 *     void serve({
 *       run: (trial) => ({ name: submitJob(trial.arms[0].parameters) }),
 *     }, "127.0.0.1:50063");
 */

export * from "./errors";
export { DeploymentKeys, MAX_REMEMBERED_KEYS } from "./keys";
export { createServer, listen, runnerService, serve, stopGracefully, trialFromMessage } from "./server";
export type {
  Arm,
  Awaitable,
  JsonObject,
  JsonValue,
  Observation,
  ParameterValue,
  Runner,
  Trial,
  TrialKind,
  TrialState,
  TrialStatus,
} from "./types";
