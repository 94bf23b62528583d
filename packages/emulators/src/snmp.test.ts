import { describe, expect, it } from "vitest";
import dgram from "node:dgram";
import fc from "fast-check";
import { encodeSnmp, getRequest, parseSnmp, startSnmpAgent, OID_SYS_UPTIME, OID_SYS_NAME } from "./snmp.js";

// The GetRequest server-capture's VERIFY sends (packages/server-capture/src/verify.ts): request-id
// in four bytes, which BER allows; our encoder writes the minimal one.
const VERIFY_GET = "302902010104067075626c6963a01c020400000001020100020100300e300c06082b060102010103000500";

const golden: { name: string; input: string; expected: ReturnType<typeof parseSnmp> }[] = [
  {
    name: "VERIFY's GetRequest sysUpTime.0",
    input: VERIFY_GET,
    expected: { ok: true, value: { version: 1, community: "public", pdu: "get", requestId: 1, errorStatus: 0, errorIndex: 0, varbinds: [{ oid: OID_SYS_UPTIME, value: { type: "null" } }] } },
  },
  {
    name: "our GetRequest, request-id 300",
    input: getRequest(300, [OID_SYS_UPTIME]).toString("hex"),
    expected: { ok: true, value: { version: 1, community: "public", pdu: "get", requestId: 300, errorStatus: 0, errorIndex: 0, varbinds: [{ oid: OID_SYS_UPTIME, value: { type: "null" } }] } },
  },
  { name: "empty", input: "", expected: { ok: false, code: "truncated", offset: 0 } },
  { name: "not a sequence", input: "0201ff", expected: { ok: false, code: "not-a-sequence", offset: 0 } },
  { name: "length beyond the datagram", input: "3005020101", expected: { ok: false, code: "truncated", offset: 2 } },
  { name: "indefinite length", input: "3080", expected: { ok: false, code: "indefinite-length", offset: 1 } },
  { name: "SNMPv1 Trap-PDU (not handled)", input: "300c020101040170a4040201000000", expected: { ok: false, code: "pdu-type", offset: 8 } },
  { name: "SNMPv2-Trap-PDU (not handled)", input: "300b020101040170a7030201010000", expected: { ok: false, code: "pdu-type", offset: 8 } },
  { name: "OID arc longer than 5 base-128 digits", input: "3020020101040170a018020101020100020100300d300b06072b8181818181010500", expected: { ok: false, code: "oid-arc-too-long", offset: 31 } },
];

describe("parseSnmp golden table", () => {
  for (const g of golden) {
    it(g.name, () => {
      expect(parseSnmp(Buffer.from(g.input, "hex"))).toEqual(g.expected);
    });
  }
});

describe("encodeSnmp", () => {
  it("round-trips responses with every value type, negative and large request ids", () => {
    const msg = {
      version: 1,
      community: "private",
      pdu: "response" as const,
      requestId: -123456,
      errorStatus: 0,
      errorIndex: 0,
      varbinds: [
        { oid: OID_SYS_UPTIME, value: { type: "timeticks" as const, value: 0xfffffff0 } },
        { oid: OID_SYS_NAME, value: { type: "octets" as const, value: Buffer.from("msbr-1") } },
        { oid: "1.3.6.1.4.1.5003.9.10.1.1.1.0", value: { type: "integer" as const, value: -1 } },
        { oid: "1.3.6.1.2.1.99.0", value: { type: "noSuchObject" as const } },
      ],
    };
    expect(parseSnmp(encodeSnmp(msg))).toEqual({ ok: true, value: msg });
  });

  it("long lengths (> 127 and > 255 bytes) round-trip", () => {
    const value = Buffer.alloc(300, 0x41);
    const msg = { version: 1, community: "public", pdu: "response" as const, requestId: 7, errorStatus: 0, errorIndex: 0, varbinds: [{ oid: OID_SYS_NAME, value: { type: "octets" as const, value } }] };
    expect(parseSnmp(encodeSnmp(msg))).toEqual({ ok: true, value: msg });
  });

  it("never throws on arbitrary bytes or on every truncation of a valid message", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => typeof parseSnmp(Buffer.from(b)).ok === "boolean"));
    const valid = getRequest(99, [OID_SYS_UPTIME, OID_SYS_NAME]);
    for (let n = 0; n < valid.length; n++) expect(parseSnmp(valid.subarray(0, n)).ok).toBe(false);
  });
});

describe("startSnmpAgent", () => {
  it("answers GET sysUpTime.0 with the same request id and TimeTicks; ignores junk", async () => {
    const agent = await startSnmpAgent({ address: "127.0.0.1", port: 0, uptimeMs: () => 12_345, sysName: "dev" });
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    const answer = new Promise<Buffer>((r) => sock.once("message", (m) => r(m)));
    sock.send(Buffer.from("junk"), agent.port, "127.0.0.1");
    sock.send(getRequest(4242, [OID_SYS_UPTIME, OID_SYS_NAME, "1.3.6.1.2.1.1.4.0"]), agent.port, "127.0.0.1");
    const parsed = parseSnmp(await answer);
    sock.close();
    await agent.close();
    expect(parsed).toEqual({
      ok: true,
      value: {
        version: 1,
        community: "public",
        pdu: "response",
        requestId: 4242,
        errorStatus: 0,
        errorIndex: 0,
        varbinds: [
          { oid: OID_SYS_UPTIME, value: { type: "timeticks", value: 1234 } },
          { oid: OID_SYS_NAME, value: { type: "octets", value: Buffer.from("dev") } },
          { oid: "1.3.6.1.2.1.1.4.0", value: { type: "noSuchObject" } },
        ],
      },
    });
    expect(agent.stats()).toEqual({ requests: 1, answers: 1, dropped: 1 });
  });
});
