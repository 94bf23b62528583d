// Minimal classic-pcap reader for test assertions only (the product's reader is packages/pcap).
// Reads the whole file: test captures are small.
import { readFileSync } from "node:fs";

export interface LitePacket {
  tsSec: number;
  tsUsec: number;
  data: Buffer;
  src?: string;
  dst?: string;
  proto?: number;
  sport?: number;
  dport?: number;
  payload?: Buffer;
}

export interface LitePcap {
  linktype: number;
  packets: LitePacket[];
}

export function readPcap(path: string): LitePcap {
  const b = readFileSync(path);
  if (b.length < 24) throw new Error(`${path}: ${b.length} bytes, shorter than a pcap header`);
  const magic = b.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`${path}: not a little-endian pcap (magic ${magic.toString(16)})`);
  const linktype = b.readUInt32LE(20);
  const packets: LitePacket[] = [];
  let off = 24;
  while (off + 16 <= b.length) {
    const inclLen = b.readUInt32LE(off + 8);
    if (off + 16 + inclLen > b.length) throw new Error(`${path}: truncated record at ${off}`);
    const data = b.subarray(off + 16, off + 16 + inclLen);
    packets.push({ tsSec: b.readUInt32LE(off), tsUsec: b.readUInt32LE(off + 4), data, ...decode(linktype, data) });
    off += 16 + inclLen;
  }
  if (off !== b.length) throw new Error(`${path}: ${b.length - off} trailing bytes`);
  return { linktype, packets };
}

function decode(linktype: number, d: Buffer): Partial<LitePacket> {
  let ip: Buffer;
  if (linktype === 1) {
    if (d.length < 14) return {};
    const et = d.readUInt16BE(12);
    if (et !== 0x0800 && et !== 0x86dd) return {};
    ip = d.subarray(14);
  } else if (linktype === 113) {
    ip = d.subarray(16);
  } else if (linktype === 276) {
    ip = d.subarray(20);
  } else if (linktype === 101 || linktype === 228) {
    ip = d;
  } else return {};
  if (ip.length < 20) return {};
  if (ip[0]! >> 4 === 4) {
    const ihl = (ip[0]! & 15) * 4;
    const proto = ip[9]!;
    const l4 = ip.subarray(ihl);
    const out: Partial<LitePacket> = { src: [...ip.subarray(12, 16)].join("."), dst: [...ip.subarray(16, 20)].join("."), proto };
    if ((proto === 17 || proto === 6) && l4.length >= 4) {
      out.sport = l4.readUInt16BE(0);
      out.dport = l4.readUInt16BE(2);
      if (proto === 17) out.payload = l4.subarray(8);
    }
    return out;
  }
  return {};
}
