import { describe, expect, it } from "vitest";
import { encodePcapHeader, encodePcapRecord, internetChecksum, LINKTYPE_ETHERNET } from "@capsync/pcap";
import { SyntheticPacketSource } from "./synthetic-traffic.js";

describe("synthetic traffic", () => {
  it("writes the classic little-endian microsecond global header the devices serve", () => {
    expect(encodePcapHeader({ linktype: LINKTYPE_ETHERNET }).toString("hex")).toBe("d4c3b2a1" + "0200" + "0400" + "00000000" + "00000000" + "00000400" + "01000000");
  });

  it("computes the RFC 1071 checksum of a known IPv4 header", () => {
    // Header from the Wikipedia "IPv4 header checksum" example: checksum 0xb861.
    const hdr = Buffer.from("450000730000400040110000c0a80001c0a800c7", "hex");
    expect(internetChecksum(hdr)).toBe(0xb861);
  });

  it("builds frames whose IP and UDP checksums verify to zero", () => {
    const src = new SyntheticPacketSource({ device: "127.0.0.2", packetsPerSecond: 10, devicePort: 5060, peerPort: 5061, payloadBytes: 0 });
    const f = src.frame(0);
    const payload = src.payload(0);
    expect(f.length).toBe(14 + 20 + 8 + payload.length);
    expect(f.subarray(12, 14).toString("hex")).toBe("0800");
    expect(f.subarray(6, 12).toString("hex")).toBe("02007f000002");
    expect(f.subarray(0, 6).toString("hex")).toBe("0200c0000201");
    expect(internetChecksum(f.subarray(14, 34))).toBe(0);
    const udp = f.subarray(34);
    const pseudo = Buffer.from([127, 0, 0, 2, 192, 0, 2, 1, 0, 17, 0, udp.length]);
    expect(internetChecksum(pseudo, udp)).toBe(0);
    expect(udp.readUInt16BE(0)).toBe(5060);
    expect(udp.readUInt16BE(2)).toBe(5061);
    expect(udp.subarray(8).equals(payload)).toBe(true);
  });

  it("stamps records with seconds and microseconds", () => {
    const r = encodePcapRecord(1_700_000_000_123_456n * 1000n, Buffer.from("ab"));
    expect(r.readUInt32LE(0)).toBe(1_700_000_000);
    expect(r.readUInt32LE(4)).toBe(123_456);
    expect(r.readUInt32LE(8)).toBe(2);
    expect(r.readUInt32LE(12)).toBe(2);
    expect(r.subarray(16).toString()).toBe("ab");
  });

  it("is deterministic and alternates direction", () => {
    const opts = { device: "127.0.0.9", packetsPerSecond: 50 };
    const a = new SyntheticPacketSource(opts).records(1_000_000n, 0, 4);
    expect(a.equals(new SyntheticPacketSource(opts).records(1_000_000n, 0, 4))).toBe(true);
    const src = new SyntheticPacketSource(opts);
    expect(src.frame(0).subarray(26, 30).toString("hex")).toBe("7f000009"); // IPv4 source = device
    expect(src.frame(1).subarray(30, 34).toString("hex")).toBe("7f000009"); // IPv4 destination = device
    expect(src.payload(3).subarray(0, 50).toString()).toContain("192.0.2.1>127.0.0.9 seq=3\n");
    expect(src.timestamp(1_000_000n, 3)).toBe(1_060_000n);
    expect(src.packetsDue(0n)).toBe(0);
    expect(src.packetsDue(1n)).toBe(1);
    expect(src.packetsDue(20_000n)).toBe(1);
    expect(src.packetsDue(20_001n)).toBe(2);
  });
});
