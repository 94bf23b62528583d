// Shared by the durability tests (test/faults/durability-*.test.ts): agents on a given capture dir,
// process checks that tell a zombie from a running process, bounded traffic with sequence numbers.
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "./agent-proc.js";
import { tcpdumpsUnder } from "./procs.js";
import { readPcap } from "./pcap-lite.js";
import { isRunning } from "@capsync/server-capture/tcpdump";

export const STATE_FILE = "server-capture-state.json";
export const logPath = (dir: string) => join(dir, "server-capture.log");
export const logOf = (dir: string) => {
  try {
    return readFileSync(logPath(dir), "utf8");
  } catch {
    return "";
  }
};

/** The real agent on `dir`, capturing on lo, logging into the dir (where the tests read it). */
export function agentOn(dir: string, key: string, extra: string[] = [], opts: { command?: string[] } = {}): Promise<AgentProc> {
  return startAgent(["--key-file", key, "--interface", "lo", "--min-free-disk", "0", "--log-file", logPath(dir), ...extra], { dir, ...opts });
}

/**
 * One test file's work dir and key, the agents and peers its tests start, and `cleanup()` for
 * afterEach: peers closed, agents stopped (SIGINT: captures end), and any tcpdump of `devices` left
 * under the work dir killed (an orphan outlives its agent by design).
 */
export function durableFixture(prefix: string, devices: readonly string[]) {
  const work = tempDir(prefix);
  const key = writeKey(work);
  const agents: AgentProc[] = [];
  const peers: TestPeer[] = [];
  return {
    work,
    key,
    async agent(dir: string, extra: string[] = [], command?: string[]): Promise<AgentProc> {
      const a = await agentOn(dir, key, extra, command ? { command } : {});
      agents.push(a);
      return a;
    },
    async peer(): Promise<TestPeer> {
      const p = await TestPeer.open();
      peers.push(p);
      return p;
    },
    async cleanup(): Promise<void> {
      for (const p of peers.splice(0)) p.close();
      for (const a of agents.splice(0)) if (a.child.exitCode === null) await a.stop("SIGINT");
      for (const d of devices) for (const t of tcpdumpsUnder(d, work)) process.kill(t.pid, "SIGKILL");
    },
  };
}

export async function until<T>(what: string, f: () => T | undefined | false, timeoutMs: number, stepMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Running, not a zombie waiting to be reaped (an orphan's parent may never reap it here). */
export const running = isRunning;

/** `count` datagrams from 127.0.0.1 to `to`:`port`, payload `<label>-<i>`, `gapMs` apart. */
export async function traffic(to: string, port: number, label: string, count: number, gapMs = 5): Promise<void> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  for (let i = 0; i < count; i++) {
    await new Promise<void>((r) => s.send(Buffer.from(`${label}-${i}`), port, to, () => r()));
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  s.close();
}

/** UDP payloads to `port` in a pcap file, in file order. */
export function payloads(file: string, port: number): string[] {
  return readPcap(file)
    .packets.filter((p) => p.proto === 17 && p.dport === port)
    .map((p) => p.payload!.toString("latin1"));
}

export interface StateShape {
  devices: { device: string; session?: { state: string; pid?: number; stopReason?: string; tmpName: string; packets?: number }; tasks: { task: string; detail?: string }[] }[];
}
export const stateOf = (dir: string) => JSON.parse(readFileSync(join(dir, STATE_FILE), "utf8")) as StateShape;
