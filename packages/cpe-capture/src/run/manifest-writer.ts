// Writes manifest.json atomically, coalescing bursts of updates into one write per tick.
// The manifest is a view (journal.jsonl is what a resume trusts), and each write serialises every
// device: for a fleet that is tens of milliseconds, and one per tick made the run O(devices²)
// (measured: 4 s of 15 s CPU for 200 devices). So when a write is expensive the next one waits
// long enough to keep writing under ~5 % of the time (at most 5 s: a 1000-device manifest takes
// ~100 ms to write); small runs still write on the next tick.
import type { RunFolder } from "../artifacts/run-folder.js";
import type { Manifest } from "./model.js";
import { redact } from "@capsync/protocol";

/** Writes cheaper than this are not throttled at all. */
const CHEAP_MS = 2;
/** Wait this many times the last write's cost before the next one (≈ 5 % duty), capped. */
const DUTY_FACTOR = 20;
const MAX_DELAY_MS = 5000;

/** A write that failed (disk full) is tried again after this long. */
const RETRY_MS = 1000;

export class ManifestWriter {
  private failing = false;
  private scheduled: { immediate: NodeJS.Immediate } | { timeout: NodeJS.Timeout } | undefined;
  private lastCostMs = 0;
  private lastWriteAt = 0;
  constructor(
    private readonly folder: RunFolder,
    readonly manifest: Manifest,
    private readonly secrets: () => readonly string[],
  ) {}

  touch(): void {
    if (this.scheduled) return;
    const wait = this.lastCostMs < CHEAP_MS ? 0 : Math.min(MAX_DELAY_MS, DUTY_FACTOR * this.lastCostMs) - (performance.now() - this.lastWriteAt);
    this.scheduled = wait > 0 ? { timeout: setTimeout(() => this.flush(), wait) } : { immediate: setImmediate(() => this.flush()) };
  }

  /** Write now (run start and end, resume): cancels a pending delayed write. */
  flush(): void {
    const s = this.scheduled;
    if (s && "timeout" in s) clearTimeout(s.timeout);
    else if (s) clearImmediate(s.immediate);
    this.scheduled = undefined;
    const t0 = performance.now();
    // Belt and braces: device outputs are already redacted, but nothing secret may reach disk.
    try {
      this.folder.writeAtomic("manifest.json", redact(JSON.stringify(this.manifest, null, 2), this.secrets()) + "\n");
    } catch (e) {
      // Disk full (a capture download filled it) or the folder gone: the run must go on stopping
      // and collecting captures, so keep the manifest in memory and write it again in a second.
      if (!this.failing) process.stderr.write(`cpe-capture: cannot write manifest.json: ${(e as Error).message}; retrying\n`);
      this.failing = true;
      this.scheduled ??= { timeout: setTimeout(() => this.flush(), RETRY_MS).unref() };
      return;
    }
    if (this.failing) process.stderr.write("cpe-capture: manifest.json written again\n");
    this.failing = false;
    this.lastWriteAt = performance.now();
    this.lastCostMs = this.lastWriteAt - t0;
  }
}
