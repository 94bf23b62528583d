import fc from "fast-check";
import { ConfigError } from "@capsync/protocol";
import { describe, expect, it } from "vitest";
import { DeadlineScheduler, type DurationEvent, DurationTriggers, type SchedulerClock } from "./timers.js";

/** A manual clock: time moves only in advance(); tracks how many timers are armed at once. */
class FakeClock implements SchedulerClock {
  t = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private id = 0;
  armedMax = 0;
  setCalls: number[] = [];
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.id;
    this.timers.set(id, { at: this.t + ms, fn });
    this.setCalls.push(ms);
    this.armedMax = Math.max(this.armedMax, this.timers.size);
    return id;
  }
  clearTimer(h: unknown): void {
    this.timers.delete(h as number);
  }
  get armed(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}

describe("DeadlineScheduler", () => {
  it("fires in deadline order with one timer armed, whatever the number of keys", () => {
    const clock = new FakeClock();
    const fired: Array<[string, number]> = [];
    const s = new DeadlineScheduler<string>((k) => fired.push([k, clock.now()]), clock);
    for (let i = 0; i < 1000; i++) s.schedule(`d${i}`, 1000 + ((i * 7919) % 1000));
    s.schedule("early", 10);
    expect(s.size).toBe(1001);
    expect(clock.armed).toBe(1);
    expect(clock.armedMax).toBe(1);
    clock.advance(5000);
    expect(fired).toHaveLength(1001);
    expect(fired[0]).toEqual(["early", 10]);
    for (let i = 1; i < fired.length; i++) expect(fired[i]![1]).toBeGreaterThanOrEqual(fired[i - 1]![1]);
    // Each expiry happened exactly at its deadline (the fake clock has no lateness).
    expect(fired.every(([k, t]) => k === "early" || t === 1000 + ((Number(k.slice(1)) * 7919) % 1000))).toBe(true);
    expect(clock.armed).toBe(0);
    expect(s.size).toBe(0);
  });

  it("reschedules, cancels, and keeps FIFO order for equal deadlines", () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    const s = new DeadlineScheduler<string>((k) => fired.push(k), clock);
    s.schedule("a", 100);
    s.schedule("b", 100);
    s.schedule("c", 50);
    s.schedule("c", 300); // moved later
    s.schedule("d", 100);
    expect(s.cancel("b")).toBe(true);
    expect(s.cancel("b")).toBe(false);
    expect(s.next()).toEqual({ key: "a", at: 100 });
    clock.advance(100);
    expect(fired).toEqual(["a", "d"]);
    expect(s.deadline("c")).toBe(300);
    clock.advance(200);
    expect(fired).toEqual(["a", "d", "c"]);
  });

  it("lets a handler schedule and cancel from inside the expiry", () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    const s: DeadlineScheduler<string> = new DeadlineScheduler<string>((k) => {
      fired.push(k);
      if (k === "a") {
        s.schedule("now", 0);
        s.cancel("b");
        s.schedule("later", 10);
      }
    }, clock);
    s.schedule("a", 5);
    s.schedule("b", 5);
    clock.advance(5);
    expect(fired).toEqual(["a", "now"]);
    clock.advance(10);
    expect(fired).toEqual(["a", "now", "later"]);
  });

  it("re-arms in steps for deadlines beyond setTimeout's 24.8 days", () => {
    const clock = new FakeClock();
    const fired: number[] = [];
    const s = new DeadlineScheduler<string>(() => fired.push(clock.now()), clock);
    const fortyDays = 40 * 86_400_000;
    s.schedule("long", fortyDays);
    expect(clock.setCalls).toEqual([0x7fffffff]);
    clock.advance(fortyDays - 1);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([fortyDays]);
  });

  it("matches a sorted list under random schedule/cancel sequences (property)", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), key: fc.integer({ min: 0, max: 20 }), delay: fc.integer({ min: 0, max: 500 }) }),
      fc.record({ kind: fc.constant("cancel" as const), key: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ kind: fc.constant("advance" as const), by: fc.integer({ min: 0, max: 200 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const clock = new FakeClock();
        const fired: number[] = [];
        const s = new DeadlineScheduler<number>((k) => fired.push(k), clock);
        const model = new Map<number, number>();
        const expected: number[] = [];
        const expireModel = (until: number) => {
          const due = [...model].filter(([, at]) => at <= until).sort((a, b) => a[1] - b[1]);
          for (const [k] of due) {
            expected.push(k);
            model.delete(k);
          }
        };
        for (const o of ops) {
          if (o.kind === "set") {
            s.schedule(o.key, o.delay);
            model.delete(o.key);
            model.set(o.key, clock.now() + o.delay);
          } else if (o.kind === "cancel") {
            s.cancel(o.key);
            model.delete(o.key);
          } else {
            clock.advance(o.by);
            expireModel(clock.now());
          }
          if (clock.armed > 1) return false;
        }
        // Equal deadlines fire FIFO by (re)schedule order, as Map insertion order (after delete+set) models.
        return JSON.stringify(fired) === JSON.stringify(expected) && s.size === model.size;
      }),
      { numRuns: 2000 },
    );
  });
});

describe("DurationTriggers", () => {
  it("fires the run limit and per-device limits once each, with their scope", () => {
    const clock = new FakeClock();
    const events: DurationEvent[] = [];
    const t = new DurationTriggers((e) => events.push(e), clock);
    t.setRunLimit(86_400_000);
    t.setDeviceLimit("192.0.2.10", 3_600_000);
    t.setDeviceLimit("192.0.2.11", 7_200_000);
    t.setDeviceLimit("192.0.2.12", 60_000);
    expect(t.clearDeviceLimit("192.0.2.12")).toBe(true);
    expect(t.pending).toBe(3);
    expect(clock.armed).toBe(1);
    expect(t.remainingMs("192.0.2.10")).toBe(3_600_000);
    clock.advance(3_600_000);
    expect(events.map((e) => [e.scope, e.device, e.limitMs, e.lateMs])).toEqual([["device", "192.0.2.10", 3_600_000, 0]]);
    clock.advance(86_400_000);
    expect(events.map((e) => [e.scope, e.device])).toEqual([
      ["device", "192.0.2.10"],
      ["device", "192.0.2.11"],
      ["run", null],
    ]);
    expect(events[0]).toMatchObject({ kind: "duration", startedAt: { iso: expect.any(String) }, firedAt: { iso: expect.any(String) } });
    expect(t.remainingMs()).toBeUndefined();
    t.close();
  });

  it("refuses non-positive limits", () => {
    const t = new DurationTriggers(() => {}, new FakeClock());
    expect(() => t.setRunLimit(0)).toThrow(ConfigError);
    expect(() => t.setDeviceLimit("x", Number.NaN)).toThrow(ConfigError);
  });

  it("fires on the real clock, close to the deadline", async () => {
    const t0 = performance.now();
    const event = await new Promise<DurationEvent>((resolve) => {
      const t = new DurationTriggers(resolve);
      t.setDeviceLimit("192.0.2.10", 40);
      t.setRunLimit(60_000);
      setTimeout(() => t.close(), 1000).unref();
    });
    const elapsed = performance.now() - t0;
    expect(event).toMatchObject({ scope: "device", device: "192.0.2.10", limitMs: 40 });
    expect(elapsed).toBeGreaterThanOrEqual(39);
    expect(event.lateMs).toBeLessThan(200);
  });
});
