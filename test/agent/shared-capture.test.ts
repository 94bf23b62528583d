// --capture-mode shared against tcpdump itself: devices in a network namespace behind a veth, one
// agent capturing them all through its one shared tcpdump, and next to it, for every device, a
// reference tcpdump with the same filter (`host <device>`) on the same interface, started before the
// CAPTURE and stopped after the STOP. Compared: the file header byte for byte, and every record
// stamped between the CAPTURE's answer and the STOP's request, in order — captured length, wire
// length and captured bytes identical, timestamps within 5 ms (each packet socket stamps its own
// copy: see expectSameRecords). Traffic: numbered UDP datagrams to each device (IPv4 and IPv6), the ICMP errors and ARP/ND
// they cause, and packets the agent's own address is in (so one packet goes to two devices).
// Then: a STOP of one device while the others keep receiving (theirs stay exact), the datagram
// sent just before that STOP in its file, the per-device ring bound (files identical to tcpdump's
// own -C/-W ring), and 1,000 sessions on one agent with one tcpdump.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatRequest, newRequestId, parseAnswer, type V1Answer } from "@capsync/protocol";
import { AGENT_CLI, TEST_KEY, TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { createTestHost, linkExists, nsExists, type TestHost } from "../helpers/netns.js";
import { processesMatching } from "../helpers/procs.js";

const V4 = ["198.18.77.2", "198.18.77.3", "198.18.77.4"];
const V6 = "2001:db8:77::2";
const HOST4 = "198.18.77.1";
const HOST6 = "2001:db8:77::1";
const DEVICES = [...V4, V6, HOST4];
const CPE = (dev: string, i = 0) => `CPE_device_${dev.replace(/:/g, "-")}_2026-12-06T03.00.00.${String(i).padStart(6, "0")}.pcap`;

let host: TestHost;
const agents: AgentProc[] = [];
const refs: ChildProcess[] = [];

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: "ignore" });
}

beforeAll(() => {
  host = createTestHost("shr", HOST4, V4[0]!);
  for (const a of V4.slice(1)) ip("-n", host.ns, "addr", "add", `${a}/24`, "dev", host.nsIf);
  ip("addr", "add", `${HOST6}/64`, "dev", host.hostIf, "nodad");
  ip("-n", host.ns, "addr", "add", `${V6}/64`, "dev", host.nsIf, "nodad");
  // Neighbours resolved now, so no ARP/ND happens at a window's edge (it would be in one file only).
  for (const a of V4) execFileSync("ping", ["-c", "1", "-W", "2", a], { stdio: "ignore" });
  execFileSync("ping", ["-6", "-c", "1", "-W", "2", V6], { stdio: "ignore" });
});

afterAll(async () => {
  for (const r of refs) if (r.exitCode === null) r.kill("SIGKILL");
  for (const a of agents) await a.stop();
  host?.remove();
  expect(nsExists(host.ns)).toBe(false);
  expect(linkExists(host.hostIf)).toBe(false);
});

/** A per-device tcpdump as the agent runs one (same options, same filter), listening when this resolves. */
async function refTcpdump(file: string, filter: string[], extra: string[] = []): Promise<{ stop: () => Promise<void> }> {
  // -B: a 16 MB kernel buffer, so the reference itself drops nothing on a loaded machine (it writes the same records).
  const p = spawn("tcpdump", ["-i", host.hostIf, "-U", "--immediate-mode", "-n", "-B", "16384", "-w", file, "-Z", "root", ...extra, ...filter], { stdio: ["ignore", "ignore", "pipe"] });
  refs.push(p);
  let err = "";
  await new Promise<void>((res, rej) => {
    p.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      if (err.includes("listening on")) res();
    });
    p.once("exit", (c) => rej(new Error(`reference tcpdump exited ${c}: ${err}`)));
  });
  const exited = new Promise<void>((r) => p.once("exit", () => r()));
  return {
    stop: async () => {
      // Everything sent is long queued by now; SIGINT flushes it (-U) and exits.
      p.kill("SIGINT");
      await exited;
      expect(err).toMatch(/(^|\n)0 packets dropped by kernel/);
    },
  };
}

/** The shared tcpdumps an agent with capture dir `dir` runs (their cwd is its incoming dir). */
function spoolsOf(dir: string): { pid: number; argv: string[] }[] {
  return processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && a.some((w) => w.startsWith("spool-"))).filter((p) => {
    try {
      return readlinkSync(`/proc/${p.pid}/cwd`).startsWith(dir);
    } catch {
      return false;
    }
  });
}

/** Every record of a pcap file as its raw bytes (header + data), and the file header. */
function records(file: string): { header: Buffer; recs: Buffer[] } {
  const b = readFileSync(file);
  const recs: Buffer[] = [];
  let off = 24;
  while (off + 16 <= b.length) {
    const len = 16 + b.readUInt32LE(off + 8);
    recs.push(b.subarray(off, off + len));
    off += len;
  }
  expect(off, `${file}: trailing bytes`).toBe(b.length);
  return { header: b.subarray(0, 24), recs };
}

/**
 * The same records in the same order: captured and wire lengths and captured bytes identical; the
 * timestamps within TS_SLACK_US. Two packet sockets stamp a packet each on its own delivery (the
 * kernel stamps the skb once only when something asked for timestamps): measured 1-40 µs apart
 * here, so they are compared to that slack, not to the bit. Returns the record count.
 */
function expectSameRecords(got: string, want: string, window?: { fromUs: number; toUs: number }): number {
  const tsUs = (r: Buffer) => r.readUInt32LE(0) * 1e6 + r.readUInt32LE(4);
  const inWindow = (f: { header: Buffer; recs: Buffer[] }) => (window ? { header: f.header, recs: f.recs.filter((r) => tsUs(r) >= window.fromUs && tsUs(r) <= window.toUs) } : f);
  const a = inWindow(records(got));
  const b = inWindow(records(want));
  expect(a.header.equals(b.header), "pcap file headers").toBe(true);
  let maxSkew = 0;
  const firstDiff = a.recs.findIndex((r, i) => {
    const w = b.recs[i];
    if (!w || !r.subarray(8).equals(w.subarray(8))) return true;
    maxSkew = Math.max(maxSkew, Math.abs(tsUs(r) - tsUs(w)));
    return false;
  });
  expect({ file: got, records: a.recs.length, firstDiff }).toEqual({ file: got, records: b.recs.length, firstDiff: a.recs.length === b.recs.length ? -1 : Math.min(a.recs.length, b.recs.length) });
  expect(maxSkew, `${got}: timestamps apart by up to ${maxSkew} µs`).toBeLessThanOrEqual(TS_SLACK_US);
  return a.recs.length;
}

/** Sequence numbers of the numbered datagrams (UDP to port 9, payload "seq=<n>;") in a file; not the ICMP errors quoting them. */
function seqs(file: string): number[] {
  return records(file).recs.flatMap((r) => {
    const f = r.subarray(16);
    const v6 = f.readUInt16BE(12) === 0x86dd;
    const udp = v6 ? (f[20] === 17 ? 54 : -1) : f.readUInt16BE(12) === 0x0800 && f[23] === 17 ? 14 + (f[14]! & 15) * 4 : -1;
    if (udp < 0 || f.readUInt16BE(udp + 2) !== 9) return [];
    const m = /^seq=(\d+);/.exec(f.subarray(udp + 8, udp + 24).toString("latin1"));
    return m ? [Number(m[1])] : [];
  });
}

async function socket(v6: boolean): Promise<Socket> {
  const s = createSocket(v6 ? "udp6" : "udp4");
  await new Promise<void>((r) => s.bind(0, v6 ? HOST6 : HOST4, () => r()));
  return s;
}

/** Datagrams seq=from..to-1 to each of `targets`, interleaved, paced so no kernel ring overflows. */
async function traffic(targets: string[], from: number, to: number): Promise<void> {
  const s4 = await socket(false);
  const s6 = await socket(true);
  for (let i = from; i < to; i++) {
    for (const t of targets) {
      const payload = Buffer.alloc(200, 0x2e);
      payload.write(`seq=${i};dev=${t};`);
      await new Promise<void>((r) => (t.includes(":") ? s6 : s4).send(payload, 9, t, () => r()));
    }
    if (i % 4 === 3) await new Promise((r) => setTimeout(r, 1));
  }
  s4.close();
  s6.close();
}

const TS_SLACK_US = 5_000;
const settle = () => new Promise((r) => setTimeout(r, 150));

describe("shared capture: one tcpdump, every device's file exactly its own tcpdump's", () => {
  it("byte-identical records per device; a STOP of one leaves the others exact; its last datagram is in", async () => {
    const work = tempDir("capsync-shared-");
    const agent = await startAgent(["--key-file", writeKey(work), "--interface", host.hostIf, "--capture-mode", "shared", "--min-free-disk", "0"], { dir: join(work, "captures") });
    agents.push(agent);
    const ref = new Map<string, { file: string; stop: () => Promise<void> }>();
    for (const d of DEVICES) {
      const file = join(work, `ref-${d.replace(/:/g, "-")}.pcap`);
      ref.set(d, { file, ...(await refTcpdump(file, ["host", d])) });
    }
    const peer = await TestPeer.open();
    try {
      // Compared from each CAPTURE's answer to its STOP: the reference ran a little longer on both
      // sides, and ARP/ND refreshes happen whenever the kernel likes (they are in both in between).
      const window = new Map<string, { fromUs: number; toUs: number }>();
      for (const d of DEVICES) {
        const cap = await peer.request(agent.port, { verb: "CAPTURE", device: d });
        expect(cap.final.code, JSON.stringify(cap.final.details)).toBe(200);
        window.set(d, { fromUs: Date.now() * 1000, toUs: Infinity });
      }
      const stopAt = (d: string) => (window.get(d)!.toUs = Date.now() * 1000);
      // One tcpdump for all of them, without a filter; none per device.
      const mine = spoolsOf(agent.dir);
      expect(mine.length).toBe(1);
      expect(mine[0]!.argv.at(-1)).not.toBe("host");
      // Per device only the reference tcpdump filters `host <device>`.
      for (const d of DEVICES) expect(processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && a.at(-1) === d).length).toBe(1);

      await traffic(V4.concat(V6), 0, 300);
      await settle();

      // STOP the first device right after its last datagram, while the others keep receiving.
      const first = V4[0]!;
      const others = traffic(V4.slice(1).concat(V6), 300, 600);
      await traffic([first], 300, 320);
      stopAt(first);
      const stop = await peer.request(agent.port, { verb: "STOP", device: first, filename: CPE(first) });
      expect(stop.final.code, JSON.stringify(stop.final.details)).toBe(200);
      await ref.get(first)!.stop();
      await others;
      await settle();
      const firstFile = join(agent.dir, stop.final.details.file!);
      expect(seqs(firstFile).at(-1)).toBe(319);
      expect(stop.final.details.packets).toBe(String(records(firstFile).recs.length));
      expectSameRecords(firstFile, ref.get(first)!.file, window.get(first));

      for (const [i, d] of DEVICES.slice(1).entries()) {
        stopAt(d);
        const r = await peer.request(agent.port, { verb: "STOP", device: d, filename: CPE(d, i + 1) });
        expect(r.final.code, JSON.stringify(r.final.details)).toBe(200);
        await ref.get(d)!.stop();
        const file = join(agent.dir, r.final.details.files!.split(",")[0]!);
        const n = expectSameRecords(file, ref.get(d)!.file, window.get(d));
        if (d === HOST4) {
          // The agent's own address is in every IPv4 datagram: 3 x 300 + 2 x 300 after the first's STOP, at least.
          expect(n).toBeGreaterThanOrEqual(1500);
        } else {
          // Every datagram, in order, none lost.
          expect(seqs(file)).toEqual(Array.from({ length: 600 }, (_, k) => k));
        }
      }
      // The last session gone, its tcpdump is gone and its spool removed; only device files remain.
      await expect.poll(() => spoolsOf(agent.dir).length, { timeout: 5000 }).toBe(0);
      await expect.poll(() => readdirSync(join(agent.dir, ".incoming")), { timeout: 5000 }).toEqual([]);
    } finally {
      peer.close();
    }
  });

  it("a device's ring (-C 1 -W 3) rotates exactly as its own tcpdump's: same files, at most 3, newest kept", async () => {
    const work = tempDir("capsync-shared-ring-");
    const agent = await startAgent(["--key-file", writeKey(work), "--interface", host.hostIf, "--capture-mode", "shared", "--min-free-disk", "0", "--ring-size", "1", "--ring-files", "3"], { dir: join(work, "captures") });
    agents.push(agent);
    const dev = V4[1]!;
    const refBase = join(work, "ref.pcap");
    const r = await refTcpdump(refBase, ["host", dev], ["-C", "1", "-W", "3"]);
    const peer = await TestPeer.open();
    try {
      expect((await peer.request(agent.port, { verb: "CAPTURE", device: dev })).final.code).toBe(200);
      // ~4.5 MB: the ring turns more than once.
      const s = await socket(false);
      for (let i = 0; i < 4200; i++) {
        const p = Buffer.alloc(1000, 0x2e);
        p.write(`seq=${i};`);
        await new Promise<void>((res) => s.send(p, 9, dev, () => res()));
        if (i % 3 === 2) await new Promise((res) => setTimeout(res, 1));
      }
      s.close();
      await settle();
      const stop = await peer.request(agent.port, { verb: "STOP", device: dev, filename: CPE(dev) });
      expect(stop.final.code).toBe(200);
      await r.stop();
      const files = stop.final.details.files!.split(",");
      expect(files.length).toBe(3);
      for (const f of files) expect(statSync(join(agent.dir, f)).size).toBeLessThanOrEqual(1_000_000 + 24 + 16 + 1100);
      // tcpdump's own ring, oldest first by first packet: the same three files, byte for byte.
      const refFiles = readdirSync(work)
        .filter((f) => /^ref\.pcap\d$/.test(f))
        .map((f) => join(work, f))
        .sort((a, b) => records(a).recs[0]!.readUInt32LE(0) * 1e6 + records(a).recs[0]!.readUInt32LE(4) - (records(b).recs[0]!.readUInt32LE(0) * 1e6 + records(b).recs[0]!.readUInt32LE(4)));
      expect(refFiles.length).toBe(3);
      // Same records in the same files: the rotation points (sizes only) are tcpdump's.
      files.forEach((f, i) => expectSameRecords(join(agent.dir, f), refFiles[i]!));
      const all = files.flatMap((f) => seqs(join(agent.dir, f)));
      expect(all.at(-1)).toBe(4199);
    } finally {
      peer.close();
    }
  });
});

/** Many requests at once on one socket, each answer parsed once (TestPeer re-reads all answers per wait). */
async function bulk(port: number, reqs: { verb: "CAPTURE" | "STOP"; device: string; filename?: string }[]): Promise<V1Answer[]> {
  const key = Buffer.from(TEST_KEY);
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const waiting = new Map<string, (a: V1Answer) => void>();
  s.on("message", (m) => {
    const a = parseAnswer(m, [key]);
    if (a.ok && a.value.code !== 100) waiting.get(a.value.id)?.(a.value);
  });
  const out: V1Answer[] = [];
  try {
    for (let i = 0; i < reqs.length; i += 100) {
      const part = reqs.slice(i, i + 100).map(
        (q) =>
          new Promise<V1Answer>((res, rej) => {
            const id = newRequestId();
            const t = setTimeout(() => rej(new Error(`${q.verb} ${q.device}: no answer`)), 20_000);
            waiting.set(id, (a) => {
              clearTimeout(t);
              res(a);
            });
            s.send(formatRequest({ id, ts: Date.now(), ...q }, key), port, "127.0.0.1");
          }),
      );
      out.push(...(await Promise.all(part)));
    }
  } finally {
    s.close();
  }
  return out;
}

describe("shared capture at fleet size", () => {
  it("1,000 sessions are answered 200 with one tcpdump; the next is 503 max-sessions naming the limit and the count", async () => {
    const work = tempDir("capsync-shared-1000-");
    const agent = await startAgent(["--key-file", writeKey(work), "--interface", host.hostIf, "--capture-mode", "shared", "--min-free-disk", "0", "--max-sessions", "1000", "--log-level", "warn"], { dir: join(work, "captures") });
    agents.push(agent);
    const devs = Array.from({ length: 1000 }, (_, i) => `10.77.${i >> 8}.${i & 255}`);
    const t0 = performance.now();
    const caps = await bulk(agent.port, devs.map((device) => ({ verb: "CAPTURE", device })));
    const capMs = performance.now() - t0;
    expect(caps.filter((a) => a.code === 200).length).toBe(1000);
    expect(spoolsOf(agent.dir).length).toBe(1);
    expect(processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && devs.includes(a.at(-1)!)).length).toBe(0);
    const [over] = await bulk(agent.port, [{ verb: "CAPTURE", device: "10.77.9.9" }]);
    expect([over!.code, over!.details.reason, over!.details.msg]).toEqual([503, "max-sessions", "max-sessions 1000: 1000 captures already running"]);
    const t1 = performance.now();
    const stops = await bulk(agent.port, devs.map((device, i) => ({ verb: "STOP", device, filename: CPE(device, i) })));
    const stopMs = performance.now() - t1;
    expect(stops.filter((a) => a.code === 200).length).toBe(1000);
    // Each device got its file (a pcap header, no packet: nothing was sent to 10.77/16).
    expect(readdirSync(agent.dir).filter((f) => f.startsWith("OVOC_device_10.77.")).length).toBe(1000);
    console.log(`1000 CAPTUREs in ${capMs.toFixed(0)} ms, 1000 STOPs in ${stopMs.toFixed(0)} ms`);
  });
});

describe("--capture-mode and --max-sessions on the command line", () => {
  it("an unknown mode or a limit out of range is bad input: exit 2, the allowed values named", () => {
    const mode = spawnSync(process.execPath, [AGENT_CLI, "--capture-mode", "pooled", "--key-file", "/nonexistent"], { encoding: "utf8" });
    expect([mode.status, mode.stderr.trim()]).toEqual([2, "error: option '--capture-mode <mode>' argument 'pooled' is invalid. Allowed choices are shared, per-device."]);
    const max = spawnSync(process.execPath, [AGENT_CLI, "--max-sessions", "100001"], { encoding: "utf8" });
    expect([max.status, max.stderr.trim()]).toEqual([2, "error: option '--max-sessions <n>' argument '100001' is invalid. --max-sessions must be an integer from 1 to 100000, got '100001'"]);
  });
});
