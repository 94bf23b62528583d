import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { computeMac, formatAnswer, formatRequest, parseAnswer, parseRequest, pctDecode, pctEncode, type V1Answer, type V1Request } from "./v1.js";

const KEY = Buffer.from("0123456789abcdef0123456789abcdef");
const OTHER = Buffer.from("ffffffffffffffffffffffffffffffffff");
const NOW = 1763892000000;

// Golden vectors: MACs computed independently with Python's hmac module, so another
// implementation can check itself against these exact bytes.
const GOLDEN: { name: string; body: string; mac: string }[] = [
  { name: "CAPTURE request (PROTOCOL.md example)", body: "CSYNC/1 REQ 8f14e45fceea167a 1763892000000 CAPTURE 192.0.2.10", mac: "d3b7ee94b887602db774aea718faaec8b499757ab2c387bafec189d5d2646751" },
  { name: "100 answer", body: "CSYNC/1 ANS 8f14e45fceea167a 1763892000003 100 CAPTURE 192.0.2.10", mac: "1e42bba17f8d08ce476c98975a61fdde225e21a9de800e17af7b8ac776f4c0f8" },
  { name: "200 answer with file", body: "CSYNC/1 ANS 8f14e45fceea167a 1763892000021 200 CAPTURE 192.0.2.10 file=tmp_device_192.0.2.10_2026-11-23T10.00.00.000000.pcap", mac: "b5e59c4f682ace37517ec90814a4edaa84e47463c89ccaa26ee3fef9c178569e" },
  { name: "IPv6 STOP", body: "CSYNC/1 REQ 0000000000000001 1763892000000 STOP 2001:db8::10 CPE_device_2001-db8--10_2026-11-23T10.00.00.000000.pcap", mac: "83156f7673f600f122572b313b48b7014c2e98ca0e437764948bdadb3419e0db" },
  { name: "503 with encoded msg", body: "CSYNC/1 ANS 0000000000000001 1763892000500 503 STOP 2001:db8::10 reason=disk-low msg=tcpdump%3A%20no%20space%20left", mac: "840e85a33943092bda714da994b536fa2e43f909800d9206f99db97b96cfa39b" },
  { name: "PING", body: "CSYNC/1 REQ 00000000000000ff 1763892000000 PING", mac: "6815572e5aaad48fa65e972ff67a1a6aa986733dd76169ae3ccab9c354003013" },
];

describe("v1 golden vectors", () => {
  for (const g of GOLDEN) {
    it(g.name, () => {
      expect(computeMac(KEY, g.body)).toBe(g.mac);
    });
  }
  it("formats the PROTOCOL.md CAPTURE example byte for byte", () => {
    const buf = formatRequest({ id: "8f14e45fceea167a", ts: NOW, verb: "CAPTURE", device: "192.0.2.10" }, KEY);
    expect(buf.toString()).toBe(`${GOLDEN[0]!.body} mac=${GOLDEN[0]!.mac}`);
  });
  it("formats answers byte for byte, percent-encoding values", () => {
    const buf = formatAnswer(
      { id: "0000000000000001", ts: 1763892000500, code: 503, verb: "STOP", device: "2001:db8::10", details: { reason: "disk-low", msg: "tcpdump: no space left" } },
      KEY,
    );
    expect(buf.toString()).toBe(`${GOLDEN[4]!.body} mac=${GOLDEN[4]!.mac}`);
  });
});

describe("v1 requests", () => {
  const cases: { name: string; req: V1Request }[] = [
    { name: "REGISTER", req: { id: "0123456789abcdef", ts: NOW, verb: "REGISTER", device: "192.0.2.1" } },
    { name: "CAPTURE with spec", req: { id: "0123456789abcdef", ts: NOW, verb: "CAPTURE", device: "::1", spec: "eyJ4IjoxfQ" } },
    { name: "VERIFY", req: { id: "0123456789abcdef", ts: NOW, verb: "VERIFY", device: "203.0.113.9" } },
    { name: "STOP", req: { id: "0123456789abcdef", ts: NOW, verb: "STOP", device: "192.0.2.1", filename: "CPE_device_192.0.2.1_x.pcap" } },
    { name: "STATUS", req: { id: "0123456789abcdef", ts: NOW, verb: "STATUS" } },
    { name: "PING", req: { id: "0123456789abcdef", ts: NOW, verb: "PING" } },
  ];
  for (const c of cases) {
    it(`round-trips ${c.name}`, () => {
      const r = parseRequest(formatRequest(c.req, KEY), { keys: [KEY], now: NOW });
      expect(r).toEqual({ ok: true, value: c.req, keyIndex: 0 });
    });
  }
  it("accepts either key during a rotation and reports which", () => {
    const r = parseRequest(formatRequest(cases[0]!.req, KEY), { keys: [OTHER, KEY], now: NOW });
    expect(r.ok && r.keyIndex).toBe(1);
  });
  it("ignores trailing NULs", () => {
    const buf = Buffer.concat([formatRequest(cases[0]!.req, KEY), Buffer.alloc(5)]);
    expect(parseRequest(buf, { keys: [KEY], now: NOW }).ok).toBe(true);
  });

  const sign = (body: string, key = KEY) => Buffer.from(`${body} mac=${computeMac(key, body)}`);
  const reject: { name: string; buf: Buffer; code: string; field?: string }[] = [
    { name: "oversize", buf: Buffer.alloc(1201, 0x41), code: "oversize" },
    { name: "non-UTF-8", buf: Buffer.from([0x43, 0xff, 0xfe, 0x20]), code: "not-utf8" },
    { name: "wrong key", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 PING", OTHER), code: "bad-mac", field: "mac" },
    { name: "tampered body", buf: Buffer.from(sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 CAPTURE 192.0.2.1").toString().replace("192.0.2.1", "192.0.2.2")), code: "bad-mac" },
    { name: "no mac", buf: Buffer.from("CSYNC/1 REQ 0123456789abcdef 1763892000000 PING"), code: "syntax", field: "mac" },
    { name: "uppercase mac", buf: Buffer.from(sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 PING").toString().replace(/mac=(.*)$/, (_m, h: string) => `mac=${h.toUpperCase()}`)), code: "syntax" },
    { name: "double space", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000  PING"), code: "syntax" },
    { name: "wrong version", buf: sign("CSYNC/2 REQ 0123456789abcdef 1763892000000 PING"), code: "bad-version" },
    { name: "short id", buf: sign("CSYNC/1 REQ 0123456789abcde 1763892000000 PING"), code: "bad-id" },
    { name: "uppercase id", buf: sign("CSYNC/1 REQ 0123456789ABCDEF 1763892000000 PING"), code: "bad-id" },
    { name: "ts not decimal", buf: sign("CSYNC/1 REQ 0123456789abcdef 0x1234 PING"), code: "bad-ts" },
    { name: "unknown verb", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 DELETE 192.0.2.1"), code: "unknown-verb" },
    { name: "hostname as device", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 CAPTURE example.com"), code: "bad-address" },
    { name: "IPv4 with leading zero", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 CAPTURE 192.0.2.01"), code: "bad-address" },
    { name: "IPv4 octet > 255", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 CAPTURE 192.0.2.256"), code: "bad-address" },
    { name: "IPv6 with zone", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 CAPTURE fe80::1%eth0"), code: "bad-address" },
    { name: "IPv6 in brackets", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 CAPTURE [::1]"), code: "bad-address" },
    { name: "shell metacharacters", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 CAPTURE 1.2.3.4;reboot"), code: "bad-address" },
    { name: "file with slash", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 STOP 192.0.2.1 ../etc/passwd"), code: "bad-filename" },
    { name: "file with dotdot", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 STOP 192.0.2.1 a..b"), code: "bad-filename" },
    { name: "file with backslash", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 STOP 192.0.2.1 a\\b"), code: "bad-filename" },
    { name: "file is dot", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 STOP 192.0.2.1 ."), code: "bad-filename" },
    { name: "file with control char", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 STOP 192.0.2.1 a\u0001b"), code: "bad-filename" },
    { name: "STOP without file", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 STOP 192.0.2.1"), code: "bad-args" },
    { name: "PING with args", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 PING 192.0.2.1"), code: "bad-args" },
    { name: "CAPTURE bad spec", buf: sign("CSYNC/1 REQ 0123456789abcdef 1763892000000 CAPTURE 192.0.2.1 spec=a+b"), code: "bad-args" },
    { name: "answer sent as request", buf: sign("CSYNC/1 ANS 0123456789abcdef 1763892000000 200 PING -"), code: "syntax" },
  ];
  for (const c of reject) {
    it(`rejects ${c.name}`, () => {
      const r = parseRequest(c.buf, { keys: [KEY], now: NOW });
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.code).toBe(c.code);
        if (c.field) expect(r.field).toBe(c.field);
      }
    });
  }
  it("reports a stale timestamp with the request, so the agent can answer 400 reason=stale", () => {
    const req: V1Request = { id: "0123456789abcdef", ts: NOW - 30_001, verb: "PING" };
    const r = parseRequest(formatRequest(req, KEY), { keys: [KEY], now: NOW });
    expect(r).toMatchObject({ ok: false, code: "stale", request: req, keyIndex: 0 });
    expect(parseRequest(formatRequest({ ...req, ts: NOW - 30_000 }, KEY), { keys: [KEY], now: NOW }).ok).toBe(true);
    expect(parseRequest(formatRequest({ ...req, ts: NOW + 5_001 }, KEY), { keys: [KEY], now: NOW, windowMs: 5_000 }).ok).toBe(false);
  });
  it("refuses to format a datagram over 1200 bytes", () => {
    expect(() => formatAnswer({ id: "0123456789abcdef", ts: NOW, code: 200, verb: "STATUS", device: null, details: { msg: "x".repeat(1200) } }, KEY)).toThrow(/limit 1200/);
  });
});

describe("v1 answers", () => {
  it("round-trips details with reserved characters and UTF-8", () => {
    const ans: V1Answer = { id: "0123456789abcdef", ts: NOW, code: 200, verb: "STOP", device: "192.0.2.1", details: { files: "a.pcap%2Cb.pcap", msg: "ünïcode = / ,;()!*'", bytes: "1234", packets: "25" } };
    const r = parseAnswer(formatAnswer(ans, KEY), [KEY]);
    expect(r).toEqual({ ok: true, value: ans, keyIndex: 0 });
  });
  it("uses '-' for answers without a device", () => {
    const buf = formatAnswer({ id: "0123456789abcdef", ts: NOW, code: 200, verb: "PING", device: null, details: {} }, KEY);
    expect(buf.toString()).toMatch(/^CSYNC\/1 ANS 0123456789abcdef 1763892000000 200 PING - mac=[0-9a-f]{64}$/);
  });
  it("rejects an answer signed with another key", () => {
    const buf = formatAnswer({ id: "0123456789abcdef", ts: NOW, code: 200, verb: "PING", device: null, details: {} }, OTHER);
    expect(parseAnswer(buf, [KEY])).toMatchObject({ ok: false, code: "bad-mac" });
  });
  it("percent-encodes everything but RFC 3986 unreserved characters", () => {
    expect(pctEncode("a-b_c.d~e f,g/h")).toBe("a-b_c.d~e%20f%2Cg%2Fh");
    expect(pctEncode("!*'()")).toBe("%21%2A%27%28%29");
    expect(pctDecode("%zz")).toBeUndefined();
    expect(pctDecode("%C3")).toBeUndefined();
  });
});

describe("v1 parsers never throw (property)", () => {
  const anyBytes = fc.uint8Array({ maxLength: 1300 });
  const mutated = fc
    .tuple(
      fc.constantFrom(...GOLDEN.map((g) => Buffer.from(`${g.body} mac=${g.mac}`))),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    )
    .map(([b, edits]) => {
      const out = Buffer.from(b);
      for (const [pos, val] of edits) out[pos % out.length] = val;
      return out;
    });
  it("parseRequest / parseAnswer on 10,000 random and mutated datagrams", () => {
    let typed = 0;
    fc.assert(
      fc.property(fc.oneof(anyBytes, mutated), (buf) => {
        const a = parseRequest(buf, { keys: [KEY], now: NOW });
        const b = parseAnswer(buf, [KEY]);
        for (const r of [a, b]) {
          if (!r.ok) {
            expect(typeof r.code).toBe("string");
            expect(typeof r.message).toBe("string");
            typed++;
          }
        }
      }),
      { numRuns: 10_000 },
    );
    expect(typed).toBeGreaterThan(10_000);
  });
});
