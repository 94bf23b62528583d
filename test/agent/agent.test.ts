// server-capture end to end: the real binary, real tcpdump, real packets on loopback.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { encodeSpecWire, formatLegacyRequest, formatRequest, newRequestId } from "@capsync/protocol";
import { AGENT_CLI, TEST_KEY, TestPeer, sendTraffic, startAgent, tempDir, udpSink, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { processesMatching, tcpdumpsFor } from "../helpers/procs.js";

/** tcpdumps whose filter names `device` anywhere (a spec's filter does not end in `host <device>`). */
const tcpdumpsNaming = (device: string) => processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && a.includes(device));

const CPE = (dev: string) => `CPE_device_${dev}_2026-11-23T10.00.00.000000.pcap`;
const OVOC = (dev: string, i = 0) => `OVOC_device_${dev}_2026-11-23T10.00.00.000000-${i}.pcap`;

let agent: AgentProc;
let peer: TestPeer;
let keyDir: string;

beforeAll(async () => {
  keyDir = tempDir("capsync-key-");
  agent = await startAgent(["--key-file", writeKey(keyDir), "--interface", "lo"]);
  peer = await TestPeer.open();
});
afterAll(async () => {
  peer?.close();
  await agent?.stop();
});

describe("CAPTURE / STOP with real tcpdump", () => {
  it("captures exactly the device's packets, including those sent just before STOP", async () => {
    const dev = "127.0.0.5";
    const sink = await udpSink(dev);
    const cap = await peer.request(agent.port, { verb: "CAPTURE", device: dev });
    expect(cap.all.map((a) => a.code)).toEqual([100, 200]);
    expect(cap.final.details.file).toMatch(/^tmp_device_127\.0\.0\.5_\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{6}\.pcap$/);
    expect(tcpdumpsFor(dev)).toHaveLength(1);

    // Noise for another address must not be captured.
    const other = await udpSink("127.0.0.55");
    await sendTraffic("127.0.0.55", other.port, 10, 0);
    await sendTraffic(dev, sink.port, 50, 1);
    // STOP right after the last packet (well within 200 ms): --immediate-mode must keep them all.
    const t0 = Date.now();
    const stop = await peer.request(agent.port, { verb: "STOP", device: dev, filename: CPE(dev) });
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(stop.all.map((a) => a.code)).toEqual([100, 200]);
    expect(stop.final.details.file).toBe(OVOC(dev));
    expect(stop.final.details.files).toBe(OVOC(dev));
    expect(stop.final.details.packets).toBe("50");
    const path = join(agent.dir, OVOC(dev));
    expect(Number(stop.final.details.bytes)).toBe(statSync(path).size);

    const pcap = readPcap(path);
    expect(pcap.linktype).toBe(1);
    expect(pcap.packets).toHaveLength(50);
    for (const p of pcap.packets) {
      expect(p.src === dev || p.dst === dev).toBe(true);
      expect(p.dport).toBe(sink.port);
    }
    expect(pcap.packets.map((p) => p.payload!.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `capsync-test-${i}`));
    expect(sink.count()).toBe(50);
    expect(tcpdumpsFor(dev)).toHaveLength(0);
    sink.close();
    other.close();
  });

  it("CAPTURE with a spec keeps only the matching packets, cut to the snaplen; plain CAPTURE stays 'host <device>'", async () => {
    const dev = "127.0.0.13";
    const want = await udpSink(dev);
    const other = await udpSink(dev);
    const spec = encodeSpecWire({ filter: { protocol: "udp", dport: want.port }, snaplen: 64 });
    const cap = await peer.request(agent.port, { verb: "CAPTURE", device: dev, spec });
    expect(cap.all.map((a) => a.code)).toEqual([100, 200]);
    expect(cap.final.details.filter).toBe(`host ${dev} and udp and dst port ${want.port}`);
    // The same spec again is the running capture; a different one is a conflict, not a second tcpdump.
    expect((await peer.request(agent.port, { verb: "CAPTURE", device: dev, spec })).final.details.existing).toBe("1");
    const plain = await peer.request(agent.port, { verb: "CAPTURE", device: dev });
    expect([plain.final.code, plain.final.details.reason]).toEqual([409, "spec-conflict"]);
    const running = tcpdumpsNaming(dev);
    expect(running).toHaveLength(1);
    // Separate argv words, never one shell string; snaplen as -s.
    expect(running[0]!.argv.slice(-8)).toEqual(["host", dev, "and", "udp", "and", "dst", "port", String(want.port)]);
    expect(running[0]!.argv.join(" ")).toContain("-s 64");
    await sendTraffic(dev, other.port, 15, 0);
    await sendTraffic(dev, want.port, 20, 1);
    const stop = await peer.request(agent.port, { verb: "STOP", device: dev, filename: CPE(dev) });
    expect(stop.final.code).toBe(200);
    expect(stop.final.details.packets).toBe("20");
    const pcap = readPcap(join(agent.dir, stop.final.details.file!));
    expect(pcap.packets).toHaveLength(20);
    for (const p of pcap.packets) {
      expect([p.dst, p.proto, p.dport]).toEqual([dev, 17, want.port]);
      expect(p.data.length).toBeLessThanOrEqual(64);
    }
    want.close();
    other.close();
  });

  it("refuses a spec tcpdump cannot express, or a malformed one, with 400 and no tcpdump", async () => {
    const dev = "127.0.0.14";
    const vrf = await peer.request(agent.port, { verb: "CAPTURE", device: dev, spec: encodeSpecWire({ vrf: "MGMT" }) });
    expect(vrf.all.map((a) => a.code)).toEqual([100, 400]);
    expect(vrf.final.details).toMatchObject({ reason: "spec-unsupported", field: "vrf" });
    const junk = await peer.request(agent.port, { verb: "CAPTURE", device: dev, spec: Buffer.from('{"filter":{"dport":5060}}').toString("base64url") });
    expect(junk.final.details).toMatchObject({ reason: "bad-spec", field: "filter.dport" });
    expect(junk.final.details.msg).toContain("a port needs filter.protocol tcp or udp");
    expect(tcpdumpsNaming(dev)).toHaveLength(0);
  });

  it("answers a retried STOP (same id) with the same bytes, and a new STOP for the same file with the same files", async () => {
    const dev = "127.0.0.6";
    await peer.request(agent.port, { verb: "CAPTURE", device: dev });
    const id = newRequestId();
    const first = await peer.request(agent.port, { verb: "STOP", device: dev, filename: CPE(dev), id, ts: Date.now() });
    const before = peer.received.length;
    peer.send(first.sent, agent.port);
    const again = await peer.waitFor((all) => (all.length > before ? all[all.length - 1] : undefined));
    const finals = peer.received.filter((b) => b.toString().includes(` ${id} `) && / 200 STOP /.test(b.toString()));
    expect(finals).toHaveLength(2);
    expect(finals[0]!.equals(finals[1]!)).toBe(true);
    expect(again.toString()).toContain(" 200 STOP ");
    const other = await peer.request(agent.port, { verb: "STOP", device: dev, filename: CPE(dev) });
    expect(other.final.code).toBe(200);
    expect(other.final.details.files).toBe(OVOC(dev));
    expect(readdirSync(agent.dir).filter((f) => f.includes("127.0.0.6"))).toEqual([OVOC(dev)]);
  });

  it("never overwrites: a second capture renamed for the same device file gets a new name", async () => {
    const dev = "127.0.0.6";
    await peer.request(agent.port, { verb: "CAPTURE", device: dev });
    const stop = await peer.request(agent.port, { verb: "STOP", device: dev, filename: CPE(dev) });
    // The first capture's STOP claimed this file name already; this is a new capture session.
    expect(stop.final.code).toBe(200);
    expect(stop.final.details.file).toBe(`OVOC_device_${dev}_2026-11-23T10.00.00.000000-0_2.pcap`);
    expect(existsSync(join(agent.dir, OVOC(dev)))).toBe(true);
  });

  it("a replayed CAPTURE datagram and a second CAPTURE never start a second tcpdump", async () => {
    const dev = "127.0.0.7";
    const first = await peer.request(agent.port, { verb: "CAPTURE", device: dev });
    const before = peer.received.length;
    peer.send(first.sent, agent.port); // exact replay
    await peer.waitFor((all) => (all.length > before ? true : undefined));
    const second = await peer.request(agent.port, { verb: "CAPTURE", device: dev });
    expect(second.final.code).toBe(200);
    expect(second.final.details.existing).toBe("1");
    expect(second.final.details.file).toBe(first.final.details.file);
    expect(tcpdumpsFor(dev)).toHaveLength(1);
    await peer.request(agent.port, { verb: "STOP", device: dev, filename: CPE(dev) });
  });

  it("drops datagrams with a wrong key: no answer, no tcpdump", async () => {
    const dev = "127.0.0.8";
    const bad = formatRequest({ id: newRequestId(), ts: Date.now(), verb: "CAPTURE", device: dev }, Buffer.from("another-key-another-key-another-key!!"));
    const before = peer.received.length;
    peer.send(bad, agent.port);
    const ping = await peer.request(agent.port, { verb: "PING" });
    expect(ping.final.code).toBe(200);
    expect(peer.received.length).toBe(before + 1);
    expect(tcpdumpsFor(dev)).toHaveLength(0);
    expect(readdirSync(join(agent.dir, ".incoming")).filter((f) => f.includes(dev))).toEqual([]);
  });

  it("answers a stale timestamp with 400 reason=stale and does nothing", async () => {
    const r = await peer.request(agent.port, { verb: "CAPTURE", device: "127.0.0.9", ts: Date.now() - 120_000 });
    expect(r.final.code).toBe(400);
    expect(r.final.details.reason).toBe("stale");
    expect(r.final.details.msg).toMatch(/outside the 30000 ms window; agent time \d+/);
    expect(tcpdumpsFor("127.0.0.9")).toHaveLength(0);
  });

  it("STOP without CAPTURE is 404 Not Found", async () => {
    const r = await peer.request(agent.port, { verb: "STOP", device: "127.0.0.10", filename: CPE("127.0.0.10") });
    expect(r.final.code).toBe(404);
    expect(r.final.details.reason).toBe("no-session");
  });

  it("VERIFY sends bounded ICMP, TCP/443 and SNMP probes and reports counts", async () => {
    const r = await peer.request(agent.port, { verb: "VERIFY", device: "127.0.0.11" });
    // Nothing listens on 127.0.0.11:443, so each connect is refused: a RST crossed the path.
    expect(r.all.map((a) => a.code)).toEqual([100, 200]);
    // The loopback address answers ICMP echo itself (the kernel): 3 echoes, 3 replies.
    expect(r.final.details).toEqual({ tcp: "3/3", snmp: "0/3", icmp: "3/3", icmp_rtt_ms: expect.stringMatching(/^[\d.]+\/[\d.]+\/[\d.]+$/) });
  });

  it("REGISTER, STATUS and PING", async () => {
    expect((await peer.request(agent.port, { verb: "REGISTER", device: "127.0.0.12" })).final.code).toBe(200);
    await peer.request(agent.port, { verb: "CAPTURE", device: "127.0.0.12" });
    const st = await peer.request(agent.port, { verb: "STATUS" });
    expect(st.final.code).toBe(200);
    const sessions = Object.entries(st.final.details).filter(([k]) => /^s\d+$/.test(k)).map(([, v]) => v);
    expect(sessions.some((v) => /^127\.0\.0\.12,capturing,\d+$/.test(v))).toBe(true);
    expect(Number(st.final.details.sessions)).toBe(sessions.length);
    const state = JSON.parse(readFileSync(join(agent.dir, "server-capture-state.json"), "utf8"));
    const rec = state.devices.find((d: { device: string }) => d.device === "127.0.0.12");
    expect(rec.registration).toBe("active");
    expect(rec.session.state).toBe("capturing");
    expect(rec.tasks.map((t: { task: string }) => t.task)).toEqual(["register", "capture"]);
    await peer.request(agent.port, { verb: "STOP", device: "127.0.0.12", filename: CPE("127.0.0.12") });
  });

  it("survives a flood of junk datagrams and still answers", async () => {
    const junk = Buffer.alloc(200, 0x41);
    for (let i = 0; i < 20_000; i++) peer.send(junk, agent.port);
    const t0 = Date.now();
    // Like any client, resend the same datagram (same id) if the flood crowded it out.
    const id = newRequestId();
    const ts = Date.now();
    const p = peer.request(agent.port, { verb: "PING", id, ts });
    const resend = setInterval(() => peer.send(formatRequest({ id, ts, verb: "PING" }, Buffer.from(TEST_KEY)), agent.port), 500);
    const ping = await p.finally(() => clearInterval(resend));
    expect(ping.final.code).toBe(200);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("logs one line per command, never the key", async () => {
    await new Promise((r) => setTimeout(r, 300));
    const log = readFileSync(join(agent.dir, "server-capture.log"), "utf8");
    expect(log).toMatch(/peer=127\.0\.0\.1:\d+ mode=v1 verb=STOP device=127\.0\.0\.5 code=200 latency=\d+ms id=[0-9a-f]{16} file=OVOC_device_127\.0\.0\.5_/);
    expect(log).toMatch(/dropped \d+ datagram\(s\): bad-mac from 127\.0\.0\.1:\d+/);
    expect(log).not.toContain(TEST_KEY);
    expect(agent.stdout() + agent.stderr()).not.toContain(TEST_KEY);
  });
});

describe("agent limits and failures", () => {
  it("reports tcpdump's own error when the interface does not exist", async () => {
    const a = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "nosuch0"]);
    const p = await TestPeer.open();
    const r = await p.request(a.port, { verb: "CAPTURE", device: "127.0.0.20" });
    expect(r.final.code).toBe(503);
    expect(r.final.details.reason).toBe("tcpdump-failed");
    expect(r.final.details.msg).toContain("nosuch0: No such device exists");
    expect(tcpdumpsFor("127.0.0.20")).toHaveLength(0);
    p.close();
    expect(await a.stop()).toBe(0);
  });

  it("refuses captures with 503 disk-low when free disk is under the minimum", async () => {
    const a = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo", "--min-free-disk", "9999999"]);
    const p = await TestPeer.open();
    const r = await p.request(a.port, { verb: "CAPTURE", device: "127.0.0.21" });
    expect(r.final.code).toBe(503);
    expect(r.final.details.reason).toBe("disk-low");
    p.close();
    await a.stop();
  });

  it("stops (and keeps) a capture past --max-duration; a later STOP returns its file", async () => {
    const a = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo", "--max-duration", "1s"]);
    const p = await TestPeer.open();
    const dev = "127.0.0.22";
    const sink = await udpSink(dev);
    await p.request(a.port, { verb: "CAPTURE", device: dev });
    await sendTraffic(dev, sink.port, 5, 1);
    const until = Date.now() + 8000;
    while (tcpdumpsFor(dev).length && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(tcpdumpsFor(dev)).toHaveLength(0);
    const r = await p.request(a.port, { verb: "STOP", device: dev, filename: CPE(dev) });
    expect(r.final.code).toBe(200);
    expect(r.final.details.stopped).toBe("max-duration");
    expect(readPcap(join(a.dir, OVOC(dev))).packets).toHaveLength(5);
    sink.close();
    p.close();
    await a.stop();
  });

  it("ring buffer parts keep their index", async () => {
    const a = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo", "--ring-size", "1", "--ring-files", "3"]);
    const p = await TestPeer.open();
    const dev = "127.0.0.23";
    await p.request(a.port, { verb: "CAPTURE", device: dev });
    const r = await p.request(a.port, { verb: "STOP", device: dev, filename: CPE(dev) });
    expect(r.final.details.files).toBe(OVOC(dev, 0));
    p.close();
    await a.stop();
  });

  it("ignores peers outside --allow", async () => {
    const a = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo", "--allow", "192.0.2.0/24"]);
    const p = await TestPeer.open();
    await expect(p.request(a.port, { verb: "PING" }, undefined, 1500)).rejects.toThrow(/timed out/);
    p.close();
    await a.stop();
    expect(readFileSync(join(a.dir, "server-capture.log"), "utf8")).toMatch(/dropped 1 datagram\(s\): peer-not-allowed from 127\.0\.0\.1:\d+/);
  });

  it("SIGTERM mid-capture finalises the file and leaves no tcpdump behind", async () => {
    const a = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo"]);
    const p = await TestPeer.open();
    const dev = "127.0.0.24";
    const sink = await udpSink(dev);
    const cap = await p.request(a.port, { verb: "CAPTURE", device: dev });
    await sendTraffic(dev, sink.port, 20, 1);
    expect(tcpdumpsFor(dev)).toHaveLength(1);
    expect(await a.stop("SIGTERM")).toBe(0);
    expect(tcpdumpsFor(dev)).toHaveLength(0);
    // The capture is kept in the capture dir under its temp name, complete and valid: the ring's
    // first file (the default ring: tcpdump numbers its files after the name).
    const parts = readdirSync(a.dir).filter((f) => f.startsWith(cap.final.details.file!));
    expect(parts).toEqual([`${cap.final.details.file!}0`]);
    expect(readPcap(join(a.dir, parts[0]!)).packets).toHaveLength(20);
    const state = JSON.parse(readFileSync(join(a.dir, "server-capture-state.json"), "utf8"));
    expect(state.devices[0].session).toMatchObject({ state: "stopped", stopReason: "shutdown" });
    sink.close();
    p.close();
  });
});

describe("legacy mode speaks the original's exact strings", () => {
  it("REGISTER / CAPTURE / STOP byte for byte", async () => {
    const a = await startAgent(["--legacy", "--interface", "lo"]);
    const p = await TestPeer.open();
    const dev = "127.0.0.30";
    p.send(formatLegacyRequest({ verb: "REGISTER", device: dev }), a.port);
    await p.waitFor((all) => (all.length >= 1 ? true : undefined));
    p.send(`CAPTURE ${dev}`, a.port);
    await p.waitFor((all) => (all.length >= 3 ? true : undefined));
    p.send(`STOP ${dev} ${CPE(dev)}`, a.port);
    await p.waitFor((all) => (all.length >= 5 ? true : undefined));
    p.send(`STOP 127.0.0.31 ${CPE("127.0.0.31")}`, a.port);
    await p.waitFor((all) => (all.length >= 6 ? true : undefined));
    expect(p.received.map((b) => b.toString("utf8"))).toEqual([
      `200 OK ${dev} REGISTER`,
      `100 Trying ${dev} CAPTURE`,
      `200 OK ${dev} CAPTURE`,
      `100 Trying ${dev} STOP`,
      `200 OK ${dev} STOP`,
      `404 Not Found 127.0.0.31 STOP`,
    ]);
    expect(existsSync(join(a.dir, OVOC(dev)))).toBe(true);
    expect(a.stderr()).toContain("LEGACY MODE: commands are unauthenticated");
    p.close();
    await a.stop();
  });
});

describe("start-up refusals", () => {
  const run = (args: string[], asNobody = false) => {
    const argv = [AGENT_CLI, "--dir", tempDir(), ...args];
    try {
      const out = asNobody
        ? execFileSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, ...argv], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
        : execFileSync(process.execPath, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      return { code: 0, err: "", out };
    } catch (e) {
      const x = e as { status: number; stderr: string };
      return { code: x.status, err: x.stderr, out: "" };
    }
  };
  it("without a key and without --legacy", () => {
    expect(run([])).toEqual({ code: 2, out: "", err: "server-capture: no --key-file given: CSYNC/1 needs a pre-shared key (or pass --legacy for the original, unauthenticated protocol)\n" });
  });
  it("with a group-readable key file", () => {
    const k = writeKey(tempDir(), TEST_KEY, 0o640);
    const r = run(["--key-file", k]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`server-capture: key file ${k}: mode 0640 lets group/others read it; run: chmod 600 ${k}\n`);
    expect(r.err).not.toContain(TEST_KEY);
  });
  it("with a bad interface name or CIDR", () => {
    expect(run(["--legacy", "--interface", "eth0;reboot"]).err).toBe("server-capture: --interface 'eth0;reboot' is not a valid interface name\n");
    expect(run(["--legacy", "--allow", "10.0.0.0/33"]).err).toBe("server-capture: --allow '10.0.0.0/33' is not an IP address or CIDR\n");
  });
  it("without root", () => {
    const r = run(["--legacy"], true);
    expect(r.code).toBe(1);
    expect(r.err).toBe("server-capture: must run as root (or with CAP_NET_RAW) to capture packets; try: sudo server-capture ...\n");
  });
});
