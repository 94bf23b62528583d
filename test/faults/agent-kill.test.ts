// Issue 9 item 3: the agent killed with SIGKILL. Its tcpdumps live on (they are not in the agent's
// process, and nothing signals them); on restart with the same --dir the agent finds them in its
// state file, adopts them, and a later STOP stops and renames them like its own. The max-duration
// watchdog also covers adopted tcpdumps, and needs no orchestrator at all.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createSocket } from "node:dgram";
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { formatRequest, newRequestId, parseAnswer } from "@capsync/protocol";
import { TEST_KEY, TestPeer, startAgent, tempDir, writeKey, udpSink, type AgentProc } from "../helpers/agent-proc.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { tcpdumpsUnder } from "../helpers/procs.js";

const DEV = "127.0.0.61";
const DEV2 = "127.0.0.62";
const DEV3 = "127.0.0.63";
const work = tempDir("capsync-agentkill-");
const key = writeKey(work);
const agents: AgentProc[] = [];
const peers: TestPeer[] = [];
/** This run's tcpdumps only (they write under work): the same test may be running elsewhere on the machine. */
const tcpdumpsFor = (device: string) => tcpdumpsUnder(device, work);

async function agent(dir: string, extra: string[] = []): Promise<AgentProc> {
  const a = await startAgent(["--key-file", key, "--interface", "lo", "--min-free-disk", "0", ...extra], { dir });
  agents.push(a);
  return a;
}

async function peer(): Promise<TestPeer> {
  const p = await TestPeer.open();
  peers.push(p);
  return p;
}

/** `count` datagrams from 127.0.0.1 to `to`:`port`, payload `<label>-<i>`, 5 ms apart. */
async function traffic(to: string, port: number, label: string, count: number): Promise<void> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  for (let i = 0; i < count; i++) {
    await new Promise<void>((r) => s.send(Buffer.from(`${label}-${i}`), port, to, () => r()));
    await new Promise((r) => setTimeout(r, 5));
  }
  s.close();
}

function payloads(file: string, port: number): string[] {
  return readPcap(file)
    .packets.filter((p) => p.proto === 17 && p.dport === port)
    .map((p) => p.payload!.toString());
}

interface StateFileShape {
  devices: { device: string; session?: { state: string; pid?: number; stopReason?: string; tmpName: string }; tasks: { task: string; detail?: string }[] }[];
}
const stateOf = (dir: string) => JSON.parse(readFileSync(join(dir, "server-capture-state.json"), "utf8")) as StateFileShape;

async function until<T>(what: string, f: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  for (const a of agents.splice(0)) await a.stop();
  // Nothing of ours may outlive a test, even when it failed half-way.
  for (const d of [DEV, DEV2, DEV3]) for (const t of tcpdumpsFor(d)) process.kill(t.pid, "SIGKILL");
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("agent killed with SIGKILL", () => {
  it("restarts, adopts the orphaned tcpdump from its state file, and STOP returns one file with packets from before and after", async () => {
    const dir = join(work, "adopt");
    const sink = await udpSink(DEV);
    try {
      const first = await agent(dir);
      const p = await peer();
      const cap = await p.request(first.port, { verb: "CAPTURE", device: DEV });
      expect(cap.final.code).toBe(200);
      const tmpName = cap.final.details.file!;
      // Killed at once, the moment the OK arrived: the state file must already name the tcpdump.
      first.child.kill("SIGKILL");
      await first.exited;
      const orphans = tcpdumpsFor(DEV);
      expect(orphans).toHaveLength(1);
      const orphanPid = orphans[0]!.pid;
      expect(String(orphanPid)).toBe(cap.final.details.pid);

      // Captured while no agent runs at all.
      await traffic(DEV, sink.port, "before", 30);

      const second = await agent(dir);
      await until("the adoption in the log", () => /adopted running tcpdump pid (\d+)/.exec(readFileSync(join(dir, "server-capture.log"), "utf8")), 5000);
      expect(readFileSync(join(dir, "server-capture.log"), "utf8")).toContain(`adopted running tcpdump pid ${orphanPid} for ${DEV} after restart`);
      const st = stateOf(dir).devices.find((d) => d.device === DEV)!;
      expect(st.session).toMatchObject({ state: "capturing", pid: orphanPid, tmpName });
      expect(st.tasks.map((t) => t.task)).toContain("adopt");
      // Adopted, not restarted: still exactly the one tcpdump, and a CAPTURE now is idempotent.
      expect(tcpdumpsFor(DEV).map((t) => t.pid)).toEqual([orphanPid]);
      const again = await p.request(second.port, { verb: "CAPTURE", device: DEV });
      expect(again.final.code).toBe(200);
      expect(again.final.details).toMatchObject({ existing: "1", file: tmpName });
      expect(tcpdumpsFor(DEV).map((t) => t.pid)).toEqual([orphanPid]);

      await traffic(DEV, sink.port, "after", 30);
      const cpeName = "CPE_device_127.0.0.61_2026-11-23T10.00.00.000000.pcap";
      const t0 = Date.now();
      const stop = await p.request(second.port, { verb: "STOP", device: DEV, filename: cpeName });
      const stopMs = Date.now() - t0;
      expect(stop.final.code, JSON.stringify(stop.final.details)).toBe(200);
      const ovoc = "OVOC_device_127.0.0.61_2026-11-23T10.00.00.000000-0.pcap";
      expect(stop.final.details.files).toBe(ovoc);
      expect(tcpdumpsFor(DEV)).toHaveLength(0);
      const got = payloads(join(dir, ovoc), sink.port);
      const before = got.filter((x) => x.startsWith("before-"));
      const after = got.filter((x) => x.startsWith("after-"));
      // Loopback, a dedicated tcpdump, 5 ms apart: nothing may be missing on either side of the restart.
      expect(before).toEqual(Array.from({ length: 30 }, (_, i) => `before-${i}`));
      expect(after).toEqual(Array.from({ length: 30 }, (_, i) => `after-${i}`));
      expect(Number(stop.final.details.bytes)).toBe(readFileSync(join(dir, ovoc)).length);
      expect(readdirSync(join(dir, ".incoming"))).toEqual([]);
      // An adopted tcpdump that exited is a zombie until init reaps it (slowly here, never in some
      // containers): the STOP must not wait for that, let alone escalate.
      expect(stopMs).toBeLessThan(800);
      console.log(`[agent-kill] adopted pid ${orphanPid}; STOP after restart took ${stopMs} ms; ${before.length}+${after.length} packets kept`);
    } finally {
      sink.close();
    }
  });

  it("max duration stops a capture with no orchestrator — and an adopted one after a SIGKILL — keeping the files", async () => {
    const p = await peer();
    // 1. No orchestrator: CAPTURE, then silence. --max-duration 2s: gone after ~3 s (1 s watchdog tick).
    const dirA = join(work, "maxdur");
    const a = await agent(dirA, ["--max-duration", "2s"]);
    const cap = await p.request(a.port, { verb: "CAPTURE", device: DEV });
    expect(cap.final.code).toBe(200);
    const started = Date.now();
    expect(tcpdumpsFor(DEV)).toHaveLength(1);
    await until("the tcpdump to be stopped", () => tcpdumpsFor(DEV).length === 0, 5000);
    const ranMs = Date.now() - started;
    expect(ranMs).toBeGreaterThanOrEqual(1900);
    expect(ranMs).toBeLessThan(3600);
    // Kept under the temp name; the default ring numbers its first file 0.
    const kept = join(dirA, `${cap.final.details.file!}0`);
    await until("the file in the capture dir", () => existsSync(kept), 2000);
    expect(readPcap(kept).linktype).toBe(1);
    await until("the state file", () => stateOf(dirA).devices.find((d) => d.device === DEV)?.session?.stopReason === "max-duration", 2000);

    // 2. SIGKILL while capturing, restart: the adopted tcpdump is held to the same limit.
    const dirB = join(work, "maxdur-adopted");
    const b1 = await agent(dirB, ["--max-duration", "3s"]);
    const cap2 = await p.request(b1.port, { verb: "CAPTURE", device: DEV2 });
    expect(cap2.final.code).toBe(200);
    const started2 = Date.now();
    b1.child.kill("SIGKILL");
    await b1.exited;
    expect(tcpdumpsFor(DEV2)).toHaveLength(1);
    await agent(dirB, ["--max-duration", "3s"]);
    // Held to the limit from the start, or at the first tick once the restarted agent is up (a loaded host starts node slowly).
    const upAfter2 = Date.now() - started2;
    await until("the tcpdump to be stopped", () => tcpdumpsFor(DEV2).length === 0, 6000);
    const ranMs2 = Date.now() - started2;
    expect(ranMs2).toBeLessThan(Math.max(4800, upAfter2 + 1800));
    const kept2 = join(dirB, `${cap2.final.details.file!}0`);
    await until("the file in the capture dir", () => existsSync(kept2), 2000);
    expect(readPcap(kept2).linktype).toBe(1);
    const log = readFileSync(join(dirB, "server-capture.log"), "utf8");
    expect(log).toContain(`adopted running tcpdump pid ${cap2.final.details.pid} for ${DEV2}`);
    expect(log).toContain(`capture for ${DEV2} reached --max-duration 3s without a STOP; stopping it (files kept)`);
    console.log(`[agent-kill] max duration 2s: tcpdump gone after ${ranMs} ms; adopted, 3s: gone after ${ranMs2} ms`);
  });

  it("killed while tcpdump is still starting (right after 100 Trying): the restarted agent still knows that tcpdump", async () => {
    const dir = join(work, "starting");
    const first = await agent(dir, ["--max-duration", "3s"]);
    const p = await peer();
    const key = Buffer.from(TEST_KEY);
    const id = newRequestId();
    p.send(formatRequest({ id, ts: Date.now(), verb: "CAPTURE", device: DEV3 }, key), first.port);
    await p.waitFor((all) => all.map((b) => parseAnswer(b, [key])).find((r) => r.ok && r.value.id === id && r.value.code === 100));
    const started = Date.now();
    first.child.kill("SIGKILL");
    await first.exited;
    // tcpdump was spawned before the 100 left. Its "listening on" goes to a file, not to a pipe to
    // the dead agent (where it used to die of SIGPIPE): it survives, and the restarted agent adopts it.
    // (Spawned through perl, which arms its alarm and execs tcpdump in the same process: a moment.)
    const survived = (await until("the tcpdump to run", () => tcpdumpsFor(DEV3).length > 0 && tcpdumpsFor(DEV3), 3000)).map((t) => t.pid);
    const st = stateOf(dir).devices.find((d) => d.device === DEV3);
    expect(st?.session?.pid, "the state file names the tcpdump before it is even listening").toBeTypeOf("number");
    await agent(dir, ["--max-duration", "3s"]);
    const upAfter = Date.now() - started;
    const log = () => readFileSync(join(dir, "server-capture.log"), "utf8");
    expect(survived).toEqual([st!.session!.pid]);
    const how = await until(
      "the restarted agent to adopt or close the session",
      () => stateOf(dir).devices.find((d) => d.device === DEV3)?.tasks.find((t) => t.task === "adopt" || t.task === "recover"),
      5000,
    );
    // The state file and the log are written independently (the log asynchronously): wait for both.
    expect(how.task).toBe("adopt");
    await until("the adopt line in the log", () => log().includes(`adopted running tcpdump pid ${st!.session!.pid} for ${DEV3}`), 2000);
    await until("no tcpdump for the device", () => tcpdumpsFor(DEV3).length === 0, 6000);
    expect(Date.now() - started).toBeLessThan(Math.max(4600, upAfter + 1800));
    const kept = join(dir, `${st!.session!.tmpName}0`);
    await until("the file in the capture dir", () => existsSync(kept), 2000);
    expect(readPcap(kept).linktype).toBe(1);
    expect(readdirSync(join(dir, ".incoming"))).toEqual([]);
    console.log(`[agent-kill] killed at 100 Trying: tcpdump survived and was adopted; file kept`);
  });
});
