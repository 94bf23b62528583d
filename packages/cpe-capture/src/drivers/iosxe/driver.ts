// Cisco IOS-XE capture driver: Embedded Packet Capture driven over RESTCONF (Cisco-IOS-XE-rpc
// monitor/no/delete, IOS-XE 17.x) or the SSH exec CLI, exported to bootflash:<name>.pcap and fetched
// by SCP or SFTP, verified, then deleted from the device together with its capture point.
// Every run uses its own capture point name (the original xepacketcap used PKT_CAP, one at a time).
// Not handled: access-list/class-map filters (config mode), control-plane captures, export to
// remote URLs, enable passwords (the user needs privilege 15).
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { CapsyncError, ConfigError, DeviceAuthError, DeviceProtocolError } from "@capsync/protocol";
import { cpeCaptureFileName, type CaptureDriver, type CaptureHandle, type CaptureSpec, type DeviceFacts, type DriverCapabilities, type DriverOptions, type LocalFile, type RemoteFile } from "../driver.js";
import { fetchVerified, localCapturePath } from "../common/capture-file.js";
import { normaliseTls, type RestAnswer } from "../common/http.js";
import { DriverCalls, RETRYABLE_HTTP, type Attempt, type Failure } from "../common/retry.js";
import type { VendorConfigKey } from "../vendor.js";
import { compileWith } from "../../spec/compile.js";
import { EPC_NAME, IOSXE_CAPABILITIES, epcCommands, epcCompiler, epcDefineInputs, epcExportPath, epcRpcInputs, type EpcPlan } from "./epc.js";
import {
  NATIVE_FACTS_PATH,
  RestconfClient,
  describeRestconfErrors,
  parseNativeFacts,
  parseRestconfErrors,
  parseRpcOutput,
  parseVrfForwarding,
  vrfForwardingPath,
} from "./restconf.js";
import { IosXeSsh, cliErrors, type CliExchange } from "./ssh-cli.js";

/** The device keys only IOS-XE takes: how commands reach the device, how the exported capture leaves bootflash:. */
export const IOSXE_CONFIG_KEYS = {
  /** "ssh-cli" for devices without RESTCONF. */
  transport: { values: ["restconf", "ssh-cli"], default: "restconf", refusal: "has one transport" },
  /** "sftp" where the device has it enabled. */
  fileTransfer: { values: ["scp", "sftp"], default: "scp", refusal: "has one transport" },
  /** "circular" keeps the newest packets when the EPC buffer is full (xepacketcap's `buffer circular`). */
  epcBuffer: { values: ["linear", "circular"], default: "linear", refusal: "has no EPC buffer" },
} as const satisfies Record<string, VendorConfigKey>;

export type IosXeTransport = (typeof IOSXE_CONFIG_KEYS.transport.values)[number];
export type IosXeFileTransfer = (typeof IOSXE_CONFIG_KEYS.fileTransfer.values)[number];

export interface IosXeDriverOptions extends DriverOptions {
  transport?: IosXeTransport;
  fileTransfer?: IosXeFileTransfer;
  epcBuffer?: (typeof IOSXE_CONFIG_KEYS.epcBuffer.values)[number];
}

/** The journal keeps the capture point name, so a resumed run stops the right capture. */
export interface IosXeHandle extends CaptureHandle {
  /** @example "CSKX3P9A1F2" */
  capture: string;
  transport: IosXeTransport;
}

/** A fresh capture point name: "CS", 5 characters of time, 4 hex digits of a per-process sequence. */
// A random start, then a counter: names made in the same millisecond by one process never
// collide (random 16 bits alone do, birthday-style, within a few hundred names).
let nameSeq = randomBytes(2).readUInt16BE(0);
export function newCaptureName(now = Date.now()): string {
  nameSeq = (nameSeq + 1) & 0xffff;
  return `CS${now.toString(36).slice(-5)}${nameSeq.toString(16).padStart(4, "0")}`.toUpperCase();
}

// ---------------------------------------------------------------------------------------------
// Reading EPC answers: the RPC `result` and the CLI output are the same text.

export type EpcStep = "define" | "start" | "stop" | "export" | "remove" | "delete";

/**
 * Whether an EPC command did what was asked. IOS marks errors with a leading "%"; repeating a
 * start on an active point, a stop on a stopped one, removing what is gone or deleting a missing
 * file are the wanted state already, not failures.
 * @example epcVerdict("start", "Started capture point : CS1\n") → { ok: true }
 */
export function epcVerdict(step: EpcStep, text: string): { ok: true } | { ok: false; reason: string } {
  const errors = cliErrors(text);
  const benign = {
    define: null,
    start: /already active/i,
    stop: /not active/i,
    export: null,
    remove: /does not exist/i,
    delete: /no such file/i,
  }[step];
  const real = errors.filter((e) => !(benign && benign.test(e)));
  if (real.length > 0) return { ok: false, reason: real.join(" | ") };
  if (step === "export" && /\bfail(ed|ure)?\b/i.test(text)) return { ok: false, reason: text.trim().split("\n").pop() ?? "export failed" };
  return { ok: true };
}

/** `show monitor capture <name>` → "active" | "inactive" | undefined (no status line). */
export function parseShowMonitorCapture(text: string): "active" | "inactive" | undefined {
  const m = /Status\s*:\s*(Active|Inactive)/i.exec(text);
  return m ? (m[1]!.toLowerCase() as "active" | "inactive") : undefined;
}

/**
 * `show version`: "Cisco IOS XE Software, Version 17.09.04a", "cisco C8000V (VXE) processor …",
 * "Processor board ID 9ABC…", "<hostname> uptime is …".
 */
export function parseShowVersion(text: string): { ok: true; version: string; model: string; serial: string; hostname: string | undefined } | { ok: false; field: string } {
  const version = /Cisco IOS XE Software, Version (\S+)/.exec(text)?.[1] ?? /Cisco IOS Software.*Version ([^\s,]+)/.exec(text)?.[1];
  if (!version) return { ok: false, field: "version" };
  const model = /^cisco (\S+) .*processor/im.exec(text)?.[1];
  if (!model) return { ok: false, field: "model" };
  const serial = /Processor board ID (\S+)/.exec(text)?.[1] ?? "";
  const hostname = /^(\S+) uptime is/m.exec(text)?.[1];
  return { ok: true, version, model, serial, hostname };
}

// ---------------------------------------------------------------------------------------------

export class IosXeDriver implements CaptureDriver {
  readonly type = "iosxe" as const;
  readonly address: string;
  readonly capabilities: DriverCapabilities;
  readonly transport: IosXeTransport;
  private readonly fileTransfer: IosXeFileTransfer;
  private readonly circularBuffer: boolean;
  private readonly rest: RestconfClient;
  private readonly ssh: IosXeSsh;
  private readonly calls: DriverCalls;
  private readonly label: string;

  constructor(opts: IosXeDriverOptions) {
    if (opts.type !== "iosxe") throw new ConfigError(`IOS-XE driver: unsupported device type ${JSON.stringify(opts.type)}`);
    this.address = opts.address;
    this.label = `iosxe ${opts.address}`;
    this.transport = opts.transport ?? IOSXE_CONFIG_KEYS.transport.default;
    this.fileTransfer = opts.fileTransfer ?? IOSXE_CONFIG_KEYS.fileTransfer.default;
    this.circularBuffer = (opts.epcBuffer ?? IOSXE_CONFIG_KEYS.epcBuffer.default) === "circular";
    this.capabilities = { ...IOSXE_CAPABILITIES, transfer: this.fileTransfer };
    this.rest = new RestconfClient({ address: opts.address, restPort: opts.restPort ?? 443, username: opts.username, password: opts.password, tls: normaliseTls(opts.tls) });
    this.ssh = new IosXeSsh({ address: opts.address, sshPort: opts.sshPort ?? 22, username: opts.username, password: opts.password, sshHostKeySha256: opts.sshHostKeySha256 });
    this.calls = new DriverCalls(
      opts,
      this.label,
      (text) => this.scrub(text),
      // The device answered: only a broken transfer is worth repeating (a refusal stays a refusal).
      (error) => !(error instanceof DeviceProtocolError && !["capture-size-mismatch", "capture-bad-magic", "scp", "sftp"].includes(error.code)),
    );
  }

  private scrub(text: string): string {
    return this.ssh.scrub(this.rest.scrub(text));
  }

  /** A RESTCONF answer that is not 2xx → typed error carrying the device's error-message. */
  private httpFailure(name: string, ans: RestAnswer): Failure & { httpStatus: number; output: string } {
    const s = ans.httpStatus;
    const env = parseRestconfErrors(ans.text);
    const message = env.ok ? this.scrub(env.errors[0]!.message || env.errors[0]!.tag) : undefined;
    const what = `${this.label}: ${name}: HTTP ${s}${env.ok ? ` ${this.scrub(describeRestconfErrors(env.errors))}` : ""}`;
    const out = { httpStatus: s, output: message ?? ans.text.slice(0, 500) };
    if (s === 401 || s === 403) return { ...out, error: new DeviceAuthError(what), retry: false };
    if (s === 409) return { ...out, error: new DeviceProtocolError(what, { httpStatus: s, code: "device-busy" }), retry: true };
    if (s >= 500) return { ...out, error: new DeviceProtocolError(what, { httpStatus: s, code: "device-error" }), retry: RETRYABLE_HTTP.has(s) };
    if (s >= 400) return { ...out, error: new DeviceProtocolError(what, { httpStatus: s, code: "device-rejected" }), retry: RETRYABLE_HTTP.has(s) };
    return { ...out, error: new DeviceProtocolError(what, { httpStatus: s }), retry: false };
  }

  private unreadable(name: string, httpStatus: number, why: string): Failure & { httpStatus: number } {
    return { httpStatus, error: new DeviceProtocolError(`${this.label}: ${name}: unreadable answer: ${why}`, { httpStatus, code: "device-bad-answer" }), retry: true };
  }

  /** One RPC; `check` turns its result text into a value or a failure. */
  private rpcStep<T>(name: string, call: { rpc: string; input: unknown }, check: (result: string) => { value: T } | { reason: string }): Promise<T> {
    return this.calls.run<T>(
      name,
      this.calls.retries.rest,
      async (ms) => {
        const ans = await this.rest.rpc(call.rpc, call.input, ms);
        if (ans.httpStatus < 200 || ans.httpStatus >= 300) return this.httpFailure(name, ans);
        const out = parseRpcOutput(ans.text);
        if (!out.ok) return this.unreadable(name, ans.httpStatus, out.field ? `${out.code} (${out.field})` : out.code);
        const c = check(out.result);
        if ("reason" in c) {
          return {
            httpStatus: ans.httpStatus,
            output: out.result,
            error: new DeviceProtocolError(this.scrub(`${this.label}: ${name}: ${c.reason}`), { httpStatus: ans.httpStatus, code: "device-rejected" }),
            retry: false,
          };
        }
        return { value: c.value, httpStatus: ans.httpStatus, output: out.result };
      },
      this.calls.restMs,
      `${call.rpc} ${JSON.stringify(call.input)}`,
    );
  }

  private getStep<T>(name: string, path: string, check: (ans: RestAnswer) => Attempt<T>): Promise<T> {
    return this.calls.run<T>(
      name,
      this.calls.retries.rest,
      async (ms) => {
        const ans = await this.rest.get(path, ms);
        if (ans.httpStatus < 200 || ans.httpStatus >= 300) return this.httpFailure(name, ans);
        return check(ans);
      },
      this.calls.restMs,
    );
  }

  /** One CLI session running `lines`; `check` reads the exchanges. */
  private cliStep<T>(name: string, lines: string[], check: (ex: CliExchange[]) => { value: T } | { reason: string }): Promise<T> {
    return this.calls.run<T>(
      name,
      this.calls.retries.rest,
      async (ms) => {
        const ex = await this.ssh.runCli(lines, ms);
        const output = ex.map((e) => `${e.command}\n${e.output}`).join("");
        const c = check(ex);
        if ("reason" in c) return { output, error: new DeviceProtocolError(this.scrub(`${this.label}: ${name}: ${c.reason}`), { code: "device-rejected" }), retry: false };
        return { value: c.value, output };
      },
      this.calls.restMs,
      lines.join("\n"),
    );
  }

  /** Checks each exchange with its step's verdict; the first failure names the command. */
  private static verdicts(ex: CliExchange[], steps: (EpcStep | null)[]): { reason: string } | undefined {
    for (const [i, e] of ex.entries()) {
      const step = steps[i];
      if (!step) continue;
      const v = epcVerdict(step, e.output);
      if (!v.ok) return { reason: `'${e.command}': ${v.reason}` };
    }
    return undefined;
  }

  async probe(): Promise<DeviceFacts> {
    if (this.transport === "ssh-cli") {
      type Version = Extract<ReturnType<typeof parseShowVersion>, { ok: true }>;
      const v = await this.cliStep<Version>("probe", ["show version"], (ex) => {
        const p = parseShowVersion(ex[0]?.output ?? "");
        return p.ok ? { value: p } : { reason: `unreadable 'show version' (no ${p.field})` };
      });
      return { vendor: "Cisco", model: v.model, version: v.version, serial: v.serial, warnings: [] };
    }
    const f = await this.getStep("probe", NATIVE_FACTS_PATH, (ans) => {
      const p = parseNativeFacts(ans.text);
      if (!p.ok) return this.unreadable("probe", ans.httpStatus, p.field ? `${p.code} (${p.field})` : p.code);
      return { value: p, httpStatus: ans.httpStatus, output: `${p.hostname} ${p.pid ?? "?"} ${p.version} ${p.sn ?? "?"}` };
    });
    const warnings = f.pid ? [] : ["the device reports no license UDI: model and serial unknown"];
    return { vendor: "Cisco", model: f.pid ?? "IOS-XE", version: f.version, serial: f.sn ?? "", warnings };
  }

  /** Refuses (ConfigError) a VRF the interfaces are not in: EPC has no VRF clause of its own. */
  private async checkVrf(plan: EpcPlan): Promise<void> {
    const want = plan.vrf!;
    let found: (string | undefined)[];
    if (this.transport === "ssh-cli") {
      found = await this.cliStep<(string | undefined)[]>(
        "check-vrf",
        plan.interfaces.map((i) => `show running-config interface ${i} | include vrf forwarding`),
        (ex) => {
          const bad = ex.find((e) => cliErrors(e.output).length > 0);
          if (bad) return { reason: `'${bad.command}': ${cliErrors(bad.output).join(" | ")}` };
          return { value: ex.map((e) => /vrf forwarding (\S+)/.exec(e.output)?.[1]) };
        },
      );
    } else {
      found = [];
      for (const iface of plan.interfaces) {
        const p = vrfForwardingPath(iface)!;
        found.push(
          await this.getStep<string | undefined>("check-vrf", p, (ans) => {
            const v = parseVrfForwarding(ans.text);
            if (!v.ok) return this.unreadable("check-vrf", ans.httpStatus, v.code);
            return { value: v.vrf, httpStatus: ans.httpStatus, output: `${iface}: ${v.vrf ?? "(global)"}` };
          }),
        );
      }
    }
    const wrong = plan.interfaces.map((iface, i) => [iface, found[i]] as const).filter(([, v]) => v !== want);
    if (wrong.length > 0) {
      throw new ConfigError(`${this.label}: vrf: ${wrong.map(([i, v]) => `${i} is in ${v ? `VRF ${v}` : "the global table"}`).join(", ")}, not VRF ${want}`);
    }
  }

  async startCapture(spec: CaptureSpec): Promise<IosXeHandle> {
    const compiled = compileWith("iosxe", epcCompiler, spec, { device: this.address });
    if (!compiled.ok) throw new ConfigError(compiled.message);
    const plan = this.circularBuffer ? { ...compiled.plan, bufferCircular: true } : compiled.plan;
    if (plan.vrf !== undefined) await this.checkVrf(plan);
    const name = newCaptureName();
    const cmds = epcCommands(name, plan);
    const startedAt = new Date().toISOString();
    try {
      if (this.transport === "ssh-cli") {
        await this.cliStep("start-capture", [...cmds.define, cmds.start, cmds.show], (ex) => {
          const bad = IosXeDriver.verdicts(ex, [...cmds.define.map(() => "define" as const), "start", null]);
          if (bad) return bad;
          const state = parseShowMonitorCapture(ex[ex.length - 1]!.output);
          return state === "active" ? { value: undefined } : { reason: `capture point ${name} is ${state ?? "not shown"} after start` };
        });
      } else {
        for (const input of epcDefineInputs(name, plan)) {
          await this.rpcStep("define-capture", { rpc: "monitor", input }, (r) => {
            const v = epcVerdict("define", r);
            return v.ok ? { value: undefined } : v;
          });
        }
        await this.rpcStep("start-capture", epcRpcInputs.start(name), (r) => {
          const v = epcVerdict("start", r);
          return v.ok ? { value: undefined } : v;
        });
      }
    } catch (err) {
      // The device answered but refused: take the half-defined capture point away again.
      if (err instanceof DeviceProtocolError) await this.removeCapturePoint(name).catch(() => {});
      throw err;
    }
    return { device: this.address, type: "iosxe", interfaces: plan.interfaces, startedAt, capture: name, transport: this.transport };
  }

  async stopCapture(handle: CaptureHandle): Promise<RemoteFile> {
    if (handle.device !== this.address) throw new ConfigError(`${this.label}: stopCapture got a handle of ${handle.device}`);
    const name = (handle as Partial<IosXeHandle>).capture;
    if (typeof name !== "string" || !EPC_NAME.test(name)) throw new ConfigError(`${this.label}: stopCapture needs the handle's capture point name, got ${JSON.stringify(name)}`);
    const file = epcExportPath(name);
    let stopped: Date;
    if (this.transport === "ssh-cli") {
      const c = epcCommands(name, { interfaces: [], direction: "both", match: "any", limit: {} });
      stopped = await this.cliStep("stop-capture", [c.stop, c.export, c.show], (ex) => {
        const bad = IosXeDriver.verdicts(ex, ["stop", "export", null]);
        if (bad) return bad;
        const state = parseShowMonitorCapture(ex[2]!.output);
        return state === "inactive" ? { value: new Date() } : { reason: `capture point ${name} is ${state ?? "not shown"} after stop` };
      });
    } else {
      await this.rpcStep("stop-capture", epcRpcInputs.stop(name), (r) => {
        const v = epcVerdict("stop", r);
        return v.ok ? { value: undefined } : v;
      });
      stopped = new Date();
      await this.rpcStep("export-capture", epcRpcInputs.export(name), (r) => {
        const v = epcVerdict("export", r);
        return v.ok ? { value: undefined } : v;
      });
    }
    return { device: this.address, path: file, protocol: this.fileTransfer, stoppedAt: stopped.toISOString(), fileName: cpeCaptureFileName(this.address, stopped) };
  }

  /** `no monitor capture <name>` (and nothing else): used when a start is refused half way. */
  private async removeCapturePoint(name: string): Promise<void> {
    if (this.transport === "ssh-cli") {
      await this.cliStep("remove-capture", [`no monitor capture ${name}`], (ex) => IosXeDriver.verdicts(ex, ["remove"]) ?? { value: undefined });
    } else {
      await this.rpcStep("remove-capture", epcRpcInputs.remove(name), (r) => {
        const v = epcVerdict("remove", r);
        return v.ok ? { value: undefined } : v;
      });
    }
  }

  /** After a verified download: delete the file from bootflash: and remove the capture point. */
  private async tidyDevice(remotePath: string): Promise<void> {
    const name = /^(?:bootflash|flash):\/?([A-Za-z0-9]+)\.pcap$/.exec(remotePath)?.[1];
    if (!name || !EPC_NAME.test(name)) return; // not a file this driver exported
    if (this.transport === "ssh-cli") {
      await this.cliStep("remove-capture", [`delete /force ${remotePath}`, `no monitor capture ${name}`], (ex) => IosXeDriver.verdicts(ex, ["delete", "remove"]) ?? { value: undefined });
      return;
    }
    await this.rpcStep("delete-file", epcRpcInputs.delete(remotePath), (r) => {
      const v = epcVerdict("delete", r);
      return v.ok ? { value: undefined } : v;
    });
    await this.removeCapturePoint(name);
  }

  async fetchCapture(remote: RemoteFile, localDir: string, opts: { fileName?: string } = {}): Promise<LocalFile> {
    const final = localCapturePath(this.label, localDir, opts.fileName ?? remote.fileName);
    const via = remote.protocol === "sftp" ? "sftp" : "scp";
    const local = await fetchVerified({
      label: this.label,
      calls: this.calls,
      retries: this.calls.retries.sftp,
      attemptMs: this.calls.sftpMs,
      remotePath: remote.path,
      final,
      // Checked first too: a transfer from the device's flash is not worth making for nothing.
      before: async () => {
        if (await fsp.stat(final).then(() => true, () => false)) throw new CapsyncError("file-exists", `${this.label}: ${final} already exists; not overwritten`);
      },
      download: (part, ms) => this.ssh.download(remote.path, part, via, ms),
      describe: (r) => `${remote.path}: ${r.bytes} bytes over ${via.toUpperCase()}`,
    });
    // The capture is safe locally; a failed clean-up is a failed task in the manifest, not a failed fetch.
    await this.tidyDevice(remote.path).catch(() => {});
    return local;
  }

  async cleanup(): Promise<void> {
    // Deliberately no stop here: an interrupted run is resumed from its journal and must find the
    // device still capturing.
    await Promise.all([this.rest.close(), this.ssh.close()]);
  }
}
