// The order of a ring capture's files. tcpdump -C/-W writes name0, name1, ... and, once W files
// exist, starts over at name0: after a wrap the index order is not the time order. The time order
// is the order of each file's first packet (every file tcpdump opens after the first starts with
// the packet that made it rotate); a file without packets sorts by its modification time.
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { join } from "node:path";

/** `files` (names in `dir`) oldest first. */
export function ringOrder(dir: string, files: readonly string[]): string[] {
  const keyed = files.map((f, i) => ({ f, i, at: firstPacketNs(join(dir, f)) ?? mtimeNs(join(dir, f)) }));
  keyed.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.i - b.i));
  return keyed.map((k) => k.f);
}

/** The first packet's timestamp in ns, or undefined (no packet, not a pcap, unreadable). */
export function firstPacketNs(path: string): bigint | undefined {
  const buf = Buffer.alloc(32);
  let n: number;
  try {
    const fd = openSync(path, "r");
    try {
      n = readSync(fd, buf, 0, 32, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  if (n < 32) return undefined;
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const be = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1;
  if (!le && !be) return undefined;
  const nano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  const sec = le ? buf.readUInt32LE(24) : buf.readUInt32BE(24);
  const frac = le ? buf.readUInt32LE(28) : buf.readUInt32BE(28);
  return BigInt(sec) * 1_000_000_000n + BigInt(frac) * (nano ? 1n : 1000n);
}

function mtimeNs(path: string): bigint {
  try {
    return statSync(path, { bigint: true }).mtimeNs;
  } catch {
    return 0n;
  }
}
