// The synthetic UDP flow an emulated device "captures": Ethernet II / IPv4 / UDP frames with valid
// checksums, built with @capsync/pcap's frame builders; optionally every other pair of packets TCP.
// IPv4 only (an emulator's flow needs no more).
import { isIPv4 } from "node:net";
import { encodePcapRecord, ethernetFrame, ipPacket, withIpv4TcpChecksum, withIpv4UdpChecksums } from "@capsync/pcap";

/** Locally administered MAC derived from an IPv4 address: 02:00:a:b:c:d. */
function macFor(ip: string): Buffer {
  return Buffer.from([0x02, 0x00, ...ip.split(".").map(Number)]);
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
  /** Packets 2-3 of every 4 are TCP (PSH|ACK, same ports) instead of UDP, so `proto tcp` filters find some. */
  tcp?: boolean;
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
  private readonly tcp: boolean;

  constructor(opts: SyntheticSourceOptions) {
    if (!(opts.packetsPerSecond > 0)) throw new RangeError("packetsPerSecond must be > 0");
    this.device = opts.device;
    this.peer = opts.peer ?? "192.0.2.1";
    for (const ip of [this.device, this.peer]) if (!isIPv4(ip)) throw new TypeError(`not an IPv4 address: ${ip}`);
    this.packetsPerSecond = opts.packetsPerSecond;
    this.devicePort = opts.devicePort ?? 5060;
    this.peerPort = opts.peerPort ?? 5060;
    this.payloadBytes = Math.max(opts.payloadBytes ?? 64, 0);
    this.tcp = opts.tcp ?? false;
  }

  payload(seq: number): Buffer {
    const out = seq % 2 === 0;
    const text = Buffer.from(`capsync-synthetic ${out ? this.device : this.peer}>${out ? this.peer : this.device} seq=${seq}\n`);
    if (text.length >= this.payloadBytes) return text;
    const pad = Buffer.alloc(this.payloadBytes - text.length);
    for (let i = 0; i < pad.length; i++) pad[i] = (seq + i) & 0xff;
    return Buffer.concat([text, pad]);
  }

  /** Ethernet II + IPv4 (no options, DF, TTL 64, id = seq) + UDP (or TCP), with valid checksums. */
  frame(seq: number): Buffer {
    const out = seq % 2 === 0;
    const [src, dst] = out ? [this.device, this.peer] : [this.peer, this.device];
    const payload = this.payload(seq);
    const tcp = this.tcp && Math.floor(seq / 2) % 2 === 1;
    const ip = ipPacket({
      protocol: tcp ? "tcp" : "udp",
      src,
      dst,
      srcPort: out ? this.devicePort : this.peerPort,
      dstPort: out ? this.peerPort : this.devicePort,
      payload,
      ipId: seq,
      // Sequence numbers that only grow: no TCP connection is modelled, only its segments.
      ...(tcp ? { seq: (1000 + seq * payload.length) >>> 0, ack: (1000 + (seq + 1) * payload.length) >>> 0 } : {}),
    });
    // The payload's text alone makes every frame longer than Ethernet's 60-byte minimum: no padding.
    const checked = withIpv4UdpChecksums(ip);
    return ethernetFrame(tcp ? withIpv4TcpChecksum(checked) : checked, { src: macFor(src), dst: macFor(dst) });
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

  /** Classic pcap records (microsecond timestamps) for packets `from` ≤ seq < `to`. */
  records(startMicros: bigint, from: number, to: number): Buffer {
    const parts: Buffer[] = [];
    for (let seq = from; seq < to; seq++) parts.push(encodePcapRecord(this.timestamp(startMicros, seq) * 1000n, this.frame(seq)));
    return Buffer.concat(parts);
  }
}
