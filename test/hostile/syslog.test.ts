// Hostile input for the stop-trigger parsers (packages/cpe-capture/src/triggers): RFC 3164, RFC 5424,
// OVOC alarm text, IOS-XE system messages, RFC 6587 TCP stream framing, and the whole decode + match
// + count pipeline. Anyone who can reach the syslog port can send these. 100,000 fast-check cases per
// parser (random bytes up to the listener's 16 KiB frame limit, real alarms mutated, alarms with
// hostile fields); every result is ok or a typed failure with an offset inside the input; a forged
// alarm never names a device outside the run; the heap does not grow; no frame takes long.
import fc from "fast-check";
import { RUNS, bump, heapMb, runHostile } from "../helpers/hostile.js";
import { describe, expect, it } from "vitest";
import { isDeviceAddress } from "@capsync/protocol";
import { ovocConnectionEstablished, ovocConnectionLostAlarm } from "@capsync/emulators";
import { parseRfc3164 } from "../../packages/cpe-capture/src/triggers/rfc3164.js";
import { parseRfc5424, type SyslogErrorCode } from "../../packages/cpe-capture/src/triggers/rfc5424.js";
import { parseOvocAlarm } from "../../packages/cpe-capture/src/triggers/ovoc-alarm.js";
import { parseIosxeSyslog, parseIosxeUpdown } from "../../packages/cpe-capture/src/drivers/iosxe/syslog.js";
import { DEFAULT_MAX_MESSAGE_BYTES, SyslogStreamDecoder } from "../../packages/cpe-capture/src/triggers/listener.js";
import { AlarmRouter, BUILTIN_MATCHERS, type MatcherSpec, compileMatchers } from "../../packages/cpe-capture/src/triggers/matchers.js";

const MAX = DEFAULT_MAX_MESSAGE_BYTES;
const SYSLOG_CODES = new Set<SyslogErrorCode>(["empty", "pri", "version", "timestamp", "hostname", "app-name", "procid", "msgid", "structured-data", "header", "msg-utf8"]);
const RUN_DEVICES = ["192.0.2.10", "2001:db8::10", "127.0.0.2"];


const HOSTILE = ["127.0.0.1;touch /tmp/capsync-pwned", "$(id)", "`id`", "192.0.2.10 ", " 192.0.2.10", "192.0.2.10\n", "192.0.2.10\0", "../../etc", "fe80::1%lo", "[::1]", "256.0.0.1", "1".repeat(300), "A".repeat(20_000), "\u202e", "💥", "\\", '"', "]", "[", "=", "<999>", "<-1>", "<01>", "1 ", "-", "\r\n", "\0"];
const SYSLOG_BITS = ["IP Address:", ", IP Address: ", ", Description: Connection Lost", "New Alarm - Connection Alarm,", "Source:", "Alarm -", "%LINK-3-UPDOWN:", "%LINEPROTO-5-UPDOWN:", "Interface GigabitEthernet1, changed state to down", "*Mar  1 00:01:23.456 UTC: ", "<13>", "<165>1 ", "[x@1 a=\"b\"]", "2026-11-23T10:00:00Z", "Jan  1 00:00:00 "];

const seeds: Buffer[] = [
  ...RUN_DEVICES.flatMap((d) => [
    ovocConnectionLostAlarm({ deviceIp: d, format: "rfc3164" }),
    ovocConnectionLostAlarm({ deviceIp: d, format: "rfc5424", ovocHost: "ovoc1" }),
    ovocConnectionEstablished({ deviceIp: d, format: "rfc3164" }),
  ]),
  Buffer.from("<189>45: router1: *Mar  1 00:01:23.456 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet1, changed state to down"),
  Buffer.from("<187>1 2026-11-23T10:00:00.000Z 192.0.2.10 - - - - %LINEPROTO-5-UPDOWN: Line protocol on Interface Gi1, changed state to down"),
  Buffer.from('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] \uFEFFAn application event'),
  Buffer.from("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"),
];

/** Byte edits, hostile insertions, cuts and duplications of a real frame. */
const mutatedFrame = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(
      fc.oneof(
        fc.record({ k: fc.constant(0), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
        fc.record({ k: fc.constant(1), at: fc.nat(), s: fc.constantFrom(...HOSTILE, ...SYSLOG_BITS) }),
        fc.record({ k: fc.constant(2), at: fc.nat() }),
        fc.record({ k: fc.constant(3), at: fc.nat(), len: fc.nat(200) }),
      ),
      { minLength: 1, maxLength: 5 },
    ),
  )
  .map(([seed, edits]) => {
    let b = Buffer.from(seed);
    for (const e of edits) {
      const at = e.at % (b.length + 1);
      if (e.k === 0) {
        if (b.length) b[at % b.length] = e.v as number;
      } else if (e.k === 1) b = Buffer.concat([b.subarray(0, at), Buffer.from(e.s as string), b.subarray(at)]);
      else if (e.k === 2) b = b.subarray(0, at);
      else b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + (e.len as number)), b.subarray(at)]);
    }
    return b.subarray(0, MAX);
  });

/** An OVOC alarm whose every field may be hostile. */
const hostileAlarm = fc
  .record({
    pri: fc.constantFrom("<9>", "<14>", "<999>", "", "<1"),
    state: fc.constantFrom("New", "Cleared", "new", "", "New New"),
    fields: fc.array(fc.tuple(fc.constantFrom("Source", "Description", "IP Address", "Device Name", "Tenant", "Device Type", "Device Description", "IP Address "), fc.oneof(fc.constantFrom(...HOSTILE, ...RUN_DEVICES, "Connection Lost"), fc.string({ maxLength: 30 }))), { maxLength: 8 }),
    sep: fc.constantFrom(", ", ",", " , ", ",\n"),
  })
  .map((r) => Buffer.from(`${r.pri}Nov 23 10:00:00 ovoc1 : ${r.state} Alarm - Connection Alarm${r.sep}${r.fields.map(([k, v]) => `${k}: ${v}`).join(r.sep)}`).subarray(0, MAX));

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

const anyFrame = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)) },
  { weight: 1, arbitrary: bigBytes(MAX) },
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }).map((s) => Buffer.from(s)) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(...SYSLOG_BITS, ...HOSTILE.filter((h) => h.length < 400)), { maxLength: 12 }).map((p) => Buffer.from(p.join("")).subarray(0, MAX)) },
  { weight: 4, arbitrary: mutatedFrame },
  { weight: 2, arbitrary: hostileAlarm },
);



function syslogFailure(r: { ok: false; code: SyslogErrorCode; offset: number; message: string }, len: number, seen: Map<string, number>): void {
  if (!SYSLOG_CODES.has(r.code) || !Number.isInteger(r.offset) || r.offset < 0 || r.offset > len || typeof r.message !== "string") throw new Error(`untyped failure ${JSON.stringify(r)}`);
  bump(seen, r.code);
}

describe("hostile syslog frames", () => {
  it(`parseRfc3164: ${RUNS.toLocaleString("en")} frames`, () => {
    const seen = runHostile("parseRfc3164", anyFrame, (b, s) => {
      const r = parseRfc3164(b);
      if (!r.ok) return syslogFailure(r, b.length, s);
      bump(s, "ok");
      if (r.value.pri < 0 || r.value.pri > 191 || typeof r.value.msg !== "string") throw new Error("bad ok value");
    });
    expect(seen.get("ok") ?? 0).toBeGreaterThan(1000);
    expect([...seen.keys()].length).toBeGreaterThan(3);
  });

  it(`parseRfc5424: ${RUNS.toLocaleString("en")} frames`, () => {
    const seen = runHostile("parseRfc5424", anyFrame, (b, s) => {
      const r = parseRfc5424(b);
      if (!r.ok) return syslogFailure(r, b.length, s);
      bump(s, "ok");
      if (r.value.pri < 0 || r.value.pri > 191 || r.value.version !== 1) throw new Error("bad ok value");
      for (const e of r.value.structuredData) for (const [k, v] of e.params) if (typeof k !== "string" || typeof v !== "string") throw new Error("bad SD");
    });
    expect(seen.get("ok") ?? 0).toBeGreaterThan(1000);
    for (const c of ["pri", "version", "timestamp", "structured-data"]) expect(seen.get(c) ?? 0, c).toBeGreaterThan(0);
  });

  it(`parseOvocAlarm: ${RUNS.toLocaleString("en")} texts; an accepted IP Address is always an IP literal`, () => {
    const seen = runHostile("parseOvocAlarm", anyFrame, (b, s) => {
      const r = parseOvocAlarm(b.toString("utf8"));
      if (!r.ok) {
        if (!["not-ovoc-alarm", "missing-field", "invalid-field"].includes(r.code) || typeof r.field !== "string") throw new Error(`untyped ${JSON.stringify(r)}`);
        return bump(s, r.code);
      }
      bump(s, r.value.ipAddress === null ? "ok-no-ip" : "ok");
      if (r.value.ipAddress !== null && !isDeviceAddress(r.value.ipAddress)) throw new Error(`accepted IP Address ${JSON.stringify(r.value.ipAddress)}`);
    });
    for (const c of ["ok", "not-ovoc-alarm", "missing-field", "invalid-field"]) expect(seen.get(c) ?? 0, c).toBeGreaterThan(0);
  });

  it(`parseOvocAlarm: ${RUNS.toLocaleString("en")} short texts give exactly what the original's regexes give`, () => {
    // The two patterns ovoc-alarm.ts matches without regexes (see its header comment), verbatim.
    const HEADER = /(?:^|[^A-Za-z])([A-Z][A-Za-z]*)\s+Alarm\s*-\s*(.*?),/;
    const SOURCE = /(?:^|[\s,.])Source:(.*?)(?:,|$)/;
    const reference = (text: string) => {
      const h = HEADER.exec(text);
      if (!h) return "not-ovoc-alarm";
      const rest = text.slice(h.index + h[0].length - 1);
      const src = SOURCE.exec(rest);
      return JSON.stringify({ state: h[1], alarmName: h[2]!.trim(), source: src ? src[1]!.replace(/\0+$/, "").trim() : null });
    };
    const piece = fc.constantFrom("New", "Cleared", "A", "a", "Alarm", " Alarm", "Alarm -", " - ", "-", " ", "  ", "\t", "\n", "\r", "\u2028", "\u00a0", ",", ", ", ".", "Source:", " Source:", ",Source:", "x", "1", "\0", "Connection Alarm", "Description: Connection Lost");
    const random = fc.array(piece, { minLength: 1, maxLength: 14 }).map((p) => p.join(""));
    const template = fc.constantFrom("New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, IP Address: 192.0.2.10", " : Cleared Alarm -x,Source:a", "x.New Alarm -\n, Source: s");
    const edited = fc.tuple(template, fc.array(fc.tuple(fc.nat(), fc.nat(3), piece), { minLength: 1, maxLength: 4 })).map(([t, edits]) => {
      let out = t;
      for (const [at, del, ins] of edits) {
        const i = at % (out.length + 1);
        out = out.slice(0, i) + ins + out.slice(i + del);
      }
      return out;
    });
    const text = fc.oneof(random, edited, edited);
    const seen = runHostile("parseOvocAlarm vs regexes", text, (t, s) => {
      const r = parseOvocAlarm(t);
      const want = reference(t);
      const got = r.ok || r.code !== "not-ovoc-alarm" ? (r.ok ? JSON.stringify({ state: r.value.state, alarmName: r.value.alarmName, source: r.value.source }) : "header-found") : "not-ovoc-alarm";
      if (got === "header-found" ? want === "not-ovoc-alarm" : got !== want) throw new Error(`${JSON.stringify(t)}: got ${got}, the regexes give ${want}`);
      bump(s, got === "not-ovoc-alarm" ? "no-header" : r.ok && r.value.source !== null ? "source" : "header");
    });
    for (const k of ["no-header", "header", "source"]) expect(seen.get(k) ?? 0, k).toBeGreaterThan(1000);
  });

  it(`parseIosxeSyslog + parseIosxeUpdown: ${RUNS.toLocaleString("en")} texts`, () => {
    const seen = runHostile("parseIosxeSyslog", anyFrame, (b, s) => {
      const r = parseIosxeSyslog(b.toString("utf8"));
      if (!r.ok) {
        if (r.code !== "no-mnemonic") throw new Error(`untyped ${JSON.stringify(r)}`);
        return bump(s, r.code);
      }
      bump(s, "ok");
      if (r.value.severity < 0 || r.value.severity > 7) throw new Error("severity");
      const u = parseIosxeUpdown(r.value);
      if (!u.ok && u.code !== "not-updown") throw new Error("untyped updown");
      if (u.ok) bump(s, "updown");
    });
    for (const c of ["ok", "no-mnemonic", "updown"]) expect(seen.get(c) ?? 0, c).toBeGreaterThan(0);
  });

  it(`decode + match + count (AlarmRouter): ${RUNS.toLocaleString("en")} frames stop only devices of the run`, () => {
    const router = new AlarmRouter({ matchers: compileMatchers(["connection-lost", "iosxe-link-down", "iosxe-lineproto-down"]), devices: RUN_DEVICES, maxEventsPerDevice: 1_000_000 });
    const from = { address: "198.51.100.7", port: 514, transport: "udp" as const };
    const seen = runHostile("AlarmRouter.route", anyFrame, (b, s) => {
      router.lane(b);
      const e = router.route(b, from, { monotonicMs: 0, iso: "2026-11-23T10:00:00.000Z" });
      if (!e) return bump(s, "ignored");
      bump(s, `${e.kind}${e.kind === "log" ? `:${e.note}` : ""}`);
      if (e.device !== null && !RUN_DEVICES.includes(e.device)) throw new Error(`event for ${JSON.stringify(e.device)}`);
    });
    // maxEventsPerDevice is huge so every matched alarm for a run device counts as below-threshold.
    expect(seen.get("log:below-threshold") ?? 0).toBeGreaterThan(100);
    expect(seen.get("log:unknown-device") ?? 0).toBeGreaterThan(0);
  });

  // The listener parses only what AlarmRouter.lane() lets through (a byte search for the matchers'
  // literals): skipping a frame must never change an event, a count, or anything after them.
  const PREFILTER_RUNS = 10_000;
  it(`prefilter: lane() then route() gives exactly the events of route() on every frame (${PREFILTER_RUNS.toLocaleString("en")} frames × 3 matcher sets)`, () => {
    const from = { address: "192.0.2.10", port: 514, transport: "udp" as const };
    const at = { monotonicMs: 0, iso: "2026-11-23T10:00:00.000Z" };
    const sets: MatcherSpec[][] = [
      ["connection-lost"],
      [...BUILTIN_MATCHERS],
      ["connection-lost", { pattern: "PEER DOWN (?<device>\\S+)", contains: "PEER DOWN" }, { pattern: "LINK (?<device>[0-9.]+) DOWN", contains: ["LINK ", "DOWN"] }],
    ];
    for (const [i, specs] of sets.entries()) {
      const opts = { devices: RUN_DEVICES, maxEventsPerDevice: 3 };
      const filtered = new AlarmRouter({ matchers: compileMatchers(specs), ...opts });
      const full = new AlarmRouter({ matchers: compileMatchers(specs), ...opts });
      const seen = runHostile(`prefilter, matcher set ${i + 1}`, fc.oneof(anyFrame, fc.constantFrom(Buffer.from("<13>x PEER DOWN 192.0.2.10"), Buffer.from("<13>Nov 23 10:00:00 r1 LINK 127.0.0.2 DOWN"))), (b, s) => {
        const lane = filtered.lane(b);
        const got = lane === "ignore" ? undefined : filtered.route(b, from, at);
        const want = full.route(b, from, at);
        expect(got).toEqual(want);
        bump(s, `${lane}:${want?.kind ?? "none"}`);
      }, PREFILTER_RUNS);
      // The corpus reaches both sides of the filter, and stops get through it.
      expect(seen.get("ignore:none") ?? 0).toBeGreaterThan(PREFILTER_RUNS / 10);
      expect(seen.get("priority:stop") ?? 0).toBeGreaterThan(0);
    }
  });

  it("without a device list, forged alarms for endless addresses keep a bounded count table", () => {
    const router = new AlarmRouter({ matchers: compileMatchers(["connection-lost"]) });
    const from = { address: "198.51.100.7", port: 514, transport: "udp" as const };
    const before = heapMb();
    let stops = 0;
    for (let i = 0; i < 100_000; i++) {
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const e = router.route(ovocConnectionLostAlarm({ deviceIp: ip, format: "rfc3164" }), from, { monotonicMs: 0, iso: "2026-11-23T10:00:00.000Z" });
      if (e?.kind === "stop") stops++;
    }
    const grew = heapMb() - before;
    console.log(`AlarmRouter: 100000 forged alarms for distinct devices, ${stops} counted, heap ${grew.toFixed(1)} MB`);
    expect(stops).toBe(4096);
    expect(grew).toBeLessThan(8);
  });

  it("no frame up to 16 KiB takes long, whatever its shape", () => {
    const frags = ["1", " ", "a", "A ", ":", ". ", ",", "=", "[", '"', "\\", "<1>", "%A-1-A:", "A Alarm - ", ", Description:", "IP Address:", "Interface a", ": ", "*Mar  1 ", "1d", "\n"];
    const prefixes = ["", "<13>1 ", "<13>Jan  1 00:00:00 h t: ", "New Alarm - x,", "%LINK-3-UPDOWN: "];
    const parseAll = (b: Buffer, text: string) => {
      const t = performance.now();
      parseRfc3164(b);
      parseRfc5424(b);
      parseOvocAlarm(text);
      const io = parseIosxeSyslog(text);
      if (io.ok) parseIosxeUpdown(io.value);
      return performance.now() - t;
    };
    let worst = 0;
    let worstInput = "";
    for (const pre of prefixes) {
      for (const a of frags) {
        for (const c of frags) {
          const text = (pre + (a + c).repeat(Math.ceil(MAX / (a + c).length))).slice(0, MAX);
          const b = Buffer.from(text).subarray(0, MAX);
          let ms = parseAll(b, text);
          // Re-time only the slow ones: a GC pause is not the parser being slow.
          if (ms > 20) ms = Math.min(ms, parseAll(b, text), parseAll(b, text));
          if (ms > worst) [worst, worstInput] = [ms, JSON.stringify([pre, a, c])];
        }
      }
    }
    console.log(`syslog pathological inputs: ${prefixes.length * frags.length ** 2} frames x 4 parsers, worst ${worst.toFixed(1)} ms (${worstInput})`);
    expect(worst).toBeLessThan(50);
  });
});

describe("hostile TCP syslog streams (RFC 6587)", () => {
  const streamPiece = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.constantFrom(...seeds).map((s) => Buffer.concat([Buffer.from(`${s.length} `), s])),
    fc.constantFrom(...seeds).map((s) => Buffer.concat([s, Buffer.from("\n")])),
    fc.constantFrom("999999999 ", "9999999999 ", "0 ", "1", " ", "\n", "\0", "12x", "16385 ", "-1 ").map((s) => Buffer.from(s)),
    mutatedFrame,
  );
  const stream = fc.tuple(fc.array(streamPiece, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 6 }));

  it(`SyslogStreamDecoder: ${RUNS.toLocaleString("en")} streams cut into random chunks; frames never exceed the limit, failures are typed`, () => {
    const seen = runHostile("SyslogStreamDecoder", stream, ([pieces, cuts], s) => {
      const all = Buffer.concat(pieces);
      let frames = 0;
      const d = new SyslogStreamDecoder({
        maxFrameBytes: MAX,
        onFrame: (f) => {
          frames++;
          if (f.length === 0 || f.length > MAX) throw new Error(`frame of ${f.length} bytes`);
        },
      });
      let at = 0;
      let i = 0;
      while (at < all.length) {
        const n = cuts[i++ % cuts.length]!;
        const r = d.push(all.subarray(at, at + n));
        if (!r.ok) {
          if (r.code !== "framing" || r.offset < 0 || r.offset > all.length) throw new Error(`untyped ${JSON.stringify(r)}`);
          bump(s, "framing-error");
          return;
        }
        at += n;
      }
      d.end();
      bump(s, frames ? "frames" : "no-frames");
    });
    for (const c of ["frames", "framing-error"]) expect(seen.get(c) ?? 0, c).toBeGreaterThan(0);
  });

  it("a hostile octet count (999,999,999) or an endless line is skipped without buffering it: 64 MiB pushed, heap flat", () => {
    for (const head of ["999999999 ", "<13>x"]) {
      let frames = 0;
      const d = new SyslogStreamDecoder({ maxFrameBytes: MAX, onFrame: () => frames++ });
      const chunk = Buffer.alloc(1 << 20, 0x41);
      const before = heapMb();
      expect(d.push(Buffer.from(head)).ok).toBe(true);
      for (let i = 0; i < 64; i++) expect(d.push(chunk).ok).toBe(true);
      const grew = heapMb() - before;
      console.log(`SyslogStreamDecoder ${JSON.stringify(head)} + 64 MiB: ${frames} frames, ${d.oversize} oversize, heap ${grew.toFixed(1)} MB`);
      expect(frames).toBe(0);
      expect(d.oversize).toBe(1);
      expect(grew).toBeLessThan(4);
    }
  });
});
