// Classic pcap (libpcap file format, draft-ietf-opsawg-pcap) record counting for the demo summary,
// with IPv4 source/destination of each record so the demo can say what crossed and what did not.
// Not handled: pcapng, IPv6, VLAN tags, tunnels — packages/pcap (coming) is the full reader.
import { openSync, readSync, closeSync, fstatSync } from "node:fs";

export interface PcapRecordInfo {
  /** Epoch milliseconds (microsecond files and nanosecond files alike). */
  tsMs: number;
  src?: string;
  dst?: string;
}

export type PcapCount =
  | { ok: true; linktype: number; packets: number; matching: number }
  | { ok: false; code: "short-header" | "bad-magic" | "truncated-record" | "record-too-large" | "too-large" | "unreadable"; offset: number; packets: number; matching: number };

const MAX_FILE = 1 << 30;
const MAX_RECORD = 256 * 1024;

/** Counts records (and those `match` accepts) in a pcap held in memory; never throws. */
export function countPcap(b: Buffer, match?: (r: PcapRecordInfo) => boolean): PcapCount {
  let packets = 0;
  let matching = 0;
  if (b.length < 24) return { ok: false, code: "short-header", offset: 0, packets, matching };
  const magicLE = b.readUInt32LE(0);
  const magicBE = b.readUInt32BE(0);
  const le = magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d;
  if (!le && magicBE !== 0xa1b2c3d4 && magicBE !== 0xa1b23c4d) return { ok: false, code: "bad-magic", offset: 0, packets, matching };
  const nano = (le ? magicLE : magicBE) === 0xa1b23c4d;
  const u32 = (off: number) => (le ? b.readUInt32LE(off) : b.readUInt32BE(off));
  const linktype = u32(20) & 0x0fffffff;
  let off = 24;
  while (off < b.length) {
    if (off + 16 > b.length) return { ok: false, code: "truncated-record", offset: off, packets, matching };
    const incl = u32(off + 8);
    if (incl > MAX_RECORD) return { ok: false, code: "record-too-large", offset: off, packets, matching };
    if (off + 16 + incl > b.length) return { ok: false, code: "truncated-record", offset: off, packets, matching };
    packets++;
    if (match) {
      const tsMs = u32(off) * 1000 + u32(off + 4) / (nano ? 1e6 : 1e3);
      if (match({ tsMs, ...ipv4Addresses(linktype, b.subarray(off + 16, off + 16 + incl)) })) matching++;
    }
    off += 16 + incl;
  }
  return { ok: true, linktype, packets, matching };
}

/** Reads the file (up to 1 GiB) and counts it; unreadable files are a result, not an exception. */
export function countPcapFile(path: string, match?: (r: PcapRecordInfo) => boolean): PcapCount {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const size = fstatSync(fd).size;
    if (size > MAX_FILE) return { ok: false, code: "too-large", offset: 0, packets: 0, matching: 0 };
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return countPcap(buf.subarray(0, got), match);
  } catch {
    return { ok: false, code: "unreadable", offset: 0, packets: 0, matching: 0 };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function ipv4Addresses(linktype: number, d: Buffer): { src?: string; dst?: string } {
  let ipOff: number;
  if (linktype === 1) {
    if (d.length < 14 || d.readUInt16BE(12) !== 0x0800) return {};
    ipOff = 14;
  } else if (linktype === 113) {
    if (d.length < 16 || d.readUInt16BE(14) !== 0x0800) return {};
    ipOff = 16;
  } else if (linktype === 276) {
    if (d.length < 20 || d.readUInt16BE(0) !== 0x0800) return {};
    ipOff = 20;
  } else if (linktype === 101 || linktype === 228) ipOff = 0;
  else return {};
  if (d.length < ipOff + 20 || d[ipOff]! >> 4 !== 4) return {};
  return { src: [...d.subarray(ipOff + 12, ipOff + 16)].join("."), dst: [...d.subarray(ipOff + 16, ipOff + 20)].join(".") };
}
