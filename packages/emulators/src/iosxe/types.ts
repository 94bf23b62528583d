// The IOS-XE emulator's public shapes: options, fault injection, the state a test reads back, and
// the device handle startIosXeDevice returns.
import type { RequestFault } from "../faults.js";
import type { TlsMaterial } from "../tls.js";
import type { EpcSource, IosXeTransit } from "./transit.js";

export type { IosXeTransit } from "./transit.js";

export interface IosXeInterface {
  /** Full name, e.g. "GigabitEthernet1". */
  name: string;
  vrf?: string;
  /** For `show running-config interface`, e.g. "192.0.2.1 255.255.255.0". */
  ip?: string;
}

/** timeout: never answers; busy: 409 in-use; server-error: 500 operation-failed; unavailable: 503. */
export type IosXeRestFaultKind = "timeout" | "busy" | "server-error" | "unavailable";
/** `on` probe: GET requests; rpc: POST operations. */
export type IosXeRestFault = RequestFault<IosXeRestFaultKind, "probe" | "rpc">;
/** timeout: the CLI swallows the command (no output, no prompt). `on` probe: `show version`;
 *  capture: monitor/no monitor/show monitor/delete. */
export type IosXeCliFault = RequestFault<"timeout", "probe" | "capture">;
export interface IosXeFileFault {
  /** refuse: every SSH TCP connection is reset before the handshake; truncate: half the file then EOF;
   *  bad-magic: the first 4 bytes read are "XXXX". */
  kind: "refuse" | "truncate" | "bad-magic";
  /** Next `times` connections (refuse) or file opens (the others); default until cleared. */
  times?: number;
}
export interface IosXeFaults {
  rest?: IosXeRestFault | undefined;
  cli?: IosXeCliFault | undefined;
  file?: IosXeFileFault | undefined;
}

/** Texts the device puts in its answers (the contract suite checks that drivers pass them on). */
export const IOSXE_MESSAGES = {
  auth: "Authentication failed: bad username or password",
  busy: "The datastore is locked by another RESTCONF session; try again",
  serverError: "Internal error while running the RPC",
  unavailable: "RESTCONF is starting up; service unavailable",
  notFound: "uri keypath not found",
} as const;

export interface IosXeDeviceOptions {
  /** Loopback address to listen on (default 127.0.0.1); also the device address of the synthetic flow (IPv4). */
  address?: string;
  username: string;
  password: string;
  restPort?: number;
  sshPort?: number;
  hostname?: string;
  /** Product id, as in `show version` and the license UDI (default C8000V). */
  model?: string;
  /** `show version` style, e.g. "17.09.04a" (default). */
  version?: string;
  serial?: string;
  /** Default GigabitEthernet1..3, and GigabitEthernet4 in VRF "MGMT". */
  interfaces?: IosXeInterface[];
  /** The interface the synthetic flow crosses (default: the first interface). */
  flowInterface?: string;
  /** Traffic on every interface with an IPv4 address instead of the one flow on `flowInterface`: a
   *  flow (port 5060 both ends, half UDP, half TCP) between the interface's address and the host .10
   *  of its /24 (.11 when the interface is .10), `packetsPerSecond` each. */
  trafficOnEveryInterface?: boolean;
  /** Synthetic packets per second on the flow interface (default 200). */
  packetsPerSecond?: number;
  /** Far end of the synthetic flow (default 192.0.2.1). */
  peer?: string;
  /** `restconf` configured (default true); false: every /restconf request is 404, as on a box without it. */
  restconf?: boolean;
  /** `ip scp server enable` (default true). */
  scp?: boolean;
  /** SFTP subsystem available (default true). */
  sftp?: boolean;
  /** Privilege level SSH users land in: 15 (default, prompt `host#`) or 1 (user EXEC, `host>`, no `monitor`). */
  privilege?: 1 | 15;
  /** Delay before every RESTCONF answer. */
  latencyMs?: number;
  faults?: IosXeFaults;
  tls?: TlsMaterial;
  /** What `cpe-capture trace` asks (routing.ts): CEF exact-route, interface counters, CDP, ARP, MAC table. */
  routing?: IosXeRouting;
  /** A traced flow leaving on one interface (transit.ts), instead of the synthetic flow there. */
  transit?: IosXeTransit;
  /** Packet sources by interface name, instead of the synthetic flows there (the trace lab: real packets, from tcpdump on the veth). */
  epcSources?: Record<string, EpcSource>;
}


/** One FIB entry; several with the same prefix are an ECMP set (the flow's 5-tuple picks one). */
export interface IosXeRoute {
  /** e.g. "10.20.0.0/16"; "0.0.0.0/0" for the default route. */
  prefix: string;
  /** The next hop's address; absent: the prefix is attached to `interface` (the destination's own adjacency). */
  via?: string;
  interface: string;
  vrf?: string;
}

export interface IosXeRouting {
  routes: IosXeRoute[];
  arp?: { address: string; mac: string; interface: string; vrf?: string }[];
  /** `show mac address-table`; absent: the command is invalid, as on a router without switch ports. */
  macTable?: { mac: string; vlan: string; port: string }[];
  cdp?: { deviceId: string; localInterface: string; remoteInterface: string; address: string; mgmtAddress?: string; platform?: string }[];
  /** `ip cef load-sharing algorithm <this>` in the running config, e.g. "include-ports source destination". */
  loadSharing?: string;
  /** Counters of `show interfaces <name>` by full name (default: small numbers derived from the name). */
  counters?: Record<string, { outPackets: number; outBytes: number; resets: number }>;
  /** Asked when no route of `routes` matches (the trace lab asks its namespace's kernel): the one route CEF picked, or undefined for none. */
  resolve?: (flow: { src: string; dst: string; sport?: number; dport?: number; vrf?: string }) => IosXeRoute | undefined;
}

export type CapturePointState = "defined" | "active" | "stopped" | "exported";

export interface CapturePointView {
  name: string;
  state: CapturePointState;
  interfaces: { name: string; direction: "in" | "out" | "both" }[];
  match: string | undefined;
  bufferMb: number;
  circular: boolean;
  limit: { duration?: number; packets?: number; packetLen?: number; every?: number; pps?: number };
  /** Packets in the buffer now. */
  packets: number;
  exportedTo?: string;
}

export interface RpcRecord {
  rpc: string;
  input: unknown;
  httpStatus: number;
}

export interface IosXeDeviceState {
  capturePoints: CapturePointView[];
  bootflash: { name: string; size: number }[];
  /** HTTPS requests received (all, answered or not). */
  requests: number;
  /** Last 200 RPCs, oldest first. */
  rpcs: RpcRecord[];
  /** Every CLI line executed, from SSH and as the RPCs' equivalent command, oldest first (last 500). */
  commands: string[];
  sshConnections: number;
  /** SSH connections refused by fault injection. */
  fileRefusals: number;
}

export interface IosXeDevice {
  readonly address: string;
  readonly restPort: number;
  readonly sshPort: number;
  readonly username: string;
  readonly hostname: string;
  /** e.g. https://127.0.0.2:40123 */
  readonly baseUrl: string;
  /** The shared certificate (or `tls.cert`), usable as a client's CA. */
  readonly certificate: string;
  /** The SSH host key as an authorized_keys line. */
  readonly hostKey: string;
  state(): IosXeDeviceState;
  capturePoint(name: string): CapturePointView | undefined;
  /** A bootflash: file as SCP/SFTP serve it. */
  bootflashFile(name: string): Buffer | undefined;
  /** The last file exported (kept after a delete). */
  lastExport(): { name: string; data: Buffer } | undefined;
  setFault(f: IosXeFaults): void;
  clearFaults(): void;
  close(): Promise<void>;
}
