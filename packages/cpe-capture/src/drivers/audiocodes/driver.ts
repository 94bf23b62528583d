// AudioCodes MSBR and Mediant GW/SBC capture driver: debug capture started/stopped through the
// incremental CLI script REST call, confirmed with `show`, file fetched over SFTP (DESIGN.md "Vendor facts").
// Not handled: capture filters/direction/snaplen (the debug capture has none); SNMP or any other device
// configuration (the original created an SNMPv3 user with a fixed password — deliberately dropped).
import { createHash } from "node:crypto";
import { createReadStream, promises as fsp } from "node:fs";
import path from "node:path";
import { CapsyncError, ConfigError, DeviceAuthError, DeviceProtocolError, DeviceTimeoutError } from "@capsync/protocol";
import { CAPTURE_INTERFACES, type CaptureSpec } from "../capture-spec.js";
import { audioCodesStartLines, audioCodesStopLines } from "../../spec/audiocodes.js";
import { compileFor } from "../../spec/index.js";
import {
  cpeCaptureFileName,
  type CaptureDriver,
  type CaptureHandle,
  type DeviceFacts,
  type DriverCapabilities,
  type DriverOptions,
  type DriverTask,
  type LocalFile,
  type RemoteFile,
} from "../driver.js";
import { isPermanent, normaliseTls, type RestAnswer } from "../common/http.js";
import { AudioCodesClient } from "./client.js";

export type AudioCodesType = "msbr" | "gwsbc";
export const AUDIOCODES_CAPTURE_FILE = "/debug-capture/debug-capture-data.pcap";
const PREFIX: Record<AudioCodesType, string> = {
  msbr: "debug capture data physical",
  gwsbc: "debug capture voip physical",
};

// ---------------------------------------------------------------------------------------------
// Wire parsing: REST bodies are device input and never make us throw.

export type CliAnswer =
  | { ok: true; status: string; output: string; description: string | undefined }
  | { ok: false; code: "not-json" | "not-object" | "bad-field"; field?: string };

/** `{"status":"success","output":"…"}`, on errors with `description`. */
export function parseCliAnswer(text: string): CliAnswer {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, code: "not-json" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { ok: false, code: "not-object" };
  const o = v as Record<string, unknown>;
  for (const f of ["status", "output", "description"] as const) {
    if (o[f] !== undefined && typeof o[f] !== "string") return { ok: false, code: "bad-field", field: f };
  }
  return { ok: true, status: (o.status as string | undefined) ?? "", output: (o.output as string | undefined) ?? "", description: o.description as string | undefined };
}

export type StatusAnswer =
  | { ok: true; productType: string; versionID: string; serialNumber: string }
  | { ok: false; code: "not-json" | "not-object" | "bad-field"; field?: string };

/** `GET /api/v1/status`: productType, versionID, serialNumber are required strings. */
export function parseStatusAnswer(text: string): StatusAnswer {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, code: "not-json" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { ok: false, code: "not-object" };
  const o = v as Record<string, unknown>;
  for (const f of ["productType", "versionID", "serialNumber"] as const) {
    if (typeof o[f] !== "string" || o[f] === "") return { ok: false, code: "bad-field", field: f };
  }
  return { ok: true, productType: o.productType as string, versionID: o.versionID as string, serialNumber: o.serialNumber as string };
}

/** The last `show` verdict in a CLI output: "Debug capture physical is active" / "... is not active". */
export function parseShowOutput(output: string): "active" | "inactive" | undefined {
  const all = [...output.matchAll(/physical is (not )?active\b/gi)];
  const last = all[all.length - 1];
  if (!last) return undefined;
  return last[1] ? "inactive" : "active";
}

/** First bytes of a pcap (µs or ns, either byte order) or pcapng file. */
export function hasCaptureMagic(head: Buffer): boolean {
  if (head.length < 4) return false;
  const m = head.readUInt32BE(0);
  return [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a].includes(m);
}

// ---------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const OUTPUT_LIMIT = 4000;
const RETRYABLE_HTTP = new Set([409, 429, 500, 502, 503, 504]);

/** Why an attempt failed, and whether trying again can help. */
interface Failure {
  error: CapsyncError;
  retry: boolean;
}
type Attempt<T> = { value: T; httpStatus?: number; output?: string } | (Failure & { httpStatus?: number; output?: string });

export class AudioCodesDriver implements CaptureDriver {
  readonly type: AudioCodesType;
  readonly address: string;
  readonly capabilities: DriverCapabilities;
  private readonly client: AudioCodesClient;
  private readonly restMs: number;
  private readonly sftpMs: number;
  private readonly operationMs: number | undefined;
  private readonly retries: { rest: number; sftp: number; confirm: number; backoffMs: number; maxBackoffMs: number };
  private readonly label: string;

  constructor(private readonly opts: DriverOptions) {
    if (opts.type !== "msbr" && opts.type !== "gwsbc") throw new ConfigError(`AudioCodes driver: unsupported device type ${JSON.stringify(opts.type)}`);
    this.type = opts.type;
    this.address = opts.address;
    this.label = `${opts.type} ${opts.address}`;
    const t = CAPTURE_INTERFACES[this.type];
    this.capabilities = {
      vendor: "audiocodes",
      interfaces: t.allowed,
      defaultInterfaces: t.defaults,
      multipleInterfaces: t.multiple,
      filter: false,
      direction: false,
      snaplen: false,
      transfer: "sftp",
    };
    const r = typeof opts.retries === "number" ? { rest: opts.retries, sftp: opts.retries } : (opts.retries ?? {});
    this.retries = {
      rest: r.rest ?? 3,
      sftp: r.sftp ?? 3,
      confirm: (typeof opts.retries === "object" ? opts.retries.confirm : undefined) ?? 5,
      backoffMs: (typeof opts.retries === "object" ? opts.retries.backoffMs : undefined) ?? 500,
      maxBackoffMs: (typeof opts.retries === "object" ? opts.retries.maxBackoffMs : undefined) ?? 5000,
    };
    this.restMs = opts.timeouts?.restMs ?? 10_000;
    this.sftpMs = opts.timeouts?.sftpMs ?? 60_000;
    this.operationMs = opts.timeouts?.operationMs;
    this.client = new AudioCodesClient({
      address: opts.address,
      restPort: opts.restPort ?? 443,
      sshPort: opts.sshPort ?? 22,
      username: opts.username,
      password: opts.password,
      tls: normaliseTls(opts.tls),
      sshHostKeySha256: opts.sshHostKeySha256,
    });
  }

  private backoff(attempt: number): number {
    return Math.min(this.retries.backoffMs * 2 ** (attempt - 1), this.retries.maxBackoffMs);
  }

  private record(task: Omit<DriverTask, "output"> & { output?: string | undefined }): void {
    const { output, ...rest } = task;
    const t: DriverTask = output === undefined ? rest : { ...rest, output: this.client.scrub(output).slice(0, OUTPUT_LIMIT) };
    try {
      this.opts.onTask?.(t);
    } catch {
      /* a listener's bug must not fail the device operation */
    }
  }

  /**
   * Runs `attempt` with retries, backoff and the operation deadline, recording one task per try.
   * `attempt` gets the time it may use and returns a value or a Failure.
   */
  private async withRetries<T>(
    name: string,
    maxRetries: number,
    attempt: (timeLeftMs: number) => Promise<Attempt<T>>,
    perAttemptMs: number,
  ): Promise<T> {
    const deadline = this.operationMs === undefined ? Infinity : Date.now() + this.operationMs;
    let last: CapsyncError | undefined;
    for (let n = 1; n <= maxRetries + 1; n++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const started = Date.now();
      const timestamp = new Date(started).toISOString();
      let r: Attempt<T>;
      try {
        r = await attempt(Math.min(perAttemptMs, left));
      } catch (err) {
        // Typed transport errors from the client; anything else is a bug, still wrapped.
        const error = this.wrap(name, err);
        const retry = !(error instanceof DeviceAuthError) && !(error instanceof ConfigError) && error.code !== "internal" && error.code !== "local-io" && !isPermanent(error);
        r = { error, retry };
      }
      const base = { name, timestamp, attempt: n, durationMs: Date.now() - started };
      if ("value" in r) {
        this.record({ ...base, status: "ok", ...(r.httpStatus !== undefined ? { httpStatus: r.httpStatus } : {}), output: r.output });
        return r.value;
      }
      this.record({
        ...base,
        status: "failed",
        code: r.error.code,
        ...(r.httpStatus !== undefined ? { httpStatus: r.httpStatus } : {}),
        output: r.output ?? r.error.message,
      });
      last = r.error;
      if (!r.retry || n > maxRetries) throw r.error;
      const wait = Math.min(this.backoff(n), deadline - Date.now());
      if (wait <= 0) break;
      await sleep(wait);
    }
    const limit = this.operationMs ?? 0;
    throw new DeviceTimeoutError(`${this.label}: ${name}: not done within ${limit} ms${last ? ` (last error: ${last.message})` : ""}`, { cause: last });
  }

  /** Typed errors pass; local file-system failures become `local-io`; anything else is a bug (`internal`). */
  private wrap(name: string, err: unknown): CapsyncError {
    if (err instanceof CapsyncError) return err;
    const errno = (err as NodeJS.ErrnoException | undefined)?.code;
    const text = this.client.scrub(err instanceof Error ? err.message : String(err));
    return new CapsyncError(typeof errno === "string" && errno.startsWith("E") ? "local-io" : "internal", `${this.label}: ${name}: ${text}`, { cause: err });
  }

  /** Maps an HTTP answer that is not a success to a typed error carrying the device's own description. */
  private httpFailure(name: string, ans: RestAnswer, rawDescription: string | undefined): Failure & { httpStatus: number; output: string } {
    const s = ans.httpStatus;
    // Device text goes into messages verbatim, except any echo of the password.
    const description = rawDescription === undefined ? undefined : this.client.scrub(rawDescription);
    const what = `${this.label}: ${name}: HTTP ${s}${description ? ` ${description}` : ""}`;
    const out = { httpStatus: s, output: description ?? ans.text.slice(0, 500) };
    if (s === 401 || s === 403) return { ...out, error: new DeviceAuthError(what), retry: false };
    if (s === 409) return { ...out, error: new DeviceProtocolError(what, { httpStatus: s, code: "device-busy" }), retry: true };
    if (s === 400) return { ...out, error: new DeviceProtocolError(what, { httpStatus: s, code: "device-rejected" }), retry: false };
    if (s >= 500) return { ...out, error: new DeviceProtocolError(what, { httpStatus: s, code: "device-error" }), retry: RETRYABLE_HTTP.has(s) };
    return { ...out, error: new DeviceProtocolError(what, { httpStatus: s }), retry: RETRYABLE_HTTP.has(s) };
  }

  /** One CLI script with retries; resolves to the device's output on `status: success`. */
  private runScript(name: string, lines: string[]): Promise<string> {
    return this.withRetries<string>(
      name,
      this.retries.rest,
      async (ms) => {
        const ans = await this.client.putCliScript(lines, ms);
        const parsed = parseCliAnswer(ans.text);
        const description = parsed.ok ? parsed.description : undefined;
        if (ans.httpStatus < 200 || ans.httpStatus >= 300) return this.httpFailure(name, ans, description);
        if (!parsed.ok) {
          const why = parsed.field ? `${parsed.code} (${parsed.field})` : parsed.code;
          return { httpStatus: ans.httpStatus, error: new DeviceProtocolError(`${this.label}: ${name}: unreadable answer: ${why}`, { httpStatus: ans.httpStatus, code: "device-bad-answer" }), retry: true };
        }
        if (parsed.status !== "success") {
          return {
            httpStatus: ans.httpStatus,
            output: parsed.description ?? parsed.output,
            error: new DeviceProtocolError(
              this.client.scrub(`${this.label}: ${name}: status ${parsed.status || "(none)"}${parsed.description ? `: ${parsed.description}` : ""}`),
              { httpStatus: ans.httpStatus, code: "device-rejected" },
            ),
            retry: false,
          };
        }
        return { value: parsed.output, httpStatus: ans.httpStatus, output: parsed.output };
      },
      this.restMs,
    );
  }

  async probe(): Promise<DeviceFacts> {
    const s = await this.withRetries<{ productType: string; versionID: string; serialNumber: string }>(
      "probe",
      this.retries.rest,
      async (ms) => {
        const ans = await this.client.getStatus(ms);
        if (ans.httpStatus !== 200) {
          const p = parseCliAnswer(ans.text);
          return this.httpFailure("probe", ans, p.ok ? p.description : undefined);
        }
        const st = parseStatusAnswer(ans.text);
        if (!st.ok) {
          const why = st.field ? `${st.code} (${st.field})` : st.code;
          return { httpStatus: 200, error: new DeviceProtocolError(`${this.label}: probe: unreadable /api/v1/status: ${why}`, { httpStatus: 200, code: "device-bad-answer" }), retry: true };
        }
        return { value: st, httpStatus: 200, output: `${st.productType} ${st.versionID} ${st.serialNumber}` };
      },
      this.restMs,
    );
    const warnings: string[] = [];
    const isMsbr = /MSBR/i.test(s.productType);
    if (this.type === "msbr" && !isMsbr) warnings.push(`configured as msbr but the device reports "${s.productType}"`);
    if (this.type === "gwsbc" && isMsbr) warnings.push(`configured as gwsbc but the device reports "${s.productType}"`);
    return { vendor: "AudioCodes", model: s.productType, version: s.versionID, serial: s.serialNumber, warnings };
  }

  /** The CLI lines for a start (exported shape via `startScript` for tests and dry runs). */
  startScript(interfaces: readonly string[]): string[] {
    // A trailing `show` confirms in the same call; polling only follows when it says "not active".
    return audioCodesStartLines(this.type, interfaces);
  }

  stopScript(): string[] {
    return audioCodesStopLines(this.type);
  }

  /** Polls `show` (bounded, with backoff) until the wanted state; the original could loop forever here. */
  private async confirm(name: string, want: "active" | "inactive", firstOutput: string): Promise<void> {
    let verdict = parseShowOutput(firstOutput);
    let output = firstOutput;
    for (let n = 1; verdict !== want && n <= this.retries.confirm; n++) {
      await sleep(this.backoff(n));
      output = await this.runScript(name, [`${PREFIX[this.type]} show`]);
      verdict = parseShowOutput(output);
    }
    if (verdict !== want) {
      const saw = verdict === undefined ? "no show verdict" : `still ${verdict === "active" ? "active" : "not active"}`;
      throw new DeviceProtocolError(`${this.label}: ${name}: capture ${saw} after ${this.retries.confirm} checks: ${this.client.scrub(output.trim().split("\n").slice(-2).join(" | "))}`, {
        code: "capture-not-confirmed",
      });
    }
  }

  async startCapture(spec: CaptureSpec): Promise<CaptureHandle> {
    // The debug capture has interfaces and nothing else: a filter, snaplen or limit is refused here.
    const check = compileFor(this.type, spec, { device: this.address });
    if (!check.ok) throw new ConfigError(check.message);
    if (check.target !== this.type) throw new Error("unreachable: compiled for another target");
    const { interfaces, start } = check.audiocodes;
    const startedAt = new Date().toISOString();
    const output = await this.runScript("start-capture", start);
    await this.confirm("confirm-start", "active", output);
    return { device: this.address, type: this.type, interfaces, startedAt };
  }

  async stopCapture(handle: CaptureHandle): Promise<RemoteFile> {
    if (handle.device !== this.address) throw new ConfigError(`${this.label}: stopCapture got a handle of ${handle.device}`);
    const output = await this.runScript("stop-capture", this.stopScript());
    const stopped = new Date();
    await this.confirm("confirm-stop", "inactive", output);
    return { device: this.address, path: AUDIOCODES_CAPTURE_FILE, protocol: "sftp", stoppedAt: stopped.toISOString(), fileName: cpeCaptureFileName(this.address, stopped) };
  }

  async fetchCapture(remote: RemoteFile, localDir: string, opts: { fileName?: string } = {}): Promise<LocalFile> {
    const fileName = opts.fileName ?? remote.fileName;
    if (fileName !== path.basename(fileName) || fileName === "." || fileName === "..") throw new ConfigError(`${this.label}: bad local file name ${JSON.stringify(fileName)}`);
    const final = path.join(localDir, fileName);
    const part = `${final}.part`;
    try {
      await fsp.mkdir(localDir, { recursive: true });
      await this.withRetries<{ bytes: number; remoteSize: number }>(
        "fetch-capture",
        this.retries.sftp,
        async (ms) => {
          await fsp.rm(part, { force: true });
          const r = await this.client.download(remote.path, part, ms);
          if (r.bytes !== r.remoteSize) {
            return {
              error: new DeviceProtocolError(`${this.label}: fetch-capture: got ${r.bytes} of ${r.remoteSize} bytes of ${remote.path}`, { code: "capture-size-mismatch" }),
              retry: true,
            };
          }
          const head = Buffer.alloc(4);
          const fh = await fsp.open(part, "r");
          try {
            await fh.read(head, 0, 4, 0);
          } finally {
            await fh.close();
          }
          if (!hasCaptureMagic(head)) {
            return {
              error: new DeviceProtocolError(`${this.label}: fetch-capture: ${remote.path} is not a pcap/pcapng file (starts with ${head.toString("hex")})`, { code: "capture-bad-magic" }),
              retry: true,
            };
          }
          return { value: r, output: `${remote.path}: ${r.bytes} bytes` };
        },
        this.sftpMs,
      );
      const sha256 = await hashFile(part);
      // link() fails with EEXIST instead of replacing: an existing capture is never overwritten.
      try {
        await fsp.link(part, final);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new CapsyncError("file-exists", `${this.label}: ${final} already exists; not overwritten`, { cause: err });
        throw err;
      }
      const bytes = (await fsp.stat(final)).size;
      return { path: final, fileName, bytes, sha256 };
    } catch (err) {
      throw this.wrap("fetch-capture", err);
    } finally {
      await fsp.rm(part, { force: true }).catch(() => {});
    }
  }

  async cleanup(): Promise<void> {
    // Deliberately no stop here: an interrupted run is resumed from its journal and must find
    // the device still capturing.
    await this.client.close();
  }
}

function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(file)
      .on("data", (c) => h.update(c))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")));
  });
}
