/**
 * Arguments the client cannot send (fractional or out-of-range integers,
 * unknown enum words, results of the wrong shape) are refused before any call
 * as InvalidArgumentError naming the field, and nothing is stored.
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  choiceParameter,
  Client,
  DeadlineExceededError,
  type ExperimentSpec,
  InvalidArgumentError,
  NotFoundError,
  rangeParameter,
  type Result,
  type SuggestOptions,
  type StartOrchestrationOptions,
  TrialStatus,
} from "../src/index";
import { startServer, type TestServer } from "./server";

let server: TestServer;
let client: Client;
let counter = 0;

before(async () => {
  server = await startServer();
  client = new Client(server.address);
});

after(async () => {
  client.close();
  await server.stop();
});

function newExperimentId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** Asserts that `promise` rejects with an InvalidArgumentError whose one violation is `field`. */
async function rejectsNaming(promise: Promise<unknown>, field: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(error)}`);
    assert.deepEqual(
      error.violations.map((v) => v.field),
      [field],
    );
    assert.ok(error.message.startsWith(`${field}: `), error.message);
    return true;
  });
}

/** The same, for a function that throws before it returns a promise. */
function throwsNaming(fn: () => unknown, field: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(error)}`);
    assert.deepEqual(
      error.violations.map((v) => v.field),
      [field],
    );
    return true;
  });
}

const SPEC: ExperimentSpec = {
  parameters: [rangeParameter("x", -5, 5)],
  objectives: { loss: "minimize" },
  generationStrategy: "sobol",
};

/** Makes an experiment without a runner and one RUNNING trial of it. */
async function runningTrial(prefix: string): Promise<[string, Awaited<ReturnType<Client["suggest"]>>]> {
  const id = newExperimentId(prefix);
  await client.createExperiment(id, SPEC);
  return [id, await client.suggest(id)];
}

describe("arguments the client cannot send", { timeout: 30_000 }, () => {
  it("a suggestTimeoutMs or timeoutMs that is not positive is InvalidArgumentError naming it, and no channel opens", () => {
    for (const bad of [0, -1, NaN, "300" as unknown as number]) {
      throwsNaming(() => new Client(server.address, { suggestTimeoutMs: bad }), "options.suggestTimeoutMs");
      throwsNaming(() => new Client(server.address, { timeoutMs: bad }), "options.timeoutMs");
    }
    // The suggest call's retry budget grows to its deadline, so it must be finite.
    throwsNaming(
      () => new Client(server.address, { suggestTimeoutMs: Infinity }),
      "options.suggestTimeoutMs",
    );
  });

  it("a fractional, too large or NaN maxTrials is InvalidArgumentError naming options.maxTrials, and nothing starts", async () => {
    const id = newExperimentId("max-trials");
    await client.createExperiment(id, SPEC);

    for (const maxTrials of [1.5, 2 ** 40, NaN, Infinity]) {
      await rejectsNaming(client.startOrchestration(id, { maxTrials }), "options.maxTrials");
    }
    await rejectsNaming(
      client.startOrchestration(id, { maxTrials: 3, maxParallelTrials: 0.5 }),
      "options.maxParallelTrials",
    );
    await rejectsNaming(
      client.startOrchestration(id, { maxTrials: 3, pollIntervalS: "1" as unknown as number }),
      "options.pollIntervalS",
    );
    await assert.rejects(client.getOrchestration(id), NotFoundError);
  });

  it("missing orchestration options are InvalidArgumentError naming options", async () => {
    const id = newExperimentId("no-options");
    await client.createExperiment(id, SPEC);

    await rejectsNaming(
      client.startOrchestration(id, undefined as unknown as StartOrchestrationOptions),
      "options",
    );
    await rejectsNaming(
      client.startOrchestration(id, {} as unknown as StartOrchestrationOptions),
      "options.maxTrials",
    );
    await assert.rejects(client.getOrchestration(id), NotFoundError);
  });

  it("a fractional or too large suggestTrials count is InvalidArgumentError naming count, and no trial is made", async () => {
    const id = newExperimentId("count");
    await client.createExperiment(id, SPEC);

    await rejectsNaming(client.suggestTrials(id, 1.5), "count");
    await rejectsNaming(client.suggestTrials(id, 2 ** 31), "count");
    await rejectsNaming(client.suggestTrials(id, 1, { ttlS: "10" as unknown as number }), "options.ttlS");
    const trials = [];
    for await (const trial of client.listTrials(id)) trials.push(trial);
    assert.deepEqual(trials, []);
  });

  it("an unknown objective direction is InvalidArgumentError naming the objective, and nothing is stored", async () => {
    const id = newExperimentId("direction");
    const spec = { ...SPEC, objectives: { loss: "smallest" } } as unknown as ExperimentSpec;

    await rejectsNaming(client.createExperiment(id, spec), "objectives.loss");
    await assert.rejects(client.getExperiment(id), NotFoundError);
  });

  it("an unknown metric source is InvalidArgumentError naming the metric, and nothing is stored", async () => {
    const id = newExperimentId("source");
    const spec = { ...SPEC, metricSources: { loss: "bogus" } } as unknown as ExperimentSpec;

    await rejectsNaming(client.createExperiment(id, spec), "metricSources.loss");
    await assert.rejects(client.getExperiment(id), NotFoundError);
  });

  it("an unknown strategy, parameter type or fractional seed is InvalidArgumentError naming it", async () => {
    const id = newExperimentId("strategy");
    const bogus = <T>(value: unknown): T => value as T;

    await rejectsNaming(
      client.createExperiment(id, { ...SPEC, generationStrategy: bogus("random") }),
      "generationStrategy",
    );
    await rejectsNaming(
      client.createExperiment(id, { ...SPEC, generationStrategy: { kind: "sobol", seed: 0.5 } }),
      "generationStrategy.seed",
    );
    throwsNaming(() => rangeParameter("x", 0, 1, { type: bogus("integer") }), "parameters.x.type");
    throwsNaming(() => rangeParameter("x", 0, 1, { digits: 2.5 }), "parameters.x.digits");
    await assert.rejects(client.getExperiment(id), NotFoundError);
  });

  it("a result that is not a number, pair or object of metrics is InvalidArgumentError naming result, and the trial stays RUNNING", async () => {
    const [, trial] = await runningTrial("result");

    await rejectsNaming(client.completeTrial(trial, {}), "result");
    await rejectsNaming(client.completeTrial(trial, "abc" as unknown as Result), "result");
    await rejectsNaming(client.completeTrial(trial, { loss: "low" } as unknown as Result), "result.loss");
    await rejectsNaming(client.completeTrial(undefined as unknown as string, 1), "trial");
    assert.equal((await client.getTrial(trial)).status, TrialStatus.TRIAL_STATUS_RUNNING);
  });

  it("a null or undefined result is InvalidArgumentError naming result, and the trial stays RUNNING", async () => {
    const [, trial] = await runningTrial("null-result");

    await rejectsNaming(client.completeTrial(trial, null as unknown as Result), "result");
    await rejectsNaming(client.completeTrial(trial, undefined as unknown as Result), "result");
    await rejectsNaming(
      client.completeTrial(trial, { [`${trial.index}_0`]: null } as unknown as Result),
      "result.0_0",
    );
    assert.equal((await client.getTrial(trial)).status, TrialStatus.TRIAL_STATUS_RUNNING);
  });

  it("choice values that are not an array are InvalidArgumentError naming parameters.{name}.values", () => {
    throwsNaming(() => choiceParameter("c", "ab" as unknown as string[]), "parameters.c.values");
    throwsNaming(() => choiceParameter("c", undefined as unknown as string[]), "parameters.c.values");
    throwsNaming(() => choiceParameter("c", ["a", {} as unknown as string]), "parameters.c.values[1]");
  });

  it("an unknown key of the spec is InvalidArgumentError naming it and listing the known ones, and nothing is stored", async () => {
    const id = newExperimentId("unknown-key");
    const typo = { ...SPEC, parameterConstrains: [] } as unknown as ExperimentSpec;

    await assert.rejects(client.createExperiment(id, typo), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, `got ${String(error)}`);
      assert.deepEqual(
        error.violations.map((v) => v.field),
        ["spec.parameterConstrains"],
      );
      assert.match(
        error.message,
        /^spec\.parameterConstrains: unknown option; known: parameters, objectives, /,
      );
      assert.match(error.message, /outcomeConstraints/);
      return true;
    });
    await assert.rejects(client.getExperiment(id), NotFoundError);
  });

  it("an unknown key of a nested spec part or an options object is InvalidArgumentError naming it", async () => {
    const id = newExperimentId("unknown-nested");
    const bogus = <T>(value: unknown): T => value as T;

    await rejectsNaming(
      client.createExperiment(id, { ...SPEC, generationStrategy: bogus({ kind: "sobol", seeed: 1 }) }),
      "generationStrategy.seeed",
    );
    await rejectsNaming(
      client.createExperiment(id, { ...SPEC, runner: bogus({ address: "127.0.0.1:1", timeout: 1 }) }),
      "runner.timeout",
    );
    await rejectsNaming(
      client.createExperiment(id, {
        ...SPEC,
        outcomeConstraints: [bogus({ metric: "cost", op: "<=", bound: 1 })],
      }),
      "outcomeConstraints[0].metric",
    );
    await rejectsNaming(client.createExperiment(id, SPEC, bogus({ exist_ok: true })), "options.exist_ok");
    throwsNaming(() => rangeParameter("x", 0, 1, bogus({ log_scale: true })), "parameters.x.log_scale");
    throwsNaming(() => choiceParameter("c", ["a"], bogus({ isOrdered: true })), "parameters.c.isOrdered");
    await assert.rejects(client.getExperiment(id), NotFoundError);

    const [other] = await runningTrial("unknown-options");
    await rejectsNaming(client.suggestTrials(other, 1, bogus<SuggestOptions>({ ttl: 10 })), "options.ttl");
    await rejectsNaming(
      client.startOrchestration(other, bogus<StartOrchestrationOptions>({ maxTrials: 1, maxParallel: 2 })),
      "options.maxParallel",
    );
    await rejectsNaming(client.waitForOrchestration(other, bogus({ timeout: 1 })), "options.timeout");
    await rejectsNaming(client.listTrials(other, bogus({ status: [] })).next(), "options.status");
    throwsNaming(() => new Client(server.address, bogus({ timeout: 1 })), "options.timeout");
  });

  it("outcome constraints, thresholds, a status quo or properties the client cannot send are InvalidArgumentError naming them", async () => {
    const id = newExperimentId("bad-parts");
    const bogus = <T>(value: unknown): T => value as T;

    await rejectsNaming(
      client.createExperiment(id, { ...SPEC, outcomeConstraints: ["cost < 1"] }),
      "outcomeConstraints[0]",
    );
    await rejectsNaming(
      client.createExperiment(id, { ...SPEC, outcomeConstraints: ["cost <= one"] }),
      "outcomeConstraints[0]",
    );
    await rejectsNaming(
      client.createExperiment(id, { ...SPEC, objectiveThresholds: bogus({ loss: "1" }) }),
      "objectiveThresholds.loss",
    );
    await rejectsNaming(
      client.createExperiment(id, { ...SPEC, statusQuo: bogus({ x: [1] }) }),
      "statusQuo.x",
    );
    await rejectsNaming(
      client.createExperiment(id, { ...SPEC, properties: { team: { size: NaN } } }),
      "properties.team.size",
    );
    await rejectsNaming(
      client.createExperiment(id, { ...SPEC, properties: { at: new Date() } }),
      "properties.at",
    );
    await assert.rejects(client.getExperiment(id), NotFoundError);
  });

  it("an address without a host or with a port outside 1-65535 is InvalidArgumentError naming address, at once", async () => {
    for (const bad of [
      "",
      "  ",
      "localhost",
      "127.0.0.1:99999",
      "127.0.0.1:0",
      ":58051",
      "[]:50051",
      "::1:50051",
      "localhost:port",
      "localhost:",
      "dns:///:50051",
      "dns:///localhost:99999",
      "dns:localhost",
    ]) {
      throwsNaming(() => new Client(bad), "address");
    }
    throwsNaming(() => new Client(undefined as unknown as string), "address");
    for (const good of [
      server.address,
      "[::1]:50051",
      "localhost:65535",
      "dns:///localhost:50051",
      "dns:localhost:50051",
      "ipv4:127.0.0.1:50051",
      "unix:/tmp/polytrial.sock",
    ]) {
      new Client(good).close();
    }
    const viaDns = new Client(`dns:///${server.address}`);
    await viaDns.waitUntilReady();
    viaDns.close();
  });

  it("a trial status given by its word is InvalidArgumentError naming options.statuses[i]", async () => {
    const [id] = await runningTrial("statuses");
    const statuses = [TrialStatus.TRIAL_STATUS_RUNNING, "COMPLETED" as unknown as TrialStatus];

    await rejectsNaming(client.listTrials(id, { statuses }).next(), "options.statuses[1]");
  });

  it("waitForOrchestration that times out is DeadlineExceededError naming the orchestration", async () => {
    const id = newExperimentId("wait");
    // A runner address nothing listens on keeps the orchestration RUNNING
    // (it waits out runnerUnreachableTimeoutS) for longer than the wait.
    await client.createExperiment(id, {
      ...SPEC,
      runner: { address: "127.0.0.1:1", timeoutS: 1 },
      metricSources: { loss: "runner" },
    });
    await client.startOrchestration(id, { maxTrials: 1, pollIntervalS: 0.1, runnerUnreachableTimeoutS: 600 });

    await assert.rejects(
      client.waitForOrchestration(id, { timeoutMs: 300, pollIntervalMs: 100 }),
      (error: unknown) => {
        assert.ok(error instanceof DeadlineExceededError, `got ${String(error)}`);
        assert.match(error.message, /still RUNNING/);
        assert.equal(error.metadata.resource_name, `experiments/${id}/orchestration`);
        return true;
      },
    );
    await client.stopOrchestration(id);
  });
});
