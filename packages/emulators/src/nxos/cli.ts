// The NX-OS show commands the emulator answers, as the switch prints them (NX-OS 9.3 layout; the
// same text for NX-API `cli_show_ascii` bodies and the SSH CLI): show version, show hostname,
// show routing hash (longest-prefix match over the table or the resolver, a deterministic hash over
// the flow's fields picking one ECMP member), show interface, show cdp neighbors detail, show ip
// arp [vrf], show mac address-table, terminal length. Anything else is an invalid command.
import type { NxosArpEntry, NxosCdpNeighbor, NxosDeviceOptions, NxosFlow, NxosInterface, NxosMacEntry, NxosRoute } from "./types.js";
import { flowHash, ipv4Number, prefixLength } from "../route-table.js";

export type CliAnswer = { output: string } | { invalid: true };

/** Whether `ip` is inside `prefix` ("a.b.c.d/len"); the prefix length, or -1 when not. */
export function prefixMatch(prefix: string, ip: string): number {
  const b = ipv4Number(ip);
  return b === undefined ? -1 : (prefixLength(prefix, b) ?? -1);
}

/** FNV-1a over the flow's fields: the same flow always picks the same ECMP member. */
export function ecmpIndex(flow: NxosFlow, members: number): number {
  const h = flowHash(`${flow.src}|${flow.dst}|${flow.proto ?? 0}|${flow.sport ?? 0}|${flow.dport ?? 0}`);
  return members > 0 ? h % members : 0;
}

/** `show routing hash <src> <dst> [ip-proto N] [sport dport] [vrf V]` → the flow, or undefined. */
export function parseHashCommand(words: string[]): NxosFlow | undefined {
  const [src, dst, ...rest] = words;
  if (!src || !dst || ipv4Number(src) === undefined || ipv4Number(dst) === undefined) return undefined;
  const flow: NxosFlow = { src, dst, vrf: "default" };
  const num = (w: string | undefined, max: number) => (w !== undefined && /^\d{1,5}$/.test(w) && Number(w) <= max ? Number(w) : undefined);
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i]!;
    if (w === "ip-proto") {
      const p = num(rest[++i], 255);
      if (p === undefined) return undefined;
      flow.proto = p;
    } else if (w === "vrf") {
      const v = rest[++i];
      if (!v || !/^[A-Za-z0-9_.:-]{1,64}$/.test(v)) return undefined;
      flow.vrf = v;
    } else {
      const s = num(w, 65535);
      const d = num(rest[++i], 65535);
      if (s === undefined || d === undefined) return undefined;
      flow.sport = s;
      flow.dport = d;
    }
  }
  return flow;
}

function showRoutingHash(o: NxosDeviceOptions, flow: NxosFlow, route: NxosRoute | undefined): string {
  const head = [
    "Load-share parameters used for software forwarding:",
    `load-share mode: ${o.loadShareMode ?? "address source-destination port source-destination"}`,
    "Universal-id seed: 0xe05e2e85",
    `Hash for VRF "${flow.vrf}"`,
  ];
  if (!route) return [...head, `Route not found for ${flow.dst} in VRF "${flow.vrf}"`, ""].join("\n");
  const source = route.source ?? "static";
  if (route.local || route.nextHops.length === 0) {
    return [...head, "Hashing to path *sup-eth1", "Out Interface: sup-eth1 , local, attached", "For route:", `${route.prefix}, ubest/mbest: 1/0, attached`, `    *via ${flow.dst}, Lo0, [0/0], 5w2d, local`, ""].join("\n");
  }
  const pick = route.chosen !== undefined && route.chosen >= 0 && route.chosen < route.nextHops.length ? route.chosen : ecmpIndex(flow, route.nextHops.length);
  const chosen = route.nextHops[pick]!;
  return [
    ...head,
    `Hashing to path *${chosen.via}`,
    `Out Interface: ${shortName(chosen.interface)}`,
    "For route:",
    `${route.prefix}, ubest/mbest: ${route.nextHops.length}/0`,
    ...route.nextHops.map((h, i) => `    ${i === pick ? "*" : ""}via ${h.via}, ${shortName(h.interface)}, [1/0], 2w1d, ${source}`),
    "",
  ].join("\n");
}

/** NX-OS abbreviates interfaces in route output: Ethernet1/52 → Eth1/52, port-channel11 → Po11. */
export function shortName(name: string): string {
  return name.replace(/^Ethernet/, "Eth").replace(/^port-channel/, "Po");
}

/** Eth1/52, eth1/52, ethernet1/52 → Ethernet1/52 (the CLI accepts the short forms). */
function canonical(name: string, interfaces: NxosInterface[]): NxosInterface | undefined {
  const n = name.toLowerCase().replace(/^eth(?:ernet)?(?=\d)/, "ethernet").replace(/^po(?:rt-channel)?(?=\d)/, "port-channel");
  return interfaces.find((i) => i.name.toLowerCase() === n);
}

function showInterface(i: NxosInterface): string {
  const t = i.tx ?? {};
  const uni = t.unicast ?? 0;
  const multi = t.multicast ?? 0;
  const broad = t.broadcast ?? 0;
  const up = (i.state ?? "up") === "up";
  return [
    `${i.name} is ${up ? "up" : "down (Link not connected)"}`,
    `admin state is up, Dedicated Interface`,
    "  Hardware: 10000 Ethernet, address: 00c8.8b2b.4c8f (bia 00c8.8b2b.4c8f)",
    ...(i.address ? [`  Internet Address is ${i.address}`] : []),
    "  MTU 1500 bytes, BW 10000000 Kbit , DLY 10 usec",
    "  reliability 255/255, txload 1/255, rxload 1/255",
    "  Encapsulation ARPA, medium is broadcast",
    "  Port mode is routed",
    '  Last clearing of "show interface" counters never',
    `  ${i.resets ?? 0} interface resets`,
    "  Load-Interval #1: 30 seconds",
    "    30 seconds input rate 0 bits/sec, 0 packets/sec",
    "    30 seconds output rate 0 bits/sec, 0 packets/sec",
    "  RX",
    "    0 unicast packets  0 multicast packets  0 broadcast packets",
    "    0 input packets  0 bytes",
    "    0 jumbo packets  0 storm suppression packets",
    "    0 runts  0 giants  0 CRC  0 no buffer",
    "    0 input error  0 short frame  0 overrun   0 underrun  0 ignored",
    "    0 watchdog  0 bad etype drop  0 bad proto drop  0 if down drop",
    "    0 input with dribble  0 input discard",
    "    0 Rx pause",
    "  TX",
    `    ${uni} unicast packets  ${multi} multicast packets  ${broad} broadcast packets`,
    `    ${uni + multi + broad} output packets  ${t.bytes ?? 0} bytes`,
    "    0 jumbo packets",
    `    ${t.outputErrors ?? 0} output error  0 collision  0 deferred  0 late collision`,
    `    0 lost carrier  0 no carrier  0 babble  ${t.discards ?? 0} output discard`,
    "    0 Tx pause",
    "",
  ].join("\n");
}

function showCdp(list: NxosCdpNeighbor[]): string {
  const out: string[] = [];
  for (const n of list) {
    out.push(
      "----------------------------------------",
      `Device ID:${n.deviceId}`,
      ...(n.systemName ? [`System Name: ${n.systemName}`] : []),
      "",
      "Interface address(es):",
      ...n.addresses.map((a) => `    IPv4 Address: ${a}`),
      `Platform: ${n.platform ?? "N9K-C93180YC-EX"}, Capabilities: Router Switch IGMP Filtering Supports-STP-Dispute`,
      `Interface: ${n.localInterface}, Port ID (outgoing port): ${n.remoteInterface}`,
      "Holdtime: 136 sec",
      "",
      "Version:",
      n.version ?? "Cisco Nexus Operating System (NX-OS) Software, Version 9.3(5)",
      "",
      "Advertisement Version: 2",
      "Duplex: full",
      "",
      "MTU: 1500",
      "Mgmt address(es):",
      ...n.mgmtAddresses.map((a) => `    IPv4 Address: ${a}`),
      "",
    );
  }
  out.push(`Total entries displayed: ${list.length}`, "");
  return out.join("\n");
}

function showArp(list: NxosArpEntry[], vrf: string): string {
  const rows = list.filter((a) => (a.vrf ?? "default") === vrf);
  return [
    "",
    "Flags: * - Adjacencies learnt on non-active FHRP router",
    "       + - Adjacencies synced via CFSoE",
    "       # - Adjacencies Throttled for Glean",
    "       D - Static Adjacencies attached to down interface",
    "",
    `IP ARP Table for context ${vrf}`,
    `Total number of entries: ${rows.length}`,
    "Address         Age       MAC Address     Interface       Flags",
    ...rows.map((a) => `${a.address.padEnd(15)} 00:05:10  ${a.mac.padEnd(14)}  ${a.interface.padEnd(15)} `),
    "",
  ].join("\n");
}

function showMac(list: NxosMacEntry[]): string {
  return [
    "Legend: ",
    "        * - primary entry, G - Gateway MAC, (R) - Routed MAC, O - Overlay MAC",
    "        age - seconds since last seen,+ - primary entry using vPC Peer-Link,",
    "        (T) - True, (F) - False, C - ControlPlane MAC, ~ - vsan,",
    "        (NA)- Not Applicable",
    "   VLAN     MAC Address      Type      age     Secure NTFY Ports",
    "---------+-----------------+--------+---------+------+----+------------------",
    ...list.map((m) => `*   ${m.vlan.padEnd(6)} ${m.mac.padEnd(16)} ${(m.type ?? "dynamic").padEnd(8)} 0         F      F    ${shortName(m.port)}`),
    "",
  ].join("\n");
}

function showVersion(facts: { hostname: string; model: string; version: string; serial: string }): string {
  return [
    "Cisco Nexus Operating System (NX-OS) Software",
    "TAC support: http://www.cisco.com/tac",
    "Copyright (C) 2002-2020, Cisco and/or its affiliates.",
    "All rights reserved.",
    "",
    "Software",
    "  BIOS: version 07.67",
    ` NXOS: version ${facts.version}`,
    "  BIOS compile time:  01/29/2020",
    `  NXOS image file is: bootflash:///nxos.${facts.version.replace(/[()]/g, ".").replace(/\.$/, "")}.bin`,
    "",
    "",
    "Hardware",
    `  cisco ${facts.model} chassis `,
    "  Intel(R) Xeon(R) CPU  @ 1.80GHz with 24631956 kB of memory.",
    `  Processor Board ID ${facts.serial}`,
    "",
    `  Device name: ${facts.hostname}`,
    "  bootflash:   53298520 kB",
    "Kernel uptime is 32 day(s), 2 hour(s), 15 minute(s), 46 second(s)",
    "",
  ].join("\n");
}

export interface NxosCli {
  /** One command line as the switch runs it. */
  run(line: string): Promise<CliAnswer>;
}

export function createCli(o: NxosDeviceOptions, facts: { hostname: string; model: string; version: string; serial: string }): NxosCli {
  const interfaces = o.interfaces ?? [];
  async function route(flow: NxosFlow): Promise<NxosRoute | undefined> {
    let best: NxosRoute | undefined;
    let bestLen = -1;
    for (const r of o.routes ?? []) {
      if ((r.vrf ?? "default") !== flow.vrf) continue;
      const len = prefixMatch(r.prefix, flow.dst);
      if (len > bestLen) {
        best = r;
        bestLen = len;
      }
    }
    return best ?? (await o.resolve?.(flow));
  }
  return {
    async run(line) {
      const words = line.trim().split(/\s+/);
      const cmd = words.join(" ");
      if (/^terminal (length|width) \d+$/.test(cmd)) return { output: "" };
      if (cmd === "show version") return { output: showVersion(facts) };
      if (cmd === "show hostname") return { output: `${facts.hostname} \n` };
      if (cmd.startsWith("show routing hash ") || cmd.startsWith("show routing ip hash ")) {
        const flow = parseHashCommand(words.slice(words.indexOf("hash") + 1));
        if (!flow) return { invalid: true };
        return { output: showRoutingHash(o, flow, await route(flow)) };
      }
      const iface = /^show interface (\S+)$/.exec(cmd);
      if (iface) {
        const i = canonical(iface[1]!, interfaces);
        return i ? { output: showInterface(i) } : { invalid: true };
      }
      if (cmd === "show cdp neighbors detail") return { output: showCdp(o.cdp ?? []) };
      const arp = /^show ip arp(?: vrf (\S+))?$/.exec(cmd);
      if (arp) return { output: showArp(o.arp ?? [], arp[1] ?? "default") };
      if (cmd === "show mac address-table") return { output: showMac(o.mac ?? []) };
      return { invalid: true };
    },
  };
}
