import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { countPackets } from "./summary.js";

function header(opts: { be?: boolean; nano?: boolean; linktype?: number } = {}): Buffer {
  const b = Buffer.alloc(24);
  const w = (v: number, off: number) => (opts.be ? b.writeUInt32BE(v, off) : b.writeUInt32LE(v, off));
  w(opts.nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  (opts.be ? b.writeUInt16BE.bind(b) : b.writeUInt16LE.bind(b))(2, 4);
  (opts.be ? b.writeUInt16BE.bind(b) : b.writeUInt16LE.bind(b))(4, 6);
  w(65535, 16);
  w(opts.linktype ?? 1, 20);
  return b;
}

function ethIpv4(src: string, dst: string): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip[9] = 17;
  Buffer.from(src.split(".").map(Number)).copy(ip, 12);
  Buffer.from(dst.split(".").map(Number)).copy(ip, 16);
  return Buffer.concat([eth, ip]);
}

function record(sec: number, usec: number, data: Buffer, be = false): Buffer {
  const h = Buffer.alloc(16);
  const w = (v: number, off: number) => (be ? h.writeUInt32BE(v, off) : h.writeUInt32LE(v, off));
  w(sec, 0);
  w(usec, 4);
  w(data.length, 8);
  w(data.length, 12);
  return Buffer.concat([h, data]);
}

const A = "192.0.2.2";
const M = "198.51.100.10";
const pcap = Buffer.concat([header(), record(100, 0, ethIpv4(A, M)), record(101, 500_000, ethIpv4(M, A)), record(102, 0, ethIpv4(A, M)), record(103, 0, Buffer.alloc(42))]);

describe("countPackets (the demo summary's packet counts)", () => {
  const cases: { name: string; input: Buffer; match?: Parameters<typeof countPackets>[1]; expected: Awaited<ReturnType<typeof countPackets>> }[] = [
    { name: "header only", input: header(), expected: { packets: 0, matching: 0 } },
    { name: "records, no filter", input: pcap, expected: { packets: 4, matching: 0 } },
    { name: "device → server", input: pcap, match: (p) => p.src === A && p.dst === M, expected: { packets: 4, matching: 2 } },
    { name: "after a time", input: pcap, match: (p) => p.tsMs >= 101_500, expected: { packets: 4, matching: 3 } },
    {
      name: "big-endian, nanosecond",
      input: Buffer.concat([header({ be: true, nano: true }), record(100, 250_000_000, ethIpv4(A, M), true)]),
      match: (p) => p.tsMs === 100_250 && p.src === A,
      expected: { packets: 1, matching: 1 },
    },
    { name: "short header", input: Buffer.alloc(10), expected: undefined },
    { name: "not a capture", input: Buffer.concat([Buffer.from([0x0a, 0x0d, 0x0d, 0x0a]), Buffer.alloc(24)]), expected: undefined },
    { name: "truncated last record", input: pcap.subarray(0, pcap.length - 5), expected: undefined },
  ];
  for (const c of cases) it(c.name, async () => expect(await countPackets(c.input, c.match)).toEqual(c.expected));

  it("never rejects on arbitrary bytes after a valid header", async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (tail) => {
      await countPackets(Buffer.concat([header(), Buffer.from(tail)]), () => true);
    }));
  });
});
