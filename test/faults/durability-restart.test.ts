// Issue 19 item 2: captures outlive the agent process. Real agents, real tcpdumps, loopback traffic.
// No systemd runs here (PID 1 is not systemd: no `systemctl`, no `systemd-run --scope`), so the
// unit's semantics are reproduced on the process tree: the agent in its own session and process
// group (setsid), killed the way KillMode=process does it (SIGTERM to the main pid only), and a
// whole-group kill for what a terminal's Ctrl-C or a group signal would do.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createSocket } from "node:dgram";
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { encodeSpecWire } from "@capsync/protocol";
import { AGENT_CLI, TestPeer, tempDir, writeKey, udpSink, type AgentProc } from "../helpers/agent-proc.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { tcpdumpsUnder } from "../helpers/procs.js";
import { agentOn, durableFixture, logOf, payloads, running, stateOf, traffic, until } from "../helpers/durability.js";

const DEV = "127.0.0.81";
const DEV2 = "127.0.0.82";
const DEV3 = "127.0.0.83";
const { work, key, agent, peer, cleanup } = durableFixture("capsync-durable-", [DEV, DEV2, DEV3]);
const tcpdumpsFor = (device: string) => tcpdumpsUnder(device, work).filter((t) => running(t.pid));
/** The agent in its own session: its pid is its process group's id, as a service manager starts it. */
const SETSID = ["setsid", process.execPath, AGENT_CLI];

afterEach(cleanup);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("captures outlive the agent process", () => {
  it("a kill of the agent's whole process group spares tcpdump; its messages go to a file, so a SIGUSR1 to the orphan does not kill it; adopted, STOP has every packet and tcpdump's own count", async () => {
    const dir = join(work, "group");
    const sink = await udpSink(DEV);
    try {
      const first = await agent(dir, [], SETSID);
      const p = await peer();
      const cap = await p.request(first.port, { verb: "CAPTURE", device: DEV });
      expect(cap.final.code).toBe(200);
      const pid = Number(cap.final.details.pid);
      // Its own session: not in the agent's process group, so a group signal does not reach it.
      const pgid = (q: number) => Number(readFileSync(`/proc/${q}/stat`, "utf8").split(") ")[1]!.split(" ")[2]);
      expect(pgid(first.child.pid!)).toBe(first.child.pid);
      expect(pgid(pid)).toBe(pid);
      expect(readlinkSync(`/proc/${pid}/fd/0`)).toBe("/dev/null");
      expect(readlinkSync(`/proc/${pid}/fd/2`)).toBe(join(dir, ".incoming", `.${cap.final.details.file}.stderr`));

      process.kill(-first.child.pid!, "SIGKILL");
      await first.exited;
      expect(tcpdumpsFor(DEV).map((t) => t.pid)).toEqual([pid]);
      await traffic(DEV, sink.port, "orphan", 20);
      // Before: its stderr was a pipe to the dead agent, and this SIGUSR1's answer killed it (SIGPIPE).
      process.kill(pid, "SIGUSR1");
      const errFile = join(dir, ".incoming", `.${cap.final.details.file}.stderr`);
      await until("the orphan's answer to SIGUSR1 in its stderr file", () => /packets? received by filter/.test(readFileSync(errFile, "utf8")), 3000);
      await new Promise((r) => setTimeout(r, 200));
      expect(running(pid), "the orphan survived writing its message").toBe(true);

      const second = await agent(dir);
      await until("the adoption", () => logOf(dir).includes(`adopted running tcpdump pid ${pid} for ${DEV} after restart`), 5000);
      await traffic(DEV, sink.port, "adopted", 20);
      const stop = await p.request(second.port, { verb: "STOP", device: DEV, filename: "CPE_device_127.0.0.81_2026-12-06T10.00.00.000000.pcap" });
      expect(stop.final.code, JSON.stringify(stop.final.details)).toBe(200);
      const file = join(dir, stop.final.details.files!);
      const got = payloads(file, sink.port);
      expect(got).toEqual([...Array.from({ length: 20 }, (_, i) => `orphan-${i}`), ...Array.from({ length: 20 }, (_, i) => `adopted-${i}`)]);
      // The summary of an adopted tcpdump is read from its stderr file: the packet count is tcpdump's own.
      expect(stop.final.details.packets).toBe(String(readPcap(file).packets.length));
      expect(readdirSync(join(dir, ".incoming"))).toEqual([]);
    } finally {
      sink.close();
    }
  });

  it("upgrade: SIGTERM to the agent's main pid only (KillMode=process) with --on-term keep, a new agent adopts the capture, not one packet lost", async () => {
    const dir = join(work, "upgrade");
    const sink = await udpSink(DEV2);
    try {
      const old = await agent(dir, ["--on-term", "keep"], SETSID);
      const p = await peer();
      const cap = await p.request(old.port, { verb: "CAPTURE", device: DEV2 });
      expect(cap.final.code).toBe(200);
      const pid = Number(cap.final.details.pid);
      // Traffic the whole time: 600 datagrams, 5 ms apart (~3 s), across the old agent's exit and the new one's start.
      const sending = traffic(DEV2, sink.port, "seq", 600, 5);
      await new Promise((r) => setTimeout(r, 500));
      const t0 = Date.now();
      old.child.kill("SIGTERM");
      expect(await old.exited).toBe(0);
      const exitMs = Date.now() - t0;
      expect(logOf(dir)).toContain("SIGTERM (--on-term keep): leaving 1 capture(s) running for the next agent to adopt");
      expect(running(pid)).toBe(true);
      const t1 = Date.now();
      const next = await agent(dir, ["--on-term", "keep"], SETSID);
      await until("the adoption", () => logOf(dir).includes(`adopted running tcpdump pid ${pid} for ${DEV2} after restart`), 5000);
      const gapMs = Date.now() - t1;
      await sending;
      const stop = await p.request(next.port, { verb: "STOP", device: DEV2, filename: "CPE_device_127.0.0.82_2026-12-06T10.00.00.000000.pcap" });
      expect(stop.final.code, JSON.stringify(stop.final.details)).toBe(200);
      expect(stop.final.details.files).toBe("OVOC_device_127.0.0.82_2026-12-06T10.00.00.000000-0.pcap");
      const got = payloads(join(dir, stop.final.details.files!), sink.port);
      expect(got).toEqual(Array.from({ length: 600 }, (_, i) => `seq-${i}`));
      expect(tcpdumpsFor(DEV2)).toEqual([]);
      console.log(`[durability] upgrade: old agent exited ${exitMs} ms after SIGTERM leaving tcpdump ${pid}; new agent up and adopted in ${gapMs} ms; 600/600 packets in one file`);
    } finally {
      sink.close();
    }
  });

  it("an orphan no agent ever adopts ends itself at --max-duration (plus its grace) and stays within its ring", async () => {
    const dir = join(work, "orphan");
    const sink = await udpSink(DEV3);
    try {
      const a = await agent(dir, ["--max-duration", "2s", "--ring-size", "1", "--ring-files", "2"]);
      const p = await peer();
      // A 16 MB kernel buffer (spec limits.bufferMb; the agent's ring stays): a descheduled tcpdump on a
      // busy host must not drop the burst that is to turn its ring.
      const cap = await p.request(a.port, { verb: "CAPTURE", device: DEV3, spec: encodeSpecWire({ limits: { bufferMb: 16 } }) });
      expect(cap.final.code, JSON.stringify(cap.final.details)).toBe(200);
      const started = Date.now();
      const pid = Number(cap.final.details.pid);
      const argv = tcpdumpsFor(DEV3)[0]!.argv;
      expect(argv.join(" ")).toContain("-C 1 -W 2");
      a.child.kill("SIGKILL");
      await a.exited;
      // ~3 MB through a ring of 2 x 1 MB while nobody watches it.
      const big = async () => {
        const s = createSocket("udp4");
        await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
        for (let i = 0; i < 300; i++) await new Promise<void>((r) => s.send(Buffer.alloc(10_000, 0x62), sink.port, DEV3, () => r()));
        s.close();
      };
      await big();
      await until("the orphan to end itself", () => !running(pid), 12_000, 50);
      const ranMs = Date.now() - started;
      // 2 s limit + 5 s grace (lifetimeFor): the agent's own watchdog would have stopped it at 2 s.
      expect(ranMs).toBeGreaterThanOrEqual(6500);
      expect(ranMs).toBeLessThan(10_000);
      const files = readdirSync(join(dir, ".incoming")).filter((f) => !f.endsWith(".stderr"));
      expect(files.sort()).toEqual([`${cap.final.details.file}0`, `${cap.final.details.file}1`]);
      const bytes = files.reduce((n, f) => n + statSync(join(dir, ".incoming", f)).size, 0);
      expect(bytes).toBeLessThanOrEqual(2 * 1_000_000 + 2 * 262_144);
      for (const f of files) expect(readPcap(join(dir, ".incoming", f)).linktype).toBe(1);
      // A later agent keeps its files: nothing is deleted.
      await agent(dir);
      await until("the files kept in the capture dir", () => files.every((f) => existsSync(join(dir, f))), 5000);
      console.log(`[durability] orphan with --max-duration 2s ended itself after ${ranMs} ms; ring held ${bytes} B of ~3 MB sent`);
    } finally {
      sink.close();
    }
  });
});
