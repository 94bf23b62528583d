// The one contract every vendor driver implements (NAPALM-style: small, shapes shown by example).
// Drivers get a typed capture spec and plain options; they never see prompts, config files or the UI.
import { addressToken, captureTimestamp, filenameProblem } from "@capsync/protocol";
import type { CaptureSpec } from "../spec/model.js";

export type { CaptureSpec } from "../spec/model.js";

export interface DriverCapabilities {
  /** The vendor module's name, its folder under drivers/. */
  readonly vendor: string;
  /** Interface names the device accepts, or null when names are free-form (checked by the device). */
  readonly interfaces: readonly string[] | null;
  /** Used when the spec names none; empty: the spec must name at least one. */
  readonly defaultInterfaces: readonly string[];
  /** Several interfaces in one capture. */
  readonly multipleInterfaces: boolean;
  /** Spec features this driver can compile beyond interfaces (a debug capture of whole interfaces has none). */
  readonly filter: boolean;
  readonly direction: boolean;
  readonly snaplen: boolean;
  /** How fetchCapture gets the file. */
  readonly transfer: "sftp" | "scp" | "http";
  /** false: the type takes no capture (a trace hop only); config refuses it in a run's devices. Absent: true. */
  readonly capture?: boolean;
}

/** @example { vendor: "Example Networks", model: "EX-500L", version: "7.24.356", serial: "EXA7F000015", warnings: [] } */
export interface DeviceFacts {
  vendor: string;
  model: string;
  version: string;
  serial: string;
  /** Oddities worth a line in the log, e.g. a product type that does not match the configured type. */
  warnings: string[];
}

/** Plain JSON, so a journal can keep it and a resumed run can stop the capture.
 *  @example { device: "192.0.2.10", type: "<a registered type>", interfaces: ["eth-wan"], startedAt: "2026-11-23T18:55:00.123Z" } */
export interface CaptureHandle {
  device: string;
  /** A registered device type (drivers/index.ts DEVICE_TYPES). */
  type: string;
  interfaces: string[];
  startedAt: string;
}

/** @example { device: "192.0.2.10", path: "/debug-capture/debug-capture-data.pcap", protocol: "sftp",
 *            stoppedAt: "2026-11-23T19:55:00.456Z", fileName: "CPE_device_192.0.2.10_2026-11-23T19.55.00.456000.pcap" } */
export interface RemoteFile {
  device: string;
  path: string;
  protocol: "sftp" | "scp" | "http";
  stoppedAt: string;
  /** The original's local name, derived from the stop time; the orchestrator sends it to the agents. */
  fileName: string;
}

/** @example { path: "/runs/r1/CPE_device_192.0.2.10_….pcap", fileName: "CPE_device_…", bytes: 48213, sha256: "9f86d0…" } */
export interface LocalFile {
  path: string;
  fileName: string;
  bytes: number;
  sha256: string;
}

/** One REST/SFTP call as the manifest records it (the original's devices_info tasks). Never holds secrets. */
export interface DriverTask {
  /** @example "start-capture" */
  name: string;
  /** ISO 8601, when the call started. */
  timestamp: string;
  status: "ok" | "failed";
  attempt: number;
  durationMs: number;
  httpStatus?: number;
  /** The device's output or description, or the error message (redacted, at most 4000 characters). */
  output?: string;
  /** What the call sent when that is text worth reading in the log: the CLI script, the RPC (redacted). */
  request?: string;
  /** Stable CapsyncError code when failed. */
  code?: string;
}
export type TaskListener = (task: DriverTask) => void;

export type DriverTls = "verify" | "insecure" | { ca: string } | { mode: "verify" } | { mode: "insecure" } | { mode: "ca"; ca: string };

export interface DriverTimeouts {
  /** Per REST attempt (default 10 s). */
  restMs?: number;
  /** SFTP connect/handshake, and longest pause without transfer progress (default 60 s). */
  sftpMs?: number;
  /** Upper bound of one device call (a script, a show poll, a download) including its retries and backoff (default: none). */
  operationMs?: number;
}

export interface DriverRetries {
  /** REST retries after the first attempt, for transport errors, 409, 5xx, unreadable answers (default 3). */
  rest?: number;
  /** SFTP download retries after the first attempt (default 3). */
  sftp?: number;
  /** `show` polls after start/stop before giving up on confirmation (default 5). */
  confirm?: number;
  /** First backoff delay, doubled each retry (default 500 ms), capped at maxBackoffMs (default 5 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
}

export interface DriverOptions {
  address: string;
  /** A registered device type (drivers/index.ts DEVICE_TYPES). */
  type: string;
  username: string;
  password: string;
  /** Default 443. */
  restPort?: number;
  /** Default 22. */
  sshPort?: number;
  /** Default "verify". `ca` is PEM text or a file path. */
  tls?: DriverTls;
  timeouts?: DriverTimeouts;
  /** A number sets rest and sftp retries alike (the config's `retries`). */
  retries?: number | DriverRetries;
  /** Optional pin of the device's SSH host key, OpenSSH style "SHA256:base64…"; default: any key. */
  sshHostKeySha256?: string;
  onTask?: TaskListener;
  /**
   * The vendor-only keys of the device's config (its vendor module's `configKeys`), passed as the
   * config spells them; the vendor's driver types and reads its own.
   */
  readonly [vendorKey: string]: unknown;
}

export interface CaptureDriver {
  readonly type: string;
  readonly address: string;
  readonly capabilities: DriverCapabilities;
  /** Reachability, credentials, model/version/serial. */
  probe(): Promise<DeviceFacts>;
  /** Rejects a spec the device cannot express (ConfigError) before sending anything. Confirmed running on return. */
  startCapture(spec: CaptureSpec): Promise<CaptureHandle>;
  /** Confirmed stopped on return. */
  stopCapture(handle: CaptureHandle): Promise<RemoteFile>;
  /** Downloads into `localDir` as `remote.fileName` (or `opts.fileName`), verified; never overwrites. */
  fetchCapture(remote: RemoteFile, localDir: string, opts?: { fileName?: string }): Promise<LocalFile>;
  /** Releases connections. Leaves a running capture running (a resumed run may still stop it). Safe twice. */
  cleanup(): Promise<void>;
}

export type DriverFactory = (opts: DriverOptions) => CaptureDriver;

/** `CPE_device_<ip>_<YYYY-mm-ddTHH.MM.SS.ffffff>.pcap`, the original's name (IPv6 colons become '-'). */
export function cpeCaptureFileName(address: string, when: Date = new Date()): string {
  const name = `CPE_device_${addressToken(address)}_${captureTimestamp(when)}.pcap`;
  const problem = filenameProblem(name);
  if (problem) throw new TypeError(`capture file name for ${JSON.stringify(address)} ${problem}`);
  return name;
}
