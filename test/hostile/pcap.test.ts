// Hostile capture files for the pcap/pcapng reader (packages/pcap): agents and devices hand us these
// files, and a compromised or broken one can put anything in them. 100,000 fast-check cases in
// memory, each a real capture (pcap µs/ns, both byte orders; pcapng with several interfaces,
// options, name records, statistics, simple packets) with 1–6 mutations: bit flips, hostile 32-bit
// lengths (0, 3, 2^31, 2^32-1, just over the limits), hostile 16-bit option lengths, cuts, inserted
// and deleted runs, spliced sections. Then 60 larger files (1–8 MiB, hostile lengths deep inside)
// read from disk in small chunks. Never a throw; every stop is a typed CaptureError with an offset
// inside the file; packets before it are whole; the heap and RSS do not grow with what lengths claim.
import fc from "fast-check";
import { heapMb } from "../helpers/hostile.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CaptureError, MAX_BLOCK_BYTES, MAX_PACKET_BYTES, PcapngEncoder, encodePcapHeader, encodePcapRecord, ethernetFrame, ipPacket, readCapture, sll2Frame } from "../../packages/pcap/src/index.js";

const RUNS = 100_000;
const T = 1_790_000_000_000_000_000n;
const CODES = new Set(["empty", "bad-magic", "truncated", "bad-version", "bad-block-length", "block-too-large", "packet-too-large", "bad-timestamp", "bad-interface", "no-section", "bad-option", "bad-record", "io"]);


function frames(n: number, size = 7): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const ip = ipPacket({
      src: i % 3 === 0 ? "2001:db8::1" : "192.0.2.1",
      dst: i % 3 === 0 ? "2001:db8::2" : "192.0.2.2",
      protocol: (["tcp", "udp", "icmp"] as const)[i % 3]!,
      srcPort: 1000 + i,
      dstPort: 443,
      seq: (i * 100) & 0xffff,
      ipId: i & 0xffff,
      payload: Buffer.alloc((i * size) % 1400, i & 0xff),
    });
    return i % 2 ? ethernetFrame(ip) : sll2Frame(ip);
  });
}

function pcapFile(n: number, opts: { nanos?: boolean; littleEndian?: boolean }): Buffer {
  return Buffer.concat([encodePcapHeader({ linktype: 1, ...opts }), ...frames(n).map((f, i) => encodePcapRecord(T + BigInt(i) * 1000n, f, opts))]);
}

function pcapngFile(n: number, le: boolean): Buffer {
  const e = new PcapngEncoder({ littleEndian: le, comment: "hostile seed" });
  e.addInterface({ linktype: 1, name: "eth0", comments: ["c"] });
  e.addInterface({ linktype: 276, name: "any", tsresolExp: 6 });
  e.writeNames([{ address: "192.0.2.1", names: ["a", "b"] }]);
  const parts: Buffer[] = [];
  frames(n).forEach((f, i) => {
    if (i % 7 === 5) e.writeSimplePacket(f);
    else e.writePacket({ interfaceId: i % 2, tsNanos: T + BigInt(i), data: f, ...(i % 4 === 0 ? { comment: `p${i}` } : {}), ...(i % 5 === 0 ? { flags: 2 } : {}) });
    if (i % 64 === 63) parts.push(Buffer.from(e.take()));
  });
  e.writeStatistics({ interfaceId: 0, tsNanos: T + 100n, ifRecv: BigInt(n), ifDrop: 0n });
  parts.push(Buffer.from(e.take()));
  return Buffer.concat(parts);
}

const SEEDS = [pcapFile(12, { littleEndian: true }), pcapFile(12, { littleEndian: false, nanos: true }), pcapngFile(12, true), pcapngFile(12, false), Buffer.concat([pcapngFile(4, true), pcapngFile(4, false)])];
const HOSTILE32 = [0, 1, 3, 11, 12, 28, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffc, 0x10000, 0x00ffffff, MAX_PACKET_BYTES + 1, MAX_BLOCK_BYTES + 4, MAX_BLOCK_BYTES - 4];

type Mutation =
  | { k: "flip"; at: number; bit: number }
  | { k: "byte"; at: number; v: number }
  | { k: "u32"; at: number; v: number; le: boolean }
  | { k: "u16"; at: number; v: number }
  | { k: "cut"; at: number }
  | { k: "insert"; at: number; from: number; len: number }
  | { k: "delete"; at: number; len: number }
  | { k: "splice"; at: number; seed: number; from: number; len: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ k: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ k: fc.constant("byte" as const), at: fc.nat(), v: fc.constantFrom(0, 0xff, 0x7f, 0x80, 0x0a, 0x0d, 0x4d) }),
  fc.record({ k: fc.constant("u32" as const), at: fc.nat(), v: fc.constantFrom(...HOSTILE32), le: fc.boolean() }),
  fc.record({ k: fc.constant("u16" as const), at: fc.nat(), v: fc.constantFrom(0, 1, 2, 3, 0xffff, 0x8000, 0x7fff, 4096) }),
  fc.record({ k: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ k: fc.constant("insert" as const), at: fc.nat(), from: fc.nat(), len: fc.nat(64) }),
  fc.record({ k: fc.constant("delete" as const), at: fc.nat(), len: fc.nat(64) }),
  fc.record({ k: fc.constant("splice" as const), at: fc.nat(), seed: fc.nat(SEEDS.length - 1), from: fc.nat(), len: fc.nat(512) }),
);

function apply(seed: Buffer, muts: Mutation[]): Buffer {
  let b = Buffer.from(seed);
  for (const m of muts) {
    const at = b.length ? m.at % b.length : 0;
    switch (m.k) {
      case "flip":
        if (b.length) b[at]! ^= 1 << m.bit;
        break;
      case "byte":
        if (b.length) b[at] = m.v;
        break;
      case "u32": {
        const a = at & ~3;
        if (a + 4 <= b.length) (m.le ? b.writeUInt32LE(m.v, a) : b.writeUInt32BE(m.v, a));
        break;
      }
      case "u16": {
        const a = at & ~1;
        if (a + 2 <= b.length) b.writeUInt16LE(m.v, a);
        break;
      }
      case "cut":
        b = b.subarray(0, m.at % (b.length + 1));
        break;
      case "insert": {
        const from = b.length ? m.from % b.length : 0;
        b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + m.len), b.subarray(at)]);
        break;
      }
      case "delete":
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
        break;
      case "splice": {
        const other = SEEDS[m.seed]!;
        const from = m.from % other.length;
        b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + m.len), b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

describe("hostile capture files", () => {
  it(`${RUNS.toLocaleString("en")} mutated pcap/pcapng files in memory: no throw, typed errors at offsets inside the file, whole packets, flat heap`, async () => {
    const seen = new Map<string, number>();
    let packets = 0;
    let slowest = 0;
    const bad: string[] = [];
    const before = heapMb();
    const rssBefore = process.memoryUsage().rss;
    const t0 = performance.now();
    await fc.assert(
      fc.asyncProperty(fc.nat(SEEDS.length - 1), fc.array(mutation, { minLength: 1, maxLength: 6 }), async (si, muts) => {
        const bytes = apply(SEEDS[si]!, muts);
        const t = performance.now();
        const { packets: got, reader } = await readCapture(bytes, { decode: true });
        slowest = Math.max(slowest, performance.now() - t);
        packets += got.length;
        for (const p of got) {
          if (p.data.length !== p.capturedLength || p.capturedLength > MAX_PACKET_BYTES || typeof p.tsNanos !== "bigint" || p.offset < 0 || p.offset >= bytes.length) bad.push(`packet at ${p.offset}`);
        }
        const e = reader.error;
        const k = e ? e.code : "clean";
        seen.set(k, (seen.get(k) ?? 0) + 1);
        if (e && (!(e instanceof CaptureError) || !CODES.has(e.code) || e.offset < 0 || e.offset > bytes.length)) bad.push(`${String(e?.code)} at ${e?.offset} of ${bytes.length}`);
        if (bad.length) throw new Error(bad.slice(0, 5).join("; "));
      }),
      { numRuns: RUNS },
    );
    const grew = heapMb() - before;
    const rssGrew = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    console.log(`pcap in memory: ${RUNS} files in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${packets} packets, slowest ${slowest.toFixed(1)} ms, heap ${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MB, rss ${rssGrew >= 0 ? "+" : ""}${rssGrew.toFixed(0)} MB; ${[...seen].map(([k, v]) => `${k} ${v}`).join(", ")}`);
    expect(bad).toEqual([]);
    for (const c of ["truncated", "bad-magic", "bad-block-length", "block-too-large", "packet-too-large", "bad-option"]) expect(seen.get(c) ?? 0, c).toBeGreaterThan(0);
    expect(grew).toBeLessThan(16);
    expect(rssGrew).toBeLessThan(256);
  });

  it("60 larger files (1–8 MiB) with hostile lengths deep inside, read from disk in 4–64 KiB chunks: typed, bounded, same verdict as in memory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capsync-hostile-pcap-"));
    try {
      const big = [pcapFile(3000, { littleEndian: true }), pcapngFile(3000, false), pcapFile(6000, { littleEndian: false, nanos: true }), pcapngFile(9000, true)];
      const samples = fc.sample(fc.tuple(fc.nat(big.length - 1), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.constantFrom(4096, 16_384, 65_536)), { numRuns: 60, seed: 4242 });
      const rssBefore = process.memoryUsage().rss;
      let maxRss = 0;
      let totalMb = 0;
      const verdicts = new Map<string, number>();
      for (const [i, [bi, muts, chunkBytes]] of samples.entries()) {
        // Mutations land deep in the file, not only in its first kilobytes.
        const seed = big[bi]!;
        const bytes = apply(seed, muts.map((m) => ("at" in m ? { ...m, at: m.at * 997 } : m)) as Mutation[]);
        totalMb += bytes.length / 2 ** 20;
        const f = join(dir, `f${i % 4}`);
        writeFileSync(f, bytes);
        const fromFile = await readCapture(f, { chunkBytes });
        const fromMem = await readCapture(bytes);
        maxRss = Math.max(maxRss, process.memoryUsage().rss);
        expect(fromFile.packets.length).toBe(fromMem.packets.length);
        expect(fromFile.reader.error?.code).toBe(fromMem.reader.error?.code);
        expect(fromFile.reader.error?.offset).toBe(fromMem.reader.error?.offset);
        const e = fromFile.reader.error;
        if (e) {
          expect(e).toBeInstanceOf(CaptureError);
          expect(CODES.has(e.code)).toBe(true);
          expect(e.offset).toBeLessThanOrEqual(bytes.length);
        }
        verdicts.set(e?.code ?? "clean", (verdicts.get(e?.code ?? "clean") ?? 0) + 1);
      }
      const peak = (maxRss - rssBefore) / 2 ** 20;
      console.log(`pcap from disk: 60 files, ${totalMb.toFixed(0)} MiB, rss peak +${peak.toFixed(0)} MB; ${[...verdicts].map(([k, v]) => `${k} ${v}`).join(", ")}`);
      expect(peak).toBeLessThan(256);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lengths that claim 4 GiB, a 16 MiB block of one option, and an endless run of empty blocks cost nothing beyond the file", async () => {
    const cases: [string, Buffer][] = [];
    const ng = pcapngFile(4, true);
    const shb = ng.readUInt32LE(4);
    const huge = Buffer.from(ng);
    huge.writeUInt32LE(0xfffffffc, shb + 4); // the first interface block claims 4 GiB
    cases.push(["pcapng block length 4 GiB", huge]);
    const epb = Buffer.from(ng);
    let at = shb;
    while (at < epb.length && epb.readUInt32LE(at) !== 6) at += epb.readUInt32LE(at + 4);
    epb.writeUInt32LE(0xfffffff0, at + 20); // the first packet block's captured length
    cases.push(["pcapng captured length 4 GiB", epb]);
    const p = pcapFile(4, { littleEndian: true });
    const rec = Buffer.from(p);
    rec.writeUInt32LE(0xffffffff, 24 + 8);
    rec.writeUInt32LE(0xffffffff, 24 + 12);
    cases.push(["pcap record length 4 GiB", rec]);
    // A block at the size limit that is one giant option.
    const optBlock = Buffer.alloc(MAX_BLOCK_BYTES - 4);
    optBlock.writeUInt32LE(0x00000001, 0);
    optBlock.writeUInt32LE(optBlock.length, 4);
    optBlock.writeUInt32LE(optBlock.length, optBlock.length - 4);
    cases.push(["16 MiB interface block", Buffer.concat([ng.subarray(0, shb), optBlock])]);
    // 200,000 minimal 12-byte unknown blocks.
    const empty = Buffer.alloc(12 * 200_000);
    for (let i = 0; i < 200_000; i++) {
      empty.writeUInt32LE(0x80000001, i * 12);
      empty.writeUInt32LE(12, i * 12 + 4);
      empty.writeUInt32LE(12, i * 12 + 8);
    }
    cases.push(["200,000 empty blocks", Buffer.concat([ng.subarray(0, shb), empty])]);
    for (const [what, bytes] of cases) {
      const before = heapMb();
      const t = performance.now();
      const { packets, reader } = await readCapture(bytes, { chunkBytes: 65_536 });
      const ms = performance.now() - t;
      const grew = heapMb() - before;
      console.log(`${what}: ${packets.length} packets, ${reader.error?.code ?? "clean"}, ${ms.toFixed(0)} ms, heap ${grew.toFixed(1)} MB`);
      if (reader.error) expect(CODES.has(reader.error.code)).toBe(true);
      expect(ms).toBeLessThan(5000);
      expect(grew).toBeLessThan(48);
    }
  });
});
