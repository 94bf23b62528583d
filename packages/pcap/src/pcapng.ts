// pcapng (draft-ietf-opsawg-pcapng): reader for SHB, IDB, EPB, SPB, NRB, ISB and the obsolete
// Packet Block, several sections/interfaces and both byte orders; and a streaming writer.
// Not handled: Decryption Secrets, custom and systemd blocks (skipped whole), compressed files.
import { open, type FileHandle } from "node:fs/promises";
import { isIPv4, isIPv6 } from "node:net";
import { MAX_BLOCK_BYTES, MAX_PACKET_BYTES, type FormatError } from "./errors.js";
import { compressIpv6 } from "./ipv6.js";
import { divmod64, dm, hl, nsToHiLo, RawBatch } from "./raw.js";
import type { CaptureMeta, CapturedPacket, FormatParser, InterfaceInfo, InterfaceStatistics, NameRecord, SectionInfo, TsResolution } from "./types.js";

export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 0x00000001;
export const BT_PB = 0x00000002; // obsolete Packet Block
export const BT_SPB = 0x00000003;
export const BT_NRB = 0x00000004;
export const BT_ISB = 0x00000005;
export const BT_EPB = 0x00000006;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
/** Interfaces and name/statistics entries kept per file; a corrupt file cannot grow them further. */
const MAX_INTERFACES = 65_536;
const MAX_NAME_RECORDS = 65_536;
const MAX_STATISTICS = 65_536;

const pad4 = (n: number) => (n + 3) & ~3;

/** Timestamp units → nanoseconds, precomputed per interface. */
interface TsConv {
  mul: bigint;
  div: bigint;
  shift: bigint; // base-2 resolutions: (units * 1e9) >> shift
  offsetNs: bigint;
  /** Nothing to do beyond building the 64-bit value (nanosecond resolution, no offset). */
  identity: boolean;
  /** Cache of the last high word: it changes every 4.3 s at ns resolution, so most packets reuse it. */
  hi: number;
  hiBig: bigint;
  /** Raw (sec, nsec) path: units per second (≤ 10^9, decimal resolutions) and ns per unit; 0 = use BigInt. */
  rawDiv: number;
  rawMul: number;
  rawOffsetSec: number;
}

function tsConv(res: TsResolution, offsetSeconds: bigint): TsConv {
  const offsetNs = offsetSeconds * 1_000_000_000n;
  let mul = 1n;
  let div = 1n;
  let shift = 0n;
  if (res.base === 2) ((mul = 1_000_000_000n), (shift = BigInt(res.exp)));
  else if (res.exp <= 9) mul = 10n ** BigInt(9 - res.exp);
  else div = 10n ** BigInt(res.exp - 9);
  const raw = res.base === 10 && res.exp <= 9 && offsetSeconds > -(2n ** 52n) && offsetSeconds < 2n ** 52n;
  return {
    mul,
    div,
    shift,
    offsetNs,
    identity: mul === 1n && div === 1n && shift === 0n && offsetNs === 0n,
    hi: 0,
    hiBig: 0n,
    rawDiv: raw ? 10 ** res.exp : 0,
    rawMul: raw ? 10 ** (9 - res.exp) : 0,
    rawOffsetSec: raw ? Number(offsetSeconds) : 0,
  };
}

function unitsToNanos(c: TsConv, hi: number, lo: number): bigint {
  let units: bigint;
  if (hi < 0x200000) units = BigInt(hi * 4294967296 + lo); // exact below 2^53
  else {
    if (hi !== c.hi) ((c.hi = hi), (c.hiBig = BigInt(hi) << 32n));
    units = c.hiBig + BigInt(lo);
  }
  if (c.identity) return units;
  let ns = units * c.mul;
  if (c.div !== 1n) ns /= c.div;
  if (c.shift !== 0n) ns >>= c.shift;
  return c.offsetNs === 0n ? ns : ns + c.offsetNs;
}

function str(b: Buffer, start: number, len: number): string {
  let end = start + len;
  while (end > start && b[end - 1] === 0) end--; // some writers NUL-terminate option strings
  return b.toString("utf8", start, end);
}

function ipString(b: Buffer, at: number, len: 4 | 16): string {
  if (len === 4) return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(at + i).toString(16));
  return compressIpv6(groups);
}

/** Reader of pcapng blocks; the reader hands it bytes from the first Section Header Block on. */
export class PcapngParser implements FormatParser {
  need = 0;
  error: FormatError | undefined;
  private le: boolean | undefined;
  private section = -1;
  private ifaceBase = 0;
  private ifaceCount = 0;
  private readonly conv: TsConv[] = [];
  private lastTs = 0n;
  private readonly meta: CaptureMeta;

  constructor(meta: CaptureMeta) {
    this.meta = meta;
  }

  private fail(code: FormatError["code"], offset: number, message: string): void {
    this.error = { code, offset, message };
  }

  parse(b: Buffer, pos: number, base: number, out: CapturedPacket[] | RawBatch, max: number): number {
    this.need = 0;
    const raw = out instanceof RawBatch ? out : undefined;
    // DataView reads inline in optimised code; Buffer.readUInt32LE calls often do not.
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const objs = raw ? undefined : (out as CapturedPacket[]);
    for (;;) {
      if ((raw ? raw.n : objs!.length) >= max) return pos;
      const avail = b.length - pos;
      if (avail < 12) {
        this.need = 12;
        return pos;
      }
      const type = dv.getUint32(pos, true); // SHB's type is a palindrome: readable before the byte order is known
      let le = this.le;
      if (type === BT_SHB) {
        if (b.readUInt32LE(pos + 8) === BYTE_ORDER_MAGIC) le = true;
        else if (b.readUInt32BE(pos + 8) === BYTE_ORDER_MAGIC) le = false;
        else {
          this.fail("bad-magic", base + pos + 8, `section header byte-order magic 0x${b.readUInt32BE(pos + 8).toString(16)} is not 0x1a2b3c4d`);
          return pos;
        }
      } else if (le === undefined) {
        this.fail("no-section", base + pos, `block type 0x${type.toString(16)} before any Section Header Block`);
        return pos;
      }
      const len = dv.getUint32(pos + 4, le);
      const min = type === BT_SHB ? 28 : 12;
      if (len < min || len % 4 !== 0) {
        this.fail("bad-block-length", base + pos + 4, `block length ${len} (must be ≥ ${min} and a multiple of 4)`);
        return pos;
      }
      if (len > MAX_BLOCK_BYTES) {
        this.fail("block-too-large", base + pos + 4, `block length ${len} exceeds ${MAX_BLOCK_BYTES}`);
        return pos;
      }
      if (avail < len) {
        this.need = len;
        return pos;
      }
      const trailer = dv.getUint32(pos + len - 4, le);
      if (trailer !== len) {
        this.fail("bad-block-length", base + pos + len - 4, `block trailer length ${trailer} differs from header length ${len}`);
        return pos;
      }
      const blockType = le ? type : b.readUInt32BE(pos);
      if (blockType === BT_EPB && len >= 32) {
        // Hot path (nearly every block): inline, no closures, options only when present.
        const iface = dv.getUint32(pos + 8, le);
        const caplen = dv.getUint32(pos + 20, le);
        const padded = (caplen + 3) & ~3;
        if (iface < this.ifaceCount && caplen <= MAX_PACKET_BYTES && 28 + padded <= len - 4) {
          const id = this.ifaceBase + iface;
          const dataAt = pos + 28;
          const optAt = dataAt + padded;
          const bodyEnd = pos + len - 4;
          const conv = this.conv[id]!;
          if (raw && conv.rawDiv !== 0) {
            const i = raw.n;
            divmod64(dv.getUint32(pos + 12, le), dv.getUint32(pos + 16, le), conv.rawDiv);
            raw.sec[i] = dm.q + conv.rawOffsetSec;
            raw.nsec[i] = dm.r * conv.rawMul;
            raw.start[i] = dataAt;
            // A little-endian EPB can be copied whole into the merged file (then 3 fields patched).
            raw.blockStart[i] = pos;
            raw.blockLen[i] = le ? len : 0;
            raw.caplen[i] = caplen;
            raw.origlen[i] = dv.getUint32(pos + 24, le);
            raw.iface[i] = id;
            raw.linktype[i] = this.meta.interfaces[id]!.linktype;
            if (optAt < bodyEnd) {
              const pkt = { comment: undefined as string | undefined, flags: undefined as number | undefined } as CapturedPacket;
              if (!this.packetOptions(pkt, b, optAt, bodyEnd, le, base)) return pos;
              if (pkt.comment !== undefined || pkt.flags !== undefined) raw.setExtra(i, pkt.comment, pkt.flags);
            }
            raw.n++;
            this.rawSec = raw.sec[i]!;
            this.rawNsec = raw.nsec[i]!;
            this.rawValid = true;
            pos += len;
            continue;
          }
          const ts = unitsToNanos(this.conv[id]!, dv.getUint32(pos + 12, le), dv.getUint32(pos + 16, le));
          const pkt: CapturedPacket = {
            interfaceId: id,
            linktype: this.meta.interfaces[id]!.linktype,
            tsNanos: ts,
            capturedLength: caplen,
            originalLength: dv.getUint32(pos + 24, le),
            data: b.subarray(dataAt, dataAt + caplen),
            offset: base + pos,
          };
          if (optAt < bodyEnd && !this.packetOptions(pkt, b, optAt, bodyEnd, le, base)) return pos;
          this.lastTs = ts;
          if (raw) raw.pushObject(pkt);
          else objs!.push(pkt);
          pos += len;
          continue;
        }
      }
      if (raw) {
        // Rare blocks (and EPBs the raw path does not convert): the ordinary way, then copied in.
        const tmp: CapturedPacket[] = [];
        if (this.rawValid && blockType === BT_SPB) this.lastTs = BigInt(this.rawSec) * 1_000_000_000n + BigInt(this.rawNsec);
        if (!this.block(blockType, b, pos, len, le, base, tmp)) return pos;
        for (const p of tmp) raw.pushObject(p);
        if (blockType !== BT_SPB && tmp.length > 0) this.rawValid = false;
      } else if (!this.block(blockType, b, pos, len, le, base, objs!)) return pos;
      pos += len;
    }
  }

  /** Time of the last packet taken by the raw path (SPBs repeat it); else lastTs holds it. */
  private rawSec = 0;
  private rawNsec = 0;
  private rawValid = false;

  /** One complete, length-checked block. False after setting `error`. */
  private block(type: number, b: Buffer, pos: number, len: number, le: boolean, base: number, out: CapturedPacket[]): boolean {
    const u16 = (o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const bodyEnd = pos + len - 4;
    switch (type) {
      case BT_SHB: {
        const versionMajor = u16(pos + 12);
        const versionMinor = u16(pos + 14);
        if (versionMajor !== 1) {
          this.fail("bad-version", base + pos + 12, `unsupported pcapng version ${versionMajor}.${versionMinor}`);
          return false;
        }
        const s: SectionInfo = { offset: base + pos, littleEndian: le, versionMajor, versionMinor };
        const ok = this.options(b, pos + 24, bodyEnd, le, base, (code, at, n) => {
          if (code === OPT_COMMENT) s.comment = str(b, at, n);
          else if (code === 2) s.hardware = str(b, at, n);
          else if (code === 3) s.os = str(b, at, n);
          else if (code === 4) s.userAppl = str(b, at, n);
        });
        if (!ok) return false;
        this.le = le;
        this.section++;
        this.ifaceBase = this.meta.interfaces.length;
        this.ifaceCount = 0;
        if (this.meta.sections.length < MAX_INTERFACES) this.meta.sections.push(s);
        return true;
      }
      case BT_IDB: {
        if (len < 20) {
          this.fail("bad-block-length", base + pos + 4, `interface description block of ${len} bytes`);
          return false;
        }
        if (this.meta.interfaces.length >= MAX_INTERFACES) {
          this.fail("bad-interface", base + pos, `more than ${MAX_INTERFACES} interfaces`);
          return false;
        }
        const info: InterfaceInfo = {
          id: this.meta.interfaces.length,
          section: this.section,
          linktype: u16(pos + 8),
          snaplen: u32(pos + 12),
          tsresol: { base: 10, exp: 6 },
          tsOffsetSeconds: 0n,
        };
        const ok = this.options(b, pos + 16, bodyEnd, le, base, (code, at, n) => {
          if (code === OPT_COMMENT) info.comment = info.comment === undefined ? str(b, at, n) : `${info.comment}\n${str(b, at, n)}`;
          else if (code === 2) info.name = str(b, at, n);
          else if (code === 3) info.description = str(b, at, n);
          else if (code === 9 && n >= 1) {
            const v = b[at]!;
            info.tsresol = v & 0x80 ? { base: 2, exp: v & 0x7f } : { base: 10, exp: v };
          } else if (code === 11 && n >= 1 && b[at] === 0) info.filter = str(b, at + 1, n - 1);
          else if (code === 12) info.os = str(b, at, n);
          else if (code === 13 && n >= 1) info.fcsLength = b[at]!;
          else if (code === 14 && n >= 8) info.tsOffsetSeconds = le ? b.readBigInt64LE(at) : b.readBigInt64BE(at);
        });
        if (!ok) return false;
        this.meta.interfaces.push(info);
        this.conv[info.id] = tsConv(info.tsresol, info.tsOffsetSeconds);
        this.ifaceCount++;
        return true;
      }
      case BT_EPB:
      case BT_PB: {
        if (len < 32) {
          this.fail("bad-block-length", base + pos + 4, `packet block of ${len} bytes`);
          return false;
        }
        const iface = type === BT_EPB ? u32(pos + 8) : u16(pos + 8);
        const hi = u32(pos + 12);
        const lo = u32(pos + 16);
        const caplen = u32(pos + 20);
        const origlen = u32(pos + 24);
        const dataAt = pos + 28;
        if (caplen > MAX_PACKET_BYTES || dataAt + pad4(caplen) > bodyEnd) {
          this.fail("packet-too-large", base + pos + 20, `captured length ${caplen} does not fit its ${len}-byte block`);
          return false;
        }
        if (iface >= this.ifaceCount) {
          this.fail("bad-interface", base + pos + 8, `packet on interface ${iface}, section has ${this.ifaceCount}`);
          return false;
        }
        const id = this.ifaceBase + iface;
        const ts = unitsToNanos(this.conv[id]!, hi, lo);
        const pkt: CapturedPacket = {
          interfaceId: id,
          linktype: this.meta.interfaces[id]!.linktype,
          tsNanos: ts,
          capturedLength: caplen,
          originalLength: origlen,
          data: b.subarray(dataAt, dataAt + caplen),
          offset: base + pos,
        };
        const optAt = dataAt + pad4(caplen);
        if (optAt < bodyEnd && !this.packetOptions(pkt, b, optAt, bodyEnd, le, base, type === BT_EPB)) return false;
        this.lastTs = ts;
        out.push(pkt);
        return true;
      }
      case BT_SPB: {
        if (len < 16) {
          this.fail("bad-block-length", base + pos + 4, `simple packet block of ${len} bytes`);
          return false;
        }
        if (this.ifaceCount === 0) {
          this.fail("bad-interface", base + pos, "simple packet block before any interface description");
          return false;
        }
        const origlen = u32(pos + 8);
        const info = this.meta.interfaces[this.ifaceBase]!;
        let caplen = Math.min(origlen, bodyEnd - (pos + 12));
        if (info.snaplen > 0) caplen = Math.min(caplen, info.snaplen);
        if (caplen > MAX_PACKET_BYTES) {
          this.fail("packet-too-large", base + pos + 8, `simple packet of ${caplen} bytes`);
          return false;
        }
        out.push({
          interfaceId: this.ifaceBase,
          linktype: info.linktype,
          tsNanos: this.lastTs,
          capturedLength: caplen,
          originalLength: origlen,
          data: b.subarray(pos + 12, pos + 12 + caplen),
          offset: base + pos,
          noTimestamp: true,
        });
        return true;
      }
      case BT_NRB:
        return this.nameResolution(b, pos, bodyEnd, le, base);
      case BT_ISB: {
        if (len < 24) {
          this.fail("bad-block-length", base + pos + 4, `interface statistics block of ${len} bytes`);
          return false;
        }
        const iface = u32(pos + 8);
        if (iface >= this.ifaceCount) {
          this.fail("bad-interface", base + pos + 8, `statistics for interface ${iface}, section has ${this.ifaceCount}`);
          return false;
        }
        const id = this.ifaceBase + iface;
        const conv = this.conv[id]!;
        const s: InterfaceStatistics = { interfaceId: id, tsNanos: unitsToNanos(conv, u32(pos + 12), u32(pos + 16)) };
        const u64 = (at: number) => (le ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at));
        const ok = this.options(b, pos + 20, bodyEnd, le, base, (code, at, n) => {
          if (code === OPT_COMMENT) s.comment = str(b, at, n);
          else if (n < 8) return;
          else if (code === 2) s.startNanos = unitsToNanos(conv, u32(at), u32(at + 4));
          else if (code === 3) s.endNanos = unitsToNanos(conv, u32(at), u32(at + 4));
          else if (code === 4) s.ifRecv = u64(at);
          else if (code === 5) s.ifDrop = u64(at);
          else if (code === 6) s.filterAccept = u64(at);
          else if (code === 7) s.osDrop = u64(at);
          else if (code === 8) s.usrDeliv = u64(at);
        });
        if (!ok) return false;
        if (this.meta.statistics.length < MAX_STATISTICS) this.meta.statistics.push(s);
        return true;
      }
      default:
        return true; // unknown or unsupported block type: length-checked, skipped
    }
  }

  private packetOptions(pkt: CapturedPacket, b: Buffer, at: number, end: number, le: boolean, base: number, flags = true): boolean {
    return this.options(b, at, end, le, base, (code, v, n) => {
      if (code === OPT_COMMENT) pkt.comment = str(b, v, n);
      else if (code === 2 && n >= 4 && flags) pkt.flags = le ? b.readUInt32LE(v) : b.readUInt32BE(v);
    });
  }

  private nameResolution(b: Buffer, pos: number, bodyEnd: number, le: boolean, base: number): boolean {
    let at = pos + 8;
    for (;;) {
      if (at + 4 > bodyEnd) {
        this.fail("bad-record", base + at, "name resolution block without an end record");
        return false;
      }
      const rtype = le ? b.readUInt16LE(at) : b.readUInt16BE(at);
      const rlen = le ? b.readUInt16LE(at + 2) : b.readUInt16BE(at + 2);
      if (rtype === 0) {
        at += 4;
        break;
      }
      const v = at + 4;
      if (v + rlen > bodyEnd) {
        this.fail("bad-record", base + at, `name record of ${rlen} bytes runs past its block`);
        return false;
      }
      const alen = rtype === 1 ? 4 : rtype === 2 ? 16 : 0;
      if (alen > 0 && rlen >= alen && this.meta.names.length < MAX_NAME_RECORDS) {
        const names = b
          .toString("utf8", v + alen, v + rlen)
          .split("\0")
          .filter((n) => n.length > 0);
        this.meta.names.push({ address: ipString(b, v, alen as 4 | 16), names });
      }
      at = v + pad4(rlen);
    }
    return this.options(b, at, bodyEnd, le, base, () => {});
  }

  /** Walk options in [at, end). False (with `error`) when one runs past the block. */
  private options(b: Buffer, at: number, end: number, le: boolean, base: number, each: (code: number, valueAt: number, len: number) => void): boolean {
    while (at + 4 <= end) {
      const code = le ? b.readUInt16LE(at) : b.readUInt16BE(at);
      const n = le ? b.readUInt16LE(at + 2) : b.readUInt16BE(at + 2);
      if (code === OPT_ENDOFOPT) return true;
      if (at + 4 + n > end) {
        this.fail("bad-option", base + at, `option ${code} of ${n} bytes runs past its block`);
        return false;
      }
      each(code, at + 4, n);
      at += 4 + pad4(n);
    }
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

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

export interface StatisticsSpec {
  interfaceId: number;
  tsNanos: bigint;
  startNanos?: bigint;
  endNanos?: bigint;
  ifRecv?: bigint;
  ifDrop?: bigint;
  osDrop?: bigint;
  comment?: string;
}

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
    this.ensure(total);
    const b = this.buf;
    const s = this.len;
    if (this.le) {
      b.writeUInt32LE(BT_EPB, s);
      b.writeUInt32LE(total, s + 4);
      b.writeUInt32LE(interfaceId, s + 8);
      b.writeUInt32LE(hi, s + 12);
      b.writeUInt32LE(lo, s + 16);
      b.writeUInt32LE(caplen, s + 20);
      b.writeUInt32LE(originalLength ?? caplen, s + 24);
    } else {
      b.writeUInt32BE(BT_EPB, s);
      b.writeUInt32BE(total, s + 4);
      b.writeUInt32BE(interfaceId, s + 8);
      b.writeUInt32BE(hi, s + 12);
      b.writeUInt32BE(lo, s + 16);
      b.writeUInt32BE(caplen, s + 20);
      b.writeUInt32BE(originalLength ?? caplen, s + 24);
    }
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
    const padded = (caplen + 3) & ~3;
    const total = 32 + padded;
    this.ensure(total);
    const b = this.buf;
    const s = this.len;
    if (this.le) {
      b.writeUInt32LE(BT_EPB, s);
      b.writeUInt32LE(total, s + 4);
      b.writeUInt32LE(interfaceId, s + 8);
      b.writeUInt32LE(hl.hi, s + 12);
      b.writeUInt32LE(hl.lo, s + 16);
      b.writeUInt32LE(caplen, s + 20);
      b.writeUInt32LE(originalLength, s + 24);
    } else {
      b.writeUInt32BE(BT_EPB, s);
      b.writeUInt32BE(total, s + 4);
      b.writeUInt32BE(interfaceId, s + 8);
      b.writeUInt32BE(hl.hi, s + 12);
      b.writeUInt32BE(hl.lo, s + 16);
      b.writeUInt32BE(caplen, s + 20);
      b.writeUInt32BE(originalLength, s + 24);
    }
    src.copy(b, s + 28, start, start + caplen);
    let at = s + 28 + caplen;
    while (at < s + 28 + padded) b[at++] = 0;
    if (this.le) b.writeUInt32LE(total, at);
    else b.writeUInt32BE(total, at);
    this.len = s + total;
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

function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.includes("::") ? a.split("::") : [a, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/**
 * Streaming pcapng file writer. Block calls are synchronous and buffer; `writePacket` returns true
 * when the buffer is past its high-water mark and the caller should `await drain()` (like
 * stream.write), so a merge of any size holds at most one buffer of output.
 */
export class PcapngWriter {
  private readonly enc: PcapngEncoder;
  private readonly fh: FileHandle;
  private readonly highWater: number;
  private readonly spares: Buffer[] = [];
  private readonly inflight: Promise<void>[] = [];
  private written = 0;
  packets = 0;

  /** Buffers being written at once: page-cache copies overlap each other and the encoding. */
  static readonly MAX_INFLIGHT = 3;

  private constructor(fh: FileHandle, enc: PcapngEncoder, highWater: number) {
    this.fh = fh;
    this.enc = enc;
    this.highWater = highWater;
  }

  static async create(path: string, section: SectionSpec = {}, opts: { highWaterBytes?: number } = {}): Promise<PcapngWriter> {
    const highWater = opts.highWaterBytes ?? 1 << 20;
    const fh = await open(path, "w", 0o640);
    return new PcapngWriter(fh, new PcapngEncoder(section, highWater + 65536), highWater);
  }

  get bytesWritten(): number {
    return this.written + this.enc.length;
  }

  addInterface(i: InterfaceSpec): number {
    return this.enc.addInterface(i);
  }
  writePacket(p: PacketSpec): boolean {
    this.enc.writePacket(p);
    this.packets++;
    return this.enc.length >= this.highWater;
  }
  acceptsRawEpb(interfaceId: number): boolean {
    return this.enc.acceptsRawEpb(interfaceId);
  }
  /** See PcapngEncoder.appendEpbRun; same return as writePacket. */
  appendEpbRun(src: Buffer, from: number, to: number, offs: Int32Array, ifaces: Int32Array, his: Float64Array, los: Float64Array, count: number): boolean {
    this.enc.appendEpbRun(src, from, to, offs, ifaces, his, los, count);
    this.packets += count;
    return this.enc.length >= this.highWater;
  }
  /** EPB from a raw batch entry (see PcapngEncoder.writeEpbRaw); same return as writePacket. */
  writeEpbRaw(interfaceId: number, sec: number, nsec: number, src: Buffer, start: number, caplen: number, originalLength: number): boolean {
    this.enc.writeEpbRaw(interfaceId, sec, nsec, src, start, caplen, originalLength);
    this.packets++;
    return this.enc.length >= this.highWater;
  }
  /** writePacket without the spec object; same return. */
  writeEpb(interfaceId: number, tsNanos: bigint, data: Uint8Array, originalLength?: number, comment?: string, flags?: number): boolean {
    this.enc.writeEpb(interfaceId, tsNanos, data, originalLength, comment, flags);
    this.packets++;
    return this.enc.length >= this.highWater;
  }
  writeSimplePacket(data: Uint8Array, originalLength?: number): boolean {
    this.enc.writeSimplePacket(data, originalLength);
    this.packets++;
    return this.enc.length >= this.highWater;
  }
  writeNames(records: NameRecord[]): void {
    this.enc.writeNames(records);
  }
  writeStatistics(s: StatisticsSpec): void {
    this.enc.writeStatistics(s);
  }

  /**
   * Hand what is buffered to the file (positioned write) and continue in a spare buffer. Waits only
   * when MAX_INFLIGHT writes are already under way, so memory stays at a few buffers.
   */
  async drain(): Promise<void> {
    while (this.inflight.length >= PcapngWriter.MAX_INFLIGHT) await this.inflight.shift();
    if (this.enc.length === 0) return;
    const { buf, length } = this.enc.swap(this.spares.pop() ?? Buffer.allocUnsafe(this.highWater + 65536));
    const position = this.written;
    this.written += length;
    const w = (async () => {
      let off = 0;
      while (off < length) {
        const { bytesWritten } = await this.fh.write(buf, off, length - off, position + off);
        off += bytesWritten;
      }
      this.spares.push(buf);
    })();
    w.catch(() => undefined); // observed later (drain/close); not an unhandled rejection meanwhile
    this.inflight.push(w);
  }

  async close(): Promise<void> {
    try {
      await this.drain();
      // allSettled first: never close the handle under a write still in flight
      const results = await Promise.allSettled(this.inflight.splice(0));
      for (const r of results) if (r.status === "rejected") throw r.reason;
    } finally {
      await this.fh.close();
    }
  }
}
