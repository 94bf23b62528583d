// Golden tables: one spec → the exact tcpdump words, EPC lines and RPC inputs, AudioCodes lines;
// what each target refuses, naming device and field; the xepacketcap mapping both ways.
import { describe, expect, it } from "vitest";
import { agentWireSpec, compileFor, decodeSpecWire, fromXePacketCap, toXePacketCap, xePacketCapAce, type CaptureSpec, type XePacketCapJob } from "./index.js";
import { epcCommands, epcDefineInputs, epcRpcInputs } from "../drivers/iosxe/epc.js";
import { canonicalIosXeInterface } from "../drivers/iosxe/interfaces.js";

const DEVICE = "192.0.2.10";

/** The spec every target sees in the first table. */
const SIP: CaptureSpec = { interfaces: ["GigabitEthernet1"], filter: { protocol: "udp", dport: 5060 } };

describe("golden: the same spec → exact BPF and EPC text", () => {
  const cases: Array<{ name: string; input: unknown; bpf: string | { field: string }; epc: string | { field: string } }> = [
    {
      name: "no filter: the original's host capture / match any",
      input: { interfaces: ["GigabitEthernet1"] },
      bpf: "host 192.0.2.10",
      epc: ["monitor capture CAPSYNC interface GigabitEthernet1 both", "monitor capture CAPSYNC match any", "monitor capture CAPSYNC start"].join("\n"),
    },
    {
      name: "SIP signalling to the device's port",
      input: SIP,
      bpf: "host 192.0.2.10 and udp and dst port 5060",
      epc: ["monitor capture CAPSYNC interface GigabitEthernet1 both", "monitor capture CAPSYNC match ipv4 protocol udp any any eq 5060", "monitor capture CAPSYNC start"].join("\n"),
    },
    {
      name: "full 5-tuple, direction, snaplen, limits, abbreviations",
      input: {
        interfaces: ["Gi0/0/1", "Te0/1/0"],
        direction: "in",
        filter: { src: "198.51.100.0/24", dst: "192.0.2.10", protocol: "tcp", sport: 1024, dport: 443 },
        snaplen: 128,
        limits: { durationSec: 600, packets: 5000, bufferMb: 20 },
      },
      bpf: "host 192.0.2.10 and tcp and src net 198.51.100.0/24 and dst host 192.0.2.10 and src port 1024 and dst port 443",
      epc: [
        "monitor capture CAPSYNC interface GigabitEthernet0/0/1 in",
        "monitor capture CAPSYNC interface TenGigabitEthernet0/1/0 in",
        "monitor capture CAPSYNC match ipv4 protocol tcp 198.51.100.0/24 eq 1024 host 192.0.2.10 eq 443",
        "monitor capture CAPSYNC buffer size 20",
        "monitor capture CAPSYNC limit duration 600 packets 5000 packet-len 128",
        "monitor capture CAPSYNC start",
      ].join("\n"),
    },
    {
      name: "protocol ip only (no ARP), outbound",
      input: { interfaces: ["Vlan10"], direction: "out", filter: { protocol: "ip" } },
      bpf: "host 192.0.2.10 and ip",
      epc: ["monitor capture CAPSYNC interface Vlan10 out", "monitor capture CAPSYNC match ipv4 any any", "monitor capture CAPSYNC start"].join("\n"),
    },
    {
      name: "ICMP and a protocol number",
      input: { interfaces: ["Gi1"], filter: { protocol: 47, dst: "203.0.113.0/24" } },
      bpf: "host 192.0.2.10 and ip proto 47 and dst net 203.0.113.0/24",
      epc: ["monitor capture CAPSYNC interface GigabitEthernet1 both", "monitor capture CAPSYNC match ipv4 protocol 47 any 203.0.113.0/24", "monitor capture CAPSYNC start"].join("\n"),
    },
    {
      name: "IPv6, icmp (normalised from protocol 1), canonical addresses",
      input: { interfaces: ["Gi1"], filter: { protocol: 1, src: "2001:DB8:0:0::1", dst: "2001:db8:1::/48" } },
      // The agent's scope is IPv4 host 192.0.2.10: an IPv6 filter there could never match.
      bpf: { field: "filter.src" },
      epc: ["monitor capture CAPSYNC interface GigabitEthernet1 both", "monitor capture CAPSYNC match ipv6 protocol icmp host 2001:db8::1 2001:db8:1::/48", "monitor capture CAPSYNC start"].join("\n"),
    },
    {
      name: "max size is the EPC buffer; a ring of files is tcpdump-only",
      input: { interfaces: ["Gi1"], limits: { maxSizeMb: 100, ringFiles: 4 } },
      bpf: "host 192.0.2.10",
      epc: { field: "limits.ringFiles" },
    },
    {
      name: "VRF: EPC checks the interfaces, tcpdump cannot say it",
      input: { interfaces: ["Gi4"], vrf: "MGMT" },
      bpf: "host 192.0.2.10", // agentSpec drops the device's VRF
      epc: ["monitor capture CAPSYNC interface GigabitEthernet4 both", "monitor capture CAPSYNC match any", "monitor capture CAPSYNC start"].join("\n"),
    },
    { name: "snaplen below EPC's 64", input: { interfaces: ["Gi1"], snaplen: 40 }, bpf: "host 192.0.2.10", epc: { field: "snaplen" } },
    { name: "EPC packet limit", input: { interfaces: ["Gi1"], limits: { packets: 200000 } }, bpf: "host 192.0.2.10", epc: { field: "limits.packets" } },
    { name: "not an IOS-XE interface", input: { interfaces: ["eth-wan"] }, bpf: "host 192.0.2.10", epc: { field: "interfaces" } },
    { name: "ports need tcp/udp (model)", input: { filter: { dport: 53 } }, bpf: { field: "filter.dport" }, epc: { field: "filter.dport" } },
    {
      name: "host bits cleared, polycube's direction word (model)",
      input: { interfaces: ["Gi1"], direction: "egress", filter: { src: "10.1.2.3/8" } },
      bpf: "host 192.0.2.10 and src net 10.0.0.0/8",
      epc: ["monitor capture CAPSYNC interface GigabitEthernet1 out", "monitor capture CAPSYNC match ipv4 10.0.0.0/8 any", "monitor capture CAPSYNC start"].join("\n"),
    },
    { name: "unknown field (model)", input: { interfaces: ["Gi1"], filters: {} }, bpf: { field: "filters" }, epc: { field: "filters" } },
  ];
  it.each(cases)("$name", ({ input, bpf, epc }) => {
    const a = compileFor("agent", input, { device: DEVICE });
    if (typeof bpf === "string") expect(a).toMatchObject({ ok: true, text: bpf });
    else expect(a).toMatchObject({ ok: false, field: bpf.field });
    const x = compileFor("iosxe", input, { device: "192.0.2.1" });
    if (typeof epc === "string") expect(x).toMatchObject({ ok: true, text: epc });
    else {
      expect(x).toMatchObject({ ok: false, field: epc.field });
      expect(x.ok || x.message.startsWith(`iosxe 192.0.2.1`)).toBe(true);
    }
  });
});

describe("tcpdump program", () => {
  it("words stay separate argv entries, limits become options", () => {
    const r = compileFor("agent", { direction: "out", filter: { protocol: "udp", src: "10.0.0.0/8", sport: 5060 }, snaplen: 256, limits: { durationSec: 60, packets: 1000, maxSizeMb: 100, ringFiles: 4, bufferMb: 8 } }, { device: DEVICE });
    expect(r).toEqual({
      ok: true,
      target: "agent",
      text: "host 192.0.2.10 and udp and src net 10.0.0.0/8 and src port 5060",
      bpf: {
        expression: ["host", "192.0.2.10", "and", "udp", "and", "src", "net", "10.0.0.0/8", "and", "src", "port", "5060"],
        direction: "out",
        text: "host 192.0.2.10 and udp and src net 10.0.0.0/8 and src port 5060",
        snaplen: 256,
        packets: 1000,
        bufferKiB: 8192,
        durationMs: 60_000,
        ring: { fileMb: 25, files: 4 },
      },
    });
  });
  it("agents get a spec= only when there is a server-side part", () => {
    expect(agentWireSpec({ interfaces: ["eth-wan"], vrf: "x" })).toBeUndefined();
    // "both" is what plain CAPTURE does: a legacy agent keeps working.
    expect(agentWireSpec({ interfaces: ["eth-wan"], direction: "both", vrf: "x" })).toBeUndefined();
    expect(agentWireSpec({ direction: "bidirectional" } as never)).toBeUndefined();
    // One direction is the agent's own -Q, sent as the canonical word.
    expect(Buffer.from(agentWireSpec({ interfaces: ["Gi1"], direction: "in", vrf: "x" })!, "base64url").toString()).toBe('{"direction":"in"}');
    expect(Buffer.from(agentWireSpec({ direction: "egress", filter: { src: "10.10.10.10/24" } } as never)!, "base64url").toString()).toBe('{"direction":"out","filter":{"src":"10.10.10.0/24"}}');
    const wire = agentWireSpec({ interfaces: ["Gi1"], filter: { protocol: "udp", dport: 5060 } })!;
    expect(wire).toBe("eyJmaWx0ZXIiOnsicHJvdG9jb2wiOiJ1ZHAiLCJkcG9ydCI6NTA2MH19");
    expect(decodeSpecWire(wire)).toEqual({ ok: true, spec: { filter: { protocol: "udp", dport: 5060 } } });
  });
  it("a size limit without a ring is enforced by the agent", () => {
    const r = compileFor("agent", { limits: { maxSizeMb: 5 } }, { device: DEVICE });
    expect(r.ok && r.target === "agent" && r.bpf.maxBytes).toBe(5_000_000);
  });
});

describe("EPC commands and RPC inputs", () => {
  const r = compileFor("iosxe", { interfaces: ["Gi1", "Gi2"], filter: { protocol: "udp", dport: 5060 }, snaplen: 200, limits: { durationSec: 60, bufferMb: 10 } });
  const plan = r.ok && r.target === "iosxe" ? r.epc : undefined;
  it("the whole life of a capture point, by CLI", () => {
    expect(epcCommands("CS1", plan!)).toEqual({
      define: [
        "monitor capture CS1 interface GigabitEthernet1 both",
        "monitor capture CS1 interface GigabitEthernet2 both",
        "monitor capture CS1 match ipv4 protocol udp any any eq 5060",
        "monitor capture CS1 buffer size 10",
        "monitor capture CS1 limit duration 60 packet-len 200",
      ],
      start: "monitor capture CS1 start",
      stop: "monitor capture CS1 stop",
      export: "monitor capture CS1 export bootflash:CS1.pcap",
      show: "show monitor capture CS1",
      remove: "no monitor capture CS1",
      delete: "delete /force bootflash:CS1.pcap",
    });
    expect(() => epcCommands("bad name", plan!)).toThrow(TypeError);
  });
  it("and by Cisco-IOS-XE-rpc (RFC 7951 empty leaves as [null])", () => {
    expect(epcDefineInputs("CS1", plan!)).toEqual([
      { capture: "CS1", interface: "GigabitEthernet1", both: [null], match: "ipv4 protocol udp any any eq 5060", buffer: { size: 10 }, limit: { duration: 60, "packet-len": 200 } },
      { capture: "CS1", interface: "GigabitEthernet2", both: [null] },
    ]);
    expect(epcRpcInputs.start("CS1")).toEqual({ rpc: "monitor", input: { capture: "CS1", start: [null] } });
    expect(epcRpcInputs.stop("CS1")).toEqual({ rpc: "monitor", input: { capture: "CS1", stop: [null] } });
    expect(epcRpcInputs.export("CS1")).toEqual({ rpc: "monitor", input: { capture: "CS1", export: "bootflash:CS1.pcap" } });
    expect(epcRpcInputs.remove("CS1")).toEqual({ rpc: "no", input: { monitor: { capture: "CS1" } } });
    expect(epcRpcInputs.delete("bootflash:CS1.pcap")).toEqual({ rpc: "delete", input: { "filename-drop-node-name": "bootflash:CS1.pcap" } });
  });
  it("knows IOS-XE interface names and their abbreviations", () => {
    expect(["Gi1", "gi0/0/1", "Te1/0/1", "Po10", "Vlan100", "Lo0", "Tu1", "GigabitEthernet0/0/0.100", "BDI5"].map(canonicalIosXeInterface)).toEqual([
      "GigabitEthernet1",
      "GigabitEthernet0/0/1",
      "TenGigabitEthernet1/0/1",
      "Port-channel10",
      "Vlan100",
      "Loopback0",
      "Tunnel1",
      "GigabitEthernet0/0/0.100",
      "BDI5",
    ]);
    for (const bad of ["wifi0", "eth-wan", "Gi", "GigabitEthernet", "Gi1/x"]) expect(canonicalIosXeInterface(bad)).toBeUndefined();
  });
});

describe("AudioCodes: interfaces, nothing else", () => {
  it("compiles interfaces to the debug-capture script", () => {
    expect(compileFor("msbr", { interfaces: ["eth-wan", "cellular-wan"], direction: "both" }, { device: DEVICE })).toEqual({
      ok: true,
      target: "msbr",
      text: ["debug capture data physical stop", "debug capture data physical eth-wan", "debug capture data physical cellular-wan", "debug capture data physical start", "debug capture data physical show"].join("\n"),
      audiocodes: {
        interfaces: ["eth-wan", "cellular-wan"],
        start: ["debug capture data physical stop", "debug capture data physical eth-wan", "debug capture data physical cellular-wan", "debug capture data physical start", "debug capture data physical show"],
        stop: ["debug capture data physical stop", "debug capture data physical show"],
      },
    });
    expect(compileFor("gwsbc", {})).toMatchObject({ ok: true, text: "debug capture voip physical eth-lan\ndebug capture voip physical start\ndebug capture voip physical show" });
  });
  const refused: Array<{ name: string; input: CaptureSpec; message: string }> = [
    { name: "direction", input: { interfaces: ["eth-wan"], direction: "in" }, message: "msbr 192.0.2.10: direction: the AudioCodes debug capture records both directions; it cannot keep only one" },
    { name: "filter", input: { interfaces: ["eth-wan"], filter: { protocol: "udp", dport: 5060 } }, message: "msbr 192.0.2.10: filter.protocol: the AudioCodes debug capture has no filter; leave the filter out for this device (filter the file afterwards)" },
    { name: "snaplen", input: { interfaces: ["eth-wan"], snaplen: 128 }, message: "msbr 192.0.2.10: snaplen: the AudioCodes debug capture always keeps whole packets" },
    { name: "vrf", input: { interfaces: ["eth-wan"], vrf: "x" }, message: "msbr 192.0.2.10: vrf: the AudioCodes debug capture cannot select a VRF" },
    {
      name: "duration",
      input: { interfaces: ["eth-wan"], limits: { durationSec: 60 } },
      message: "msbr 192.0.2.10: limits.durationSec: the AudioCodes debug capture has no durationSec limit; use the run's duration trigger (stop.duration) instead",
    },
    { name: "interfaces", input: { interfaces: ["GigabitEthernet1"] }, message: 'msbr 192.0.2.10 cannot capture on "GigabitEthernet1"; expected one or more of: cellular-wan, fiber-wan, xdsl-wan, shdsl-wan, t1-e1-wan, eth-wan, eth-lan' },
  ];
  it.each(refused)("refuses $name, naming device and field", ({ input, message }) => {
    expect(compileFor("msbr", input, { device: DEVICE })).toMatchObject({ ok: false, target: "msbr", message });
  });
});

describe("xepacketcap parameters ↔ spec, one to one", () => {
  const jobs: Array<{ job: XePacketCapJob; ace: string; match: string }> = [
    { job: { iface: "GigabitEthernet1", proto: "ip", src: "any", dst: "any", duration: 60 }, ace: "permit ip any any", match: "ipv4 any any" },
    { job: { iface: "GigabitEthernet2", proto: "udp", src: "any", dst: "192.0.2.10", duration: 30 }, ace: "permit udp any host 192.0.2.10", match: "ipv4 protocol udp any host 192.0.2.10" },
    { job: { iface: "GigabitEthernet1", proto: "tcp", src: "198.51.100.7", dst: "192.0.2.10", duration: 5 }, ace: "permit tcp host 198.51.100.7 host 192.0.2.10", match: "ipv4 protocol tcp host 198.51.100.7 host 192.0.2.10" },
  ];
  it.each(jobs)("$ace", ({ job, ace, match }) => {
    const r = fromXePacketCap(job);
    expect(r.ok).toBe(true);
    const spec = r.ok ? r.spec : {};
    expect(toXePacketCap(spec)).toEqual({ ok: true, job });
    expect(xePacketCapAce(job)).toBe(ace);
    const epc = compileFor("iosxe", spec);
    expect(epc.ok && epc.target === "iosxe" && [epc.epc.match, epc.epc.direction, epc.epc.limit.duration]).toEqual([match, "both", job.duration]);
  });
  it("a spec that says more than a job can is refused, naming the field", () => {
    expect(toXePacketCap({ interfaces: ["Gi1"], filter: { protocol: "udp", dport: 5060 }, limits: { durationSec: 5 } })).toMatchObject({ ok: false, field: "filter.dport" });
    expect(toXePacketCap({ interfaces: ["Gi1", "Gi2"], limits: { durationSec: 5 } })).toMatchObject({ ok: false, field: "interfaces" });
    expect(toXePacketCap({ interfaces: ["Gi1"] })).toMatchObject({ ok: false, field: "limits.durationSec" });
    expect(fromXePacketCap({ iface: "Gi1", proto: "icmp" as never, src: "any", dst: "any", duration: 5 })).toMatchObject({ ok: false, field: "proto" });
    expect(fromXePacketCap({ iface: "Gi1", proto: "ip", src: "10.0.0.0/8", dst: "any", duration: 5 })).toMatchObject({ ok: false, field: "src" });
    expect(fromXePacketCap({ iface: "Gi1", proto: "ip", src: "any", dst: "any", duration: 0 })).toMatchObject({ ok: false, field: "duration" });
  });
});
