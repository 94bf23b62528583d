// TCP header (RFC 9293): ports, sequence and acknowledgment numbers, data offset, flags.
// Options are skipped; the checksum is not verified (offload makes it wrong on the sender).

export interface TcpHeader {
  protocol: "tcp";
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  headerLength: number;
  /** FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80. */
  flags: number;
  window: number;
}

export type TcpResult =
  | { ok: true; header: TcpHeader; payloadOffset: number }
  | { ok: false; code: "truncated" | "bad-header-length"; offset: number };

export function decodeTcp(b: Buffer, at: number, end: number): TcpResult {
  if (end < at + 20) return { ok: false, code: "truncated", offset: at };
  const hl = (b[at + 12]! >> 4) * 4;
  if (hl < 20) return { ok: false, code: "bad-header-length", offset: at + 12 };
  if (end < at + hl) return { ok: false, code: "truncated", offset: at };
  return {
    ok: true,
    header: {
      protocol: "tcp",
      srcPort: b.readUInt16BE(at),
      dstPort: b.readUInt16BE(at + 2),
      seq: b.readUInt32BE(at + 4),
      ack: b.readUInt32BE(at + 8),
      headerLength: hl,
      flags: b.readUInt16BE(at + 12) & 0x1ff,
      window: b.readUInt16BE(at + 14),
    },
    payloadOffset: at + hl,
  };
}

const FLAG_NAMES: [number, string][] = [
  [0x02, "S"],
  [0x01, "F"],
  [0x04, "R"],
  [0x08, "P"],
  [0x10, "."],
];

/** tcpdump-style flag string: [S], [S.], [P.], [F.], [R]. */
export function tcpFlagString(flags: number): string {
  return `[${FLAG_NAMES.filter(([bit]) => flags & bit)
    .map(([, n]) => n)
    .join("")}]`;
}
