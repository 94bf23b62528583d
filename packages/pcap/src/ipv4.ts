// IPv4 header (RFC 791) as far as a flow key and packet identity need: addresses, id, fragment
// fields, TTL, protocol, lengths. Options are skipped, not parsed; checksums are not verified.

export interface Ipv4Header {
  version: 4;
  headerLength: number;
  tos: number;
  totalLength: number;
  id: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** Fragment offset in bytes. */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  src: string;
  dst: string;
}

export type Ipv4Result =
  | { ok: true; header: Ipv4Header; payloadOffset: number; payloadEnd: number; wireLength: number }
  | { ok: false; code: "truncated" | "bad-version" | "bad-header-length" | "bad-total-length"; offset: number };

export function ipv4String(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** Decode the IPv4 header at `at`. `payloadEnd` excludes link padding and snaplen cut. Never throws. */
export function decodeIpv4(b: Buffer, at: number): Ipv4Result {
  if (b.length < at + 20) return { ok: false, code: "truncated", offset: at };
  const v = b[at]!;
  if (v >> 4 !== 4) return { ok: false, code: "bad-version", offset: at };
  const ihl = (v & 0x0f) * 4;
  if (ihl < 20) return { ok: false, code: "bad-header-length", offset: at };
  if (b.length < at + ihl) return { ok: false, code: "truncated", offset: at };
  let total = b.readUInt16BE(at + 2);
  // 0 = TSO/"big TCP" segment captured before segmentation: the length is only what was captured.
  if (total === 0) total = b.length - at;
  if (total < ihl) return { ok: false, code: "bad-total-length", offset: at + 2 };
  const frag = b.readUInt16BE(at + 6);
  const header: Ipv4Header = {
    version: 4,
    headerLength: ihl,
    tos: b[at + 1]!,
    totalLength: total,
    id: b.readUInt16BE(at + 4),
    dontFragment: (frag & 0x4000) !== 0,
    moreFragments: (frag & 0x2000) !== 0,
    fragmentOffset: (frag & 0x1fff) * 8,
    ttl: b[at + 8]!,
    protocol: b[at + 9]!,
    src: ipv4String(b, at + 12),
    dst: ipv4String(b, at + 16),
  };
  return { ok: true, header, payloadOffset: at + ihl, payloadEnd: Math.min(b.length, at + total), wireLength: total - ihl };
}
