// The SNMP codec: RFC 3416 PDUs and the RFC 1901 community message in BER (X.690), just what the
// emulators need: GetRequest / GetResponse / Report of a few scalar OIDs. snmp-usm.ts wraps the
// PDUs in SNMPv3 messages. Not handled: SNMPv1 traps, multi-byte tags, indefinite lengths.

export const SNMP_PORT = 161;
export const OID_SYS_DESCR = "1.3.6.1.2.1.1.1.0";
export const OID_SYS_UPTIME = "1.3.6.1.2.1.1.3.0";
export const OID_SYS_NAME = "1.3.6.1.2.1.1.5.0";

const TAG = { integer: 0x02, octets: 0x04, null: 0x05, oid: 0x06, sequence: 0x30, timeticks: 0x43, noSuchObject: 0x80 } as const;
export const PDU = { get: 0xa0, getNext: 0xa1, response: 0xa2, set: 0xa3, report: 0xa8 } as const;
export type PduType = keyof typeof PDU;

export type SnmpValue =
  | { type: "null" }
  | { type: "integer"; value: number }
  | { type: "octets"; value: Buffer }
  | { type: "timeticks"; value: number }
  | { type: "noSuchObject" }
  | { type: "other"; tag: number; bytes: Buffer };

export interface VarBind {
  oid: string;
  value: SnmpValue;
}

export interface SnmpMessage {
  /** 1 = v2c (the only version this emulator speaks; 0 = v1 is parsed too). */
  version: number;
  community: string;
  pdu: PduType;
  requestId: number;
  errorStatus: number;
  errorIndex: number;
  varbinds: VarBind[];
}

export type SnmpParse = { ok: true; value: SnmpMessage } | { ok: false; code: string; offset: number };

// --- encoding ------------------------------------------------------------------------------------

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n <= 0xff) return Buffer.from([0x81, n]);
  return Buffer.from([0x82, n >> 8, n & 0xff]);
}

export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content]);
}

/** Minimal two's-complement INTEGER content (X.690 §8.3). */
export function intContent(v: number): Buffer {
  const out: number[] = [];
  let n = BigInt(Math.trunc(v));
  for (;;) {
    const byte = Number(n & 0xffn);
    out.unshift(byte);
    n >>= 8n;
    if ((n === 0n && (byte & 0x80) === 0) || (n === -1n && (byte & 0x80) !== 0)) break;
  }
  return Buffer.from(out);
}

/** Unsigned (TimeTicks, Counter32): like INTEGER but never negative. */
function uintContent(v: number): Buffer {
  return intContent(Math.max(0, Math.min(0xffffffff, Math.trunc(v))));
}

function oidContent(oid: string): Buffer {
  const arcs = oid.split(".").map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isInteger(a) || a < 0)) throw new TypeError(`bad OID '${oid}'`);
  const out: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const base128: number[] = [arc & 0x7f];
    let rest = Math.floor(arc / 128);
    while (rest > 0) {
      base128.unshift((rest & 0x7f) | 0x80);
      rest = Math.floor(rest / 128);
    }
    out.push(...base128);
  }
  return Buffer.from(out);
}

function valueTlv(v: SnmpValue): Buffer {
  switch (v.type) {
    case "null":
      return tlv(TAG.null, Buffer.alloc(0));
    case "integer":
      return tlv(TAG.integer, intContent(v.value));
    case "octets":
      return tlv(TAG.octets, v.value);
    case "timeticks":
      return tlv(TAG.timeticks, uintContent(v.value));
    case "noSuchObject":
      return tlv(TAG.noSuchObject, Buffer.alloc(0));
    case "other":
      return tlv(v.tag, v.bytes);
  }
}

export type SnmpPdu = Pick<SnmpMessage, "pdu" | "requestId" | "errorStatus" | "errorIndex" | "varbinds">;

export function encodePdu(m: SnmpPdu): Buffer {
  const varbinds = tlv(TAG.sequence, Buffer.concat(m.varbinds.map((vb) => tlv(TAG.sequence, Buffer.concat([tlv(TAG.oid, oidContent(vb.oid)), valueTlv(vb.value)])))));
  return tlv(PDU[m.pdu], Buffer.concat([tlv(TAG.integer, intContent(m.requestId)), tlv(TAG.integer, intContent(m.errorStatus)), tlv(TAG.integer, intContent(m.errorIndex)), varbinds]));
}

export function encodeSnmp(m: SnmpMessage): Buffer {
  return tlv(TAG.sequence, Buffer.concat([tlv(TAG.integer, intContent(m.version)), tlv(TAG.octets, Buffer.from(m.community, "latin1")), encodePdu(m)]));
}

export function getRequest(requestId: number, oids: string[], community = "public"): Buffer {
  return encodeSnmp({ version: 1, community, pdu: "get", requestId, errorStatus: 0, errorIndex: 0, varbinds: oids.map((oid) => ({ oid, value: { type: "null" } })) });
}

// --- parsing (never throws) ------------------------------------------------------------------------

export interface Tlv {
  tag: number;
  start: number;
  end: number;
}

export class Bad {
  constructor(
    readonly code: string,
    readonly offset: number,
  ) {}
}

export function readTlv(b: Buffer, off: number, limit: number): Tlv | Bad {
  if (off + 2 > limit) return new Bad("truncated", off);
  const tag = b[off]!;
  if ((tag & 0x1f) === 0x1f) return new Bad("long-tag", off);
  let len = b[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) return new Bad("indefinite-length", off + 1);
    if (n > 2) return new Bad("length-too-long", off + 1);
    if (start + n > limit) return new Bad("truncated", off + 1);
    len = n === 1 ? b[start]! : b.readUInt16BE(start);
    start += n;
  }
  if (start + len > limit) return new Bad("truncated", start);
  return { tag, start, end: start + len };
}

export function readInt(b: Buffer, t: Tlv, signed: boolean): number | Bad {
  const n = t.end - t.start;
  if (n < 1 || n > 5) return new Bad("integer-length", t.start);
  let v = 0n;
  for (let i = t.start; i < t.end; i++) v = (v << 8n) | BigInt(b[i]!);
  if (signed && b[t.start]! & 0x80) v -= 1n << BigInt(8 * n);
  return Number(v);
}

function readOid(b: Buffer, t: Tlv): string | Bad {
  if (t.end <= t.start) return new Bad("empty-oid", t.start);
  const first = b[t.start]!;
  const arcs = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  let acc = 0;
  let digits = 0;
  for (let i = t.start + 1; i < t.end; i++) {
    const byte = b[i]!;
    acc = acc * 128 + (byte & 0x7f);
    if (++digits > 5) return new Bad("oid-arc-too-long", i);
    if (!(byte & 0x80)) {
      arcs.push(acc);
      acc = 0;
      digits = 0;
    }
  }
  if (digits) return new Bad("oid-truncated", t.end);
  return arcs.join(".");
}

export function expect(b: Buffer, off: number, limit: number, tag: number, code: string): Tlv | Bad {
  const t = readTlv(b, off, limit);
  if (t instanceof Bad) return t;
  return t.tag === tag ? t : new Bad(code, off);
}

export function parseSnmp(b: Buffer): SnmpParse {
  const r = parseInner(b);
  return r instanceof Bad ? { ok: false, code: r.code, offset: r.offset } : { ok: true, value: r };
}

function parseInner(b: Buffer): SnmpMessage | Bad {
  const msg = expect(b, 0, b.length, TAG.sequence, "not-a-sequence");
  if (msg instanceof Bad) return msg;
  const ver = expect(b, msg.start, msg.end, TAG.integer, "version");
  if (ver instanceof Bad) return ver;
  const version = readInt(b, ver, true);
  if (version instanceof Bad) return version;
  const comm = expect(b, ver.end, msg.end, TAG.octets, "community");
  if (comm instanceof Bad) return comm;
  const pdu = parsePdu(b, comm.end, msg.end);
  if (pdu instanceof Bad) return pdu;
  return { version, community: b.subarray(comm.start, comm.end).toString("latin1"), ...pdu };
}

/** One PDU at `at` (a v2c message's, or a v3 scoped PDU's). */
export function parsePdu(b: Buffer, at: number, limit: number): SnmpPdu | Bad {
  const pduT = readTlv(b, at, limit);
  if (pduT instanceof Bad) return pduT;
  const pdu = (Object.keys(PDU) as PduType[]).find((k) => PDU[k] === pduT.tag);
  if (!pdu || pdu === "report") return new Bad("pdu-type", at);
  const ints: number[] = [];
  let off = pduT.start;
  for (const name of ["request-id", "error-status", "error-index"]) {
    const t = expect(b, off, pduT.end, TAG.integer, name);
    if (t instanceof Bad) return t;
    const v = readInt(b, t, true);
    if (v instanceof Bad) return v;
    ints.push(v);
    off = t.end;
  }
  const list = expect(b, off, pduT.end, TAG.sequence, "varbind-list");
  if (list instanceof Bad) return list;
  const varbinds: VarBind[] = [];
  for (let p = list.start; p < list.end; ) {
    const vb = expect(b, p, list.end, TAG.sequence, "varbind");
    if (vb instanceof Bad) return vb;
    const oidT = expect(b, vb.start, vb.end, TAG.oid, "varbind-oid");
    if (oidT instanceof Bad) return oidT;
    const oid = readOid(b, oidT);
    if (oid instanceof Bad) return oid;
    const valT = readTlv(b, oidT.end, vb.end);
    if (valT instanceof Bad) return valT;
    const bytes = b.subarray(valT.start, valT.end);
    let value: SnmpValue;
    if (valT.tag === TAG.null) value = { type: "null" };
    else if (valT.tag === TAG.octets) value = { type: "octets", value: Buffer.from(bytes) };
    else if (valT.tag === TAG.noSuchObject) value = { type: "noSuchObject" };
    else if (valT.tag === TAG.integer || valT.tag === TAG.timeticks) {
      const v = readInt(b, valT, valT.tag === TAG.integer);
      if (v instanceof Bad) return v;
      value = valT.tag === TAG.integer ? { type: "integer", value: v } : { type: "timeticks", value: v };
    } else value = { type: "other", tag: valT.tag, bytes: Buffer.from(bytes) };
    varbinds.push({ oid, value });
    p = vb.end;
  }
  return { pdu, requestId: ints[0]!, errorStatus: ints[1]!, errorIndex: ints[2]!, varbinds };
}
