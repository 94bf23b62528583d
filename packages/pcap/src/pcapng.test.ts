import { describe, expect, it } from "vitest";
import { BT_EPB, BT_IDB, BT_ISB, BT_NRB, BT_PB, BT_SHB, BT_SPB } from "./pcapng-blocks.js";
import { PcapngEncoder } from "./pcapng-encoder.js";
import { readCapture } from "./reader.js";

const T = 1_790_000_000_123_456_789n;
const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);

/** Hand-built block: type, body (already padded), both length fields. */
function blk(type: number, body: Buffer, le = true): Buffer {
  const b = Buffer.alloc(12 + body.length);
  const w = (v: number, at: number) => (le ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
  w(type, 0);
  w(b.length, 4);
  body.copy(b, 8);
  w(b.length, b.length - 4);
  return b;
}
function opt(code: number, value: Buffer, le = true): Buffer {
  const h = Buffer.alloc(4);
  if (le) (h.writeUInt16LE(code, 0), h.writeUInt16LE(value.length, 2));
  else (h.writeUInt16BE(code, 0), h.writeUInt16BE(value.length, 2));
  return Buffer.concat([h, pad(value)]);
}
const END = Buffer.alloc(4);
function shb(le = true): Buffer {
  const b = Buffer.alloc(16);
  if (le) (b.writeUInt32LE(0x1a2b3c4d, 0), b.writeUInt16LE(1, 4));
  else (b.writeUInt32BE(0x1a2b3c4d, 0), b.writeUInt16BE(1, 4));
  b.writeBigInt64LE(-1n, 8);
  return blk(BT_SHB, b, le);
}
function idb(linktype: number, opts: Buffer[] = [], le = true, snaplen = 0): Buffer {
  const b = Buffer.alloc(8);
  if (le) (b.writeUInt16LE(linktype, 0), b.writeUInt32LE(snaplen, 4));
  else (b.writeUInt16BE(linktype, 0), b.writeUInt32BE(snaplen, 4));
  return blk(BT_IDB, Buffer.concat([b, ...opts, ...(opts.length ? [END] : [])]), le);
}
function epb(iface: number, units: bigint, data: Buffer, opts: Buffer[] = [], le = true): Buffer {
  const b = Buffer.alloc(20);
  const w = (v: number, at: number) => (le ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
  w(iface, 0);
  w(Number(units >> 32n), 4);
  w(Number(units & 0xffffffffn), 8);
  w(data.length, 12);
  w(data.length, 16);
  return blk(BT_EPB, Buffer.concat([b, pad(data), ...opts, ...(opts.length ? [END] : [])]), le);
}

describe("pcapng golden table", () => {
  for (const le of [true, false]) {
    it(`writer round trip, ${le ? "little" : "big"}-endian, several interfaces, SPB, NRB, ISB`, async () => {
      const enc = new PcapngEncoder({ littleEndian: le, comment: "section note", os: "Linux", hardware: "x86_64" });
      const eth = enc.addInterface({ linktype: 1, name: "eth0", description: "WAN", comments: ["first", "second"], filter: "host 192.0.2.10", os: "Linux" });
      const any = enc.addInterface({ linktype: 276, name: "any", tsresolExp: 6, snaplen: 128 });
      enc.writeNames([
        { address: "192.0.2.10", names: ["msbr.example", "msbr"] },
        { address: "2001:db8::1", names: ["ovoc.example"] },
      ]);
      enc.writePacket({ interfaceId: eth, tsNanos: T, data: Buffer.from("hello"), comment: "first packet", flags: 1 });
      enc.writePacket({ interfaceId: any, tsNanos: T + 1_999n, data: Buffer.alloc(30, 1), originalLength: 1500 });
      enc.writeSimplePacket(Buffer.from("simple!"), 7);
      enc.writeStatistics({ interfaceId: eth, tsNanos: T + 5n, startNanos: T - 1000n, endNanos: T + 5n, ifRecv: 10n, ifDrop: 1n, osDrop: 2n, comment: "counters" });
      const { packets, reader } = await readCapture(enc.take());
      expect(reader.error).toBeUndefined();
      expect(reader.format).toBe("pcapng");
      expect(reader.sections).toEqual([{ offset: 0, littleEndian: le, versionMajor: 1, versionMinor: 0, comment: "section note", hardware: "x86_64", os: "Linux", userAppl: "capsync" }]);
      expect(reader.interfaces.map((i) => [i.id, i.linktype, i.name, i.description, i.comment, i.filter, i.os, i.tsresol.exp, i.snaplen])).toEqual([
        [0, 1, "eth0", "WAN", "first\nsecond", "host 192.0.2.10", "Linux", 9, 262144],
        [1, 276, "any", undefined, undefined, undefined, undefined, 6, 128],
      ]);
      expect(reader.names).toEqual([
        { address: "192.0.2.10", names: ["msbr.example", "msbr"] },
        { address: "2001:db8::1", names: ["ovoc.example"] },
      ]);
      expect(packets.map((p) => [p.interfaceId, p.linktype, p.tsNanos, p.capturedLength, p.originalLength, p.comment, p.flags, p.noTimestamp])).toEqual([
        [0, 1, T, 5, 5, "first packet", 1, undefined],
        [1, 276, ((T + 1_999n) / 1000n) * 1000n, 30, 1500, undefined, undefined, undefined], // µs interface truncates
        [0, 1, ((T + 1_999n) / 1000n) * 1000n, 7, 7, undefined, undefined, true], // SPB: interface 0, previous time
      ]);
      expect(packets[0]!.data.toString()).toBe("hello");
      expect(packets[2]!.data.toString()).toBe("simple!");
      expect(reader.statistics).toEqual([{ interfaceId: 0, tsNanos: T + 5n, startNanos: T - 1000n, endNanos: T + 5n, ifRecv: 10n, ifDrop: 1n, osDrop: 2n, comment: "counters" }]);
    });
  }

  it("timestamp resolutions: default µs, 10^-3, 2^-10, if_tsoffset", async () => {
    const f = Buffer.concat([
      shb(),
      idb(1), // default 10^-6
      idb(1, [opt(9, Buffer.from([3]))]),
      idb(1, [opt(9, Buffer.from([0x80 | 10]))]),
      idb(1, [opt(9, Buffer.from([9])), opt(14, Buffer.from([100, 0, 0, 0, 0, 0, 0, 0]))]),
      epb(0, 1_790_000_000_000_001n, Buffer.from("a")),
      epb(1, 1_790_000_000_002n, Buffer.from("b")),
      epb(2, 1024n * 5n + 512n, Buffer.from("c")),
      epb(3, 7n, Buffer.from("d")),
    ]);
    const { packets, reader } = await readCapture(f);
    expect(reader.error).toBeUndefined();
    expect(packets.map((p) => p.tsNanos)).toEqual([1_790_000_000_000_001_000n, 1_790_000_000_002_000_000n, 5_500_000_000n, 100_000_000_007n]);
  });

  it("several sections restart interface numbering; other byte order in the second", async () => {
    const f = Buffer.concat([shb(true), idb(1), epb(0, 1n, Buffer.from("x")), shb(false), idb(101, [], false), idb(113, [], false), epb(1, 2n, Buffer.from("y"), [], false)]);
    const { packets, reader } = await readCapture(f);
    expect(reader.error).toBeUndefined();
    expect(reader.sections.map((s) => s.littleEndian)).toEqual([true, false]);
    expect(reader.interfaces.map((i) => [i.id, i.section, i.linktype])).toEqual([
      [0, 0, 1],
      [1, 1, 101],
      [2, 1, 113],
    ]);
    expect(packets.map((p) => [p.interfaceId, p.linktype, p.data.toString()])).toEqual([
      [0, 1, "x"],
      [2, 113, "y"],
    ]);
  });

  it("obsolete Packet Block and unknown blocks", async () => {
    const pb = Buffer.alloc(20);
    pb.writeUInt16LE(0, 0);
    pb.writeUInt32LE(0, 4);
    pb.writeUInt32LE(42, 8);
    pb.writeUInt32LE(3, 12);
    pb.writeUInt32LE(3, 16);
    const f = Buffer.concat([shb(), idb(1), blk(0x00000bad, Buffer.alloc(8, 7)), blk(BT_PB, Buffer.concat([pb, pad(Buffer.from("old"))])), blk(0x0000000a, Buffer.alloc(16))]);
    const { packets, reader } = await readCapture(f);
    expect(reader.error).toBeUndefined();
    expect(packets.map((p) => [p.tsNanos, p.data.toString()])).toEqual([[42_000n, "old"]]);
  });
});

describe("pcapng errors: typed, with offset, good packets kept", () => {
  const head = Buffer.concat([shb(), idb(1)]);
  const p1 = epb(0, 1n, Buffer.from("one"));
  const base = head.length + p1.length; // offset of the block after the first packet
  const cases: { name: string; bytes: Buffer; code: string; offset: number; packets: number }[] = [
    { name: "data before any section header", bytes: Buffer.concat([shb()]).fill(0, 0, 4), code: "bad-magic", offset: 0, packets: 0 },
    {
      name: "bad byte-order magic",
      bytes: (() => {
        const b = Buffer.from(head);
        b.writeUInt32LE(0x12345678, 8);
        return b;
      })(),
      code: "bad-magic",
      offset: 8,
      packets: 0,
    },
    {
      name: "version 2",
      bytes: (() => {
        const b = Buffer.from(head);
        b.writeUInt16LE(2, 12);
        return b;
      })(),
      code: "bad-version",
      offset: 12,
      packets: 0,
    },
    { name: "block length not a multiple of 4", bytes: Buffer.concat([head, p1, (() => { const b = epb(0, 2n, Buffer.from("two")); b.writeUInt32LE(b.length + 2, 4); return b; })()]), code: "bad-block-length", offset: base + 4, packets: 1 },
    { name: "trailer differs", bytes: Buffer.concat([head, p1, (() => { const b = epb(0, 2n, Buffer.from("two")); b.writeUInt32LE(4, b.length - 4); return b; })()]), code: "bad-block-length", offset: base + 32, packets: 1 },
    { name: "block of 1 GB", bytes: Buffer.concat([head, p1, (() => { const b = epb(0, 2n, Buffer.from("two")); b.writeUInt32LE(0x40000000, 4); return b; })()]), code: "block-too-large", offset: base + 4, packets: 1 },
    { name: "captured length past its block", bytes: Buffer.concat([head, p1, (() => { const b = epb(0, 2n, Buffer.from("two")); b.writeUInt32LE(200, 20); return b; })()]), code: "packet-too-large", offset: base + 20, packets: 1 },
    { name: "undescribed interface", bytes: Buffer.concat([head, p1, epb(3, 2n, Buffer.from("two"))]), code: "bad-interface", offset: base + 8, packets: 1 },
    { name: "option runs past its block", bytes: Buffer.concat([head, p1, (() => { const b = epb(0, 2n, Buffer.from("two"), [opt(1, Buffer.from("abcd"))]); b.writeUInt16LE(200, 34); return b; })()]), code: "bad-option", offset: base + 32, packets: 1 },
    { name: "name record past its block", bytes: Buffer.concat([head, p1, blk(BT_NRB, Buffer.from([1, 0, 100, 0, 192, 0, 2, 1]))]), code: "bad-record", offset: base + 8, packets: 1 },
    { name: "name block without end record", bytes: Buffer.concat([head, p1, blk(BT_NRB, Buffer.from([1, 0, 4, 0, 192, 0, 2, 1]))]), code: "bad-record", offset: base + 16, packets: 1 },
    { name: "statistics for an undescribed interface", bytes: Buffer.concat([head, p1, blk(BT_ISB, Buffer.alloc(12, 0).fill(9, 0, 1))]), code: "bad-interface", offset: base + 8, packets: 1 },
    { name: "simple packet before any interface", bytes: Buffer.concat([shb(), blk(BT_SPB, Buffer.from([3, 0, 0, 0, 1, 2, 3, 0]))]), code: "bad-interface", offset: 28, packets: 0 },
    { name: "truncated inside a block", bytes: Buffer.concat([head, p1, epb(0, 2n, Buffer.from("two"))]).subarray(0, base + 20), code: "truncated", offset: base, packets: 1 },
    { name: "truncated inside a block header", bytes: Buffer.concat([head, p1, epb(0, 2n, Buffer.from("two"))]).subarray(0, base + 6), code: "truncated", offset: base, packets: 1 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { packets, reader } = await readCapture(c.bytes);
      expect(packets).toHaveLength(c.packets);
      expect(reader.error?.code).toBe(c.code);
      expect(reader.error?.offset).toBe(c.offset);
      if (c.packets > 0) expect(packets[0]!.data.toString()).toBe("one");
    });
  }

  it("a file ending exactly at a block boundary has no error", async () => {
    const { packets, reader } = await readCapture(Buffer.concat([head, p1, p1]));
    expect(reader.error).toBeUndefined();
    expect(packets).toHaveLength(2);
  });

  it("file reads in small chunks give the same packets (records across chunk edges)", async () => {
    const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = await mkdtemp(join(tmpdir(), "capsync-pcapng-"));
    try {
      const enc = new PcapngEncoder();
      enc.addInterface({ linktype: 1 });
      for (let i = 0; i < 500; i++) enc.writePacket({ interfaceId: 0, tsNanos: T + BigInt(i), data: Buffer.alloc(1 + ((i * 37) % 700), i & 0xff) });
      const bytes = enc.take();
      await writeFile(join(dir, "x.pcapng"), bytes);
      const mem = await readCapture(bytes);
      const small = await readCapture(join(dir, "x.pcapng"), { chunkBytes: 1000 });
      expect(small.reader.error).toBeUndefined();
      expect(small.packets.map((p) => [p.tsNanos, p.data.toString("hex")])).toEqual(mem.packets.map((p) => [p.tsNanos, p.data.toString("hex")]));
      expect(small.packets).toHaveLength(500);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("exact 64-bit time arithmetic with doubles (the merge's raw path)", () => {
  it("divmod64 and nsToHiLo agree with BigInt on 20,000 random values", async () => {
    const { divmod64, dm, hl, nsToHiLo } = await import("./raw.js");
    const { prng } = await import("./synth.js");
    const rnd = prng(99);
    for (let i = 0; i < 10_000; i++) {
      const hi = Math.floor(rnd() * 2 ** 31);
      const lo = Math.floor(rnd() * 2 ** 32);
      const d = [1, 10, 1000, 1_000_000, 1_000_000_000, 1 + Math.floor(rnd() * 2 ** 29)][i % 6]!;
      divmod64(hi, lo, d);
      const v = (BigInt(hi) << 32n) | BigInt(lo);
      if (v / BigInt(d) < 2n ** 53n) {
        expect(BigInt(dm.q)).toBe(v / BigInt(d));
        expect(BigInt(dm.r)).toBe(v % BigInt(d));
      }
      const sec = Math.floor(rnd() * 2 ** 32);
      const nsec = Math.floor(rnd() * 1e9);
      nsToHiLo(sec, nsec);
      const ns = BigInt(sec) * 1_000_000_000n + BigInt(nsec);
      expect((BigInt(hl.hi) << 32n) | BigInt(hl.lo)).toBe(ns);
    }
  });
});
