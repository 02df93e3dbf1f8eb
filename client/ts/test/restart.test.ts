/**
 * The default retry policy bridges a server restart: an ask/tell loop goes on
 * while its server is killed and started again on the same port and database,
 * and the retried calls keep their request ids, so no trial is made twice.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { Client, rangeParameter, TrialStatus } from "../src/index";
import { startServer, type TestServer } from "./server";

const dir = mkdtempSync(path.join(tmpdir(), "polytrial-ts-restart-"));
const servers: TestServer[] = [];

after(async () => {
  for (const server of servers) await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a server restart", { timeout: 120_000 }, () => {
  it("an ask/tell loop with the default retry policy goes on through a restart, and each trial is made once", async () => {
    const first = await startServer({ dir });
    servers.push(first);
    const retried: Array<[method: string, requestId: string]> = [];
    // The default policy, as a new user gets it: no retry option.
    const client = new Client(first.address, {
      onRetry: (method, requestId) => retried.push([method, requestId]),
    });
    const id = `restart-${process.pid}`;
    await client.createExperiment(id, {
      parameters: [rangeParameter("x", -5, 5)],
      objectives: { loss: "minimize" },
      generationStrategy: { kind: "sobol", seed: 3 },
    });

    let restarted: Promise<void> | undefined;
    const numTrials = 6;
    try {
      for (let i = 0; i < numTrials; i++) {
        if (i === 3) {
          // Kill the server between an answer and the next ask, and start a
          // new one on the same port and database while the client retries.
          await first.stop();
          restarted = (async () => {
            await sleep(1_000);
            servers.push(await startServer({ dir, address: first.address }));
          })();
        }
        const trial = await client.suggest(id);
        const x = trial.parameters.x as number;
        await client.completeTrial(trial, x * x);
      }
      await restarted;

      // The outage was bridged by retries of the one ask made during it, all
      // with the request id of that logical call.
      assert.ok(retried.length > 0, "no call was retried");
      assert.deepEqual(new Set(retried.map(([method]) => method)), new Set(["SuggestTrials"]));
      assert.equal(new Set(retried.map(([, requestId]) => requestId)).size, 1);
      assert.notEqual(retried[0][1], "");
      const trials = [];
      for await (const trial of client.listTrials(id)) trials.push(trial);
      assert.deepEqual(
        trials.map((t) => [t.index, t.status]),
        Array.from({ length: numTrials }, (_, index) => [index, TrialStatus.TRIAL_STATUS_COMPLETED]),
      );
    } finally {
      client.close();
      await restarted?.catch(() => undefined);
    }
  });
});
