// `show routing hash <src> <dst> [ip-proto <n>] [<sport> <dport>] [vrf <vrf>]` (NX-OS 7.0(3)I7 to
// 10.x, Nexus 9000): which ECMP member the switch's software hash picks for one flow. The command
// line is flowtracker's (_get_raw_hash_info) with the VRF as `vrf <name>`, the switch's own syntax.
// Read as flowtracker reads it: `Hash for VRF "<vrf>"`, `load-share mode: …`, `Hashing to path
// *<next hop>` and `Out Interface: <if>`; where a release prints no Out Interface line, the
// interface comes from `(<if>)` after the path or from the chosen `*via <nh>, <if>` line.
import { IPV4, firstLine, lines, type Parsed } from "./issue.js";

export interface HashQuery {
  src: string;
  dst: string;
  proto?: number | undefined;
  sport?: number | undefined;
  dport?: number | undefined;
  vrf?: string | undefined;
}

/** @example { vrf: "default", loadShareMode: "address source-destination port source-destination", path: "10.10.60.1", nextHop: "10.10.60.1", outInterface: "Eth1/52", local: false, route: "4.4.4.4/32" } */
export interface RoutingHash {
  vrf: string;
  loadShareMode: string | undefined;
  /** What follows "Hashing to path", without the `*`: an address, or `sup-eth1` for the switch itself. */
  path: string;
  /** The path when it is an IPv4 address. */
  nextHop: string | undefined;
  /** As the switch prints it ("Eth1/52"); undefined when the text names none. */
  outInterface: string | undefined;
  /** The flow ends on the switch itself (sup-eth path, or an interface marked local). */
  local: boolean;
  /** The route the hash was taken over, e.g. "4.4.4.4/32". */
  route: string | undefined;
}

const SAFE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** The command for a flow; undefined when a field could smuggle words into the CLI line. */
export function routingHashCommand(q: HashQuery): string | undefined {
  if (!IPV4.test(q.src) || !IPV4.test(q.dst)) return undefined;
  const port = (p: number | undefined) => p === undefined || (Number.isInteger(p) && p >= 0 && p <= 65535);
  if (q.proto !== undefined && !(Number.isInteger(q.proto) && q.proto >= 0 && q.proto <= 255)) return undefined;
  if (!port(q.sport) || !port(q.dport) || (q.sport === undefined) !== (q.dport === undefined)) return undefined;
  if (q.vrf !== undefined && !SAFE.test(q.vrf)) return undefined;
  let c = `show routing hash ${q.src} ${q.dst}`;
  if (q.proto !== undefined) c += ` ip-proto ${q.proto}`;
  if (q.sport !== undefined && q.dport !== undefined) c += ` ${q.sport} ${q.dport}`;
  if (q.vrf !== undefined && q.vrf !== "default") c += ` vrf ${q.vrf}`;
  return c;
}

export function parseRoutingHash(text: string): Parsed<RoutingHash> {
  const all = lines(text);
  const find = (re: RegExp) => {
    for (const l of all) {
      const m = re.exec(l);
      if (m) return m;
    }
    return undefined;
  };
  const vrf = find(/Hash for VRF\s+"?([^"\s]+)"?/)?.[1];
  if (!vrf) return { ok: false, code: "no-hash", message: `no 'Hash for VRF' line: ${firstLine(text)}` };
  const hashing = find(/Hashing to path\s+\*?(\S+?),?(?:\s+\(([^)]+)\))?\s*(?:,.*)?$/);
  if (!hashing) return { ok: false, code: "no-path", message: `no 'Hashing to path' line: ${firstLine(text)}` };
  const path = hashing[1]!.replace(/^\*/, "");
  const nextHop = IPV4.test(path) ? path : undefined;
  const loadShareMode = find(/load-share mode:\s*(.+?)\s*$/)?.[1];
  const routeLine = find(/^\s*(\d+\.\d+\.\d+\.\d+\/\d+),\s*ubest/);
  let outInterface = find(/Out Interface:\s*(.+?)\s*$/)?.[1];
  if (outInterface === undefined && hashing[2] && !/hash/i.test(hashing[2])) outInterface = hashing[2].trim();
  if (outInterface === undefined && nextHop) {
    const via = find(new RegExp(`^\\s*\\*via ${nextHop.replace(/\./g, "\\.")}, ([^,\\s]+)`));
    outInterface = via?.[1];
  }
  const local = !nextHop || /\blocal\b/.test(outInterface ?? "");
  return { ok: true, value: { vrf, loadShareMode, path, nextHop, outInterface, local, route: routeLine?.[1] } };
}
