// ICMP (RFC 792) and ICMPv6 (RFC 4443) type/code and, for echo request/reply, identifier and
// sequence. Error messages' quoted headers are treated as payload, not decoded.

export interface IcmpHeader {
  protocol: "icmp" | "icmpv6";
  type: number;
  code: number;
  /** Echo request/reply only. */
  id?: number;
  seq?: number;
}

export type IcmpResult = { ok: true; header: IcmpHeader; payloadOffset: number } | { ok: false; code: "truncated"; offset: number };

function isEcho(h: IcmpHeader): boolean {
  return h.protocol === "icmp" ? h.type === 8 || h.type === 0 : h.type === 128 || h.type === 129;
}

export function decodeIcmp(b: Buffer, at: number, end: number, v6: boolean): IcmpResult {
  if (end < at + 4) return { ok: false, code: "truncated", offset: at };
  const header: IcmpHeader = { protocol: v6 ? "icmpv6" : "icmp", type: b[at]!, code: b[at + 1]! };
  if (isEcho(header)) {
    if (end < at + 8) return { ok: false, code: "truncated", offset: at };
    header.id = b.readUInt16BE(at + 4);
    header.seq = b.readUInt16BE(at + 6);
    return { ok: true, header, payloadOffset: at + 8 };
  }
  // The 4 "rest of header" bytes (MTU, pointer, unused) stay in the payload hash.
  return { ok: true, header, payloadOffset: at + 4 };
}
