// Duration triggers: a per-run limit and per-device limits ("stop after 24h"), all served by one
// binary min-heap and one Node timer, so a thousand devices cost a thousand heap entries, not timers.
// Monotonic clock (process.hrtime): wall-clock jumps (NTP, DST) neither fire nor postpone a limit.
import { ConfigError } from "@capsync/protocol";
import { type ReceivedAt, receivedNow } from "./matchers.js";

/** setTimeout's longest delay (2^31-1 ms, ~24.8 days); longer deadlines re-arm on the way. */
const MAX_TIMER_MS = 0x7fffffff;

export interface SchedulerClock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

const systemClock: SchedulerClock = {
  now: () => Number(process.hrtime.bigint() / 1000n) / 1000,
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

interface Entry<K> {
  key: K;
  at: number;
  seq: number;
  index: number;
}

/**
 * Keyed deadlines on a min-heap with one timer armed for the earliest. Re-scheduling a key
 * replaces its deadline; expiry calls `onExpire` once per key, in deadline order (ties: FIFO).
 */
export class DeadlineScheduler<K> {
  private readonly heap: Array<Entry<K>> = [];
  private readonly byKey = new Map<K, Entry<K>>();
  private timer: unknown = null;
  private timerAt = Infinity;
  private seq = 0;
  private closed = false;

  constructor(
    private readonly onExpire: (key: K, deadline: number) => void,
    private readonly clock: SchedulerClock = systemClock,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  /** (Re)schedule `key` to expire `delayMs` from now. */
  schedule(key: K, delayMs: number): void {
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new RangeError(`delay must be a finite number >= 0, got ${delayMs}`);
    this.scheduleAt(key, this.clock.now() + delayMs);
  }

  /** (Re)schedule `key` for monotonic time `at`. */
  scheduleAt(key: K, at: number): void {
    if (this.closed) return;
    const existing = this.byKey.get(key);
    if (existing) this.removeAt(existing.index);
    const e: Entry<K> = { key, at, seq: this.seq++, index: this.heap.length };
    this.heap.push(e);
    this.byKey.set(key, e);
    this.up(e.index);
    this.arm();
  }

  cancel(key: K): boolean {
    const e = this.byKey.get(key);
    if (!e) return false;
    this.removeAt(e.index);
    this.arm();
    return true;
  }

  deadline(key: K): number | undefined {
    return this.byKey.get(key)?.at;
  }

  next(): { key: K; at: number } | undefined {
    const e = this.heap[0];
    return e && { key: e.key, at: e.at };
  }

  close(): void {
    this.closed = true;
    this.heap.length = 0;
    this.byKey.clear();
    this.disarm();
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.clock.now();
    // Expire everything due; a handler may schedule or cancel, which the loop sees.
    for (let e = this.heap[0]; e !== undefined && e.at <= now && !this.closed; e = this.heap[0]) {
      this.removeAt(0);
      this.onExpire(e.key, e.at);
    }
    this.arm();
  };

  private arm(): void {
    if (this.closed) return;
    const head = this.heap[0];
    if (head === undefined) return this.disarm();
    if (this.timer !== null && this.timerAt === head.at) return;
    this.disarm();
    // Timers fire on the event loop's millisecond clock and can run a fraction early: round up, and
    // fire() simply re-arms if the head is still in the future.
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(head.at - this.clock.now())));
    this.timerAt = head.at;
    this.timer = this.clock.setTimer(this.fire, delay);
  }

  private disarm(): void {
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private less(a: Entry<K>, b: Entry<K>): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i]!;
    const b = this.heap[j]!;
    this.heap[i] = b;
    this.heap[j] = a;
    a.index = j;
    b.index = i;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(this.heap[i]!, this.heap[p]!)) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const n = this.heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(this.heap[l]!, this.heap[m]!)) m = l;
      if (r < n && this.less(this.heap[r]!, this.heap[m]!)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private removeAt(i: number): void {
    const e = this.heap[i]!;
    this.byKey.delete(e.key);
    const last = this.heap.pop()!;
    if (last !== e) {
      this.heap[i] = last;
      last.index = i;
      this.down(i);
      this.up(last.index);
    }
  }
}

// ---------------------------------------------------------------------------------------------

export interface DurationEvent {
  kind: "duration";
  scope: "run" | "device";
  /** null for the run limit. */
  device: string | null;
  limitMs: number;
  /** When the limit was set and when it fired. */
  startedAt: ReceivedAt;
  firedAt: ReceivedAt;
  /** How late the timer fired (event-loop delay), ms. */
  lateMs: number;
}

type DurationKey = { scope: "run" } | { scope: "device"; device: string };

/**
 * The run limit and the per-device limits of one run. Each fires once; set again to restart.
 * @example const t = new DurationTriggers((e) => orchestrator.stop(e)); t.setRunLimit(86_400_000); t.setDeviceLimit("192.0.2.10", 3_600_000);
 */
export class DurationTriggers {
  private readonly scheduler: DeadlineScheduler<string>;
  private readonly meta = new Map<string, { key: DurationKey; limitMs: number; startedAt: ReceivedAt }>();

  constructor(
    private readonly onTrigger: (event: DurationEvent) => void,
    private readonly clock: SchedulerClock = systemClock,
  ) {
    this.scheduler = new DeadlineScheduler((id, deadline) => this.expire(id, deadline), clock);
  }

  setRunLimit(ms: number): void {
    this.set("run", { scope: "run" }, ms);
  }

  setDeviceLimit(device: string, ms: number): void {
    this.set(`device:${device}`, { scope: "device", device }, ms);
  }

  clearRunLimit(): boolean {
    this.meta.delete("run");
    return this.scheduler.cancel("run");
  }

  /** A device that stopped for another reason no longer needs its limit. */
  clearDeviceLimit(device: string): boolean {
    this.meta.delete(`device:${device}`);
    return this.scheduler.cancel(`device:${device}`);
  }

  /** Milliseconds until `device`'s limit (or the run's, without a device) fires; undefined if none. */
  remainingMs(device?: string): number | undefined {
    const at = this.scheduler.deadline(device === undefined ? "run" : `device:${device}`);
    return at === undefined ? undefined : Math.max(0, at - this.clock.now());
  }

  get pending(): number {
    return this.scheduler.size;
  }

  close(): void {
    this.scheduler.close();
    this.meta.clear();
  }

  private set(id: string, key: DurationKey, ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) throw new ConfigError(`duration must be a positive number of milliseconds, got ${ms}`);
    this.meta.set(id, { key, limitMs: ms, startedAt: receivedNow() });
    this.scheduler.schedule(id, ms);
  }

  private expire(id: string, deadline: number): void {
    const m = this.meta.get(id);
    if (!m) return;
    this.meta.delete(id);
    this.onTrigger({
      kind: "duration",
      scope: m.key.scope,
      device: m.key.scope === "device" ? m.key.device : null,
      limitMs: m.limitMs,
      startedAt: m.startedAt,
      firedAt: receivedNow(),
      lateMs: Math.max(0, this.clock.now() - deadline),
    });
  }
}
