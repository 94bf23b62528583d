import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fieldOf, isConnectionLost, looksLikeOvocAlarm, parseOvocAlarm } from "./ovoc-alarm.js";

const FULL =
  "New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, Device Name: MSBR-Lab-1, Tenant: Default, Region: Lab, IP Address: 192.0.2.10, Device Type: MSBR, Device Serial: 12345678, Device Description: Mediant 500L MSBR, 2nd floor";

const fullValue = {
  state: "New",
  alarmName: "Connection Alarm",
  description: "Connection Lost",
  source: "Board#1",
  ipAddress: "192.0.2.10",
  deviceName: "MSBR-Lab-1",
  tenant: "Default",
  region: "Lab",
  deviceType: "MSBR",
  deviceSerial: "12345678",
  deviceDescription: "Mediant 500L MSBR, 2nd floor",
};
const sparse = { source: null, ipAddress: null, deviceName: null, tenant: null, region: null, deviceType: null, deviceSerial: null, deviceDescription: null };

// { name, input, expected, lost }: `lost` is isConnectionLost() of the parsed alarm.
const GOLDEN: Array<{ name: string; input: string; expected: unknown; lost?: boolean }> = [
  { name: "OVOC field order (ovoc_capture_app's regex)", input: FULL, expected: { ok: true, value: fullValue }, lost: true },
  {
    name: "inside the RFC 3164 frame, with the original's `<PRI>ts : ` prefix and NUL",
    input: `<129>Nov 23 10:15:30 : ${FULL}\0`,
    expected: { ok: true, value: fullValue },
    lost: true,
  },
  {
    name: "the brief's shape: no spaces after colons, IP last with trailing comma",
    input: "New Alarm -Connection Alarm,Source:Board#1,Description:Connection Lost,IP Address:192.0.2.10,",
    expected: { ok: true, value: { ...sparse, state: "New", alarmName: "Connection Alarm", description: "Connection Lost", source: "Board#1", ipAddress: "192.0.2.10" } },
    lost: true,
  },
  {
    name: "alarm text between header and Source (the original's `(.*)\\s*Source:`)",
    input: "New Alarm - Connection Alarm, received from MSBR-Lab-1 with Severity critical. Source: Board#1, Description: Connection Lost, IP Address: 2001:db8::10",
    expected: { ok: true, value: { ...sparse, state: "New", alarmName: "Connection Alarm", description: "Connection Lost", source: "Board#1", ipAddress: "2001:db8::10" } },
    lost: true,
  },
  {
    name: "Connection established (logged only)",
    input: FULL.replace("Connection Lost", "Connection established"),
    expected: { ok: true, value: { ...fullValue, description: "Connection established" } },
    lost: false,
  },
  {
    name: "cleared alarm is not a new loss",
    input: FULL.replace("New Alarm", "Cleared Alarm"),
    expected: { ok: true, value: { ...fullValue, state: "Cleared" } },
    lost: false,
  },
  {
    name: "another OVOC alarm",
    input: "New Alarm - Power Supply Alarm, Source: PowerSupply#1, Description: Power supply failure, IP Address: 192.0.2.11, Device Type: Mediant 4000",
    expected: {
      ok: true,
      value: { ...sparse, state: "New", alarmName: "Power Supply Alarm", description: "Power supply failure", source: "PowerSupply#1", ipAddress: "192.0.2.11", deviceType: "Mediant 4000" },
    },
    lost: false,
  },
  {
    name: "no IP Address field (device falls back to the sender)",
    input: "New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, Device Name: x",
    expected: { ok: true, value: { ...sparse, state: "New", alarmName: "Connection Alarm", description: "Connection Lost", source: "Board#1", deviceName: "x" } },
    lost: true,
  },
  {
    name: "lower-case description still counts",
    input: "New Alarm - Connection Alarm, Description: connection lost, IP Address: 192.0.2.10",
    expected: { ok: true, value: { ...sparse, state: "New", alarmName: "Connection Alarm", description: "connection lost", ipAddress: "192.0.2.10" } },
    lost: true,
  },
  {
    name: "'Device Description:' is not 'Description:'",
    input: "New Alarm - Connection Alarm, Source: Board#1, Device Description: Connection Lost",
    expected: { ok: false, code: "missing-field", field: "Description", message: "no 'Description:' field" },
  },
  {
    name: "IP Address that is not an address",
    input: "New Alarm - Connection Alarm, Description: Connection Lost, IP Address: 192.0.2.300, Device Type: MSBR",
    expected: { ok: false, code: "invalid-field", field: "IP Address", message: "'IP Address:' is not an IPv4/IPv6 literal" },
  },
  {
    name: "unrelated syslog",
    input: "kernel: IN=eth0 OUT= SRC=10.0.0.1 DST=10.0.0.2 LEN=60 PROTO=TCP SPT=443 DPT=51234",
    expected: { ok: false, code: "not-ovoc-alarm", field: "header", message: "no '<State> Alarm - <name>,' header" },
  },
  {
    name: "header without the closing comma",
    input: "New Alarm - Connection Alarm",
    expected: { ok: false, code: "not-ovoc-alarm", field: "header", message: "no '<State> Alarm - <name>,' header" },
  },
];

describe("parseOvocAlarm golden table", () => {
  for (const g of GOLDEN) {
    it(g.name, () => {
      const r = parseOvocAlarm(g.input);
      expect(r).toEqual(g.expected);
      if (g.lost !== undefined && r.ok) expect(isConnectionLost(r.value)).toBe(g.lost);
      expect(looksLikeOvocAlarm(g.input)).toBe(r.ok || r.code !== "not-ovoc-alarm");
    });
  }
});

describe("parseOvocAlarm never throws", () => {
  const pieces = ["New Alarm - ", "Connection Alarm", ", ", "Source:", "Description:", "Connection Lost", "IP Address:", "192.0.2.10", ",", " ", "\0", "::1", "Device Description:", "é"];
  const input = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.array(fc.constantFrom(...pieces), { maxLength: 30 }).map((p) => p.join("")),
    fc.tuple(fc.constantFrom(...GOLDEN.map((g) => g.input)), fc.nat(300), fc.nat(300)).map(([s, a, b]) => s.slice(0, a % (s.length + 1)) + s.slice(b % (s.length + 1))),
  );
  it("on 12,000 random and recombined texts", () => {
    fc.assert(
      fc.property(input, (text) => {
        const r = parseOvocAlarm(text);
        return r.ok ? typeof r.value.description === "string" : r.field.length > 0;
      }),
      { numRuns: 12_000 },
    );
  });
});

describe("fieldOf finds what the original's field regexes find", () => {
  // The regexes the fields were read with (trafficCapture's `Key:(.*?),` with a leading comma), and
  // their clean-up: the reference fieldOf must agree with on every text.
  const KEYS = ["Description", "IP Address", "Device Name", "Tenant", "Region", "Device Type", "Device Serial"];
  const esc = (k: string) => k.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const viaRegex = (s: string, key: string, toEnd: boolean): string | null => {
    const m = (toEnd ? new RegExp(`,\\s*${esc(key)}:(.*)$`, "s") : new RegExp(`,\\s*${esc(key)}:(.*?)(?:,|$)`)).exec(s);
    return m ? m[1]!.replace(/\0+$/, "").trim() : null;
  };
  const pieces = [...KEYS.map((k) => `${k}:`), "Device Description:", ",", ", ", " ,", "\t", "\n", "\r", "\u2028", "\u00a0", "\u3000", "\ufeff", "\u200b", "\0", "x", "192.0.2.10", "IP Address", ":", " "];
  const text = fc.oneof(fc.string({ maxLength: 80 }), fc.array(fc.constantFrom(...pieces), { maxLength: 24 }).map((p) => p.join("")));
  it("on 20,000 texts, every key", () => {
    fc.assert(
      fc.property(text, fc.constantFrom(...KEYS, "Device Description"), (s, key) => {
        const toEnd = key === "Device Description";
        expect(fieldOf(s, key, toEnd)).toBe(viaRegex(s, key, toEnd));
      }),
      { numRuns: 20_000 },
    );
  });
});
