// The agent's state file (the original's devices_info, server side): per device registration,
// capture state, last capture and a bounded task list. Written durably (temp file, fsync, rename,
// fsync of the dir: durable.ts), coalesced so a burst of commands costs one write. A file that cannot
// be read at start-up is reported (loadProblem) and kept aside; the agent then recovers from the
// process table (recovery.ts).
import { readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { writeFileDurable, writeFileDurableAsync } from "./durable.js";

export type SessionState = "starting" | "capturing" | "stopping" | "stopped" | "failed" | "collected";
export type StopReason = "request" | "max-duration" | "disk-low" | "shutdown" | "tcpdump-exited" | "agent-restart" | "spec-limit";

export interface FileInfo {
  name: string;
  bytes: number;
}

export interface SessionRecord {
  device: string;
  state: SessionState;
  /** Temp base name inside the incoming dir. */
  tmpName: string;
  ring: boolean;
  iface: string;
  filter: string[];
  /** From a CAPTURE spec: its canonical JSON, and the limits the agent enforces itself. */
  spec?: string;
  limits?: { durationMs?: number; maxBytes?: number; packets?: number };
  pid?: number;
  /** Disk bound of its ring (tcpdump -C x -W, in MB of 10^6 bytes), when it writes one. */
  ringMb?: number;
  /** Wall clock, for people and file names; ages are taken from startedMono (clock.ts). */
  startedAt: string;
  /** Monotonic ms (CLOCK_MONOTONIC) at the start, and the boot it counts from. */
  startedMono?: number;
  bootId?: string;
  /** CSYNC/1: the orchestrator that started it (key fingerprint and address); only it may STOP it. */
  owner?: { key: string; address: string };
  stoppedAt?: string;
  stopReason?: StopReason;
  packets?: number;
  error?: string;
  /** After STOP: the device file name it was renamed for, and the final files. */
  forFile?: string;
  files?: FileInfo[];
}

export interface Task {
  timestamp: string;
  task: string;
  status: string;
  detail?: string;
}

export interface DeviceRecord {
  device: string;
  registration: "active" | "not active";
  orchestrator?: string;
  lastRequest?: string;
  lastResponse?: string;
  session?: SessionRecord;
  tasks: Task[];
}

interface StateFile {
  version: 1;
  updatedAt: string;
  devices: DeviceRecord[];
}

const MAX_TASKS = 50;

/** devices_info.json is a view (never read back): written at most this often while the state changes. */
export const INFO_DEBOUNCE_MS = 1000;
/** Every record is re-serialised at least this often: a mutation nobody marked still reaches the file. */
const FULL_REWRITE_MS = 10_000;

/** `afterWrite` renders devices_info.json: every record, and the devices changed since its last call (undefined: all). */
export type AfterWrite = (devices: readonly DeviceRecord[], changed?: ReadonlySet<string>) => void;
/**
 * The durable replacement of the state file (durable.ts). The default, writeFileDurableAsync, runs
 * the write and both fsyncs in libuv's thread pool: a loaded disk's fsync (10-30 ms measured here)
 * never stalls the loop, which reads the socket and gathers the next group meanwhile. `mayRename`
 * false means a synchronous flush() replaced the file meanwhile: this write is dropped.
 */
export type DurableWriter = (path: string, data: string, mayRename: () => boolean) => void | Promise<void>;

/**
 * The state file, group-committed: changes mark their device dirty (`seq` counts them); one write is
 * in flight at a time and carries every change made before it started; what waits for durability
 * (`afterFlush`, `afterDurable`) runs once the write that contains its change has completed (temp
 * file fsynced, renamed, directory fsynced). Changes made during a write share the next one: a
 * burst of N requests costs about (burst duration / write latency) writes, not N. Each device's JSON
 * is kept serialised and only dirty ones are re-serialised: a write costs O(changed) CPU plus one
 * O(devices) concatenation; the bytes written stay O(devices) per write (the file is one snapshot
 * every reader can parse).
 */
export class StateStore {
  readonly path: string;
  private devices = new Map<string, DeviceRecord>();
  /** Each device's record as last serialised (one line of the file). */
  private readonly text = new Map<string, string>();
  private readonly dirty = new Set<string>();
  /** Devices changed since devices_info.json was last rendered. */
  private readonly infoDirty = new Set<string>();
  /** Changes marked so far, and how many of them the file on disk holds. */
  private seq = 0;
  private durableSeq = 0;
  private writing = false;
  private scheduled = false;
  /** Bumped by every synchronous flush: an async write that started before one must not rename over it. */
  private syncGen = 0;
  private lastFullAt = 0;
  private waiters: { seq: number; fn: () => void }[] = [];
  private infoTimer?: NodeJS.Timeout;
  private lastInfoAt = 0;
  private closed = false;
  /** Writes completed (async and sync), for the benchmarks and tests. */
  writes = 0;
  private readonly writer: DurableWriter;
  constructor(
    dir: string,
    private readonly afterWrite?: AfterWrite,
    writer?: DurableWriter,
  ) {
    this.path = join(dir, "server-capture-state.json");
    this.writer = writer ?? writeFileDurableAsync;
  }

  /** Why the file found at load() could not be used (torn, empty, unknown format), and where it was kept. */
  loadProblem?: { problem: string; keptAs?: string };

  load(): DeviceRecord[] {
    this.removeStaleTemps();
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") this.loadProblem = { problem: `unreadable (${code ?? "error"})` };
      return [];
    }
    let parsed: StateFile | undefined;
    try {
      parsed = JSON.parse(text) as StateFile;
    } catch {
      parsed = undefined;
    }
    if (parsed?.version !== 1 || !Array.isArray(parsed.devices)) {
      const problem = text.trim() === "" ? `empty (${text.length} bytes)` : parsed === undefined ? `not valid JSON (${text.length} bytes: torn by a crash or power cut?)` : "not a version 1 state file";
      // Kept for the operator (and a bug report); the next write replaces the original.
      const keptAs = `${this.path}.bad-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      try {
        renameSync(this.path, keptAs);
        this.loadProblem = { problem, keptAs };
      } catch {
        this.loadProblem = { problem };
      }
      return [];
    }
    for (const d of parsed.devices) {
      if (d && typeof d.device === "string") {
        this.devices.set(d.device, { ...d, tasks: Array.isArray(d.tasks) ? d.tasks : [] });
        this.mark(d.device);
      }
    }
    return [...this.devices.values()];
  }

  /** A device's record, marked changed: callers get it to change it (a read-only look is `peek`). */
  get(device: string): DeviceRecord | undefined {
    const d = this.devices.get(device);
    if (d) this.mark(device);
    return d;
  }

  /** A device's record without marking it changed. */
  peek(device: string): DeviceRecord | undefined {
    return this.devices.get(device);
  }

  upsert(device: string): DeviceRecord {
    let d = this.devices.get(device);
    if (!d) {
      d = { device, registration: "not active", tasks: [] };
      this.devices.set(device, d);
    }
    this.mark(device);
    return d;
  }

  /** Devices with a record. */
  get size(): number {
    return this.devices.size;
  }

  all(): DeviceRecord[] {
    return [...this.devices.values()];
  }

  /** Every record, without copying (read-only iteration over a fleet). */
  values(): IterableIterator<DeviceRecord> {
    return this.devices.values();
  }

  task(device: string, task: string, status: string, detail?: string): void {
    const d = this.upsert(device);
    d.tasks.push({ timestamp: new Date().toISOString(), task, status, ...(detail ? { detail } : {}) });
    if (d.tasks.length > MAX_TASKS) d.tasks.splice(0, d.tasks.length - MAX_TASKS);
    this.save();
  }

  /** The count of changes so far: `afterDurable(changeCount())` waits for the write that holds them all. */
  changeCount(): number {
    return this.seq;
  }

  /** Run `then` once the state as it is now is on disk; everything asked for meanwhile shares one write. */
  afterFlush(then: () => void): void {
    this.afterDurable(this.seq, then);
  }

  /** Run `then` once the file holds change number `seq` (at once when it already does). */
  afterDurable(seq: number, then: () => void): void {
    if (seq <= this.durableSeq) {
      then();
      return;
    }
    this.waiters.push({ seq, fn: then });
    this.save();
  }

  /** Mark `device` changed (when given) and schedule the group write. */
  save(device?: string): void {
    if (device !== undefined) this.mark(device);
    if (this.scheduled || this.writing || this.closed) return;
    if (this.seq === this.durableSeq && !this.waiters.length) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.writeAsync();
    });
  }

  private mark(device: string): void {
    this.seq++;
    this.dirty.add(device);
    this.infoDirty.add(device);
  }

  /** The file's text, re-serialising only the records changed since the last write (all, now and then). */
  private render(): string {
    const now = performance.now();
    if (now - this.lastFullAt > FULL_REWRITE_MS) {
      this.lastFullAt = now;
      for (const device of this.devices.keys()) this.dirty.add(device);
    }
    for (const device of this.dirty) {
      const d = this.devices.get(device);
      if (d) this.text.set(device, JSON.stringify(d));
    }
    this.dirty.clear();
    // One record per line: a valid JSON document, diffable, and concatenated from cached lines.
    const lines = [...this.text.values()];
    return `{"version":1,"updatedAt":${JSON.stringify(new Date().toISOString())},"devices":[${lines.length ? "\n" + lines.join(",\n") + "\n" : ""}]}\n`;
  }

  private async writeAsync(): Promise<void> {
    if (this.writing || this.closed) return;
    this.writing = true;
    const upto = this.seq;
    const gen = this.syncGen;
    try {
      const body = this.render();
      const pending = this.writer(this.path, body, () => gen === this.syncGen);
      if (pending) await pending;
      this.writes++;
      this.completed(upto);
    } catch (e) {
      // Waiters stay for the next write; a disk that keeps failing holds their answers (never a false promise).
      // Reported when it starts failing, not on every retry (a full disk would fill the log).
      if (this.failedAt === undefined) this.onError?.(e as Error);
      this.failedAt = performance.now();
      for (const d of this.devices.keys()) this.dirty.add(d);
    } finally {
      this.writing = false;
    }
    if (this.seq > this.durableSeq || this.waiters.length) {
      if (this.failedAt !== undefined) setTimeout(() => this.save(), 100).unref();
      else this.save();
    }
  }

  /** Set by the agent: the first of a run of failed writes (disk full, EIO); they are retried every 100 ms. */
  onError?: (e: Error) => void;
  private failedAt?: number;

  private completed(upto: number): void {
    this.failedAt = undefined;
    if (upto > this.durableSeq) this.durableSeq = upto;
    if (this.waiters.length) {
      const ready = this.waiters.filter((w) => w.seq <= this.durableSeq);
      if (ready.length) {
        this.waiters = this.waiters.filter((w) => w.seq > this.durableSeq);
        for (const w of ready) w.fn();
      }
    }
    this.scheduleInfo();
  }

  /** devices_info.json: at once after a quiet spell, then at most every INFO_DEBOUNCE_MS while changes go on. */
  private scheduleInfo(): void {
    if (!this.afterWrite || this.infoTimer || !this.infoDirty.size) return;
    const wait = Math.max(0, this.lastInfoAt + INFO_DEBOUNCE_MS - performance.now());
    this.infoTimer = setTimeout(() => {
      this.infoTimer = undefined;
      this.writeInfo();
    }, wait);
    this.infoTimer.unref();
  }

  private writeInfo(): void {
    if (!this.afterWrite) return;
    const changed = new Set(this.infoDirty);
    this.infoDirty.clear();
    this.lastInfoAt = performance.now();
    this.afterWrite(this.all(), changed);
  }

  /**
   * Write the state file (and devices_info.json) now, synchronously: at start-up, at shutdown, and
   * where a caller must not return before both are on disk.
   */
  flush(): void {
    const upto = this.seq;
    this.syncGen++;
    writeFileDurable(this.path, this.render());
    this.writes++;
    this.completed(upto);
    if (this.infoTimer) clearTimeout(this.infoTimer);
    this.infoTimer = undefined;
    this.writeInfo();
  }

  /** At shutdown, after the last flush: no more writes are scheduled. */
  close(): void {
    this.closed = true;
    if (this.infoTimer) clearTimeout(this.infoTimer);
    this.infoTimer = undefined;
  }

  /** Temp files of agents killed mid-write (`<state>.<pid>.tmp`): never the state, only litter. */
  private removeStaleTemps(): void {
    const prefix = `${basename(this.path)}.`;
    try {
      for (const f of readdirSync(dirname(this.path))) if (f.startsWith(prefix) && f.endsWith(".tmp")) rmSync(join(dirname(this.path), f), { force: true });
    } catch {
      /* no dir yet */
    }
  }
}
