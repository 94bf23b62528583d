// What the driver contract suite (../drivers.test.ts) needs from a vendor: one DriverHarness per
// way of driving a device type, each starting that vendor's emulator and faulting it on request.
import type { CaptureSpec, DeviceFacts, DriverOptions } from "../../../packages/cpe-capture/src/drivers/driver.js";
import type { DeviceType } from "../../../packages/cpe-capture/src/drivers/index.js";

export const USER = "Admin";
export const PASS = "C0ntract-S3cret!";

/** What the suite may ask an emulator to do wrong. `on` narrows a REST fault to one kind of call. */
export type ContractFault =
  | { kind: "busy" | "server-error" | "timeout"; on: "probe" | "capture" | "any"; times?: number }
  | { kind: "file-refused"; times?: number };

export interface EmulatedTarget {
  readonly address: string;
  readonly restPort: number;
  readonly sshPort: number;
  /** PEM the emulator's TLS certificate chains to. */
  readonly certificate: string;
  /** Asks the emulator directly, not through the driver. */
  show(): Promise<"active" | "inactive">;
  /** Every command the driver sent, in order. */
  commands(): string[];
  /** The capture file exactly as the device serves it. */
  servedFile(): Promise<Buffer | undefined>;
  inject(f: ContractFault): void;
  /** Switches the device's HTTP API off (harnesses with `fallback` only). */
  apiOff?(): void;
  fileRefusals(): number;
  close(): Promise<void>;
}

export interface DriverHarness {
  /** Suite title, e.g. "msbr" or "iosxe (ssh-cli)". */
  name: string;
  type: DeviceType;
  /** Driver options particular to this harness, e.g. a vendor's transport. */
  options?: Partial<DriverOptions>;
  /** How the driver controls the device: HTTP cases (409, 500, TLS) only apply to "http". */
  control: "http" | "ssh";
  /** Task names a start and a stop record, in order, when nothing goes wrong. */
  tasks: { start: string[]; stop: string[] };
  spec: CaptureSpec;
  facts: Omit<DeviceFacts, "warnings">;
  /** Texts the device puts in its error answers; the driver's errors must carry them. */
  descriptions: { auth: string; busy: string; serverError: string };
  /** false: the type takes no capture (capabilities.capture false); the capture cases do not run. Default true. */
  captures?: boolean;
  /** The driver falls back to SSH when the HTTP API is off: the suite checks the probe still works. */
  fallback?: "ssh";
  /** Every command a driver may send this device type (no SNMP users, no config changes). */
  allowedCommand: RegExp;
  startTarget(): Promise<EmulatedTarget>;
}
