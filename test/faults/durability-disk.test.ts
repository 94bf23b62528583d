// Issue 19 item 5: the disk guard at line rate. The agent's capture dir is a small tmpfs mounted (and
// unmounted) here; a sender in a network namespace made here pushes 65 kB datagrams over a veth pair
// (MTU 65535: no fragments) as fast as it can, bounded in bytes and time, while this process samples
// the free space every 5 ms. A veth, not lo: every other tcpdump on the machine listens on lo, and
// each of them filters every loopback packet, which caps loopback at a fraction of line rate.
// - a ring smaller than the disk: tcpdump's own rotation bounds it, the disk never fills, nothing is
//   stopped, and the newest packets are the ones kept;
// - rings larger than the disk: the watchdog, sized from the measured write rate, stops the capture
//   before the disk reaches --min-free-disk (a 1 s tick with a fixed margin was outrun at once).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawn } from "node:child_process";
import { mkdirSync, rmSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { encodeSpecWire } from "@capsync/protocol";
import { TestPeer, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { createTestHost, type TestHost } from "../helpers/netns.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { tcpdumpsUnder } from "../helpers/procs.js";
import { agentOn, logOf } from "../helpers/durability.js";

const run = promisify(execFile);
const work = tempDir("capsync-durable-disk-");
const key = writeKey(work);
const mounts: string[] = [];
const agents: AgentProc[] = [];
const DATAGRAM = 65_000;
/** Nobody listens there: the capture is at the interface, the datagrams need no receiver. */
const PORT = 9;
let host: TestHost;
let DEV = "";

beforeAll(async () => {
  host = createTestHost("dsk", "198.51.100.9", "198.51.100.10");
  await run("ip", ["link", "set", host.hostIf, "mtu", "65535"]);
  await run("ip", ["-n", host.ns, "link", "set", host.nsIf, "mtu", "65535"]);
  DEV = host.nsAddr;
});

async function tmpfs(name: string, size: string): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  await run("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, `csdur-${name}`, dir]);
  mounts.push(dir);
  return dir;
}
const freeMb = (dir: string) => {
  const s = statfsSync(dir);
  return (s.bavail * s.bsize) / 1048576;
};

/**
 * Datagrams of DATAGRAM bytes ("seq-<n>-" then filler) from a child process, as fast as loopback
 * takes them, until `maxMb` or `maxMs`; resolves with what it sent.
 */
/** UDP datagrams from the namespace until maxMb or maxMs; `mbPerS` paces them (0: as fast as it can). */
function blast(maxMb: number, maxMs: number, mbPerS = 0): Promise<{ seq: number; mb: number; ms: number }> {
  const script = `
    import { createSocket } from "node:dgram";
    const [from, to, port, maxMb, maxMs, size, mbPerS] = process.argv.slice(1);
    const s = createSocket("udp4");
    await new Promise((r) => s.bind(0, from, r));
    const t0 = performance.now(); let bytes = 0, seq = 0, inflight = 0;
    while (bytes < maxMb * 1048576 && performance.now() - t0 < Number(maxMs)) {
      const b = Buffer.alloc(Number(size), 0x61);
      b.write("seq-" + String(seq++).padStart(8, "0") + "-", 0);
      inflight++;
      s.send(b, Number(port), to, () => inflight--);
      bytes += Number(size);
      if (inflight > 64) await new Promise((r) => setImmediate(r));
      while (Number(mbPerS) > 0 && bytes / 1048576 > (Number(mbPerS) * (performance.now() - t0)) / 1000) await new Promise((r) => setImmediate(r));
    }
    while (inflight) await new Promise((r) => setImmediate(r));
    process.stdout.write(JSON.stringify({ seq, mb: bytes / 1048576, ms: performance.now() - t0 }));
    s.close();`;
  const child = spawn("ip", ["netns", "exec", host.ns, process.execPath, "--input-type=module", "-e", script, host.nsAddr, host.hostAddr, String(PORT), String(maxMb), String(maxMs), String(DATAGRAM), String(mbPerS)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => child.once("exit", (c) => (c === 0 ? resolve(JSON.parse(out)) : reject(new Error(`sender exited ${c}`)))));
}

/** The lowest free space seen every 5 ms until `stop` resolves. */
async function sampleFree(dir: string, stop: Promise<unknown>): Promise<number> {
  let min = freeMb(dir);
  let done = false;
  void stop.finally(() => (done = true));
  while (!done) {
    min = Math.min(min, freeMb(dir));
    await new Promise((r) => setTimeout(r, 5));
  }
  return Math.min(min, freeMb(dir));
}

const seqOf = (payload: Buffer) => Number(/^seq-(\d+)-/.exec(payload.toString("latin1", 0, 16))![1]);

afterEach(async () => {
  for (const a of agents.splice(0)) if (a.child.exitCode === null) await a.stop("SIGINT");
  for (const t of tcpdumpsUnder(DEV, work)) process.kill(t.pid, "SIGKILL");
});
afterAll(async () => {
  host?.remove();
  for (const m of mounts.reverse()) await run("umount", [m]).catch(() => run("umount", ["-l", m]));
  rmSync(work, { recursive: true, force: true });
});

describe("disk guard at line rate", () => {
  it("a ring smaller than the disk: tcpdump's rotation bounds it at >= 100 MB/s, the disk never fills, the newest packets are kept", async () => {
    const dir = await tmpfs("ring", "64m");
    const dev = DEV;
    const a = await agentOn(dir, key, ["--min-free-disk", "4", "--interface", host.hostIf]);
    agents.push(a);
    const peer = await TestPeer.open();
    try {
      // 4 files of 8 MB (32 MB of the 64), and a kernel buffer that keeps up with the sender.
      const spec = encodeSpecWire({ limits: { maxSizeMb: 32, ringFiles: 4, bufferMb: 32 } });
      const cap = await peer.request(a.port, { verb: "CAPTURE", device: dev, spec });
      expect(cap.final.code, JSON.stringify(cap.final.details)).toBe(200);
      // 300 MB/s: above the 100 MB/s the guard must keep up with, below what this 2-core machine's
      // kernel buffer can take without dropping the newest datagrams (unpaced loopback runs ~1.2 GB/s).
      const sending = blast(400, 3000, 300);
      const minFree = await sampleFree(dir, sending);
      const sent = await sending;
      const stop = await peer.request(a.port, { verb: "STOP", device: dev, filename: `CPE_device_${dev}_2026-12-06T10.00.00.000000.pcap` });
      expect(stop.final.code, JSON.stringify(stop.final.details)).toBe(200);
      // Never stopped by the guard: the ring alone bounded it.
      expect(stop.final.details.stopped).toBeUndefined();
      expect(logOf(dir)).not.toContain("stopping all captures");
      const files = stop.final.details.files!.split(",");
      expect(files).toHaveLength(4);
      const packets = Number(stop.final.details.packets);
      const writtenMbS = (packets * (DATAGRAM + 42)) / 1048576 / (sent.ms / 1000);
      expect(writtenMbS, `tcpdump wrote ${writtenMbS.toFixed(0)} MB/s (sent ${(sent.mb / (sent.ms / 1000)).toFixed(0)} MB/s, ${packets} of ${sent.seq} packets)`).toBeGreaterThanOrEqual(100);
      expect(minFree).toBeGreaterThan(4);
      expect(Number(stop.final.details.bytes)).toBeLessThanOrEqual(32 * 1_000_000 + 4 * 262_144);
      // Newest kept: the last datagram sent is in the newest file; the first ones rotated away.
      const newest = readPcap(join(dir, files.at(-1)!)).packets.filter((p) => p.dport === PORT).map((p) => seqOf(p.payload!));
      expect(newest.at(-1)).toBe(sent.seq - 1);
      const oldest = readPcap(join(dir, files[0]!)).packets.filter((p) => p.dport === PORT).map((p) => seqOf(p.payload!));
      expect(oldest[0]).toBeGreaterThan(0);
      console.log(
        `[durability] ring at line rate: sent ${sent.mb.toFixed(0)} MB in ${sent.ms.toFixed(0)} ms (${(sent.mb / (sent.ms / 1000)).toFixed(0)} MB/s), ` +
          `tcpdump wrote ${writtenMbS.toFixed(0)} MB/s into a 64 MB tmpfs; lowest free ${minFree.toFixed(1)} MB; kept seq ${oldest[0]}..${newest.at(-1)} in ${stop.final.details.bytes} B`,
      );
    } finally {
      peer.close();
    }
  });

  it("rings larger than the disk: the rate-sized watchdog stops the capture before --min-free-disk is reached, files valid, new captures refused", async () => {
    const dir = await tmpfs("guard", "160m");
    const dev = DEV;
    // The default ring (10 x 100 MB) is far more than the disk: only the watchdog stands in the way.
    const a = await agentOn(dir, key, ["--min-free-disk", "8", "--interface", host.hostIf]);
    agents.push(a);
    const peer = await TestPeer.open();
    try {
      const cap = await peer.request(a.port, { verb: "CAPTURE", device: dev, spec: encodeSpecWire({ limits: { bufferMb: 32 } }) });
      expect(cap.final.code, JSON.stringify(cap.final.details)).toBe(200);
      // 250 MB/s (2 Gbit/s): a line rate the rate-sized watchdog can see coming on a 160 MB disk. Far
      // faster writers need a ring that fits the disk: only tcpdump's own rotation is quicker than them.
      const sending = blast(600, 4000, 250);
      const minFree = await sampleFree(dir, sending);
      const sent = await sending;
      expect(sent.mb / (sent.ms / 1000), "sender rate MB/s").toBeGreaterThanOrEqual(100);
      // Never below the minimum, let alone full (a full disk: tcpdump's write fails, the file is torn).
      expect(minFree).toBeGreaterThanOrEqual(8);
      const line = /free disk ([\d.]+) MB falling ([\d.]+) MB\/s: < 8 MB within (\d+) ms: stopping all captures, refusing new ones/.exec(logOf(dir));
      expect(line, logOf(dir).slice(-2000)).not.toBeNull();
      const refused = await peer.request(a.port, { verb: "CAPTURE", device: "198.51.100.11" });
      expect(refused.final.code).toBe(503);
      expect(refused.final.details.reason).toBe("disk-low");
      const stop = await peer.request(a.port, { verb: "STOP", device: dev, filename: `CPE_device_${dev}_2026-12-06T10.00.00.000000.pcap` });
      expect(stop.final.code, JSON.stringify(stop.final.details)).toBe(200);
      expect(stop.final.details.stopped).toBe("disk-low");
      const seqs = stop.final.details.files!.split(",").flatMap((f) => readPcap(join(dir, f)).packets.filter((p) => p.dport === PORT).map((p) => seqOf(p.payload!)));
      expect(seqs.length).toBeGreaterThan(100);
      expect(seqs.every((v, i) => i === 0 || v > seqs[i - 1]!)).toBe(true);
      console.log(
        `[durability] watchdog at line rate: sent ${sent.mb.toFixed(0)} MB at ${(sent.mb / (sent.ms / 1000)).toFixed(0)} MB/s into a 160 MB tmpfs (min free 8 MB); ` +
          `tripped at ${line![1]} MB free, measured ${line![2]} MB/s; lowest free ${minFree.toFixed(1)} MB; ${seqs.length} packets kept, file valid`,
      );
    } finally {
      peer.close();
    }
  });
});
