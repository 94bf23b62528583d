// The emulated device's SNMPv3 USM against an independent implementation: the net-snmp library's
// client (what VERIFY uses), plus the RFC 3414 key-localization vectors and the discovery report's
// bytes on the wire.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import snmp from "net-snmp";
import { localizeKey } from "./snmp-usm.js";
import { startSnmpAgent, type SnmpAgentHandle } from "./snmp.js";

const DEV = "127.0.15.3";
const USER = { user: "CaptureScript", authProtocol: "sha" as const, authKey: "Capture01!", privProtocol: "aes" as const, privKey: "Capture02!" };
let agent: SnmpAgentHandle;

beforeAll(async () => {
  agent = await startSnmpAgent({ address: DEV, port: 0, uptimeMs: () => 4_321_000, sysDescr: "AudioCodes MSBR (capsync emulator)", v3: USER });
});
afterAll(() => agent?.close());

function get(user: Partial<typeof USER> = {}, level = snmp.SecurityLevel.authPriv): Promise<{ error?: string; varbinds?: snmp.Varbind[] }> {
  const u = { ...USER, ...user };
  const session = snmp.createV3Session(
    DEV,
    { name: u.user, level, authProtocol: snmp.AuthProtocols[u.authProtocol as "sha"], authKey: u.authKey, privProtocol: snmp.PrivProtocols.aes, privKey: u.privKey },
    { port: agent.port, retries: 0, timeout: 1000 },
  );
  return new Promise((resolve) =>
    session.get(["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0"], (err, varbinds) => {
      session.close();
      resolve(err ? { error: err.message } : { varbinds: varbinds! });
    }),
  );
}

describe("RFC 3414 A.3 key localization vectors (password 'maplesyrup', engine 00…02)", () => {
  const engine = Buffer.from("000000000000000000000002", "hex");
  it("MD5", () => expect(localizeKey("md5", "maplesyrup", engine).toString("hex")).toBe("526f5eed9fcce26f8964c2930787d82b"));
  it("SHA-1", () => expect(localizeKey("sha1", "maplesyrup", engine).toString("hex")).toBe("6695febc9288e36282235fc7151f128497b38f3f"));
});

describe("SNMPv3 authPriv responder (net-snmp client)", () => {
  it("the configured user gets sysDescr and sysUpTime, encrypted and authenticated", async () => {
    const before = agent.stats();
    const r = await get();
    expect(r.error).toBeUndefined();
    expect(r.varbinds!.map((v) => [v.oid, v.type, Buffer.isBuffer(v.value) ? v.value.toString() : v.value])).toEqual([
      ["1.3.6.1.2.1.1.1.0", snmp.ObjectType.OctetString, "AudioCodes MSBR (capsync emulator)"],
      ["1.3.6.1.2.1.1.3.0", snmp.ObjectType.TimeTicks, 432_100],
      ["1.3.6.1.2.1.1.5.0", snmp.ObjectType.NoSuchObject, null],
    ]);
    const after = agent.stats();
    expect(after.requests - before.requests).toBe(1);
    // The client's discovery GET (empty engine ID) got the unknownEngineIDs report first.
    expect(after.usm!.unknownEngineIDs - before.usm!.unknownEngineIDs).toBe(1);
  });

  it("a wrong auth key: the wrongDigests report, nothing answered", async () => {
    const before = agent.stats();
    expect(await get({ authKey: "Capture09!" })).toEqual({ error: "Wrong Digest (incorrect password, community or key)" });
    expect(agent.stats().usm!.wrongDigests - before.usm!.wrongDigests).toBe(1);
    expect(agent.stats().requests).toBe(before.requests);
  });

  it("an unknown user: the unknownUserNames report", async () => {
    expect(await get({ user: "nobody" })).toEqual({ error: "Unknown User Name" });
  });

  it("a wrong priv key: the decryptionErrors report", async () => {
    expect(await get({ privKey: "Capture09!" })).toEqual({ error: "Decryption Error" });
  });

  it("authNoPriv for an authPriv user: the unsupportedSecLevels report", async () => {
    expect(await get({}, snmp.SecurityLevel.authNoPriv)).toEqual({ error: "Unsupported Security Level" });
  });

  it("other auth protocols (MD5, SHA-256, SHA-512) with AES", async () => {
    for (const authProtocol of ["md5", "sha256", "sha512"] as const) {
      const a = await startSnmpAgent({ address: DEV, port: 0, uptimeMs: () => 10, sysDescr: authProtocol, v3: { ...USER, authProtocol } });
      const session = snmp.createV3Session(DEV, { name: USER.user, level: snmp.SecurityLevel.authPriv, authProtocol: snmp.AuthProtocols[authProtocol], authKey: USER.authKey, privProtocol: snmp.PrivProtocols.aes, privKey: USER.privKey }, { port: a.port, retries: 0, timeout: 1000 });
      const value = await new Promise<string>((resolve, reject) => session.get(["1.3.6.1.2.1.1.1.0"], (e, vb) => (e ? reject(e) : resolve(String(vb![0]!.value)))));
      session.close();
      await a.close();
      expect(value).toBe(authProtocol);
    }
  });

  it("discovery on the wire: a Report carrying the engine ID, boots 1, and usmStatsUnknownEngineIDs", async () => {
    // A discovery request as clients send it: msgID 0x1234, flags reportable only, empty engine ID
    // and user (USM parameters 04 00 02 01 00 02 01 00 04 00 04 00 04 00), a plain GET without varbinds.
    const usm = berSeq(Buffer.from("0400020100020100040004000400", "hex"));
    const global = berSeq(Buffer.concat([berInt(0x1234), berInt(65507), Buffer.from([0x04, 0x01, 0x04]), berInt(3)]));
    const msg = berSeq(Buffer.concat([berInt(3), global, Buffer.from([0x04, usm.length]), usm, plainScopedGet(0x2345)]));
    const answer = await roundTrip(msg);
    const hex = answer.toString("hex");
    // msgVersion 3, msgID echoed, flags 0 (noAuthNoPriv report), USM model 3.
    expect(hex).toMatch(/^30[0-9a-f]{2}020103300f02021234020300ffe3040100020103/);
    expect(hex).toContain(agent.engineId!.toString("hex"));
    // The Report PDU (0xa8) with the same request-id and the usmStatsUnknownEngineIDs OID .1.3.6.1.6.3.15.1.1.4.0.
    expect(hex).toMatch(/a8[0-9a-f]{2}02022345/);
    expect(hex).toContain("060a2b060106030f01010400");
  });
});

function berLen(n: number): Buffer {
  return n < 0x80 ? Buffer.from([n]) : Buffer.from([0x81, n]);
}
function berSeq(content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x30]), berLen(content.length), content]);
}
function berInt(n: number): Buffer {
  const b = n < 0x80 ? Buffer.from([n]) : n < 0x8000 ? Buffer.from([n >> 8, n & 0xff]) : Buffer.from([0, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([0x02, b.length]), b]);
}
function plainScopedGet(requestId: number): Buffer {
  const pdu = Buffer.concat([berInt(requestId), berInt(0), berInt(0), Buffer.from([0x30, 0x00])]);
  return berSeq(Buffer.concat([Buffer.from([0x04, 0x00, 0x04, 0x00, 0xa0]), berLen(pdu.length), pdu]));
}
function roundTrip(msg: Buffer): Promise<Buffer> {
  const s = dgram.createSocket("udp4");
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no answer")), 2000);
    s.on("message", (b) => {
      clearTimeout(t);
      s.close();
      resolve(b);
    });
    s.send(msg, agent.port, DEV);
  });
}
