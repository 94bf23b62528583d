// IOS-XE EPC `match` filters (the inline ACL of `monitor capture ... match`): parsing
// `any | ipv4|ipv6 [protocol P] SRC [port-op] DST [port-op]` and matching a frame's IPv4 5-tuple.
// Not handled: mac filters, named access-lists and class-maps, IPv6 frames (the flow is IPv4).
import { parsePrefix } from "@capsync/protocol";

export type PortOp = { op: "eq" | "gt" | "lt" | "neq"; port: number } | { op: "range"; lo: number; hi: number };
export interface Net {
  family: 4 | 6;
  bytes: number[];
  length: number;
}
export type Match = { kind: "any" } | { kind: "ip"; family: 4 | 6; proto: number | undefined; src: Net | null; sport?: PortOp; dst: Net | null; dport?: PortOp };

const PROTOCOL_NAMES: Record<string, number> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ahp: 51, ospf: 89, pim: 103, sctp: 132 };

function ipBytes(text: string, family: 4 | 6): number[] {
  if (family === 4) return text.split(".").map(Number);
  // parsePrefix canonicalised the text; expand "::".
  const [h, t] = text.includes("::") ? text.split("::") : [text, undefined];
  const head = h ? h.split(":") : [];
  const tail = t ? t.split(":") : [];
  const groups = t === undefined ? head : [...head, ...Array<string>(8 - head.length - tail.length).fill("0"), ...tail];
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}

function netContains(net: Net | null, family: 4 | 6, addr: number[]): boolean {
  if (!net) return true;
  if (net.family !== family) return false;
  for (let bit = 0; bit < net.length; bit++) {
    const m = 0x80 >> (bit & 7);
    if ((net.bytes[bit >> 3]! & m) !== (addr[bit >> 3]! & m)) return false;
  }
  return true;
}

function portMatches(op: PortOp | undefined, port: number | undefined): boolean {
  if (!op) return true;
  if (port === undefined) return false;
  switch (op.op) {
    case "eq":
      return port === op.port;
    case "neq":
      return port !== op.port;
    case "gt":
      return port > op.port;
    case "lt":
      return port < op.port;
    case "range":
      return port >= op.lo && port <= op.hi;
  }
}

interface Tuple {
  family: 4 | 6;
  src: number[];
  dst: number[];
  proto: number;
  sport?: number;
  dport?: number;
}

/** IPv4 5-tuple of an Ethernet II frame; undefined for anything else (bounds-checked). */
function frameTuple(frame: Buffer): Tuple | undefined {
  if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800) return undefined;
  const ip = frame.subarray(14);
  const ihl = (ip[0]! & 0x0f) * 4;
  if (ip[0]! >> 4 !== 4 || ihl < 20 || ip.length < ihl) return undefined;
  const proto = ip[9]!;
  const t: Tuple = { family: 4, src: [...ip.subarray(12, 16)], dst: [...ip.subarray(16, 20)], proto };
  if ((proto === 6 || proto === 17) && ip.length >= ihl + 4) {
    t.sport = ip.readUInt16BE(ihl);
    t.dport = ip.readUInt16BE(ihl + 2);
  }
  return t;
}

export function matchFrame(m: Match, frame: Buffer): boolean {
  if (m.kind === "any") return true;
  const t = frameTuple(frame);
  if (!t || t.family !== m.family) return false;
  if (m.proto !== undefined && t.proto !== m.proto) return false;
  return netContains(m.src, t.family, t.src) && netContains(m.dst, t.family, t.dst) && portMatches(m.sport, t.sport) && portMatches(m.dport, t.dport);
}

export type Parsed<T> = { ok: true; value: T; next: number } | { ok: false; at: number; message: string };

function parsePort(words: string[], i: number): Parsed<PortOp | undefined> {
  const op = words[i];
  if (op !== "eq" && op !== "gt" && op !== "lt" && op !== "neq" && op !== "range") return { ok: true, value: undefined, next: i };
  const num = (w: string | undefined) => (w !== undefined && /^\d{1,5}$/.test(w) && Number(w) <= 65535 ? Number(w) : undefined);
  if (op === "range") {
    const lo = num(words[i + 1]);
    const hi = num(words[i + 2]);
    if (lo === undefined) return { ok: false, at: i + 1, message: "expected a port number 0..65535" };
    if (hi === undefined || hi < lo) return { ok: false, at: i + 2, message: "expected the upper port of the range" };
    return { ok: true, value: { op, lo, hi }, next: i + 3 };
  }
  const port = num(words[i + 1]);
  if (port === undefined) return { ok: false, at: i + 1, message: "expected a port number 0..65535" };
  return { ok: true, value: { op, port }, next: i + 2 };
}

function parseEndpoint(words: string[], i: number, family: 4 | 6): Parsed<Net | null> {
  const w = words[i];
  if (w === "any") return { ok: true, value: null, next: i + 1 };
  const toNet = (text: string | undefined, mustBeHost: boolean, at: number): Parsed<Net | null> => {
    const p = text === undefined ? undefined : parsePrefix(text);
    if (!p || "error" in p || p.family !== family || (mustBeHost && !p.host) || (!mustBeHost && !text!.includes("/"))) {
      return { ok: false, at, message: `expected ${mustBeHost ? "a host address" : `any, host or a prefix (${family === 4 ? "A.B.C.D/nn" : "X:X:X:X::X/<0-128>"})`}` };
    }
    return { ok: true, value: { family, bytes: ipBytes(p.address, family), length: p.length }, next: at + 1 };
  };
  if (w === "host") return toNet(words[i + 1], true, i + 1);
  return toNet(w, false, i);
}

/** `any` | `ipv4|ipv6 [protocol P] SRC [port-op] DST [port-op]`, starting at words[i]. */
export function parseMatch(words: string[], i: number): Parsed<{ match: Match; text: string }> {
  const start = i;
  const w = words[i];
  if (w === "any") return { ok: true, value: { match: { kind: "any" }, text: "any" }, next: i + 1 };
  if (w !== "ipv4" && w !== "ipv6") return { ok: false, at: i, message: "expected any, ipv4 or ipv6 (mac filters are not emulated)" };
  const family = w === "ipv4" ? 4 : 6;
  i++;
  let proto: number | undefined;
  if (words[i] === "protocol") {
    const p = words[i + 1] ?? "";
    const n = /^\d{1,3}$/.test(p) && Number(p) <= 255 ? Number(p) : PROTOCOL_NAMES[p];
    if (n === undefined) return { ok: false, at: i + 1, message: "expected a protocol name or number 0..255" };
    proto = n;
    i += 2;
  }
  const portsAllowed = proto === 6 || proto === 17;
  /** One side of the filter: `any | host A | prefix`, then a port operator where the protocol has ports. */
  const side = (at: number): Parsed<{ net: Net | null; port: PortOp | undefined }> => {
    const ep = parseEndpoint(words, at, family);
    if (!ep.ok) return ep;
    const port = portsAllowed ? parsePort(words, ep.next) : ({ ok: true, value: undefined, next: ep.next } as const);
    if (!port.ok) return port;
    return { ok: true, value: { net: ep.value, port: port.value }, next: port.next };
  };
  const src = side(i);
  if (!src.ok) return src;
  const dst = side(src.next);
  if (!dst.ok) return dst;
  i = dst.next;
  const match: Match = { kind: "ip", family, proto, src: src.value.net, dst: dst.value.net };
  if (src.value.port) match.sport = src.value.port;
  if (dst.value.port) match.dport = dst.value.port;
  return { ok: true, value: { match, text: words.slice(start, i).join(" ") }, next: i };
}

