// Clock steps and skew with real processes: the real agent runs under libfaketime (Debian's
// `faketime` package) with its wall clock read from a file the test rewrites (FAKETIME_NO_CACHE:
// read on every call), CLOCK_MONOTONIC left alone (DONT_FAKE_MONOTONIC). A step of +1 h and then
// −1 h mid-capture must neither end nor extend a capture; a skew beyond the window must say which
// clock is off and by how much, at the agent and at the orchestrator's client.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import type { V1Answer } from "@capsync/protocol";
import { AgentClient } from "@capsync/cpe-capture/agents/client";
import { refusalText } from "@capsync/cpe-capture/agents/index";
import { AGENT_CLI, TEST_KEY, TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { tcpdumpsFor } from "../helpers/procs.js";

/** libfaketime's preload library, wherever this architecture's package put it. */
function faketimeLib(): string {
  const listed = execFileSync("dpkg", ["-L", "libfaketime"], { encoding: "utf8" }).split("\n");
  const lib = listed.find((l) => /\/faketime\/libfaketime\.so\.1$/.test(l));
  if (!lib || !existsSync(lib)) throw new Error("libfaketime.so.1 not found: apt-get install faketime (tools/test-deps.mjs)");
  return lib;
}

/** The agent under a wall clock of `clockFile`'s offset ("+3600", "-95", ...). */
function fakedAgent(args: string[], clockFile: string): Promise<AgentProc> {
  const env = [`LD_PRELOAD=${faketimeLib()}`, `FAKETIME_TIMESTAMP_FILE=${clockFile}`, "FAKETIME_NO_CACHE=1", "DONT_FAKE_MONOTONIC=1"];
  // `env` execs: the child's pid is the agent's.
  return startAgent(args, { command: ["env", ...env, process.execPath, AGENT_CLI] });
}

async function until<T>(what: string, get: () => T | undefined, timeoutMs: number): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const logOf = (a: AgentProc) => () => readFileSync(join(a.dir, "server-capture.log"), "utf8");

describe("agent under a stepped wall clock (libfaketime)", () => {
  let agent: AgentProc;
  let peer: TestPeer;
  let clock: string;
  /** The agent's wall clock minus ours, as written to the clock file. */
  let offsetMs = 0;
  const setClock = (ms: number) => {
    offsetMs = ms;
    writeFileSync(clock, `${ms >= 0 ? "+" : ""}${ms / 1000}\n`);
  };
  /** A request stamped with the agent's (faked) time, so it is never stale. */
  const ask = async (verb: "CAPTURE" | "STOP" | "STATUS" | "PING", device?: string, filename?: string): Promise<V1Answer> =>
    (await peer.request(agent.port, { verb, ...(device ? { device } : {}), ...(filename ? { filename } : {}), ts: Date.now() + offsetMs })).final;

  beforeAll(async () => {
    const work = tempDir("capsync-clock-");
    clock = join(work, "clock");
    setClock(0);
    agent = await fakedAgent(["--key-file", writeKey(work), "--interface", "lo", "--max-duration", "8s"], clock);
    peer = await TestPeer.open();
  });
  afterAll(async () => {
    peer?.close();
    await agent?.stop();
  });

  it("a +1 h then a −1 h step mid-capture neither ends nor extends it: --max-duration 8s stops it 8 s in", async () => {
    const dev = "127.0.0.91";
    const cap = await ask("CAPTURE", dev);
    expect(cap.code).toBe(200);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 500));

    setClock(3_600_000);
    await until("the forward step in the log", () => /wall clock stepped forward by 3600\.\d s/.test(logOf(agent)()), 5000);
    // The step reached the agent: its answers carry the new time.
    const ping = await ask("PING");
    expect(Math.abs(ping.ts - Date.now() - 3_600_000)).toBeLessThan(2000);
    let st = await ask("STATUS");
    expect(st.details.s0).toMatch(new RegExp(`^${dev.replace(/\./g, "\\.")},capturing,[0-7]$`));

    setClock(-3_600_000);
    await until("the backward step in the log", () => /wall clock stepped back by 7200\.\d s/.test(logOf(agent)()), 5000);
    st = await ask("STATUS");
    expect(st.details.s0).toMatch(/,capturing,[0-7]$/);
    expect(performance.now() - t0).toBeLessThan(8000);
    expect(tcpdumpsFor(dev)).toHaveLength(1);

    // Neither early (the +1 h) nor an hour late (the −1 h): at 8 s of real time, within a tick.
    await until("the max-duration stop", () => /capture for 127\.0\.0\.91 reached --max-duration 8s/.test(logOf(agent)()), 10_000);
    const elapsed = performance.now() - t0;
    console.log(`max-duration 8s under +1 h / -1 h steps: stopped ${(elapsed / 1000).toFixed(2)} s after the CAPTURE answer`);
    // The age counts from tcpdump's spawn, t0 from the answer after it listened: t0 is late, never early.
    expect(elapsed).toBeGreaterThanOrEqual(7000);
    expect(elapsed).toBeLessThan(8000 + 2500);
    const stop = await ask("STOP", dev, `CPE_device_${dev}_2026-12-06T01.00.00.000000.pcap`);
    expect(stop.code).toBe(200);
    expect(stop.details.stopped).toBe("max-duration");
    expect(tcpdumpsFor(dev)).toHaveLength(0);
    setClock(0);
  });
});

describe("clock skew between orchestrator and agent", () => {
  let agent: AgentProc;
  let client: AgentClient;
  let clock: string;
  const setClock = (s: string) => writeFileSync(clock, `${s}\n`);

  beforeAll(async () => {
    const work = tempDir("capsync-skew-");
    clock = join(work, "clock");
    setClock("+95");
    agent = await fakedAgent(["--key-file", writeKey(work), "--interface", "lo"], clock);
    client = await AgentClient.open({ mode: "v1", key: Buffer.from(TEST_KEY) });
  });
  afterAll(async () => {
    client?.close();
    await agent?.stop();
  });

  const ep = () => ({ host: "127.0.0.1", port: agent.port });

  it("an agent 95 s ahead refuses as stale, and both ends say which clock is off and by how much", async () => {
    const ans = await client.request(ep(), { verb: "CAPTURE", device: "127.0.0.92" });
    expect([ans.code, ans.details.reason]).toEqual([400, "stale"]);
    // The orchestrator's words, from its own measurement (the agent's ts against our send/receive midpoint).
    expect(ans.skew!.skewMs).toBeGreaterThan(94_000);
    expect(ans.skew!.skewMs).toBeLessThan(96_000);
    expect(refusalText(ans)).toMatch(new RegExp(`^agent 127\\.0\\.0\\.1:${agent.port} refused CAPTURE: stale — its clock is 9[45]\\.\\d s ahead of this host's; set the clock that is wrong right \\(NTP\\)$`));
    // The agent's words, in its answer and its log.
    expect(ans.details.msg).toMatch(/^timestamp \d+ is outside the 30000 ms window; agent time \d+: the sender's clock is 9[45]\.\d s behind this agent's$/);
    expect(Number(ans.details.skew_ms)).toBeGreaterThan(94_000);
    await until("the stale line in the agent's log", () => /stale: 1 request\(s\) from 127\.0\.0\.1 outside the 30s window \(the sender's clock is 9[45]\.\d s behind this agent's\), 1 answered/.test(logOf(agent)()), 5000);
    expect(tcpdumpsFor("127.0.0.92")).toHaveLength(0);
  });

  it("an agent 95 s behind: 'behind'; within the window the skew is measured and the command runs", async () => {
    setClock("-95");
    const ans = await client.request(ep(), { verb: "CAPTURE", device: "127.0.0.92" });
    expect(ans.code).toBe(400);
    expect(refusalText(ans)).toMatch(/refused CAPTURE: stale — its clock is 9[45]\.\d s behind this host's/);

    setClock("+5");
    const ping = await client.request(ep(), { verb: "PING" });
    expect(ping.code).toBe(200);
    expect(ping.skew!.skewMs).toBeGreaterThan(4500);
    expect(ping.skew!.skewMs).toBeLessThan(5500);
    expect(ping.skew!.uncertaintyMs).toBeLessThan(500);
  });
});

describe("the replay cache across a backward step", () => {
  let agent: AgentProc;
  let peer: TestPeer;
  let clock: string;

  beforeAll(async () => {
    const work = tempDir("capsync-replay-step-");
    clock = join(work, "clock");
    writeFileSync(clock, "+0\n");
    // A 2 s window: ids are kept 4 s on the monotonic clock.
    agent = await fakedAgent(["--key-file", writeKey(work), "--interface", "lo", "--window", "2s"], clock);
    peer = await TestPeer.open();
  });
  afterAll(async () => {
    peer?.close();
    await agent?.stop();
  });

  it("a CAPTURE datagram made fresh again by a −5 s step still meets its id: the old answer, never a second capture", async () => {
    const dev = "127.0.0.96";
    const cap = await peer.request(agent.port, { verb: "CAPTURE", device: dev });
    const t0 = performance.now();
    expect(cap.final.code).toBe(200);
    const stop = await peer.request(agent.port, { verb: "STOP", device: dev, filename: `CPE_device_${dev}_2026-12-06T03.00.00.000000.pcap` });
    expect(stop.final.code).toBe(200);
    expect(tcpdumpsFor(dev)).toHaveLength(0);
    writeFileSync(clock, "-5\n");
    // Past the 4 s of monotonic keeping (and the tick after it), while the −5 s step keeps the datagram fresh.
    await new Promise((r) => setTimeout(r, Math.max(0, 5500 - (performance.now() - t0))));
    const id = cap.final.id;
    const before = peer.received.length;
    peer.send(cap.sent, agent.port);
    const again = await peer.waitFor((all) => all.slice(before).find((b) => b.toString().includes(` ${id} `)));
    expect(again.toString()).toContain(` 200 CAPTURE ${dev} file=${cap.final.details.file}`);
    await new Promise((r) => setTimeout(r, 300));
    expect(tcpdumpsFor(dev)).toHaveLength(0);
    expect(performance.now() - t0).toBeLessThan(7000);
  });
});
