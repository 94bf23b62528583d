// Packet identity: the fields that stay the same while a packet crosses the network (IP id,
// addresses, protocol, ports, TCP seq/ack, lengths, a payload hash), not TTL, checksums or DSCP.
// Fields a NAT or middlebox rewrites can be left out; then identities are only as unique as what remains.
import type { Decoded } from "./decode.js";
import { tcpFlagString } from "./tcp.js";

/** Fields that can be left out of the identity because a middlebox rewrites them. */
export type IdentityField = "addresses" | "ports" | "ipId" | "tcpSeq" | "payload";

export interface IdentityOptions {
  ignore?: readonly IdentityField[];
  /** Leading payload bytes hashed (default 64; keep below the smallest snaplen minus headers). */
  payloadBytes?: number;
}

export interface PacketIdentity {
  /** Equal for the same packet seen at two points. */
  key: string;
  /** 32-bit hash of the key (for consistent sampling). */
  hash: number;
  /** Directed address pair as seen here: "src>dst". */
  hostPair: string;
  /** Directed flow as seen here: "TCP 10.0.0.1:5000 > 10.0.0.2:443". */
  flow: string;
  ttl: number;
}

/** FNV-1a, 32 bit. */
function fnv1a(b: Uint8Array, start: number, end: number, h = 0x811c9dc5): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

/** A second string hash, independent of the identity hash (other multiplier, other mixing). */
function altStringHash(s: string): number {
  let h = 0x9747b28c;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x5bd1e995);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

function fnvString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  // final avalanche (murmur3 fmix32) so low bits are usable for sampling
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** "addr:port", with brackets for IPv6 (RFC 5952 §6). */
function hp(addr: string, port: number | string): string {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}

const PROTO_NAMES: Record<number, string> = { 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 47: "GRE", 50: "ESP", 132: "SCTP" };

/** An identity as one 53-bit number (hash and a second hash of the key): no key string kept. */
export function identityKey(id: { key: string; hash: number }): number {
  return id.hash * 2097152 + (altStringHash(id.key) & 0x1fffff);
}

function protocolName(p: number): string {
  return PROTO_NAMES[p] ?? `proto-${p}`;
}

/** Precompiled options: hot path of matching. */
export interface IdentityConfig {
  addresses: boolean;
  ports: boolean;
  ipId: boolean;
  tcpSeq: boolean;
  payload: boolean;
  payloadBytes: number;
}

export function identityConfig(o: IdentityOptions = {}): IdentityConfig {
  const ig = new Set(o.ignore ?? []);
  return {
    addresses: !ig.has("addresses"),
    ports: !ig.has("ports"),
    ipId: !ig.has("ipId"),
    tcpSeq: !ig.has("tcpSeq"),
    payload: !ig.has("payload"),
    payloadBytes: o.payloadBytes ?? 64,
  };
}

/** Identity of a decoded IP packet, or undefined for non-IP frames and undecodable ones. */
export function packetIdentity(d: Decoded, data: Buffer, c: IdentityConfig): PacketIdentity | undefined {
  const ip = d.ip;
  if (ip === undefined) return undefined;
  const l4 = d.l4;
  let key: string;
  let ttl: number;
  let sport: number | undefined;
  let dport: number | undefined;
  // Same leading fields for both versions:
  // version|src|dst|protocol|ip id|fragment|payload length on the wire
  const plen = d.payloadLength ?? 0;
  const addrs = c.addresses ? `${ip.src}|${ip.dst}` : "|";
  if (ip.version === 4) {
    ttl = ip.ttl;
    key = `4|${addrs}|${ip.protocol}|${c.ipId ? ip.id : ""}|${ip.fragmentOffset}${ip.moreFragments ? "+" : ""}|${plen}`;
  } else {
    ttl = ip.hopLimit;
    const f = ip.fragment;
    key = `6|${addrs}|${ip.protocol}||${f ? `${f.id}:${f.offset}${f.moreFragments ? "+" : ""}` : ""}|${plen}`;
  }
  if (l4 !== undefined) {
    if (l4.protocol === "tcp") {
      sport = l4.srcPort;
      dport = l4.dstPort;
      key += `|${c.ports ? `${l4.srcPort}|${l4.dstPort}` : "|"}|${c.tcpSeq ? `${l4.seq}|${l4.ack}` : "|"}|${l4.flags}`;
    } else if (l4.protocol === "udp") {
      sport = l4.srcPort;
      dport = l4.dstPort;
      key += `|${c.ports ? `${l4.srcPort}|${l4.dstPort}` : "|"}`;
    } else {
      // An echo identifier is NAT's "port" for ICMP.
      key += `|${l4.type}|${l4.code}|${c.ports ? (l4.id ?? "") : ""}|${l4.seq ?? ""}`;
    }
  }
  if (c.payload && d.payloadOffset !== undefined && d.payloadEnd !== undefined) {
    const end = Math.min(d.payloadEnd, d.payloadOffset + c.payloadBytes);
    if (end > d.payloadOffset) key += `|${fnv1a(data, d.payloadOffset, end).toString(36)}`;
  }
  const proto = l4 ? (l4.protocol === "tcp" ? "TCP" : l4.protocol === "udp" ? "UDP" : l4.protocol === "icmp" ? "ICMP" : "ICMPv6") : protocolName(ip.protocol);
  return {
    key,
    hash: fnvString(key),
    hostPair: `${ip.src}>${ip.dst}`,
    flow: sport === undefined ? `${proto} ${ip.src} > ${ip.dst}` : `${proto} ${hp(ip.src, sport)} > ${hp(ip.dst, dport!)}`,
    ttl,
  };
}

/** One line describing a packet, tcpdump-like: "TCP 10.0.0.1:5000 > 10.0.0.2:443 [P.] seq 1 ack 2 len 100 id 7". */
export function describePacket(d: Decoded): string {
  const ip = d.ip;
  if (ip === undefined) return "non-IP frame";
  const l4 = d.l4;
  const len = d.payloadLength ?? 0;
  const id = ip.version === 4 ? ` id ${ip.id}` : "";
  if (l4 === undefined) return `${protocolName(ip.protocol)} ${ip.src} > ${ip.dst} len ${len}${id}`;
  if (l4.protocol === "tcp") return `TCP ${hp(ip.src, l4.srcPort)} > ${hp(ip.dst, l4.dstPort)} ${tcpFlagString(l4.flags)} seq ${l4.seq} ack ${l4.ack} len ${len}${id}`;
  if (l4.protocol === "udp") return `UDP ${hp(ip.src, l4.srcPort)} > ${hp(ip.dst, l4.dstPort)} len ${len}${id}`;
  const echo = l4.id !== undefined ? ` echo id ${l4.id} seq ${l4.seq}` : "";
  return `${l4.protocol === "icmp" ? "ICMP" : "ICMPv6"} ${ip.src} > ${ip.dst} type ${l4.type} code ${l4.code}${echo}${id}`;
}

