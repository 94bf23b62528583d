// Agent captures honour `direction` (tcpdump -Q): a real agent on the root side of a veth link to a
// namespaced device, once on the veth itself and once on `any` (cooked captures). The device sends
// N datagrams and the server echoes each; "in" keeps exactly the device's N (what the agent's
// interface received), "out" exactly the N echoes (what it sent), "both" all 2N — every packet
// byte-checked: addresses, ports, payload, and on `any` the cooked header's packet type.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, execFileSync } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { LINKTYPE_LINUX_SLL2, readCapture } from "@capsync/pcap";
import { parseConfigText } from "@capsync/cpe-capture/config/loader";
import { agentWireSpec } from "@capsync/cpe-capture/spec/index";
import { TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { createTestHost, linkExists, nsExists, type TestHost } from "../helpers/netns.js";
import { processesMatching } from "../helpers/procs.js";

const run = promisify(execFile);
const N = 25;
/** SLL2 packet types (linux/if_packet.h): PACKET_HOST, PACKET_OUTGOING. */
const PACKET_HOST = 0;
const PACKET_OUTGOING = 4;

let host: TestHost;
let onVeth: AgentProc;
let onAny: AgentProc;
let echo: Socket;
let echoPort: number;
const DEV_PORT = 40_415;

/** The link's MAC address, from `ip -j link show`. */
function macOf(ns: string | undefined, dev: string): string {
  const out = execFileSync("ip", [...(ns ? ["-n", ns] : []), "-j", "link", "show", "dev", dev], { encoding: "utf8" });
  return (JSON.parse(out) as { address: string }[])[0]!.address;
}

beforeAll(async () => {
  host = createTestHost("dir", "198.18.41.1", "198.18.41.2");
  // Static neighbours both ways: no ARP in the captures, so the counts below are exact.
  const hMac = macOf(undefined, host.hostIf);
  const nMac = macOf(host.ns, host.nsIf);
  execFileSync("ip", ["neigh", "replace", host.nsAddr, "lladdr", nMac, "dev", host.hostIf, "nud", "permanent"]);
  execFileSync("ip", ["-n", host.ns, "neigh", "replace", host.hostAddr, "lladdr", hMac, "dev", host.nsIf, "nud", "permanent"]);
  const key = writeKey(tempDir());
  onVeth = await startAgent(["--key-file", key, "--interface", host.hostIf]);
  onAny = await startAgent(["--key-file", key, "--interface", "any"]);
  echo = createSocket("udp4");
  echo.on("message", (m, r) => echo.send(Buffer.concat([Buffer.from("echo-"), m]), r.port, r.address));
  await new Promise<void>((r) => echo.bind(0, host.hostAddr, () => r()));
  echoPort = echo.address().port;
});

afterAll(async () => {
  echo?.close();
  await onVeth?.stop();
  await onAny?.stop();
  host?.remove();
  expect(nsExists(host.ns)).toBe(false);
  expect(linkExists(host.hostIf)).toBe(false);
});

/** The device sends dev-0..dev-(N-1) from DEV_PORT inside its namespace and waits for every echo. */
async function converse(): Promise<void> {
  const script = `
    const s = require("node:dgram").createSocket("udp4"); let got = 0;
    s.on("message", () => { if (++got === ${N}) { s.close(); process.exit(0); } });
    s.bind(${DEV_PORT}, "${host.nsAddr}", async () => {
      for (let i = 0; i < ${N}; i++) { s.send("dev-" + i, ${echoPort}, "${host.hostAddr}"); await new Promise(r => setTimeout(r, 2)); }
      setTimeout(() => process.exit(3), 3000).unref();
    });`;
  await run("ip", ["netns", "exec", host.ns, process.execPath, "-e", script], { timeout: 10_000 });
}

interface Seen {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  payload: string;
  packetType: number | undefined;
}

/**
 * What the orchestrator sends this device's agents for a run config whose device says `direction`
 * (as a user writes it: in, ingress, both, ...): the run config's spec through agentWireSpec.
 */
function orchestratorSpec(direction: string | undefined, agentPort: number, snaplen?: number): string | undefined {
  const yaml = [
    "agents: { keyFile: /k }",
    "devices:",
    `  - address: ${host.nsAddr}`,
    "    type: iosxe",
    "    interfaces: [GigabitEthernet1]",
    "    username: u",
    "    password: { env: P }",
    ...(direction || snaplen ? [`    capture: { ${[direction && `direction: ${direction}`, snaplen && `snaplen: ${snaplen}`].filter(Boolean).join(", ")} }`] : []),
    `    agents: [127.0.0.1:${agentPort}]`,
  ].join("\n");
  return agentWireSpec(parseConfigText(yaml, { file: "run.yaml", baseDir: "/" }).config.devices[0]!.spec);
}

/** The agents' tcpdumps for the device on `iface` (their argv ends with the filter, not always with `host <device>`). */
function tcpdumpsOf(iface: string): { pid: number; argv: string[] }[] {
  return processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && a.includes("198.18.41.2") && a[a.indexOf("-i") + 1] === iface);
}

/** CAPTURE as the orchestrator asks for `direction`, the conversation, STOP; every packet of the file. */
async function captureWith(agent: AgentProc, direction: string | undefined, stamp: number): Promise<{ linktype: number; packets: Seen[]; argv: string[] }> {
  const dev = host.nsAddr;
  const peer = await TestPeer.open();
  try {
    // On `any` libpcap sizes each ring slot for the whole snapshot length (no MTU to go by): with
    // tcpdump's default 262144 the 2 MB ring holds 7 packets and a loaded machine drops bursts.
    const snaplen = agent === onAny ? 1500 : undefined;
    const spec = orchestratorSpec(direction, agent.port, snaplen);
    const one = direction === undefined || direction === "both" || direction === "bidirectional" ? undefined : direction === "ingress" || direction === "in" ? "in" : "out";
    // Both directions is plain CAPTURE, exactly what a legacy agent understands.
    if (one === undefined && snaplen === undefined) expect(spec).toBeUndefined();
    else expect(JSON.parse(Buffer.from(spec!, "base64url").toString())).toEqual({ ...(one ? { direction: one } : {}), ...(snaplen ? { snaplen } : {}) });
    const cap = await peer.request(agent.port, { verb: "CAPTURE", device: dev, ...(spec ? { spec } : {}) });
    expect(cap.final.code).toBe(200);
    const procs = tcpdumpsOf(agent === onAny ? "any" : host.hostIf);
    expect(procs).toHaveLength(1);
    await converse();
    const stop = await peer.request(agent.port, { verb: "STOP", device: dev, filename: `CPE_device_${dev}_2026-12-06T01.00.0${stamp}.000000.pcap` });
    expect(stop.final.code).toBe(200);
    expect(stop.final.details.packets).toBe(String(direction === undefined || direction.startsWith("b") ? 2 * N : N));
    const { packets, reader } = await readCapture(join(agent.dir, stop.final.details.file!), { decode: true });
    const linktype = reader.interfaces[0]!.linktype;
    const seen = packets.map((p) => {
      const d = p.decoded!;
      expect(d.error).toBeUndefined();
      expect(d.l4?.protocol).toBe("udp");
      const l4 = d.l4 as { srcPort: number; dstPort: number };
      return {
        src: d.ip!.src,
        dst: d.ip!.dst,
        sport: l4.srcPort,
        dport: l4.dstPort,
        payload: p.data.subarray(d.payloadOffset!, d.payloadEnd!).toString(),
        packetType: d.link?.packetType,
      };
    });
    return { linktype, packets: seen, argv: procs[0]!.argv };
  } finally {
    peer.close();
  }
}

/** The value after `flag` in an argv ("-Q" → "in"); undefined without the flag. */
function option(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i < 0 ? undefined : argv[i + 1];
}

/** The STOPs (by the stamp digit of their file name) before which the agent warned that tcpdump had not caught up. */
function stampsNotCaughtUp(agent: AgentProc): number[] {
  const lines = readFileSync(join(agent.dir, "server-capture.log"), "utf8").split("\n");
  return lines.flatMap((l, i) => {
    if (!l.includes("had not caught up")) return [];
    const stop = lines.slice(i + 1).find((x) => x.includes("verb=STOP"));
    return [Number(/T01\.00\.0(\d)\.000000/.exec(stop ?? "")?.[1] ?? -1)];
  });
}

const fromDevice = (i: number, packetType?: number): Seen => ({ src: "198.18.41.2", dst: "198.18.41.1", sport: DEV_PORT, dport: echoPort, payload: `dev-${i}`, packetType });
const toDevice = (i: number, packetType?: number): Seen => ({ src: "198.18.41.1", dst: "198.18.41.2", sport: echoPort, dport: DEV_PORT, payload: `echo-dev-${i}`, packetType });
const range = (f: (i: number) => Seen) => Array.from({ length: N }, (_, i) => f(i));

describe("agent captures honour direction (tcpdump -Q), byte-checked", () => {
  it("on the veth: in keeps only what the agent's interface received, out only what it sent", async () => {
    const inCap = await captureWith(onVeth, "in", 1);
    expect(option(inCap.argv, "-Q")).toBe("in");
    expect(inCap.argv.slice(-2)).toEqual(["host", "198.18.41.2"]);
    expect(inCap.linktype).toBe(1); // Ethernet on a veth: no packet type in the frame
    expect(inCap.packets).toEqual(range((i) => fromDevice(i)));

    const outCap = await captureWith(onVeth, "out", 2);
    expect(option(outCap.argv, "-Q")).toBe("out");
    expect(outCap.argv.slice(-2)).toEqual(["host", "198.18.41.2"]);
    expect(outCap.packets).toEqual(range((i) => toDevice(i)));

    // polycube's words reach the agent as the canonical ones; "bidirectional" is plain CAPTURE.
    const egress = await captureWith(onVeth, "egress", 3);
    expect(option(egress.argv, "-Q")).toBe("out");
    expect(egress.argv.slice(-2)).toEqual(["host", "198.18.41.2"]);
    expect(egress.packets).toEqual(range((i) => toDevice(i)));
    const both = await captureWith(onVeth, "bidirectional", 4);
    expect(option(both.argv, "-Q")).toBeUndefined();
    expect(both.argv.slice(-2)).toEqual(["host", "198.18.41.2"]);
    expect(both.packets).toHaveLength(2 * N);
    expect(both.packets.filter((p) => p.src === "198.18.41.2")).toEqual(range((i) => fromDevice(i)));
    expect(both.packets.filter((p) => p.src === "198.18.41.1")).toEqual(range((i) => toDevice(i)));
    expect(tcpdumpsOf(host.hostIf)).toHaveLength(0);
    // libpcap counts the other direction as received before -Q drops it: the stop still saw
    // tcpdump caught up (no warning), not a full second of waiting for packets that never come.
    expect(stampsNotCaughtUp(onVeth).filter((n) => n !== 4)).toEqual([]);
  });

  it("on `any` (Linux cooked captures) -Q works the same, and the cooked header agrees", async () => {
    const inCap = await captureWith(onAny, "ingress", 5);
    expect([option(inCap.argv, "-i"), option(inCap.argv, "-Q"), option(inCap.argv, "-s")]).toEqual(["any", "in", "1500"]);
    expect(inCap.linktype).toBe(LINKTYPE_LINUX_SLL2);
    expect(inCap.packets).toEqual(range((i) => fromDevice(i, PACKET_HOST)));

    const outCap = await captureWith(onAny, "out", 6);
    expect(option(outCap.argv, "-Q")).toBe("out");
    expect(outCap.packets).toEqual(range((i) => toDevice(i, PACKET_OUTGOING)));

    const both = await captureWith(onAny, "both", 7);
    expect(option(both.argv, "-Q")).toBeUndefined();
    expect(both.packets.filter((p) => p.packetType === PACKET_HOST)).toEqual(range((i) => fromDevice(i, PACKET_HOST)));
    expect(both.packets.filter((p) => p.packetType === PACKET_OUTGOING)).toEqual(range((i) => toDevice(i, PACKET_OUTGOING)));
    expect(both.packets).toHaveLength(2 * N);
    expect(tcpdumpsOf("any")).toHaveLength(0);
    // "both" on `any` may still warn: libpcap's received count there can include packets from
    // before the filter was set (other interfaces' traffic), which no -Q is involved in.
    expect(stampsNotCaughtUp(onAny).filter((n) => n !== 7)).toEqual([]);
  });
});
