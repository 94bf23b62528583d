// The second, smaller contract a vendor may implement: answering "which way does this flow go?" on
// one router or switch, as flowtracker asks it (`show routing hash` on NX-OS, `show ip cef
// exact-route` on IOS-XE). `cpe-capture trace` walks a path with it; it never sees vendor commands.
// Shapes follow flowtracker's output blocks (FLOW OVERVIEW; per hop OUT_IF, NEXT_HOP, RESETS...).
import type { HttpsTrust } from "@capsync/common";

/** The 5-tuple (+ VRF) being traced. Protocol as an IP protocol number (6 tcp, 17 udp, 1 icmp). */
export interface FlowQuery {
  src: string;
  dst: string;
  proto?: number;
  sport?: number;
  dport?: number;
  /** Default "default". */
  vrf?: string;
}

/** @example { outInterface: "Ethernet1/1", nextHop: "10.1.1.2", loadShareMode: "address source-destination port source-destination", vrf: "default", raw: "..." } */
export interface RouteDecision {
  /** The interface the flow leaves on, as the device names it. */
  outInterface: string;
  /** The next hop's address; undefined when the destination is directly connected (ARP + MAC table decide). */
  nextHop?: string;
  /** The device's load-sharing mode for this flow, as it prints it (undefined when it prints none). */
  loadShareMode?: string;
  vrf: string;
  /** The device's own text the decision was read from (kept for --json and the log). */
  raw: string;
  /** The destination is this device itself (flowtracker's `local` out interface): the path ends here. */
  local?: boolean;
}

/** @example { resets: "3 interface resets", txStats: { "unicast packets": "1234", "output errors": "0" }, raw: "..." } */
export interface InterfaceStats {
  /** The device's resets line as printed, undefined when none. */
  resets?: string;
  /** TX counters by the device's own label. */
  txStats: Record<string, string>;
  /** The TX counter lines as the device prints them, trimmed (flowtracker's TX_STATS block); default: txStats as "value label" lines. */
  txLines?: string[];
  raw: string;
}

/** @example { deviceId: "leaf2(FDO1234)", localInterface: "Ethernet1/1", remoteInterface: "Ethernet1/49", addresses: ["10.1.1.2"], mgmtAddresses: ["192.0.2.12"], platform: "N9K-C93180YC-EX" } */
export interface CdpNeighbor {
  deviceId: string;
  localInterface: string;
  remoteInterface?: string;
  /** Interface addresses the neighbor advertises. */
  addresses: string[];
  /** Management addresses (flowtracker's --use_mgmt connects to these). */
  mgmtAddresses: string[];
  platform?: string;
}

/** @example { address: "10.1.1.20", mac: "0050.56aa.0001", interface: "Vlan10" } */
export interface ArpEntry {
  address: string;
  mac: string;
  interface: string;
}

/** @example { mac: "0050.56aa.0001", vlan: "10", port: "Ethernet1/5" } */
export interface MacEntry {
  mac: string;
  vlan: string;
  port: string;
}

/** One connection to one hop. Every method answers from the device or rejects with a CapsyncError. */
export interface HopClient {
  /** `show hostname` (or the prompt's name). */
  hostname(): Promise<string>;
  routeFor(flow: FlowQuery): Promise<RouteDecision>;
  interfaceStats(name: string): Promise<InterfaceStats>;
  cdpNeighbors(): Promise<CdpNeighbor[]>;
  arp(vrf?: string): Promise<ArpEntry[]>;
  macTable(): Promise<MacEntry[]>;
  /** Safe twice. */
  close(): Promise<void>;
}

export interface HopOptions {
  address: string;
  username: string;
  password: string;
  /** Default 443 (NX-API / RESTCONF). */
  restPort?: number;
  /** Default 22. */
  sshPort?: number;
  /** Default "verify"; a lab's self-signed device: "insecure" or { mode: "ca", ca }. */
  tls?: HttpsTrust;
  timeoutMs?: number;
}

export type HopClientFactory = (opts: HopOptions) => HopClient;
