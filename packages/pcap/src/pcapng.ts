// pcapng (draft-ietf-opsawg-pcapng) reader: SHB, IDB, EPB, SPB, NRB, ISB and the obsolete Packet
// Block, several sections/interfaces and both byte orders. The writer is pcapng-encoder.ts.
// Not handled: Decryption Secrets, custom and systemd blocks (skipped whole), compressed files.
import { MAX_BLOCK_BYTES, MAX_PACKET_BYTES, type FormatError } from "./errors.js";
import { ipv4String } from "./ipv4.js";
import { ipv6String } from "./ipv6.js";
import type { FormatParser } from "./parser.js";
import { BT_EPB, BT_IDB, BT_ISB, BT_NRB, BT_PB, BT_SHB, BT_SPB, BYTE_ORDER_MAGIC, OPT_COMMENT, OPT_ENDOFOPT, pad4 } from "./pcapng-blocks.js";
import { divmod64, dm, RawBatch } from "./raw.js";
import type { CaptureMeta, CapturedPacket, InterfaceInfo, InterfaceStatistics, SectionInfo, TsResolution } from "./types.js";

/** Interfaces and name/statistics entries kept per file; a corrupt file cannot grow them further. */
const MAX_INTERFACES = 65_536;
const MAX_NAME_RECORDS = 65_536;
const MAX_STATISTICS = 65_536;

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
        this.meta.names.push({ address: alen === 4 ? ipv4String(b, v) : ipv6String(b, v), names });
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
