// Golden samples of IOS-XE's trace answers through the parsers. The samples follow the text IOS-XE
// 17.x prints (C8000V / Catalyst 9300, 17.9–17.12): the exact-route line as in Cisco's CEF
// troubleshooting documents ("=>IP adj out of <if>, addr <nh>"), the port syntax and the older
// "(next hop …)" form from ipSpace's per-port load-sharing article (show ip cef exact-route
// 10.0.0.10 src-port 35 192.168.0.2 dest-port 80), `show interfaces`, CDP, ARP and the Catalyst
// MAC table as the 17.x command references show them. Addresses are documentation ones.
import { describe, expect, it } from "vitest";
import { exactRouteCommand, parseArp, parseCdpDetail, parseExactRoute, parseMacTable, parseRunningFacts, parseShowInterfaces } from "./hop-parsers.js";

describe("exactRouteCommand", () => {
  it.each([
    [{ src: "10.1.1.10", dst: "10.9.9.9" }, "show ip cef exact-route 10.1.1.10 10.9.9.9"],
    [{ src: "10.1.1.10", dst: "10.9.9.9", proto: 6, sport: 1234, dport: 80 }, "show ip cef exact-route 10.1.1.10 src-port 1234 10.9.9.9 dest-port 80"],
    [{ src: "10.1.1.10", dst: "10.9.9.9", vrf: "RED" }, "show ip cef vrf RED exact-route 10.1.1.10 10.9.9.9"],
    [{ src: "10.1.1.10", dst: "10.9.9.9", vrf: "default", proto: 17 }, "show ip cef exact-route 10.1.1.10 10.9.9.9"],
  ])("%j → %s", (flow, command) => {
    expect(exactRouteCommand(flow)).toBe(command);
  });

  it.each([
    [{ src: "10.1.1.10; reload", dst: "10.9.9.9" }, 'source "10.1.1.10; reload" is not an IPv4 address'],
    [{ src: "10.1.1.10", dst: "2001:db8::1" }, 'destination "2001:db8::1" is not an IPv4 address'],
    [{ src: "10.1.1.10", dst: "10.9.9.9", vrf: "A B" }, 'VRF "A B" is not a VRF name'],
    [{ src: "10.1.1.10", dst: "10.9.9.9", sport: 70000, dport: 1 }, "ports must be 0..65535"],
  ])("refuses %j", (flow, error) => {
    expect(exactRouteCommand(flow)).toEqual({ error });
  });
});

describe("parseExactRoute", () => {
  it.each([
    ["10.1.1.10 -> 10.9.9.9 =>IP adj out of GigabitEthernet2, addr 10.0.12.2\n", { ok: true, outInterface: "GigabitEthernet2", nextHop: "10.0.12.2", local: false }],
    ["10.1.1.10 -> 10.9.9.9 =>IP adj out of TenGigabitEthernet1/0/1.100, addr 192.0.2.6\n", { ok: true, outInterface: "TenGigabitEthernet1/0/1.100", nextHop: "192.0.2.6", local: false }],
    // The destination's own adjacency: attached, so ARP + MAC table decide the port.
    ["10.1.1.10 -> 10.9.9.9 =>IP adj out of Vlan99, addr 10.9.9.9\n", { ok: true, outInterface: "Vlan99", nextHop: undefined, local: false }],
    ["10.0.0.10       -> 10.9.9.9       : Serial0/0/0.100 (next hop 172.16.1.2)\n", { ok: true, outInterface: "Serial0/0/0.100", nextHop: "172.16.1.2", local: false }],
    ["10.1.1.10 -> 10.9.9.9 =>receive\n", { ok: true, outInterface: "receive", nextHop: undefined, local: true }],
    ["10.1.1.10 -> 10.9.9.9 =>glean for GigabitEthernet3\n", { ok: true, outInterface: "GigabitEthernet3", nextHop: undefined, local: false }],
    ["10.1.1.10 -> 10.9.9.9 =>no route\n", { ok: false, reason: "the router has no route for 10.9.9.9 (CEF: no route)" }],
    ["10.1.1.10 -> 10.9.9.9 =>Null0\n", { ok: false, reason: "the router has no route for 10.9.9.9 (CEF: Null0)" }],
    ["% IP routing table BLUE does not exist\n", { ok: false, reason: "% IP routing table BLUE does not exist" }],
    ["                        ^\n% Invalid input detected at '^' marker.\n\n", { ok: false, reason: "% Invalid input detected at '^' marker." }],
    ["", { ok: false, reason: "empty answer to exact-route" }],
  ])("%j", (text, want) => {
    expect(parseExactRoute(text, "10.9.9.9")).toEqual(want);
  });
});

describe("parseRunningFacts", () => {
  it("reads IOS XE, the hostname and a configured algorithm", () => {
    const version = "Cisco IOS XE Software, Version 17.09.04a\nedge-rtr1 uptime is 3 weeks, 2 days, 4 hours, 11 minutes\n";
    expect(parseRunningFacts(version, "ip cef load-sharing algorithm include-ports source destination\n")).toEqual({
      iosXe: true,
      hostname: "edge-rtr1",
      loadShareMode: "include-ports source destination",
    });
    expect(parseRunningFacts(version, "")).toEqual({ iosXe: true, hostname: "edge-rtr1", loadShareMode: "universal" });
  });

  it("tells a box that is not IOS XE (an NX-OS switch answers the same pipe with its kernel uptime)", () => {
    expect(parseRunningFacts("Kernel uptime is 12 day(s), 3 hour(s), 7 minute(s), 1 second(s)\n", "")).toEqual({ iosXe: false, hostname: "Kernel", loadShareMode: "universal" });
  });
});

const SHOW_INTERFACES = `GigabitEthernet2 is up, line protocol is up 
  Hardware is vNIC, address is 5254.0012.0001 (bia 5254.0012.0001)
  Internet address is 10.0.12.1/24
  MTU 1500 bytes, BW 1000000 Kbit/sec, DLY 10 usec, 
     reliability 255/255, txload 1/255, rxload 1/255
  Encapsulation ARPA, loopback not set
  Keepalive set (10 sec)
  Full Duplex, 1000Mbps, link type is auto, media type is Virtual
  output flow-control is unsupported, input flow-control is unsupported
  ARP type: ARPA, ARP Timeout 04:00:00
  Last input 00:00:00, output 00:00:00, output hang never
  Last clearing of "show interface" counters never
  Input queue: 0/375/0/0 (size/max/drops/flushes); Total output drops: 0
  Queueing strategy: fifo
  Output queue: 0/40 (size/max)
  5 minute input rate 2000 bits/sec, 3 packets/sec
  5 minute output rate 1000 bits/sec, 1 packets/sec
     48213 packets input, 4561234 bytes, 0 no buffer
     Received 12 broadcasts (0 IP multicasts)
     0 runts, 0 giants, 0 throttles 
     0 input errors, 0 CRC, 0 frame, 0 overrun, 0 ignored
     0 watchdog, 0 multicast, 0 pause input
     40170 packets output, 3982345 bytes, 0 underruns
     Output 3 broadcasts (0 IP multicasts)
     0 output errors, 0 collisions, 2 interface resets
     0 unknown protocol drops
     0 babbles, 0 late collision, 0 deferred
     0 lost carrier, 0 no carrier, 0 pause output
     0 output buffer failures, 0 output buffers swapped out
`;

describe("parseShowInterfaces", () => {
  it("takes the resets line and the output counter block", () => {
    const s = parseShowInterfaces(SHOW_INTERFACES);
    expect("error" in s).toBe(false);
    if ("error" in s) return;
    expect(s.resets).toBe("2 interface resets");
    expect(s.txLines).toEqual([
      "40170 packets output, 3982345 bytes, 0 underruns",
      "Output 3 broadcasts (0 IP multicasts)",
      "0 output errors, 0 collisions, 2 interface resets",
      "0 unknown protocol drops",
      "0 babbles, 0 late collision, 0 deferred",
      "0 lost carrier, 0 no carrier, 0 pause output",
      "0 output buffer failures, 0 output buffers swapped out",
    ]);
    expect(s.txStats["packets output"]).toBe("40170");
    expect(s.txStats["bytes"]).toBe("3982345");
    expect(s.txStats["output errors"]).toBe("0");
    expect(s.txStats["interface resets"]).toBe("2");
    expect(s.txStats["output buffers swapped out"]).toBe("0");
  });

  it("refuses an error answer or text without counters", () => {
    expect(parseShowInterfaces("                 ^\n% Invalid input detected at '^' marker.\n")).toEqual({ error: "% Invalid input detected at '^' marker." });
    expect(parseShowInterfaces("GigabitEthernet9 is administratively down\n")).toEqual({ error: "no output counters in show interfaces" });
  });
});

const CDP = `-------------------------
Device ID: core-sw1.example.net
Entry address(es): 
  IP address: 10.0.12.2
Platform: cisco C9300-48P,  Capabilities: Router Switch IGMP 
Interface: GigabitEthernet2,  Port ID (outgoing port): GigabitEthernet1/0/48
Holdtime : 151 sec

Version :
Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.9.4a, RELEASE SOFTWARE (fc3)
Technical Support: http://www.cisco.com/techsupport
Copyright (c) 1986-2023 by Cisco Systems, Inc.
Compiled Fri 20-Oct-23 10:44 by mcpre

advertisement version: 2
VTP Management Domain: ''
Native VLAN: 1
Duplex: full
Management address(es): 
  IP address: 192.0.2.12

-------------------------
Device ID: n9k-leaf3(FDO21120U8A)
Entry address(es): 
  IPv4 address: 10.0.13.3
Platform: N9K-C93180YC-EX,  Capabilities: Router Switch IGMP Filtering Supports-STP-Dispute 
Interface: GigabitEthernet3,  Port ID (outgoing port): Ethernet1/49
Holdtime : 170 sec

Version :
Cisco Nexus Operating System (NX-OS) Software, Version 9.3(5)

advertisement version: 2
Duplex: full
Management address(es): 


Total cdp entries displayed : 2
`;

describe("parseCdpDetail", () => {
  it("reads each neighbor's addresses apart from its management addresses", () => {
    expect(parseCdpDetail(CDP)).toEqual([
      { deviceId: "core-sw1.example.net", localInterface: "GigabitEthernet2", remoteInterface: "GigabitEthernet1/0/48", addresses: ["10.0.12.2"], mgmtAddresses: ["192.0.2.12"], platform: "cisco C9300-48P" },
      { deviceId: "n9k-leaf3(FDO21120U8A)", localInterface: "GigabitEthernet3", remoteInterface: "Ethernet1/49", addresses: ["10.0.13.3"], mgmtAddresses: [], platform: "N9K-C93180YC-EX" },
    ]);
    expect(parseCdpDetail("\n\nTotal cdp entries displayed : 0\n")).toEqual([]);
  });
});

describe("parseArp and parseMacTable", () => {
  it("reads ARP rows, skipping incomplete ones", () => {
    const text = `Protocol  Address          Age (min)  Hardware Addr   Type   Interface
Internet  10.0.12.1               -   5254.0012.0001  ARPA   GigabitEthernet2
Internet  10.9.9.20              12   0050.56AA.0920  ARPA   Vlan99
Internet  10.9.9.21               0   Incomplete      ARPA   
`;
    expect(parseArp(text)).toEqual([
      { address: "10.0.12.1", mac: "5254.0012.0001", interface: "GigabitEthernet2" },
      { address: "10.9.9.20", mac: "0050.56aa.0920", interface: "Vlan99" },
    ]);
  });

  it("reads a Catalyst MAC table", () => {
    const text = `          Mac Address Table
-------------------------------------------

Vlan    Mac Address       Type        Ports
----    -----------       --------    -----
 All    0100.0ccc.cccc    STATIC      CPU
  99    0050.56aa.0920    DYNAMIC     Gi1/0/5
 100    0050.56aa.1001    DYNAMIC     Po1
Total Mac Addresses for this criterion: 3
`;
    expect(parseMacTable(text)).toEqual([
      { vlan: "All", mac: "0100.0ccc.cccc", port: "CPU" },
      { vlan: "99", mac: "0050.56aa.0920", port: "Gi1/0/5" },
      { vlan: "100", mac: "0050.56aa.1001", port: "Po1" },
    ]);
  });
});
