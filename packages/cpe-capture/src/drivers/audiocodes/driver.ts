// AudioCodes MSBR and Mediant GW/SBC capture driver: debug capture started/stopped through the
// incremental CLI script REST call, confirmed with `show`, file fetched over SFTP (DESIGN.md "Vendor facts").
// Not handled: capture filters/direction/snaplen (the debug capture has none); SNMP or any other device
// configuration (the original created an SNMPv3 user with a fixed password — deliberately dropped).
import { ConfigError, DeviceAuthError, DeviceProtocolError } from "@capsync/protocol";
import { compileWith } from "../../spec/compile.js";
import { cpeCaptureFileName, type CaptureDriver, type CaptureSpec, type CaptureHandle, type DeviceFacts, type DriverCapabilities, type DriverOptions, type LocalFile, type RemoteFile } from "../driver.js";
import { fetchVerified, localCapturePath } from "../common/capture-file.js";
import { normaliseTls, type RestAnswer } from "../common/http.js";
import { jsonStrings } from "../common/json.js";
import { DriverCalls, RETRYABLE_HTTP, sleep, type Failure } from "../common/retry.js";
import { audioCodesCapabilities, audioCodesCompiler, audioCodesStartLines, audioCodesStopLines, type AudioCodesType } from "./capture.js";
import { AudioCodesClient } from "./client.js";
import { AUDIOCODES_CAPTURE_PREFIX } from "./interfaces.js";

const AUDIOCODES_CAPTURE_FILE = "/debug-capture/debug-capture-data.pcap";

// ---------------------------------------------------------------------------------------------
// Wire parsing: REST bodies are device input and never make us throw.

export type CliAnswer =
  | { ok: true; status: string; output: string; description: string | undefined }
  | { ok: false; code: "not-json" | "not-object" | "bad-field"; field?: string };

/** `{"status":"success","output":"…"}`, on errors with `description`. */
export function parseCliAnswer(text: string): CliAnswer {
  const r = jsonStrings(text, ["status", "output", "description"], false);
  if (!r.ok) return r;
  return { ok: true, status: r.value.status ?? "", output: r.value.output ?? "", description: r.value.description };
}

export type StatusAnswer =
  | { ok: true; productType: string; versionID: string; serialNumber: string }
  | { ok: false; code: "not-json" | "not-object" | "bad-field"; field?: string };

/** `GET /api/v1/status`: productType, versionID, serialNumber are required strings. */
export function parseStatusAnswer(text: string): StatusAnswer {
  const r = jsonStrings(text, ["productType", "versionID", "serialNumber"], true);
  if (!r.ok) return r;
  const { productType, versionID, serialNumber } = r.value as Record<"productType" | "versionID" | "serialNumber", string>;
  return { ok: true, productType, versionID, serialNumber };
}

/** The last `show` verdict in a CLI output: "Debug capture physical is active" / "... is not active". */
export function parseShowOutput(output: string): "active" | "inactive" | undefined {
  const all = [...output.matchAll(/physical is (not )?active\b/gi)];
  const last = all[all.length - 1];
  if (!last) return undefined;
  return last[1] ? "inactive" : "active";
}

export { hasCaptureMagic } from "../common/capture-file.js";

// ---------------------------------------------------------------------------------------------

export class AudioCodesDriver implements CaptureDriver {
  readonly type: AudioCodesType;
  readonly address: string;
  readonly capabilities: DriverCapabilities;
  private readonly client: AudioCodesClient;
  private readonly calls: DriverCalls;
  private readonly label: string;

  constructor(opts: DriverOptions) {
    if (opts.type !== "msbr" && opts.type !== "gwsbc") throw new ConfigError(`AudioCodes driver: unsupported device type ${JSON.stringify(opts.type)}`);
    this.type = opts.type;
    this.address = opts.address;
    this.label = `${opts.type} ${opts.address}`;
    this.capabilities = audioCodesCapabilities(this.type);
    this.client = new AudioCodesClient({
      address: opts.address,
      restPort: opts.restPort ?? 443,
      sshPort: opts.sshPort ?? 22,
      username: opts.username,
      password: opts.password,
      tls: normaliseTls(opts.tls),
      sshHostKeySha256: opts.sshHostKeySha256,
    });
    this.calls = new DriverCalls(opts, this.label, (text) => this.client.scrub(text));
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
    return this.calls.run<string>(
      name,
      this.calls.retries.rest,
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
      this.calls.restMs,
      lines.join("\n"),
    );
  }

  async probe(): Promise<DeviceFacts> {
    const s = await this.calls.run<{ productType: string; versionID: string; serialNumber: string }>(
      "probe",
      this.calls.retries.rest,
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
      this.calls.restMs,
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
    for (let n = 1; verdict !== want && n <= this.calls.retries.confirm; n++) {
      await sleep(this.calls.backoff(n));
      output = await this.runScript(name, [`${AUDIOCODES_CAPTURE_PREFIX[this.type]} show`]);
      verdict = parseShowOutput(output);
    }
    if (verdict !== want) {
      const saw = verdict === undefined ? "no show verdict" : `still ${verdict === "active" ? "active" : "not active"}`;
      throw new DeviceProtocolError(`${this.label}: ${name}: capture ${saw} after ${this.calls.retries.confirm} checks: ${this.client.scrub(output.trim().split("\n").slice(-2).join(" | "))}`, {
        code: "capture-not-confirmed",
      });
    }
  }

  async startCapture(spec: CaptureSpec): Promise<CaptureHandle> {
    // The debug capture has interfaces and nothing else: a filter, snaplen or limit is refused here.
    const check = compileWith(this.type, audioCodesCompiler(this.type), spec, { device: this.address });
    if (!check.ok) throw new ConfigError(check.message);
    const { interfaces, start } = check.plan;
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
    return fetchVerified({
      label: this.label,
      calls: this.calls,
      retries: this.calls.retries.sftp,
      attemptMs: this.calls.sftpMs,
      remotePath: remote.path,
      final: localCapturePath(this.label, localDir, opts.fileName ?? remote.fileName),
      download: (part, ms) => this.client.download(remote.path, part, ms),
      describe: (r) => `${remote.path}: ${r.bytes} bytes`,
    });
  }

  async cleanup(): Promise<void> {
    // Deliberately no stop here: an interrupted run is resumed from its journal and must find
    // the device still capturing.
    await this.client.close();
  }
}
