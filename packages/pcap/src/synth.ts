// Frame builders for tests, fixtures and benchmarks: Ethernet II / Linux SLL2 around IPv4 or IPv6
// with TCP, UDP or ICMP echo. Checksums are left zero (the reader never checks them); emulators
// that serve frames to other tools fill them with withIpv4UdpChecksums and withIpv4TcpChecksum.
import { isIPv4 } from "node:net";
import { join } from "node:path";
import { ipv6Bytes } from "./ipv6.js";
import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2 } from "./linktypes.js";
import { PcapngWriter } from "./pcapng-writer.js";

export interface L4Spec {
  protocol: "tcp" | "udp" | "icmp";
  srcPort?: number;
  dstPort?: number;
  seq?: number;
  ack?: number;
  /** TCP flags byte (default 0x18, PSH|ACK). */
  flags?: number;
  /** ICMP echo id/seq. */
  id?: number;
  payload?: Uint8Array;
}

export interface IpSpec extends L4Spec {
  src: string;
  dst: string;
  ipId?: number;
  ttl?: number;
}

function v4(a: string): Buffer {
  return Buffer.from(a.split(".").map(Number));
}

/** Transport header + payload. */
function l4Bytes(s: L4Spec, v6: boolean): Buffer {
  const payload = Buffer.from(s.payload ?? new Uint8Array(0));
  if (s.protocol === "tcp") {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(s.srcPort ?? 0, 0);
    h.writeUInt16BE(s.dstPort ?? 0, 2);
    h.writeUInt32BE((s.seq ?? 0) >>> 0, 4);
    h.writeUInt32BE((s.ack ?? 0) >>> 0, 8);
    h[12] = 5 << 4;
    h[13] = s.flags ?? 0x18;
    h.writeUInt16BE(65535, 14);
    return Buffer.concat([h, payload]);
  }
  if (s.protocol === "udp") {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(s.srcPort ?? 0, 0);
    h.writeUInt16BE(s.dstPort ?? 0, 2);
    h.writeUInt16BE(8 + payload.length, 4);
    return Buffer.concat([h, payload]);
  }
  const h = Buffer.alloc(8);
  h[0] = v6 ? 128 : 8; // echo request
  h.writeUInt16BE(s.id ?? 0, 4);
  h.writeUInt16BE(s.seq ?? 0, 6);
  return Buffer.concat([h, payload]);
}

/** An IPv4 or IPv6 packet (by the address family of `src`). */
export function ipPacket(s: IpSpec): Buffer {
  const isV4 = isIPv4(s.src);
  const l4 = l4Bytes(s, !isV4);
  const proto = s.protocol === "tcp" ? 6 : s.protocol === "udp" ? 17 : isV4 ? 1 : 58;
  if (isV4) {
    const h = Buffer.alloc(20);
    h[0] = 0x45;
    h.writeUInt16BE(20 + l4.length, 2);
    h.writeUInt16BE((s.ipId ?? 0) & 0xffff, 4);
    h.writeUInt16BE(0x4000, 6); // DF
    h[8] = s.ttl ?? 64;
    h[9] = proto;
    v4(s.src).copy(h, 12);
    v4(s.dst).copy(h, 16);
    return Buffer.concat([h, l4]);
  }
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(l4.length, 4);
  h[6] = proto;
  h[7] = s.ttl ?? 64;
  ipv6Bytes(s.src).copy(h, 8);
  ipv6Bytes(s.dst).copy(h, 24);
  return Buffer.concat([h, l4]);
}

/** RFC 1071 one's-complement sum of `parts`, folded and inverted (all parts but the last of even length). */
export function internetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  for (const b of parts) {
    for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
    if (b.length % 2 === 1) sum += b[b.length - 1]! << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Fills in the header checksum of an IPv4 packet from ipPacket (no options) and, for UDP, the UDP
 * checksum over the RFC 768 pseudo-header (a computed zero is sent as all ones). Device emulators
 * serve such packets, where a capture tool would show a zero checksum as bad.
 */
export function withIpv4UdpChecksums(ip: Buffer): Buffer {
  ip.writeUInt16BE(0, 10);
  ip.writeUInt16BE(internetChecksum(ip.subarray(0, 20)), 10);
  if (ip[9] !== 17) return ip;
  const sum = transportChecksum(ip, 6);
  ip.writeUInt16BE(sum === 0 ? 0xffff : sum, 20 + 6);
  return ip;
}

/** Fills in the TCP checksum of an IPv4 packet from ipPacket (no options) over the RFC 793 pseudo-header. */
export function withIpv4TcpChecksum(ip: Buffer): Buffer {
  ip.writeUInt16BE(transportChecksum(ip, 16), 20 + 16);
  return ip;
}

/**
 * The checksum of the segment after an option-less IPv4 header, over the pseudo-header of RFC 768
 * and RFC 793 (addresses, protocol, segment length), with the segment's checksum field at
 * `field` zeroed first.
 */
function transportChecksum(ip: Buffer, field: number): number {
  const segment = ip.subarray(20);
  segment.writeUInt16BE(0, field);
  const pseudo = Buffer.alloc(12);
  ip.copy(pseudo, 0, 12, 20);
  pseudo[9] = ip[9]!;
  pseudo.writeUInt16BE(segment.length, 10);
  return internetChecksum(pseudo, segment);
}

/** Ethernet II frame around an IP packet (padded to the 60-byte minimum like a real NIC). */
export function ethernetFrame(ip: Buffer, opts: { src?: Buffer; dst?: Buffer; vlan?: number } = {}): Buffer {
  const v6 = ip[0]! >> 4 === 6;
  const hdr = Buffer.alloc(opts.vlan === undefined ? 14 : 18);
  (opts.dst ?? Buffer.from([2, 0, 0, 0, 0, 2])).copy(hdr, 0);
  (opts.src ?? Buffer.from([2, 0, 0, 0, 0, 1])).copy(hdr, 6);
  let at = 12;
  if (opts.vlan !== undefined) {
    hdr.writeUInt16BE(0x8100, 12);
    hdr.writeUInt16BE(opts.vlan & 0xfff, 14);
    at = 16;
  }
  hdr.writeUInt16BE(v6 ? 0x86dd : 0x0800, at);
  const f = Buffer.concat([hdr, ip]);
  return f.length >= 60 ? f : Buffer.concat([f, Buffer.alloc(60 - f.length)]);
}

/** Linux cooked v2 (LINKTYPE_LINUX_SLL2) frame, as `tcpdump -i any` writes. */
export function sll2Frame(ip: Buffer, opts: { ifindex?: number; outgoing?: boolean } = {}): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(ip[0]! >> 4 === 6 ? 0x86dd : 0x0800, 0);
  h.writeUInt32BE(opts.ifindex ?? 1, 4);
  h.writeUInt16BE(1, 8); // ARPHRD_ETHER
  h[10] = opts.outgoing ? 4 : 0;
  h[11] = 6;
  return Buffer.concat([h, ip]);
}

/** Linux cooked v1 (LINKTYPE_LINUX_SLL) frame. */
export function sllFrame(ip: Buffer, opts: { outgoing?: boolean } = {}): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt16BE(opts.outgoing ? 4 : 0, 0);
  h.writeUInt16BE(1, 2);
  h.writeUInt16BE(6, 4);
  h.writeUInt16BE(ip[0]! >> 4 === 6 ? 0x86dd : 0x0800, 14);
  return Buffer.concat([h, ip]);
}

/** An ARP request frame (non-IP traffic for scope tests). */
function arpFrame(): Buffer {
  const f = Buffer.alloc(60);
  f.fill(0xff, 0, 6);
  Buffer.from([2, 0, 0, 0, 0, 1]).copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  return f;
}

/** Deterministic PRNG (mulberry32) so synthetic captures are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Scenarios: known traffic along a path of capture points, with known loss, delay and clocks.

export interface ScenarioPoint {
  name: string;
  linktype?: "ethernet" | "sll2";
  /** This point's clock minus true time, ns. */
  clockOffsetNanos?: bigint;
  /** Drift of this point's clock, ppm (applied from the scenario start). */
  driftPpm?: number;
  /** Seen from this point, the device hides behind a NAT: its address and port appear as these. */
  natDevice?: { address: string; port: number };
}

export interface ScenarioHop {
  /** One-way delay range across this hop, ms (uniform). */
  delayMs: [number, number];
  /** Random loss probability per packet (both directions). */
  loss?: number;
  /** Everything device→server is dropped from this time (ms after start). */
  blackoutFromMs?: number;
  /** Everything server→device is dropped from this time. */
  reverseBlackoutFromMs?: number;
}

export interface ScenarioSpec {
  seed?: number;
  startNanos?: bigint;
  durationMs: number;
  /** Device first, server last. */
  points: ScenarioPoint[];
  /** hops[i] joins points[i] and points[i + 1]. */
  hops: ScenarioHop[];
  /** Interval between packets device→server and server→device, ms. */
  forwardIntervalMs: number;
  reverseIntervalMs: number;
  /** Probability that the receiving end point sees a packet twice. */
  duplicateRate?: number;
  /** Retransmit lost TCP segments once, 200 ms later, with a new IP id. */
  retransmit?: boolean;
  /** Traffic at the first point that never crosses the path (other host, ARP). */
  unrelated?: boolean;
  ipv6?: boolean;
}

export interface ScenarioPacket {
  /** 0: device→server, 1: server→device. */
  dir: 0 | 1;
  /** Unique number, also in the payload ("pkt-<n>") and the IPv4 id's low bits. */
  n: number;
  /** True send time (ns). */
  sentNanos: bigint;
  /** Index of the hop (in travel order along the path) where it was dropped, or null. */
  lostAtHop: number | null;
  /** True delay across each hop it crossed, ns, in travel order. */
  hopDelays: number[];
  duplicated: boolean;
  ipId: number;
}

export interface ScenarioResult {
  points: { name: string; file: string; startNanos: bigint; endNanos: bigint }[];
  packets: ScenarioPacket[];
}

const SCENARIO_DEVICE = "10.1.0.2";
const SCENARIO_SERVER = "10.9.0.5";
const DEVICE6 = "2001:db8:1::2";
const SERVER6 = "2001:db8:9::5";

/** Write one pcapng per point into `dir` and return what really happened. */
export async function writeScenario(dir: string, spec: ScenarioSpec): Promise<ScenarioResult> {
  const rnd = prng(spec.seed ?? 1);
  const start = spec.startNanos ?? 1_790_000_000_000_000_000n;
  const pts = spec.points;
  if (spec.hops.length !== pts.length - 1) throw new RangeError("need one hop between each pair of points");
  const recorded: { t: bigint; frame: Buffer }[][] = pts.map(() => []);
  const clock = (i: number, trueNs: bigint) => {
    const p = pts[i]!;
    const drift = p.driftPpm ? BigInt(Math.round(Number(trueNs - start) * p.driftPpm * 1e-6)) : 0n;
    return trueNs + (p.clockOffsetNanos ?? 0n) + drift;
  };
  const frame = (i: number, ip: Buffer) => (pts[i]!.linktype === "sll2" ? sll2Frame(ip) : ethernetFrame(ip));
  const packets: ScenarioPacket[] = [];
  const devAddr = spec.ipv6 ? DEVICE6 : SCENARIO_DEVICE;
  const srvAddr = spec.ipv6 ? SERVER6 : SCENARIO_SERVER;
  const ipIds = [0, 0];
  const seqs = [1000, 5000];
  let n = 0;
  const send = (dir: 0 | 1, at: bigint, kind: number, retransmitOf?: { seq: number; len: number }) => {
    const id = n++;
    const ipId = ipIds[dir]!++ & 0xffff;
    const payload = Buffer.from(`pkt-${id}-${"x".repeat(kind === 0 ? 40 : 20)}`);
    const protocol = kind === 0 ? "tcp" : kind === 1 ? "udp" : "icmp";
    const seq = retransmitOf ? retransmitOf.seq : seqs[dir]!;
    if (protocol === "tcp" && !retransmitOf) seqs[dir]! += payload.length;
    const spec4 = (ttl: number, at: number) => {
      const nat = pts[at]!.natDevice;
      const dev = nat ? nat.address : devAddr;
      const devPort = nat ? nat.port : 40001;
      const [s, d] = dir === 0 ? [dev, srvAddr] : [srvAddr, dev];
      return ipPacket({ src: s, dst: d, ipId, ttl, protocol, srcPort: dir === 0 ? devPort : 443, dstPort: dir === 0 ? 443 : devPort, seq, ack: 1, id: nat ? 1234 : 77, payload, ...(protocol === "icmp" ? { seq: id & 0xffff } : {}) });
    };
    const order = dir === 0 ? pts.map((_, i) => i) : pts.map((_, i) => pts.length - 1 - i);
    const pk: ScenarioPacket = { dir, n: id, sentNanos: at, lostAtHop: null, hopDelays: [], duplicated: false, ipId };
    packets.push(pk);
    let t = at;
    recorded[order[0]!]!.push({ t: clock(order[0]!, t), frame: frame(order[0]!, spec4(64, order[0]!)) });
    for (let h = 0; h < order.length - 1; h++) {
      const hop = spec.hops[Math.min(order[h]!, order[h + 1]!)]!;
      const ms = Number(t - start) / 1e6;
      const black = dir === 0 ? hop.blackoutFromMs : hop.reverseBlackoutFromMs;
      if ((black !== undefined && ms >= black) || rnd() < (hop.loss ?? 0)) {
        pk.lostAtHop = h;
        break;
      }
      const d = Math.round((hop.delayMs[0] + rnd() * (hop.delayMs[1] - hop.delayMs[0])) * 1e6);
      pk.hopDelays.push(d);
      t += BigInt(d);
      const at2 = order[h + 1]!;
      recorded[at2]!.push({ t: clock(at2, t), frame: frame(at2, spec4(64 - h - 1, at2)) });
      if (h === order.length - 2 && rnd() < (spec.duplicateRate ?? 0)) {
        pk.duplicated = true;
        recorded[at2]!.push({ t: clock(at2, t + 100_000n), frame: frame(at2, spec4(64 - h - 1, at2)) });
      }
    }
    if (pk.lostAtHop !== null && protocol === "tcp" && spec.retransmit && !retransmitOf) {
      pending.push({ dir, at: at + 200_000_000n, seq, len: payload.length });
    }
  };
  const pending: { dir: 0 | 1; at: bigint; seq: number; len: number }[] = [];
  const end = start + BigInt(spec.durationMs) * 1_000_000n;
  const fwd = BigInt(Math.round(spec.forwardIntervalMs * 1e6));
  const rev = BigInt(Math.round(spec.reverseIntervalMs * 1e6));
  let tf = start + 1_000_000n;
  let tr = start + 1_500_000n;
  let kf = 0;
  let kr = 0;
  let tu = start;
  while (tf < end || tr < end) {
    const nextRetx = pending.length > 0 ? pending[0]!.at : undefined;
    if (nextRetx !== undefined && nextRetx <= tf && nextRetx <= tr && nextRetx < end) {
      const r = pending.shift()!;
      send(r.dir, r.at, 0, { seq: r.seq, len: r.len });
      continue;
    }
    if (tf <= tr && tf < end) {
      send(0, tf, kf++ % 3);
      tf += fwd;
    } else if (tr < end) {
      send(1, tr, kr++ % 3);
      tr += rev;
    } else tf = end;
    while (spec.unrelated && tu < tf && tu < end) {
      const ip = ipPacket({ src: devAddr, dst: spec.ipv6 ? "2001:db8:77::99" : "198.51.100.99", protocol: "udp", srcPort: 5353, dstPort: 5353, ipId: 9999, payload: Buffer.from(`other-${tu}`) });
      recorded[0]!.push({ t: clock(0, tu), frame: frame(0, ip) });
      if (pts[0]!.linktype !== "sll2") recorded[0]!.push({ t: clock(0, tu + 1000n), frame: arpFrame() });
      tu += 100_000_000n;
    }
  }
  const out: ScenarioResult = { points: [], packets };
  for (let i = 0; i < pts.length; i++) {
    const recs = recorded[i]!.sort((x, y) => (x.t < y.t ? -1 : x.t > y.t ? 1 : 0));
    const file = join(dir, `${pts[i]!.name}.pcapng`);
    const w = await PcapngWriter.create(file);
    w.addInterface({ linktype: pts[i]!.linktype === "sll2" ? LINKTYPE_LINUX_SLL2 : LINKTYPE_ETHERNET, name: "eth0" });
    for (const r of recs) if (w.writePacket({ interfaceId: 0, tsNanos: r.t, data: r.frame })) await w.drain();
    await w.close();
    out.points.push({ name: pts[i]!.name, file, startNanos: clock(i, start), endNanos: clock(i, end + 500_000_000n) });
  }
  return out;
}
