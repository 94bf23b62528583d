// The agent capturing a device that lives in its own network namespace, over a veth link:
// the device talks, the server answers, both directions must be in the agent's file.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import { promisify } from "node:util";
import { TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { createTestHost, linkExists, nsExists, type TestHost } from "../helpers/netns.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { tcpdumpsFor } from "../helpers/procs.js";

const run = promisify(execFile);
let host: TestHost;
let agent: AgentProc;

beforeAll(async () => {
  host = createTestHost("agt", "198.51.100.1", "198.51.100.2");
  agent = await startAgent(["--key-file", writeKey(tempDir()), "--interface", host.hostIf]);
});
afterAll(async () => {
  await agent?.stop();
  host?.remove();
  expect(nsExists(host.ns)).toBe(false);
  expect(linkExists(host.hostIf)).toBe(false);
});

describe("agent on a veth link to a namespaced device", () => {
  it("captures both directions of the device's traffic, exactly", async () => {
    const dev = host.nsAddr;
    const echo = createSocket("udp4");
    echo.on("message", (m, r) => echo.send(m, r.port, r.address));
    await new Promise<void>((r) => echo.bind(0, host.hostAddr, () => r()));
    const port = echo.address().port;

    const peer = await TestPeer.open();
    const cap = await peer.request(agent.port, { verb: "CAPTURE", device: dev });
    expect(cap.final.code).toBe(200);

    const N = 40;
    // The "device" sends N datagrams from inside its namespace and waits for each echo.
    const script = `
      const s = require("node:dgram").createSocket("udp4"); let got = 0;
      s.on("message", () => { if (++got === ${N}) { s.close(); } });
      s.bind(0, "${dev}", async () => {
        for (let i = 0; i < ${N}; i++) { s.send("dev-" + i, ${port}, "${host.hostAddr}"); await new Promise(r => setTimeout(r, 2)); }
        setTimeout(() => process.exit(got === ${N} ? 0 : 3), 2000).unref();
      });`;
    await run("ip", ["netns", "exec", host.ns, process.execPath, "-e", script], { timeout: 10_000 });
    const stop = await peer.request(agent.port, { verb: "STOP", device: dev, filename: `CPE_device_${dev}_2026-11-23T10.00.00.000000.pcap` });
    expect(stop.final.code).toBe(200);
    const pcap = readPcap(join(agent.dir, stop.final.details.file!));
    const udp = pcap.packets.filter((p) => p.proto === 17);
    expect(udp.filter((p) => p.src === dev && p.dst === host.hostAddr)).toHaveLength(N);
    expect(udp.filter((p) => p.src === host.hostAddr && p.dst === dev)).toHaveLength(N);
    // Everything else in the file is ARP for the same two hosts (tcpdump's `host` matches ARP too).
    for (const p of pcap.packets.filter((x) => x.proto !== 17)) expect(p.data.readUInt16BE(12)).toBe(0x0806);
    expect(tcpdumpsFor(dev)).toHaveLength(0);
    echo.close();
    peer.close();
  });
});
