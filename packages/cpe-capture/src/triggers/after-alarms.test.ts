import { describe, expect, it } from "vitest";
import { AfterAlarms } from "./after-alarms.js";

const turn = () => new Promise<void>((r) => setImmediate(r));
const busy = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

describe("AfterAlarms", () => {
  it("runs queued work in order, only once no alarm is pending, in slices between turns", async () => {
    let pending = true;
    const errors: unknown[] = [];
    const after = new AfterAlarms({ alarmsPending: () => pending, sliceMs: 2, maxWaitMs: 10_000, onError: (e) => errors.push(e) });
    const ran: number[] = [];
    for (let i = 0; i < 10; i++)
      after.push(() => {
        busy(1);
        ran.push(i);
      });
    for (let i = 0; i < 5; i++) await turn();
    expect(ran).toEqual([]);
    pending = false;
    await turn();
    await turn();
    // 1 ms each in 2 ms slices: a few per turn, never all ten in one.
    expect(ran.length).toBeGreaterThan(0);
    expect(ran.length).toBeLessThan(10);
    while (after.pending > 0) await turn();
    expect(ran).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(errors).toEqual([]);
  });

  it("a never-ending stream of alarms delays the work by at most maxWaitMs; a throwing item does not stop the rest", async () => {
    const errors: string[] = [];
    const after = new AfterAlarms({ alarmsPending: () => true, maxWaitMs: 30, onError: (e) => errors.push((e as Error).message) });
    const t0 = performance.now();
    let ranAt = 0;
    after.push(() => {
      throw new Error("boom");
    });
    after.push(() => (ranAt = performance.now()));
    while (after.pending > 0) await turn();
    expect(ranAt - t0).toBeGreaterThanOrEqual(30);
    expect(errors).toEqual(["boom"]);
  });

  it("flush() runs everything left at once", () => {
    const after = new AfterAlarms({ alarmsPending: () => true, onError: () => undefined });
    const ran: number[] = [];
    for (let i = 0; i < 3; i++) after.push(() => ran.push(i));
    after.flush();
    expect(ran).toEqual([0, 1, 2]);
    expect(after.pending).toBe(0);
  });
});
