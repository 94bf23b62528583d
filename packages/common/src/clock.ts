// The two clocks and their two jobs. Every duration, timeout, watchdog and retry window is measured
// on the monotonic clock (CLOCK_MONOTONIC: an NTP step, an operator's `date -s` or a VM resync
// neither ends nor extends anything); the wall clock only names files, stamps logs and manifests, and
// fills the wire's timestamp field. CLOCK_MONOTONIC counts from boot, so two processes of one boot
// agree on it: a restarted agent can still age the captures its predecessor started.
import { readFileSync } from "node:fs";

/** Monotonic milliseconds since boot (CLOCK_MONOTONIC through process.hrtime). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/** Wall-clock milliseconds since the epoch: names, timestamps, the wire's ts; never a duration. */
export function wallMs(): number {
  return Date.now();
}

let boot: string | undefined;
/** This boot's id (Linux): monotonic readings from another boot are not comparable. */
export function bootId(): string | undefined {
  if (boot !== undefined) return boot || undefined;
  try {
    boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    boot = "";
  }
  return boot || undefined;
}

/**
 * Notices steps of the wall clock: wall − monotonic is constant while the wall clock runs freely
 * (NTP slewing moves it by milliseconds); a jump of more than `thresholdMs` is a step.
 */
export class WallStepDetector {
  private offset: number;

  constructor(
    private readonly thresholdMs = 1000,
    private readonly wall: () => number = wallMs,
    private readonly mono: () => number = monotonicMs,
  ) {
    this.offset = this.wall() - this.mono();
  }

  /** The step since the last call in ms (positive: the wall clock jumped forward), or undefined. */
  check(): number | undefined {
    const offset = this.wall() - this.mono();
    const step = offset - this.offset;
    this.offset = offset;
    return Math.abs(step) > this.thresholdMs ? step : undefined;
  }
}
