import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { formatLegacyAnswer, formatLegacyRequest, parseLegacyAnswer, parseLegacyRequest } from "./legacy.js";

// Golden datagrams, exactly as trafficCapture v1.0.6 formats them
// ('{VERB} {}'.format(device) in cpe_capture_app.py; '<code> <reason> {} <VERB>' in ovoc_capture_app.py).
const REQUESTS = [
  { bytes: "REGISTER 192.0.2.10", req: { verb: "REGISTER", device: "192.0.2.10" } },
  { bytes: "CAPTURE 192.0.2.10", req: { verb: "CAPTURE", device: "192.0.2.10" } },
  { bytes: "VERIFY 192.0.2.10", req: { verb: "VERIFY", device: "192.0.2.10" } },
  { bytes: "STOP 192.0.2.10 CPE_device_192.0.2.10_2026-11-23T10.00.00.123456.pcap", req: { verb: "STOP", device: "192.0.2.10", filename: "CPE_device_192.0.2.10_2026-11-23T10.00.00.123456.pcap" } },
] as const;
const ANSWERS = [
  { bytes: "100 Trying 192.0.2.10 CAPTURE", ans: { code: 100, verb: "CAPTURE", device: "192.0.2.10" } },
  { bytes: "200 OK 192.0.2.10 REGISTER", ans: { code: 200, verb: "REGISTER", device: "192.0.2.10" } },
  { bytes: "200 OK 192.0.2.10 STOP", ans: { code: 200, verb: "STOP", device: "192.0.2.10" } },
  { bytes: "404 Not Found 192.0.2.10 STOP", ans: { code: 404, verb: "STOP", device: "192.0.2.10" } },
  { bytes: "430 Flow Failed 192.0.2.10 VERIFY", ans: { code: 430, verb: "VERIFY", device: "192.0.2.10" } },
  { bytes: "503 Service Unavailable 192.0.2.10 CAPTURE", ans: { code: 503, verb: "CAPTURE", device: "192.0.2.10" } },
] as const;

describe("legacy golden datagrams", () => {
  for (const g of REQUESTS) {
    it(`request ${g.bytes}`, () => {
      expect(formatLegacyRequest(g.req).toString("utf8")).toBe(g.bytes);
      expect(parseLegacyRequest(Buffer.from(g.bytes))).toEqual({ ok: true, value: g.req });
    });
  }
  for (const g of ANSWERS) {
    it(`answer ${g.bytes}`, () => {
      expect(formatLegacyAnswer(g.ans).toString("utf8")).toBe(g.bytes);
      expect(parseLegacyAnswer(Buffer.from(g.bytes))).toEqual({ ok: true, value: g.ans });
    });
  }
  it("ignores trailing NULs like the original's buffer handling", () => {
    expect(parseLegacyRequest(Buffer.from("CAPTURE 192.0.2.10\0\0\0"))).toEqual({ ok: true, value: { verb: "CAPTURE", device: "192.0.2.10" } });
  });
});

describe("legacy rejections", () => {
  const bad: [string, string][] = [
    ["CAPTURE", "bad-args"],
    ["CAPTURE 192.0.2.10 extra", "bad-args"],
    ["CAPTURE 192.0.2.999", "bad-address"],
    ["CAPTURE $(reboot)", "bad-address"],
    ["STOP 192.0.2.10 ../../etc/shadow", "bad-filename"],
    ["STOP 192.0.2.10", "bad-args"],
    ["capture 192.0.2.10", "unknown-verb"],
    ["<14>Nov 23 10:00:00 ovoc New Alarm - Connection Alarm", "unknown-verb"],
  ];
  for (const [text, code] of bad) {
    it(`rejects '${text}' with ${code}`, () => {
      expect(parseLegacyRequest(Buffer.from(text))).toMatchObject({ ok: false, code });
    });
  }
  it("rejects an answer with a made-up reason phrase", () => {
    expect(parseLegacyAnswer(Buffer.from("200 Fine 192.0.2.10 CAPTURE"))).toMatchObject({ ok: false, code: "bad-code" });
  });
  it("never throws on 10,000 random inputs", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 1300 }), fc.string().map((s) => Buffer.from(s))), (buf) => {
        const a = parseLegacyRequest(buf);
        const b = parseLegacyAnswer(buf);
        expect(typeof a.ok).toBe("boolean");
        expect(typeof b.ok).toBe("boolean");
      }),
      { numRuns: 10_000 },
    );
  });
});
