// Golden tests of the NX-OS text parsers: each sample in ./fixtures (see its README for where each
// comes from) read into exact values, and odd text answered with a typed issue, never a throw.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { counterPairs, parseShowInterface } from "./parse/interface.js";
import { parseCdpNeighborsDetail } from "./parse/neighbors.js";
import { parseRoutingHash, routingHashCommand } from "./parse/routing-hash.js";
import { parseShowHostname, parseShowVersion } from "./parse/system.js";
import { parseShowIpArp, parseShowMacAddressTable } from "./parse/tables.js";

const fixture = (name: string) => readFileSync(path.join(import.meta.dirname, "fixtures", name), "utf8");
const ODD = ["", "\n\n", "% Invalid command at '^' marker.\n", "garbage\u0000\u00ff line", "Hash for VRF", "Device ID:", "  TX\n"];

describe("show routing hash: the command line (flowtracker's argument order, vrf as `vrf <name>`)", () => {
  it.each([
    [{ src: "3.3.3.3", dst: "4.4.4.4" }, "show routing hash 3.3.3.3 4.4.4.4"],
    [{ src: "3.3.3.3", dst: "4.4.4.4", proto: 6 }, "show routing hash 3.3.3.3 4.4.4.4 ip-proto 6"],
    [{ src: "3.3.3.3", dst: "4.4.4.4", proto: 6, sport: 1234, dport: 80 }, "show routing hash 3.3.3.3 4.4.4.4 ip-proto 6 1234 80"],
    [{ src: "3.3.3.3", dst: "4.4.4.4", proto: 17, sport: 5060, dport: 5060, vrf: "BLUE" }, "show routing hash 3.3.3.3 4.4.4.4 ip-proto 17 5060 5060 vrf BLUE"],
    [{ src: "3.3.3.3", dst: "4.4.4.4", vrf: "default" }, "show routing hash 3.3.3.3 4.4.4.4"],
  ])("%j → %s", (q, cmd) => {
    expect(routingHashCommand(q)).toBe(cmd);
  });
  it.each([
    [{ src: "3.3.3.3; reload", dst: "4.4.4.4" }],
    [{ src: "3.3.3.3", dst: "4.4.4.4", sport: 1 }],
    [{ src: "3.3.3.3", dst: "4.4.4.4", proto: 256 }],
    [{ src: "3.3.3.3", dst: "4.4.4.4", vrf: "a b" }],
    [{ src: "2001:db8::1", dst: "4.4.4.4" }],
  ])("refuses %j", (q) => {
    expect(routingHashCommand(q)).toBeUndefined();
  });
});

describe("show routing hash: golden samples", () => {
  it.each([
    ["routing-hash-ecmp.txt", { vrf: "default", loadShareMode: "address source-destination port source-destination", path: "10.10.60.1", nextHop: "10.10.60.1", outInterface: "Eth1/52", local: false, route: "4.4.4.4/32" }],
    ["routing-hash-local.txt", { vrf: "default", loadShareMode: "address source-destination port source-destination", path: "sup-eth1", nextHop: undefined, outInterface: "sup-eth1 , local, attached", local: true, route: "4.4.4.4/32" }],
    ["routing-hash-vrf-no-out-interface.txt", { vrf: "BLUE", loadShareMode: "address source-destination port source-destination", path: "192.0.2.9", nextHop: "192.0.2.9", outInterface: "Ethernet1/2", local: false, route: "198.51.100.0/24" }],
  ])("%s", (name, want) => {
    expect(parseRoutingHash(fixture(name))).toEqual({ ok: true, value: want });
  });
  it("CRLF text (the SSH CLI) reads the same as NX-API text", () => {
    expect(parseRoutingHash(fixture("routing-hash-ecmp.txt").replace(/\n/g, "\r\n"))).toEqual(parseRoutingHash(fixture("routing-hash-ecmp.txt")));
  });
  it("the interface comes from the chosen *via line when nothing else names it", () => {
    const text = 'Hash for VRF "default"\nHashing to path *10.0.0.5\nFor route:\n10.20.0.0/16, ubest/mbest: 2/0\n    *via 10.0.0.1, Eth1/1, [110/41], 3d04h, ospf-1, intra\n    *via 10.0.0.5, Eth1/2, [110/41], 3d04h, ospf-1, intra\n';
    expect(parseRoutingHash(text)).toMatchObject({ ok: true, value: { nextHop: "10.0.0.5", outInterface: "Eth1/2", loadShareMode: undefined } });
  });
  it("an error answer is a typed issue", () => {
    expect(parseRoutingHash(fixture("routing-hash-invalid.txt"))).toEqual({ ok: false, code: "no-hash", message: "no 'Hash for VRF' line: ^" });
    expect(parseRoutingHash('Hash for VRF "default"\nRoute not found for 4.4.4.4 in VRF "default"\n')).toEqual({ ok: false, code: "no-path", message: `no 'Hashing to path' line: Hash for VRF "default"` });
  });
});

describe("show interface: golden sample", () => {
  it("resets line, TX block as printed, TX counters by label", () => {
    const r = parseShowInterface(fixture("show-interface-eth1-52.txt"));
    expect(r).toEqual({
      ok: true,
      value: {
        name: "Ethernet1/52",
        state: "up",
        resets: "6 interface resets",
        txBlock: [
          "    1552 unicast packets  233683 multicast packets  3 broadcast packets",
          "    235246 output packets  24675632 bytes",
          "    0 jumbo packets",
          "    0 output error  0 collision  0 deferred  0 late collision",
          "    0 lost carrier  0 no carrier  0 babble  0 output discard",
          "    0 Tx pause",
        ].join("\n"),
        txStats: {
          "unicast packets": "1552",
          "multicast packets": "233683",
          "broadcast packets": "3",
          "output packets": "235246",
          bytes: "24675632",
          "jumbo packets": "0",
          "output error": "0",
          collision: "0",
          deferred: "0",
          "late collision": "0",
          "lost carrier": "0",
          "no carrier": "0",
          babble: "0",
          "output discard": "0",
          "Tx pause": "0",
        },
      },
    });
  });
  it("counter pairs with single spaces between them (as some releases print)", () => {
    expect(counterPairs("    0 lost carrier  0 no carrier  0 babble 0 output discard")).toEqual([["lost carrier", "0"], ["no carrier", "0"], ["babble", "0"], ["output discard", "0"]]);
  });
  it("an interface without counters is a typed issue", () => {
    expect(parseShowInterface("Vlan10 is up, line protocol is up\n  Internet Address is 10.1.1.1/24\n")).toEqual({ ok: false, code: "no-tx", message: "Vlan10: no TX counters block" });
  });
});

describe("show cdp neighbors detail: golden sample", () => {
  it("both neighbors with interface and management addresses", () => {
    expect(parseCdpNeighborsDetail(fixture("cdp-neighbors-detail.txt"))).toEqual({
      ok: true,
      value: [
        { deviceId: "N9K2(FDO21392QKM)", systemName: "N9K2", localInterface: "Ethernet1/52", remoteInterface: "Ethernet2/3", addresses: ["10.10.60.1"], mgmtAddresses: ["192.0.2.12"], platform: "N9K-C93180YC-EX" },
        { deviceId: "edge-rtr1", systemName: undefined, localInterface: "Ethernet1/51", remoteInterface: "GigabitEthernet2", addresses: ["10.10.61.1"], mgmtAddresses: ["192.0.2.21"], platform: "cisco C8000V" },
      ],
    });
  });
  it("no neighbors is an empty list; an error is a typed issue", () => {
    expect(parseCdpNeighborsDetail("")).toEqual({ ok: true, value: [] });
    expect(parseCdpNeighborsDetail("% CDP is not enabled\n")).toEqual({ ok: false, code: "no-cdp", message: "no CDP neighbor blocks: % CDP is not enabled" });
  });
});

describe("show ip arp / show mac address-table: golden samples", () => {
  it("ARP rows (INCOMPLETE skipped), MACs lower case", () => {
    expect(parseShowIpArp(fixture("show-ip-arp.txt"))).toEqual({
      ok: true,
      value: [
        { address: "10.10.60.1", age: "00:13:32", mac: "00c8.8b2b.1111", interface: "Ethernet1/52" },
        { address: "4.4.4.4", age: "00:05:10", mac: "0050.56aa.0404", interface: "Vlan10" },
      ],
    });
  });
  it("MAC rows with their markers, VLAN and port", () => {
    expect(parseShowMacAddressTable(fixture("show-mac-address-table.txt"))).toEqual({
      ok: true,
      value: [
        { vlan: "-", mac: "00c8.8b2b.4c8f", type: "static", port: "sup-eth1(R)" },
        { vlan: "10", mac: "0050.56aa.0404", type: "dynamic", port: "Eth1/5" },
        { vlan: "10", mac: "0050.56aa.0405", type: "dynamic", port: "Po11" },
      ],
    });
  });
  it("other text is a typed issue", () => {
    expect(parseShowIpArp("% Invalid command\n")).toMatchObject({ ok: false, code: "no-arp-table" });
    expect(parseShowMacAddressTable("% Invalid command\n")).toMatchObject({ ok: false, code: "no-mac-table" });
  });
});

describe("show version / show hostname: golden samples", () => {
  it("NX-OS 9.3(5) on a 93180YC-EX", () => {
    expect(parseShowVersion(fixture("show-version-9.3.txt"))).toEqual({ ok: true, value: { version: "9.3(5)", model: "Nexus9000 93180YC-EX", serial: "FDO21392QKM", hostname: "n9k-140" } });
  });
  it("host name alone, trailing blanks ignored; anything else is an issue", () => {
    expect(parseShowHostname("n9k-140.example.net \n")).toEqual({ ok: true, value: "n9k-140.example.net" });
    expect(parseShowHostname("% Invalid command\n")).toMatchObject({ ok: false, code: "no-hostname" });
  });
});

describe("odd text never throws", () => {
  it.each(ODD)("%j", (text) => {
    for (const parse of [parseRoutingHash, parseShowInterface, parseCdpNeighborsDetail, parseShowIpArp, parseShowMacAddressTable, parseShowVersion, parseShowHostname]) {
      const r = parse(text) as { ok: boolean; code?: string; message?: string };
      expect(typeof r.ok).toBe("boolean");
      if (!r.ok) expect(r.message).toEqual(expect.any(String));
    }
  });
});
