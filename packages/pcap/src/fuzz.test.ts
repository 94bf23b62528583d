// Mutation fuzzing of the readers and decoders: ≥ 10,000 damaged files (bit flips, hostile
// length fields, truncation, inserted and deleted runs) must never throw, must end in a typed
// CaptureError with an offset inside the file, and must not grow memory.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CaptureError, type CaptureErrorCode } from "./errors.js";
import { encodePcapHeader, encodePcapRecord } from "./pcap.js";
import { PcapngEncoder } from "./pcapng-encoder.js";
import { RawBatch } from "./raw.js";
import { openCapture, readCapture } from "./reader.js";
import { ethernetFrame, ipPacket, prng, sll2Frame } from "./synth.js";

const CODES: CaptureErrorCode[] = ["empty", "bad-magic", "truncated", "bad-version", "bad-block-length", "block-too-large", "packet-too-large", "bad-timestamp", "bad-interface", "no-section", "bad-option", "bad-record"];
const T = 1_790_000_000_000_000_000n;

function frames(): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < 12; i++) {
    const ip = ipPacket({
      src: i % 3 === 0 ? "2001:db8::1" : "192.0.2.1",
      dst: i % 3 === 0 ? "2001:db8::2" : "192.0.2.2",
      protocol: (["tcp", "udp", "icmp"] as const)[i % 3]!,
      srcPort: 1000 + i,
      dstPort: 443,
      seq: i * 100,
      ipId: i,
      payload: Buffer.alloc(i * 7, i),
    });
    out.push(i % 2 ? ethernetFrame(ip) : sll2Frame(ip));
  }
  return out;
}

/** Offsets where a record or block ends (a cut there is a clean end of file). */
function blockEnds(b: Buffer): number[] {
  const out: number[] = [];
  if (b.readUInt32LE(0) === 0x0a0d0d0a) {
    const le = b.readUInt32LE(8) === 0x1a2b3c4d;
    for (let at = 0; at < b.length; ) ((at += le ? b.readUInt32LE(at + 4) : b.readUInt32BE(at + 4)), out.push(at));
  } else {
    const le = b.readUInt32LE(0) === 0xa1b2c3d4 || b.readUInt32LE(0) === 0xa1b23c4d;
    out.push(24);
    for (let at = 24; at < b.length; ) ((at += 16 + (le ? b.readUInt32LE(at + 8) : b.readUInt32BE(at + 8))), out.push(at));
  }
  return out;
}

function seeds(): { name: string; bytes: Buffer; boundaries: number[] }[] {
  const fr = frames();
  const pcap = (opts: { nanos?: boolean; littleEndian?: boolean }) => {
    const parts = [encodePcapHeader({ linktype: 1, ...opts })];
    const boundaries: number[] = [];
    let at = 24;
    fr.forEach((f, i) => {
      const r = encodePcapRecord(T + BigInt(i) * 1000n, f, opts);
      parts.push(r);
      at += r.length;
      boundaries.push(at);
    });
    return { bytes: Buffer.concat(parts), boundaries };
  };
  const ng = (le: boolean) => {
    const e = new PcapngEncoder({ littleEndian: le, comment: "fuzz seed" });
    e.addInterface({ linktype: 1, name: "eth0", comments: ["c"] });
    e.addInterface({ linktype: 276, name: "any", tsresolExp: 6 });
    e.writeNames([{ address: "192.0.2.1", names: ["a", "b"] }]);
    const boundaries: number[] = [];
    fr.forEach((f, i) => {
      if (i === 5) e.writeSimplePacket(f);
      else e.writePacket({ interfaceId: i % 2, tsNanos: T + BigInt(i), data: f, ...(i % 4 === 0 ? { comment: `p${i}` } : {}), ...(i % 5 === 0 ? { flags: 2 } : {}) });
      boundaries.push(e.length);
    });
    e.writeStatistics({ interfaceId: 0, tsNanos: T + 100n, ifRecv: 12n, ifDrop: 0n });
    return { bytes: e.take(), boundaries };
  };
  return [
    { name: "pcap-le-us", ...pcap({ littleEndian: true }) },
    { name: "pcap-be-ns", ...pcap({ littleEndian: false, nanos: true }) },
    { name: "pcapng-le", ...ng(true) },
    { name: "pcapng-be", ...ng(false) },
  ];
}

const SPECIAL32 = [0, 1, 3, 12, 28, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffc, 0x10000, 0x00ffffff, 262145, 16 * 1024 * 1024 + 4];

function mutate(b: Buffer, rnd: () => number): { bytes: Buffer; cutOnly: number | undefined } {
  const pick = (n: number) => Math.floor(rnd() * n);
  const kind = pick(7);
  let out = Buffer.from(b);
  switch (kind) {
    case 0: // bit flips
      for (let i = 1 + pick(8); i > 0; i--) out[pick(out.length)]! ^= 1 << pick(8);
      break;
    case 1: // bytes set to edge values
      for (let i = 1 + pick(4); i > 0; i--) out[pick(out.length)] = [0, 0xff, 0x7f, 0x80, pick(256)][pick(5)]!;
      break;
    case 2: {
      // a hostile 32-bit length/field at an aligned offset
      const at = pick(out.length >> 2) << 2;
      const v = SPECIAL32[pick(SPECIAL32.length)]!;
      if (at + 4 <= out.length) (rnd() < 0.5 ? out.writeUInt32LE(v, at) : out.writeUInt32BE(v, at));
      break;
    }
    case 3: {
      const cut = pick(out.length + 1);
      return { bytes: out.subarray(0, cut), cutOnly: cut };
    }
    case 4: {
      // insert a copy of a random slice
      const s = pick(out.length);
      const e = Math.min(out.length, s + 1 + pick(64));
      const at = pick(out.length);
      out = Buffer.concat([out.subarray(0, at), out.subarray(s, e), out.subarray(at)]);
      break;
    }
    case 5: {
      const s = pick(out.length);
      out = Buffer.concat([out.subarray(0, s), out.subarray(Math.min(out.length, s + 1 + pick(64)))]);
      break;
    }
    default: {
      // 16-bit option/record lengths and codes
      const at = pick(out.length >> 1) << 1;
      if (at + 2 <= out.length) out.writeUInt16LE([0, 1, 0xffff, 0x8000, pick(65536)][pick(5)]!, at);
    }
  }
  return { bytes: out, cutOnly: undefined };
}

describe("fuzz: mutated pcap/pcapng files", () => {
  it("10,000 mutated files in memory: no throw, typed errors with offsets, whole packets before a cut kept, bounded memory", async () => {
    const rnd = prng(0xcafe);
    const base = seeds();
    const before = process.memoryUsage();
    const seen = new Map<string, number>();
    let packets = 0;
    const bad: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const seed = base[i % base.length]!;
      const { bytes, cutOnly } = mutate(seed.bytes, rnd);
      const { packets: got, reader } = await readCapture(bytes, { decode: true });
      packets += got.length;
      // Plain checks in the hot loop (expect() per packet would dominate the run time).
      for (const p of got) {
        if (p.data.length !== p.capturedLength || typeof p.tsNanos !== "bigint" || p.offset >= bytes.length) bad.push(`file ${i}: packet at ${p.offset}`);
      }
      const e = reader.error;
      if (e) {
        if (!(e instanceof CaptureError) || !CODES.includes(e.code) || e.offset < 0 || e.offset > bytes.length) bad.push(`file ${i}: ${e.code} at ${e.offset}`);
        seen.set(e.code, (seen.get(e.code) ?? 0) + 1);
      }
      if (i % 4 === 0) {
        // The merge's raw batches must see exactly what the object reader sees.
        const r = openCapture(bytes);
        const batch = new RawBatch(64);
        let k = 0;
        while (await r.nextRawBatch(batch)) {
          for (let j = 0; j < batch.n; j++, k++) {
            const p = got[k];
            const ts = BigInt(batch.sec[j]!) * 1_000_000_000n + BigInt(batch.nsec[j]!);
            if (!p || ts !== p.tsNanos || batch.caplen[j] !== p.capturedLength || !batch.chunk.subarray(batch.start[j]!, batch.start[j]! + batch.caplen[j]!).equals(p.data) || batch.linktype[j] !== p.linktype) {
              bad.push(`file ${i}: raw packet ${k} differs`);
            }
          }
        }
        if (k !== got.length || r.error?.code !== e?.code || r.error?.offset !== e?.offset) bad.push(`file ${i}: raw ${k} packets, ${r.error?.code}`);
      }
      if (cutOnly !== undefined) {
        // A pure truncation keeps exactly the packets that end before the cut.
        const whole = seed.boundaries.filter((x) => x <= cutOnly).length;
        expect(got.length).toBe(whole);
        if (cutOnly === 0) expect(e?.code).toBe("empty");
        else if (!blockEnds(seed.bytes).includes(cutOnly)) expect(e?.code).toBe("truncated");
        else expect(e).toBeUndefined();
      }
    }
    const after = process.memoryUsage();
    expect(bad).toEqual([]);
    expect(packets).toBeGreaterThan(10_000);
    // Every error class the reader has met the fuzzer at least once.
    for (const c of ["truncated", "bad-magic", "bad-block-length", "block-too-large", "packet-too-large", "bad-interface", "bad-option"]) expect(seen.get(c) ?? 0).toBeGreaterThan(0);
    expect(after.rss - before.rss).toBeLessThan(128 * 1024 * 1024);
  });

  it("300 mutated files read from disk in 4 KiB chunks: hostile lengths allocate nothing beyond the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capsync-fuzz-"));
    try {
      const rnd = prng(0xbeef);
      const base = seeds();
      const before = process.memoryUsage().rss;
      for (let i = 0; i < 300; i++) {
        const seed = base[i % base.length]!;
        const { bytes } = mutate(seed.bytes, rnd);
        const f = join(dir, `f${i % 8}`);
        writeFileSync(f, bytes);
        const fromFile = await readCapture(f, { chunkBytes: 4096 });
        const fromMem = await readCapture(bytes);
        expect(fromFile.packets.length).toBe(fromMem.packets.length);
        expect(fromFile.reader.error?.code).toBe(fromMem.reader.error?.code);
        expect(fromFile.reader.error?.offset).toBe(fromMem.reader.error?.offset);
      }
      expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
