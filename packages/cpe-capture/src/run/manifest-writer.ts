// Writes manifest.json atomically, coalescing bursts of updates into one write per tick.
// The manifest is a view (journal.jsonl is what a resume trusts), and each write serialises every
// device: for a fleet that is tens of milliseconds, and one write per tick would make the run
// O(devices²). So when a write is expensive the next one waits long enough to keep writing under
// ~5 % of the time (at most 5 s); small runs still write on the next tick.
// An expensive write is also done in slices of devices between event-loop turns and written
// asynchronously: one long block would hold every alarm that arrives meanwhile (see
// bench/alarm-to-stop.mjs and BENCHMARKS.md).
import { promises as fsp, renameSync } from "node:fs";
import type { RunFolder } from "../artifacts/run-folder.js";
import type { Manifest } from "./model.js";
import { redact } from "@capsync/protocol";

/** Writes cheaper than this are not throttled at all, and done in one piece. */
const CHEAP_MS = 2;
/** Wait this many times the last write's cost before the next one (≈ 5 % duty), capped. */
const DUTY_FACTOR = 20;
const MAX_DELAY_MS = 5000;
/** Devices serialised per event-loop turn in a sliced write. */
const SLICE = 25;
/** Stands for the devices array while the rest of the manifest is serialised. */
const DEVICES_SLOT = "\u0000capsync-devices\u0000";

/** A write that failed (disk full) is tried again after this long. */
const RETRY_MS = 1000;

const turn = () => new Promise<void>((r) => setImmediate(r));

/** A file written with every manifest.json write, from the same manifest (devices_info.json). */
export interface ManifestCompanion {
  file: string;
  text(m: Manifest, secrets: readonly string[]): string;
  sliced(m: Manifest, secrets: readonly string[], stale: () => boolean): Promise<{ text: string; busyMs: number } | undefined>;
}

/**
 * JSON.stringify(manifest, null, 2), redacted, built a slice of devices per turn: the top level
 * with a stand-in for the devices array, then each device at its indentation. A device changed
 * between slices is written as it was when its slice ran. `stale()` ends it early (undefined).
 */
export async function slicedManifestText(m: Manifest, secrets: readonly string[], stale: () => boolean = () => false): Promise<{ text: string; busyMs: number } | undefined> {
  let busyMs = 0;
  let t = performance.now();
  const devices = m.devices;
  const top = redact(JSON.stringify(m, (k, v: unknown) => (k === "devices" && v === devices ? DEVICES_SLOT : v), 2), secrets);
  const parts: string[] = [];
  for (let i = 0; i < devices.length; i += SLICE) {
    for (const d of devices.slice(i, i + SLICE)) parts.push(redact(JSON.stringify(d, null, 2), secrets).replace(/^/gm, "    "));
    busyMs += performance.now() - t;
    await turn();
    if (stale()) return undefined;
    t = performance.now();
  }
  const list = parts.length ? `[\n${parts.join(",\n")}\n  ]` : "[]";
  const text = top.replace(JSON.stringify(DEVICES_SLOT), () => list);
  return { text, busyMs: busyMs + performance.now() - t };
}

export class ManifestWriter {
  private failing = false;
  private scheduled: { immediate: NodeJS.Immediate } | { timeout: NodeJS.Timeout } | undefined;
  private lastCostMs = 0;
  private lastWriteAt = 0;
  /** Bumped by every write; a sliced write renames its file only if still the latest. */
  private generation = 0;
  private slicing = false;
  /** Changed since the last write began. */
  private dirty = false;
  constructor(
    private readonly folder: RunFolder,
    readonly manifest: Manifest,
    private readonly secrets: () => readonly string[],
    private readonly companion?: ManifestCompanion,
  ) {}

  touch(): void {
    this.dirty = true;
    if (this.scheduled || this.slicing) return;
    const wait = this.lastCostMs < CHEAP_MS ? 0 : Math.min(MAX_DELAY_MS, DUTY_FACTOR * this.lastCostMs) - (performance.now() - this.lastWriteAt);
    const write = () => {
      this.scheduled = undefined;
      if (this.lastCostMs < CHEAP_MS) this.flush();
      else void this.writeSliced();
    };
    this.scheduled = wait > 0 ? { timeout: setTimeout(write, wait) } : { immediate: setImmediate(write) };
  }

  /** Write now, in one piece (run start and end, resume): cancels a pending or sliced write. */
  flush(): void {
    this.cancelScheduled();
    this.generation++;
    this.dirty = false;
    const t0 = performance.now();
    // Belt and braces: device outputs are already redacted, but nothing secret may reach disk.
    try {
      this.folder.writeAtomic("manifest.json", redact(JSON.stringify(this.manifest, null, 2), this.secrets()) + "\n");
      if (this.companion) this.folder.writeAtomic(this.companion.file, this.companion.text(this.manifest, this.secrets()));
    } catch (e) {
      this.failed(e);
      return;
    }
    this.written(performance.now() - t0);
  }

  private cancelScheduled(): void {
    const s = this.scheduled;
    if (s && "timeout" in s) clearTimeout(s.timeout);
    else if (s) clearImmediate(s.immediate);
    this.scheduled = undefined;
  }

  /** The same bytes as flush(), serialised in slices and written without blocking (see slicedManifestText). */
  private async writeSliced(): Promise<void> {
    const gen = ++this.generation;
    this.slicing = true;
    this.dirty = false;
    const target = this.folder.path("manifest.json");
    const tmp = `${target}.${process.pid}.sliced.tmp`;
    const other = this.companion && { target: this.folder.path(this.companion.file), tmp: `${this.folder.path(this.companion.file)}.${process.pid}.sliced.tmp` };
    try {
      const r = await slicedManifestText(this.manifest, this.secrets(), () => gen !== this.generation);
      if (!r) return;
      const c = this.companion && (await this.companion.sliced(this.manifest, this.secrets(), () => gen !== this.generation));
      if (this.companion && !c) return;
      await fsp.writeFile(tmp, r.text + "\n", { mode: 0o640 });
      if (c && other) await fsp.writeFile(other.tmp, c.text, { mode: 0o640 });
      // Synchronous from the check to the rename: a flush() in between would otherwise be overwritten.
      if (gen !== this.generation) {
        await fsp.rm(tmp, { force: true });
        if (other) await fsp.rm(other.tmp, { force: true });
        return;
      }
      renameSync(tmp, target);
      if (other) renameSync(other.tmp, other.target);
      this.written(r.busyMs + (c?.busyMs ?? 0));
    } catch (e) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      if (other) await fsp.rm(other.tmp, { force: true }).catch(() => undefined);
      if (gen === this.generation) this.failed(e);
    } finally {
      this.slicing = false;
      // Changes made while slicing may be missing: write again (throttled as usual).
      if (gen === this.generation && !this.failing && this.dirty) this.touch();
    }
  }

  private written(costMs: number): void {
    if (this.failing) process.stderr.write("cpe-capture: manifest.json written again\n");
    this.failing = false;
    this.lastWriteAt = performance.now();
    this.lastCostMs = costMs;
  }

  private failed(e: unknown): void {
    // Disk full (a capture download filled it) or the folder gone: the run must go on stopping
    // and collecting captures, so keep the manifest in memory and write it again in a second.
    if (!this.failing) process.stderr.write(`cpe-capture: cannot write manifest.json: ${(e as Error).message}; retrying\n`);
    this.failing = true;
    this.scheduled ??= { timeout: setTimeout(() => this.flush(), RETRY_MS).unref() };
  }
}
