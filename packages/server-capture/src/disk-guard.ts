// The free-space watchdog that line rate cannot outrun. A fixed margin checked once a second is
// gone within that second at 100 MB/s; so the free space is sampled every DISK_TICK_MS while any
// capture runs, the write rate is measured from it, and the captures stop once, at that rate, the
// disk would reach --min-free-disk before the stop could take effect — unless the rings still
// allowed to grow cannot take it there (tcpdump's own -C/-W rotation bounds each capture's disk).
import { freeMegabytes } from "./system.js";

/** How often the free space is sampled while captures run: statfs costs microseconds. */
export const DISK_TICK_MS = 100;
/** From the decision to stop to every tcpdump gone (SIGINT, no drain at disk-low), event-loop delays included. */
export const STOP_ALLOWANCE_MS = 500;
/** Per sample, a falling rate keeps this share of the previous estimate: quick to rise, slow to forget a burst. */
const RATE_DECAY = 0.8;

export interface DiskVerdict {
  freeMb: number;
  /** Measured write rate into the capture dir's filesystem, MB/s. */
  rateMbS: number;
  /** What the next DISK_TICK_MS + STOP_ALLOWANCE_MS may write at that rate, MB. */
  marginMb: number;
  /** Why the captures must stop now, or undefined. */
  low?: string;
}

export class DiskRate {
  private last?: { at: number; freeMb: number };
  private rate = 0;

  constructor(
    private readonly dir: string,
    private readonly minFreeMb: number,
    private readonly horizonMs = DISK_TICK_MS + STOP_ALLOWANCE_MS,
  ) {}

  /**
   * One sample. `growthMb` is asked only when the rate says danger: how far the running captures
   * may still grow (their rings' room left; Infinity when one has no ring).
   */
  sample(growthMb: () => number): DiskVerdict | undefined {
    let freeMb: number;
    try {
      freeMb = freeMegabytes(this.dir);
    } catch {
      return undefined;
    }
    const at = performance.now();
    if (this.last && at > this.last.at) {
      const inst = ((this.last.freeMb - freeMb) * 1000) / (at - this.last.at);
      this.rate = Math.max(inst, this.rate * RATE_DECAY, 0);
    }
    this.last = { at, freeMb };
    const marginMb = (this.rate * this.horizonMs) / 1000;
    const room = freeMb - this.minFreeMb;
    const v: DiskVerdict = { freeMb, rateMbS: this.rate, marginMb };
    if (room < 0) v.low = `free disk ${freeMb.toFixed(1)} MB < ${this.minFreeMb} MB`;
    else if (marginMb >= room && this.rate > 0) {
      const growth = growthMb();
      if (growth >= room) {
        v.low = `free disk ${freeMb.toFixed(1)} MB falling ${this.rate.toFixed(1)} MB/s: < ${this.minFreeMb} MB within ${this.horizonMs} ms`;
      }
    }
    return v;
  }

  /** Forget the rate (no capture runs: what frees or fills the disk now is not ours). */
  reset(): void {
    this.last = undefined;
    this.rate = 0;
  }
}

/** MB (2^20) a ring of `ringMb` (tcpdump's -C unit: 10^6 bytes) may hold: each file can pass -C by one packet. */
export function ringBoundMb(ringMb: number, files = 10, snaplen = 262_144): number {
  return (ringMb * 1e6 + files * snaplen) / 1048576;
}
