// Classic libpcap savefile (pcap-savefile(5), draft-ietf-opsawg-pcap): both byte orders,
// microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d) magic. Not handled: the Kuznetzov
// "modified pcap" (0xa1b2cd34) and other forks; they are rejected as bad-magic.
import { MAX_PACKET_BYTES, type FormatError } from "./errors.js";
import { RawBatch } from "./raw.js";
import type { FormatParser } from "./parser.js";
import type { CaptureMeta, CapturedPacket } from "./types.js";

const PCAP_MAGIC_MICRO = 0xa1b2c3d4;
const PCAP_MAGIC_NANO = 0xa1b23c4d;
export const PCAP_HEADER_BYTES = 24;
const PCAP_RECORD_HEADER_BYTES = 16;

export interface PcapHeader {
  littleEndian: boolean;
  nanos: boolean;
  versionMajor: number;
  versionMinor: number;
  thiszone: number;
  snaplen: number;
  linktype: number;
  /** FCS length in bytes when the header's F bit is set (draft-ietf-opsawg-pcap §4). */
  fcsLength?: number;
}

export type ParseResult<T> = { ok: true; value: T } | ({ ok: false } & FormatError);

/** True when the first four bytes are a classic pcap magic in either byte order. */
export function isPcapMagic(b: Buffer, at = 0): boolean {
  if (b.length < at + 4) return false;
  const le = b.readUInt32LE(at);
  const be = b.readUInt32BE(at);
  return le === PCAP_MAGIC_MICRO || le === PCAP_MAGIC_NANO || be === PCAP_MAGIC_MICRO || be === PCAP_MAGIC_NANO;
}

/** Parse the 24-byte file header at `at`. Never throws. */
export function parsePcapHeader(b: Buffer, at = 0): ParseResult<PcapHeader> {
  if (b.length - at < PCAP_HEADER_BYTES) {
    return { ok: false, code: "truncated", offset: at, message: `pcap file header needs ${PCAP_HEADER_BYTES} bytes, have ${Math.max(0, b.length - at)}` };
  }
  const le = b.readUInt32LE(at);
  let littleEndian: boolean;
  let nanos: boolean;
  if (le === PCAP_MAGIC_MICRO || le === PCAP_MAGIC_NANO) {
    littleEndian = true;
    nanos = le === PCAP_MAGIC_NANO;
  } else {
    const be = b.readUInt32BE(at);
    if (be !== PCAP_MAGIC_MICRO && be !== PCAP_MAGIC_NANO) {
      return { ok: false, code: "bad-magic", offset: at, message: `not a pcap file (magic 0x${be.toString(16).padStart(8, "0")})` };
    }
    littleEndian = false;
    nanos = be === PCAP_MAGIC_NANO;
  }
  const u16 = (o: number) => (littleEndian ? b.readUInt16LE(at + o) : b.readUInt16BE(at + o));
  const u32 = (o: number) => (littleEndian ? b.readUInt32LE(at + o) : b.readUInt32BE(at + o));
  const versionMajor = u16(4);
  const versionMinor = u16(6);
  // Version 2.4 since 1998; 2.2/2.3 files differ only in field order of ancient writers we never see.
  if (versionMajor !== 2) {
    return { ok: false, code: "bad-version", offset: at + 4, message: `unsupported pcap version ${versionMajor}.${versionMinor}` };
  }
  const thiszone = littleEndian ? b.readInt32LE(at + 8) : b.readInt32BE(at + 8);
  const network = u32(20);
  const header: PcapHeader = {
    littleEndian,
    nanos,
    versionMajor,
    versionMinor,
    thiszone,
    snaplen: u32(16),
    linktype: network & 0xffff,
  };
  if (network & 0x10000000) header.fcsLength = ((network >>> 29) & 0x7) * 2;
  return { ok: true, value: header };
}

/** Record parser for the body of a classic pcap file (after the 24-byte header). */
export class PcapParser implements FormatParser {
  need = 0;
  error: FormatError | undefined;
  private readonly le: boolean;
  private readonly fracMax: number;
  private readonly fracToNs: bigint;
  private readonly fracMul: number;
  private readonly linktype: number;

  constructor(header: PcapHeader, meta: CaptureMeta) {
    this.le = header.littleEndian;
    this.fracMax = header.nanos ? 1_000_000_000 : 1_000_000;
    this.fracToNs = header.nanos ? 1n : 1000n;
    this.fracMul = header.nanos ? 1 : 1000;
    this.linktype = header.linktype;
    meta.interfaces.push({
      id: 0,
      section: 0,
      linktype: header.linktype,
      snaplen: header.snaplen,
      tsresol: { base: 10, exp: header.nanos ? 9 : 6 },
      tsOffsetSeconds: 0n,
      ...(header.fcsLength !== undefined ? { fcsLength: header.fcsLength } : {}),
    });
  }

  parse(b: Buffer, pos: number, base: number, out: CapturedPacket[] | RawBatch, max: number): number {
    this.need = 0;
    const le = this.le;
    const end = b.length;
    const raw = out instanceof RawBatch ? out : undefined;
    const objs = raw ? undefined : (out as CapturedPacket[]);
    while ((raw ? raw.n : objs!.length) < max) {
      if (end - pos < PCAP_RECORD_HEADER_BYTES) {
        this.need = PCAP_RECORD_HEADER_BYTES;
        return pos;
      }
      const sec = le ? b.readUInt32LE(pos) : b.readUInt32BE(pos);
      const frac = le ? b.readUInt32LE(pos + 4) : b.readUInt32BE(pos + 4);
      const caplen = le ? b.readUInt32LE(pos + 8) : b.readUInt32BE(pos + 8);
      const origlen = le ? b.readUInt32LE(pos + 12) : b.readUInt32BE(pos + 12);
      if (caplen > MAX_PACKET_BYTES) {
        this.error = { code: "packet-too-large", offset: base + pos, message: `pcap record claims ${caplen} captured bytes (max ${MAX_PACKET_BYTES})` };
        return pos;
      }
      if (frac >= this.fracMax) {
        this.error = { code: "bad-timestamp", offset: base + pos + 4, message: `pcap record timestamp fraction ${frac} out of range` };
        return pos;
      }
      const total = PCAP_RECORD_HEADER_BYTES + caplen;
      if (end - pos < total) {
        this.need = total;
        return pos;
      }
      // caplen > origlen breaks no framing; some embedded writers do it, so it is reported as is.
      if (raw) {
        const i = raw.n++;
        raw.sec[i] = sec;
        raw.nsec[i] = frac * this.fracMul;
        raw.start[i] = pos + PCAP_RECORD_HEADER_BYTES;
        raw.caplen[i] = caplen;
        raw.origlen[i] = origlen;
        raw.iface[i] = 0;
        raw.linktype[i] = this.linktype;
        raw.blockLen[i] = 0;
        pos += total;
        continue;
      }
      objs!.push({
        interfaceId: 0,
        linktype: this.linktype,
        tsNanos: BigInt(sec) * 1_000_000_000n + BigInt(frac) * this.fracToNs,
        capturedLength: caplen,
        originalLength: origlen,
        data: b.subarray(pos + PCAP_RECORD_HEADER_BYTES, pos + total),
        offset: base + pos,
      });
      pos += total;
    }
    return pos;
  }
}

/** Encode a classic pcap file header (for tests, fixtures and benchmarks). */
export function encodePcapHeader(opts: { linktype: number; snaplen?: number; nanos?: boolean; littleEndian?: boolean }): Buffer {
  const b = Buffer.alloc(PCAP_HEADER_BYTES);
  const le = opts.littleEndian ?? true;
  const w32 = (v: number, o: number) => (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  const w16 = (v: number, o: number) => (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  w32(opts.nanos ? PCAP_MAGIC_NANO : PCAP_MAGIC_MICRO, 0);
  w16(2, 4);
  w16(4, 6);
  w32(opts.snaplen ?? 262144, 16);
  w32(opts.linktype, 20);
  return b;
}

/** Encode one classic pcap record; `tsNanos` is truncated to microseconds unless `nanos`. */
export function encodePcapRecord(tsNanos: bigint, data: Buffer, opts: { nanos?: boolean; littleEndian?: boolean; originalLength?: number } = {}): Buffer {
  const b = Buffer.alloc(PCAP_RECORD_HEADER_BYTES + data.length);
  const le = opts.littleEndian ?? true;
  const w32 = (v: number, o: number) => (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  w32(Number(tsNanos / 1_000_000_000n), 0);
  const ns = Number(tsNanos % 1_000_000_000n);
  w32(opts.nanos ? ns : Math.floor(ns / 1000), 4);
  w32(data.length, 8);
  w32(opts.originalLength ?? data.length, 12);
  data.copy(b, PCAP_RECORD_HEADER_BYTES);
  return b;
}
