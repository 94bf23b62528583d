// Traffic on every interface (trafficOnEveryInterface, what `demo --xepacketcap` uses): each
// interface with an IPv4 address carries its own flow (half UDP, half TCP, valid checksums) to the
// .10 of its /24; a capture point on several interfaces holds their packets merged in time order;
// an interface without an address carries nothing; direction and match apply per packet.
import { decodePacket, internetChecksum, readCapture } from "@capsync/pcap";
import { describe, expect, it } from "vitest";
import { SyntheticPacketSource } from "../synthetic-traffic.js";
import { Epc } from "./epc.js";
import { interfaceFlows } from "./index.js";
import { parseMonitor } from "./monitor-command.js";

const IFACES = [
  { name: "GigabitEthernet1", ip: "192.0.2.1 255.255.255.0" },
  { name: "GigabitEthernet2", ip: "198.51.100.10 255.255.255.0" },
  { name: "GigabitEthernet3" },
];

function epc(): Epc {
  return new Epc(new Map(interfaceFlows(IFACES).map(([n, device, peer]) => [n, new SyntheticPacketSource({ device, peer, packetsPerSecond: 1000, tcp: true })])));
}

function run(e: Epc, line: string): string {
  const p = parseMonitor(line.split(" ").slice(2), (n) => n); // after "monitor capture"
  if (!p.ok) throw new Error(p.message);
  return e.run(p.value);
}

async function capture(e: Epc, define: string, ms: number): Promise<{ src: string; dst: string; ts: bigint; proto: number; checksumOk: boolean }[]> {
  run(e, define);
  run(e, "monitor capture CAP start");
  await new Promise((r) => setTimeout(r, ms));
  run(e, "monitor capture CAP stop");
  expect(run(e, "monitor capture CAP export bootflash:cap.pcap")).toBe("Exported Successfully\n");
  const { packets } = await readCapture(e.bootflash.get("cap.pcap")!.data);
  e.remove("CAP");
  return packets.map((p) => {
    const ip = decodePacket(p.linktype, p.data).ip!;
    // The L4 checksum over the pseudo-header and segment sums to zero when it is right.
    const l3 = p.data.subarray(14);
    const pseudo = Buffer.concat([l3.subarray(12, 20), Buffer.from([0, l3[9]!, (l3.length - 20) >> 8, (l3.length - 20) & 0xff])]);
    return { src: ip.src, dst: ip.dst, ts: p.tsNanos, proto: l3[9]!, checksumOk: internetChecksum(pseudo, l3.subarray(20)) === 0 };
  });
}

describe("IOS-XE emulator: traffic on every interface", () => {
  it("one flow per addressed interface, to the .10 of its /24 (.11 when the interface is .10)", () => {
    expect(interfaceFlows(IFACES)).toEqual([
      ["GigabitEthernet1", "192.0.2.1", "192.0.2.10"],
      ["GigabitEthernet2", "198.51.100.10", "198.51.100.11"],
    ]);
  });

  it("a capture on two interfaces holds both flows, in time order; direction and match apply", async () => {
    const e = epc();
    const both = await capture(e, "monitor capture CAP interface GigabitEthernet1 both interface GigabitEthernet2 both match any", 300);
    const pairs = new Set(both.map((p) => `${p.src}>${p.dst}`));
    expect(pairs).toEqual(new Set(["192.0.2.1>192.0.2.10", "192.0.2.10>192.0.2.1", "198.51.100.10>198.51.100.11", "198.51.100.11>198.51.100.10"]));
    expect(both.length).toBeGreaterThan(400);
    for (let i = 1; i < both.length; i++) expect(both[i]!.ts >= both[i - 1]!.ts).toBe(true);
    // Half UDP, half TCP, every checksum right.
    expect(both.filter((p) => p.proto === 6).length / both.length).toBeCloseTo(0.5, 1);
    expect(both.filter((p) => p.proto !== 6 && p.proto !== 17)).toEqual([]);
    expect(both.every((p) => p.checksumOk)).toBe(true);

    const inbound = await capture(e, "monitor capture CAP interface GigabitEthernet2 in match ipv4 any any", 200);
    expect(inbound.length).toBeGreaterThan(50);
    expect(new Set(inbound.map((p) => `${p.src}>${p.dst}`))).toEqual(new Set(["198.51.100.11>198.51.100.10"]));

    const host = await capture(e, "monitor capture CAP interface GigabitEthernet1 both match ipv4 protocol tcp host 192.0.2.10 any", 200);
    expect(host.length).toBeGreaterThan(25);
    expect(host.every((p) => p.src === "192.0.2.10" && p.proto === 6)).toBe(true);

    expect(await capture(e, "monitor capture CAP interface GigabitEthernet3 both match any", 100)).toEqual([]);
  });
});
