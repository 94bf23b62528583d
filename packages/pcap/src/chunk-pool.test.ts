// The chunk pool and readers that share it: a reused chunk must never change a packet a consumer
// still reads (every batch compared with a reader that allocates fresh chunks), and reading many
// files one after another must allocate a chunk only once.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ChunkPool, chunkClass } from "./chunk-pool.js";
import { encodePcapHeader, encodePcapRecord } from "./pcap.js";
import { openCapture, readCapture } from "./reader.js";
import { prng } from "./synth.js";

const dir = mkdtempSync(join(tmpdir(), "capsync-chunkpool-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A classic pcap of `n` records of 4..maxLen+3 bytes, each filled with a byte pattern of its index. */
function writePcap(name: string, n: number, maxLen: number, seed: number): string {
  const rnd = prng(seed);
  const parts = [encodePcapHeader({ linktype: 1, snaplen: 262144, nanos: true })];
  for (let i = 0; i < n; i++) {
    const data = Buffer.alloc(4 + Math.floor(rnd() * maxLen), i & 0xff);
    data.writeUInt32BE(i, 0);
    parts.push(encodePcapRecord(BigInt(i) * 1000n, data, { nanos: true }));
  }
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat(parts));
  return path;
}

describe("ChunkPool", () => {
  it("classes: 4 KiB steps up to 64 KiB, then 64 KiB steps", () => {
    expect([1, 4096, 4097, 16777, 33554, 65536, 65537, 94636, 1114112].map(chunkClass)).toEqual([4096, 4096, 8192, 20480, 36864, 65536, 131072, 131072, 1114112]);
  });

  it("hands a released chunk to the next request of up to twice its size, not beyond; bounds the idle bytes", () => {
    const pool = new ChunkPool(64 * 1024);
    const a = pool.acquire(30_000);
    expect(a.length).toBe(32768);
    pool.release(a);
    expect(pool.idle).toBe(32768);
    expect(pool.acquire(20_000)).toBe(a); // 20 kB fits the 32 KiB chunk (≤ 2×)
    pool.release(a);
    expect(pool.acquire(12_000)).not.toBe(a); // 12 kB → 12 KiB class, 32 KiB is more than twice that
    expect(pool.idle).toBe(0); // that miss let the idle 32 KiB go (no growth past the most in use)
    pool.release(a);
    expect(pool.acquire(33_000)).not.toBe(a); // too small
    pool.release(a);
    expect(pool.acquire(32_768)).toBe(a);
    const big = [pool.acquire(40_000), pool.acquire(40_000)];
    for (const b of big) pool.release(b);
    expect(pool.idle).toBe(40960); // the second would pass the 64 KiB bound: dropped
    pool.release(Buffer.allocUnsafeSlow(5000)); // not a class size: never pooled
    expect(pool.idle).toBe(40960);
    pool.drop();
    expect(pool.idle).toBe(0);
  });
});

describe("reader with reuseChunks", () => {
  it("every batch byte-identical to fresh chunks, records spanning chunks and larger than the reserve included", async () => {
    const path = writePcap("spans.pcap", 3000, 9000, 5); // records up to 9 kB over 4 KiB chunks
    const { packets: want } = await readCapture(path, { chunkBytes: 4096 });
    const r = openCapture(path, { chunkBytes: 4096, reuseChunks: true });
    const got: { ts: bigint; data: Buffer }[] = [];
    for (let b = await r.nextBatch(); b !== null; b = await r.nextBatch()) for (const p of b) got.push({ ts: p.tsNanos, data: Buffer.from(p.data) });
    expect(r.error).toBeUndefined();
    expect(got.length).toBe(3000);
    expect(got.map((g) => g.ts)).toEqual(want.map((p) => p.tsNanos));
    for (let i = 0; i < want.length; i++) expect(got[i]!.data.equals(want[i]!.data)).toBe(true);
  });

  it("two readers at once and files one after another: one chunk per open reader, no fresh chunk per file", async () => {
    const files = Array.from({ length: 12 }, (_, i) => writePcap(`seq${i}.pcap`, 200, 300, 100 + i));
    const want = await Promise.all(files.map(async (f) => (await readCapture(f)).packets.map((p) => Buffer.from(p.data))));
    const slow = Buffer.allocUnsafeSlow;
    let fresh = 0;
    Buffer.allocUnsafeSlow = (n: number) => (fresh++, slow(n));
    try {
      for (let i = 0; i < files.length; i += 2) {
        // Interleaved batches of two readers sharing the pool (as a pair's two sides in the report).
        const rs = [openCapture(files[i]!, { chunkBytes: 8192, reuseChunks: true }), openCapture(files[i + 1]!, { chunkBytes: 8192, reuseChunks: true })];
        const seen: Buffer[][] = [[], []];
        for (let live = 2; live > 0; ) {
          live = 0;
          for (const [k, r] of rs.entries()) {
            const b = await r.nextBatch(16);
            if (b === null) continue;
            live++;
            for (const p of b) seen[k]!.push(Buffer.from(p.data));
          }
        }
        for (const k of [0, 1]) expect(Buffer.concat(seen[k]!).equals(Buffer.concat(want[i + k]!))).toBe(true);
      }
    } finally {
      Buffer.allocUnsafeSlow = slow;
    }
    // Each ~35 kB file is read in 8 KiB chunks (+ reserve); two readers × (current + read ahead).
    expect(fresh).toBeLessThanOrEqual(4);
  });
});
