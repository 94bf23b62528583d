import { describe, expect, it } from "vitest";
import { captureTimestamp, filenameProblem, isDeviceAddress, isSafeFilename, parseEndpoint } from "./index.js";

describe("addresses", () => {
  const good = ["192.0.2.1", "0.0.0.0", "255.255.255.255", "::1", "2001:db8::10", "::ffff:192.0.2.1"];
  const bad = ["", "192.0.2", "192.0.2.1.", "01.2.3.4", "256.1.1.1", "fe80::1%eth0", "[::1]", "host.example", "1.2.3.4 ", "::1\n"];
  for (const a of good) it(`accepts ${a}`, () => expect(isDeviceAddress(a)).toBe(true));
  for (const a of bad) it(`rejects ${JSON.stringify(a)}`, () => expect(isDeviceAddress(a)).toBe(false));
  it("parses endpoints", () => {
    expect(parseEndpoint("198.51.100.5:20001")).toEqual({ host: "198.51.100.5", port: 20001 });
    expect(parseEndpoint("[2001:db8::5]:20001")).toEqual({ host: "2001:db8::5", port: 20001 });
    expect(parseEndpoint("2001:db8::5:20001")).toBeUndefined();
    expect(parseEndpoint("198.51.100.5:0")).toBeUndefined();
    expect(parseEndpoint("198.51.100.5:70000")).toBeUndefined();
  });
});

describe("file names", () => {
  it("accepts the original's names", () => {
    expect(isSafeFilename("CPE_device_192.0.2.10_2026-11-23T10.00.00.123456.pcap")).toBe(true);
  });
  it("explains refusals", () => {
    expect(filenameProblem("a/b")).toBe("contains a path separator");
    expect(filenameProblem("a\\b")).toBe("contains a path separator");
    expect(filenameProblem("..")).toBe("contains '..'");
    expect(filenameProblem("a\0b")).toBe("contains a control character");
    expect(filenameProblem("a b")).toBe("may only contain letters, digits, '.', '_' and '-'");
    expect(filenameProblem("x".repeat(201))).toBe("is longer than 200 characters");
  });
  it("formats timestamps like the original (microseconds)", () => {
    expect(captureTimestamp(new Date(2026, 10, 23, 9, 5, 7, 42))).toBe("2026-11-23T09.05.07.042000");
  });
});
