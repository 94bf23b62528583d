// The device side of SNMPv3 with the User-based Security Model (RFC 3412 message, RFC 3414 USM,
// RFC 3826 AES-128, RFC 7860 HMAC-SHA-2), for one authPriv user — what an AudioCodes device's
// `snmp v3-users` entry answers. It gives the real USM reports: discovery (unknownEngineIDs),
// unknownUserNames, unsupportedSecLevels, notInTimeWindow, wrongDigests, decryptionErrors.
// Not handled: DES (OpenSSL 3 drops it), AES-192/256, noAuth users, contexts other than "".
import { createCipheriv, createDecipheriv, createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Bad, encodePdu, expect, intContent, parsePdu, readInt, tlv, type SnmpPdu } from "./snmp-ber.js";

export const USM_AUTH = ["md5", "sha", "sha224", "sha256", "sha384", "sha512"] as const;
export type UsmAuthProtocol = (typeof USM_AUTH)[number];

export interface UsmUser {
  user: string;
  authProtocol: UsmAuthProtocol;
  authKey: string;
  privProtocol: "aes";
  privKey: string;
}

export type UsmReport = "unsupportedSecLevels" | "notInTimeWindows" | "unknownUserNames" | "unknownEngineIDs" | "wrongDigests" | "decryptionErrors";
export type UsmStats = Record<UsmReport, number>;

const REPORT_OID: Record<UsmReport, string> = {
  unsupportedSecLevels: "1.3.6.1.6.3.15.1.1.1.0",
  notInTimeWindows: "1.3.6.1.6.3.15.1.1.2.0",
  unknownUserNames: "1.3.6.1.6.3.15.1.1.3.0",
  unknownEngineIDs: "1.3.6.1.6.3.15.1.1.4.0",
  wrongDigests: "1.3.6.1.6.3.15.1.1.5.0",
  decryptionErrors: "1.3.6.1.6.3.15.1.1.6.0",
};
const HASH: Record<UsmAuthProtocol, { alg: string; macLen: number }> = {
  md5: { alg: "md5", macLen: 12 },
  sha: { alg: "sha1", macLen: 12 },
  sha224: { alg: "sha224", macLen: 16 },
  sha256: { alg: "sha256", macLen: 24 },
  sha384: { alg: "sha384", macLen: 32 },
  sha512: { alg: "sha512", macLen: 48 },
};
const SEQ = 0x30;
const INT = 0x02;
const OCTETS = 0x04;
const FLAG_AUTH = 1;
const FLAG_PRIV = 2;
const FLAG_REPORTABLE = 4;
const USM_MODEL = 3;
/** RFC 3414 §3.2 step 7: messages more than 150 s off the engine's clock are refused. */
const TIME_WINDOW_S = 150;

/** RFC 3414 A.2: password → key (1 MiB of the repeated password hashed), localized to the engine. */
export function localizeKey(alg: string, password: string, engineId: Buffer): Buffer {
  const pw = Buffer.from(password, "utf8");
  const h = createHash(alg);
  const chunk = Buffer.alloc(64);
  for (let done = 0, i = 0; done < 1_048_576; done += 64) {
    for (let j = 0; j < 64; j++) chunk[j] = pw[i++ % pw.length]!;
    h.update(chunk);
  }
  const ku = h.digest();
  return createHash(alg).update(Buffer.concat([ku, engineId, ku])).digest();
}

interface Incoming {
  msgId: number;
  maxSize: number;
  flags: number;
  engineId: Buffer;
  boots: number;
  time: number;
  user: string;
  authParams: { start: number; end: number };
  privParams: Buffer;
  /** Plain scoped PDU, or the encrypted one (OCTET STRING content). */
  data: { encrypted: boolean; start: number; end: number };
}

export class UsmEngine {
  readonly engineId: Buffer;
  readonly stats: UsmStats = { unsupportedSecLevels: 0, notInTimeWindows: 0, unknownUserNames: 0, unknownEngineIDs: 0, wrongDigests: 0, decryptionErrors: 0 };
  private readonly bootedAt = Date.now();
  private readonly boots = 1;
  private readonly authKey: Buffer;
  private readonly privKey: Buffer;
  private salt = 0n;

  constructor(
    private readonly u: UsmUser,
    engineId?: Buffer,
  ) {
    // RFC 3411 SnmpEngineID: enterprise 5003 (AudioCodes) with the high bit set, format 4 (text).
    this.engineId = engineId ?? Buffer.concat([Buffer.from([0x80, 0x00, 0x13, 0x8b, 0x04]), Buffer.from("capsync-emulator")]);
    this.authKey = localizeKey(HASH[u.authProtocol].alg, u.authKey, this.engineId);
    this.privKey = localizeKey(HASH[u.authProtocol].alg, u.privKey, this.engineId).subarray(0, 16);
  }

  private now(): number {
    return Math.floor((Date.now() - this.bootedAt) / 1000);
  }

  /** The answer to one v3 datagram (a response or a USM report), or undefined to drop it. */
  handle(buf: Buffer, answer: (req: SnmpPdu) => SnmpPdu): Buffer | undefined {
    const m = parseV3(buf);
    if (m instanceof Bad) return undefined;
    const reportable = (m.flags & FLAG_REPORTABLE) !== 0;
    const report = (kind: UsmReport, requestId: number, authenticated = false): Buffer | undefined => {
      this.stats[kind]++;
      if (!reportable) return undefined;
      const pdu: SnmpPdu = { pdu: "report", requestId, errorStatus: 0, errorIndex: 0, varbinds: [{ oid: REPORT_OID[kind], value: { type: "other", tag: 0x41, bytes: intContent(this.stats[kind]) } }] };
      return this.encode(m, pdu, authenticated ? FLAG_AUTH : 0);
    };
    const plainRequestId = () => {
      if (m.data.encrypted) return 0;
      const scoped = parseScoped(buf, m.data.start, m.data.end);
      return scoped instanceof Bad ? 0 : scoped.pdu.requestId;
    };
    if (!m.engineId.equals(this.engineId)) return report("unknownEngineIDs", plainRequestId());
    if (m.user !== this.u.user) return report("unknownUserNames", plainRequestId());
    if ((m.flags & (FLAG_AUTH | FLAG_PRIV)) !== (FLAG_AUTH | FLAG_PRIV)) return report("unsupportedSecLevels", plainRequestId());
    const { alg, macLen } = HASH[this.u.authProtocol];
    const got = buf.subarray(m.authParams.start, m.authParams.end);
    const zeroed = Buffer.from(buf);
    zeroed.fill(0, m.authParams.start, m.authParams.end);
    const want = createHmac(alg, this.authKey).update(zeroed).digest().subarray(0, macLen);
    if (got.length !== macLen || !timingSafeEqual(got, want)) return report("wrongDigests", 0);
    if (m.boots !== this.boots || Math.abs(m.time - this.now()) > TIME_WINDOW_S) return report("notInTimeWindows", 0, true);
    if (!m.data.encrypted || m.privParams.length !== 8) return report("decryptionErrors", 0);
    const iv = Buffer.concat([u32(m.boots), u32(m.time), m.privParams]);
    const d = createDecipheriv("aes-128-cfb", this.privKey, iv);
    const plain = Buffer.concat([d.update(buf.subarray(m.data.start, m.data.end)), d.final()]);
    const scoped = parseScoped(plain, 0, plain.length);
    if (scoped instanceof Bad) return report("decryptionErrors", 0);
    if (scoped.pdu.pdu !== "get") return undefined;
    return this.encode(m, answer(scoped.pdu), FLAG_AUTH | FLAG_PRIV);
  }

  private encode(req: Incoming, pdu: SnmpPdu, flags: number): Buffer {
    const boots = this.boots;
    const time = this.now();
    const scoped = tlv(SEQ, Buffer.concat([tlv(OCTETS, this.engineId), tlv(OCTETS, Buffer.alloc(0)), encodePdu(pdu)]));
    let data = scoped;
    let privParams = Buffer.alloc(0);
    if (flags & FLAG_PRIV) {
      privParams = Buffer.alloc(8);
      privParams.writeBigUInt64BE(this.salt++ & 0xffffffffffffffffn);
      const c = createCipheriv("aes-128-cfb", this.privKey, Buffer.concat([u32(boots), u32(time), privParams]));
      data = tlv(OCTETS, Buffer.concat([c.update(scoped), c.final()]));
    }
    const { alg, macLen } = HASH[this.u.authProtocol];
    const authed = (flags & FLAG_AUTH) !== 0;
    const userName = authed ? Buffer.from(this.u.user) : Buffer.alloc(0);
    const placeholder = Buffer.alloc(authed ? macLen : 0);
    const usm = tlv(SEQ, Buffer.concat([tlv(OCTETS, this.engineId), tlv(INT, intContent(boots)), tlv(INT, intContent(time)), tlv(OCTETS, userName), tlv(OCTETS, placeholder), tlv(OCTETS, privParams)]));
    const global = tlv(SEQ, Buffer.concat([tlv(INT, intContent(req.msgId)), tlv(INT, intContent(65507)), tlv(OCTETS, Buffer.from([flags])), tlv(INT, intContent(USM_MODEL))]));
    const msg = tlv(SEQ, Buffer.concat([tlv(INT, intContent(3)), global, tlv(OCTETS, usm), data]));
    if (authed) {
      // The digest covers the whole message with its own field zeroed, then goes in that field.
      const at = msg.indexOf(usm) + usm.length - tlv(OCTETS, privParams).length - macLen;
      createHmac(alg, this.authKey).update(msg).digest().copy(msg, at, 0, macLen);
    }
    return msg;
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** The SNMP version of a datagram, or undefined when it is not a message at all. */
export function snmpVersion(b: Buffer): number | undefined {
  const msg = expect(b, 0, b.length, SEQ, "not-a-sequence");
  if (msg instanceof Bad) return undefined;
  const ver = expect(b, msg.start, msg.end, INT, "version");
  if (ver instanceof Bad) return undefined;
  const v = readInt(b, ver, true);
  return v instanceof Bad ? undefined : v;
}

function parseScoped(b: Buffer, start: number, end: number): { pdu: SnmpPdu } | Bad {
  const seq = expect(b, start, end, SEQ, "scoped-pdu");
  if (seq instanceof Bad) return seq;
  const ctxEngine = expect(b, seq.start, seq.end, OCTETS, "context-engine-id");
  if (ctxEngine instanceof Bad) return ctxEngine;
  const ctxName = expect(b, ctxEngine.end, seq.end, OCTETS, "context-name");
  if (ctxName instanceof Bad) return ctxName;
  const pdu = parsePdu(b, ctxName.end, seq.end);
  return pdu instanceof Bad ? pdu : { pdu };
}

function parseV3(b: Buffer): Incoming | Bad {
  const msg = expect(b, 0, b.length, SEQ, "not-a-sequence");
  if (msg instanceof Bad) return msg;
  const ver = expect(b, msg.start, msg.end, INT, "version");
  if (ver instanceof Bad) return ver;
  if (readInt(b, ver, true) !== 3) return new Bad("version", ver.start);
  const global = expect(b, ver.end, msg.end, SEQ, "global-data");
  if (global instanceof Bad) return global;
  const ints: number[] = [];
  let off = global.start;
  let flags = 0;
  for (const name of ["msg-id", "max-size", "flags", "security-model"]) {
    const t = expect(b, off, global.end, name === "flags" ? OCTETS : INT, name);
    if (t instanceof Bad) return t;
    if (name === "flags") {
      if (t.end - t.start !== 1) return new Bad("flags", t.start);
      flags = b[t.start]!;
    } else {
      const v = readInt(b, t, true);
      if (v instanceof Bad) return v;
      ints.push(v);
    }
    off = t.end;
  }
  if (ints[2] !== USM_MODEL) return new Bad("security-model", off);
  const secOctets = expect(b, global.end, msg.end, OCTETS, "security-parameters");
  if (secOctets instanceof Bad) return secOctets;
  const usm = expect(b, secOctets.start, secOctets.end, SEQ, "usm");
  if (usm instanceof Bad) return usm;
  const fields: { start: number; end: number }[] = [];
  off = usm.start;
  for (const tag of [OCTETS, INT, INT, OCTETS, OCTETS, OCTETS]) {
    const t = expect(b, off, usm.end, tag, "usm-field");
    if (t instanceof Bad) return t;
    fields.push(t);
    off = t.end;
  }
  const num = (i: number) => {
    const v = readInt(b, { tag: INT, ...fields[i]! }, false);
    return v instanceof Bad ? -1 : v;
  };
  const dataT = expect(b, secOctets.end, msg.end, b[secOctets.end] === OCTETS ? OCTETS : SEQ, "msg-data");
  if (dataT instanceof Bad) return dataT;
  const slice = (i: number) => Buffer.from(b.subarray(fields[i]!.start, fields[i]!.end));
  return {
    msgId: ints[0]!,
    maxSize: ints[1]!,
    flags,
    engineId: slice(0),
    boots: num(1),
    time: num(2),
    user: slice(3).toString("utf8"),
    authParams: fields[4]!,
    privParams: slice(5),
    data: dataT.tag === OCTETS ? { encrypted: true, start: dataT.start, end: dataT.end } : { encrypted: false, start: secOctets.end, end: dataT.end },
  };
}
