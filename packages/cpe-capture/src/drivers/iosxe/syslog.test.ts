import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseIosxeSyslog, parseIosxeUpdown } from "./syslog.js";

const LINK_DOWN = "%LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down";
const none = { sequence: null, timestamp: null, clockFlag: null, origin: null };
const linkDown = { facility: "LINK", severity: 3, mnemonic: "UPDOWN", body: "Interface GigabitEthernet0/0/1, changed state to down" };

// { name, input, expected, updown }: prefixes as IOS-XE emits them under different `service
// sequence-numbers` / `service timestamps` / `logging origin-id` settings and clock states.
const GOLDEN: Array<{ name: string; input: string; expected: unknown; updown?: unknown }> = [
  {
    name: "bare message",
    input: LINK_DOWN,
    expected: { ok: true, value: { ...linkDown, ...none } },
    updown: { ok: true, value: { kind: "link", interface: "GigabitEthernet0/0/1", state: "down" } },
  },
  {
    name: "counter + unsynced clock ('*') with msecs",
    input: `45: *Mar  1 00:01:23.456: ${LINK_DOWN}`,
    expected: { ok: true, value: { ...linkDown, ...none, sequence: 45, timestamp: "Mar  1 00:01:23.456", clockFlag: "*" } },
  },
  {
    name: "sequence-numbers, origin-id hostname, time zone",
    input: `000812: router1: Nov 23 10:15:29.871 UTC: ${LINK_DOWN}`,
    expected: { ok: true, value: { ...linkDown, ...none, sequence: 812, timestamp: "Nov 23 10:15:29.871 UTC", origin: "router1" } },
  },
  {
    name: "origin-id IP, year in timestamp, lost sync ('.')",
    input: `812: 10.20.30.1: .Nov 23 2026 10:15:29.871 CET: ${LINK_DOWN}`,
    expected: { ok: true, value: { ...linkDown, ...none, sequence: 812, timestamp: "Nov 23 2026 10:15:29.871 CET", clockFlag: ".", origin: "10.20.30.1" } },
  },
  {
    name: "uptime timestamp",
    input: `123: 1w2d: ${LINK_DOWN}`,
    expected: { ok: true, value: { ...linkDown, ...none, sequence: 123, timestamp: "1w2d" } },
  },
  {
    name: "line protocol down, stack-member interface",
    input: "46: *Mar  1 00:01:24.457: %LINEPROTO-5-UPDOWN: Line protocol on Interface TenGigabitEthernet1/0/48, changed state to down",
    expected: {
      ok: true,
      value: {
        facility: "LINEPROTO",
        severity: 5,
        mnemonic: "UPDOWN",
        body: "Line protocol on Interface TenGigabitEthernet1/0/48, changed state to down",
        sequence: 46,
        timestamp: "Mar  1 00:01:24.457",
        clockFlag: "*",
        origin: null,
      },
    },
    updown: { ok: true, value: { kind: "lineproto", interface: "TenGigabitEthernet1/0/48", state: "down" } },
  },
  {
    name: "link up",
    input: "%LINK-3-UPDOWN: Interface Tunnel100, changed state to up",
    expected: { ok: true, value: { facility: "LINK", severity: 3, mnemonic: "UPDOWN", body: "Interface Tunnel100, changed state to up", ...none } },
    updown: { ok: true, value: { kind: "link", interface: "Tunnel100", state: "up" } },
  },
  {
    name: "administratively down is LINK-5-CHANGED, not UPDOWN",
    input: "%LINK-5-CHANGED: Interface Loopback0, changed state to administratively down",
    expected: { ok: true, value: { facility: "LINK", severity: 5, mnemonic: "CHANGED", body: "Interface Loopback0, changed state to administratively down", ...none } },
    updown: { ok: false, code: "not-updown", field: "mnemonic", message: "LINK-CHANGED is not an UPDOWN message" },
  },
  {
    name: "other facility",
    input: "%SYS-5-CONFIG_I: Configured from console by admin on vty0 (10.0.0.5)",
    expected: { ok: true, value: { facility: "SYS", severity: 5, mnemonic: "CONFIG_I", body: "Configured from console by admin on vty0 (10.0.0.5)", ...none } },
    updown: { ok: false, code: "not-updown", field: "mnemonic", message: "SYS-CONFIG_I is not an UPDOWN message" },
  },
  {
    name: "UPDOWN with an unexpected body",
    input: "%LINK-3-UPDOWN: something else",
    expected: { ok: true, value: { facility: "LINK", severity: 3, mnemonic: "UPDOWN", body: "something else", ...none } },
    updown: { ok: false, code: "not-updown", field: "body", message: "UPDOWN body is not 'Interface X, changed state to Y'" },
  },
  {
    name: "no mnemonic",
    input: "Interface GigabitEthernet1, changed state to down",
    expected: { ok: false, code: "no-mnemonic", field: "mnemonic", message: "no '%FACILITY-SEVERITY-MNEMONIC:'" },
  },
  {
    name: "severity 8 is not a severity",
    input: "%LINK-8-UPDOWN: Interface Gi1, changed state to down",
    expected: { ok: false, code: "no-mnemonic", field: "mnemonic", message: "no '%FACILITY-SEVERITY-MNEMONIC:'" },
  },
];

describe("parseIosxeSyslog golden table", () => {
  for (const g of GOLDEN) {
    it(g.name, () => {
      const r = parseIosxeSyslog(g.input);
      expect(r).toEqual(g.expected);
      if (g.updown !== undefined && r.ok) expect(parseIosxeUpdown(r.value)).toEqual(g.updown);
    });
  }
});

describe("IOS-XE parsers never throw", () => {
  const pieces = ["%", "LINK", "-3-", "UPDOWN", ":", " ", "Interface ", "Gi0/0/1", ", ", "changed state to ", "down", "*", ".", "Mar  1 00:01:23.456", "45: ", "\n", "ü"];
  const input = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.array(fc.constantFrom(...pieces), { maxLength: 30 }).map((p) => p.join("")),
  );
  it("on 12,000 random and recombined texts", () => {
    fc.assert(
      fc.property(input, (text) => {
        const r = parseIosxeSyslog(text);
        if (!r.ok) return r.code === "no-mnemonic";
        const u = parseIosxeUpdown(r.value);
        return u.ok ? u.value.interface.length > 0 : u.field.length > 0;
      }),
      { numRuns: 12_000 },
    );
  });

  it("stays fast on a hostile 16 KiB body", () => {
    const body = `%LINK-3-UPDOWN: Interface ${"a ".repeat(8000)}`;
    const t0 = performance.now();
    const r = parseIosxeSyslog(body);
    if (r.ok) parseIosxeUpdown(r.value);
    expect(performance.now() - t0).toBeLessThan(50);
  });
});
