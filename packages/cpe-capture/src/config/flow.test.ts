// The `flow:` section: normalisation, what each hop captures, and every rejection with its place.
import { describe, expect, it } from "vitest";
import { ConfigFileError, parseConfigText } from "./loader.js";
import { checkConfig } from "./check.js";
import type { RunConfig } from "./run-config.js";
import { flowAgentHost, hopFileName, parseAgentHop } from "./flow.js";
import { compileFor, agentWireSpec, decodeSpecWire } from "../spec/index.js";

const KEY = { keyFile: "/etc/capsync/agent.key" };
const IOSXE = { name: "edge", address: "192.0.2.20", type: "iosxe", interfaces: ["GigabitEthernet2"], username: "admin", password: { env: "PW" }, agents: ["198.51.100.5:20001"] };
const IOSXE2 = { name: "core", address: "192.0.2.21", type: "iosxe", interfaces: ["GigabitEthernet1"], username: "admin", password: { env: "PW" } };
const MSBR = { name: "branch", address: "192.0.2.10", type: "msbr", interfaces: ["eth-wan"], username: "Admin", password: { env: "PW" } };
const FILTER = { src: "10.1.0.10", dst: "10.3.0.0/24", protocol: "udp", dport: 5000 };

function check(cfg: Record<string, unknown>) {
  return checkConfig(cfg, { baseDir: "/cfg" });
}
function ok(cfg: Record<string, unknown>): RunConfig {
  const r = check(cfg);
  expect(r.issues).toEqual([]);
  return r.config!;
}
function issues(cfg: Record<string, unknown>): string[] {
  const r = check(cfg);
  expect(r.config).toBeUndefined();
  return r.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("flow config", () => {
  it("resolves hops by name, address and agent:<ip>:<port>, in order, and compiles each hop's capture", () => {
    const c = ok({
      agents: KEY,
      capture: { snaplen: 256 },
      devices: [IOSXE, IOSXE2],
      flow: { filter: { ...FILTER, protocol: 17, src: "10.1.0.10/32" }, vrf: "CUST-A", path: ["edge", "agent:198.51.100.7", "192.0.2.21", "agent:[2001:DB8::9]:20002"] },
    });
    expect(c.flow).toEqual({
      filter: { src: "10.1.0.10", dst: "10.3.0.0/24", protocol: "udp", dport: 5000 },
      vrf: "CUST-A",
      agentHost: "10.1.0.10",
      agentSpec: { filter: { src: "10.1.0.10", dst: "10.3.0.0/24", protocol: "udp", dport: 5000 }, snaplen: 256 },
      path: [
        { hop: 1, kind: "device", name: "edge", address: "192.0.2.20" },
        { hop: 2, kind: "server", name: "198.51.100.7:20001", agent: { host: "198.51.100.7", port: 20001 } },
        { hop: 3, kind: "device", name: "core", address: "192.0.2.21" },
        { hop: 4, kind: "server", name: "[2001:db8::9]:20002", agent: { host: "2001:db8::9", port: 20002 } },
      ],
    });
    const edge = c.devices[0]!;
    // The device captures the flow (filter and VRF); its own agents keep the device's spec.
    expect(edge.flowHop).toEqual({ hop: 1, spec: { snaplen: 256, interfaces: ["GigabitEthernet2"], filter: c.flow!.filter, vrf: "CUST-A" } });
    expect(edge.spec).toEqual({ snaplen: 256, interfaces: ["GigabitEthernet2"] });
    expect(c.devices[1]!.flowHop?.hop).toBe(3);
    const epc = compileFor("iosxe", edge.flowHop!.spec, { device: edge.address, captureName: "CS1" });
    expect(epc.ok && epc.text).toContain("monitor capture CS1 match ipv4 protocol udp host 10.1.0.10 10.3.0.0/24 eq 5000");
    // Agent hops: CAPTURE <agentHost> spec=<the flow filter>, compiled to one BPF.
    const wire = agentWireSpec(c.flow!.agentSpec!)!;
    expect(decodeSpecWire(wire)).toEqual({ ok: true, spec: c.flow!.agentSpec });
    const bpf = compileFor("agent", c.flow!.agentSpec, { device: c.flow!.agentHost! });
    expect(bpf.ok && bpf.text).toBe("host 10.1.0.10 and udp and src host 10.1.0.10 and dst net 10.3.0.0/24 and dst port 5000");
  });

  it("a flow of agents needs no device; without a flow, devices stay required", () => {
    const c = ok({ agents: KEY, devices: [], flow: { filter: FILTER, path: ["agent:198.51.100.1:20001", "agent:198.51.100.2:20001", "agent:198.51.100.3:20001"] } });
    expect(c.devices).toEqual([]);
    expect(c.flow!.path.map((h) => h.kind)).toEqual(["server", "server", "server"]);
    expect(ok({ agents: KEY, flow: { filter: FILTER, path: ["agent:198.51.100.1", "agent:198.51.100.2"] } }).devices).toEqual([]);
    expect(issues({ devices: [] })).toEqual(["devices: at least one device is required"]);
    expect(issues({})).toEqual(["devices: required"]);
  });

  it("rejects a hop that cannot capture the flow, naming the hop and why", () => {
    expect(issues({ agents: KEY, devices: [MSBR, IOSXE2], flow: { filter: FILTER, path: ["branch", "core"] } })).toEqual([
      "flow.path.0: branch cannot capture the flow: msbr 192.0.2.10: filter.protocol: the AudioCodes debug capture has no filter; leave the filter out for this device (filter the file afterwards)",
    ]);
    // Agents scope by one host: a flow of prefixes has none.
    expect(issues({ agents: KEY, devices: [IOSXE2], flow: { filter: { src: "10.1.0.0/16", dst: "10.3.0.0/24", protocol: "udp" }, path: ["core", "agent:198.51.100.1"] } })).toEqual([
      "flow.path.1: an agent scopes its capture to one host: give flow.filter.src or flow.filter.dst as a host address (not a prefix or any)",
    ]);
    expect(issues({ agents: { legacy: true }, devices: [IOSXE2], flow: { filter: FILTER, path: ["core", "agent:198.51.100.1"] } })).toEqual([
      "flow.path.1: the legacy agent protocol cannot carry the flow filter; agent hops need CSYNC/1 agents (agents.keyFile)",
    ]);
    expect(issues({ devices: [IOSXE2], flow: { filter: FILTER, path: ["core", "agent:198.51.100.1"] } })).toEqual([
      "flow.path.1: an agent hop needs agents.keyFile (v1 signs every request with that pre-shared key)",
    ]);
    // The same agent capturing the same host for a device and for the flow: one session, two filters.
    const dev = { ...IOSXE2, address: "10.1.0.10", agents: ["198.51.100.1:20001"] };
    expect(issues({ agents: KEY, devices: [dev], flow: { filter: FILTER, path: ["core", "agent:198.51.100.1"] } })).toEqual([
      "flow.path.1: this agent also captures 10.1.0.10 for devices[0]; one agent cannot capture one host with two filters — use another agent for the hop",
    ]);
  });

  it("rejects bad 5-tuples, paths and keys, all at once", () => {
    expect(
      issues({
        agents: KEY,
        devices: [IOSXE, IOSXE2],
        flow: { filter: { src: "10.1.0.300", protocol: "icmp" }, vrf: "bad vrf", path: ["edge", "nowhere", "edge", "agent:10.0.0.1:99999", 7], extra: 1 },
      }),
    ).toEqual([
      "flow.extra: unknown key 'extra'; expected filter, vrf, path",
      'flow.filter.src: "10.1.0.300" is not "any", an IPv4/IPv6 address or a prefix like 192.0.2.0/24',
      'flow.vrf: "bad vrf" is not a VRF name (letters, digits, _ . : -; at most 32)',
      "flow.path.1: 'nowhere' is no configured device (devices: edge, core); an agent hop is written agent:<ip>:<port>",
      "flow.path.2: 'edge' is already hop 1; a hop appears once",
      "flow.path.3: agent hop: port must be 1..65535, got 99999",
      "flow.path.4: expected a device's name or address, or agent:<ip>:<port>, got 7",
    ]);
    expect(issues({ agents: KEY, devices: [IOSXE2], flow: { filter: { protocol: "icmp", dport: 1 }, path: ["core", "agent:198.51.100.1"] } })).toEqual([
      "flow.filter.dport: a port needs filter.protocol tcp or udp",
    ]);
    expect(issues({ agents: KEY, devices: [IOSXE2], flow: { filter: {}, path: ["core"] } })).toEqual([
      "flow.filter: an empty filter is every packet, not a flow; give its src, dst, protocol and ports",
      "flow.path: expected 2..16 hops, got 1",
    ]);
    expect(issues({ agents: KEY, devices: [IOSXE2], flow: { path: ["core", "agent:198.51.100.1"] } })).toEqual(["flow.filter: required: the flow's { src, dst, protocol, sport, dport }"]);
  });

  it("errors point at the file's lines", () => {
    const text = `agents: { keyFile: /k }
devices:
  - { name: branch, address: 192.0.2.10, type: msbr, interfaces: [eth-wan], username: a, password: { env: P } }
flow:
  filter: { src: 10.1.0.10, dst: 10.3.0.1, protocol: udp, dport: 5000 }
  path:
    - branch
    - agent:198.51.100.1:20001
`;
    let message = "";
    try {
      parseConfigText(text, { file: "run.yaml", baseDir: "/cfg" });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigFileError);
      message = (e as Error).message;
    }
    expect(message).toBe(
      "run.yaml:7 flow.path[0]: branch cannot capture the flow: msbr 192.0.2.10: filter.protocol: the AudioCodes debug capture has no filter; leave the filter out for this device (filter the file afterwards) (line 3)",
    );
  });

  it("hop file names sort by hop and share the stop's timestamp", () => {
    const stamp = "2026-11-23T10.15.00.123000";
    expect(hopFileName({ hop: 1, kind: "device", name: "edge", address: "192.0.2.20" }, "CPE_device_192.0.2.20_2026-11-23T10.15.00.123000.pcap", stamp)).toBe("hop1_CPE_device_192.0.2.20_2026-11-23T10.15.00.123000.pcap");
    expect(hopFileName({ hop: 2, kind: "server", name: "x", agent: { host: "198.51.100.7", port: 20001 } }, undefined, stamp)).toBe("hop2_server_198.51.100.7-20001_2026-11-23T10.15.00.123000.pcap");
    expect(hopFileName({ hop: 12, kind: "server", name: "x", agent: { host: "2001:db8::9", port: 20002 } }, undefined, stamp, 1)).toBe("hop12_server_2001-db8--9-20002_2026-11-23T10.15.00.123000-1.pcap");
    expect(flowAgentHost({ src: "10.0.0.0/8", dst: "10.3.0.1" })).toBe("10.3.0.1");
    expect(flowAgentHost({ protocol: "udp" })).toBeUndefined();
    expect(parseAgentHop("edge")).toBeUndefined();
    expect(parseAgentHop("agent:198.51.100.7")).toEqual({ ok: true, agent: { host: "198.51.100.7", port: 20001 } });
  });
});
