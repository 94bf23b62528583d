// The trace lab's network as data: six routed switch namespaces in a chain (NX-OS and IOS-XE mixed),
// two parallel links between n9k-spine1 and c8k-core1 carrying an ECMP pair, a source and a
// destination host, and an out-of-band management LAN (a bridge namespace) where the orchestrator
// reaches every switch's management address. Documentation addresses only (RFC 5737):
//
//   cstrace-src 192.0.2.10/26 ─ sw1 ─ sw2 ═(ECMP)═ sw3 ─ sw4 ─ sw5 ─ sw6 ─ cstrace-dst 198.51.100.10/24
//   links: /30s from 192.0.2.128/25; management: 203.0.113.0/24 (switches .11-.16, orchestrator .10)
//
// MAC addresses are fixed here (02:c5:00:<namespace>:00:<interface>), so ARP tables and CDP come
// from the plan, before anything exists. Pure: nothing here touches the system.

/** Prefix of every namespace the trace lab creates (the demo lab's is `cslab-`). */
export const TRACE_PREFIX = "cstrace-";
/** `<tmpdir>/capsync-tracelab-XXXXXX`, holding the lab's pid file, switch specs and logs. */
export const TRACE_DIR_PREFIX = "capsync-tracelab-";

export type SwitchType = "nxos" | "iosxe";

export interface SwitchInterface {
  /** The veth inside the switch's namespace: eth1, eth2, ... or mgmt0. */
  veth: string;
  /** As the emulated switch names it (Ethernet1/2 on NX-OS, GigabitEthernet2 on IOS-XE). */
  name: string;
  address: string;
  prefix: number;
  mac: string;
  /** The far end on this link: a switch (its index) or a host, its address, MAC and interface name. */
  peer?: { switch?: number; host?: string; address: string; mac: string; name: string };
}

export interface SwitchRoute {
  prefix: string;
  /** Two or more: a multipath (ECMP) route. */
  nextHops: { via: string; dev: string }[];
}

export interface LabSwitch {
  /** 1-based, the position on the chain (= the hop number of a flow from src to dst). */
  index: number;
  ns: string;
  type: SwitchType;
  hostname: string;
  mgmt: string;
  interfaces: SwitchInterface[];
  routes: SwitchRoute[];
  /** net.ipv4.fib_multipath_hash_policy=1: the kernel hashes on the 5-tuple (its ECMP routes). */
  l4Hash: boolean;
}

export interface LabHostPlan {
  ns: string;
  address: string;
  prefix: number;
  gateway: string;
  mac: string;
}

export interface TracePlan {
  switches: LabSwitch[];
  src: LabHostPlan;
  dst: LabHostPlan;
  /** The management LAN's bridge namespace, and the orchestrator on it. */
  oob: string;
  orch: { ns: string; address: string; prefix: number };
  mgmtPrefix: number;
  /** Point-to-point links between switches, in chain order (two between the ECMP pair). */
  links: { a: number; aIf: string; aAddr: string; b: number; bIf: string; bAddr: string }[];
  /** The switch whose multipath route is the ECMP pair, and its two member interfaces (veths). */
  ecmp: { switch: number; members: [string, string] };
}

const SWITCHES: readonly { hostname: string; type: SwitchType }[] = [
  { hostname: "n9k-leaf1", type: "nxos" },
  { hostname: "n9k-spine1", type: "nxos" },
  { hostname: "c8k-core1", type: "iosxe" },
  { hostname: "c8k-core2", type: "iosxe" },
  { hostname: "n9k-spine2", type: "nxos" },
  { hostname: "c8k-edge1", type: "iosxe" },
];
/** The chain position after which two parallel links run (n9k-spine1 → c8k-core1). */
const ECMP_AFTER = 2;
const SRC_LAN = "192.0.2.0/26";
const DST_LAN = "198.51.100.0/24";

/** veth name → the switch's own interface name (eth2 → Ethernet1/2 | GigabitEthernet2; mgmt0 → mgmt0 | GigabitEthernet0). */
export function switchInterfaceName(type: SwitchType, veth: string): string {
  const n = /^eth(\d+)$/.exec(veth)?.[1];
  if (type === "nxos") return n !== undefined ? `Ethernet1/${n}` : veth === "mgmt0" ? "mgmt0" : veth;
  return n !== undefined ? `GigabitEthernet${n}` : veth === "mgmt0" ? "GigabitEthernet0" : veth;
}

const mac = (nsIndex: number, ifIndex: number) => `02:c5:00:${nsIndex.toString(16).padStart(2, "0")}:00:${ifIndex.toString(16).padStart(2, "0")}`;

/** The lab: fixed, six switches (so a flow from src to dst is a 6-hop trace). */
export function planTraceLab(): TracePlan {
  const switches: LabSwitch[] = SWITCHES.map((s, i) => ({
    index: i + 1,
    ns: `${TRACE_PREFIX}sw${i + 1}`,
    type: s.type,
    hostname: s.hostname,
    mgmt: `203.0.113.${11 + i}`,
    interfaces: [],
    routes: [],
    l4Hash: false,
  }));
  const addIf = (sw: LabSwitch, address: string, prefix: number): SwitchInterface => {
    const veth = `eth${sw.interfaces.length + 1}`;
    const i: SwitchInterface = { veth, name: switchInterfaceName(sw.type, veth), address, prefix, mac: mac(sw.index, sw.interfaces.length + 1) };
    sw.interfaces.push(i);
    return i;
  };
  const src: LabHostPlan = { ns: `${TRACE_PREFIX}src`, address: "192.0.2.10", prefix: 26, gateway: "192.0.2.1", mac: mac(0xa0, 0) };
  const dst: LabHostPlan = { ns: `${TRACE_PREFIX}dst`, address: "198.51.100.10", prefix: 24, gateway: "198.51.100.1", mac: mac(0xd0, 0) };
  const first = switches[0]!;
  const last = switches[switches.length - 1]!;
  const srcIf = addIf(first, src.gateway, src.prefix);
  srcIf.peer = { host: src.ns, address: src.address, mac: src.mac, name: "eth0" };

  const links: TracePlan["links"] = [];
  let block = 128;
  for (let i = 0; i < switches.length - 1; i++) {
    const a = switches[i]!;
    const b = switches[i + 1]!;
    const count = a.index === ECMP_AFTER ? 2 : 1;
    const down: SwitchInterface[] = [];
    const up: SwitchInterface[] = [];
    for (let k = 0; k < count; k++, block += 4) {
      const ai = addIf(a, `192.0.2.${block + 1}`, 30);
      down.push(ai);
    }
    block -= 4 * count;
    for (let k = 0; k < count; k++, block += 4) {
      const bi = addIf(b, `192.0.2.${block + 2}`, 30);
      up.push(bi);
    }
    for (let k = 0; k < count; k++) {
      const ai = down[k]!;
      const bi = up[k]!;
      ai.peer = { switch: b.index, address: bi.address, mac: bi.mac, name: bi.name };
      bi.peer = { switch: a.index, address: ai.address, mac: ai.mac, name: ai.name };
      links.push({ a: a.index, aIf: ai.veth, aAddr: ai.address, b: b.index, bIf: bi.veth, bAddr: bi.address });
    }
    a.routes.push({ prefix: DST_LAN, nextHops: down.map((d) => ({ via: d.peer!.address, dev: d.veth })) });
    b.routes.push({ prefix: SRC_LAN, nextHops: up.map((u) => ({ via: u.peer!.address, dev: u.veth })) });
    if (count > 1) a.l4Hash = b.l4Hash = true;
  }
  const dstIf = addIf(last, dst.gateway, dst.prefix);
  dstIf.peer = { host: dst.ns, address: dst.address, mac: dst.mac, name: "eth0" };
  const ecmpSwitch = switches[ECMP_AFTER - 1]!;
  const members = ecmpSwitch.routes.find((r) => r.prefix === DST_LAN)!.nextHops.map((h) => h.dev);
  return {
    switches,
    src,
    dst,
    oob: `${TRACE_PREFIX}oob`,
    orch: { ns: `${TRACE_PREFIX}orch`, address: "203.0.113.10", prefix: 24 },
    mgmtPrefix: 24,
    links,
    ecmp: { switch: ecmpSwitch.index, members: [members[0]!, members[1]!] },
  };
}

export function traceNamespaceNames(p: TracePlan): string[] {
  return [p.oob, p.orch.ns, p.src.ns, p.dst.ns, ...p.switches.map((s) => s.ns)];
}

/** What the emulated switch process needs (written as JSON for ./switch-main.ts). */
export interface SwitchSpec {
  type: SwitchType;
  hostname: string;
  address: string;
  username: string;
  /** The environment variable holding the password (never on a command line). */
  passwordEnv: string;
  interfaces: { name: string; veth: string; address: string; prefix: number }[];
  cdp: { deviceId: string; localInterface: string; remoteInterface: string; address: string; mgmtAddress: string; platform: string }[];
  /** MACs as Cisco prints them (0011.2233.4455). */
  arp: { address: string; mac: string; interface: string }[];
}

/** 02:c5:00:01:00:02 → 02c5.0001.0002 */
export function ciscoMac(m: string): string {
  const h = m.replace(/:/g, "").toLowerCase();
  return `${h.slice(0, 4)}.${h.slice(4, 8)}.${h.slice(8, 12)}`;
}

const PLATFORM: Record<SwitchType, string> = { nxos: "N9K-C93180YC-EX", iosxe: "cisco C8000V" };

export function switchSpec(p: TracePlan, sw: LabSwitch, username: string, passwordEnv: string): SwitchSpec {
  const data = sw.interfaces;
  return {
    type: sw.type,
    hostname: sw.hostname,
    address: sw.mgmt,
    username,
    passwordEnv,
    interfaces: [...data.map((i) => ({ name: i.name, veth: i.veth, address: i.address, prefix: i.prefix })), { name: switchInterfaceName(sw.type, "mgmt0"), veth: "mgmt0", address: sw.mgmt, prefix: p.mgmtPrefix }],
    cdp: data.flatMap((i) => {
      const n = i.peer?.switch === undefined ? undefined : p.switches[i.peer.switch - 1];
      return n ? [{ deviceId: n.hostname, localInterface: i.name, remoteInterface: i.peer!.name, address: i.peer!.address, mgmtAddress: n.mgmt, platform: PLATFORM[n.type] }] : [];
    }),
    arp: data.flatMap((i) => (i.peer ? [{ address: i.peer.address, mac: ciscoMac(i.peer.mac), interface: i.name }] : [])),
  };
}
