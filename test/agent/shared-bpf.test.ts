// The shared capture's filter, offline against tcpdump itself: a corpus of frames (IPv4, IPv6, ARP,
// 802.1Q-tagged, IPv4 options and fragments, truncated records, and seeded random corruptions of
// them) in a pcap file; for each capture expression the agent can send, the records the agent's
// interpreter (bpf.ts, running tcpdump's own -ddd program from bpf-compile.ts) accepts must be
// exactly the records `tcpdump -r <file> -w <out> <expression>` keeps. Then the `host <device>`
// template: its program for edge addresses is tcpdump's own, instruction for instruction.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ethernetFrame, ipPacket, prng, sll2Frame } from "@capsync/pcap/synth";
import { BpfParseError, parseBpf, runBpf } from "@capsync/server-capture/bpf";
import { FilterCompiler, addressWords } from "@capsync/server-capture/bpf-compile";
import { tempDir } from "../helpers/agent-proc.js";

const A = "192.0.2.10";
const B = "192.0.2.20";
const A6 = "2001:db8::10";
const B6 = "2001:db8::20";

interface Rec {
  data: Buffer;
  wirelen: number;
}

function arp(op: number, spa: string, tpa: string): Buffer {
  const f = Buffer.alloc(42);
  f.fill(0xff, 0, 6);
  Buffer.from([2, 0, 0, 0, 0, 1]).copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14);
  f.writeUInt16BE(0x0800, 16);
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(op, 20);
  Buffer.from(spa.split(".").map(Number)).copy(f, 28);
  Buffer.from(tpa.split(".").map(Number)).copy(f, 38);
  return f;
}

/** IP packets of every kind the expressions look at. */
function ipCorpus(): Buffer[] {
  const out: Buffer[] = [];
  const pairs: [string, string][] = [
    [A, B],
    [B, A],
    ["198.51.100.1", "198.51.100.2"],
    [A, "10.0.0.1"],
    [A6, B6],
    [B6, A6],
    ["2001:db8::99", "2001:db8::98"],
  ];
  for (const [src, dst] of pairs) {
    for (const protocol of ["tcp", "udp", "icmp"] as const) {
      for (const [sp, dp] of [
        [5060, 5060],
        [443, 40000],
        [40000, 443],
        [161, 50000],
      ] as const) {
        out.push(ipPacket({ src, dst, protocol, srcPort: sp, dstPort: dp, payload: Buffer.from("x".repeat(20)) }));
      }
    }
  }
  // IPv4 GRE (proto 47), with options (IHL 6), and a later fragment (no UDP header in it).
  const gre = ipPacket({ src: A, dst: B, protocol: "udp", srcPort: 1, dstPort: 2 });
  gre[9] = 47;
  out.push(gre);
  const opt = ipPacket({ src: B, dst: A, protocol: "udp", srcPort: 5060, dstPort: 5060, payload: Buffer.alloc(8) });
  out.push(Buffer.concat([Buffer.from([0x46]), opt.subarray(1, 20), Buffer.from([1, 1, 1, 1]), opt.subarray(20)]));
  const frag = ipPacket({ src: A, dst: B, protocol: "udp", srcPort: 5060, dstPort: 5060 });
  frag.writeUInt16BE(0x0010, 6);
  out.push(frag);
  return out;
}

function ethernetCorpus(): Rec[] {
  const frames = ipCorpus().map((p) => ethernetFrame(p));
  frames.push(ethernetFrame(ipPacket({ src: A, dst: B, protocol: "udp", srcPort: 5060, dstPort: 5060 }), { vlan: 7 }));
  frames.push(arp(1, A, B), arp(2, B, A), arp(1, "198.51.100.1", "198.51.100.2"));
  return withVariants(frames);
}

function sll2Corpus(): Rec[] {
  return withVariants(ipCorpus().map((p, i) => sll2Frame(p, { outgoing: i % 2 === 1 })));
}

/** Each frame whole, truncated at a few lengths (caplen < wirelen), and seeded random corruptions. */
function withVariants(frames: Buffer[]): Rec[] {
  const rand = prng(18);
  const out: Rec[] = [];
  for (const f of frames) {
    out.push({ data: f, wirelen: f.length });
    for (const cut of [13, 20, 30, 37, 41]) if (cut < f.length) out.push({ data: f.subarray(0, cut), wirelen: f.length });
    for (let k = 0; k < 4; k++) {
      const g = Buffer.from(f);
      for (let j = 0; j < 3; j++) g[Math.floor(rand() * g.length)] = Math.floor(rand() * 256);
      out.push({ data: g, wirelen: g.length });
    }
  }
  return out;
}

function writePcap(path: string, linktype: number, recs: Rec[]): void {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeUInt32LE(262144, 16);
  h.writeUInt32LE(linktype, 20);
  const parts: Buffer[] = [h];
  recs.forEach((r, i) => {
    const rh = Buffer.alloc(16);
    rh.writeUInt32LE(1_796_000_000 + i, 0);
    rh.writeUInt32LE(i, 4);
    rh.writeUInt32LE(r.data.length, 8);
    rh.writeUInt32LE(r.wirelen, 12);
    parts.push(rh, r.data);
  });
  writeFileSync(path, Buffer.concat(parts));
}

/** The record numbers (from the usec field writePcap stored) tcpdump keeps for `expr`. */
function tcpdumpKeeps(file: string, expr: string[]): number[] {
  const out = `${file}.${expr.join("_").replace(/[^A-Za-z0-9]/g, "")}.out`;
  execFileSync("tcpdump", ["-r", file, "-w", out, ...expr], { stdio: "ignore" });
  const b = readFileSync(out);
  const kept: number[] = [];
  for (let off = 24; off + 16 <= b.length; off += 16 + b.readUInt32LE(off + 8)) kept.push(b.readUInt32LE(off + 4));
  return kept;
}

const EXPRESSIONS: string[][] = [
  ["host", A],
  ["host", A, "and", "udp", "and", "dst", "port", "5060"],
  ["host", A, "and", "udp", "and", "src", "port", "5060", "and", "dst", "port", "5060"],
  ["host", A, "and", "tcp", "and", "src", "port", "443"],
  ["host", A, "and", "icmp"],
  ["host", A, "and", "ip", "proto", "47"],
  ["host", A, "and", "src", "net", "192.0.2.0/28"],
  ["host", A, "and", "dst", "host", B],
  ["host", A6],
  ["host", A6, "and", "udp", "and", "dst", "port", "5060"],
  ["host", A6, "and", "icmp6"],
  ["host", A6, "and", "src", "net", "2001:db8::/64"],
];

async function agrees(compiler: FilterCompiler, file: string, recs: Rec[]): Promise<void> {
  for (const expr of EXPRESSIONS) {
    const prog = await compiler.compile(expr);
    const mine = recs.flatMap((r, i) => (runBpf(prog, r.data, r.wirelen) > 0 ? [i] : []));
    const theirs = tcpdumpKeeps(file, expr);
    expect({ expr: expr.join(" "), kept: mine }).toEqual({ expr: expr.join(" "), kept: theirs });
    // Every expression keeps something and drops something: the comparison has teeth.
    expect(theirs.length).toBeGreaterThan(0);
    expect(theirs.length).toBeLessThan(recs.length);
  }
}

describe("classic BPF interpreter vs tcpdump's own filtering", () => {
  it("Ethernet: every expression keeps exactly the records tcpdump -r keeps", async () => {
    const dir = tempDir("capsync-bpf-");
    const recs = ethernetCorpus();
    const file = join(dir, "eth.pcap");
    writePcap(file, 1, recs);
    await agrees(new FilterCompiler("lo", 1), file, recs);
  });

  it("Linux cooked v2 (-i any): the same", async () => {
    const dir = tempDir("capsync-bpf-");
    const recs = sll2Corpus();
    const file = join(dir, "sll2.pcap");
    writePcap(file, 276, recs);
    await agrees(new FilterCompiler("any", 276), file, recs);
  });

  it("refuses programs it would not run as libpcap does", () => {
    expect(() => parseBpf("1\n6 0 0 0\n")).not.toThrow();
    expect(() => parseBpf("2\n48 0 0 4294963200\n6 0 0 1\n")).toThrow(BpfParseError); // ldb [SKF_AD_OFF]: Linux ancillary data
    expect(() => parseBpf("2\n21 5 0 1\n6 0 0 1\n")).toThrow(/jump out of the program/);
    expect(() => parseBpf("1\n40 0 0 12\n")).toThrow(/not a return/);
    expect(() => parseBpf("garbage")).toThrow(/not tcpdump -ddd output/);
  });
});

describe("the host <device> template", () => {
  it("gives tcpdump's own program for edge addresses, with two tcpdump runs per family", async () => {
    const edge4 = ["0.0.0.0", "127.0.0.1", "255.255.255.255", "0.0.8.0", "0.0.8.6", "10.0.0.1", "192.0.2.10", "0.4.0.0"];
    const edge6 = ["::", "::1", "::ffff:192.0.2.1", "fe80::1", "2001:db8::806", "2001:db8:0:0:1::1", "ff02::1"];
    for (const [iface, lt] of [
      ["lo", 1],
      ["any", 276],
    ] as const) {
      const tpl = new FilterCompiler(iface, lt);
      const direct = new FilterCompiler(iface, lt);
      for (const a of [...edge4, ...edge6]) {
        const got = await tpl.program(["host", a], a);
        const want = await direct.compile(["host", a]);
        expect({ a, iface, prog: [...got] }).toEqual({ a, iface, prog: [...want] });
      }
      // Two placeholders per family, plus a direct compile for addresses equal to one of the
      // program's other constants (0.0.8.0 and 0.0.8.6 are the IPv4 and ARP ethertypes).
      expect(tpl.compiles).toBeLessThanOrEqual(4 + 3);
    }
  });

  it("addressWords: IPv4 one word, IPv6 four, the embedded-IPv4 form too", () => {
    expect(addressWords("192.0.2.10")).toEqual([0xc000020a]);
    expect(addressWords("::1")).toEqual([0, 0, 0, 1]);
    expect(addressWords("2001:db8::806")).toEqual([0x20010db8, 0, 0, 0x806]);
    expect(addressWords("::ffff:192.0.2.1")).toEqual([0, 0, 0xffff, 0xc0000201]);
    expect(addressWords("fe80::1:2")).toEqual([0xfe800000, 0, 0, 0x10002]);
  });
});
