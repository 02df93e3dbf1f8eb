/** The TypeScript client against a real `polytrial serve` subprocess. */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import * as grpc from "@grpc/grpc-js";

import { ComparisonOp } from "../../../protos/gen/ts/polytrial/v1/experiment";
import type { SuggestTrialsRequest } from "../../../protos/gen/ts/polytrial/v1/trial_service";
import {
  AlreadyExistsError,
  backoffMs,
  choiceParameter,
  Client,
  type ClientOptions,
  DEFAULT_RETRY_POLICY,
  DEFAULT_SUGGEST_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  FailedPreconditionError,
  InvalidArgumentError,
  NO_RETRY,
  NotFoundError,
  optimize,
  PolytrialError,
  rangeParameter,
  type Result,
  trialName,
  TrialStatus,
  UnavailableError,
} from "../src/index";
import { callWithRetry } from "../src/retry";
import { startServer, type TestServer } from "./server";

let server: TestServer;
const clients: Client[] = [];
let counter = 0;

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const client of clients) client.close();
  await server.stop();
});

function connect(options: ClientOptions = {}): Client {
  const client = new Client(server.address, options);
  clients.push(client);
  return client;
}

function newExperimentId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** A Sobol-only experiment with x in [-5, 5] and n in [1, 10], minimizing "loss". */
async function createSobol(client: Client, prefix: string): Promise<string> {
  const id = newExperimentId(prefix);
  await client.createExperiment(id, {
    parameters: [rangeParameter("x", -5, 5), rangeParameter("n", 1, 10, { type: "int" })],
    objectives: { loss: "minimize" },
    generationStrategy: { kind: "sobol", seed: 7 },
  });
  return id;
}

/** An interceptor that calls `onCall` with each call's method path. */
function watch(onCall: (path: string) => void): grpc.Interceptor {
  return (options, nextCall) => {
    onCall(options.method_definition.path);
    return new grpc.InterceptingCall(nextCall(options));
  };
}

/**
 * An interceptor that records, by method name ("SuggestTrials"), the
 * milliseconds each call had left before its deadline when it went out
 * (Infinity without one).
 */
function recordDeadlines(left: Map<string, number[]>): grpc.Interceptor {
  return (options, nextCall) => {
    const method = options.method_definition.path.split("/").pop() ?? "";
    const deadline = options.deadline instanceof Date ? options.deadline.getTime() : options.deadline;
    left.set(method, [...(left.get(method) ?? []), (deadline ?? Infinity) - Date.now()]);
    return new grpc.InterceptingCall(nextCall(options));
  };
}

/**
 * Asserts that every recorded call had `want(method)` left, give or take the
 * few seconds a busy machine takes between computing the deadline and sending.
 */
function assertDeadlines(left: Map<string, number[]>, want: (method: string) => number): void {
  for (const [method, lefts] of left)
    for (const ms of lefts)
      assert.ok(
        ms <= want(method) && ms >= want(method) - 5_000,
        `a ${method} call had ${ms} ms before its deadline, want ${want(method)}`,
      );
}

describe("Client against a real server", { timeout: 30_000 }, () => {
  it("returns a created experiment from getExperiment", async () => {
    const client = connect();
    const id = newExperimentId("create");
    const created = await client.createExperiment(id, {
      parameters: [
        rangeParameter("lr", 1e-4, 1e-1, { logScale: true }),
        choiceParameter("optimizer", ["adam", "sgd"]),
      ],
      objectives: { accuracy: "maximize" },
      generationStrategy: "sobol",
      description: "two parameters",
    });

    const got = await client.getExperiment(id);

    assert.equal(got.name, `experiments/${id}`);
    assert.equal(created.name, got.name);
    assert.deepEqual(got.parameterNames, ["lr", "optimizer"]);
    assert.deepEqual(got.objectives, [{ metricName: "accuracy", minimize: false }]);
    assert.equal(got.message.description, "two parameters");
  });

  it("stores outcome constraints, objective thresholds, a status quo and properties given to createExperiment", async () => {
    const client = connect();
    const id = newExperimentId("full-spec");
    await client.createExperiment(id, {
      parameters: [rangeParameter("x", 0, 1), rangeParameter("n", 1, 10, { type: "int" })],
      objectives: { loss: "minimize", accuracy: "maximize" },
      outcomeConstraints: ["cost <= 1", { metricName: "latency", op: ">=", bound: 0.5 }],
      objectiveThresholds: { loss: 10, accuracy: 0.25 },
      trackingMetrics: ["cost", "latency"],
      statusQuo: { x: 0.5, n: 3 },
      properties: { team: "search", budget: 2, tags: ["a", null], nested: { ok: true } },
      generationStrategy: "sobol",
    });

    const { message } = await client.getExperiment(id);

    const config = message.optimizationConfig;
    assert.deepEqual(
      config?.outcomeConstraints.map((c) => [c.metricName, c.op, c.bound]),
      [
        ["cost", ComparisonOp.COMPARISON_OP_LESS_EQUAL, 1],
        ["latency", ComparisonOp.COMPARISON_OP_GREATER_EQUAL, 0.5],
      ],
    );
    assert.deepEqual(
      config?.objectiveThresholds.map((t) => [t.metricName, t.bound]),
      [
        ["loss", 10],
        ["accuracy", 0.25],
      ],
    );
    // An integer parameter's status-quo value is sent as an integer.
    assert.deepEqual(message.statusQuo?.parameters.x.kind, { $case: "floatValue", floatValue: 0.5 });
    assert.deepEqual(message.statusQuo?.parameters.n.kind, { $case: "intValue", intValue: 3 });
    assert.deepEqual(message.properties, {
      team: "search",
      budget: 2,
      tags: ["a", null],
      nested: { ok: true },
    });
  });

  it("completes an ask/tell loop of Sobol trials and finds the best arm", async () => {
    const client = connect();
    const id = await createSobol(client, "asktell");
    const losses = new Map<number, number>();
    for (let i = 0; i < 4; i++) {
      const trial = await client.suggest(id);
      assert.equal(trial.status, TrialStatus.TRIAL_STATUS_RUNNING);
      assert.equal(trial.generator, "sobol");
      const { x, n } = trial.parameters;
      assert.ok(typeof x === "number" && x >= -5 && x <= 5, `x = ${String(x)}`);
      assert.ok(typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 10, `n = ${String(n)}`);
      await client.heartbeat(trial);
      const loss = x * x + n;
      losses.set(trial.index, loss);
      const result: Result = trial.index % 2 === 1 ? [loss, 0.1] : loss;

      const completed = await client.completeTrial(trial, result);

      assert.equal(completed.status, TrialStatus.TRIAL_STATUS_COMPLETED);
      assert.equal(completed.observations.length, 1);
      assert.equal(completed.observations[0].mean, loss);
      assert.equal(completed.observations[0].sem, trial.index % 2 === 1 ? 0.1 : undefined);
    }

    const best = await client.getBestArm(id);

    const [wantIndex, wantLoss] = [...losses].reduce((a, b) => (b[1] < a[1] ? b : a));
    assert.deepEqual(best.trialIndices, [wantIndex]);
    assert.equal(best.metrics.loss.mean, wantLoss);
  });

  it("attaches a trial of the caller's parameters, integers as integers", async () => {
    const client = connect();
    const id = await createSobol(client, "attach");

    const trial = await client.attachTrial(id, { x: 2, n: 3 });

    assert.deepEqual(trial.parameters, { x: 2, n: 3 });
    assert.equal(trial.message.arms[0].arm?.parameters.x.kind?.$case, "floatValue");
    assert.equal(trial.message.arms[0].arm?.parameters.n.kind?.$case, "intValue");
    const abandoned = await client.abandonTrial(trial.name, "changed my mind");
    assert.equal(abandoned.status, TrialStatus.TRIAL_STATUS_ABANDONED);
    assert.equal(abandoned.statusReason, "changed my mind");
  });

  it("answers NotFoundError for a missing experiment", async () => {
    const client = connect();

    const error = await client.getExperiment("no-such-experiment").catch((e: unknown) => e);

    assert.ok(error instanceof NotFoundError, `got ${String(error)}`);
    assert.ok(error instanceof PolytrialError);
    assert.equal(error.code, grpc.status.NOT_FOUND);
    assert.equal(error.reason, "NOT_FOUND");
    assert.equal(error.metadata.resource_name, "experiments/no-such-experiment");
    assert.equal((error.cause as grpc.ServiceError).code, grpc.status.NOT_FOUND);
    await assert.rejects(async () => {
      for await (const trial of client.listTrials("no-such-experiment")) assert.fail(`yielded ${trial.name}`);
    }, NotFoundError);
  });

  it("answers InvalidArgumentError naming the field for a minimum above the maximum, and stores nothing", async () => {
    const client = connect();
    const id = newExperimentId("badspace");

    const error = await client
      .createExperiment(id, { parameters: [rangeParameter("x", 5, 1)], objectives: { loss: "minimize" } })
      .catch((e: unknown) => e);

    assert.ok(error instanceof InvalidArgumentError, `got ${String(error)}`);
    assert.ok(error.violations.length > 0, "no field violation");
    assert.match(error.violations[0].field, /search_space\.parameters\[0\]/);
    assert.notEqual(error.violations[0].description, "");
    await assert.rejects(client.getExperiment(id), NotFoundError);
  });

  it("answers FailedPreconditionError for completing a trial twice, and keeps the first data", async () => {
    const client = connect();
    const id = await createSobol(client, "twice");
    const trial = await client.suggest(id);
    await client.completeTrial(trial, { loss: 1 });

    await assert.rejects(client.completeTrial(trial.name, { loss: 2 }), FailedPreconditionError);

    const stored = await client.getTrial(trial);
    assert.deepEqual(
      stored.observations.map((o) => o.mean),
      [1],
    );
  });

  it("walks every page of listTrials", async () => {
    let listCalls = 0;
    const client = connect({
      grpcOptions: { interceptors: [watch((path) => (listCalls += path.endsWith("/ListTrials") ? 1 : 0))] },
    });
    const id = await createSobol(client, "paging");
    await client.suggestTrials(id, 5);

    const indices: number[] = [];
    for await (const trial of client.listTrials(id, { pageSize: 2 })) indices.push(trial.index);

    assert.deepEqual(indices, [0, 1, 2, 3, 4]);
    assert.equal(listCalls, 3);

    // Leaving the loop early stops fetching.
    listCalls = 0;
    for await (const trial of client.listTrials(id, { pageSize: 2 })) {
      assert.equal(trial.index, 0);
      break;
    }
    assert.equal(listCalls, 1);
  });

  it("retries a lost answer with the same request id, and the server acts once", async () => {
    const requestIds: string[] = [];
    // The first SuggestTrials reaches the server, but its answer is "lost":
    // the client sees UNAVAILABLE and must retry with the same request id.
    const loseFirstAnswer: grpc.Interceptor = (options, nextCall) => {
      if (!options.method_definition.path.endsWith("/SuggestTrials"))
        return new grpc.InterceptingCall(nextCall(options));
      return new grpc.InterceptingCall(nextCall(options), {
        sendMessage(message: SuggestTrialsRequest, next) {
          requestIds.push(message.requestId);
          next(message);
        },
        start(metadata, listener, next) {
          const attempt = requestIds.length + 1;
          next(metadata, {
            onReceiveStatus(status, nextStatus) {
              nextStatus(
                attempt === 1 ? { ...status, code: grpc.status.UNAVAILABLE, details: "lost" } : status,
              );
            },
          });
        },
      });
    };
    const client = connect({
      grpcOptions: { interceptors: [loseFirstAnswer] },
      retry: { ...DEFAULT_RETRY_POLICY, initialBackoffMs: 10 },
    });
    const id = await createSobol(client, "retry");

    const trial = await client.suggest(id);

    assert.equal(requestIds.length, 2);
    assert.equal(requestIds[0], requestIds[1]);
    assert.notEqual(requestIds[0], "");
    const stored: number[] = [];
    for await (const t of client.listTrials(id)) stored.push(t.index);
    assert.deepEqual(stored, [trial.index]);
  });

  it("gives each SuggestTrials attempt suggestTimeoutMs, past the retry budget, and every other call timeoutMs", async () => {
    const left = new Map<string, number[]>();
    // 90 s is past the default policy's 60 s budget: the budget must not cut
    // the suggest attempt to 60 s.
    const client = connect({
      timeoutMs: 20_000,
      suggestTimeoutMs: 90_000,
      grpcOptions: { interceptors: [recordDeadlines(left)] },
    });
    const id = await createSobol(client, "suggest-deadline");

    // optimize reaches SuggestTrials through suggest; a batch goes direct.
    await optimize(client, id, (p) => (p.x as number) ** 2, 2);
    await client.suggestTrials(id, 2, { batch: true });

    assertDeadlines(left, (method) => (method === "SuggestTrials" ? 90_000 : 20_000));
    for (const method of [
      "SuggestTrials",
      "CreateExperiment",
      "GetExperiment",
      "CompleteTrial",
      "GetBestArm",
    ])
      assert.ok(left.has(method), `no ${method} call was seen; seen ${[...left.keys()].join(", ")}`);
    assert.equal(left.get("SuggestTrials")?.length, 3, "two suggestions by optimize and one batch");
  });

  it("gives SuggestTrials attempts 300 s and other calls 30 s by default", async () => {
    const left = new Map<string, number[]>();
    const client = connect({ grpcOptions: { interceptors: [recordDeadlines(left)] } });
    const id = await createSobol(client, "suggest-default-deadline");
    left.clear();

    await client.suggest(id);
    await client.getExperiment(id);

    assert.equal(DEFAULT_SUGGEST_TIMEOUT_MS, 300_000);
    assert.equal(DEFAULT_TIMEOUT_MS, 30_000);
    assertDeadlines(left, (method) =>
      method === "SuggestTrials" ? DEFAULT_SUGGEST_TIMEOUT_MS : DEFAULT_TIMEOUT_MS,
    );
    assert.deepEqual([...left.keys()].sort(), ["GetExperiment", "SuggestTrials"]);
  });

  it("optimize marks a failing evaluation FAILED and goes on", async () => {
    const client = connect();
    const id = await createSobol(client, "optimize");
    let calls = 0;

    const summary = await optimize(
      client,
      id,
      (p) => {
        calls += 1;
        if (calls === 2) throw new Error("the simulation diverged");
        if (calls === 3) return Number.NaN;
        return (p.x as number) ** 2;
      },
      4,
    );

    assert.equal(summary.trials.length, 4);
    assert.equal(summary.numCompleted, 2);
    assert.equal(summary.numFailed, 2);
    const diverged = await client.getTrial(trialName(id, summary.trials[1].index));
    assert.equal(diverged.status, TrialStatus.TRIAL_STATUS_FAILED);
    assert.equal(diverged.statusReason, "Error: the simulation diverged");
    assert.match(summary.trials[2].reason, /NaN/);
    assert.ok(summary.best !== undefined && summary.best.trialIndices[0] !== summary.trials[1].index);
  });

  it("optimize abandons the running trial when aborted", async () => {
    const client = connect();
    const id = await createSobol(client, "abort");
    const controller = new AbortController();

    await assert.rejects(
      optimize(
        client,
        id,
        () => {
          controller.abort(new Error("stop now"));
          return 1;
        },
        3,
        { signal: controller.signal },
      ),
      /stop now/,
    );

    const trial = await client.getTrial(trialName(id, 0));
    assert.equal(trial.status, TrialStatus.TRIAL_STATUS_ABANDONED);
  });

  it("tells a trial by name from a new client, as after a restart of the asking process", async () => {
    const asker = connect();
    const id = await createSobol(asker, "restart");
    const { name } = await asker.suggest(id);
    asker.close();

    const completed = await connect().completeTrial(name, 2.5);

    assert.equal(completed.status, TrialStatus.TRIAL_STATUS_COMPLETED);
    assert.deepEqual(
      completed.observations.map((o) => [o.armName, o.metricName, o.mean]),
      [["0_0", "loss", 2.5]],
    );
  });

  it("answers InvalidArgumentError naming the arm and metric for a NaN mean, and the trial stays RUNNING", async () => {
    const client = connect();
    const id = await createSobol(client, "nan");
    const trial = await client.suggest(id);

    const error = await client.completeTrial(trial, Number.NaN).catch((e: unknown) => e);

    assert.ok(error instanceof InvalidArgumentError, `got ${String(error)}`);
    assert.match(`${error.message} ${error.violations.map((v) => v.field).join(" ")}`, /0_0/);
    assert.match(error.message, /loss/);
    const stored = await client.getTrial(trial);
    assert.equal(stored.status, TrialStatus.TRIAL_STATUS_RUNNING);
    assert.equal(stored.observations.length, 0);
  });

  it("answers FailedPreconditionError for the best arm before any data", async () => {
    const client = connect();
    const id = await createSobol(client, "nodata");
    await client.suggestTrials(id, 2);

    await assert.rejects(client.getBestArm(id), FailedPreconditionError);
  });

  it("completes a batch trial by arm", async () => {
    const client = connect();
    const id = await createSobol(client, "batch");
    const [batch] = await client.suggestTrials(id, 2, { batch: true });
    assert.equal(batch.arms.length, 2);

    const completed = await client.completeTrial(batch, {
      [batch.arms[0].name]: 1,
      [batch.arms[1].name]: { loss: [2, 0.5] },
    });

    assert.equal(completed.status, TrialStatus.TRIAL_STATUS_COMPLETED);
    assert.deepEqual(completed.observations.map((o) => [o.armName, o.mean]).sort(), [
      [batch.arms[0].name, 1],
      [batch.arms[1].name, 2],
    ]);
  });

  it("create-or-get returns the existing experiment and refuses a different one", async () => {
    const client = connect();
    const id = newExperimentId("createorget");
    const spec = (metric: string) => ({
      parameters: [rangeParameter("x", 0, 1)],
      objectives: { [metric]: "minimize" as const },
    });
    const first = await client.createExperiment(id, spec("loss"), { existOk: true });

    const second = await client.createExperiment(id, spec("loss"), { existOk: true });

    assert.equal(second.name, first.name);
    await assert.rejects(client.createExperiment(id, spec("error"), { existOk: true }), AlreadyExistsError);
    await assert.rejects(client.createExperiment(id, spec("loss")), AlreadyExistsError);
  });

  it("runs the README's ten lines", async () => {
    const address = server.address;
    // --- README: TypeScript client in ten lines (address: "localhost:50051") ---
    const client = new Client(address);
    await client.createExperiment("quadratic", {
      parameters: [rangeParameter("x", -5, 5)],
      objectives: { loss: "minimize" },
    });
    const summary = await optimize(client, "quadratic", (p) => (p.x as number) ** 2, 5);
    console.log(summary.best?.parameters);
    client.close();
    // --- end ---
    assert.equal(summary.numCompleted, 5);
    assert.equal(typeof summary.best?.parameters.x, "number");
  });
});

describe("Client without a server", { timeout: 10_000 }, () => {
  it("answers UnavailableError when nothing listens", async () => {
    // Port 1 on loopback has no listener on a test machine.
    const client = new Client("127.0.0.1:1", { retry: NO_RETRY, timeoutMs: 2000 });
    try {
      await assert.rejects(client.waitUntilReady(300), UnavailableError);
      await assert.rejects(client.getExperiment("anything"), UnavailableError);
    } finally {
      client.close();
    }
  });

  it("keeps an attempt longer than the retry budget whole, and cuts a retry within it to what is left", async () => {
    // SuggestTrials' 300 s attempt under the default 60 s budget, scaled down.
    const policy = { ...DEFAULT_RETRY_POLICY, initialBackoffMs: 1, maxBackoffMs: 1, totalTimeoutMs: 1_000 };
    let left = 0;
    await callWithRetry(async (deadline) => (left = deadline.getTime() - Date.now()), policy, 60_000);
    assert.ok(left > 55_000 && left <= 60_000, `the attempt had ${left} ms, want the whole minute`);

    // An attempt shorter than the budget still ends with it: the second one
    // starts 400 ms into the 1 s budget, so 600 ms of its 800 ms are left.
    const lefts: number[] = [];
    const unavailable = Object.assign(new Error("restarting"), {
      code: grpc.status.UNAVAILABLE,
      details: "restarting",
      metadata: new grpc.Metadata(),
    });
    await assert.rejects(
      callWithRetry(
        async (deadline) => {
          lefts.push(deadline.getTime() - Date.now());
          await new Promise((resolve) => setTimeout(resolve, 400));
          throw unavailable;
        },
        { ...policy, maxAttempts: 2 },
        800,
      ),
      /restarting/,
    );
    assert.equal(lefts.length, 2);
    assert.ok(lefts[1] <= 700 && lefts[1] < lefts[0], `attempts had ${lefts.join(", ")} ms`);
  });

  it("draws backoff waits within the growing cap", () => {
    const policy = { ...DEFAULT_RETRY_POLICY, initialBackoffMs: 100, maxBackoffMs: 300 };
    [100, 200, 300, 300].forEach((cap, retry) => {
      for (let i = 0; i < 200; i++) {
        const wait = backoffMs(policy, retry);
        assert.ok(wait >= 0 && wait <= cap, `retry ${retry} waited ${wait}`);
      }
    });
  });
});
