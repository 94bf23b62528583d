import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isRfc5424Timestamp, parseRfc5424 } from "./rfc5424.js";

const BOM = "\uFEFF";
const OVOC_TEXT =
  "New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, Device Name: MSBR-Lab-1, Tenant: Default, Region: Lab, IP Address: 192.0.2.10, Device Type: MSBR, Device Serial: 12345678, Device Description: Mediant 500L MSBR";

const nil = { timestamp: null, hostname: null, appName: null, procId: null, msgId: null, structuredData: [], bom: false };

// Golden cases: { name, input, expected }. The first four are RFC 5424 §6.5's examples verbatim.
const GOLDEN: Array<{ name: string; input: string | Uint8Array; expected: unknown }> = [
  {
    name: "§6.5 example 1: BOM, no SD",
    input: `<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - ${BOM}'su root' failed for lonvick on /dev/pts/8`,
    expected: {
      ok: true,
      value: {
        pri: 34,
        facility: 4,
        severity: 2,
        version: 1,
        timestamp: "2003-10-11T22:14:15.003Z",
        hostname: "mymachine.example.com",
        appName: "su",
        procId: null,
        msgId: "ID47",
        structuredData: [],
        msg: "'su root' failed for lonvick on /dev/pts/8",
        bom: true,
      },
    },
  },
  {
    name: "§6.5 example 2: offset timestamp, microseconds, no BOM",
    input: "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    expected: {
      ok: true,
      value: {
        ...nil,
        pri: 165,
        facility: 20,
        severity: 5,
        version: 1,
        timestamp: "2003-08-24T05:14:15.000003-07:00",
        hostname: "192.0.2.1",
        appName: "myproc",
        procId: "8710",
        msg: "%% It's time to make the do-nuts.",
      },
    },
  },
  {
    name: "§6.5 example 3: structured data and BOM",
    input: `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ${BOM}An application event log entry...`,
    expected: {
      ok: true,
      value: {
        pri: 165,
        facility: 20,
        severity: 5,
        version: 1,
        timestamp: "2003-10-11T22:14:15.003Z",
        hostname: "mymachine.example.com",
        appName: "evntslog",
        procId: null,
        msgId: "ID47",
        structuredData: [{ id: "exampleSDID@32473", params: [["iut", "3"], ["eventSource", "Application"], ["eventID", "1011"]] }],
        msg: "An application event log entry...",
        bom: true,
      },
    },
  },
  {
    name: "§6.5 example 4: two SD elements, no MSG",
    input: `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
    expected: {
      ok: true,
      value: {
        pri: 165,
        facility: 20,
        severity: 5,
        version: 1,
        timestamp: "2003-10-11T22:14:15.003Z",
        hostname: "mymachine.example.com",
        appName: "evntslog",
        procId: null,
        msgId: "ID47",
        structuredData: [
          { id: "exampleSDID@32473", params: [["iut", "3"], ["eventSource", "Application"], ["eventID", "1011"]] },
          { id: "examplePriority@32473", params: [["class", "high"]] },
        ],
        msg: "",
        bom: false,
      },
    },
  },
  {
    name: "OVOC alarm, RFC 5424 with BOM and trailing NUL",
    input: `<129>1 2026-11-23T10:15:30.123Z ovoc-srv1 OVOC - - - ${BOM}${OVOC_TEXT}\0`,
    expected: {
      ok: true,
      value: {
        ...nil,
        pri: 129,
        facility: 16,
        severity: 1,
        version: 1,
        timestamp: "2026-11-23T10:15:30.123Z",
        hostname: "ovoc-srv1",
        appName: "OVOC",
        msg: OVOC_TEXT,
        bom: true,
      },
    },
  },
  {
    name: "rsyslog RSYSLOG_SyslogProtocol23Format relay with escaped SD values",
    input: `<134>1 2026-11-23T10:15:30.123456+01:00 relay01 ovoc 2231 ALARM [origin ip="10.0.0.5" software="rsyslogd"][meta sequenceId="17" note="a \\"quoted\\" \\\\ back\\]slash \\x"] ${BOM}${OVOC_TEXT}\n`,
    expected: {
      ok: true,
      value: {
        pri: 134,
        facility: 16,
        severity: 6,
        version: 1,
        timestamp: "2026-11-23T10:15:30.123456+01:00",
        hostname: "relay01",
        appName: "ovoc",
        procId: "2231",
        msgId: "ALARM",
        structuredData: [
          { id: "origin", params: [["ip", "10.0.0.5"], ["software", "rsyslogd"]] },
          { id: "meta", params: [["sequenceId", "17"], ["note", 'a "quoted" \\ back]slash \\x']] },
        ],
        msg: OVOC_TEXT,
        bom: true,
      },
    },
  },
  {
    name: "IOS-XE `logging trap syslog-format rfc5424`",
    input: '<187>1 2026-11-23T10:15:29.871Z 10.20.30.1 - - - [meta sequenceId="812"] %LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down',
    expected: {
      ok: true,
      value: {
        ...nil,
        pri: 187,
        facility: 23,
        severity: 3,
        version: 1,
        timestamp: "2026-11-23T10:15:29.871Z",
        hostname: "10.20.30.1",
        structuredData: [{ id: "meta", params: [["sequenceId", "812"]] }],
        msg: "%LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down",
      },
    },
  },
  {
    name: "all NILVALUE, UTF-8 SD value, repeated param name, leap day",
    input: '<0>1 2024-02-29T00:00:00+14:00 - - - - [x@1 a="ü" a="2"]',
    expected: {
      ok: true,
      value: { ...nil, pri: 0, facility: 0, severity: 0, version: 1, timestamp: "2024-02-29T00:00:00+14:00", structuredData: [{ id: "x@1", params: [["a", "ü"], ["a", "2"]] }], msg: "" },
    },
  },
  {
    name: "MSG-ANY with invalid UTF-8 is decoded leniently",
    input: Buffer.concat([Buffer.from("<13>1 - - - - - - "), Buffer.from([0x41, 0xff, 0x42])]),
    expected: { ok: true, value: { ...nil, pri: 13, facility: 1, severity: 5, version: 1, msg: "A\uFFFDB" } },
  },
  { name: "empty", input: "", expected: { ok: false, code: "empty", offset: 0, message: "empty message" } },
  { name: "PRI 4 digits", input: "<1234>1 - - - - - -", expected: { ok: false, code: "pri", offset: 4, message: "PRI has more than 3 digits" } },
  { name: "VERSION 2", input: "<34>2 - - - - - -", expected: { ok: false, code: "version", offset: 4, message: "unsupported VERSION (only 1)" } },
  { name: "VERSION missing", input: "<34> - - - - - -", expected: { ok: false, code: "version", offset: 4, message: "missing VERSION" } },
  { name: "VERSION 12", input: "<34>12 - - - - - -", expected: { ok: false, code: "version", offset: 4, message: "unsupported VERSION (only 1)" } },
  {
    name: "space instead of T",
    input: "<34>1 2003-10-11 22:14:15Z host app - - -",
    expected: { ok: false, code: "timestamp", offset: 6, message: "TIMESTAMP is not RFC 3339 (§6.2.3)" },
  },
  {
    name: "lower-case t and z",
    input: "<34>1 2003-10-11t22:14:15z host app - - -",
    expected: { ok: false, code: "timestamp", offset: 6, message: "TIMESTAMP is not RFC 3339 (§6.2.3)" },
  },
  {
    name: "29 February of a common year",
    input: "<34>1 2023-02-29T22:14:15Z host app - - -",
    expected: { ok: false, code: "timestamp", offset: 6, message: "TIMESTAMP is not RFC 3339 (§6.2.3)" },
  },
  {
    name: "7-digit fraction",
    input: "<34>1 2003-10-11T22:14:15.0000001Z host app - - -",
    expected: { ok: false, code: "timestamp", offset: 6, message: "TIMESTAMP is not RFC 3339 (§6.2.3)" },
  },
  {
    name: "HOSTNAME of 256 bytes",
    input: `<34>1 - ${"h".repeat(256)} app - - -`,
    expected: { ok: false, code: "hostname", offset: 263, message: "HOSTNAME is longer than 255 bytes" },
  },
  {
    name: "APP-NAME of 49 bytes",
    input: `<34>1 - host ${"a".repeat(49)} - - -`,
    expected: { ok: false, code: "app-name", offset: 61, message: "APP-NAME is longer than 48 bytes" },
  },
  {
    name: "non-ASCII PROCID",
    input: "<34>1 - host app prö - -",
    expected: { ok: false, code: "procid", offset: 19, message: "PROCID contains a byte outside PRINTUSASCII" },
  },
  { name: "no STRUCTURED-DATA", input: "<34>1 - host app - ID1", expected: { ok: false, code: "header", offset: 22, message: "missing STRUCTURED-DATA" } },
  {
    name: "header cut after APP-NAME",
    input: "<34>1 - host app",
    expected: { ok: false, code: "header", offset: 16, message: "header ends after APP-NAME" },
  },
  {
    name: "unescaped ']' in a PARAM-VALUE",
    input: '<34>1 - h a - - [x a="b]c"] m',
    expected: { ok: false, code: "structured-data", offset: 23, message: "unescaped ']' in PARAM-VALUE" },
  },
  {
    name: "unclosed PARAM-VALUE",
    input: '<34>1 - h a - - [x a="bc',
    expected: { ok: false, code: "structured-data", offset: 22, message: "PARAM-VALUE is not closed by '\"'" },
  },
  {
    name: "SD-ELEMENT not closed",
    input: '<34>1 - h a - - [x a="b"',
    expected: { ok: false, code: "structured-data", offset: 24, message: "SD-ELEMENT is not closed by ']'" },
  },
  {
    name: "duplicate SD-ID",
    input: '<34>1 - h a - - [x a="1"][x a="2"] m',
    expected: { ok: false, code: "structured-data", offset: 26, message: "SD-ID x appears twice" },
  },
  {
    name: "SD neither NIL nor element",
    input: "<34>1 - h a - - hello",
    expected: { ok: false, code: "structured-data", offset: 16, message: "STRUCTURED-DATA is neither '-' nor '['" },
  },
  { name: "no SP after NIL SD", input: "<34>1 - h a - - -x", expected: { ok: false, code: "structured-data", offset: 17, message: "expected SP after STRUCTURED-DATA" } },
  {
    name: "BOM then invalid UTF-8",
    input: Buffer.concat([Buffer.from("<13>1 - - - - - - "), Buffer.from([0xef, 0xbb, 0xbf, 0x41, 0xc3, 0x28])]),
    expected: { ok: false, code: "msg-utf8", offset: 21, message: "MSG after the BOM is not valid UTF-8" },
  },
];

describe("parseRfc5424 golden table", () => {
  for (const g of GOLDEN) {
    it(g.name, () => {
      const bytes = typeof g.input === "string" ? Buffer.from(g.input, "utf8") : g.input;
      expect(parseRfc5424(bytes)).toEqual(g.expected);
    });
  }
});

describe("isRfc5424Timestamp", () => {
  it.each([
    ["1985-04-12T23:20:50.52Z", true],
    ["1985-04-12T19:20:50.52-04:00", true],
    ["2003-10-11T22:14:15.003Z", true],
    ["2000-02-29T00:00:00Z", true],
    ["1900-02-29T00:00:00Z", false],
    ["2003-10-11T22:14:60Z", false],
    ["2003-13-11T22:14:15Z", false],
    ["2003-04-31T22:14:15Z", false],
    ["2003-10-11T22:14:15", false],
    ["2003-10-11T22:14:15+24:00", false],
  ])("%s → %s", (s, ok) => expect(isRfc5424Timestamp(s)).toBe(ok));
});

function mutate(seed: Uint8Array, edits: Array<[number, number, number]>): Uint8Array {
  const b = [...seed];
  for (const [pos, byte, op] of edits) {
    const at = b.length === 0 ? 0 : pos % (b.length + 1);
    if (op === 0) b[Math.min(at, b.length - 1)] = byte;
    else if (op === 1) b.splice(at, 0, byte);
    else if (op === 2) b.splice(at, 1);
    else b.length = at;
  }
  return Uint8Array.from(b.filter((x) => x !== undefined));
}

describe("parseRfc5424 never throws", () => {
  const seeds = GOLDEN.map((g) => (typeof g.input === "string" ? Buffer.from(g.input, "utf8") : g.input));
  const codes = new Set(["empty", "pri", "version", "timestamp", "hostname", "app-name", "procid", "msgid", "structured-data", "header", "msg-utf8"]);
  // Structured data is where a hand-written parser breaks: generate SD-shaped noise too.
  const sdNoise = fc
    .array(fc.constantFrom("[", "]", '"', "\\", "=", " ", "a", "@", "ü", "\uFEFF", "-"), { maxLength: 40 })
    .map((parts) => Buffer.from(`<13>1 - h a p m ${parts.join("")}`));
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.tuple(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.nat(400), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 3 })), { maxLength: 6 }),
    ).map(([s, e]) => mutate(s, e)),
    sdNoise,
  );

  it("on 12,000 random, mutated and SD-shaped frames", () => {
    fc.assert(
      fc.property(input, (bytes) => {
        const r = parseRfc5424(bytes);
        if (r.ok) return r.value.version === 1 && r.value.pri <= 191 && typeof r.value.msg === "string";
        return codes.has(r.code) && r.offset >= 0 && r.offset <= bytes.length && r.message.length > 0;
      }),
      { numRuns: 12_000 },
    );
  });
});
