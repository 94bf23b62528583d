// The emulated router's trace answers from its routing option: longest prefix, ECMP picked by the
// flow (stable per flow, spread over flows), its own addresses as receive, VRFs, and the text of the
// show commands the IOS-XE hop client reads.
import { describe, expect, it } from "vitest";
import type { DeviceContext } from "./context.js";
import { createRoutingCli } from "./routing.js";
import type { IosXeDeviceOptions } from "./types.js";

const opts: IosXeDeviceOptions = {
  username: "u",
  password: "p",
  routing: {
    loadSharing: "include-ports source destination",
    routes: [
      { prefix: "0.0.0.0/0", via: "192.0.2.254", interface: "GigabitEthernet1" },
      { prefix: "10.20.0.0/16", via: "10.0.12.2", interface: "GigabitEthernet2" },
      { prefix: "10.20.0.0/16", via: "10.0.13.3", interface: "GigabitEthernet3" },
      { prefix: "10.20.30.0/24", via: "10.0.12.2", interface: "GigabitEthernet2" },
      { prefix: "10.99.0.0/16", via: "10.0.40.4", interface: "GigabitEthernet4", vrf: "RED" },
    ],
    arp: [{ address: "10.0.12.2", mac: "5254.0012.0002", interface: "GigabitEthernet2" }],
    cdp: [{ deviceId: "r2", localInterface: "GigabitEthernet2", remoteInterface: "GigabitEthernet1", address: "10.0.12.2", mgmtAddress: "198.51.100.2" }],
  },
};
const ctx = {
  opts,
  hostname: "r1",
  interfaces: [
    { name: "GigabitEthernet1", ip: "192.0.2.1 255.255.255.0" },
    { name: "GigabitEthernet2", ip: "10.0.12.1 255.255.255.0" },
    { name: "GigabitEthernet3", ip: "10.0.13.1 255.255.255.0" },
    { name: "GigabitEthernet4", ip: "10.0.40.1 255.255.255.0", vrf: "RED" },
  ],
} as unknown as DeviceContext;
const cli = createRoutingCli(ctx, (t) => ctx.interfaces.find((i) => i.name.toLowerCase() === t.toLowerCase())?.name);
const out = (line: string) => {
  const r = cli(line.split(" "));
  if (!r || !("output" in r)) throw new Error(`no output for ${line}: ${JSON.stringify(r)}`);
  return r.output;
};

describe("IOS-XE emulator: show ip cef exact-route", () => {
  it("takes the longest prefix, the default route last, and the VRF's own table", () => {
    expect(out("show ip cef exact-route 10.1.1.1 10.20.30.5")).toBe("10.1.1.1 -> 10.20.30.5 =>IP adj out of GigabitEthernet2, addr 10.0.12.2\n");
    expect(out("show ip cef exact-route 10.1.1.1 8.8.8.8")).toBe("10.1.1.1 -> 8.8.8.8 =>IP adj out of GigabitEthernet1, addr 192.0.2.254\n");
    expect(out("show ip cef vrf RED exact-route 10.1.1.1 10.99.1.1")).toBe("10.1.1.1 -> 10.99.1.1 =>IP adj out of GigabitEthernet4, addr 10.0.40.4\n");
    expect(out("show ip cef vrf RED exact-route 10.1.1.1 8.8.8.8")).toBe("10.1.1.1 -> 8.8.8.8 =>no route\n");
    expect(out("show ip cef vrf BLUE exact-route 10.1.1.1 8.8.8.8")).toBe("% IP routing table BLUE does not exist\n");
  });

  it("answers receive for its own addresses", () => {
    expect(out("show ip cef exact-route 10.1.1.1 10.0.13.1")).toBe("10.1.1.1 -> 10.0.13.1 =>receive\n");
  });

  it("picks one member of an ECMP set per flow: the same every time, both members over many ports", () => {
    const pick = (sport: number) => out(`show ip cef exact-route 10.1.1.1 src-port ${sport} 10.20.1.1 dest-port 80`);
    expect(pick(1000)).toBe(pick(1000));
    const seen = new Set(Array.from({ length: 32 }, (_, i) => /out of (\S+),/.exec(pick(1000 + i))![1]));
    expect([...seen].sort()).toEqual(["GigabitEthernet2", "GigabitEthernet3"]);
  });

  it("refuses malformed lines at the offending word", () => {
    expect(cli("show ip cef exact-route 10.1.1.300 10.20.1.1".split(" "))).toEqual({ invalidAt: 4, message: "invalid input" });
    expect(cli("show ip cef exact-route 10.1.1.1 src-port 99999 10.20.1.1".split(" "))).toEqual({ invalidAt: 6, message: "invalid input" });
    expect(cli("show ip cef exact-route 10.1.1.1 10.20.1.1 extra".split(" "))).toEqual({ invalidAt: 6, message: "invalid input" });
  });
});

describe("IOS-XE emulator: the other trace commands", () => {
  it("prints CDP with management addresses, ARP with its own entries, the running config's algorithm", () => {
    expect(out("show cdp neighbors detail")).toContain("Device ID: r2\nEntry address(es): \n  IP address: 10.0.12.2\n");
    expect(out("show cdp neighbors detail")).toContain("Management address(es): \n  IP address: 198.51.100.2\n");
    expect(out("show ip arp")).toContain("Internet  10.0.12.2               12   5254.0012.0002  ARPA   GigabitEthernet2");
    expect(out("show ip arp vrf RED")).not.toContain("10.0.12.2");
    expect(out("show running-config")).toContain("\nhostname r1\n!\nip cef load-sharing algorithm include-ports source destination\n");
    expect(out("show interfaces GigabitEthernet2")).toMatch(/\n {5}\d+ packets output, \d+ bytes, 0 underruns\n/);
  });

  it("has no MAC table without one configured (a router), and leaves other lines to the exec CLI", () => {
    expect(cli(["show", "mac", "address-table"])).toEqual({ invalidAt: 1, message: "invalid input" });
    expect(cli(["show", "version"])).toBeUndefined();
  });
});
