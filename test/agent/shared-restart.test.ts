// --capture-mode shared across an agent's death: the shared tcpdump outlives the agent (its spool is
// a file), a new agent started on the same capture dir adopts it and reads the spool on from where
// the dead one stopped. Devices in a network namespace behind a veth; numbered datagrams before the
// SIGKILL, while no agent runs, and after the restart: every device's file holds each of them
// exactly once, in order. Then the last STOP ends the adopted tcpdump and removes its spool.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { createTestHost, nsExists, type TestHost } from "../helpers/netns.js";
import { processesMatching } from "../helpers/procs.js";

const HOST = "198.18.76.1";
const DEVS = ["198.18.76.2", "198.18.76.3"];
let host: TestHost;
const agents: AgentProc[] = [];

beforeAll(() => {
  host = createTestHost("shk", HOST, DEVS[0]!);
  execFileSync("ip", ["-n", host.ns, "addr", "add", `${DEVS[1]}/24`, "dev", host.nsIf]);
});
afterAll(async () => {
  for (const a of agents) await a.stop("SIGKILL");
  for (const p of processesMatching((a) => a.some((w) => w.startsWith("spool-")) && a.includes(host.hostIf))) process.kill(p.pid, "SIGKILL");
  host?.remove();
  expect(nsExists(host.ns)).toBe(false);
});

function spools(dir: string): number[] {
  return processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && a.some((w) => w.startsWith("spool-"))).flatMap((p) => {
    try {
      return readlinkSync(`/proc/${p.pid}/cwd`).startsWith(dir) ? [p.pid] : [];
    } catch {
      return [];
    }
  });
}

async function send(from: number, to: number): Promise<void> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, HOST, () => r()));
  for (let i = from; i < to; i++) {
    for (const d of DEVS) {
      const p = Buffer.alloc(100, 0x2e);
      p.write(`seq=${i};`);
      await new Promise<void>((r) => s.send(p, 9, d, () => r()));
    }
    if (i % 4 === 3) await new Promise((r) => setTimeout(r, 1));
  }
  s.close();
}

/** The numbered datagrams (UDP to port 9) in a pcap file, in file order. */
function seqs(file: string): number[] {
  const b = readFileSync(file);
  const out: number[] = [];
  for (let off = 24; off + 16 <= b.length; off += 16 + b.readUInt32LE(off + 8)) {
    const f = b.subarray(off + 16, off + 16 + b.readUInt32LE(off + 8));
    if (f.readUInt16BE(12) !== 0x0800 || f[23] !== 17 || f.readUInt16BE(36) !== 9) continue;
    const m = /^seq=(\d+);/.exec(f.subarray(42, 58).toString("latin1"));
    if (m) out.push(Number(m[1]));
  }
  return out;
}

function records(file: string): number {
  const b = readFileSync(file);
  let n = 0;
  for (let off = 24; off + 16 <= b.length; off += 16 + b.readUInt32LE(off + 8)) n++;
  return n;
}

describe("shared capture across an agent restart", () => {
  it("a SIGKILLed agent's shared tcpdump is adopted: every datagram before, during and after the restart, once", async () => {
    const work = tempDir("capsync-shared-restart-");
    const dir = join(work, "captures");
    const args = ["--key-file", writeKey(work), "--interface", host.hostIf, "--capture-mode", "shared", "--min-free-disk", "0"];
    const first = await startAgent(args, { dir });
    agents.push(first);
    const peer = await TestPeer.open();
    try {
      for (const d of DEVS) expect((await peer.request(first.port, { verb: "CAPTURE", device: d })).final.code).toBe(200);
      const [pid] = spools(dir);
      expect(pid).toBeGreaterThan(0);
      await send(0, 200);
      first.child.kill("SIGKILL");
      await first.exited;
      // No agent: the shared tcpdump writes on into its spool.
      await send(200, 400);
      expect(spools(dir)).toEqual([pid]);

      const second = await startAgent(args, { dir });
      agents.push(second);
      await send(400, 600);
      await new Promise((r) => setTimeout(r, 150));
      for (const [i, d] of DEVS.entries()) {
        const stop = await peer.request(second.port, { verb: "STOP", device: d, filename: `CPE_device_${d}_2026-12-06T04.00.00.00000${i}.pcap` });
        expect(stop.final.code, JSON.stringify(stop.final.details)).toBe(200);
        expect(stop.final.details.stopped).toBeUndefined();
        const got = stop.final.details.files!.split(",").flatMap((f) => seqs(join(dir, f)));
        expect(got).toEqual(Array.from({ length: 600 }, (_, k) => k));
        // packets= counts every record in the files, those the dead agent wrote included.
        expect(stop.final.details.packets).toBe(String(stop.final.details.files!.split(",").reduce((n, f) => n + records(join(dir, f)), 0)));
      }
      expect(second.stderr() + readFileSync(join(dir, "server-capture.log"), "utf8")).toMatch(new RegExp(`adopted shared tcpdump pid ${pid}`));
      await expect.poll(() => spools(dir), { timeout: 5000 }).toEqual([]);
      await expect.poll(() => readdirSync(join(dir, ".incoming")), { timeout: 5000 }).toEqual([]);
    } finally {
      peer.close();
    }
  });
});
