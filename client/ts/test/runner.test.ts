/** deployTrial, refreshTrial and stopTrial against a real server and a loopback runner. */

import assert from "node:assert/strict";
import { createServer } from "node:net";
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
  rangeParameter,
  RUNNER_UNAVAILABLE,
  type Trial,
  TrialStatus,
  UnavailableError,
} from "../src/index";
import { startServer, type TestServer } from "./server";

/** A runner whose jobs complete at once with loss = x * x; it records stops. */
class FakeRunner {
  readonly stops: string[] = [];
  private readonly server = new grpc.Server();

  readonly handlers: RunnerServiceServer = {
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
    stopTrial: (call, callback) => {
      this.stops.push(call.request.reason);
      callback(null, { runMetadata: { stopped: true } });
    },
  };

  /** Starts serving on a free loopback port; resolves with the address. */
  start(): Promise<string> {
    this.server.addService(RunnerServiceService, this.handlers);
    return new Promise((resolve, reject) => {
      this.server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) =>
        error === null ? resolve(`127.0.0.1:${port}`) : reject(error),
      );
    });
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

/** A loopback address nothing listens on. */
function closedAddress(): Promise<string> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(`127.0.0.1:${port}`));
    });
  });
}

let server: TestServer;
let client: Client;
const runners: FakeRunner[] = [];
let counter = 0;

before(async () => {
  server = await startServer();
  client = new Client(server.address);
});

after(async () => {
  client.close();
  for (const runner of runners) runner.stop();
  await server.stop();
});

/** Creates an experiment deployed through a fresh runner; suggests one CANDIDATE trial. */
async function runnerExperiment(prefix: string): Promise<{ runner: FakeRunner; candidate: Trial }> {
  const runner = new FakeRunner();
  runners.push(runner);
  const address = await runner.start();
  counter += 1;
  const id = `${prefix}-${process.pid}-${counter}`;
  await client.createExperiment(id, {
    parameters: [rangeParameter("x", -5, 5)],
    objectives: { loss: "minimize" },
    generationStrategy: { kind: "sobol", seed: 7 },
    runner: { address, timeoutS: 5 },
    metricSources: { loss: "runner" },
  });
  const candidate = await client.suggest(id);
  assert.equal(candidate.status, TrialStatus.TRIAL_STATUS_CANDIDATE);
  return { runner, candidate };
}

describe("runners", () => {
  it("a deployed trial is refreshed to completion with the runner's data", async () => {
    const { candidate } = await runnerExperiment("ts-deploy");

    const deployed = await client.deployTrial(candidate);
    assert.equal(deployed.status, TrialStatus.TRIAL_STATUS_RUNNING);
    assert.match(deployed.deployedName, /^job-/);
    assert.equal(deployed.runMetadata.name, deployed.deployedName);

    const completed = await client.refreshTrial(candidate.name);
    assert.equal(completed.status, TrialStatus.TRIAL_STATUS_COMPLETED);
    const x = candidate.parameters.x as number;
    assert.deepEqual(
      completed.observations.map((o) => [o.metricName, o.mean]),
      [["loss", x * x]],
    );
  });

  it("a stopped trial keeps the job's last data and its runner is asked with the reason", async () => {
    const { runner, candidate } = await runnerExperiment("ts-stop");
    await client.deployTrial(candidate);

    const stopped = await client.stopTrial(candidate, "no longer needed");

    // The stop fetched the job's data, so the trial is early-stopped.
    assert.equal(stopped.status, TrialStatus.TRIAL_STATUS_EARLY_STOPPED);
    assert.equal(stopped.statusReason, "no longer needed");
    assert.deepEqual(runner.stops, ["no longer needed"]);
    assert.equal(stopped.runMetadata.stopped, true);
    await assert.rejects(client.stopTrial(candidate, "again"), FailedPreconditionError);
  });

  it("deploying through an unreachable runner is UNAVAILABLE and the trial stays CANDIDATE", async () => {
    const { candidate } = await runnerExperiment("ts-down");
    const down = await closedAddress();

    await assert.rejects(client.deployTrial(candidate, { address: down, timeoutS: 1 }), (error: unknown) => {
      assert.ok(error instanceof UnavailableError, `got ${String(error)}`);
      assert.equal(error.reason, RUNNER_UNAVAILABLE);
      return true;
    });
    const kept = await client.getTrial(candidate);
    assert.equal(kept.status, TrialStatus.TRIAL_STATUS_CANDIDATE);
    assert.notEqual(kept.deploymentError, "");
  });

  it("stopping an undeployed trial is FAILED_PRECONDITION and refreshing it changes nothing", async () => {
    const { runner, candidate } = await runnerExperiment("ts-undeployed");

    await assert.rejects(client.stopTrial(candidate), FailedPreconditionError);
    const refreshed = await client.refreshTrial(candidate);
    assert.equal(refreshed.status, TrialStatus.TRIAL_STATUS_CANDIDATE);
    assert.deepEqual(runner.stops, []);
  });
});
