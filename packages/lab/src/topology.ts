// The demo lab's network: a router namespace between the devices, the management server and the
// orchestrator; documentation addresses only (RFC 5737), nothing routed out of the lab.
//
//   cslab-d1 192.0.2.2/30  ─┐                      ┌─ cslab-mgmt 198.51.100.10/24 (agent + management server)
//   cslab-d2 192.0.2.6/30  ─┼─ cslab-wan (router) ─┤
//   cslab-dN 192.0.2.4N-2  ─┘   ip_forward=1       └─ cslab-orch 203.0.113.10/24 (cpe-capture run)
//
// Every veth is created inside the namespaces (`ip -n <router> link add ... peer ... netns <ns>`),
// so the root namespace never holds a lab interface, not even for a moment. IPv6 is switched off
// in the lab so the captures hold only the IPv4 traffic the demo is about (no router solicitations).
// The path break is an nftables drop in the router's forward chain, device → management server
// only: the packet left the device (it is in the device's capture) and never reached the server
// (it is not in the agent's), while the orchestrator still reaches the device to stop and collect.
import { addNamespace, deleteNamespace, ip, LAB_PREFIX, nft, nsExec, sysctl } from "./netns.js";

export type LabDeviceType = "msbr" | "gwsbc";

export interface LabDevice {
  /** 1-based. */
  index: number;
  ns: string;
  type: LabDeviceType;
  address: string;
  gateway: string;
  /** Interface inside the device namespace; named like the capture interface it stands for. */
  iface: string;
  /** Its peer inside the router namespace. */
  routerIface: string;
  /** Capture interfaces in the run config. */
  interfaces: string[];
}

export interface LabHost {
  ns: string;
  address: string;
  gateway: string;
  prefix: number;
  iface: string;
  routerIface: string;
}

export interface LabTopology {
  router: string;
  devices: LabDevice[];
  mgmt: LabHost;
  orch: LabHost;
}

export const MAX_LAB_DEVICES = 20;

/** Device 1 is an MSBR, 2 a GW/SBC, and so on alternating. */
export function planTopology(n: number): LabTopology {
  if (!Number.isInteger(n) || n < 1 || n > MAX_LAB_DEVICES) throw new RangeError(`devices: 1..${MAX_LAB_DEVICES}`);
  const devices = Array.from({ length: n }, (_, i): LabDevice => {
    const type: LabDeviceType = i % 2 === 0 ? "msbr" : "gwsbc";
    const base = 4 * i; // one /30 per device in 192.0.2.0/24: .4i+1 router, .4i+2 device
    const iface = type === "msbr" ? "eth-wan" : "eth-lan";
    return { index: i + 1, ns: `${LAB_PREFIX}d${i + 1}`, type, address: `192.0.2.${base + 2}`, gateway: `192.0.2.${base + 1}`, iface, routerIface: `to-d${i + 1}`, interfaces: [iface] };
  });
  return {
    router: `${LAB_PREFIX}wan`,
    devices,
    mgmt: { ns: `${LAB_PREFIX}mgmt`, address: "198.51.100.10", gateway: "198.51.100.1", prefix: 24, iface: "eth0", routerIface: "to-mgmt" },
    orch: { ns: `${LAB_PREFIX}orch`, address: "203.0.113.10", gateway: "203.0.113.1", prefix: 24, iface: "eth0", routerIface: "to-orch" },
  };
}

export function labNamespaceNames(t: LabTopology): string[] {
  return [t.router, t.mgmt.ns, t.orch.ns, ...t.devices.map((d) => d.ns)];
}

function link(t: LabTopology, ns: string, iface: string, routerIface: string, addr: string, gw: string, prefix: number): void {
  ip("-n", t.router, "link", "add", routerIface, "type", "veth", "peer", "name", iface, "netns", ns);
  ip("-n", t.router, "addr", "add", `${gw}/${prefix}`, "dev", routerIface);
  ip("-n", t.router, "link", "set", routerIface, "up");
  ip("-n", ns, "addr", "add", `${addr}/${prefix}`, "dev", iface);
  ip("-n", ns, "link", "set", iface, "up");
  ip("-n", ns, "route", "add", "default", "via", gw);
}

/** Create every namespace and link; on failure, whatever was made is removed before rethrowing. */
export function buildTopology(t: LabTopology): void {
  const made: string[] = [];
  try {
    for (const ns of labNamespaceNames(t)) {
      addNamespace(ns);
      made.push(ns);
      // Before any link exists, so new interfaces inherit "default".
      sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
      ip("-n", ns, "link", "set", "lo", "up");
    }
    sysctl(t.router, "net.ipv4.ip_forward=1");
    for (const d of t.devices) link(t, d.ns, d.iface, d.routerIface, d.address, d.gateway, 30);
    for (const h of [t.mgmt, t.orch]) link(t, h.ns, h.iface, h.routerIface, h.address, h.gateway, h.prefix);
  } catch (e) {
    for (const ns of made) deleteNamespace(ns);
    throw e;
  }
}

export function teardownTopology(t: LabTopology): void {
  for (const ns of labNamespaceNames(t)) deleteNamespace(ns);
}

/** Drop everything `from` sends to `to` in the router's forward path (other directions untouched). */
export function breakPath(t: LabTopology, from: string, to: string): void {
  nft(
    t.router,
    `table ip cslab {
  chain break_path {
    type filter hook forward priority 0; policy accept;
    ip saddr ${from} ip daddr ${to} counter drop
  }
}
`,
  );
}

/** Packets the break has dropped so far (from the rule's counter), or undefined. */
export function droppedByBreak(t: LabTopology): number | undefined {
  try {
    const out = nsExec(t.router, ["nft", "list", "chain", "ip", "cslab", "break_path"]);
    const m = /counter packets (\d+)/.exec(out);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
