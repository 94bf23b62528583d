// Writes manifest.json atomically, coalescing bursts of updates into one write per tick.
// The manifest is a view (journal.jsonl is what a resume trusts). For a fleet, serialising every
// device on every write would make the run O(devices²); so a write re-serialises only the devices
// changed since their last serialisation (deviceChanged(), called by every record change through
// the recorder) and reuses the others' text, and every FULL_EVERY-th write serialises all of them
// again (a change that missed deviceChanged() shows at the latest then; flush(), at the run's start
// and end, always serialises everything). The companion (devices_info.json) is built the same way
// when it offers per-device pieces. When a write is expensive the next one waits long enough to
// keep writing under ~5 % of the time, and at least 1 s (at most 5 s); small runs still write on
// the next tick.
// An expensive write is done in slices of devices between event-loop turns and written
// asynchronously: one long block would hold every alarm that arrives meanwhile (see
// bench/alarm-to-stop.mjs and BENCHMARKS.md).
import { promises as fsp, renameSync } from "node:fs";
import type { RunFolder } from "../artifacts/run-folder.js";
import type { DeviceRecord, Manifest } from "./model.js";
import { redact } from "@capsync/protocol";

/** Writes cheaper than this are not throttled at all, and done in one piece. */
const CHEAP_MS = 2;
/** Wait this many times the last write's cost before the next one (≈ 5 % duty), capped. */
const DUTY_FACTOR = 20;
const MAX_DELAY_MS = 5000;
/**
 * An expensive write waits at least this long after the last one: its cost is mostly the devices
 * changed since, so without it cheaper (incremental) writes would only come more often, at the
 * same share of the time. manifest.json of a fleet is then at most a second behind.
 */
const MIN_DELAY_MS = 1000;
/** Devices serialised per event-loop turn in a sliced write. */
const SLICE = 25;
/** Stands for the devices array while the rest of the manifest is serialised. */
const DEVICES_SLOT = "\u0000capsync-devices\u0000";
/** Stands for the config while the rest of the manifest is serialised (incremental writes). */
const CONFIG_SLOT = "\u0000capsync-config\u0000";

/** Every this many incremental writes, one serialises every device again. */
const FULL_EVERY = 10;
/** What writing a file costs besides building its text (the copies into one buffer and into the page cache, the rename), per kB, for the throttle. */
const IO_MS_PER_KB = 0.01;

/** A write held back by holdWhile is tried again after this long, and held at most HOLD_MAX_MS. */
const HOLD_RETRY_MS = 5;
const HOLD_MAX_MS = 1000;

/** A write that failed (disk full) is tried again after this long. */
const RETRY_MS = 1000;

const turn = () => new Promise<void>((r) => setImmediate(r));

/** A file written with every manifest.json write, from the same manifest (devices_info.json). */
export interface ManifestCompanion {
  file: string;
  text(m: Manifest, secrets: readonly string[]): string;
  sliced(m: Manifest, secrets: readonly string[], stale: () => boolean): Promise<{ text: string; busyMs: number } | undefined>;
  /** The same text from one piece per device, so an incremental write rebuilds only changed devices' pieces. */
  pieces?: CompanionPieces;
}

export interface CompanionPieces {
  /** What every device's piece needs from the manifest, built once per write. */
  context(m: Manifest): unknown;
  /** One device's text, redacted, indented for its place in the file. */
  device(m: Manifest, rec: DeviceRecord, context: unknown, secrets: readonly string[]): string;
  /** The file's text around the devices' pieces (in manifest order), as chunks written one after the other. */
  chunks<C>(pieces: readonly C[]): (C | string)[];
}

/** One device's text in manifest.json: its JSON at the devices array's indentation, redacted. */
function manifestDeviceText(d: DeviceRecord, secrets: readonly string[]): string {
  return redact(JSON.stringify(d, null, 2), secrets).replace(/^/gm, "    ");
}

/** The manifest around its devices (DEVICES_SLOT for the array), redacted. */
function manifestTopText(m: Manifest, secrets: readonly string[]): string {
  const devices = m.devices;
  return redact(JSON.stringify(m, (k, v: unknown) => (k === "devices" && v === devices ? DEVICES_SLOT : v), 2), secrets);
}

/** The config's text as it sits in the manifest (one level in), redacted. */
function configText(config: unknown, secrets: readonly string[]): string {
  return redact(JSON.stringify(config, null, 2), secrets).replace(/\n/g, "\n  ");
}

const SLOTS = /"\\u0000capsync-(devices|config)\\u0000"/;

/**
 * manifest.json's text as chunks to write one after the other (never joined into one string: a
 * fleet's manifest is megabytes, and each such string is garbage the size of the file): the
 * top level serialised with stand-ins for the devices and the config, the devices' texts, the
 * config's text (undefined: serialised in place).
 */
function manifestChunks(m: Manifest, secrets: readonly string[], parts: readonly Chunk[], config: Chunk | undefined): Chunk[] {
  const devices = m.devices;
  const cfg = m.config;
  const top = redact(JSON.stringify(m, (k, v: unknown) => (k === "devices" && v === devices ? DEVICES_SLOT : config !== undefined && k === "config" && v === cfg ? CONFIG_SLOT : v), 2), secrets);
  const out: Chunk[] = [];
  top.split(SLOTS).forEach((x, i) => {
    if (i % 2 === 0) out.push(x);
    else if (x === "config") out.push(config!);
    else if (!parts.length) out.push("[]");
    else {
      out.push("[\n");
      parts.forEach((p, j) => out.push(j ? ",\n" : "", p));
      out.push("\n  ]");
    }
  });
  return out;
}

/** Text, or its UTF-8 bytes (a device's cached text: copied, not encoded again, on every write). */
type Chunk = string | Buffer;

/**
 * The chunks as buffers, for one writev: the devices' cached bytes are written as they are, so a
 * write builds no file-sized buffer (a fleet's manifest is megabytes per write: that garbage was
 * the largest source of Buffer churn in a 1,000-device run, and dead Buffers are only freed when
 * external-memory pressure forces a GC).
 */
function encodeChunks(chunks: readonly Chunk[]): Buffer[] {
  return chunks.map((c) => (typeof c === "string" ? Buffer.from(c) : c));
}

function byteLength(bufs: readonly Buffer[]): number {
  let n = 0;
  for (const b of bufs) n += b.length;
  return n;
}

/** Writes the buffers to a new file (libuv splits a long list into IOV_MAX-sized writev calls). */
async function writeChunks(path: string, bufs: readonly Buffer[]): Promise<void> {
  const fh = await fsp.open(path, "w", 0o640);
  try {
    await fh.writev(bufs as Buffer[]);
  } finally {
    await fh.close();
  }
}

/** manifest.json's text from the top-level text and the devices' texts. */
function joinManifest(top: string, parts: readonly string[]): string {
  const list = parts.length ? `[\n${parts.join(",\n")}\n  ]` : "[]";
  return top.replace(JSON.stringify(DEVICES_SLOT), () => list);
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
  const top = manifestTopText(m, secrets);
  const parts: string[] = [];
  for (let i = 0; i < devices.length; i += SLICE) {
    for (const d of devices.slice(i, i + SLICE)) parts.push(manifestDeviceText(d, secrets));
    busyMs += performance.now() - t;
    await turn();
    if (stale()) return undefined;
    t = performance.now();
  }
  const text = joinManifest(top, parts);
  return { text, busyMs: busyMs + performance.now() - t };
}

/** A file's bytes, and the event-loop time building them took. */
interface Written {
  bytes: Buffer[];
  busyMs: number;
}

/** A device's texts as last serialised; dropped when it changes. */
interface DeviceTexts {
  manifest: Buffer;
  companion?: Buffer;
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
  /** Each device's texts as last serialised (incremental writes), for these secrets. */
  private texts = new WeakMap<DeviceRecord, DeviceTexts>();
  private config?: { of: unknown; text: Buffer };
  private textsSecrets?: readonly string[];
  private textsSecretCount = 0;
  private incrementalWrites = 0;
  /** True while a write should wait (alarms arriving: their STOPs first), at most HOLD_MAX_MS in a row. */
  holdWhile?: () => boolean;
  private heldSince = -1;
  constructor(
    private readonly folder: RunFolder,
    readonly manifest: Manifest,
    private readonly secrets: () => readonly string[],
    private readonly companion?: ManifestCompanion,
  ) {}

  touch(): void {
    this.dirty = true;
    if (this.scheduled || this.slicing) return;
    const wait = this.lastCostMs < CHEAP_MS ? 0 : Math.min(MAX_DELAY_MS, Math.max(MIN_DELAY_MS, DUTY_FACTOR * this.lastCostMs)) - (performance.now() - this.lastWriteAt);
    const write = () => {
      const now = performance.now();
      if (this.holdWhile?.() && (this.heldSince < 0 || now - this.heldSince < HOLD_MAX_MS)) {
        if (this.heldSince < 0) this.heldSince = now;
        this.scheduled = { timeout: setTimeout(write, HOLD_RETRY_MS) };
        return;
      }
      this.heldSince = -1;
      this.scheduled = undefined;
      if (this.lastCostMs < CHEAP_MS) this.flush();
      else void this.writeSliced();
    };
    this.scheduled = wait > 0 ? { timeout: setTimeout(write, wait) } : { immediate: setImmediate(write) };
  }

  /** `rec` changed: its text is serialised again in the next write (which this schedules). */
  deviceChanged(rec: DeviceRecord): void {
    this.texts.delete(rec);
    this.touch();
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
      const stale = () => gen !== this.generation;
      const inc = await this.incrementalTexts(stale);
      if (!inc) return;
      const r = inc.manifest;
      const whole = !inc.companion && this.companion ? await this.companion.sliced(this.manifest, this.secrets(), stale) : undefined;
      const c: Written | undefined = inc.companion ?? (whole && { bytes: [Buffer.from(whole.text)], busyMs: whole.busyMs });
      if (this.companion && !c) return;
      await writeChunks(tmp, r.bytes);
      if (c && other) await writeChunks(other.tmp, c.bytes);
      // Synchronous from the check to the rename: a flush() in between would otherwise be overwritten.
      if (gen !== this.generation) {
        await fsp.rm(tmp, { force: true });
        if (other) await fsp.rm(other.tmp, { force: true });
        return;
      }
      renameSync(tmp, target);
      if (other) renameSync(other.tmp, other.target);
      this.written(r.busyMs + (c?.busyMs ?? 0) + ((byteLength(r.bytes) + (c ? byteLength(c.bytes) : 0)) / 1024) * IO_MS_PER_KB);
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

  /**
   * manifest.json's text (and the companion's, when it has pieces) from the cached texts of the
   * devices unchanged since they were serialised, serialising the others a slice per event-loop
   * turn; undefined when `stale()` says a newer write began.
   */
  private async incrementalTexts(stale: () => boolean): Promise<{ manifest: Written; companion?: Written } | undefined> {
    const m = this.manifest;
    const secrets = this.secrets();
    if (secrets !== this.textsSecrets || secrets.length !== this.textsSecretCount || ++this.incrementalWrites % FULL_EVERY === 0) {
      this.texts = new WeakMap();
      this.config = undefined;
      this.textsSecrets = secrets;
      this.textsSecretCount = secrets.length;
    }
    let busyMs = 0;
    let t = performance.now();
    const pieces = this.companion?.pieces;
    const context = pieces?.context(m);
    const devices = m.devices;
    const parts: Buffer[] = [];
    const companionParts: Buffer[] = [];
    let built = 0;
    for (let i = 0; i < devices.length; i++) {
      const d = devices[i]!;
      let x = this.texts.get(d);
      if (!x) {
        x = { manifest: Buffer.from(manifestDeviceText(d, secrets)), ...(pieces ? { companion: Buffer.from(pieces.device(m, d, context, secrets)) } : {}) };
        this.texts.set(d, x);
        if (++built % SLICE === 0) {
          busyMs += performance.now() - t;
          await turn();
          if (stale()) return undefined;
          t = performance.now();
        }
      }
      parts.push(x.manifest);
      if (pieces) companionParts.push(x.companion!);
    }
    if (m.config !== undefined && this.config?.of !== m.config) this.config = { of: m.config, text: Buffer.from(configText(m.config, secrets)) };
    const manifest = encodeChunks([...manifestChunks(m, secrets, parts, m.config !== undefined ? this.config?.text : undefined), "\n"]);
    const companion = pieces ? encodeChunks(pieces.chunks(companionParts)) : undefined;
    busyMs += performance.now() - t;
    return { manifest: { bytes: manifest, busyMs }, ...(companion !== undefined ? { companion: { bytes: companion, busyMs: 0 } } : {}) };
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
