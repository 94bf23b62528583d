// IOS's interface-name abbreviations: every short form an engineer types (xepacketcap's own
// example "g1", pcap-sparkbot's "Gi1", Catalyst's Te/Tw/Twe/Fo/Hu) resolved to the canonical name.
import { describe, expect, it } from "vitest";
import { canonicalIosXeInterface, iosXeInterfaceType } from "./interfaces.js";
import { epcCommands, epcDefineInputs } from "./epc.js";

const GOLDEN: [typed: string, canonical: string][] = [
  ["g1", "GigabitEthernet1"],
  ["G1", "GigabitEthernet1"],
  ["gi1", "GigabitEthernet1"],
  ["Gi1", "GigabitEthernet1"],
  ["gig1", "GigabitEthernet1"],
  ["Giga0/0/1", "GigabitEthernet0/0/1"],
  ["Gi0/0/1", "GigabitEthernet0/0/1"],
  ["gi 0/0/1", "GigabitEthernet0/0/1"],
  ["GigabitEthernet0/0/0.100", "GigabitEthernet0/0/0.100"],
  ["t1/0/1", "TenGigabitEthernet1/0/1"],
  ["te1/0/1", "TenGigabitEthernet1/0/1"],
  ["Ten1/1/4", "TenGigabitEthernet1/1/4"],
  ["tw1/0/1", "TwoGigabitEthernet1/0/1"],
  ["Two1/0/2", "TwoGigabitEthernet1/0/2"],
  ["twe1/0/1", "TwentyFiveGigE1/0/1"],
  ["Twe1/1/1", "TwentyFiveGigE1/1/1"],
  ["twoh1/0/1", "TwoHundredGigE1/0/1"],
  ["f0/1", "FastEthernet0/1"],
  ["fa0/1", "FastEthernet0/1"],
  ["fo1/0/1", "FortyGigabitEthernet1/0/1"],
  ["Fo1/1/1", "FortyGigabitEthernet1/1/1"],
  ["fi1/0/1", "FiveGigabitEthernet1/0/1"],
  ["fou1/0/1", "FourHundredGigE1/0/1"],
  ["h1/0/1", "HundredGigE1/0/1"],
  ["hu1/0/49", "HundredGigE1/0/49"],
  ["ap1/0/1", "AppGigabitEthernet1/0/1"],
  ["e0", "Ethernet0"],
  ["Et0/0", "Ethernet0/0"],
  ["eth1", "Ethernet1"],
  ["po10", "Port-channel10"],
  ["Port-channel10", "Port-channel10"],
  ["v100", "Vlan100"],
  ["Vl100", "Vlan100"],
  ["vi1", "Virtual-Access1"],
  ["Vt1", "Virtual-Template1"],
  ["virtual-t2", "Virtual-Template2"],
  ["Vpg0", "VirtualPortGroup0"],
  ["l0", "Loopback0"],
  ["Lo0", "Loopback0"],
  ["tu1", "Tunnel1"],
  ["di1", "Dialer1"],
  ["ce0/1/0", "Cellular0/1/0"],
  ["se0/1/0:0", "Serial0/1/0:0"],
  ["mu1", "Multilink1"],
  ["b5", "BDI5"],
  ["BDI5", "BDI5"],
  ["bv1", "BVI1"],
];

describe("IOS-XE interface short forms", () => {
  it.each(GOLDEN)("%s → %s", (typed, canonical) => {
    expect(canonicalIosXeInterface(typed)).toBe(canonical);
  });
  it("resolves a prefix fitting several types by IOS's order", () => {
    expect(["t", "tw", "twe", "f", "fo", "fi", "v", "vi", "b"].map(iosXeInterfaceType)).toEqual([
      "TenGigabitEthernet",
      "TwoGigabitEthernet",
      "TwentyFiveGigE",
      "FastEthernet",
      "FortyGigabitEthernet",
      "FiveGigabitEthernet",
      "Vlan",
      "Virtual-Access",
      "BDI",
    ]);
  });
  it("refuses what is no interface name", () => {
    for (const bad of ["wlan0", "x1", "g", "Gi", "GigabitEthernet", "Gi1/x", "eth-wan", "gigabitethernetx1", "", "1"]) expect(canonicalIosXeInterface(bad)).toBeUndefined();
  });
});

describe("EPC circular buffer", () => {
  const plan = { interfaces: ["GigabitEthernet1"], direction: "both" as const, match: "ipv4 protocol tcp any any", limit: { duration: 10 } };
  it("writes xepacketcap's `buffer circular size 100`, or the configured size, or none", () => {
    expect(epcCommands("CS1", { ...plan, bufferMb: 100, bufferCircular: true }).define).toEqual([
      "monitor capture CS1 interface GigabitEthernet1 both",
      "monitor capture CS1 match ipv4 protocol tcp any any",
      "monitor capture CS1 buffer circular size 100",
      "monitor capture CS1 limit duration 10",
    ]);
    expect(epcCommands("CS1", { ...plan, bufferMb: 5, bufferCircular: true }).define[2]).toBe("monitor capture CS1 buffer circular size 5");
    expect(epcCommands("CS1", { ...plan, bufferCircular: true }).define[2]).toBe("monitor capture CS1 buffer circular");
    expect(epcCommands("CS1", { ...plan, bufferMb: 5 }).define[2]).toBe("monitor capture CS1 buffer size 5");
    expect(epcDefineInputs("CS1", { ...plan, bufferMb: 100, bufferCircular: true })[0]!.buffer).toEqual({ circular: [null], size: 100 });
  });
});
