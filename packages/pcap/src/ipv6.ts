// IPv6 header (RFC 8200) and its extension-header chain (hop-by-hop, routing, fragment,
// destination options, AH) up to the upper-layer protocol. Not handled: jumbograms beyond the
// captured length, ESP contents, Mobility and HIP headers (the chain stops there).

export interface Ipv6Header {
  version: 6;
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
  hopLimit: number;
  /** Upper-layer protocol after the extension headers (or the header where the chain stopped). */
  protocol: number;
  src: string;
  dst: string;
  /** Set when a Fragment header is present. */
  fragment?: { id: number; offset: number; moreFragments: boolean };
}

export type Ipv6Result =
  | { ok: true; header: Ipv6Header; payloadOffset: number; payloadEnd: number; wireLength: number }
  | { ok: false; code: "truncated" | "bad-version"; offset: number };

/** RFC 5952 text form from eight hex groups. */
function compressIpv6(groups: string[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLen).join(":")}`;
}

export function ipv6String(b: Buffer, at: number): string {
  const g: string[] = new Array<string>(8);
  for (let i = 0; i < 8; i++) g[i] = b.readUInt16BE(at + i * 2).toString(16);
  return compressIpv6(g);
}

/** The 16 bytes of an IPv6 address in text form (full or with one "::"). */
export function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.includes("::") ? a.split("::") : [a, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/** Decode the IPv6 header at `at` and walk its extension headers. Never throws. */
export function decodeIpv6(b: Buffer, at: number): Ipv6Result {
  if (b.length < at + 40) return { ok: false, code: "truncated", offset: at };
  const w = b.readUInt32BE(at);
  if (w >>> 28 !== 6) return { ok: false, code: "bad-version", offset: at };
  let plen = b.readUInt16BE(at + 4);
  if (plen === 0) plen = b.length - at - 40; // jumbogram or TSO: only what was captured
  const end = Math.min(b.length, at + 40 + plen);
  const header: Ipv6Header = {
    version: 6,
    trafficClass: (w >>> 20) & 0xff,
    flowLabel: w & 0xfffff,
    payloadLength: plen,
    hopLimit: b[at + 7]!,
    protocol: b[at + 6]!,
    src: ipv6String(b, at + 8),
    dst: ipv6String(b, at + 24),
  };
  let next = header.protocol;
  let p = at + 40;
  for (let guard = 0; guard < 16; guard++) {
    if (next === 0 || next === 43 || next === 60) {
      if (p + 8 > end) return { ok: false, code: "truncated", offset: p };
      next = b[p]!;
      p += (b[p + 1]! + 1) * 8;
    } else if (next === 44) {
      if (p + 8 > end) return { ok: false, code: "truncated", offset: p };
      const fo = b.readUInt16BE(p + 2);
      header.fragment = { id: b.readUInt32BE(p + 4), offset: fo & 0xfff8, moreFragments: (fo & 1) !== 0 };
      next = b[p]!;
      p += 8;
      if (header.fragment.offset !== 0) break; // later fragments carry no upper-layer header
    } else if (next === 51) {
      if (p + 8 > end) return { ok: false, code: "truncated", offset: p };
      next = b[p]!;
      p += (b[p + 1]! + 2) * 4;
    } else break;
  }
  if (p > end) return { ok: false, code: "truncated", offset: p };
  header.protocol = next;
  return { ok: true, header, payloadOffset: p, payloadEnd: end, wireLength: at + 40 + plen - p };
}
