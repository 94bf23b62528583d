// The traced flow crossing an emulated router (`transit` option): one-way packets of one 5-tuple on
// the router's out interface, on a wall-clock schedule every router of a lab shares — packet `seq`
// is due at seq / packetsPerSecond since the epoch, plus the router's own delay — so the captures of
// consecutive routers hold the same packets and a loss report can compare them hop by hop.
import { ethernetFrame, ipPacket, withIpv4UdpChecksums } from "@capsync/pcap";

/** One-way packets of a 5-tuple on a wall-clock schedule shared by every router that carries it. */
export interface IosXeTransit {
  /** The out interface the flow leaves on (full name). */
  interface: string;
  src: string;
  dst: string;
  protocol: "udp" | "tcp";
  sport: number;
  dport: number;
  /** Default 20. */
  packetsPerSecond?: number;
  /** This router forwards each packet this long after the schedule (default 0). */
  delayMicros?: number;
  /** 0..1: the share of packets that never reach this router; the same packets at every router with the same ratio. */
  lossRatio?: number;
}

/** What the EPC reads from a packet source (the synthetic flows and this one). */
export interface EpcSource {
  packetsDue(elapsedMicros: bigint): number;
  timestamp(startMicros: bigint, seq: number): bigint;
  frame(seq: number): Buffer;
  /** First sequence number of a window starting at `startMicros`; absent: every window starts at 0. */
  firstSeq?(startMicros: bigint): number;
  /** One past the last sequence number due before `endMicros`; absent: packetsDue of the window. */
  endSeq?(endMicros: bigint): number;
  /** Whether packet `seq` leaves the router; absent: the even ones. */
  outbound?(seq: number): boolean;
  /** Whether packet `seq` reaches the router at all; absent: every one. */
  present?(seq: number): boolean;
}

const ceilDiv = (a: bigint, b: bigint): bigint => (a <= 0n ? a / b : (a + b - 1n) / b);

export class TransitFlowSource implements EpcSource {
  private readonly pps: bigint;
  private readonly delay: bigint;
  private readonly loss: number;
  constructor(private readonly t: IosXeTransit) {
    const pps = t.packetsPerSecond ?? 20;
    if (!Number.isInteger(pps) || pps < 1 || pps > 10_000) throw new RangeError("transit.packetsPerSecond: expected an integer 1..10000");
    if (t.lossRatio !== undefined && !(t.lossRatio >= 0 && t.lossRatio <= 1)) throw new RangeError("transit.lossRatio: expected 0..1");
    this.pps = BigInt(pps);
    this.delay = BigInt(t.delayMicros ?? 0);
    this.loss = t.lossRatio ?? 0;
  }

  firstSeq(startMicros: bigint): number {
    return Number(ceilDiv((startMicros - this.delay) * this.pps, 1_000_000n));
  }

  endSeq(endMicros: bigint): number {
    return Number(ceilDiv((endMicros - this.delay) * this.pps, 1_000_000n));
  }

  packetsDue(elapsedMicros: bigint): number {
    return Number(ceilDiv(elapsedMicros * this.pps, 1_000_000n));
  }

  timestamp(_startMicros: bigint, seq: number): bigint {
    return (BigInt(seq) * 1_000_000n) / this.pps + this.delay;
  }

  outbound(): boolean {
    return true;
  }

  /** Lost packets are the same ones at every router with the same ratio (a multiplicative hash of seq). */
  present(seq: number): boolean {
    return this.loss === 0 || Math.imul(seq >>> 0, 0x9e3779b1) >>> 0 >= this.loss * 2 ** 32;
  }

  /** The payload names the flow and the packet, so the same packet is the same bytes at every router. */
  frame(seq: number): Buffer {
    const { src, dst, protocol, sport, dport } = this.t;
    const payload = Buffer.from(`capsync-transit ${src}:${sport}>${dst}:${dport} seq=${seq}\n`.padEnd(64, "."));
    const ip = ipPacket({ protocol, src, dst, srcPort: sport, dstPort: dport, payload, ipId: seq & 0xffff, ...(protocol === "tcp" ? { seq: (seq * 64) >>> 0, ack: 1 } : {}) });
    const mac = (a: string) => Buffer.from([0x02, 0x00, ...a.split(".").map(Number)]);
    return ethernetFrame(protocol === "udp" ? withIpv4UdpChecksums(ip) : ip, { src: mac(src), dst: mac(dst) });
  }
}
