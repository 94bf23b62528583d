// The harness shared by the hostile-input suites: run N fast-check cases against a parser,
// count outcomes by code, and bound both memory growth and the slowest single case.
import fc from "fast-check";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { expect } from "vitest";

export const RUNS = 100_000;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Heap in MB after two full collections, so growth means retained memory. */
export function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

export const bump = (seen: Map<string, number>, k: string): Map<string, number> => seen.set(k, (seen.get(k) ?? 0) + 1);

export function runHostile<T>(name: string, arb: fc.Arbitrary<T>, check: (x: T, seen: Map<string, number>) => void, runs = RUNS): Map<string, number> {
  const seen = new Map<string, number>();
  let slowest = 0;
  const before = heapMb();
  const t0 = performance.now();
  fc.assert(
    fc.property(arb, (x) => {
      const t = performance.now();
      check(x, seen);
      slowest = Math.max(slowest, performance.now() - t);
    }),
    { numRuns: runs },
  );
  const grew = heapMb() - before;
  console.log(`${name}: ${runs} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s, slowest ${slowest.toFixed(1)} ms, heap ${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MB; ${[...seen].map(([k, v]) => `${k} ${v}`).join(", ")}`);
  expect(grew).toBeLessThan(16);
  expect(slowest).toBeLessThan(250);
  return seen;
}
