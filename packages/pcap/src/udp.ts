// UDP header (RFC 768): ports and length. The checksum is not verified.

export interface UdpHeader {
  protocol: "udp";
  srcPort: number;
  dstPort: number;
  length: number;
}

export type UdpResult = { ok: true; header: UdpHeader; payloadOffset: number } | { ok: false; code: "truncated" | "bad-length"; offset: number };

export function decodeUdp(b: Buffer, at: number, end: number): UdpResult {
  if (end < at + 8) return { ok: false, code: "truncated", offset: at };
  const length = b.readUInt16BE(at + 4);
  // 0 is legal for IPv6 jumbograms; anything else below the header size is not.
  if (length !== 0 && length < 8) return { ok: false, code: "bad-length", offset: at + 4 };
  return { ok: true, header: { protocol: "udp", srcPort: b.readUInt16BE(at), dstPort: b.readUInt16BE(at + 2), length }, payloadOffset: at + 8 };
}
