/** The TypeScript example's benchmarks at known points. */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { branin, currin, hartmann6 } from "../examples/benchmarks";

const toUnit = (x1: number, x2: number): number[] => [(x1 + 5) / 15, x2 / 15];

describe("benchmarks", () => {
  it("Branin is 0.397887 at each of its three minimizers", () => {
    for (const [x1, x2] of [
      [-Math.PI, 12.275],
      [Math.PI, 2.275],
      [9.42478, 2.475],
    ]) {
      assert.ok(Math.abs(branin(toUnit(x1, x2)) - 0.397887) < 1e-5);
    }
  });

  it("Hartmann6 is -3.32237 at its minimizer", () => {
    const x = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573];
    assert.ok(Math.abs(hartmann6(x) - -3.32237) < 1e-5);
  });

  it("Currin is 3 (1 - e^-1/2) at (0, 1) and finite at x2 = 0", () => {
    assert.ok(Math.abs(currin([0, 1]) - 3 * (1 - Math.exp(-0.5))) < 1e-12);
    const x1 = 0.5;
    const limit =
      (2300 * x1 ** 3 + 1900 * x1 ** 2 + 2092 * x1 + 60) / (100 * x1 ** 3 + 500 * x1 ** 2 + 4 * x1 + 20);
    assert.equal(currin([x1, 0]), limit);
  });
});
