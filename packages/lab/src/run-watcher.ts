// Follows a run through its `--json` event lines (the same lines `cpe-capture run --json` prints),
// whether they come from a child process's stdout or from runConfig in this process.
import { Writable } from "node:stream";
import { LabError } from "./netns.js";

/** One line of `run --json`: an events.csv row, or the closing `done` line. */
export interface RunEventLine {
  timestamp?: string;
  device?: string;
  source?: string;
  event?: string;
  status?: string;
  httpStatus?: number;
  detail?: string;
  done?: boolean;
  folder?: string;
  exitCode?: number;
}

export class RunWatcher {
  /** Latest state per device ("starting", "capturing", "stopping", "collecting", "done", "failed"). */
  readonly states = new Map<string, string>();
  /** First time (epoch ms) each device reached each state. */
  readonly reached = new Map<string, Map<string, number>>();
  done: { status: string; folder: string; exitCode: number } | undefined;
  private failure: Error | undefined;
  private readonly wakers = new Set<() => void>();
  private partial = "";

  constructor(private readonly onEvent?: (e: RunEventLine) => void) {}

  /** A chunk of output; complete lines are parsed, anything not JSON is ignored. */
  push(chunk: string): void {
    this.partial += chunk;
    const parts = this.partial.split("\n");
    this.partial = parts.pop()!;
    for (const p of parts) this.line(p);
  }

  line(text: string): void {
    let e: RunEventLine;
    try {
      e = JSON.parse(text) as RunEventLine;
    } catch {
      return;
    }
    if (typeof e !== "object" || e === null) return;
    if (e.done === true) this.done = { status: String(e.status ?? ""), folder: String(e.folder ?? ""), exitCode: Number(e.exitCode ?? 1) };
    else if (e.source === "run" && e.event === "state" && e.device && e.status) {
      this.states.set(e.device, e.status);
      let m = this.reached.get(e.device);
      if (!m) this.reached.set(e.device, (m = new Map()));
      if (!m.has(e.status)) m.set(e.status, e.timestamp ? Date.parse(e.timestamp) : Date.now());
    }
    this.onEvent?.(e);
    this.wake();
  }

  /** A stream to hand to runConfig as its stdout. */
  writable(): Writable {
    return new Writable({
      write: (chunk: Buffer | string, _enc, cb) => {
        this.push(chunk.toString());
        cb();
      },
    });
  }

  /** Make every pending and future wait fail (the run's process died). */
  fail(err: Error): void {
    this.failure ??= err;
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.wakers]) w();
  }

  /** Resolves once every device is past starting (capturing, or already done or failed). */
  waitForStarted(devices: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const settled = (s: string | undefined) => s === "capturing" || s === "done" || s === "failed";
    return this.waitFor(() => devices.every((d) => settled(this.states.get(d))), timeoutMs, "every device to start capturing", signal);
  }

  /** Resolves once `pred` holds; rejects on timeout, abort, or fail(). */
  waitFor(pred: () => boolean, timeoutMs: number, what: string, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pred()) finish(() => resolve());
        else if (this.failure) finish(() => reject(this.failure));
      };
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        this.wakers.delete(check);
        signal?.removeEventListener("abort", onAbort);
        fn();
      };
      const onAbort = () => finish(() => reject(new LabError(`interrupted while waiting for ${what}`)));
      const timer = setTimeout(() => finish(() => reject(new LabError(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}`))), timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.wakers.add(check);
      check();
    });
  }
}
