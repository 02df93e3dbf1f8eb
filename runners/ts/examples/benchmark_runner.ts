/**
 * Example runner whose background jobs evaluate Branin, Currin and Hartmann6
 * on parameters x1..xd in [0, 1].
 *
 * Run returns at once; each job waits out its staging period (if any), runs
 * for a few seconds on timers reporting intermediate values at steps 0, 1 and
 * 2 (a learning curve approaching the final value), then evaluates every
 * metric it knows for every arm. A parameter `run_delay_s` on the first arm
 * delays Run's answer, to show how the server treats a slow runner; a
 * parameter `job_seconds` overrides how long that trial's job runs. Each
 * started job is printed as `job started name=... key=...`.
 *
 *     node dist/runners/ts/examples/benchmark_runner.js --address 127.0.0.1:50063
 */

import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

import {
  type Arm,
  InvalidTrial,
  type JsonObject,
  type Observation,
  type Runner,
  serve,
  type Trial,
  TrialNotFound,
  type TrialState,
  type TrialStatus,
} from "../src/index";
import { BENCHMARKS } from "./benchmarks";

/** Intermediate observations per job, at steps 0..STEPS-1. */
const STEPS = 3;

/** An intermediate value that approaches the final one: f + (1 + |f|) / (step + 1). */
function learningCurve(metric: string, x: readonly number[], step: number): number {
  const final = BENCHMARKS[metric].evaluate(x);
  return final + (1 + Math.abs(final)) / (step + 1);
}

/** One trial's background job and what it produced. */
interface Job {
  readonly name: string;
  readonly inputs: ReadonlyMap<string, ReadonlyMap<string, number[]>>; // arm -> metric -> x
  readonly jobMs: number;
  state: TrialState;
  results: Observation[];
  timer?: NodeJS.Timeout;
}

/** Returns x1..xd of `arm` for `metric`, or throws InvalidTrial naming the gap. */
function armInputs(arm: Arm, metric: string): number[] {
  const x: number[] = [];
  for (let i = 1; i <= BENCHMARKS[metric].dims; i++) {
    const value = arm.parameters[`x${i}`];
    if (typeof value !== "number") {
      throw new InvalidTrial(`arm ${arm.name} has no numeric parameter x${i}, which ${metric} needs`);
    }
    if (value < 0 || value > 1) {
      throw new InvalidTrial(`arm ${arm.name}: x${i}=${value} is outside [0, 1], which ${metric} needs`);
    }
    x.push(value);
  }
  return x;
}

/** Runs each trial as a timer-driven job that evaluates benchmark functions. */
export class BenchmarkRunner implements Runner {
  readonly stagingRequired: boolean;
  private readonly jobs = new Map<string, Job>();

  constructor(
    private readonly jobMs: number,
    private readonly stagingMs: number,
  ) {
    this.stagingRequired = stagingMs > 0;
  }

  async run(trial: Trial, deploymentKey: string): Promise<JsonObject> {
    const metrics = trial.metricNames.filter((name) => name in BENCHMARKS);
    const inputs = new Map(
      trial.arms.map((arm) => [arm.name, new Map(metrics.map((metric) => [metric, armInputs(arm, metric)]))]),
    );
    const delay = trial.arms[0]?.parameters["run_delay_s"];
    if (typeof delay === "number" && delay > 0) {
      await sleep(delay * 1000);
    }

    const name = `${trial.experimentId}-${trial.trialIndex}-${randomBytes(4).toString("hex")}`;
    const jobSeconds = trial.arms[0]?.parameters["job_seconds"];
    const jobMs = typeof jobSeconds === "number" && jobSeconds >= 0 ? jobSeconds * 1000 : this.jobMs;
    const job: Job = { name, inputs, jobMs, state: this.stagingRequired ? "STAGED" : "RUNNING", results: [] };
    this.jobs.set(name, job);
    job.timer = setTimeout(() => this.startRunning(job), this.stagingMs);
    console.log(`job started name=${name} key=${deploymentKey}`);
    return { name, job_s: jobMs / 1000, staging_s: this.stagingMs / 1000 };
  }

  pollTrialStatus(trial: Trial): TrialStatus {
    return { state: this.job(trial).state };
  }

  stopTrial(trial: Trial, reason: string): JsonObject {
    const job = this.job(trial);
    if (job.state === "STAGED" || job.state === "RUNNING") {
      clearTimeout(job.timer);
      job.state = "STOPPED";
    }
    return { stop_reason: reason, final_state: job.state };
  }

  fetchTrialData(trial: Trial, metricNames: readonly string[]): Observation[] {
    const results = this.job(trial).results;
    return metricNames.length === 0 ? results : results.filter((o) => metricNames.includes(o.metricName));
  }

  private job(trial: Trial): Job {
    const name = trial.runMetadata["name"];
    const job = typeof name === "string" ? this.jobs.get(name) : undefined;
    if (job === undefined) {
      throw new TrialNotFound(`no job named ${JSON.stringify(name)}; the runner may have restarted`);
    }
    return job;
  }

  private startRunning(job: Job): void {
    job.state = "RUNNING";
    this.recordStep(job, 0);
  }

  /** Intermediate data at the start of each of STEPS equal parts of the job. */
  private recordStep(job: Job, step: number): void {
    if (step === STEPS) {
      this.complete(job);
      return;
    }
    for (const [arm, byMetric] of job.inputs) {
      for (const [metric, x] of byMetric) {
        job.results.push({ armName: arm, metricName: metric, mean: learningCurve(metric, x, step), step });
      }
    }
    job.timer = setTimeout(() => this.recordStep(job, step + 1), job.jobMs / STEPS);
  }

  private complete(job: Job): void {
    // Final data: every metric for every arm; noiseless, so the sem is 0.
    for (const [arm, byMetric] of job.inputs) {
      for (const [metric, x] of byMetric) {
        job.results.push({ armName: arm, metricName: metric, mean: BENCHMARKS[metric].evaluate(x), sem: 0 });
      }
    }
    job.state = "COMPLETED";
  }
}

/** Parses a number of seconds from a flag or environment variable. */
function seconds(flag: string | undefined, env: string | undefined, fallback: number): number {
  const value = Number(flag ?? env ?? fallback);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`expected a non-negative number of seconds, got ${flag ?? env}`);
  }
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: "string", default: "127.0.0.1:50063" },
      "job-seconds": { type: "string" },
      "staging-seconds": { type: "string" },
    },
  });
  const jobS = seconds(values["job-seconds"], process.env["POLYTRIAL_EXAMPLE_JOB_SECONDS"], 3);
  const stagingS = seconds(values["staging-seconds"], process.env["POLYTRIAL_EXAMPLE_STAGING_SECONDS"], 0);
  const runner = new BenchmarkRunner(jobS * 1000, stagingS * 1000);
  await serve(runner, values.address, (bound) => console.log(`listening on ${bound}`));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
