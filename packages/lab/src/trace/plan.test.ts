// The trace lab's plan, before anything exists: documentation addresses only, every address and MAC
// once, the ECMP pair as one multipath route, CDP and ARP matching the links, interface names as
// each switch type prints them.
import { describe, expect, it } from "vitest";
import { ciscoMac, planTraceLab, switchInterfaceName, switchSpec, traceNamespaceNames } from "./plan.js";

const DOC = [/^192\.0\.2\.\d+$/, /^198\.51\.100\.\d+$/, /^203\.0\.113\.\d+$/];

describe("trace lab plan", () => {
  const p = planTraceLab();

  it("six switches, NX-OS and IOS-XE mixed, cstrace-* namespaces only", () => {
    expect(p.switches.map((s) => [s.ns, s.type])).toEqual([
      ["cstrace-sw1", "nxos"], ["cstrace-sw2", "nxos"], ["cstrace-sw3", "iosxe"], ["cstrace-sw4", "iosxe"], ["cstrace-sw5", "nxos"], ["cstrace-sw6", "iosxe"],
    ]);
    expect(traceNamespaceNames(p).every((n) => n.startsWith("cstrace-"))).toBe(true);
    expect(new Set(traceNamespaceNames(p)).size).toBe(10);
  });

  it("documentation addresses only, each address and MAC once", () => {
    const addrs = [p.src.address, p.dst.address, p.orch.address, ...p.switches.flatMap((s) => [s.mgmt, ...s.interfaces.map((i) => i.address)])];
    for (const a of addrs) expect(DOC.some((re) => re.test(a)), a).toBe(true);
    expect(new Set(addrs).size).toBe(addrs.length);
    const macs = [p.src.mac, p.dst.mac, ...p.switches.flatMap((s) => s.interfaces.map((i) => i.mac))];
    expect(new Set(macs).size).toBe(macs.length);
  });

  it("the ECMP pair: n9k-spine1's route to the destination LAN has two next hops on two links to c8k-core1", () => {
    const spine = p.switches[1]!;
    expect(p.ecmp).toEqual({ switch: 2, members: ["eth2", "eth3"] });
    expect(spine.routes.find((r) => r.prefix === "198.51.100.0/24")!.nextHops).toEqual([
      { via: "192.0.2.134", dev: "eth2" },
      { via: "192.0.2.138", dev: "eth3" },
    ]);
    expect(spine.l4Hash).toBe(true);
    expect(p.links.filter((l) => l.a === 2 && l.b === 3)).toHaveLength(2);
  });

  it("names: ethN is Ethernet1/N on NX-OS, GigabitEthernetN on IOS-XE; MACs as Cisco prints them", () => {
    expect(switchInterfaceName("nxos", "eth3")).toBe("Ethernet1/3");
    expect(switchInterfaceName("iosxe", "eth3")).toBe("GigabitEthernet3");
    expect(switchInterfaceName("nxos", "mgmt0")).toBe("mgmt0");
    expect(switchInterfaceName("iosxe", "mgmt0")).toBe("GigabitEthernet0");
    expect(ciscoMac("02:c5:00:01:00:02")).toBe("02c5.0001.0002");
  });

  it("CDP advertises each neighbour's link address and management address; ARP holds each neighbour's MAC", () => {
    const core1 = switchSpec(p, p.switches[2]!, "admin", "PW");
    expect(core1.cdp).toEqual([
      { deviceId: "n9k-spine1", localInterface: "GigabitEthernet1", remoteInterface: "Ethernet1/2", address: "192.0.2.133", mgmtAddress: "203.0.113.12", platform: "N9K-C93180YC-EX" },
      { deviceId: "n9k-spine1", localInterface: "GigabitEthernet2", remoteInterface: "Ethernet1/3", address: "192.0.2.137", mgmtAddress: "203.0.113.12", platform: "N9K-C93180YC-EX" },
      { deviceId: "c8k-core2", localInterface: "GigabitEthernet3", remoteInterface: "GigabitEthernet1", address: "192.0.2.142", mgmtAddress: "203.0.113.14", platform: "cisco C8000V" },
    ]);
    const edge = switchSpec(p, p.switches[5]!, "admin", "PW");
    expect(edge.arp.find((a) => a.address === "198.51.100.10")).toEqual({ address: "198.51.100.10", mac: "02c5.00d0.0000", interface: "GigabitEthernet2" });
    // The spec file names the variable holding the password, never the password.
    expect(Object.keys(edge)).not.toContain("password");
    expect(edge.passwordEnv).toBe("PW");
  });
});
