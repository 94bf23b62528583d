// The NX-OS switch emulator's options, state and handle (see ./index.ts).
import type { RequestFault } from "../faults.js";
import type { TlsMaterial } from "../tls.js";

/** One route: ECMP next hops (the flow's hash picks one), or the switch's own address (`local`). */
export interface NxosRoute {
  /** "198.51.100.0/24"; "0.0.0.0/0" for a default route. */
  prefix: string;
  /** Default "default". */
  vrf?: string;
  /** Empty for a local route. */
  nextHops: { via: string; interface: string }[];
  /** The prefix is the switch's own (answered as `sup-eth1 , local, attached`). */
  local?: boolean;
  /** As `show routing hash` prints it after the metric, e.g. "ospf-1, intra" (default "static"). */
  source?: string;
  /** Index of the next hop the forwarding plane picked (a resolver that asked a real FIB); default: the emulator's hash. */
  chosen?: number;
}

/** What the flow looks like to the hash (the `show routing hash` arguments). */
export interface NxosFlow {
  src: string;
  dst: string;
  proto?: number;
  sport?: number;
  dport?: number;
  vrf: string;
}

/** A lookup outside the table (the trace lab asks the namespace's kernel); undefined: no route. */
export type NxosResolver = (flow: NxosFlow) => Promise<NxosRoute | undefined> | NxosRoute | undefined;

export interface NxosInterface {
  /** "Ethernet1/52", "Vlan10", "port-channel11". */
  name: string;
  state?: "up" | "down";
  /** "10.10.60.2/30". */
  address?: string;
  resets?: number;
  /** TX counters; unset ones print 0. */
  tx?: { unicast?: number; multicast?: number; broadcast?: number; bytes?: number; outputErrors?: number; discards?: number };
}

export interface NxosCdpNeighbor {
  deviceId: string;
  systemName?: string;
  localInterface: string;
  remoteInterface: string;
  addresses: string[];
  mgmtAddresses: string[];
  platform?: string;
  version?: string;
}

export interface NxosArpEntry {
  address: string;
  mac: string;
  interface: string;
  vrf?: string;
}

export interface NxosMacEntry {
  vlan: string;
  mac: string;
  port: string;
  type?: "dynamic" | "static";
}

/** Faults on NX-API requests (`on`: "probe" = show version, "show" = any other command). */
export type NxosFault = RequestFault<"server-error" | "timeout", "probe" | "show">;

export interface NxosDeviceOptions {
  /** Listen address (default 127.0.0.1). */
  address?: string;
  username: string;
  password: string;
  hostname?: string;
  /** As `show version` prints it after "cisco ": default "Nexus9000 C93180YC-EX". */
  model?: string;
  /** Default "9.3(5)". */
  version?: string;
  serial?: string;
  /** 0 or absent: any free port. */
  restPort?: number;
  sshPort?: number;
  tls?: TlsMaterial;
  routes?: NxosRoute[];
  /** Asked when no route of the table matches. */
  resolve?: NxosResolver;
  /** Default "address source-destination port source-destination". */
  loadShareMode?: string;
  interfaces?: NxosInterface[];
  cdp?: NxosCdpNeighbor[];
  arp?: NxosArpEntry[];
  mac?: NxosMacEntry[];
  /**
   * "on" (default); "404": nginx answers but /ins is not found; "closed": nothing listens on the
   * NX-API port (`no feature nxapi`). Either way the SSH CLI still answers.
   */
  nxapi?: "on" | "404" | "closed";
  faults?: NxosFault;
}

export interface NxosDevice {
  readonly address: string;
  readonly restPort: number;
  readonly sshPort: number;
  readonly hostname: string;
  /** PEM of the NX-API certificate (self-signed: also the CA to trust). */
  readonly certificate: string;
  /** Every command run, over NX-API or SSH, in order (last 500). */
  commands(): string[];
  /** Requests NX-API answered, SSH sessions opened. */
  counts(): { nxapi: number; ssh: number };
  /** Switches NX-API's /ins on or to 404 at run time ("closed" only at start). */
  setNxapi(mode: "on" | "404"): void;
  setFault(f: NxosFault | undefined): void;
  close(): Promise<void>;
}

/** Texts the emulator puts in its error answers (the driver's errors carry them). */
export const NXOS_MESSAGES = {
  auth: "401 Authorization Required",
  notFound: "404 Not Found",
  serverError: "Back-end processing error",
  inputError: "Input CLI command error",
  invalidCommand: "% Invalid command at '^' marker.",
} as const;
