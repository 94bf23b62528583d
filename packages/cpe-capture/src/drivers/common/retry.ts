// How every driver runs a device call (a REST request, a CLI session, a download): retries with
// exponential backoff inside the operation deadline, one manifest task per attempt with its output
// scrubbed, and every thrown error typed. Not here: what a device answer means and whether a
// failed answer is worth repeating (each driver returns that as a Failure).
import { CapsyncError, ConfigError, DeviceAuthError, DeviceTimeoutError } from "@capsync/protocol";
import type { DriverOptions, DriverTask } from "../driver.js";
import { isPermanent } from "./http.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** HTTP statuses a later attempt may get past: busy, throttled, a server that is restarting. */
export const RETRYABLE_HTTP = new Set([409, 429, 500, 502, 503, 504]);

const OUTPUT_LIMIT = 4000;

/** Why an attempt failed, and whether trying again can help. */
export interface Failure {
  error: CapsyncError;
  retry: boolean;
}
export type Attempt<T> = { value: T; httpStatus?: number; output?: string } | (Failure & { httpStatus?: number; output?: string });

export interface RetrySettings {
  rest: number;
  sftp: number;
  confirm: number;
  backoffMs: number;
  maxBackoffMs: number;
}

/** The driver options' `retries` (a number sets rest and sftp alike) with their defaults. */
export function retrySettings(retries: DriverOptions["retries"]): RetrySettings {
  const r = typeof retries === "number" ? { rest: retries, sftp: retries } : (retries ?? {});
  const o = typeof retries === "object" ? retries : undefined;
  return {
    rest: r.rest ?? 3,
    sftp: r.sftp ?? 3,
    confirm: o?.confirm ?? 5,
    backoffMs: o?.backoffMs ?? 500,
    maxBackoffMs: o?.maxBackoffMs ?? 5000,
  };
}

export interface DeviceCallsOptions {
  /** "<type> <address>", the start of every message. */
  label: string;
  /** Bound of one call including its retries and backoff; undefined: none. */
  operationMs: number | undefined;
  backoffMs: number;
  maxBackoffMs: number;
  /** Takes the device's secrets out of task outputs and wrapped messages. */
  scrub: (text: string) => string;
  onTask: (task: DriverTask) => void;
  /**
   * Whether a thrown typed error is worth another attempt, beyond the rule every driver has: auth
   * and config errors, bugs (`internal`), local I/O and permanent transport errors never are.
   */
  retryable?: (error: CapsyncError) => boolean;
}

export class DeviceCalls {
  constructor(private readonly o: DeviceCallsOptions) {}

  backoff(attempt: number): number {
    return Math.min(this.o.backoffMs * 2 ** (attempt - 1), this.o.maxBackoffMs);
  }

  private record(task: Omit<DriverTask, "output" | "request"> & { output?: string | undefined; request?: string | undefined }): void {
    const { output, request, ...rest } = task;
    const t: DriverTask = output === undefined ? rest : { ...rest, output: this.o.scrub(output).slice(0, OUTPUT_LIMIT) };
    if (request !== undefined) t.request = this.o.scrub(request).slice(0, OUTPUT_LIMIT);
    try {
      this.o.onTask(t);
    } catch {
      /* a listener's bug must not fail the device operation */
    }
  }

  /**
   * Runs `attempt` with retries, backoff and the operation deadline, recording one task per try.
   * `attempt` gets the time it may use and returns a value or a Failure. `request` (the CLI script or
   * RPC text) goes with each attempt's task into the log.
   */
  async run<T>(name: string, maxRetries: number, attempt: (timeLeftMs: number) => Promise<Attempt<T>>, perAttemptMs: number, request?: string): Promise<T> {
    const operationMs = this.o.operationMs;
    // Monotonic (performance.now): a wall-clock step neither cuts the operation short nor stretches it.
    const deadline = operationMs === undefined ? Infinity : performance.now() + operationMs;
    let last: CapsyncError | undefined;
    for (let n = 1; n <= maxRetries + 1; n++) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      const started = performance.now();
      const timestamp = new Date().toISOString();
      let r: Attempt<T>;
      try {
        r = await attempt(Math.min(perAttemptMs, left));
      } catch (err) {
        // Typed transport errors from the clients; anything else is a bug, still wrapped.
        const error = this.wrap(name, err);
        const retry =
          !(error instanceof DeviceAuthError) &&
          !(error instanceof ConfigError) &&
          error.code !== "internal" &&
          error.code !== "local-io" &&
          !isPermanent(error) &&
          (this.o.retryable?.(error) ?? true);
        r = { error, retry };
      }
      const base = { name, timestamp, attempt: n, durationMs: Math.round(performance.now() - started), request };
      if ("value" in r) {
        this.record({ ...base, status: "ok", ...(r.httpStatus !== undefined ? { httpStatus: r.httpStatus } : {}), output: r.output });
        return r.value;
      }
      this.record({ ...base, status: "failed", code: r.error.code, ...(r.httpStatus !== undefined ? { httpStatus: r.httpStatus } : {}), output: r.output ?? r.error.message });
      last = r.error;
      if (!r.retry || n > maxRetries) throw r.error;
      const wait = Math.min(this.backoff(n), deadline - performance.now());
      if (wait <= 0) break;
      await sleep(wait);
    }
    throw new DeviceTimeoutError(`${this.o.label}: ${name}: not done within ${operationMs ?? 0} ms${last ? ` (last error: ${last.message})` : ""}`, { cause: last });
  }

  /** Typed errors pass; local file-system failures become `local-io`; anything else is a bug (`internal`). */
  wrap(name: string, err: unknown): CapsyncError {
    if (err instanceof CapsyncError) return err;
    const errno = (err as NodeJS.ErrnoException | undefined)?.code;
    const text = this.o.scrub(err instanceof Error ? err.message : String(err));
    return new CapsyncError(typeof errno === "string" && errno.startsWith("E") ? "local-io" : "internal", `${this.o.label}: ${name}: ${text}`, { cause: err });
  }
}

/**
 * A driver's DeviceCalls, wired from its options (operation deadline, backoff, task listener), with
 * the retry counts and per-attempt times its calls pass to `run`: one place for the defaults every
 * driver shares.
 */
export class DriverCalls extends DeviceCalls {
  readonly retries: RetrySettings;
  /** Time one REST request or CLI session may take (default 10 s). */
  readonly restMs: number;
  /** Time one download attempt may take (default 60 s). */
  readonly sftpMs: number;

  constructor(opts: DriverOptions, label: string, scrub: (text: string) => string, retryable?: (error: CapsyncError) => boolean) {
    const retries = retrySettings(opts.retries);
    super({ label, operationMs: opts.timeouts?.operationMs, backoffMs: retries.backoffMs, maxBackoffMs: retries.maxBackoffMs, scrub, onTask: (task) => opts.onTask?.(task), retryable });
    this.retries = retries;
    this.restMs = opts.timeouts?.restMs ?? 10_000;
    this.sftpMs = opts.timeouts?.sftpMs ?? 60_000;
  }
}
