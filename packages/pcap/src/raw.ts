// Struct-of-arrays packet batches for bulk work (the merge): no object, Buffer view or BigInt per
// packet. Times are exact (seconds, nanoseconds) pairs of doubles; data is a range of `chunk`.
// Everything here is internal plumbing behind mergeCaptures; the public shape is CapturedPacket.
import type { CapturedPacket } from "./types.js";

const NS = 1_000_000_000;

export class RawBatch {
  n = 0;
  chunk: Buffer = Buffer.alloc(0);
  sec: Float64Array;
  nsec: Float64Array;
  start: Int32Array;
  caplen: Int32Array;
  origlen: Float64Array;
  iface: Int32Array;
  linktype: Int32Array;
  /** The whole little-endian EPB holding the packet (blockLen 0: not copyable as is). */
  blockStart: Int32Array;
  blockLen: Int32Array;
  /** Rare per-packet extras (pcapng comment, flags), by index. */
  extra: Map<number, { comment?: string; flags?: number }> | undefined;

  constructor(readonly capacity = 8192) {
    this.sec = new Float64Array(capacity);
    this.nsec = new Float64Array(capacity);
    this.start = new Int32Array(capacity);
    this.caplen = new Int32Array(capacity);
    this.origlen = new Float64Array(capacity);
    this.iface = new Int32Array(capacity);
    this.linktype = new Int32Array(capacity);
    this.blockStart = new Int32Array(capacity);
    this.blockLen = new Int32Array(capacity);
  }

  reset(chunk: Buffer): void {
    this.n = 0;
    this.chunk = chunk;
    this.extra = undefined;
  }

  /** Add a packet parsed the ordinary way (rare block types); its data must lie in `chunk`. */
  pushObject(p: CapturedPacket): void {
    const i = this.n++;
    const s = p.tsNanos / 1_000_000_000n;
    let ns = Number(p.tsNanos - s * 1_000_000_000n);
    let sec = Number(s);
    if (ns < 0) ((ns += NS), (sec -= 1));
    this.sec[i] = sec;
    this.nsec[i] = ns;
    this.start[i] = p.data.byteOffset - this.chunk.byteOffset;
    this.caplen[i] = p.capturedLength;
    this.origlen[i] = p.originalLength;
    this.iface[i] = p.interfaceId;
    this.linktype[i] = p.linktype;
    this.blockLen[i] = 0;
    if (p.comment !== undefined || p.flags !== undefined) this.setExtra(i, p.comment, p.flags);
  }

  setExtra(i: number, comment: string | undefined, flags: number | undefined): void {
    const e: { comment?: string; flags?: number } = {};
    if (comment !== undefined) e.comment = comment;
    if (flags !== undefined) e.flags = flags;
    (this.extra ??= new Map()).set(i, e);
  }
}

/** Scratch results of divmod64 (no allocation per call). */
export const dm = { q: 0, r: 0 };

/**
 * Exact floor division of the unsigned 64-bit value hi·2^32 + lo by d (1 ≤ d < 2^30) with doubles:
 * long division in 16-bit steps keeps every intermediate below 2^46. Quotient must be < 2^53.
 */
export function divmod64(hi: number, lo: number, d: number): void {
  const q1 = Math.floor(hi / d);
  const r1 = hi - q1 * d;
  const t2 = r1 * 65536 + (lo >>> 16);
  const q2 = Math.floor(t2 / d);
  const r2 = t2 - q2 * d;
  const t3 = r2 * 65536 + (lo & 0xffff);
  const q3 = Math.floor(t3 / d);
  dm.q = q1 * 4294967296 + q2 * 65536 + q3;
  dm.r = t3 - q3 * d;
}

/** Scratch result of nsToHiLo. */
export const hl = { hi: 0, lo: 0 };

/**
 * sec·10^9 + nsec as the two 32-bit halves of a 64-bit count of nanoseconds, exactly, with
 * doubles (sec < 2^32, 0 ≤ nsec < 10^9).
 */
export function nsToHiLo(sec: number, nsec: number): void {
  const sh = Math.floor(sec / 65536);
  const sl = sec - sh * 65536;
  const low = sl * NS + nsec; // < 2^46
  const high = sh * NS; // in units of 2^16, < 2^46
  const hm = high % 65536;
  const L = hm * 65536 + low; // < 2^47
  const carry = Math.floor(L / 4294967296);
  hl.lo = L - carry * 4294967296;
  hl.hi = (high - hm) / 65536 + carry;
}
