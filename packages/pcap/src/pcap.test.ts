import { describe, expect, it } from "vitest";
import { encodePcapHeader, encodePcapRecord, parsePcapHeader } from "./pcap.js";
import { readCapture } from "./reader.js";

const T = 1_790_000_000_123_456_789n;
const frame = (n: number) => Buffer.alloc(n, 0xab);

function file(opts: { nanos?: boolean; littleEndian?: boolean }, frames: Buffer[], ts = T): Buffer {
  return Buffer.concat([encodePcapHeader({ linktype: 1, ...opts }), ...frames.map((f, i) => encodePcapRecord(ts + BigInt(i) * 1000n, f, opts))]);
}

describe("classic pcap golden table", () => {
  const cases = [
    { name: "little-endian microseconds", opts: { littleEndian: true }, magic: "d4c3b2a1", ts: T - (T % 1000n) },
    { name: "big-endian microseconds", opts: { littleEndian: false }, magic: "a1b2c3d4", ts: T - (T % 1000n) },
    { name: "little-endian nanoseconds", opts: { littleEndian: true, nanos: true }, magic: "4d3cb2a1", ts: T },
    { name: "big-endian nanoseconds", opts: { littleEndian: false, nanos: true }, magic: "a1b23c4d", ts: T },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const bytes = file(c.opts, [frame(60), frame(1514), frame(0)]);
      expect(bytes.subarray(0, 4).toString("hex")).toBe(c.magic);
      const { packets, reader } = await readCapture(bytes);
      expect(reader.error).toBeUndefined();
      expect(reader.format).toBe("pcap");
      expect(reader.interfaces).toEqual([{ id: 0, section: 0, linktype: 1, snaplen: 262144, tsresol: { base: 10, exp: c.opts.nanos ? 9 : 6 }, tsOffsetSeconds: 0n }]);
      expect(packets.map((p) => [p.capturedLength, p.originalLength, p.offset])).toEqual([
        [60, 60, 24],
        [1514, 1514, 24 + 16 + 60],
        [0, 0, 24 + 16 + 60 + 16 + 1514],
      ]);
      expect(packets[0]!.tsNanos).toBe(c.ts);
      expect(packets[1]!.tsNanos - packets[0]!.tsNanos).toBe(1000n);
    });
  }

  it("reads the FCS bits and link type from the header's network field", () => {
    const h = encodePcapHeader({ linktype: 1 });
    h.writeUInt32LE(0x10000000 | (2 << 29) | 1, 20); // F bit + 4 bytes of FCS
    const r = parsePcapHeader(h);
    expect(r).toMatchObject({ ok: true, value: { linktype: 1, fcsLength: 4 } });
  });
});

describe("classic pcap errors: typed, with offset, good packets kept", () => {
  const good = file({}, [frame(100), frame(100)]);
  const cases: { name: string; bytes: Buffer; code: string; offset: number; packets: number }[] = [
    { name: "empty file", bytes: Buffer.alloc(0), code: "empty", offset: 0, packets: 0 },
    { name: "shorter than a magic", bytes: Buffer.from([0xd4, 0xc3]), code: "truncated", offset: 0, packets: 0 },
    { name: "unknown magic", bytes: Buffer.from("not a capture file at all......"), code: "bad-magic", offset: 0, packets: 0 },
    { name: "header cut", bytes: good.subarray(0, 20), code: "truncated", offset: 0, packets: 0 },
    { name: "record header cut", bytes: good.subarray(0, 24 + 116 + 10), code: "truncated", offset: 24 + 116, packets: 1 },
    { name: "record data cut", bytes: good.subarray(0, 24 + 116 + 16 + 50), code: "truncated", offset: 24 + 116, packets: 1 },
    {
      name: "version 3.0",
      bytes: (() => {
        const b = Buffer.from(good);
        b.writeUInt16LE(3, 4);
        return b;
      })(),
      code: "bad-version",
      offset: 4,
      packets: 0,
    },
    {
      name: "captured length of 4 GB",
      bytes: (() => {
        const b = Buffer.from(good);
        b.writeUInt32LE(0xfffffff0, 24 + 116 + 8);
        return b;
      })(),
      code: "packet-too-large",
      offset: 24 + 116,
      packets: 1,
    },
    {
      name: "microseconds ≥ 1e6",
      bytes: (() => {
        const b = Buffer.from(good);
        b.writeUInt32LE(1_000_000, 24 + 4);
        return b;
      })(),
      code: "bad-timestamp",
      offset: 28,
      packets: 0,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { packets, reader } = await readCapture(c.bytes);
      expect(packets).toHaveLength(c.packets);
      expect(reader.error?.code).toBe(c.code);
      expect(reader.error?.offset).toBe(c.offset);
      expect(reader.error?.name).toBe("CaptureError");
      expect(reader.error?.message).toContain(`at byte ${c.offset}`);
    });
  }

  it("a missing file is an io error, not an exception", async () => {
    const { packets, reader } = await readCapture("/nonexistent/capsync.pcap");
    expect(packets).toEqual([]);
    expect(reader.error?.code).toBe("io");
  });
});
