// merge.ts against the real tools: the merged file must be read by tshark, capinfos and mergecap,
// with one named interface per capture point, every packet, in time order, offsets applied.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mergeCaptures } from "./merge.js";
import { encodePcapHeader, encodePcapRecord } from "./pcap.js";
import { readCapture } from "./reader.js";
import { ethernetFrame, ipPacket, writeScenario } from "./synth.js";

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const tools = has("tshark") && has("capinfos") && has("mergecap");
if (!tools) throw new Error("merge tests need tshark, capinfos and mergecap (Debian: tshark wireshark-common)");

const dir = mkdtempSync(join(tmpdir(), "capsync-merge-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sh = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

describe("mergeCaptures", () => {
  it("three capture points, offsets removed, read back by our reader", async () => {
    const d = join(dir, "three");
    mkdirSync(d);
    const sc = await writeScenario(d, {
      seed: 21,
      durationMs: 3_000,
      forwardIntervalMs: 10,
      reverseIntervalMs: 12,
      points: [{ name: "device" }, { name: "hop", clockOffsetNanos: 700_000_000n }, { name: "server", linktype: "sll2", clockOffsetNanos: -1_250_000_000n }],
      hops: [{ delayMs: [1, 2] }, { delayMs: [3, 5], loss: 0.05 }],
    });
    const counts = await Promise.all(sc.points.map(async (p) => (await readCapture(p.file)).packets.length));
    const out = join(d, "merged.pcapng");
    const r = await mergeCaptures(
      [
        { name: "device", description: "device capture point", files: [sc.points[0]!.file], comments: ["device clock"] },
        { name: "hop", files: [sc.points[1]!.file], offsetNanos: 700_000_000n, comments: ["clock offset 700000000 ns removed"] },
        { name: "server", files: [sc.points[2]!.file], offsetNanos: -1_250_000_000n },
      ],
      out,
      { comment: "capsync test merge" },
    );
    expect(r.packets).toBe(counts.reduce((a, b) => a + b, 0));
    expect(r.interfaces.map((i) => [i.name, i.linktype])).toEqual([
      ["device", 1],
      ["hop", 1],
      ["server", 276],
    ]);
    const back = await readCapture(out);
    expect(back.reader.error).toBeUndefined();
    expect(back.packets).toHaveLength(r.packets);
    expect(back.reader.interfaces.map((i) => [i.name, i.comment])).toEqual([
      ["device", "device clock"],
      ["hop", "clock offset 700000000 ns removed"],
      ["server", undefined],
    ]);
    expect(back.reader.sections[0]!.comment).toBe("capsync test merge");
    for (let i = 1; i < back.packets.length; i++) expect(back.packets[i]!.tsNanos >= back.packets[i - 1]!.tsNanos).toBe(true);
    // With clocks corrected, a packet delivered end to end is seen at device, hop, server in that order.
    expect(back.packets[0]!.tsNanos).toBe(sc.points[0]!.startNanos + 1_000_000n);
    expect(r.firstNanos).toBe(back.packets[0]!.tsNanos);
  });

  it("damaged and mixed-format inputs: good packets kept, the damage reported, the rest merged", async () => {
    const d = join(dir, "damaged");
    mkdirSync(d);
    const frame = (i: number) => ethernetFrame(ipPacket({ src: "192.0.2.1", dst: "192.0.2.2", protocol: "udp", srcPort: 1, dstPort: 2, ipId: i }));
    const T = 1_790_000_000_000_000_000n;
    const pcap = Buffer.concat([encodePcapHeader({ linktype: 1 }), ...Array.from({ length: 10 }, (_, i) => encodePcapRecord(T + BigInt(i) * 1_000_000n, frame(i)))]);
    writeFileSync(join(d, "ok.pcap"), pcap);
    writeFileSync(join(d, "cut.pcap"), pcap.subarray(0, pcap.length - 20));
    writeFileSync(join(d, "junk.pcap"), Buffer.from("this is not a capture"));
    const r = await mergeCaptures(
      [
        { name: "a", files: [join(d, "ok.pcap")] },
        { name: "b", files: [join(d, "cut.pcap"), join(d, "junk.pcap"), join(d, "missing.pcap")] },
      ],
      join(d, "m.pcapng"),
    );
    expect(r.packets).toBe(19);
    const files = r.sources[1]!.files;
    expect(files.map((f) => [f.packets, f.error?.code])).toEqual([
      [9, "truncated"],
      [0, "bad-magic"],
      [0, "io"],
    ]);
  });

  it("tshark, capinfos and mergecap read the merged file: packet count, interface names, comments", async () => {
    const d = join(dir, "tools");
    mkdirSync(d);
    const sc = await writeScenario(d, {
      seed: 23,
      durationMs: 2_000,
      forwardIntervalMs: 5,
      reverseIntervalMs: 7,
      points: [{ name: "msbr" }, { name: "ovoc", linktype: "sll2", clockOffsetNanos: 3_000_000_000n }],
      hops: [{ delayMs: [2, 4], loss: 0.1 }],
      unrelated: true,
    });
    const out = join(d, "merged.pcapng");
    const r = await mergeCaptures(
      [
        { name: "msbr", files: [sc.points[0]!.file], comments: ["capsync: clock offset -3000000000 ns against ovoc removed"] },
        { name: "ovoc", files: [sc.points[1]!.file] },
      ],
      out,
      { comment: "capsync merge" },
    );
    const names = sh("tshark", ["-r", out, "-T", "fields", "-e", "frame.interface_name"]).trim().split("\n");
    expect(names).toHaveLength(r.packets);
    expect(new Set(names)).toEqual(new Set(["msbr", "ovoc"]));
    expect(names.filter((n) => n === "msbr")).toHaveLength(r.sources[0]!.packets);
    const info = sh("capinfos", ["-c", "-I", "-k", "-o", out]);
    expect(info).toMatch(new RegExp(`Number of packets:\\s+${r.packets}\\b`));
    expect(info).toMatch(/Name = msbr/);
    expect(info).toMatch(/Name = ovoc/);
    expect(info).toMatch(/Comment = capsync: clock offset -3000000000 ns against ovoc removed/);
    expect(info).toMatch(/Capture comment:\s+capsync merge/);
    expect(info).toMatch(/Strict time order:\s+True/);
    // mergecap must read it too (and writes the same packets again).
    const again = join(d, "again.pcapng");
    sh("mergecap", ["-w", again, out]);
    expect(sh("capinfos", ["-c", "-M", again])).toMatch(new RegExp(`Number of packets:\\s+${r.packets}\\b`));
    expect(readFileSync(again).length).toBeGreaterThan(0);
  });

  it("more files than maxOpenFiles: merged in groups through temporary files, byte for byte the same", async () => {
    const d = join(dir, "groups");
    mkdirSync(d);
    // Six capture points with their own clocks and link types; two of them in two files each and
    // a damaged one, so groups split points, and ties, offsets, drift and damage cross groups.
    const sc = await writeScenario(d, {
      seed: 29,
      durationMs: 1_500,
      forwardIntervalMs: 4,
      reverseIntervalMs: 6,
      points: [{ name: "p0" }, { name: "p1", clockOffsetNanos: 40_000_000n }, { name: "p2", linktype: "sll2", clockOffsetNanos: -9_000_000n, driftPpm: 30 }],
      hops: [{ delayMs: [1, 2], loss: 0.05 }, { delayMs: [2, 3] }],
      unrelated: true,
    });
    const T = 1_790_000_000_000_000_000n;
    const frame = (i: number) => ethernetFrame(ipPacket({ src: "192.0.2.1", dst: "192.0.2.2", protocol: "udp", srcPort: 1, dstPort: 2, ipId: i }));
    const ring = (name: string, from: number, n: number) => {
      writeFileSync(join(d, name), Buffer.concat([encodePcapHeader({ linktype: 1 }), ...Array.from({ length: n }, (_, i) => encodePcapRecord(T + BigInt(from + i) * 2_000_000n, frame(from + i)))]));
      return join(d, name);
    };
    const cut = ring("cut.pcap", 3, 50);
    writeFileSync(cut, readFileSync(cut).subarray(0, readFileSync(cut).length - 9));
    const sources = [
      { name: "p0", files: [sc.points[0]!.file], comments: ["device"] },
      { name: "ring", files: [ring("r1.pcap", 0, 300), ring("r2.pcap", 300, 300)], offsetNanos: -1_000_000n },
      { name: "p1", files: [sc.points[1]!.file], offsetNanos: 40_000_000n },
      { name: "p2", files: [sc.points[2]!.file], offsetNanos: -9_000_000n, driftPpm: 30, refNanos: T },
      { name: "ties", files: [ring("t1.pcap", 0, 200), cut] },
    ];
    const one = await mergeCaptures(sources, join(d, "one.pcapng"), { comment: "c" });
    const grouped = await mergeCaptures(sources, join(d, "grouped.pcapng"), { comment: "c", maxOpenFiles: 3 });
    expect(readFileSync(join(d, "grouped.pcapng")).equals(readFileSync(join(d, "one.pcapng")))).toBe(true);
    const facts = (r: typeof one) => ({ packets: r.packets, interfaces: r.interfaces, sources: r.sources.map((s) => ({ ...s, files: s.files.map((f) => [f.path, f.packets, f.format, f.error?.code]) })), first: r.firstNanos, last: r.lastNanos });
    expect(facts(grouped)).toEqual(facts(one));
    expect(one.sources[4]!.files.map((f) => [f.packets, f.error?.code])).toEqual([
      [200, undefined],
      [49, "truncated"],
    ]);
    expect(readdirSync(d).filter((f) => f.includes(".part"))).toEqual([]);
  });
});
