import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseRfc3164 } from "./rfc3164.js";

const OVOC_TEXT =
  "New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, Device Name: MSBR-Lab-1, Tenant: Default, Region: Lab, IP Address: 192.0.2.10, Device Type: MSBR, Device Serial: 12345678, Device Description: Mediant 500L MSBR";

const base = { pid: null };

// Golden cases: { name, input, expected }. Inputs are real-looking frames as OVOC, rsyslog, Linux
// daemons and IOS-XE send them.
const GOLDEN: Array<{ name: string; input: string; expected: unknown }> = [
  {
    name: "RFC 3164 §5.4 example 1 (hostname, tag)",
    input: "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    expected: {
      ok: true,
      value: {
        ...base,
        pri: 34,
        facility: 4,
        severity: 2,
        timestamp: "Oct 11 22:14:15",
        timestampFormat: "bsd",
        hostname: "mymachine",
        tag: "su",
        msg: "su: 'su root' failed for lonvick on /dev/pts/8",
        content: "'su root' failed for lonvick on /dev/pts/8",
      },
    },
  },
  {
    name: "no hostname, tag with pid (sshd writing straight to the network)",
    input: "<38>Feb  5 17:32:18 sshd[4321]: Accepted publickey for admin from 10.0.0.5 port 52314 ssh2",
    expected: {
      ok: true,
      value: {
        pri: 38,
        facility: 4,
        severity: 6,
        timestamp: "Feb  5 17:32:18",
        timestampFormat: "bsd",
        hostname: null,
        tag: "sshd",
        pid: "4321",
        msg: "sshd[4321]: Accepted publickey for admin from 10.0.0.5 port 52314 ssh2",
        content: "Accepted publickey for admin from 10.0.0.5 port 52314 ssh2",
      },
    },
  },
  {
    name: "OVOC forwarded alarm: no hostname, bare ':' tag, trailing NUL",
    input: `<129>Nov 23 10:15:30 : ${OVOC_TEXT}\0`,
    expected: {
      ok: true,
      value: {
        ...base,
        pri: 129,
        facility: 16,
        severity: 1,
        timestamp: "Nov 23 10:15:30",
        timestampFormat: "bsd",
        hostname: null,
        tag: "",
        msg: `: ${OVOC_TEXT}`,
        content: OVOC_TEXT,
      },
    },
  },
  {
    name: "OVOC forwarded alarm with the OVOC host name",
    input: `<129>Nov  3 10:15:30 ovoc-srv1 : ${OVOC_TEXT}`,
    expected: {
      ok: true,
      value: {
        ...base,
        pri: 129,
        facility: 16,
        severity: 1,
        timestamp: "Nov  3 10:15:30",
        timestampFormat: "bsd",
        hostname: "ovoc-srv1",
        tag: "",
        msg: `: ${OVOC_TEXT}`,
        content: OVOC_TEXT,
      },
    },
  },
  {
    name: "rsyslog RSYSLOG_ForwardFormat relay (RFC 3339 timestamp, relay host, tag)",
    input: `<129>2026-11-23T10:15:30.123456+01:00 relay01 ovoc: ${OVOC_TEXT}\n`,
    expected: {
      ok: true,
      value: {
        ...base,
        pri: 129,
        facility: 16,
        severity: 1,
        timestamp: "2026-11-23T10:15:30.123456+01:00",
        timestampFormat: "rfc3339",
        hostname: "relay01",
        tag: "ovoc",
        msg: `ovoc: ${OVOC_TEXT}`,
        content: OVOC_TEXT,
      },
    },
  },
  {
    name: "rsyslog RSYSLOG_TraditionalForwardFormat relay of a tagless message",
    input: `<129>Nov 23 10:15:30 ovoc-srv1 ${OVOC_TEXT}`,
    expected: {
      ok: true,
      value: {
        ...base,
        pri: 129,
        facility: 16,
        severity: 1,
        timestamp: "Nov 23 10:15:30",
        timestampFormat: "bsd",
        hostname: "ovoc-srv1",
        tag: null,
        msg: OVOC_TEXT,
        content: OVOC_TEXT,
      },
    },
  },
  {
    name: "IOS-XE through a relay: host is the device, sequence number read as tag",
    input: "<187>Nov 23 10:15:30 10.20.30.1 812: Nov 23 10:15:29.871 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down",
    expected: {
      ok: true,
      value: {
        ...base,
        pri: 187,
        facility: 23,
        severity: 3,
        timestamp: "Nov 23 10:15:30",
        timestampFormat: "bsd",
        hostname: "10.20.30.1",
        tag: "812",
        msg: "812: Nov 23 10:15:29.871 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down",
        content: "Nov 23 10:15:29.871 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down",
      },
    },
  },
  {
    name: "IPv6 host name, zero-padded day, CRLF",
    input: "<30>Mar 01 09:05:02 2001:db8::7 dhcpd: DHCPACK on 10.0.0.9\r\n",
    expected: {
      ok: true,
      value: {
        ...base,
        pri: 30,
        facility: 3,
        severity: 6,
        timestamp: "Mar 01 09:05:02",
        timestampFormat: "bsd",
        hostname: "2001:db8::7",
        tag: "dhcpd",
        msg: "dhcpd: DHCPACK on 10.0.0.9",
        content: "DHCPACK on 10.0.0.9",
      },
    },
  },
  {
    name: "UTF-8 content, pri 0",
    input: "<0>Dec 31 23:59:60 host app: Grüße, ошибка",
    expected: {
      ok: true,
      value: {
        ...base,
        pri: 0,
        facility: 0,
        severity: 0,
        timestamp: "Dec 31 23:59:60",
        timestampFormat: "bsd",
        hostname: "host",
        tag: "app",
        msg: "app: Grüße, ошибка",
        content: "Grüße, ошибка",
      },
    },
  },
  {
    name: "timestamp only",
    input: "<13>Mar  1 09:05:02",
    expected: {
      ok: true,
      value: {
        ...base,
        pri: 13,
        facility: 1,
        severity: 5,
        timestamp: "Mar  1 09:05:02",
        timestampFormat: "bsd",
        hostname: null,
        tag: null,
        msg: "",
        content: "",
      },
    },
  },
  { name: "empty", input: "", expected: { ok: false, code: "empty", offset: 0, message: "empty message" } },
  { name: "only NULs", input: "\0\0\n", expected: { ok: false, code: "empty", offset: 0, message: "empty message" } },
  { name: "no PRI", input: "Mar  1 09:05:02 host app: x", expected: { ok: false, code: "pri", offset: 0, message: "message does not start with '<'" } },
  { name: "PRI above 191", input: "<192>Mar  1 09:05:02 host app: x", expected: { ok: false, code: "pri", offset: 1, message: "PRI 192 is above 191" } },
  { name: "PRI leading zero", input: "<013>Mar  1 09:05:02 host app: x", expected: { ok: false, code: "pri", offset: 1, message: "PRI has a leading zero" } },
  { name: "PRI not closed", input: "<13Mar  1 09:05:02", expected: { ok: false, code: "pri", offset: 3, message: "PRI is not closed by '>'" } },
  { name: "PRI empty", input: "<>Mar", expected: { ok: false, code: "pri", offset: 1, message: "PRI has no digits" } },
  {
    name: "IOS sequence number instead of a timestamp",
    input: "<189>45: *Mar  1 00:01:23.456: %LINK-3-UPDOWN: Interface Gi0/0/1, changed state to down",
    expected: { ok: false, code: "timestamp", offset: 5, message: "TIMESTAMP is neither 'Mmm dd hh:mm:ss' nor RFC 3339" },
  },
  {
    name: "hour 25",
    input: "<13>Mar  1 25:00:00 host app: x",
    expected: { ok: false, code: "timestamp", offset: 4, message: "TIMESTAMP is neither 'Mmm dd hh:mm:ss' nor RFC 3339" },
  },
  {
    name: "fraction after a BSD timestamp",
    input: "<13>Mar  1 09:05:02.123 host app: x",
    expected: { ok: false, code: "timestamp", offset: 19, message: "expected SP after TIMESTAMP" },
  },
  {
    name: "control byte in host name",
    input: "<13>Mar  1 09:05:02 ho\u0001st app: x",
    expected: { ok: false, code: "hostname", offset: 22, message: "HOSTNAME contains a byte outside printable ASCII" },
  },
];

describe("parseRfc3164 golden table", () => {
  for (const g of GOLDEN) {
    it(g.name, () => {
      expect(parseRfc3164(Buffer.from(g.input, "utf8"))).toEqual(g.expected);
      expect(parseRfc3164(g.input)).toEqual(g.expected);
    });
  }

  it("parses a subarray with a non-zero byteOffset", () => {
    const whole = Buffer.from(`xxxx${GOLDEN[0]!.input}`);
    expect(parseRfc3164(whole.subarray(4))).toEqual(GOLDEN[0]!.expected);
  });
});

/** Apply byte edits to a seed: the classic mutation fuzzer, small enough to read. */
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

describe("parseRfc3164 never throws", () => {
  const seeds = GOLDEN.map((g) => Buffer.from(g.input, "utf8"));
  const codes = new Set(["empty", "pri", "timestamp", "hostname"]);
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.tuple(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.nat(400), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 3 })), { maxLength: 6 }),
    ).map(([s, e]) => mutate(s, e)),
    fc.string({ unit: "grapheme", maxLength: 80 }).map((s) => Buffer.from(`<13>Mar  1 09:05:02 ${s}`)),
  );

  it("on 12,000 random and mutated frames", () => {
    fc.assert(
      fc.property(input, (bytes) => {
        const r = parseRfc3164(bytes);
        if (r.ok) return typeof r.value.msg === "string" && r.value.pri <= 191;
        return codes.has(r.code) && r.offset >= 0 && r.offset <= bytes.length && r.message.length > 0;
      }),
      { numRuns: 12_000 },
    );
  });
});
