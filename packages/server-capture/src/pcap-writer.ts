// One device's capture files as its own `tcpdump -w <name> [-C <MB> -W <n>]` would write them: the
// same names (name, or name0..name<n-1> zero-padded to the width of n-1), the same 24-byte header,
// records copied byte for byte, and tcpdump's rotation rule (before writing a packet, a file already
// over C x 1,000,000 bytes is closed and the next slot truncated and reopened). Records are queued
// and written once per demultiplexing pass, so a device costs one write per pass, not per packet.
import { closeSync, existsSync, ftruncateSync, openSync, readSync, writeSync, writevSync } from "node:fs";
import { join } from "node:path";
import { ringOrder } from "./ring.js";

export interface DeviceRingOptions {
  dir: string;
  /** The base name (sessions' tmpName). */
  name: string;
  /** The pcap file header to open every file with (the spool's: same magic, snaplen, link type). */
  header: Buffer;
  ring?: { fileMb: number; files: number };
  /** File mode for new files (tcpdump: 0644 after the usual umask). */
  mode?: number;
}

/** Digits tcpdump pads ring slot numbers to: those of files-1 (tcpdump.c, getWflagChars). */
export function ringDigits(files: number): number {
  let c = 0;
  for (let x = files - 1; x > 0; x = Math.floor(x / 10)) c++;
  return c;
}

/** The name tcpdump gives slot `i` of `base` (no ring: the name itself). */
export function slotName(base: string, ring: { files: number } | undefined, i: number): string {
  return ring ? `${base}${String(i).padStart(ringDigits(ring.files), "0")}` : base;
}

export class DeviceRing {
  private fd: number | undefined;
  private slot = 0;
  /** Bytes of the current file, written and queued (tcpdump's ftell). */
  private size = 0;
  /** Where the next write goes in the current file. */
  private writeAt = 0;
  private queued: Buffer[] = [];
  private readonly limit: number;
  packets = 0;
  /** After resume(): the last record already in the files (a restarted agent re-reads the spool from before it). */
  last: Buffer | undefined;

  private constructor(
    private readonly o: DeviceRingOptions,
    resume: boolean,
  ) {
    this.limit = o.ring ? o.ring.fileMb * 1_000_000 : Infinity;
    if (!resume || !this.reopen()) this.open();
  }

  /** New files (the first slot created with its header at once, as tcpdump does). */
  static create(o: DeviceRingOptions): DeviceRing {
    return new DeviceRing(o, false);
  }

  /** The files an earlier agent wrote for this session, continued in the same slot; new ones if none. */
  static resume(o: DeviceRingOptions): DeviceRing {
    return new DeviceRing(o, true);
  }

  /** Queue one record (its 16-byte header and data, as read from the spool). */
  add(record: Buffer): void {
    if (this.size > this.limit) this.rotate();
    this.queued.push(record);
    this.size += record.length;
    this.packets++;
  }

  get pending(): boolean {
    return this.queued.length > 0;
  }

  /** Write what is queued. */
  flush(): void {
    if (!this.queued.length || this.fd === undefined) return;
    const q = this.queued;
    this.queued = [];
    // writev takes at most IOV_MAX (1024) buffers; a busy device queues more in one pass.
    for (let i = 0; i < q.length; i += 1024) {
      const part = q.slice(i, i + 1024);
      const len = part.reduce((n, b) => n + b.length, 0);
      let wrote = writevSync(this.fd, part, this.writeAt);
      if (wrote < len) {
        // A short write (disk full throws instead): the rest from where it stopped.
        const rest = Buffer.concat(part);
        while (wrote < len) wrote += writeSync(this.fd, rest, wrote, len - wrote, this.writeAt + wrote);
      }
      this.writeAt += len;
    }
  }

  close(): void {
    this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): void {
    const path = join(this.o.dir, slotName(this.o.name, this.o.ring, this.slot));
    this.fd = openSync(path, "w", this.o.mode ?? 0o644);
    writeSync(this.fd, this.o.header, 0, this.o.header.length, 0);
    this.size = this.writeAt = this.o.header.length;
  }

  private reopen(): boolean {
    const slots = this.o.ring ? Array.from({ length: this.o.ring.files }, (_, i) => slotName(this.o.name, this.o.ring, i)) : [this.o.name];
    const files = ringOrder(this.o.dir, slots.filter((f) => existsSync(join(this.o.dir, f))));
    const newest = files.at(-1);
    if (!newest) return false;
    let end = 0;
    for (const f of files) {
      const r = scanRecords(join(this.o.dir, f));
      this.packets += r.count;
      if (f === newest) {
        this.last = r.last;
        end = r.end;
      }
    }
    if (end < this.o.header.length) return false;
    this.slot = slots.indexOf(newest);
    this.fd = openSync(join(this.o.dir, newest), "r+");
    // A record the dead agent left half written is cut off and written again from the spool.
    ftruncateSync(this.fd, end);
    this.size = this.writeAt = end;
    return true;
  }

  private rotate(): void {
    this.flush();
    closeSync(this.fd!);
    this.slot = (this.slot + 1) % this.o.ring!.files;
    this.open();
  }
}

/** Whole records in a pcap file: how many, the last one, and where the last whole one ends. */
export function scanRecords(path: string): { count: number; last: Buffer | undefined; end: number } {
  const fd = openSync(path, "r");
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    let buf = Buffer.alloc(0);
    let base = 0;
    let at = 24;
    let count = 0;
    let last: Buffer | undefined;
    let end = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, base + buf.length);
      if (n <= 0) break;
      buf = Buffer.concat([buf, chunk.subarray(0, n)]);
      if (end === 0 && buf.length >= 24) end = 24;
      while (at + 16 <= base + buf.length) {
        const caplen = buf.readUInt32LE(at - base + 8);
        if (at + 16 + caplen > base + buf.length) break;
        last = Buffer.from(buf.subarray(at - base, at - base + 16 + caplen));
        at += 16 + caplen;
        end = at;
        count++;
      }
      // Keep only the unread tail in memory.
      buf = Buffer.from(buf.subarray(at - base));
      base = at;
    }
    return { count, last, end };
  } finally {
    closeSync(fd);
  }
}
