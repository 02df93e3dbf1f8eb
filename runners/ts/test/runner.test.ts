/** The TypeScript runner SDK over a real loopback channel. */

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import * as grpc from "@grpc/grpc-js";

import {
  RunnerServiceClient,
  RunRequest,
  RunResponse,
  StagingRequiredResponse,
  TrialKind,
} from "../../../protos/gen/ts/polytrial/v1/runner_service";
import { type JsonObject, listen, type Runner, type Trial, TrialRefused } from "../src/index";

/** Returns `metadata` from run; records the stops it is asked for. */
class OddMetadataRunner implements Runner {
  readonly stops: Array<{ metadata: JsonObject; reason: string }> = [];
  constructor(private readonly metadata: unknown) {}

  run(): JsonObject {
    return this.metadata as JsonObject;
  }

  stopTrial(trial: Trial, reason: string): undefined {
    this.stops.push({ metadata: trial.runMetadata, reason });
    return undefined;
  }
}

/** Counts Run calls; answers with what it saw. */
class CountingRunner implements Runner {
  readonly stagingRequired = true;
  calls = 0;
  constructor(
    private readonly delayMs = 0,
    private readonly fail?: Error,
  ) {}

  async run(trial: Trial, deploymentKey: string): Promise<JsonObject> {
    this.calls += 1;
    const call = this.calls;
    await sleep(this.delayMs);
    if (this.fail !== undefined) throw this.fail;
    return { name: deploymentKey, call, x: trial.arms[0].parameters["x"], kind: trial.kind };
  }
}

function runRequest(key: string): RunRequest {
  return {
    deploymentKey: key,
    trial: {
      experimentId: "exp",
      trialIndex: 3,
      kind: TrialKind.TRIAL_KIND_BATCH,
      arms: [{ name: "3_0", parameters: { x: { kind: { $case: "intValue", intValue: 7 } } }, weight: 1 }],
      runMetadata: {},
      metricNames: [],
    },
  };
}

/** Serves `runner` on a free loopback port; returns a client and a closer. */
async function dial(runner: Runner): Promise<{ client: RunnerServiceClient; close: () => void }> {
  const { server, port } = await listen(runner, "127.0.0.1:0");
  const client = new RunnerServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    client,
    close: () => {
      client.close();
      server.forceShutdown();
    },
  };
}

function call<Res>(
  invoke: (
    deadline: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response: Res) => void,
  ) => void,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke({ deadline: Date.now() + 10_000 }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

function run(client: RunnerServiceClient, key: string): Promise<JsonObject> {
  return call<RunResponse>((options, callback) =>
    client.run(runRequest(key), new grpc.Metadata(), options, callback),
  ).then((response) => (response.runMetadata ?? {}) as JsonObject);
}

describe("runner SDK", { timeout: 30_000 }, () => {
  const closers: Array<() => void> = [];
  after(() => closers.forEach((close) => close()));
  const serve = async (runner: Runner) => {
    const { client, close } = await dial(runner);
    closers.push(close);
    return client;
  };

  it("repeated Run with the same key starts one job and returns the first answer", async () => {
    const runner = new CountingRunner();
    const client = await serve(runner);
    const first = await run(client, "key-1");
    const second = await run(client, "key-1");
    assert.equal(runner.calls, 1);
    assert.deepEqual(second, first);
    assert.equal(first["x"], 7);
    assert.equal(first["kind"], "BATCH");
  });

  it("concurrent repeats wait for the first Run", async () => {
    const runner = new CountingRunner(200);
    const client = await serve(runner);
    const answers = await Promise.all([1, 2, 3, 4].map(() => run(client, "same")));
    assert.equal(runner.calls, 1);
    answers.forEach((answer) => assert.deepEqual(answer, answers[0]));
  });

  it("a runner error keeps its code and a failed Run is retried", async () => {
    const runner = new CountingRunner(0, new TrialRefused("cluster is full"));
    const client = await serve(runner);
    for (let i = 0; i < 2; i++) {
      await assert.rejects(run(client, "k"), (error: grpc.ServiceError) => {
        assert.equal(error.code, grpc.status.FAILED_PRECONDITION);
        assert.equal(error.details, "cluster is full");
        return true;
      });
    }
    assert.equal(runner.calls, 2);
  });

  it("an unexpected error becomes INTERNAL without its details", async () => {
    const client = await serve(new CountingRunner(0, new Error("secret path /etc/x")));
    await assert.rejects(run(client, "k"), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.INTERNAL);
      assert.ok(!error.details.includes("secret"));
      return true;
    });
  });

  it("a missing deployment key is INVALID_ARGUMENT and runs nothing", async () => {
    const runner = new CountingRunner();
    const client = await serve(runner);
    await assert.rejects(
      run(client, ""),
      (error: grpc.ServiceError) => error.code === grpc.status.INVALID_ARGUMENT,
    );
    assert.equal(runner.calls, 0);
  });

  it("optional methods are UNIMPLEMENTED and staging is reported", async () => {
    const client = await serve(new CountingRunner());
    const trial = runRequest("k").trial;
    const deadline = () => ({ deadline: Date.now() + 10_000 });
    const meta = () => new grpc.Metadata();
    const failures = [
      call((_, cb) => client.pollTrialStatus({ trial }, meta(), deadline(), cb)),
      call((_, cb) => client.stopTrial({ trial, reason: "" }, meta(), deadline(), cb)),
      call((_, cb) => client.fetchTrialData({ trial, metricNames: [] }, meta(), deadline(), cb)),
    ];
    for (const failure of failures) {
      await assert.rejects(failure, (error: grpc.ServiceError) => error.code === grpc.status.UNIMPLEMENTED);
    }
    const staging = await call<StagingRequiredResponse>((_, cb) =>
      client.stagingRequired({}, meta(), deadline(), cb),
    );
    assert.equal(staging.stagingRequired, true);
  });
  it("run metadata JSON cannot hold is refused naming the field, and the job is asked to stop", async () => {
    const cases: Array<[unknown, string]> = [
      [{ name: "j", bad: () => 1 }, "run metadata field 'bad' is a function, which JSON cannot hold"],
      [
        { name: "j", bad: { n: [1, BigInt(2)] } },
        "run metadata field 'bad.n[1]' is a bigint, which JSON cannot hold",
      ],
      [{ name: "j", bad: new Date(0) }, "run metadata field 'bad' is a Date, which JSON cannot hold"],
      [{ name: "j", bad: new Map() }, "run metadata field 'bad' is a Map, which JSON cannot hold"],
      ["hello", "run metadata is a string, not a plain object"],
      [null, "run metadata is null, not a plain object"],
      [[1], "run metadata is an Array, not a plain object"],
    ];
    for (const [metadata, message] of cases) {
      const runner = new OddMetadataRunner(metadata);
      const client = await serve(runner);
      await assert.rejects(run(client, "k"), (error: grpc.ServiceError) => {
        assert.equal(error.code, grpc.status.FAILED_PRECONDITION);
        assert.ok(error.details.startsWith(message), error.details);
        return true;
      });
      assert.equal(runner.stops.length, 1);
      assert.equal(runner.stops[0].reason, message);
      const kept = typeof metadata === "object" && metadata !== null && !Array.isArray(metadata);
      assert.deepEqual(runner.stops[0].metadata, kept ? { name: "j" } : {});
    }
  });

  it("unanswerable run metadata without stopTrial is still refused", async () => {
    const client = await serve({ run: () => ({ when: new Date(0) }) as unknown as JsonObject });
    await assert.rejects(run(client, "k"), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.FAILED_PRECONDITION);
      assert.ok(error.details.includes("'when' is a Date"), error.details);
      return true;
    });
  });

  it("JSON run metadata of every kind is answered unchanged", async () => {
    const metadata = { s: "x", n: 1.5, b: true, z: null, l: [1, "a", [], {}], o: { k: { k2: 2 } } };
    const runner = new OddMetadataRunner(metadata);
    assert.deepEqual(await run(await serve(runner), "k"), metadata);
    assert.equal(runner.stops.length, 0);
  });
});
