import { describe, expect, it } from "vitest";
import { cpeCaptureFileName } from "./driver.js";
import { driverFor, drivers } from "./index.js";

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
    expect(Object.keys(drivers).sort()).toEqual(["gwsbc", "iosxe", "msbr"]);
    const d = driverFor("gwsbc")({ address: "192.0.2.1", type: "gwsbc", username: "u", password: "p" });
    expect([d.type, d.address, d.capabilities.vendor, d.capabilities.interfaces]).toEqual(["gwsbc", "192.0.2.1", "audiocodes", ["eth-lan"]]);
    // The map key wins over a mismatching `type` option.
    expect(drivers.msbr({ address: "192.0.2.1", type: "gwsbc", username: "u", password: "p" }).type).toBe("msbr");
    const x = driverFor("iosxe")({ address: "192.0.2.2", type: "iosxe", username: "u", password: "p" });
    expect([x.type, x.capabilities.vendor, x.capabilities.transfer]).toEqual(["iosxe", "cisco", "scp"]);
    expect(() => driverFor("nosuch" as never)).toThrow(/no capture driver for device type "nosuch"/);
  });
});
