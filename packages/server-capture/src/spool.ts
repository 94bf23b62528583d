// Tailing the shared tcpdump's spool: a `-w <base> -C <MB> -W <n>` ring of pcap files that tcpdump
// writes packet-buffered (-U) in the incoming dir. Files, not a pipe: the tcpdump does not die with
// the agent. The reader takes complete records only (a record tcpdump has half written is read again
// next time), and a slot is done once tcpdump has opened the next one (it closes a file before it
// opens the next). A finished slot is deleted, so when tcpdump comes round to that slot again the
// file it creates is new: "the next slot exists" always means "tcpdump moved on". The ring bounds
// the spool's disk; a reader more than a whole ring behind loses packets, counted in `overruns`.
import { closeSync, existsSync, fstatSync, openSync, readSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { slotName } from "./pcap-writer.js";
import { ringOrder } from "./ring.js";

/** One record: `raw` is its 16-byte header and captured bytes, `data` the captured bytes alone. */
export interface SpoolRecord {
  raw: Buffer;
  data: Buffer;
  /** Timestamp in microseconds since the epoch. */
  tsUs: number;
  wirelen: number;
}

export interface SpoolHeader {
  raw: Buffer;
  linktype: number;
  snaplen: number;
  le: boolean;
  nano: boolean;
}

/** Bytes read per file per pass at most, so one pass never blocks the agent's event loop for long. */
const READ_CHUNK = 4 << 20;

export class SpoolReader {
  private slot = 0;
  private fd: number | undefined;
  private offset = 0;
  private carry: Buffer | undefined;
  /** The current slot's file header is still to be read. */
  private needHeader = true;
  header: SpoolHeader | undefined;
  records = 0;
  /** Times the reader found its file rewritten under it (a whole ring behind). */
  overruns = 0;

  constructor(
    private readonly dir: string,
    private readonly base: string,
    private readonly ring: { files: number },
  ) {}

  /**
   * Read what tcpdump has written since the last call, up to about `maxBytes`, handing each record
   * to `each`. True when it stopped at the end of what is written (nothing more to read now).
   */
  read(each: (r: SpoolRecord) => void, maxBytes = 16 << 20): boolean {
    let budget = maxBytes;
    for (;;) {
      if (this.fd === undefined && !this.openSlot()) return true;
      const got = this.readChunk(Math.min(READ_CHUNK, budget), each);
      budget -= got;
      if (budget <= 0) return false;
      if (got > 0) continue;
      // At the end of this slot's data: done with it only once tcpdump has opened the next slot,
      // and after one more read (it may have written the last records between our read and that check).
      if (!existsSync(this.path(this.nextSlot()))) return true;
      if (this.readChunk(READ_CHUNK, each) > 0) continue;
      this.finishSlot();
    }
  }

  /**
   * Adopting a spool an earlier agent read: start at its oldest slot still on disk (finished slots
   * were deleted, so that is the one it was reading), from the beginning.
   */
  startAtOldest(): void {
    const slots = Array.from({ length: this.ring.files }, (_, i) => slotName(this.base, this.ring, i));
    const oldest = ringOrder(this.dir, slots.filter((f) => existsSync(join(this.dir, f))))[0];
    this.slot = oldest === undefined ? 0 : slots.indexOf(oldest);
  }

  /** The current slot's file header, without reading any record. */
  peekHeader(): SpoolHeader | undefined {
    try {
      const fd = openSync(this.path(this.slot), "r");
      try {
        const b = Buffer.alloc(24);
        return readSync(fd, b, 0, 24, 0) === 24 ? parseHeader(b) : undefined;
      } finally {
        closeSync(fd);
      }
    } catch {
      return undefined;
    }
  }

  /** Close and delete every slot (the capture is over). */
  removeAll(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    for (let i = 0; i < this.ring.files; i++) {
      try {
        unlinkSync(this.path(i));
      } catch {
        /* never written, or already gone */
      }
    }
  }

  private path(i: number): string {
    return join(this.dir, slotName(this.base, this.ring, i));
  }

  private nextSlot(): number {
    return (this.slot + 1) % this.ring.files;
  }

  private openSlot(): boolean {
    try {
      this.fd = openSync(this.path(this.slot), "r");
    } catch {
      return false;
    }
    this.offset = 0;
    this.carry = undefined;
    this.needHeader = true;
    return true;
  }

  private finishSlot(): void {
    closeSync(this.fd!);
    this.fd = undefined;
    // A half record at the end of a finished slot: tcpdump was killed mid-write. Dropped.
    this.carry = undefined;
    try {
      unlinkSync(this.path(this.slot));
    } catch {
      /* removed already */
    }
    this.slot = this.nextSlot();
  }

  /** One read from the current slot; the bytes read (0 at its end). */
  private readChunk(max: number, each: (r: SpoolRecord) => void): number {
    const fd = this.fd!;
    const size = fstatSync(fd).size;
    if (size < this.offset) {
      // tcpdump came round the whole ring and truncated this slot while we were still in it.
      this.overruns++;
      this.offset = 0;
      this.carry = undefined;
      this.needHeader = true;
    }
    const avail = Math.min(size - this.offset, max);
    if (avail <= 0) return 0;
    const chunk = Buffer.allocUnsafe(avail);
    const n = readSync(fd, chunk, 0, avail, this.offset);
    if (n <= 0) return 0;
    this.offset += n;
    let buf = chunk.subarray(0, n);
    if (this.carry) {
      buf = Buffer.concat([this.carry, buf]);
      this.carry = undefined;
    }
    let at = 0;
    if (this.needHeader) {
      if (buf.length < 24) {
        this.carry = Buffer.from(buf);
        return n;
      }
      const h = parseHeader(buf.subarray(0, 24));
      if (!h) throw new Error(`${this.path(this.slot)}: not a pcap file`);
      this.header = h;
      this.needHeader = false;
      at = 24;
    }
    const { le, nano } = this.header!;
    while (buf.length - at >= 16) {
      const sec = le ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
      const frac = le ? buf.readUInt32LE(at + 4) : buf.readUInt32BE(at + 4);
      const caplen = le ? buf.readUInt32LE(at + 8) : buf.readUInt32BE(at + 8);
      const wirelen = le ? buf.readUInt32LE(at + 12) : buf.readUInt32BE(at + 12);
      if (buf.length - at - 16 < caplen) break;
      const raw = buf.subarray(at, at + 16 + caplen);
      this.records++;
      each({ raw, data: raw.subarray(16), tsUs: sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac), wirelen });
      at += 16 + caplen;
    }
    // A copy: the chunk's other records stay referenced by the devices' queues until they flush.
    if (at < buf.length) this.carry = Buffer.from(buf.subarray(at));
    return n;
  }
}

/** The 24-byte pcap file header, or undefined when it is not one. */
export function parseHeader(b: Buffer): SpoolHeader | undefined {
  const m = b.readUInt32LE(0);
  const le = m === 0xa1b2c3d4 || m === 0xa1b23c4d;
  const be = m === 0xd4c3b2a1 || m === 0x4d3cb2a1;
  if (!le && !be) return undefined;
  const nano = m === 0xa1b23c4d || m === 0x4d3cb2a1;
  return {
    raw: Buffer.from(b.subarray(0, 24)),
    le,
    nano,
    snaplen: le ? b.readUInt32LE(16) : b.readUInt32BE(16),
    linktype: (le ? b.readUInt32LE(20) : b.readUInt32BE(20)) & 0x0fffffff,
  };
}
