/** Starts a real `polytrial serve` subprocess on a fresh SQLite file for the tests. */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

/** A running server: its address and a function that kills it. */
export interface TestServer {
  readonly address: string;
  /** Kills the server (SIGKILL) and removes its database unless the caller gave the directory. */
  stop(): Promise<void>;
}

/** Where a server keeps its data and listens; a restarted server is given both. */
export interface ServerOptions {
  /** Directory of the SQLite file; the caller removes it. A fresh one when unset. */
  readonly dir?: string;
  /** "127.0.0.1:port"; port 0 when unset. */
  readonly address?: string;
}

/**
 * Runs `$POLYTRIAL_BIN serve` (default: the repository's .venv) and resolves
 * with the port it prints in "listening on host:port".
 */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  // Compiled to dist/client/ts/test/, four levels below the package.
  const packageDir = path.resolve(__dirname, "..", "..", "..", "..");
  const bin = process.env.POLYTRIAL_BIN ?? path.resolve(packageDir, "..", "..", ".venv", "bin", "polytrial");
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), "polytrial-ts-client-"));
  const child: ChildProcess = spawn(
    bin,
    [
      "serve",
      "--db",
      `sqlite:///${path.join(dir, "t.db")}`,
      "--address",
      options.address ?? "127.0.0.1:0",
      "--log-level",
      "INFO",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const stop = async (): Promise<void> => {
    // A child that never started (a wrong POLYTRIAL_BIN) has no pid and no exit.
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
  };

  let log = "";
  const port = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the server did not listen within 60 s:\n${log}`)),
      60_000,
    );
    child.once("error", (error) =>
      reject(new Error(`cannot start ${bin} (set POLYTRIAL_BIN): ${error.message}`)),
    );
    child.once("exit", () => reject(new Error(`the server exited before listening:\n${log}`)));
    // The log is read to its end, so the server never blocks on a full pipe.
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      log += chunk;
      const match = /listening on \S+:(\d+)/.exec(log);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { address: `127.0.0.1:${port}`, stop };
}
