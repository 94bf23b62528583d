// The agent's state file (the original's devices_info, server side): per device registration,
// capture state, last capture and a bounded task list. Written atomically (temp file + rename),
// coalesced so a burst of commands costs one write.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

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
  startedAt: string;
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

  load(): DeviceRecord[] {
    let parsed: StateFile;
    try {
      parsed = JSON.parse(readFileSync(this.path, "utf8")) as StateFile;
    } catch {
      return [];
    }
    if (parsed?.version !== 1 || !Array.isArray(parsed.devices)) return [];
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
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(body, null, 2) + "\n", { mode: 0o600 });
    renameSync(tmp, this.path);
    this.writes++;
    this.lastWriteAt = performance.now();
    this.lastCostMs = this.lastWriteAt - t0;
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
}
