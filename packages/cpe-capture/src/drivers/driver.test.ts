import { describe, expect, it } from "vitest";
import { cpeCaptureFileName } from "./driver.js";
import { BUILTIN_MATCHERS } from "../triggers/matchers.js";
import { DEVICE_TYPES, checkVendors, driverFor, drivers } from "./index.js";
import type { VendorModule } from "./vendor.js";

describe("cpeCaptureFileName", () => {
  it("keeps the original's name and timestamp format (local time, microseconds)", () => {
    const d = new Date(2026, 10, 23, 9, 5, 7, 123);
    expect(cpeCaptureFileName("192.0.2.10", d)).toBe("CPE_device_192.0.2.10_2026-11-23T09.05.07.123000.pcap");
  });
  it("turns IPv6 colons into dashes so the name stays one safe path component", () => {
    expect(cpeCaptureFileName("2001:db8::10", new Date(2026, 0, 2, 3, 4, 5, 6))).toBe("CPE_device_2001-db8--10_2026-01-02T03.04.05.006000.pcap");
  });
  it("refuses addresses that would not make a safe file name", () => {
    expect(() => cpeCaptureFileName("..")).toThrow(/contains '\.\.'/);
    expect(() => cpeCaptureFileName("a/b")).toThrow(/path separator/);
  });
});

describe("driver registry", () => {
  it("has a factory per implemented type, building the right driver", () => {
    expect(Object.keys(drivers).sort()).toEqual(["gwsbc", "iosxe", "msbr", "nxos"]);
    const d = driverFor("gwsbc")({ address: "192.0.2.1", type: "gwsbc", username: "u", password: "p" });
    expect([d.type, d.address, d.capabilities.vendor, d.capabilities.interfaces]).toEqual(["gwsbc", "192.0.2.1", "audiocodes", ["eth-lan"]]);
    // The map key wins over a mismatching `type` option.
    expect(drivers.msbr({ address: "192.0.2.1", type: "gwsbc", username: "u", password: "p" }).type).toBe("msbr");
    const x = driverFor("iosxe")({ address: "192.0.2.2", type: "iosxe", username: "u", password: "p" });
    expect([x.type, x.capabilities.vendor, x.capabilities.transfer]).toEqual(["iosxe", "cisco", "scp"]);
    expect(() => driverFor("nosuch" as never)).toThrow(/no capture driver for device type "nosuch"/);
  });
});

describe("the registry refuses ambiguity", () => {
  const base = drivers.msbr;
  const type = (name: string, over: Partial<VendorModule["types"][number]> = {}): VendorModule["types"][number] => ({
    name,
    label: "Example Networks router",
    interfaces: { kind: "names", pattern: /^e\d$/, example: "e1", expected: "e1, e2, ..." },
    capabilities: { vendor: "example", interfaces: null, defaultInterfaces: [], multipleInterfaces: true, filter: true, direction: true, snaplen: true, transfer: "scp" },
    compiler: { key: "x", compile: () => ({ ok: true, text: "", plan: {} }) },
    prompt: { interfaces: { kind: "type", message: "Interfaces" } },
    driver: base,
    ...over,
  });
  const vendor = (over: Partial<VendorModule> = {}): VendorModule => ({ vendor: "example", types: [type("ex1")], configKeys: {}, alarms: {}, ...over });
  const matcher = (name: string) => ({ name, stopLiterals: [], logLiterals: [], match: () => undefined });

  it("accepts distinct names, and knows every type and built-in alarm once", () => {
    expect(() => checkVendors([vendor(), vendor({ types: [type("ex2")] })])).not.toThrow();
    expect(new Set(DEVICE_TYPES).size).toBe(DEVICE_TYPES.length);
    expect(new Set(BUILTIN_MATCHERS).size).toBe(BUILTIN_MATCHERS.length);
  });
  it("a device type registered twice", () => {
    expect(() => checkVendors([vendor(), vendor()])).toThrow('device type "ex1" is registered twice');
  });
  it("a vendor-only key registered twice", () => {
    const key = { values: ["a", "b"] as [string, string], default: "a", refusal: "has one" };
    expect(() => checkVendors([vendor({ configKeys: { k: key } }), vendor({ types: [type("ex2")], configKeys: { k: key } })])).toThrow('device key "k" is registered twice');
  });
  it("an alarm registered twice, or under another matcher's name", () => {
    expect(() => checkVendors([vendor({ alarms: { "connection-lost": matcher("connection-lost") } })], { "connection-lost": matcher("connection-lost") })).toThrow(
      'alarm matcher "connection-lost" is registered twice',
    );
    expect(() => checkVendors([vendor({ alarms: { a: matcher("b") } })])).toThrow('alarm matcher "a" calls itself "b"');
  });
  it("an interface prompt that cannot ask for the type's interfaces", () => {
    expect(() => checkVendors([vendor({ types: [type("ex1", { prompt: { interfaces: { kind: "choose", message: "Pick" } } })] })])).toThrow(
      "device type ex1: a choose prompt cannot ask for names interfaces",
    );
  });
});
