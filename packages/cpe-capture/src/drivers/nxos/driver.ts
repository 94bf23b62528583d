// The NX-OS device type's capture driver: NX-OS switches are trace hops in capsync (./hop-client.ts);
// they take no capture yet. The driver probes (`show version` over NX-API, SSH as fallback) so a
// config's credentials and reachability can still be checked, and refuses every capture call with a
// ConfigError before sending anything.
import { ConfigError, DeviceProtocolError } from "@capsync/protocol";
import type { CaptureDriver, CaptureHandle, DeviceFacts, DriverCapabilities, DriverOptions, LocalFile, RemoteFile } from "../driver.js";
import { DriverCalls } from "../common/retry.js";
import type { SpecCompiler } from "../../spec/compile.js";
import { INTERFACE_NAME, type InterfaceRules } from "../vendor.js";
import { parseShowVersion, type NxosVersion } from "./parse/system.js";
import { nxosSession, type NxosSession, type NxosVia } from "./session.js";

export const NXOS_CAPTURE_REFUSAL = "nxos devices are trace hops; they cannot capture in capsync yet";

export const NXOS_CAPABILITIES: DriverCapabilities = {
  vendor: "cisco",
  interfaces: null,
  defaultInterfaces: [],
  multipleInterfaces: false,
  filter: false,
  direction: false,
  snaplen: false,
  transfer: "http",
  capture: false,
};

export const NXOS_INTERFACE_RULES = {
  kind: "names",
  pattern: INTERFACE_NAME,
  example: "Ethernet1/1",
  expected: "an NX-OS interface name like Ethernet1/1",
} as const satisfies InterfaceRules;

/** Compiles nothing: a spec for an NX-OS switch is always refused, naming the device. */
export const nxosCompiler: SpecCompiler<"nxos", never> = {
  key: "nxos",
  compile: (_spec, label) => ({ ok: false, field: "type", message: `${label}: ${NXOS_CAPTURE_REFUSAL}` }),
};

export class NxosDriver implements CaptureDriver {
  readonly type = "nxos" as const;
  readonly address: string;
  readonly capabilities = NXOS_CAPABILITIES;
  private readonly session: NxosSession;
  private readonly calls: DriverCalls;
  private readonly label: string;

  constructor(opts: DriverOptions) {
    if (opts.type !== "nxos") throw new ConfigError(`NX-OS driver: unsupported device type ${JSON.stringify(opts.type)}`);
    this.address = opts.address;
    this.label = `nxos ${opts.address}`;
    this.session = nxosSession(opts);
    this.calls = new DriverCalls(opts, this.label, (t) => this.session.scrub(t));
  }

  /** How the last answer came (NX-API, or SSH after NX-API was found off). */
  get via(): NxosVia | undefined {
    return this.session.via;
  }

  async probe(): Promise<DeviceFacts> {
    const v = await this.calls.run<NxosVersion>(
      "probe",
      this.calls.retries.rest,
      async (ms) => {
        const r = await this.session.run(["show version"], ms);
        if (!("value" in r)) return r;
        const p = parseShowVersion(r.value[0] ?? "");
        if (!p.ok) return { httpStatus: r.httpStatus, output: r.output, error: new DeviceProtocolError(`${this.label}: 'show version': ${p.message}`, { code: "device-bad-answer" }), retry: true };
        return { ...r, value: p.value, output: `${r.output}: ${p.value.hostname ?? "?"} ${p.value.model} ${p.value.version} ${p.value.serial}` };
      },
      this.calls.restMs,
      "show version",
    );
    return { vendor: "Cisco", model: v.model, version: v.version, serial: v.serial, warnings: [] };
  }

  private refuse(): never {
    throw new ConfigError(`${this.label}: ${NXOS_CAPTURE_REFUSAL}; trace through it with cpe-capture trace`);
  }

  async startCapture(): Promise<CaptureHandle> {
    this.refuse();
  }

  async stopCapture(): Promise<RemoteFile> {
    this.refuse();
  }

  async fetchCapture(): Promise<LocalFile> {
    this.refuse();
  }

  async cleanup(): Promise<void> {
    await this.session.close();
  }
}
