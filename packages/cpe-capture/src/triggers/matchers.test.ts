import fc from "fast-check";
import { ConfigError } from "@capsync/protocol";
import { describe, expect, it } from "vitest";
import {
  AlarmRouter,
  BUILTIN_MATCHERS,
  type MatcherSpec,
  type Sender,
  builtinMatcher,
  checkMatcherSpecs,
  compileMatchers,
  decodeSyslog,
  normalizeAddress,
} from "./matchers.js";

const AT = { monotonicMs: 1000.5, iso: "2026-11-23T10:15:30.123Z" };
const OVOC_SERVER: Sender = { address: "198.51.100.5", port: 41000, transport: "udp" };
const DEVICES = ["192.0.2.10", "2001:db8::10", "10.20.30.1", "198.51.100.7"];

function ovoc(description: string, ip: string, opts: { state?: string; name?: string } = {}): string {
  return (
    `<129>Nov 23 10:15:30 : ${opts.state ?? "New"} Alarm - ${opts.name ?? "Connection Alarm"}, Source: Board#1, Description: ${description}, ` +
    `Device Name: MSBR-Lab-1, Tenant: Default, Region: Lab, IP Address: ${ip}, Device Type: MSBR, Device Serial: 12345678, Device Description: lab\0`
  );
}
const line = (frame: string) => frame.replace(/\0$/, "");

describe("matcher registry", () => {
  it("defaults to connection-lost and knows the built-ins", () => {
    expect(compileMatchers().map((m) => m.name)).toEqual(["connection-lost"]);
    expect([...BUILTIN_MATCHERS]).toEqual(["connection-lost", "iosxe-link-down", "iosxe-lineproto-down"]);
    expect(compileMatchers([...BUILTIN_MATCHERS]).map((m) => m.name)).toEqual([...BUILTIN_MATCHERS]);
  });

  it("names unnamed patterns by position and accepts an optional device group", () => {
    const ms = compileMatchers(["connection-lost", { pattern: "PEER DOWN (?<device>\\S+)" }, { pattern: "(?:at (?<device>\\S+) )?went away", flags: "i" }]);
    expect(ms.map((m) => m.name)).toEqual(["connection-lost", "pattern-2", "pattern-3"]);
  });

  const BAD: Array<{ name: string; specs: unknown[]; index: number; message: string | RegExp }> = [
    { name: "unknown built-in", specs: ["connection-lost", "link-down"], index: 1, message: "unknown alarm matcher 'link-down' (built-in: connection-lost, iosxe-link-down, iosxe-lineproto-down)" },
    { name: "duplicate", specs: ["connection-lost", "connection-lost"], index: 1, message: "matcher 'connection-lost' is listed twice" },
    { name: "duplicate pattern names", specs: [{ pattern: "(?<device>a)", name: "x" }, { pattern: "(?<device>b)", name: "x" }], index: 1, message: "matcher 'x' is listed twice" },
    { name: "no device group", specs: [{ pattern: "LINK DOWN (\\S+)" }], index: 0, message: "pattern needs a named group (?<device>...) for the device address" },
    { name: "other named group only", specs: [{ pattern: "(?<host>\\S+) down" }], index: 0, message: "pattern needs a named group (?<device>...) for the device address" },
    { name: "does not compile", specs: [{ pattern: "(?<device>\\S+" }], index: 0, message: /^pattern does not compile: / },
    { name: "stateful flag", specs: [{ pattern: "(?<device>\\S+)", flags: "g" }], index: 0, message: "flags 'g' not allowed (use i, m, s, u)" },
    { name: "repeated flag", specs: [{ pattern: "(?<device>\\S+)", flags: "ii" }], index: 0, message: "flags 'ii' not allowed (use i, m, s, u)" },
    { name: "built-in name taken", specs: [{ pattern: "(?<device>\\S+)", name: "iosxe-link-down" }], index: 0, message: "name 'iosxe-link-down' is a built-in matcher's" },
    { name: "bad name", specs: [{ pattern: "(?<device>\\S+)", name: "My Pattern" }], index: 0, message: "name 'My Pattern' must be lower-case letters, digits and '-'" },
    { name: "empty contains", specs: [{ pattern: "(?<device>\\S+)", contains: [] }], index: 0, message: "contains must be one or more non-empty strings" },
    { name: "empty pattern", specs: [{ pattern: "" }], index: 0, message: "pattern must be 1..1000 characters" },
    { name: "not a spec", specs: [42], index: 0, message: "expected a built-in matcher name or { pattern: ... }" },
  ];
  for (const b of BAD) {
    it(`rejects: ${b.name}`, () => {
      const r = checkMatcherSpecs(b.specs);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.index).toBe(b.index);
      if (typeof b.message === "string") expect(r.message).toBe(b.message);
      else expect(r.message).toMatch(b.message);
    });
  }

  it("compileMatchers throws ConfigError naming the entry", () => {
    expect(() => compileMatchers(["connection-lost", { pattern: "down" }])).toThrow(ConfigError);
    expect(() => compileMatchers(["connection-lost", { pattern: "down" }])).toThrow("stop.alarms[1]: pattern needs a named group (?<device>...) for the device address");
  });
});

describe("decodeSyslog", () => {
  const from: Sender = { address: "127.0.0.1", port: 1, transport: "udp" };
  it("tells RFC 5424 from RFC 3164 and falls back to raw text", () => {
    expect(decodeSyslog(Buffer.from("<13>1 - host app - - - hello\n"), from)).toEqual({
      format: "rfc5424", msg: "hello", hostname: "host", line: "<13>1 - host app - - - hello", parseError: null, from,
    });
    expect(decodeSyslog(Buffer.from("<13>Mar  1 09:05:02 host app: hello"), from)).toEqual({
      format: "rfc3164", msg: "app: hello", hostname: "host", line: "<13>Mar  1 09:05:02 host app: hello", parseError: null, from,
    });
    expect(decodeSyslog(Buffer.from("<189>45: *Mar  1 00:01:23.456: %LINK-3-UPDOWN: x"), from)).toEqual({
      format: "raw", msg: "45: *Mar  1 00:01:23.456: %LINK-3-UPDOWN: x", hostname: null, line: "<189>45: *Mar  1 00:01:23.456: %LINK-3-UPDOWN: x",
      parseError: { code: "timestamp", offset: 5 }, from,
    });
    expect(decodeSyslog(Buffer.from('<13>1 - h a - - [x a="]"] m'), from)).toMatchObject({ format: "raw", msg: '1 - h a - - [x a="]"] m', parseError: { code: "structured-data" } });
    expect(decodeSyslog(Buffer.from("no pri at all"), from)).toMatchObject({ format: "raw", msg: "no pri at all", parseError: { code: "pri", offset: 0 } });
  });
});

describe("AlarmRouter.lane prefilter", () => {
  const all = new AlarmRouter({ matchers: compileMatchers([...BUILTIN_MATCHERS]) });
  const lostOnly = new AlarmRouter({ matchers: compileMatchers() });
  const unfiltered = new AlarmRouter({ matchers: compileMatchers(["connection-lost", { pattern: "DOWN (?<device>\\S+)" }]) });
  const filtered = new AlarmRouter({ matchers: compileMatchers(["connection-lost", { pattern: "DOWN (?<device>\\S+)", contains: "PEER DOWN" }]) });
  const b = (s: string) => Buffer.from(s);
  it.each([
    ["junk", all, "<134>Nov 23 10:15:30 fw1 kernel: IN=eth0 SRC=10.0.0.1", "ignore"],
    ["OVOC Connection Lost", lostOnly, ovoc("Connection Lost", "192.0.2.10"), "priority"],
    ["OVOC Connection established", lostOnly, ovoc("Connection established", "192.0.2.10"), "bulk"],
    ["IOS link down with iosxe matchers", all, "<187>%LINK-3-UPDOWN: Interface Gi1, changed state to down", "priority"],
    ["IOS link down without them", lostOnly, "<187>%LINK-3-UPDOWN: Interface Gi1, changed state to down", "ignore"],
    ["anything, with an unfiltered user pattern", unfiltered, "<134>fw1 kernel: junk", "bulk"],
    ["junk, with a filtered user pattern", filtered, "<134>fw1 kernel: junk DOWN", "ignore"],
    ["the literal, with a filtered user pattern", filtered, "<134>fw1 PEER DOWN 192.0.2.10", "priority"],
  ])("%s", (_n, router, frame, lane) => {
    expect(router.lane(b(frame))).toBe(lane);
    expect(router.lane(new Uint8Array(b(frame)))).toBe(lane);
  });
});

// { name, specs, frame, from, expected }: one fresh router per case, devices = DEVICES.
const ROUTES: Array<{ name: string; specs?: MatcherSpec[]; frame: string; from?: Sender; expected: unknown }> = [
  {
    name: "OVOC Connection Lost → stop, device by the alarm's IP",
    frame: ovoc("Connection Lost", "192.0.2.10"),
    expected: {
      kind: "stop", device: "192.0.2.10", via: "alarm", count: 1, reason: "Connection Alarm: Connection Lost", matcher: "connection-lost",
      message: line(ovoc("Connection Lost", "192.0.2.10")), format: "rfc3164", receivedAt: AT, from: OVOC_SERVER,
    },
  },
  {
    name: "alarm IP not in the run → falls back to the sender",
    frame: ovoc("Connection Lost", "203.0.113.9"),
    from: { address: "198.51.100.7", port: 514, transport: "tcp" },
    expected: {
      kind: "stop", device: "198.51.100.7", via: "sender", count: 1, reason: "Connection Alarm: Connection Lost", matcher: "connection-lost",
      message: line(ovoc("Connection Lost", "203.0.113.9")), format: "rfc3164", receivedAt: AT, from: { address: "198.51.100.7", port: 514, transport: "tcp" },
    },
  },
  {
    name: "neither the alarm IP nor the sender is a device of this run → logged",
    frame: ovoc("Connection Lost", "203.0.113.9"),
    expected: {
      kind: "log", device: null, via: null, note: "unknown-device", count: null, reason: "Connection Alarm: Connection Lost", matcher: "connection-lost",
      message: line(ovoc("Connection Lost", "203.0.113.9")), format: "rfc3164", receivedAt: AT, from: OVOC_SERVER,
    },
  },
  {
    name: "Connection established → logged only",
    frame: ovoc("Connection established", "192.0.2.10"),
    expected: {
      kind: "log", device: "192.0.2.10", via: "alarm", note: "not-a-stop-alarm", count: null, reason: "Connection Alarm: Connection established", matcher: "connection-lost",
      message: line(ovoc("Connection established", "192.0.2.10")), format: "rfc3164", receivedAt: AT, from: OVOC_SERVER,
    },
  },
  {
    name: "other OVOC alarm → logged only",
    frame: ovoc("Power supply failure", "192.0.2.10", { name: "Power Supply Alarm" }),
    expected: {
      kind: "log", device: "192.0.2.10", via: "alarm", note: "not-a-stop-alarm", count: null, reason: "Power Supply Alarm: Power supply failure", matcher: "connection-lost",
      message: line(ovoc("Power supply failure", "192.0.2.10", { name: "Power Supply Alarm" })), format: "rfc3164", receivedAt: AT, from: OVOC_SERVER,
    },
  },
  {
    name: "OVOC alarm with a broken IP field → logged, not dropped silently, never a stop",
    frame: ovoc("Connection Lost", "192.0.2.300"),
    expected: {
      kind: "log", device: null, via: null, note: "not-a-stop-alarm", count: null, reason: "OVOC alarm not understood: 'IP Address:' is not an IPv4/IPv6 literal",
      matcher: "connection-lost", message: line(ovoc("Connection Lost", "192.0.2.300")), format: "rfc3164", receivedAt: AT, from: OVOC_SERVER,
    },
  },
  {
    name: "RFC 5424 OVOC alarm, IPv6 device in upper case → the run's spelling",
    frame: "<129>1 2026-11-23T10:15:30.123Z ovoc-srv1 OVOC - - - \uFEFFNew Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, IP Address: 2001:DB8::10, Device Type: MSBR",
    expected: {
      kind: "stop", device: "2001:db8::10", via: "alarm", count: 1, reason: "Connection Alarm: Connection Lost", matcher: "connection-lost",
      message: "<129>1 2026-11-23T10:15:30.123Z ovoc-srv1 OVOC - - - \uFEFFNew Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, IP Address: 2001:DB8::10, Device Type: MSBR",
      format: "rfc5424", receivedAt: AT, from: OVOC_SERVER,
    },
  },
  {
    name: "IOS-XE link down straight from the device (raw: IOS prefix) → stop by sender",
    specs: [...BUILTIN_MATCHERS],
    frame: "<187>45: *Mar  1 00:01:23.456: %LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down",
    from: { address: "::ffff:10.20.30.1", port: 53000, transport: "udp" },
    expected: {
      kind: "stop", device: "10.20.30.1", via: "sender", count: 1, reason: "%LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down", matcher: "iosxe-link-down",
      message: "<187>45: *Mar  1 00:01:23.456: %LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down", format: "raw", receivedAt: AT,
      from: { address: "::ffff:10.20.30.1", port: 53000, transport: "udp" },
    },
  },
  {
    name: "IOS-XE line protocol down via an rsyslog relay → stop by HOSTNAME",
    specs: ["iosxe-lineproto-down"],
    frame: "<189>Nov 23 10:15:30 10.20.30.1 812: Nov 23 10:15:29.871 UTC: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/0/1, changed state to down",
    expected: {
      kind: "stop", device: "10.20.30.1", via: "hostname", count: 1, reason: "%LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/0/1, changed state to down",
      matcher: "iosxe-lineproto-down",
      message: "<189>Nov 23 10:15:30 10.20.30.1 812: Nov 23 10:15:29.871 UTC: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/0/1, changed state to down",
      format: "rfc3164", receivedAt: AT, from: OVOC_SERVER,
    },
  },
  {
    name: "IOS-XE link up → logged",
    specs: ["iosxe-link-down"],
    frame: "<187>%LINK-3-UPDOWN: Interface Gi1, changed state to up",
    from: { address: "10.20.30.1", port: 514, transport: "udp" },
    expected: {
      kind: "log", device: "10.20.30.1", via: "sender", note: "not-a-stop-alarm", count: null, reason: "%LINK-3-UPDOWN: Interface Gi1, changed state to up", matcher: "iosxe-link-down",
      message: "<187>%LINK-3-UPDOWN: Interface Gi1, changed state to up", format: "raw", receivedAt: AT, from: { address: "10.20.30.1", port: 514, transport: "udp" },
    },
  },
  {
    name: "user pattern → stop by the device group",
    specs: ["connection-lost", { pattern: "PEER DOWN (?<device>\\S+)", name: "peer-down", reason: "peer down" }],
    frame: "<13>Nov 23 10:15:30 fw1 watchdog: PEER DOWN 192.0.2.10",
    expected: {
      kind: "stop", device: "192.0.2.10", via: "pattern", count: 1, reason: "peer down", matcher: "peer-down",
      message: "<13>Nov 23 10:15:30 fw1 watchdog: PEER DOWN 192.0.2.10", format: "rfc3164", receivedAt: AT, from: OVOC_SERVER,
    },
  },
  {
    name: "user pattern whose optional group did not take part → sender",
    specs: [{ pattern: "(?:at (?<device>\\S+) )?went away", flags: "i" }],
    frame: "<13>Nov 23 10:15:30 fw1 watchdog: Peer WENT AWAY",
    from: { address: "198.51.100.7", port: 514, transport: "udp" },
    expected: {
      kind: "stop", device: "198.51.100.7", via: "sender", count: 1, reason: "pattern-1: WENT AWAY", matcher: "pattern-1",
      message: "<13>Nov 23 10:15:30 fw1 watchdog: Peer WENT AWAY", format: "rfc3164", receivedAt: AT, from: { address: "198.51.100.7", port: 514, transport: "udp" },
    },
  },
];

describe("AlarmRouter.route golden table", () => {
  for (const r of ROUTES) {
    it(r.name, () => {
      const router = new AlarmRouter({ matchers: compileMatchers(r.specs ?? ["connection-lost"]), devices: DEVICES });
      expect(router.route(Buffer.from(r.frame), r.from ?? OVOC_SERVER, AT)).toEqual(r.expected);
    });
  }

  it("ignores frames no matcher cares about", () => {
    const router = new AlarmRouter({ matchers: compileMatchers([...BUILTIN_MATCHERS]), devices: DEVICES });
    expect(router.route(Buffer.from("<134>Nov 23 10:15:30 fw1 kernel: IN=eth0"), OVOC_SERVER, AT)).toBeUndefined();
  });

  it("without a device list, any address is a device (normalised)", () => {
    const router = new AlarmRouter({ matchers: [builtinMatcher("iosxe-link-down")] });
    const ev = router.route(Buffer.from("<187>%LINK-3-UPDOWN: Interface Gi1, changed state to down"), { address: "::FFFF:203.0.113.5", port: 1, transport: "udp" }, AT);
    expect(ev).toMatchObject({ kind: "stop", device: "203.0.113.5", via: "sender" });
  });
});

describe("maxEventsPerDevice", () => {
  it("stops at the Nth matching alarm, per device, and logs the others", () => {
    const router = new AlarmRouter({ matchers: compileMatchers(), devices: DEVICES, maxEventsPerDevice: 3 });
    const lost = (ip: string) => router.route(Buffer.from(ovoc("Connection Lost", ip)), OVOC_SERVER, AT);
    const seq = [lost("192.0.2.10"), lost("192.0.2.10"), lost("2001:db8::10"), lost("192.0.2.10"), lost("192.0.2.10")];
    expect(seq.map((e) => [e?.kind, e?.device, e?.count, e?.kind === "log" ? e.note : null])).toEqual([
      ["log", "192.0.2.10", 1, "below-threshold"],
      ["log", "192.0.2.10", 2, "below-threshold"],
      ["log", "2001:db8::10", 1, "below-threshold"],
      ["stop", "192.0.2.10", 3, null],
      ["log", "192.0.2.10", 4, "after-stop"],
    ]);
    // Non-stop alarms do not count.
    router.route(Buffer.from(ovoc("Connection established", "2001:db8::10")), OVOC_SERVER, AT);
    expect(router.countFor("2001:db8::10")).toBe(1);
  });

  it("default is 1; 0 and fractions are refused", () => {
    expect(new AlarmRouter({ matchers: compileMatchers() }).maxEventsPerDevice).toBe(1);
    expect(() => new AlarmRouter({ matchers: compileMatchers(), maxEventsPerDevice: 0 })).toThrow(ConfigError);
    expect(() => new AlarmRouter({ matchers: compileMatchers(), maxEventsPerDevice: 1.5 })).toThrow(ConfigError);
  });
});

describe("normalizeAddress", () => {
  it.each([
    ["::ffff:192.0.2.1", "192.0.2.1"],
    ["[2001:DB8::1]", "2001:db8::1"],
    [" 192.0.2.1 ", "192.0.2.1"],
    ["::ffff:zz", "::ffff:zz"],
    ["Router1.Example", "router1.example"],
  ])("%s → %s", (a, b) => expect(normalizeAddress(a)).toBe(b));
});

describe("AlarmRouter.route never throws", () => {
  const router = new AlarmRouter({
    matchers: compileMatchers([...BUILTIN_MATCHERS, { pattern: "DOWN (?<device>\\S*)" }]),
    devices: DEVICES,
    maxEventsPerDevice: 2,
  });
  const seeds = ROUTES.map((r) => Buffer.from(r.frame));
  const frame = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.tuple(fc.constantFrom(...seeds), fc.nat(400), fc.nat(400), fc.uint8Array({ maxLength: 8 })).map(([s, a, b, ins]) => {
      const cut = a % (s.length + 1);
      return Buffer.concat([s.subarray(0, cut), ins, s.subarray(Math.min(s.length, cut + (b % 20)))]);
    }),
  );
  it("on 10,000 random and spliced frames", () => {
    fc.assert(
      fc.property(frame, (f) => {
        const lane = router.lane(f);
        const ev = router.route(f, OVOC_SERVER, AT);
        return ["priority", "bulk", "ignore"].includes(lane) && (ev === undefined || ev.kind === "stop" || ev.kind === "log");
      }),
      { numRuns: 10_000 },
    );
  });
});
