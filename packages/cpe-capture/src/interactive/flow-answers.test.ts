// The interactive mode's flow: field checks, the config it writes, its check against the devices,
// and remembering it between sessions.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { parseConfigText } from "../config/loader.js";
import {
  checkFlowAnswers,
  checkFlowHost,
  flowHost,
  checkFlowPort,
  checkVrf,
  defaultAnswers,
  describeFlow,
  loadAnswers,
  parseAgentHopAnswer,
  reconcileFlow,
  renderConfigFile,
  saveAnswers,
  toRawConfig,
  type Answers,
  type DeviceAnswer,
  type FlowAnswer,
} from "./answers.js";

const dir = mkdtempSync(join(tmpdir(), "capsync-flow-answers-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RTR: DeviceAnswer = { address: "192.0.2.20", type: "iosxe", interfaces: ["GigabitEthernet2"], username: "admin", tls: "insecure", restPort: 443, sshPort: 22, agents: ["198.51.100.5:20001"] };
const MSBR: DeviceAnswer = { ...RTR, address: "192.0.2.10", type: "msbr", interfaces: ["eth-wan"], agents: [] };
const FLOW: FlowAnswer = { filter: { src: "10.1.0.10", dst: "10.3.0.0/24", protocol: "udp", dport: 5000 }, vrf: "CUST-A", path: ["192.0.2.20", "agent:198.51.100.7:20001"] };

function answers(over: Partial<Answers> = {}): Answers {
  return { ...defaultAnswers("/srv/capsync"), devices: [RTR, MSBR], flow: FLOW, ...over };
}

describe("flow fields", () => {
  test.each([
    ["", undefined, true],
    ["any", undefined, true],
    ["10.1.0.10", undefined, true],
    ["2001:db8::/32", undefined, true],
    ["10.1.0.300", undefined, "Enter an IPv4/IPv6 address, a prefix like 10.1.0.0/16, or leave it empty for any"],
    // polycube's own example: host bits are cleared (flowHost), not refused.
    ["10.1.0.1/16", undefined, true],
    ["10.1.0.1/33", undefined, "prefix length 33 is longer than 32"],
    ["2001:db8::1", "10.1.0.10", "The source is IPv4: both ends must be IPv4 or both IPv6"],
    ["10.3.0.1", "any", true],
  ])("host %j (other side %j)", (text, other, want) => expect(checkFlowHost(text, other)).toBe(want));
  test("flow hosts are kept as the config keeps them", () => {
    expect(["", " any ", "10.10.10.10/24", "10.1.0.10", "2001:DB8::5/64", "2001:db8::/32"].map(flowHost)).toEqual([undefined, undefined, "10.10.10.0/24", "10.1.0.10", "2001:db8::/64", "2001:db8::/32"]);
  });

  test("ports, VRF names and agent hops", () => {
    expect(["", "1", "5000", "65535"].map(checkFlowPort)).toEqual([true, true, true, true]);
    for (const bad of ["0", "65536", "50a", "-1"]) expect(checkFlowPort(bad)).toBe("Enter a port 1..65535, or leave it empty for any");
    expect(checkVrf("")).toBe(true);
    expect(checkVrf("CUST-A")).toBe(true);
    expect(checkVrf("no spaces")).toMatch(/^Enter a VRF name/);
    expect(parseAgentHopAnswer("198.51.100.7")).toEqual({ ok: true, hop: "agent:198.51.100.7:20001" });
    expect(parseAgentHopAnswer("[2001:DB8::7]:20002")).toEqual({ ok: true, hop: "agent:[2001:db8::7]:20002" });
    expect(parseAgentHopAnswer("198.51.100.7, 198.51.100.8")).toEqual({ ok: false, message: "Enter one agent as IP[:port]" });
    expect(parseAgentHopAnswer("")).toEqual({ ok: false, message: "Enter one agent as IP[:port]" });
  });
});

describe("flow answers → config", () => {
  test("the saved config carries the flow, needs the agents' key, and loads as `run --config` does", () => {
    const a = answers({ keyFile: "/etc/capsync/agent.key" });
    const raw = toRawConfig(a, (i) => ({ env: `PW_${i}` }));
    expect(raw.flow).toEqual({ filter: { src: "10.1.0.10", dst: "10.3.0.0/24", protocol: "udp", dport: 5000 }, vrf: "CUST-A", path: ["192.0.2.20", "agent:198.51.100.7:20001"] });
    // Agents only on the flow's path still need the key.
    expect(toRawConfig(answers({ keyFile: "/k", devices: [{ ...RTR, agents: [] }] }), () => ({ env: "P" })).agents).toEqual({ keyFile: "/k" });
    const text = renderConfigFile(raw, "/srv/capsync/run.yaml", ["test"]);
    expect(text).toContain("flow:\n  filter: {src: 10.1.0.10, dst: 10.3.0.0/24, protocol: udp, dport: 5000}\n  vrf: CUST-A\n  path: [192.0.2.20, agent:198.51.100.7:20001]\n");
    const { config } = parseConfigText(text, { file: "/srv/capsync/run.yaml", baseDir: "/srv/capsync" });
    expect(config.flow?.path.map((h) => h.hop + h.kind)).toEqual(["1device", "2server"]);
    expect(config.devices[0]!.flowHop?.spec.filter).toEqual(FLOW.filter);
    expect(describeFlow(FLOW, [RTR, MSBR])).toBe("udp 10.1.0.10 → 10.3.0.0/24:5000 vrf CUST-A; path: 192.0.2.20 (iosxe) → agent 198.51.100.7:20001");
  });

  test("the schema's verdict per hop; deleted devices leave the path", () => {
    expect(checkFlowAnswers(answers())).toEqual([]);
    expect(checkFlowAnswers(answers({ flow: { ...FLOW, path: ["192.0.2.10", "192.0.2.20"] } }))).toEqual([
      "hop 1: 192.0.2.10 cannot capture the flow: msbr 192.0.2.10: filter.protocol: the AudioCodes debug capture has no filter; leave the filter out for this device (filter the file afterwards)",
    ]);
    expect(checkFlowAnswers(answers({ flow: { ...FLOW, filter: { src: "10.1.0.0/16", protocol: "udp" } } }))).toEqual([
      "hop 2: an agent scopes its capture to one host: give flow.filter.src or flow.filter.dst as a host address (not a prefix or any)",
    ]);
    expect(reconcileFlow(FLOW, [MSBR])).toBeUndefined();
    const three = { ...FLOW, path: ["192.0.2.20", "agent:198.51.100.7:20001", "agent:198.51.100.8:20001"] };
    expect(reconcileFlow(three, [MSBR])?.path).toEqual(["agent:198.51.100.7:20001", "agent:198.51.100.8:20001"]);
  });

  test("remembered between sessions; a saved flow that no longer fits is dropped with a note", () => {
    const file = join(dir, "a.json");
    saveAnswers(file, answers());
    expect(loadAnswers(file, "/srv").answers.flow).toEqual(FLOW);
    saveAnswers(file, answers({ flow: { ...FLOW, path: ["192.0.2.10", "agent:198.51.100.7:20001"] } }));
    const r = loadAnswers(file, "/srv");
    expect(r.answers.flow).toBeUndefined();
    expect(r.notes).toEqual([`ignored the saved flow in ${file}: it is no longer valid for the saved devices`]);
  });
});
