// The agent's ring, the default since captures wait for their alarm however long it takes: a real
// server-capture with real tcpdump, fed more than files x size of numbered datagrams on loopback.
// At most W files stay on disk, the newest packets before the STOP are all in them, and the STOP
// answer lists every file oldest first, numbered in time order even after tcpdump's slots wrapped.
// The capture dir's parent is closed to the tcpdump user (mkdtemp 0700): the ring still rotates
// as that user.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TestPeer, startAgent, tempDir, udpSink, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { NUMBERED_PAYLOAD as PAYLOAD, numberedTraffic as send, seqOf } from "../helpers/numbered.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { tcpdumpsFor } from "../helpers/procs.js";

const DEV = "127.0.0.215";
const DEV_DEFAULT = "127.0.0.216";
const CPE = (dev: string) => `CPE_device_${dev}_2026-11-23T10.00.00.000000.pcap`;
// 4000 x ~1042 bytes on the wire: ~4.2 MB, more than the 3 x 1 MB the ring keeps.
const SENT = 4000;

const agents: AgentProc[] = [];
afterAll(async () => {
  for (const a of agents) await a.stop();
});

function seqs(file: string): number[] {
  return readPcap(file).packets.flatMap((p) => seqOf(p.payload) ?? []);
}

const uid = (pid: number) => Number(/^Uid:\s+\d+\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

describe("server-capture ring (tcpdump -C/-W)", () => {
  it("-C 1 -W 3 fed ~4.2 MB: at most 3 files, the last datagrams before STOP present, files in time order", async () => {
    const dir = join(tempDir("capsync-ring-closed-"), "captures");
    const agent = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo", "--ring-size", "1", "--ring-files", "3"], { dir });
    agents.push(agent);
    const sink = await udpSink(DEV);
    const peer = await TestPeer.open();
    try {
      const cap = await peer.request(agent.port, { verb: "CAPTURE", device: DEV });
      expect(cap.final.code, JSON.stringify(cap.final.details)).toBe(200);
      const [t] = tcpdumpsFor(DEV);
      expect(t!.argv).toEqual(expect.arrayContaining(["-C", "1", "-W", "3"]));
      await send(DEV, sink.port, 0, SENT);
      // While capturing: tcpdump rotated as the tcpdump user, and only its 3 slots exist.
      const incoming = readdirSync(join(dir, ".incoming")).filter((f) => f.startsWith("tmp_device_"));
      expect(incoming.length).toBe(3);
      expect(uid(t!.pid)).not.toBe(0);

      const stop = await peer.request(agent.port, { verb: "STOP", device: DEV, filename: CPE(DEV) });
      expect(stop.final.code, JSON.stringify(stop.final.details)).toBe(200);
      const files = stop.final.details.files!.split(",");
      expect(files).toEqual([0, 1, 2].map((i) => `OVOC_device_${DEV}_2026-11-23T10.00.00.000000-${i}.pcap`));
      // Disk bounded: 3 files of 1 MB, each at most one packet over.
      const sizes = files.map((f) => statSync(join(dir, f)).size);
      for (const s of sizes) expect(s).toBeLessThanOrEqual(1_000_000 + 24 + 16 + 2 * PAYLOAD);
      expect(Number(stop.final.details.bytes)).toBe(sizes.reduce((a, b) => a + b, 0));

      const perFile = files.map((f) => seqs(join(dir, f)));
      for (const s of perFile) expect(s.length).toBeGreaterThan(0);
      // Time order: each file ends before the next begins; within a file, ascending.
      for (let i = 0; i < perFile.length; i++) {
        expect(perFile[i]).toEqual([...perFile[i]!].sort((a, b) => a - b));
        if (i > 0) expect(perFile[i]![0]!).toBeGreaterThan(perFile[i - 1]!.at(-1)!);
      }
      const all = perFile.flat();
      // The newest datagrams before the STOP are kept, without a gap; the oldest went with the ring.
      expect(all.at(-1)).toBe(SENT - 1);
      const first = all[0]!;
      expect(first).toBeGreaterThan(0);
      // Strictly ascending across the files (the kernel may drop a datagram under load; the ring never reorders).
      for (let i = 1; i < all.length; i++) expect(all[i]!).toBeGreaterThan(all[i - 1]!);
      // Two full files and the current one: more than 2 MB of the ~1042-byte frames.
      expect(all.length).toBeGreaterThan(1900);
      console.log(`ring: ${files.length} files ${sizes.join("+")} B, seq ${first}..${SENT - 1} of 0..${SENT - 1}`);
      // Nothing of the capture left behind: no temp slots, no fourth file.
      expect(readdirSync(join(dir, ".incoming"))).toEqual([]);
      expect(readdirSync(dir).filter((f) => f.includes(DEV))).toEqual(files);
    } finally {
      peer.close();
      sink.close();
    }
  }, 60_000);

  it("without ring flags: the default ring, tcpdump -C 100 -W 10, one file for a small capture", async () => {
    const agent = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo"]);
    agents.push(agent);
    const sink = await udpSink(DEV_DEFAULT);
    const peer = await TestPeer.open();
    try {
      expect((await peer.request(agent.port, { verb: "CAPTURE", device: DEV_DEFAULT })).final.code).toBe(200);
      const [t] = tcpdumpsFor(DEV_DEFAULT);
      expect(t!.argv).toEqual(expect.arrayContaining(["-C", "100", "-W", "10"]));
      await send(DEV_DEFAULT, sink.port, 0, 20);
      const stop = await peer.request(agent.port, { verb: "STOP", device: DEV_DEFAULT, filename: CPE(DEV_DEFAULT) });
      expect(stop.final.code).toBe(200);
      expect(stop.final.details.files).toBe(`OVOC_device_${DEV_DEFAULT}_2026-11-23T10.00.00.000000-0.pcap`);
      expect(seqs(join(agent.dir, stop.final.details.files!))).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(agent.stderr() + agent.stdout()).not.toMatch(/keeps root/);
    } finally {
      peer.close();
      sink.close();
    }
  }, 30_000);

  it("--no-ring: one growing file; with --ring-size it is refused (exit 2, both flags named)", async () => {
    const agent = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo", "--no-ring"]);
    agents.push(agent);
    const peer = await TestPeer.open();
    try {
      expect((await peer.request(agent.port, { verb: "CAPTURE", device: "127.0.0.217" })).final.code).toBe(200);
      const [t] = tcpdumpsFor("127.0.0.217");
      expect(t!.argv).not.toContain("-C");
      expect((await peer.request(agent.port, { verb: "STOP", device: "127.0.0.217", filename: CPE("127.0.0.217") })).final.code).toBe(200);
    } finally {
      peer.close();
    }
    const bad = await startAgent(["--key-file", writeKey(tempDir()), "--no-ring", "--ring-size", "5"]).catch((e: Error) => e);
    expect(bad).toBeInstanceOf(Error);
    expect((bad as Error).message).toMatch(/agent exited with 2: server-capture: --no-ring excludes --ring-size and --ring-files/);
  }, 30_000);
});
