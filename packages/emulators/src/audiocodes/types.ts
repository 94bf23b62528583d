// The AudioCodes emulator's public shapes: device types, capture modes, fault injection, the state a
// test reads back, and the device handle startAudioCodesDevice returns.
import type { RequestFault } from "../faults.js";
import type { TlsMaterial } from "../tls.js";

export type AudioCodesType = "msbr" | "gwsbc";

/** Remote path of the capture file, as the device serves it over SFTP. */
export const DEBUG_CAPTURE_REMOTE_PATH = "/debug-capture/debug-capture-data.pcap";

export type AudioCodesCapture =
  | {
      kind: "synthetic";
      /** Default 100. */
      packetsPerSecond?: number;
      /** Far end of the synthetic flow (default 192.0.2.1). */
      peer?: string;
      /** Capture buffer size of the device: packets beyond it are dropped (default 16 MiB). */
      maxBytes?: number;
      payloadBytes?: number;
    }
  | {
      kind: "tcpdump";
      iface: string;
      /** Run as `ip netns exec <netns> tcpdump …` (demo lab). */
      netns?: string;
      /** Optional BPF filter (default: everything on the interface, like the device's physical capture). */
      filter?: string;
      tcpdumpPath?: string;
      /** How long to wait for tcpdump's "listening on" (default 5000 ms). */
      startTimeoutMs?: number;
    };

export type RestFaultKind = "timeout" | "busy" | "server-error" | "forbidden" | "unavailable" | "bad-json";
/** `kind` timeout: never answers; busy 409; server-error 500; forbidden 403; unavailable 503; bad-json: 200 with a cut body. */
export interface RestFault extends RequestFault<RestFaultKind, "status" | "cli"> {
  /** Overrides the device's description text. */
  description?: string;
}
export type SftpFaultKind = "refuse" | "missing-file" | "truncate" | "bad-magic";
export interface SftpFault {
  /** refuse: TCP reset before the SSH handshake; missing-file: NO_SUCH_FILE; truncate: reads stop at half
   *  the size stat reports; bad-magic: the first 4 bytes read are "XXXX". */
  kind: SftpFaultKind;
  /** Only the next `times` connections (refuse) or opens (the others); default: until cleared. */
  times?: number;
}
export interface AudioCodesFaults {
  rest?: RestFault | undefined;
  sftp?: SftpFault | undefined;
  /** After each start/stop, the next `showLag` `show` commands still report the previous state. */
  showLag?: number | undefined;
}

export const DESCRIPTIONS = {
  auth: "Authentication failed: wrong user name or password",
  busy: "Device is busy: another CLI script is being executed",
  "server-error": "Internal error while executing the CLI script",
  forbidden: "Access denied: the user has no privilege for this action",
  unavailable: "Service temporarily unavailable",
  notFound: "Resource not found",
  noInterface: "No interface selected for debug capture",
} as const;

export interface AudioCodesDeviceOptions {
  type: AudioCodesType;
  /** Loopback address to listen on (default 127.0.0.1); also the "device" address in synthetic packets. */
  address?: string;
  username: string;
  password: string;
  /** 0 (default): any free port. */
  restPort?: number;
  sshPort?: number;
  /** Delay before every REST answer. */
  latencyMs?: number;
  faults?: AudioCodesFaults;
  /** Default: synthetic, 100 packets/s. */
  capture?: AudioCodesCapture;
  productType?: string;
  versionID?: string;
  serialNumber?: string;
  /** CLI prompt name used in outputs (default "MSBR" / "SBC"). */
  hostname?: string;
  /** Directory served over SFTP (default: a fresh temp directory, removed on close). */
  dataDir?: string;
  /** Own TLS certificate instead of the shared one (costs a TLS context per device). */
  tls?: TlsMaterial;
}

export interface CliScriptRecord {
  fileName: string | undefined;
  lines: string[];
  httpStatus: number;
}

export interface AudioCodesDeviceState {
  capturing: boolean;
  interfaces: string[];
  startedAt?: string;
  stoppedAt?: string;
  /** Number of captures started since the device came up. */
  captures: number;
  /** Synthetic packets written to the current/last capture. */
  packets: number;
  /** REST requests received (all paths, all answers). */
  requests: number;
  /** Last 100 CLI scripts received, oldest first. */
  scripts: CliScriptRecord[];
  /** SFTP connections refused by fault injection. */
  sftpRefusals: number;
}

export interface AudioCodesDevice {
  readonly type: AudioCodesType;
  readonly address: string;
  readonly restPort: number;
  readonly sshPort: number;
  readonly username: string;
  /** e.g. https://127.0.0.2:40123 */
  readonly baseUrl: string;
  /** Local path of the file served as DEBUG_CAPTURE_REMOTE_PATH. */
  readonly capturePath: string;
  /** The shared certificate (or `tls.cert`), usable as a client's CA. */
  readonly certificate: string;
  state(): AudioCodesDeviceState;
  /** Merge faults in; a key set to undefined clears that fault. */
  setFault(faults: AudioCodesFaults): void;
  clearFaults(): void;
  /** The current capture file exactly as SFTP serves it (synthetic packets brought up to date), or undefined. */
  capturedFile(): Promise<Buffer | undefined>;
  /** Stops any capture (tcpdump included), closes both servers and drops connections. Safe twice. */
  close(): Promise<void>;
}
