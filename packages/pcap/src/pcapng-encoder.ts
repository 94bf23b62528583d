// pcapng encoder: SHB, IDB, EPB, SPB, NRB and ISB blocks into a growable buffer, in either byte
// order. PcapngWriter (pcapng-writer.ts) streams it to a file; tests build files in memory with it.
import { isIPv4, isIPv6 } from "node:net";
import { MAX_PACKET_BYTES } from "./errors.js";
import { ipv6Bytes } from "./ipv6.js";
import { BT_EPB, BT_IDB, BT_ISB, BT_NRB, BT_SHB, BT_SPB, BYTE_ORDER_MAGIC, OPT_COMMENT, pad4 } from "./pcapng-blocks.js";
import { hl, nsToHiLo } from "./raw.js";
import type { InterfaceStatistics, NameRecord } from "./types.js";

export interface SectionSpec {
  littleEndian?: boolean;
  comment?: string;
  hardware?: string;
  os?: string;
  userAppl?: string;
}

export interface InterfaceSpec {
  linktype: number;
  snaplen?: number;
  name?: string;
  description?: string;
  /** One opt_comment per entry. */
  comments?: string[];
  os?: string;
  /** libpcap filter string (if_filter type 0). */
  filter?: string;
  /** Decimal resolution exponent written as if_tsresol: 9 = nanoseconds (default), 6 = microseconds. */
  tsresolExp?: number;
}

export interface PacketSpec {
  interfaceId: number;
  tsNanos: bigint;
  data: Uint8Array;
  originalLength?: number;
  comment?: string;
  flags?: number;
}


export type StatisticsSpec = Pick<InterfaceStatistics, "interfaceId" | "tsNanos" | "startNanos" | "endNanos" | "ifRecv" | "ifDrop" | "osDrop" | "comment">;

/**
 * Synchronous pcapng block encoder into a growable buffer. `PcapngWriter` streams it to a file;
 * tests use it directly to build files in memory.
 */
export class PcapngEncoder {
  private buf: Buffer;
  private len = 0;
  private readonly le: boolean;
  private readonly ifaces: { divisor: bigint }[] = [];
  private hi = -1;
  private hiBase = 0n;

  constructor(section: SectionSpec = {}, initialBytes = 1 << 20) {
    this.buf = Buffer.allocUnsafe(initialBytes);
    this.le = section.littleEndian ?? true;
    this.section(section);
  }

  get length(): number {
    return this.len;
  }
  get interfaceCount(): number {
    return this.ifaces.length;
  }

  /** Bytes encoded since the last take(), as a copy-free view valid until the next write. */
  peek(): Buffer {
    return this.buf.subarray(0, this.len);
  }
  /** Return and forget the encoded bytes (a fresh Buffer). */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.len));
    this.len = 0;
    return out;
  }
  /** Forget the encoded bytes without copying them (after the caller has written peek()). */
  reset(): void {
    this.len = 0;
  }
  /** Hand over the current buffer and its encoded length; continue in `spare`. */
  swap(spare: Buffer): { buf: Buffer; length: number } {
    const out = { buf: this.buf, length: this.len };
    this.buf = spare;
    this.len = 0;
    return out;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  private u16(v: number, at: number): void {
    if (this.le) this.buf.writeUInt16LE(v, at);
    else this.buf.writeUInt16BE(v, at);
  }
  private u32(v: number, at: number): void {
    if (this.le) this.buf.writeUInt32LE(v, at);
    else this.buf.writeUInt32BE(v, at);
  }
  private u64(v: bigint, at: number): void {
    if (this.le) this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), at);
    else this.buf.writeBigUInt64BE(BigInt.asUintN(64, v), at);
  }

  /** Encoded size of a list of options (with the end-of-options marker when non-empty). */
  private static optionsSize(opts: Buffer[]): number {
    let n = 0;
    for (const o of opts) n += 4 + pad4(o.length);
    return n === 0 ? 0 : n + 4;
  }
  private writeOptions(at: number, opts: [number, Buffer][]): number {
    if (opts.length === 0) return at;
    for (const [code, v] of opts) {
      this.u16(code, at);
      this.u16(v.length, at + 2);
      v.copy(this.buf, at + 4);
      this.buf.fill(0, at + 4 + v.length, at + 4 + pad4(v.length));
      at += 4 + pad4(v.length);
    }
    this.u32(0, at); // opt_endofopt
    return at + 4;
  }
  /** Write a whole block with a fixed part and options; `fixed` fills [at, at+fixedLen). */
  private block(type: number, fixedLen: number, fixed: (at: number) => void, opts: [number, Buffer][]): void {
    const total = 12 + fixedLen + PcapngEncoder.optionsSize(opts.map((o) => o[1]));
    this.ensure(total);
    const start = this.len;
    this.u32(type, start);
    this.u32(total, start + 4);
    fixed(start + 8);
    const end = this.writeOptions(start + 8 + fixedLen, opts);
    this.u32(total, end);
    this.len = start + total;
  }

  private section(s: SectionSpec): void {
    const opts: [number, Buffer][] = [];
    if (s.comment !== undefined) opts.push([OPT_COMMENT, Buffer.from(s.comment)]);
    if (s.hardware !== undefined) opts.push([2, Buffer.from(s.hardware)]);
    if (s.os !== undefined) opts.push([3, Buffer.from(s.os)]);
    opts.push([4, Buffer.from(s.userAppl ?? "capsync")]);
    this.block(
      BT_SHB,
      16,
      (at) => {
        this.u32(BYTE_ORDER_MAGIC, at);
        this.u16(1, at + 4);
        this.u16(0, at + 6);
        this.u64(-1n, at + 8); // section length not specified: we stream
      },
      opts,
    );
  }

  /** Describe an interface; returns its id for writePacket. */
  addInterface(i: InterfaceSpec): number {
    const exp = i.tsresolExp ?? 9;
    if (!Number.isInteger(exp) || exp < 0 || exp > 9) throw new RangeError(`tsresolExp ${exp} outside 0..9`);
    const opts: [number, Buffer][] = [];
    if (i.name !== undefined) opts.push([2, Buffer.from(i.name)]);
    if (i.description !== undefined) opts.push([3, Buffer.from(i.description)]);
    if (exp !== 6) opts.push([9, Buffer.from([exp])]);
    if (i.filter !== undefined) opts.push([11, Buffer.concat([Buffer.from([0]), Buffer.from(i.filter)])]);
    if (i.os !== undefined) opts.push([12, Buffer.from(i.os)]);
    for (const c of i.comments ?? []) opts.push([OPT_COMMENT, Buffer.from(c)]);
    this.block(
      BT_IDB,
      8,
      (at) => {
        this.u16(i.linktype, at);
        this.u16(0, at + 2);
        this.u32(i.snaplen ?? 262144, at + 4);
      },
      opts,
    );
    this.ifaces.push({ divisor: 10n ** BigInt(9 - exp) });
    return this.ifaces.length - 1;
  }

  /** Enhanced Packet Block. The hot path of merge: no per-packet allocation without options. */
  writePacket(p: PacketSpec): void {
    this.writeEpb(p.interfaceId, p.tsNanos, p.data, p.originalLength, p.comment, p.flags);
  }

  /** writePacket without the spec object (merge's inner loop). */
  writeEpb(interfaceId: number, tsNanos: bigint, data: Uint8Array, originalLength?: number, commentText?: string, flags?: number): void {
    const iface = this.ifaces[interfaceId];
    if (iface === undefined) throw new RangeError(`interface ${interfaceId} not described`);
    const caplen = data.length;
    if (caplen > MAX_PACKET_BYTES) throw new RangeError(`packet of ${caplen} bytes exceeds ${MAX_PACKET_BYTES}`);
    const units = iface.divisor === 1n ? tsNanos : tsNanos / iface.divisor;
    // The high word changes every 4.3 s at ns resolution: reuse it and avoid two BigInt ops.
    let d = units - this.hiBase;
    if (this.hi < 0 || d < 0n || d >= 4294967296n) {
      if (units < 0n) throw new RangeError("negative timestamp");
      this.hi = Number(units >> 32n);
      this.hiBase = BigInt(this.hi) << 32n;
      d = units - this.hiBase;
    }
    const hi = this.hi;
    const lo = Number(d);
    const comment = commentText === undefined ? undefined : Buffer.from(commentText);
    let optLen = 0;
    if (comment) optLen += 4 + pad4(comment.length);
    if (flags !== undefined) optLen += 8;
    if (optLen > 0) optLen += 4;
    const padded = pad4(caplen);
    const total = 32 + padded + optLen;
    const s = this.epbHead(total, interfaceId, hi, lo, caplen, originalLength ?? caplen);
    const b = this.buf;
    b.set(data, s + 28);
    let at = s + 28 + caplen;
    while (at < s + 28 + padded) b[at++] = 0;
    if (optLen > 0) {
      if (comment) {
        this.u16(OPT_COMMENT, at);
        this.u16(comment.length, at + 2);
        comment.copy(b, at + 4);
        b.fill(0, at + 4 + comment.length, at + 4 + pad4(comment.length));
        at += 4 + pad4(comment.length);
      }
      if (flags !== undefined) {
        this.u16(2, at);
        this.u16(4, at + 2);
        this.u32(flags >>> 0, at + 4);
        at += 8;
      }
      this.u32(0, at);
      at += 4;
    }
    this.u32(total, at);
    this.len = s + total;
  }

  /**
   * EPB from a (sec, nsec) time and a byte range of `src` (the merge's raw path): no BigInt and no
   * Buffer view per packet. Options go through writeEpb.
   */
  writeEpbRaw(interfaceId: number, sec: number, nsec: number, src: Buffer, start: number, caplen: number, originalLength: number): void {
    const iface = this.ifaces[interfaceId];
    if (iface === undefined || iface.divisor !== 1n || sec < 0 || sec >= 4294967296) {
      this.writeEpb(interfaceId, BigInt(sec) * 1_000_000_000n + BigInt(nsec), src.subarray(start, start + caplen), originalLength);
      return;
    }
    if (caplen > MAX_PACKET_BYTES) throw new RangeError(`packet of ${caplen} bytes exceeds ${MAX_PACKET_BYTES}`);
    nsToHiLo(sec, nsec);
    const padded = pad4(caplen);
    const total = 32 + padded;
    const s = this.epbHead(total, interfaceId, hl.hi, hl.lo, caplen, originalLength);
    const b = this.buf;
    src.copy(b, s + 28, start, start + caplen);
    let at = s + 28 + caplen;
    while (at < s + 28 + padded) b[at++] = 0;
    this.u32(total, at);
    this.len = s + total;
  }

  /** Room for an EPB of `total` bytes and its first 28 bytes; returns where the block starts. */
  private epbHead(total: number, interfaceId: number, hi: number, lo: number, caplen: number, originalLength: number): number {
    this.ensure(total);
    const s = this.len;
    this.u32(BT_EPB, s);
    this.u32(total, s + 4);
    this.u32(interfaceId, s + 8);
    this.u32(hi, s + 12);
    this.u32(lo, s + 16);
    this.u32(caplen, s + 20);
    this.u32(originalLength, s + 24);
    return s;
  }

  /** True when whole little-endian EPBs from an input can be copied into this file (appendEpbRun). */
  acceptsRawEpb(interfaceId: number): boolean {
    return this.le && this.ifaces[interfaceId]?.divisor === 1n;
  }

  /**
   * Copy the adjacent EPBs src[from, to) in one go and set each one's interface id and timestamp
   * (block k starts at from + offs[k]; times as 32-bit halves of ns). Options are kept verbatim.
   */
  appendEpbRun(src: Buffer, from: number, to: number, offs: Int32Array, ifaces: Int32Array, his: Float64Array, los: Float64Array, count: number): void {
    const n = to - from;
    this.ensure(n);
    const s = this.len;
    src.copy(this.buf, s, from, to);
    const dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    for (let k = 0; k < count; k++) {
      const at = s + offs[k]!;
      dv.setUint32(at + 8, ifaces[k]!, true);
      dv.setUint32(at + 12, his[k]!, true);
      dv.setUint32(at + 16, los[k]!, true);
    }
    this.len = s + n;
  }

  /** Simple Packet Block (interface 0, no timestamp). */
  writeSimplePacket(data: Uint8Array, originalLength = data.length): void {
    if (this.ifaces.length === 0) throw new RangeError("simple packet before any interface");
    const padded = pad4(data.length);
    const total = 16 + padded;
    this.ensure(total);
    const s = this.len;
    this.u32(BT_SPB, s);
    this.u32(total, s + 4);
    this.u32(originalLength, s + 8);
    this.buf.set(data, s + 12);
    this.buf.fill(0, s + 12 + data.length, s + 12 + padded);
    this.u32(total, s + 12 + padded);
    this.len = s + total;
  }

  /** Name Resolution Block with IPv4/IPv6 records. */
  writeNames(records: NameRecord[]): void {
    const recs: Buffer[] = [];
    for (const r of records) {
      const v4 = isIPv4(r.address);
      if (!v4 && !isIPv6(r.address)) throw new TypeError(`not an IP address: ${r.address}`);
      const addr = v4 ? Buffer.from(r.address.split(".").map(Number)) : ipv6Bytes(r.address);
      const value = Buffer.concat([addr, ...r.names.map((n) => Buffer.from(`${n}\0`))]);
      if (value.length > 0xffff) throw new RangeError("name record too long");
      const rec = Buffer.alloc(4 + pad4(value.length));
      this.u16Into(rec, v4 ? 1 : 2, 0);
      this.u16Into(rec, value.length, 2);
      value.copy(rec, 4);
      recs.push(rec);
    }
    recs.push(Buffer.alloc(4)); // nrb_record_end
    const body = Buffer.concat(recs);
    this.block(BT_NRB, body.length, (at) => body.copy(this.buf, at), []);
  }

  private u16Into(b: Buffer, v: number, at: number): void {
    if (this.le) b.writeUInt16LE(v, at);
    else b.writeUInt16BE(v, at);
  }

  /** Interface Statistics Block. */
  writeStatistics(s: StatisticsSpec): void {
    const iface = this.ifaces[s.interfaceId];
    if (iface === undefined) throw new RangeError(`interface ${s.interfaceId} not described`);
    const units = (ns: bigint) => (iface.divisor === 1n ? ns : ns / iface.divisor);
    const pair = (ns: bigint) => {
      const u = units(ns);
      const v = Buffer.alloc(8);
      this.u32Into(v, Number(u >> 32n), 0);
      this.u32Into(v, Number(BigInt.asUintN(32, u)), 4);
      return v;
    };
    const u64 = (n: bigint) => {
      const v = Buffer.alloc(8);
      if (this.le) v.writeBigUInt64LE(n);
      else v.writeBigUInt64BE(n);
      return v;
    };
    const opts: [number, Buffer][] = [];
    if (s.comment !== undefined) opts.push([OPT_COMMENT, Buffer.from(s.comment)]);
    if (s.startNanos !== undefined) opts.push([2, pair(s.startNanos)]);
    if (s.endNanos !== undefined) opts.push([3, pair(s.endNanos)]);
    if (s.ifRecv !== undefined) opts.push([4, u64(s.ifRecv)]);
    if (s.ifDrop !== undefined) opts.push([5, u64(s.ifDrop)]);
    if (s.osDrop !== undefined) opts.push([7, u64(s.osDrop)]);
    const u = units(s.tsNanos);
    this.block(
      BT_ISB,
      12,
      (at) => {
        this.u32(s.interfaceId, at);
        this.u32(Number(u >> 32n), at + 4);
        this.u32(Number(BigInt.asUintN(32, u)), at + 8);
      },
      opts,
    );
  }

  private u32Into(b: Buffer, v: number, at: number): void {
    if (this.le) b.writeUInt32LE(v, at);
    else b.writeUInt32BE(v, at);
  }
}
