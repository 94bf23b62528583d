// Every field a target cannot honour is refused at validation, naming the target (type and
// address) and the field: one row per refusal of each compiler — tcpdump on agents, AudioCodes
// debug capture, IOS-XE EPC. And what a target does honour is not refused (direction on agents).
import { describe, expect, it } from "vitest";
import { compileFor, type CaptureTarget } from "./index.js";

const DEVICE = "192.0.2.10";

const rows: Array<{ target: CaptureTarget; input: unknown; field: string; message: string }> = [
  // --- agents (tcpdump) ------------------------------------------------------------------------
  {
    target: "agent",
    input: { filter: { src: "2001:db8::/32" } },
    field: "filter.src",
    message: "agent 192.0.2.10: filter.src: 2001:db8::/32 is IPv6 but the capture is scoped to IPv4 host 192.0.2.10: no packet could match",
  },
  {
    target: "agent",
    input: { filter: { protocol: "udp", dst: "2001:db8::5" } },
    field: "filter.dst",
    message: "agent 192.0.2.10: filter.dst: 2001:db8::5 is IPv6 but the capture is scoped to IPv4 host 192.0.2.10: no packet could match",
  },
  // --- AudioCodes debug capture: interfaces and nothing else ------------------------------------
  { target: "msbr", input: { interfaces: ["eth-wan"], direction: "out" }, field: "direction", message: "msbr 192.0.2.10: direction: the AudioCodes debug capture records both directions; it cannot keep only one" },
  { target: "msbr", input: { interfaces: ["eth-wan"], direction: "ingress" }, field: "direction", message: "msbr 192.0.2.10: direction: the AudioCodes debug capture records both directions; it cannot keep only one" },
  { target: "gwsbc", input: { direction: "egress" }, field: "direction", message: "gwsbc 192.0.2.10: direction: the AudioCodes debug capture records both directions; it cannot keep only one" },
  ...(["src", "dst"] as const).map((k) => ({
    target: "msbr" as const,
    input: { interfaces: ["eth-wan"], filter: { [k]: "10.10.10.10/24" } },
    field: `filter.${k}`,
    message: `msbr 192.0.2.10: filter.${k}: the AudioCodes debug capture has no filter; leave the filter out for this device (filter the file afterwards)`,
  })),
  { target: "gwsbc", input: { filter: { protocol: "ip" } }, field: "filter.protocol", message: "gwsbc 192.0.2.10: filter.protocol: the AudioCodes debug capture has no filter; leave the filter out for this device (filter the file afterwards)" },
  { target: "gwsbc", input: { snaplen: 96 }, field: "snaplen", message: "gwsbc 192.0.2.10: snaplen: the AudioCodes debug capture always keeps whole packets" },
  { target: "gwsbc", input: { vrf: "MGMT" }, field: "vrf", message: "gwsbc 192.0.2.10: vrf: the AudioCodes debug capture cannot select a VRF" },
  ...(["packets", "maxSizeMb", "bufferMb"] as const).map((k) => ({
    target: "msbr" as const,
    input: { interfaces: ["eth-wan"], limits: { [k]: 10 } },
    field: `limits.${k}`,
    message: `msbr 192.0.2.10: limits.${k}: the AudioCodes debug capture has no ${k} limit`,
  })),
  { target: "gwsbc", input: { interfaces: ["eth-lan", "eth-wan"] }, field: "interfaces", message: 'gwsbc 192.0.2.10 cannot capture on "eth-wan"; expected one of: eth-lan' },
  { target: "msbr", input: {}, field: "interfaces", message: "msbr 192.0.2.10 needs at least one capture interface (one or more of: cellular-wan, fiber-wan, xdsl-wan, shdsl-wan, t1-e1-wan, eth-wan, eth-lan)" },
  // --- IOS-XE EPC: the Cisco-IOS-XE-rpc ranges ----------------------------------------------------
  { target: "iosxe", input: {}, field: "interfaces", message: "iosxe 192.0.2.10: interfaces: IOS-XE needs at least one capture interface, e.g. GigabitEthernet1" },
  { target: "iosxe", input: { interfaces: ["Gi1"], snaplen: 9501 }, field: "snaplen", message: "iosxe 192.0.2.10: snaplen: EPC keeps 64..9500 bytes per packet (limit packet-len), got 9501" },
  { target: "iosxe", input: { interfaces: ["Gi1"], limits: { durationSec: 1_000_001 } }, field: "limits.durationSec", message: "iosxe 192.0.2.10: limits.durationSec: EPC limit duration is 1..1000000 s, got 1000001" },
  { target: "iosxe", input: { interfaces: ["Gi1"], limits: { packets: 100_001 } }, field: "limits.packets", message: "iosxe 192.0.2.10: limits.packets: EPC limit packets is 1..100000, got 100001" },
  { target: "iosxe", input: { interfaces: ["Gi1"], limits: { maxSizeMb: 8, ringFiles: 2 } }, field: "limits.ringFiles", message: "iosxe 192.0.2.10: limits.ringFiles: EPC keeps one buffer exported as one file; it has no ring of files" },
  { target: "iosxe", input: { interfaces: ["Gi1"], limits: { bufferMb: 101 } }, field: "limits.bufferMb", message: "iosxe 192.0.2.10: limits.bufferMb: EPC buffer size is 1..100 MB, got 101" },
  { target: "iosxe", input: { interfaces: ["Gi1"], limits: { maxSizeMb: 200 } }, field: "limits.maxSizeMb", message: "iosxe 192.0.2.10: limits.maxSizeMb: EPC keeps at most its buffer, 1..100 MB, got 200" },
  {
    target: "iosxe",
    input: { interfaces: ["Gi1"], limits: { maxSizeMb: 20, bufferMb: 10 } },
    field: "limits.maxSizeMb",
    message: "iosxe 192.0.2.10: limits.maxSizeMb: on EPC the buffer is the maximum size: give maxSizeMb or bufferMb, or equal values (got 20 and 10)",
  },
];

describe("refused at validation, naming target and field", () => {
  it.each(rows)("$target refuses $field ($input)", ({ target, input, field, message }) => {
    expect(compileFor(target, input, { device: DEVICE })).toEqual({ ok: false, target, field, message });
  });
});

describe("honoured, not refused", () => {
  it("agents honour direction (their own interface's in/out), aliases included", () => {
    for (const [word, q] of [["in", "in"], ["ingress", "in"], ["out", "out"], ["egress", "out"]] as const) {
      const r = compileFor("agent", { interfaces: ["GigabitEthernet1"], vrf: "MGMT", direction: word }, { device: DEVICE });
      expect(r.ok && r.target === "agent" && r.bpf).toEqual({ expression: ["host", DEVICE], text: `host ${DEVICE}`, direction: q });
    }
    for (const word of ["both", "bidirectional"]) {
      const r = compileFor("agent", { direction: word }, { device: DEVICE });
      expect(r.ok && r.target === "agent" && r.bpf).toEqual({ expression: ["host", DEVICE], text: `host ${DEVICE}` });
    }
  });
  it("EPC and AudioCodes take the aliases as their own words", () => {
    expect(compileFor("iosxe", { interfaces: ["Gi1"], direction: "ingress" })).toMatchObject({ ok: true, text: expect.stringContaining("monitor capture CAPSYNC interface GigabitEthernet1 in\n") });
    expect(compileFor("iosxe", { interfaces: ["Gi1"], direction: "bidirectional" })).toMatchObject({ ok: true, text: expect.stringContaining("interface GigabitEthernet1 both\n") });
    expect(compileFor("msbr", { interfaces: ["eth-wan"], direction: "bidirectional" })).toMatchObject({ ok: true, target: "msbr" });
  });
  it("an IPv6 device's agents: protocol words in IPv6", () => {
    const r = compileFor("agent", { filter: { protocol: "icmp" } }, { device: "2001:db8::10" });
    expect(r.ok && r.text).toBe("host 2001:db8::10 and icmp6");
  });
});
