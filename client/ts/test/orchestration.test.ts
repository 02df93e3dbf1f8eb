/** startOrchestration, getOrchestration, stopOrchestration against a real server and a loopback runner. */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import * as grpc from "@grpc/grpc-js";

import {
  RunnerServiceService,
  type RunnerServiceServer,
  RunnerTrialState,
} from "../../../protos/gen/ts/polytrial/v1/runner_service";
import {
  Client,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  OrchestrationState,
  rangeParameter,
} from "../src/index";
import { startServer, type TestServer } from "./server";

/** A runner whose jobs complete at once with loss = x * x. */
const handlers: RunnerServiceServer = {
  stagingRequired: (_call, callback) => callback(null, { stagingRequired: false }),
  run: (call, callback) => callback(null, { runMetadata: { name: `job-${call.request.deploymentKey}` } }),
  pollTrialStatus: (_call, callback) =>
    callback(null, { state: RunnerTrialState.RUNNER_TRIAL_STATE_COMPLETED, reason: "" }),
  fetchTrialData: (call, callback) =>
    callback(null, {
      observations: (call.request.trial?.arms ?? []).map((arm) => {
        const kind = arm.parameters.x?.kind;
        const x = kind?.$case === "floatValue" ? kind.floatValue : NaN;
        return { armName: arm.name, metricName: "loss", mean: x * x };
      }),
    }),
  stopTrial: (_call, callback) => callback(null, { runMetadata: {} }),
};

let server: TestServer;
let client: Client;
const runner = new grpc.Server();
let runnerAddress = "";

before(async () => {
  server = await startServer();
  client = new Client(server.address);
  runner.addService(RunnerServiceService, handlers);
  runnerAddress = await new Promise<string>((resolve, reject) => {
    runner.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) =>
      error === null ? resolve(`127.0.0.1:${port}`) : reject(error),
    );
  });
});

after(async () => {
  client.close();
  runner.forceShutdown();
  await server.stop();
});

describe("orchestrations", () => {
  it("an orchestration runs its budget through the runner and completes", async () => {
    const id = `ts-orchestrate-${process.pid}`;
    await client.createExperiment(id, {
      parameters: [rangeParameter("x", -5, 5)],
      objectives: { loss: "minimize" },
      generationStrategy: { kind: "sobol", seed: 7 },
      runner: { address: runnerAddress, timeoutS: 5 },
      metricSources: { loss: "runner" },
    });

    const started = await client.startOrchestration(id, {
      maxTrials: 4,
      maxParallelTrials: 2,
      pollIntervalS: 0.1,
    });
    assert.equal(started.state, OrchestrationState.ORCHESTRATION_STATE_RUNNING);
    assert.equal(started.experimentId, id);
    const done = await client.waitForOrchestration(id, { timeoutMs: 30_000, pollIntervalMs: 100 });

    assert.equal(done.state, OrchestrationState.ORCHESTRATION_STATE_COMPLETED);
    assert.equal(done.trialsCreated, 4);
    assert.deepEqual(done.trialCounts, { COMPLETED: 4 });
    assert.equal(done.trialIndices.length, 4);
  });

  it("bad starts are typed errors and a never-started orchestration is NOT_FOUND", async () => {
    const id = `ts-orchestrate-bad-${process.pid}`;
    await client.createExperiment(id, {
      parameters: [rangeParameter("x", -5, 5)],
      objectives: { loss: "minimize" },
    });

    await assert.rejects(client.startOrchestration(id, { maxTrials: 3 }), FailedPreconditionError);
    await assert.rejects(client.startOrchestration(id, { maxTrials: 0 }), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, `got ${String(error)}`);
      assert.ok(error.violations.some((v) => v.field === "options.max_trials"));
      return true;
    });
    await assert.rejects(client.getOrchestration(id), NotFoundError);
    await assert.rejects(client.stopOrchestration(id), NotFoundError);
  });
});
