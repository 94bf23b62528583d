// Hostile input for the agent protocol parsers (packages/protocol): CSYNC/1 requests and answers,
// legacy requests and answers, and CAPTURE's spec=<base64url JSON>. 100,000 fast-check cases per
// parser: random bytes, datagrams with hostile fields behind a *valid* MAC (so field checks, not
// the MAC, must stop them), and mutated valid datagrams. Every result is ok or a typed failure;
// what is accepted is safe (addresses are IP literals, file names one safe path component); the
// heap does not grow; no input takes long (the legacy answer regex once took 77 s on 1,190 bytes).
import fc from "fast-check";
import { RUNS, bump, heapMb, runHostile } from "../helpers/hostile.js";
import { describe, expect, it } from "vitest";
import {
  type ParseErrorCode,
  type V1Answer,
  type V1Request,
  CODES,
  LEGACY_VERBS,
  REASON_PHRASES,
  VERBS,
  compileBpf,
  computeMac,
  decodeSpecWire,
  encodeSpecWire,
  formatAnswer,
  formatLegacyAnswer,
  formatLegacyRequest,
  formatRequest,
  isCode,
  isDeviceAddress,
  isSafeFilename,
  parseAnswer,
  parseLegacyAnswer,
  parseLegacyRequest,
  parseRequest,
} from "@capsync/protocol";

const KEY = Buffer.from("capsync-hostile-key-0123456789abcdef!");
const OTHER_KEY = Buffer.from("another-key-another-key-another-key-xx");
const NOW = 1_763_892_000_000;
const CODES_ALLOWED: ParseErrorCode[] = ["oversize", "not-utf8", "empty", "syntax", "bad-version", "bad-id", "bad-ts", "unknown-verb", "bad-address", "bad-filename", "bad-args", "bad-code", "bad-detail", "bad-mac", "stale"];


/** Values an attacker would try in a device, file name, interface or filter field. */
const HOSTILE = [
  "127.0.0.1;touch /tmp/capsync-pwned",
  "$(touch /tmp/capsync-pwned)",
  "`id`",
  "127.0.0.1|id",
  "127.0.0.1&&id",
  "127.0.0.1 or port 22",
  "-w/tmp/capsync-pwned",
  "--version",
  "-Z",
  "../../../etc/passwd",
  "..",
  ".",
  "../x.pcap",
  "x/../../y.pcap",
  "/etc/shadow",
  "a\\b",
  "x\0y",
  "127.0.0.1\0",
  "x\ny",
  "127.0.0.1\n",
  "x\r\ny",
  "fe80::1%lo",
  "fe80::1%eth0;id",
  "[::1]",
  "1".repeat(201),
  "A".repeat(1300),
  "%2e%2e%2f",
  "\u202e",
  "\u00a0",
  "ü.pcap",
  "💥",
  "*",
  "'",
  '"',
  ">x",
  "{a,b}",
  "256.1.1.1",
  "1.2.3",
  "0x7f.0.0.1",
  "127.1",
] as const;
const GOOD_DEVICES = ["192.0.2.10", "127.0.0.1", "::1", "2001:db8::5", "fe80::1", "::ffff:192.0.2.1", "0.0.0.0", "255.255.255.255"];
const GOOD_FILES = ["CPE_device_192.0.2.10_2026-11-23T10.00.00.000000.pcap", "a.pcap", "x-y_z.1", "A"];

const hostileOrGood = (good: readonly string[]) => fc.oneof(fc.constantFrom(...HOSTILE), fc.constantFrom(...good), fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 }));
const hexId = fc.stringMatching(/^[0-9a-f]{16}$/);
/** Up to `max` random bytes from a seeded xorshift: fast-check draws the seed and length, not each byte. */
const bigBytes = (max: number) =>
  fc.tuple(fc.integer({ min: 1 }), fc.nat(max)).map(([seed, len]) => {
    const b = Buffer.allocUnsafe(len);
    let x = seed;
    for (let i = 0; i < len; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 0xff;
    }
    return b;
  });
const anyBytes: fc.Arbitrary<Buffer> = fc.oneof(fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)), bigBytes(1300));

/** Mutations of a datagram: byte sets, inserted hostile text, cuts, duplicated ranges. */
function mutated(base: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  const edit = fc.oneof(
    fc.record({ k: fc.constant("set" as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ k: fc.constant("insert" as const), at: fc.nat(), s: fc.constantFrom(...HOSTILE, " ", "  ", "\0", "mac=", "=", "%") }),
    fc.record({ k: fc.constant("cut" as const), at: fc.nat() }),
    fc.record({ k: fc.constant("dup" as const), at: fc.nat(), len: fc.nat(40) }),
  );
  return fc.tuple(base, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([b, edits]) => {
    let out = Buffer.from(b);
    for (const e of edits) {
      const at = out.length ? e.at % (out.length + 1) : 0;
      if (e.k === "set") {
        if (out.length) out[at % out.length] = e.v;
      } else if (e.k === "insert") out = Buffer.concat([out.subarray(0, at), Buffer.from(e.s), out.subarray(at)]);
      else if (e.k === "cut") out = out.subarray(0, at);
      else out = Buffer.concat([out.subarray(0, at), out.subarray(at, at + e.len), out.subarray(at)]);
    }
    return out;
  });
}

/** A request body with each field either right or hostile, sealed with the real key. */
const signedHostileRequest = fc
  .record({
    tag: fc.oneof(fc.constant("CSYNC/1"), fc.constantFrom("CSYNC/2", "csync/1", "CSYNC/1 ", "")),
    kind: fc.oneof(fc.constant("REQ"), fc.constantFrom("ANS", "req")),
    id: fc.oneof(hexId, fc.constantFrom("8F14E45FCEEA167A", "8f14e45fceea167", "x".repeat(16), "")),
    ts: fc.oneof(fc.constant(String(NOW)), fc.constantFrom(String(NOW - 31_000), String(NOW + 31_000), "-1", "1e12", "0x10", "99999999999999999", "1.5", "")),
    verb: fc.oneof(fc.constantFrom(...VERBS), fc.constantFrom("capture", "SHELL", "STOP;", "")),
    args: fc.array(hostileOrGood([...GOOD_DEVICES, ...GOOD_FILES, "spec=eyJzbmFwbGVuIjo2NH0"]), { maxLength: 4 }),
    sep: fc.constantFrom(" ", " ", " ", "  ", "\t"),
  })
  .map((r) => {
    const body = [r.tag, r.kind, r.id, r.ts, r.verb, ...r.args].join(r.sep);
    return Buffer.from(`${body} mac=${computeMac(KEY, body)}`);
  });

/** A STOP right in every field but its file name, sealed: the only way a hostile name reaches the name check often. */
const signedHostileStop = fc.tuple(hexId, fc.constantFrom(...GOOD_DEVICES), hostileOrGood([...GOOD_FILES])).map(([id, device, filename]) => {
  const body = `CSYNC/1 REQ ${id} ${NOW} STOP ${device} ${filename}`;
  return Buffer.from(`${body} mac=${computeMac(KEY, body)}`);
});

const validRequest: fc.Arbitrary<V1Request> = fc.oneof(
  fc.record({ id: hexId, ts: fc.constant(NOW), verb: fc.constantFrom("PING" as const, "STATUS" as const) }),
  fc.record({ id: hexId, ts: fc.constant(NOW), verb: fc.constantFrom("REGISTER" as const, "CAPTURE" as const, "VERIFY" as const), device: fc.constantFrom(...GOOD_DEVICES) }),
  fc.record({ id: hexId, ts: fc.constant(NOW), verb: fc.constant("STOP" as const), device: fc.constantFrom(...GOOD_DEVICES), filename: fc.constantFrom(...GOOD_FILES) }),
);

function checkFailure(r: { ok: false; code: string; message: string }, seen: Map<string, number>): void {
  if (!CODES_ALLOWED.includes(r.code as ParseErrorCode) || typeof r.message !== "string") throw new Error(`untyped failure ${JSON.stringify(r)}`);
  seen.set(r.code, (seen.get(r.code) ?? 0) + 1);
}

function safeAccepted(device: string | undefined | null, filename: string | undefined): void {
  if (device != null && !isDeviceAddress(device)) throw new Error(`accepted device ${JSON.stringify(device)}`);
  if (filename !== undefined && (!isSafeFilename(filename) || /[/\\\0\n]/.test(filename))) throw new Error(`accepted file name ${JSON.stringify(filename)}`);
}


/** Inputs built from two repeated fragments up to the size limit: the shapes that make backtracking regexes explode. */
function pathological(limit: number): Buffer[] {
  const frags = ["1", "0", " ", "\t", "\n", "a", "A", ":", ".", "1.", "1 ", " a", "%", "=", "mac=", "200 ", "OK ", "CSYNC/1 ", "REQ ", "ff", "::", "/", "-", "_"];
  const out: Buffer[] = [];
  for (const pre of ["", "200 ", "CSYNC/1 REQ ", "CSYNC/1 ANS 0123456789abcdef 1 200 STOP "]) {
    for (const a of frags) for (const b of frags) out.push(Buffer.from((pre + (a + b).repeat(Math.ceil(limit / (a + b).length))).slice(0, limit)));
  }
  // The original answer regex's worst case: a run of digits, then blanks.
  out.push(Buffer.from("1".repeat(600) + " ".repeat(590)), Buffer.from("1 " + " ".repeat(1190)));
  return out;
}

/** Slowest input, each timed as the best of three runs (a GC pause is not the parser being slow). */
function worstMs(inputs: Buffer[], parse: (b: Buffer) => unknown): number {
  let worst = 0;
  for (const b of inputs) {
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      parse(b);
      best = Math.min(best, performance.now() - t);
    }
    worst = Math.max(worst, best);
  }
  return worst;
}

describe("hostile CSYNC/1 datagrams", () => {
  it(`parseRequest: ${RUNS.toLocaleString("en")} random, hostile-field (validly signed) and mutated datagrams`, () => {
    const seen = runHostile(
      "parseRequest",
      fc.oneof(anyBytes, signedHostileRequest, signedHostileRequest, signedHostileStop, validRequest.map((r) => formatRequest(r, KEY)), mutated(validRequest.map((r) => formatRequest(r, KEY))), mutated(signedHostileRequest)),
      (b, s) => {
        const r = parseRequest(b, { keys: [OTHER_KEY, KEY], now: NOW, windowMs: 30_000 });
        if (!r.ok) {
          checkFailure(r, s);
          if (r.code === "stale" && "request" in r) safeAccepted(r.request.device, r.request.filename);
          return;
        }
        s.set("ok", (s.get("ok") ?? 0) + 1);
        safeAccepted(r.value.device, r.value.filename);
        if (r.value.spec !== undefined && !/^[A-Za-z0-9_-]{1,1000}$/.test(r.value.spec)) throw new Error("accepted spec");
        // What was accepted is exactly what the formatter writes: no second reading of any byte.
        let end = b.length;
        while (end > 0 && b[end - 1] === 0) end--;
        if (!formatRequest(r.value, [OTHER_KEY, KEY][r.keyIndex]!).equals(b.subarray(0, end))) throw new Error("round trip differs");
      },
    );
    for (const c of ["ok", "bad-mac", "syntax", "bad-address", "bad-filename", "bad-args", "stale", "unknown-verb", "bad-id", "bad-ts", "bad-version", "oversize", "not-utf8"]) expect(seen.get(c) ?? 0, c).toBeGreaterThan(0);
  });

  it(`parseAnswer: ${RUNS.toLocaleString("en")} random, hostile-detail (validly signed) and mutated answers`, () => {
    const validAnswer: fc.Arbitrary<V1Answer> = fc.record({
      id: hexId,
      ts: fc.constant(NOW),
      code: fc.constantFrom(...CODES),
      verb: fc.constantFrom(...VERBS),
      device: fc.oneof(fc.constant(null), fc.constantFrom(...GOOD_DEVICES)),
      details: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/), fc.oneof(fc.constantFrom(...HOSTILE.filter((h) => h.length < 100)), fc.string({ maxLength: 30 })), { maxKeys: 4 }),
    });
    const hostileBody = fc
      .tuple(fc.constantFrom("100", "200", "999", "20", "2000", "abc"), fc.constantFrom(...VERBS, "SHELL"), hostileOrGood(GOOD_DEVICES), fc.array(fc.oneof(fc.constantFrom(...HOSTILE), fc.constantFrom("file=a.pcap", "msg=%zz", "x=%C3%28", "Key=v", "=v", "k", "k=v=w")), { maxLength: 3 }))
      .map(([code, verb, dev, rest]) => {
        const body = ["CSYNC/1", "ANS", "0123456789abcdef", String(NOW), code, verb, dev, ...rest].join(" ");
        return Buffer.from(`${body} mac=${computeMac(KEY, body)}`);
      });
    const seen = runHostile(
      "parseAnswer",
      fc.oneof(anyBytes, hostileBody, mutated(validAnswer.map((a) => formatAnswer(a, KEY))), validAnswer.map((a) => formatAnswer(a, KEY))),
      (b, s) => {
        const r = parseAnswer(b, [KEY]);
        if (!r.ok) return checkFailure(r, s);
        s.set("ok", (s.get("ok") ?? 0) + 1);
        safeAccepted(r.value.device, undefined);
        if (!isCode(r.value.code)) throw new Error("accepted code");
        // Details come back decoded; re-encoding must give the same datagram.
        let end = b.length;
        while (end > 0 && b[end - 1] === 0) end--;
        if (!formatAnswer(r.value, KEY).equals(b.subarray(0, end))) throw new Error("round trip differs");
      },
    );
    for (const c of ["ok", "bad-mac", "syntax", "bad-code", "bad-detail", "bad-address"]) expect(seen.get(c) ?? 0, c).toBeGreaterThan(0);
  });

  it("no datagram up to the size limit takes long, whatever its shape", () => {
    const inputs = pathological(1200);
    const ms = Math.max(
      worstMs(inputs, (b) => parseRequest(b, { keys: [KEY], now: NOW })),
      worstMs(inputs, (b) => parseAnswer(b, [KEY])),
    );
    console.log(`CSYNC/1 pathological inputs: ${inputs.length * 2} parses, worst ${ms.toFixed(2)} ms`);
    expect(ms).toBeLessThan(50);
  });
});

describe("hostile legacy datagrams", () => {
  it(`parseLegacyRequest: ${RUNS.toLocaleString("en")} random, hostile-field and mutated requests`, () => {
    const hostileText = fc
      .tuple(fc.oneof(fc.constantFrom(...LEGACY_VERBS), fc.constantFrom("capture", "STATUS", "SHELL")), fc.array(hostileOrGood([...GOOD_DEVICES, ...GOOD_FILES]), { maxLength: 3 }), fc.constantFrom(" ", "  ", "\t", "\n", " \r\n"))
      .map(([v, args, sep]) => Buffer.from([v, ...args].join(sep)));
    const valid = fc
      .tuple(fc.constantFrom(...LEGACY_VERBS), fc.constantFrom(...GOOD_DEVICES), fc.constantFrom(...GOOD_FILES))
      .map(([verb, device, filename]) => formatLegacyRequest({ verb, device, ...(verb === "STOP" ? { filename } : {}) }));
    const seen = runHostile("parseLegacyRequest", fc.oneof(anyBytes, hostileText, hostileText, valid, mutated(valid)), (b, s) => {
      const r = parseLegacyRequest(b);
      if (!r.ok) return checkFailure(r, s);
      s.set("ok", (s.get("ok") ?? 0) + 1);
      safeAccepted(r.value.device, r.value.filename);
      if (!(LEGACY_VERBS as readonly string[]).includes(r.value.verb)) throw new Error("accepted verb");
    });
    for (const c of ["ok", "bad-address", "bad-filename", "bad-args", "unknown-verb"]) expect(seen.get(c) ?? 0, c).toBeGreaterThan(0);
  });

  // The original cpe_capture_app's answer regex, verbatim: the reference parseLegacyAnswer must agree with.
  const ORIGINAL = /(\d+\s+[\w\s]+)\s+([0-9a-fA-F:.]+)\s+(.*)$/;
  function reference(b: Buffer): string {
    if (b.length > 1200) return "oversize";
    let end = b.length;
    while (end > 0 && b[end - 1] === 0) end--;
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(b.subarray(0, end));
    } catch {
      return "not-utf8";
    }
    if (text === "") return "empty";
    const m = ORIGINAL.exec(text);
    if (!m) return "syntax";
    const sm = /^(\d{3})\s+(.+)$/.exec(m[1]!.trim());
    if (!sm || !isCode(Number(sm[1])) || REASON_PHRASES[Number(sm[1]) as keyof typeof REASON_PHRASES] !== sm[2]) return "bad-code";
    if (!(LEGACY_VERBS as readonly string[]).includes(m[3]!.trim())) return "unknown-verb";
    if (!isDeviceAddress(m[2]!)) return "bad-address";
    return JSON.stringify({ code: Number(sm[1]), verb: m[3]!.trim(), device: m[2] });
  }

  it(`parseLegacyAnswer: ${RUNS.toLocaleString("en")} answers give exactly the original regex's verdict, in linear time`, () => {
    // Short inputs from the alphabet the regex cares about (its own cost is fine below ~60 units).
    const piece = fc.constantFrom("1", "2", "0", "5", " ", "  ", "\t", "\n", "\r", "\u00a0", "\u2028", "\u3000", "a", "F", "x", "_", ":", ".", "-", "OK", "Trying", "Not Found", "Service Unavailable", "STOP", "CAPTURE", "1.2.3.4", "::1", "fe80::1", "192.0.2.10", "\0");
    const short = fc.array(piece, { minLength: 1, maxLength: 12 }).map((p) => Buffer.from(p.join("")));
    const answers = fc
      .tuple(fc.constantFrom(...CODES), fc.constantFrom(...LEGACY_VERBS), fc.constantFrom(...GOOD_DEVICES))
      .map(([code, verb, device]) => formatLegacyAnswer({ code, verb, device }));
    const edited = fc.tuple(answers, fc.nat(), piece, fc.boolean()).map(([a, at, p, replace]) => {
      const s = a.toString();
      const i = at % (s.length + 1);
      return Buffer.from(s.slice(0, i) + p + s.slice(replace ? i + 1 : i));
    });
    const seen = runHostile("parseLegacyAnswer", fc.oneof(short, short, answers, edited, edited), (b, s) => {
      const r = parseLegacyAnswer(b);
      const got = r.ok ? JSON.stringify(r.value) : r.code;
      const want = reference(b);
      if (got !== want) throw new Error(`${JSON.stringify(b.toString())}: got ${got}, the original gives ${want}`);
      if (r.ok) s.set("ok", (s.get("ok") ?? 0) + 1);
      else checkFailure(r, s);
    });
    expect(seen.get("ok") ?? 0).toBeGreaterThan(10_000);
    for (const c of ["syntax", "bad-code", "unknown-verb", "bad-address"]) expect(seen.get(c) ?? 0, c).toBeGreaterThan(0);
  });

  it(`parseLegacyAnswer: ${RUNS.toLocaleString("en")} random and mutated datagrams up to 1,200 bytes, none slow`, () => {
    const valid = fc.tuple(fc.constantFrom(...CODES), fc.constantFrom(...LEGACY_VERBS), fc.constantFrom(...GOOD_DEVICES)).map(([code, verb, device]) => formatLegacyAnswer({ code, verb, device }));
    runHostile("parseLegacyAnswer (bytes)", fc.oneof(anyBytes, mutated(valid)), (b, s) => {
      const r = parseLegacyAnswer(b);
      if (!r.ok) return checkFailure(r, s);
      safeAccepted(r.value.device, undefined);
    });
    const inputs = pathological(1200);
    const ms = Math.max(worstMs(inputs, parseLegacyRequest), worstMs(inputs, parseLegacyAnswer));
    console.log(`legacy pathological inputs: ${inputs.length * 2} parses, worst ${ms.toFixed(2)} ms`);
    expect(ms).toBeLessThan(50);
  });
});

describe("hostile CAPTURE spec= (base64url JSON)", () => {
  it(`decodeSpecWire + compileBpf: ${RUNS.toLocaleString("en")} hostile specs and raw strings; accepted specs compile to plain argv words`, () => {
    const field = fc.oneof(fc.constantFrom(...HOSTILE), fc.constantFrom("any", "192.0.2.0/24", "2001:db8::/32", "tcp", "udp", "in", "out", "eth0", "GigabitEthernet1", "MGMT"), fc.integer(), fc.double(), fc.constant(null), fc.boolean());
    const specObj = fc.record(
      {
        interfaces: fc.oneof(fc.array(field, { maxLength: 20 }), field),
        direction: field,
        filter: fc.oneof(fc.record({ src: field, dst: field, protocol: field, sport: field, dport: field }, { requiredKeys: [] }), field),
        vrf: field,
        snaplen: field,
        limits: fc.oneof(fc.record({ durationSec: field, packets: field, maxSizeMb: field, ringFiles: field, bufferMb: field }, { requiredKeys: [] }), field),
        extra: field,
      },
      { requiredKeys: [] },
    );
    const wire = fc.oneof(
      specObj.map((o) => Buffer.from(JSON.stringify(o)).toString("base64url")),
      fc.json().map((j) => Buffer.from(j).toString("base64url")),
      fc.stringMatching(/^[A-Za-z0-9_-]{0,200}$/),
      fc.string({ maxLength: 60 }),
      fc.constantFrom("", "=", "e30", "bnVsbA", Buffer.from('{"__proto__":{"x":1}}').toString("base64url"), Buffer.from("[".repeat(5000)).toString("base64url")),
    );
    const seen = new Map<string, number>();
    let slowest = 0;
    const before = heapMb();
    fc.assert(
      fc.property(wire, (text) => {
        const t = performance.now();
        const r = decodeSpecWire(text);
        if (!r.ok) {
          if (typeof r.field !== "string" || typeof r.message !== "string") throw new Error("untyped spec failure");
          seen.set("rejected", (seen.get("rejected") ?? 0) + 1);
        } else {
          seen.set("ok", (seen.get("ok") ?? 0) + 1);
          // An accepted spec survives its own encoding, and compiles (or is refused) without throwing.
          if (decodeSpecWire(encodeSpecWire(r.spec)).ok !== true) throw new Error("spec does not round-trip");
          const c = compileBpf(r.spec, { host: "192.0.2.10" });
          if (c.ok) {
            seen.set("compiled", (seen.get("compiled") ?? 0) + 1);
            for (const w of c.program.expression) if (!/^[A-Za-z0-9.:/\-_[\]&!=<>()]+$/.test(w)) throw new Error(`BPF word ${JSON.stringify(w)}`);
          }
          for (const i of r.spec.interfaces ?? []) if (/[\s;|&$`'"\\<>(){}*?!#~\0]/.test(i)) throw new Error(`interface ${JSON.stringify(i)}`);
          if (r.spec.vrf !== undefined && /[\s;|&$`'"\\<>(){}*?!#~\0]/.test(r.spec.vrf)) throw new Error(`vrf ${JSON.stringify(r.spec.vrf)}`);
        }
        slowest = Math.max(slowest, performance.now() - t);
      }),
      { numRuns: RUNS },
    );
    const grew = heapMb() - before;
    console.log(`decodeSpecWire: ${RUNS} cases, slowest ${slowest.toFixed(1)} ms, heap ${grew.toFixed(1)} MB; ${[...seen].map(([k, v]) => `${k} ${v}`).join(", ")}`);
    expect(seen.get("ok") ?? 0).toBeGreaterThan(100);
    expect(seen.get("rejected") ?? 0).toBeGreaterThan(10_000);
    expect(grew).toBeLessThan(16);
    expect(slowest).toBeLessThan(250);
  });
});
