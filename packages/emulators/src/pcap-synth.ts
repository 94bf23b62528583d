// Classic libpcap savefile writer (pcap-savefile(5): microsecond timestamps, LINKTYPE_ETHERNET)
// for Ethernet II / IPv4 (RFC 791) / UDP (RFC 768) frames. Not pcapng, IPv6, IP options or fragments:
// it only feeds emulators and tests; the real reader/writer lives in packages/pcap.
import { isIPv4 } from "node:net";

/** First four bytes of a little-endian microsecond pcap file (magic 0xa1b2c3d4 written LE). */
export const PCAP_MAGIC_LE = Buffer.from([0xd4, 0xc3, 0xb2, 0xa1]);
export const LINKTYPE_ETHERNET = 1;

export function pcapGlobalHeader(opts: { snaplen?: number; linktype?: number } = {}): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(0xa1b2c3d4, 0);
  b.writeUInt16LE(2, 4); // version 2.4
  b.writeUInt16LE(4, 6);
  b.writeInt32LE(0, 8); // thiszone
  b.writeUInt32LE(0, 12); // sigfigs
  b.writeUInt32LE(opts.snaplen ?? 262144, 16);
  b.writeUInt32LE(opts.linktype ?? LINKTYPE_ETHERNET, 20);
  return b;
}

/** One record: 16-byte header + frame. `tsMicros` is microseconds since the Unix epoch. */
export function pcapRecord(tsMicros: bigint, frame: Buffer): Buffer {
  const b = Buffer.alloc(16 + frame.length);
  b.writeUInt32LE(Number(tsMicros / 1_000_000n), 0);
  b.writeUInt32LE(Number(tsMicros % 1_000_000n), 4);
  b.writeUInt32LE(frame.length, 8);
  b.writeUInt32LE(frame.length, 12);
  frame.copy(b, 16);
  return b;
}

/** RFC 1071 one's-complement sum, folded and inverted. */
export function internetChecksum(...parts: Buffer[]): number {
  let sum = 0;
  for (const buf of parts) {
    // Every part but the last has even length here (headers), so pairing across parts is safe.
    for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
    if (buf.length % 2 === 1) sum += (buf[buf.length - 1] ?? 0) << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipv4Bytes(ip: string): Buffer {
  if (!isIPv4(ip)) throw new TypeError(`not an IPv4 address: ${ip}`);
  return Buffer.from(ip.split(".").map(Number));
}

/** Locally administered MAC derived from an IPv4 address: 02:00:a:b:c:d. */
export function macFor(ip: string): Buffer {
  return Buffer.concat([Buffer.from([0x02, 0x00]), ipv4Bytes(ip)]);
}

export interface UdpFrame {
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
  ipId?: number;
  ttl?: number;
  srcMac?: Buffer;
  dstMac?: Buffer;
}

/** Ethernet II + IPv4 (no options, DF) + UDP with valid IP and UDP checksums. */
export function ethernetIpv4Udp(f: UdpFrame): Buffer {
  const src = ipv4Bytes(f.srcIp);
  const dst = ipv4Bytes(f.dstIp);
  const udpLen = 8 + f.payload.length;
  const ipLen = 20 + udpLen;
  const frame = Buffer.alloc(14 + ipLen);
  (f.dstMac ?? macFor(f.dstIp)).copy(frame, 0);
  (f.srcMac ?? macFor(f.srcIp)).copy(frame, 6);
  frame.writeUInt16BE(0x0800, 12);
  const ip = frame.subarray(14, 34);
  ip[0] = 0x45;
  ip.writeUInt16BE(ipLen, 2);
  ip.writeUInt16BE((f.ipId ?? 0) & 0xffff, 4);
  ip.writeUInt16BE(0x4000, 6); // DF
  ip[8] = f.ttl ?? 64;
  ip[9] = 17;
  src.copy(ip, 12);
  dst.copy(ip, 16);
  ip.writeUInt16BE(internetChecksum(ip), 10);
  const udp = frame.subarray(34);
  udp.writeUInt16BE(f.srcPort, 0);
  udp.writeUInt16BE(f.dstPort, 2);
  udp.writeUInt16BE(udpLen, 4);
  f.payload.copy(udp, 8);
  const pseudo = Buffer.alloc(12);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 4);
  pseudo[9] = 17;
  pseudo.writeUInt16BE(udpLen, 10);
  const sum = internetChecksum(pseudo, udp);
  udp.writeUInt16BE(sum === 0 ? 0xffff : sum, 6); // RFC 768: a computed zero is sent as all ones
  return frame;
}

export interface SyntheticSourceOptions {
  /** The emulated device's IPv4 address. */
  device: string;
  /** The other end of the synthetic flow (default 192.0.2.1, TEST-NET-1: never routed). */
  peer?: string;
  packetsPerSecond: number;
  devicePort?: number;
  peerPort?: number;
  /** UDP payload length (at least the text header; default 64). */
  payloadBytes?: number;
}

/**
 * Deterministic packet stream: packet `seq` depends only on the options and `seq`, and is stamped
 * `start + seq / packetsPerSecond`. Even packets go device → peer, odd ones peer → device; the
 * payload names both ends and the sequence number so captures of the two sides can be matched.
 */
export class SyntheticPacketSource {
  readonly device: string;
  readonly peer: string;
  readonly packetsPerSecond: number;
  private readonly devicePort: number;
  private readonly peerPort: number;
  private readonly payloadBytes: number;

  constructor(opts: SyntheticSourceOptions) {
    if (!(opts.packetsPerSecond > 0)) throw new RangeError("packetsPerSecond must be > 0");
    this.device = opts.device;
    this.peer = opts.peer ?? "192.0.2.1";
    ipv4Bytes(this.device);
    ipv4Bytes(this.peer);
    this.packetsPerSecond = opts.packetsPerSecond;
    this.devicePort = opts.devicePort ?? 5060;
    this.peerPort = opts.peerPort ?? 5060;
    this.payloadBytes = Math.max(opts.payloadBytes ?? 64, 0);
  }

  payload(seq: number): Buffer {
    const out = seq % 2 === 0;
    const text = Buffer.from(`capsync-synthetic ${out ? this.device : this.peer}>${out ? this.peer : this.device} seq=${seq}\n`);
    if (text.length >= this.payloadBytes) return text;
    const pad = Buffer.alloc(this.payloadBytes - text.length);
    for (let i = 0; i < pad.length; i++) pad[i] = (seq + i) & 0xff;
    return Buffer.concat([text, pad]);
  }

  frame(seq: number): Buffer {
    const out = seq % 2 === 0;
    return ethernetIpv4Udp({
      srcIp: out ? this.device : this.peer,
      dstIp: out ? this.peer : this.device,
      srcPort: out ? this.devicePort : this.peerPort,
      dstPort: out ? this.peerPort : this.devicePort,
      payload: this.payload(seq),
      ipId: seq,
    });
  }

  /** Timestamp of packet `seq` for a capture started at `startMicros`. */
  timestamp(startMicros: bigint, seq: number): bigint {
    return startMicros + BigInt(Math.floor((seq * 1_000_000) / this.packetsPerSecond));
  }

  /** Number of packets whose timestamp is < `elapsedMicros` after the start. */
  packetsDue(elapsedMicros: bigint): number {
    if (elapsedMicros <= 0n) return 0;
    return Math.ceil((Number(elapsedMicros) * this.packetsPerSecond) / 1_000_000);
  }

  /** pcap records for packets `from` ≤ seq < `to`. */
  records(startMicros: bigint, from: number, to: number): Buffer {
    const parts: Buffer[] = [];
    for (let seq = from; seq < to; seq++) parts.push(pcapRecord(this.timestamp(startMicros, seq), this.frame(seq)));
    return Buffer.concat(parts);
  }
}

/** A whole pcap file of `count` synthetic packets (convenience for tests and fixtures). */
export function synthesizePcap(opts: SyntheticSourceOptions & { startMicros: bigint; count: number }): Buffer {
  const src = new SyntheticPacketSource(opts);
  return Buffer.concat([pcapGlobalHeader(), src.records(opts.startMicros, 0, opts.count)]);
}
