/**
 * Benchmark functions on parameters x1..xd in [0, 1]: Branin (rescaled as in
 * BoTorch's Branin-Currin problem), Currin, and Hartmann6.
 */

/** A test function of `dims` parameters x1..xd in [0, 1]. */
export interface Benchmark {
  readonly dims: number;
  readonly evaluate: (x: readonly number[]) => number;
}

/** Branin on [0, 1]^2, rescaled to x1 in [-5, 10], x2 in [0, 15]; min 0.397887. */
export function branin(x: readonly number[]): number {
  const x1 = 15 * x[0] - 5;
  const x2 = 15 * x[1];
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
}

/** Currin's exponential function on [0, 1]^2 (Currin et al. 1991). */
export function currin(x: readonly number[]): number {
  const [x1, x2] = x;
  // At x2 = 0 the exponent is -Infinity, so the factor is exactly 1.
  const factor = x2 === 0 ? 1 : 1 - Math.exp(-1 / (2 * x2));
  const numerator = 2300 * x1 ** 3 + 1900 * x1 ** 2 + 2092 * x1 + 60;
  const denominator = 100 * x1 ** 3 + 500 * x1 ** 2 + 4 * x1 + 20;
  return (factor * numerator) / denominator;
}

const ALPHA = [1.0, 1.2, 3.0, 3.2];
const A = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const P = [
  [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
  [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
  [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.665],
  [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
];

/** Hartmann's 6-dimensional function on [0, 1]^6; min -3.32237. */
export function hartmann6(x: readonly number[]): number {
  let total = 0;
  for (let i = 0; i < ALPHA.length; i++) {
    let inner = 0;
    for (let j = 0; j < 6; j++) {
      inner += A[i][j] * (x[j] - P[i][j]) ** 2;
    }
    total += ALPHA[i] * Math.exp(-inner);
  }
  return -total;
}

/** Metric name -> the benchmark that computes it. */
export const BENCHMARKS: Readonly<Record<string, Benchmark>> = {
  branin: { dims: 2, evaluate: branin },
  currin: { dims: 2, evaluate: currin },
  hartmann6: { dims: 6, evaluate: hartmann6 },
};
