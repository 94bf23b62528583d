// IOS-XE's answers to a path trace, read as the router prints them (17.x exec CLI): the CEF exact-route
// line, `show interfaces` counters, `show cdp neighbors detail`, `show ip arp`, `show mac
// address-table`, `show version`'s OS and hostname lines, the running config's load-sharing line.
// Pure text in, shapes of ../hop.ts out; never throws on device text.
import { isIPv4 } from "node:net";
import type { ArpEntry, CdpNeighbor, FlowQuery, InterfaceStats, MacEntry } from "../hop.js";
import { cliErrors } from "./ssh-cli.js";

/** A VRF name safe on a CLI line (IOS allows 32 characters). */
const VRF = /^[A-Za-z0-9_.:-]{1,32}$/;

/**
 * The CEF question for one flow. IOS-XE hashes on addresses and, with `ip cef load-sharing algorithm
 * include-ports`, on ports; the protocol is not an input of its hash, so it is not sent.
 * @example exactRouteCommand({ src: "10.1.1.10", dst: "10.9.9.9", sport: 1234, dport: 80, vrf: "RED" })
 *          → "show ip cef vrf RED exact-route 10.1.1.10 src-port 1234 10.9.9.9 dest-port 80"
 */
export function exactRouteCommand(flow: FlowQuery): string | { error: string } {
  if (!isIPv4(flow.src)) return { error: `source ${JSON.stringify(flow.src)} is not an IPv4 address` };
  if (!isIPv4(flow.dst)) return { error: `destination ${JSON.stringify(flow.dst)} is not an IPv4 address` };
  const port = (p: number | undefined) => p === undefined || (Number.isInteger(p) && p >= 0 && p <= 65535);
  if (!port(flow.sport) || !port(flow.dport)) return { error: "ports must be 0..65535" };
  const vrf = flow.vrf && flow.vrf !== "default" ? flow.vrf : undefined;
  if (vrf !== undefined && !VRF.test(vrf)) return { error: `VRF ${JSON.stringify(vrf)} is not a VRF name` };
  return [
    "show ip cef",
    ...(vrf ? [`vrf ${vrf}`] : []),
    "exact-route",
    flow.src,
    ...(flow.sport !== undefined ? [`src-port ${flow.sport}`] : []),
    flow.dst,
    ...(flow.dport !== undefined ? [`dest-port ${flow.dport}`] : []),
  ].join(" ");
}

export type ExactRoute =
  | { ok: true; outInterface: string; nextHop: string | undefined; local: boolean }
  | { ok: false; reason: string };

/**
 * `10.1.1.10 -> 10.9.9.9 =>IP adj out of GigabitEthernet2, addr 10.0.12.2` (IOS-XE), the older
 * `10.0.0.10 -> 192.168.0.2 : Serial0/0/0.100 (next hop 172.16.1.2)`, `=>receive` (an address of
 * this router), `=>glean for GigabitEthernet3` (attached, not yet resolved). The destination's own
 * adjacency (addr = destination) is "directly connected": nextHop undefined.
 */
export function parseExactRoute(text: string, dst: string): ExactRoute {
  const errors = cliErrors(text);
  if (errors.length > 0) return { ok: false, reason: errors.join(" ") };
  const adj = /=>\s*IP adj out of ([^\s,]+),\s*addr (\S+)/.exec(text) ?? /:\s+([A-Za-z][^\s(]*)\s+\(next hop (\S+?)\)/.exec(text);
  if (adj) return { ok: true, outInterface: adj[1]!, nextHop: adj[2] === dst ? undefined : adj[2]!, local: false };
  if (/=>\s*receive\b|:\s+receive\b/.test(text)) return { ok: true, outInterface: "receive", nextHop: undefined, local: true };
  const glean = /=>\s*(?:IP\s+)?glean (?:for|out of) ([^\s,]+)/.exec(text);
  if (glean) return { ok: true, outInterface: glean[1]!, nextHop: undefined, local: false };
  const tail = /(?:=>|:\s)\s*(.+)$/m.exec(text.trim())?.[1]?.trim();
  if (tail && /no route|drop|null0|discard/i.test(tail)) return { ok: false, reason: `the router has no route for ${dst} (CEF: ${tail})` };
  const first = text.trim().split("\n")[0] ?? "";
  return { ok: false, reason: first === "" ? "empty answer to exact-route" : `unexpected exact-route answer: ${first.slice(0, 160)}` };
}

/**
 * `show version | include IOS XE Software|uptime is` and `show running-config | include ^ip cef
 * load-sharing`: whether the box runs IOS XE, its hostname, and the CEF load-sharing algorithm
 * (no line: IOS-XE's default, universal).
 */
export function parseRunningFacts(version: string, config: string): { iosXe: boolean; hostname: string | undefined; loadShareMode: string } {
  const iosXe = /Cisco IOS XE Software/.test(version);
  const hostname = /^(\S+) uptime is\b/m.exec(version)?.[1];
  const algo = /^ip cef load-sharing algorithm (.+?)\s*$/m.exec(config)?.[1];
  return { iosXe, hostname, loadShareMode: algo ?? "universal" };
}

/**
 * `show interfaces <if>`: the "N interface resets" count and the output counters, from the
 * "packets output" line to the end of the counter block.
 */
export function parseShowInterfaces(text: string): InterfaceStats | { error: string } {
  const errors = cliErrors(text);
  if (errors.length > 0) return { error: errors.join(" ") };
  const lines = text.split("\n");
  const start = lines.findIndex((l) => /\bpackets output\b/.test(l));
  if (start < 0) return { error: "no output counters in show interfaces" };
  const txLines: string[] = [];
  for (const l of lines.slice(start)) {
    if (l.trim() === "" || !/^\s{2,}\S/.test(l)) break;
    txLines.push(l.trim());
  }
  const txStats: Record<string, string> = {};
  for (const l of txLines) {
    for (const part of l.split(",")) {
      const m = /^\s*(\d+)\s+(.+?)\s*$/.exec(part);
      if (m) txStats[m[2]!] = m[1]!;
    }
  }
  const resets = /(\d+) interface resets/.exec(text)?.[0];
  return { ...(resets ? { resets } : {}), txStats, txLines, raw: text };
}

/** `show cdp neighbors detail`: one entry per `Device ID:` block. */
export function parseCdpDetail(text: string): CdpNeighbor[] {
  const out: CdpNeighbor[] = [];
  for (const block of text.split(/^-{5,}\s*$/m)) {
    const deviceId = /^Device ID:\s*(\S+)/m.exec(block)?.[1];
    const intf = /^Interface:\s*([^,\s]+),\s*Port ID \(outgoing port\):\s*(\S+)/m.exec(block);
    if (!deviceId || !intf) continue;
    const [entries, mgmt] = splitAt(block, /^Management address\(es\):/m);
    const addrs = (t: string) => [...t.matchAll(/^\s*IP(?:v4)? address:\s*(\S+)/gim)].map((m) => m[1]!);
    const platform = /^Platform:\s*([^,]+?),/m.exec(block)?.[1];
    out.push({
      deviceId,
      localInterface: intf[1]!,
      remoteInterface: intf[2]!,
      addresses: addrs(entries.split(/^Platform:/m)[0] ?? ""),
      mgmtAddresses: mgmt === undefined ? [] : addrs(mgmt.split(/\n\s*\n/)[0] ?? ""),
      ...(platform ? { platform } : {}),
    });
  }
  return out;
}

function splitAt(text: string, re: RegExp): [string, string | undefined] {
  const m = re.exec(text);
  return m ? [text.slice(0, m.index), text.slice(m.index + m[0].length)] : [text, undefined];
}

/** `show ip arp`: `Internet  10.0.12.2   12   5254.0012.0002  ARPA   GigabitEthernet2` rows (incomplete ones skipped). */
export function parseArp(text: string): ArpEntry[] {
  const out: ArpEntry[] = [];
  for (const m of text.matchAll(/^Internet\s+(\d+\.\d+\.\d+\.\d+)\s+\S+\s+([0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4})\s+\S+\s+(\S+)\s*$/gim)) {
    out.push({ address: m[1]!, mac: m[2]!.toLowerCase(), interface: m[3]! });
  }
  return out;
}

/** `show mac address-table`: `  10    0050.56aa.0001    DYNAMIC     Gi1/0/5` rows (CPU and static entries kept). */
export function parseMacTable(text: string): MacEntry[] {
  const out: MacEntry[] = [];
  for (const m of text.matchAll(/^\s*(\d+|All)\s+([0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4})\s+\S+\s+(\S+)\s*$/gim)) {
    out.push({ vlan: m[1]!, mac: m[2]!.toLowerCase(), port: m[3]! });
  }
  return out;
}
