// The agent's state file (the original's devices_info, server side): per device registration,
// capture state, last capture and a bounded task list. Written durably (temp file, fsync, rename,
// fsync of the dir: durable.ts), coalesced so a burst of commands costs one write. A file that cannot
// be read at start-up is reported (loadProblem) and kept aside; the agent then recovers from the
// process table (recovery.ts).
import { readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { writeFileDurable } from "./durable.js";

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

export class StateStore {
  readonly path: string;
  private devices = new Map<string, DeviceRecord>();
  private pending = false;
  private writes = 0;
  /** Waiting for the next write (answers that promise what the file will say). */
  private waiters: (() => void)[] = [];
  private lastCostMs = 0;
  private lastWriteAt = 0;
  /** `afterWrite` gets every written state (devices_info.json is written from it). */
  constructor(
    dir: string,
    private readonly afterWrite?: (devices: readonly DeviceRecord[]) => void,
  ) {
    this.path = join(dir, "server-capture-state.json");
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
    for (const d of parsed.devices) if (d && typeof d.device === "string") this.devices.set(d.device, { ...d, tasks: Array.isArray(d.tasks) ? d.tasks : [] });
    return [...this.devices.values()];
  }

  get(device: string): DeviceRecord | undefined {
    return this.devices.get(device);
  }

  upsert(device: string): DeviceRecord {
    let d = this.devices.get(device);
    if (!d) {
      d = { device, registration: "not active", tasks: [] };
      this.devices.set(device, d);
    }
    return d;
  }

  all(): DeviceRecord[] {
    return [...this.devices.values()];
  }

  task(device: string, task: string, status: string, detail?: string): void {
    const d = this.upsert(device);
    d.tasks.push({ timestamp: new Date().toISOString(), task, status, ...(detail ? { detail } : {}) });
    if (d.tasks.length > MAX_TASKS) d.tasks.splice(0, d.tasks.length - MAX_TASKS);
    this.save();
  }

  /** Run `then` once the state as it is now is on disk; everything asked for in one tick shares one write. */
  afterFlush(then: () => void): void {
    this.waiters.push(then);
    this.save();
  }

  /**
   * Schedule one coalesced atomic write: on the next tick while writes are cheap; when the file has
   * grown (a thousand devices: tens of ms to serialise and replace) no sooner than the last write
   * took, so a burst of answers shares writes instead of the agent doing little else.
   */
  save(): void {
    if (this.pending) return;
    this.pending = true;
    const wait = this.lastCostMs < 2 ? 0 : Math.min(200, this.lastCostMs) - (performance.now() - this.lastWriteAt);
    if (wait > 0) setTimeout(() => this.pending && this.flush(), wait);
    else setImmediate(() => this.pending && this.flush());
  }

  flush(): void {
    const t0 = performance.now();
    this.pending = false;
    const body: StateFile = { version: 1, updatedAt: new Date().toISOString(), devices: this.all() };
    // Durable: a CAPTURE's 200 promises that a restarted agent (even after a power cut) knows the pid.
    const syncMs = writeFileDurable(this.path, JSON.stringify(body, null, 2) + "\n");
    this.writes++;
    this.lastWriteAt = performance.now();
    // The pacing in save() is for the work of serialising a big file, not for the disk's latency.
    this.lastCostMs = this.lastWriteAt - t0 - syncMs;
    // Only after a successful write; a failed one leaves them for the next.
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    if (this.afterWrite) {
      const t1 = performance.now();
      this.afterWrite(body.devices);
      this.lastCostMs += performance.now() - t1;
    }
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
