// xepacketcap's answer shapes and file names, and the IOS-XE device key that gives its circular buffer.
import { describe, expect, it } from "vitest";
import { configFromObject } from "../config/loader.js";
import { pcapJsonBody, statusJsonBody, xePacketCapFileName } from "./xepacketcap.js";

const request = { iface: "g1", proto: "tcp", src: "any", dst: "192.0.2.10", duration: 10 };

describe("xepacketcap answers", () => {
  it("file names are epoch milliseconds, never the same twice", () => {
    expect(xePacketCapFileName(1733450000000)).toBe("1733450000000.pcap");
    expect(xePacketCapFileName(1733450000000)).toBe("1733450000001.pcap");
    expect(xePacketCapFileName(1733450000000)).toBe("1733450000002.pcap");
  });
  it("job_id: a string from /pcap_json, a number from /status_json; url the capture file once UPLOADED", () => {
    expect(pcapJsonBody({ id: "905928" } as never)).toEqual({ job_id: "905928" });
    const waiting = statusJsonBody({ id: "905928", status: "WAITING", request, captureFile: "1733450000000.pcap" }, "http://127.0.0.1:5000");
    expect(waiting).toEqual({ job_id: 905928, iface: "g1", proto: "tcp", src: "any", dst: "192.0.2.10", duration: 10, url: null, status: "WAITING" });
    const served = statusJsonBody({ id: "905928", status: "UPLOADED", request, captureFile: "1733450000000.pcap" }, "http://127.0.0.1:5000");
    expect(served.url).toBe("http://127.0.0.1:5000/captures/905928/1733450000000.pcap");
    const uploaded = statusJsonBody({ id: "905928", status: "UPLOADED", request, captureFile: "1.pcap", captureKey: "1.pcap", url: "https://s3.example/xepacketcap/1.pcap?X-Amz-Signature=1" }, "http://x");
    expect(uploaded.url).toBe("https://s3.example/xepacketcap/1.pcap?X-Amz-Signature=1");
    expect(statusJsonBody({ id: "905928", status: "ERROR", request, error: "no capture file from the router" }, "http://x")).toMatchObject({ status: "ERROR", url: null, error: "no capture file from the router" });
  });
  it("epcBuffer is an IOS-XE device key: linear|circular, refused elsewhere", () => {
    const dev = (d: Record<string, unknown>) => () => configFromObject({ output: "/tmp/o", devices: [{ address: "192.0.2.1", username: "a", password: { env: "X" }, ...d }] }, { baseDir: "/tmp" });
    expect(dev({ type: "gwsbc", epcBuffer: "circular" })).toThrow("devices[0].epcBuffer: only for iosxe devices (gwsbc has no EPC buffer)");
    expect(dev({ type: "iosxe", interfaces: ["tw1/0/1"], epcBuffer: "round" })).toThrow("devices[0].epcBuffer: expected linear|circular, got 'round'");
  });
});
