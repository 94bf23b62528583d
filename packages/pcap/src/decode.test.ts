import { describe, expect, it } from "vitest";
import { decodePacket } from "./decode.js";
import { identityConfig, packetIdentity, describePacket } from "./identity.js";
import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL, LINKTYPE_RAW } from "./linktypes.js";
import { ethernetFrame, ipPacket, sll2Frame, sllFrame } from "./synth.js";

const tcp = ipPacket({ src: "192.0.2.10", dst: "198.51.100.5", protocol: "tcp", srcPort: 40001, dstPort: 443, seq: 1000, ack: 2000, ipId: 7, ttl: 61, payload: Buffer.from("GET / HTTP/1.1\r\n") });
const udp6 = ipPacket({ src: "2001:db8::10", dst: "2001:db8::5", protocol: "udp", srcPort: 514, dstPort: 20514, payload: Buffer.from("<13>hello") });
const icmp = ipPacket({ src: "192.0.2.10", dst: "198.51.100.5", protocol: "icmp", id: 9, seq: 3, ipId: 1, payload: Buffer.alloc(8, 1) });

describe("decode golden table", () => {
  const cases = [
    { name: "Ethernet IPv4 TCP (padded frame)", lt: LINKTYPE_ETHERNET, frame: ethernetFrame(tcp), l3: 14, src: "192.0.2.10", l4: { protocol: "tcp", srcPort: 40001, dstPort: 443, seq: 1000, ack: 2000 }, payload: "GET / HTTP/1.1\r\n" },
    { name: "802.1Q VLAN", lt: LINKTYPE_ETHERNET, frame: ethernetFrame(tcp, { vlan: 42 }), l3: 18, src: "192.0.2.10", l4: { protocol: "tcp" }, payload: "GET / HTTP/1.1\r\n", vlans: [42] },
    { name: "Linux SLL IPv6 UDP", lt: LINKTYPE_LINUX_SLL, frame: sllFrame(udp6), l3: 16, src: "2001:db8::10", l4: { protocol: "udp", srcPort: 514, dstPort: 20514, length: 17 }, payload: "<13>hello" },
    { name: "Linux SLL2 IPv4 ICMP echo", lt: LINKTYPE_LINUX_SLL2, frame: sll2Frame(icmp, { outgoing: true }), l3: 20, src: "192.0.2.10", l4: { protocol: "icmp", type: 8, code: 0, id: 9, seq: 3 }, payload: "\x01".repeat(8) },
    { name: "raw IPv6", lt: LINKTYPE_RAW, frame: udp6, l3: 0, src: "2001:db8::10", l4: { protocol: "udp" }, payload: "<13>hello" },
    { name: "BSD loopback", lt: LINKTYPE_NULL, frame: Buffer.concat([Buffer.from([2, 0, 0, 0]), tcp]), l3: 4, src: "192.0.2.10", l4: { protocol: "tcp" }, payload: "GET / HTTP/1.1\r\n" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = decodePacket(c.lt, c.frame);
      expect(d.error).toBeUndefined();
      expect(d.link?.l3Offset).toBe(c.l3);
      if (c.vlans) expect(d.link?.vlans).toEqual(c.vlans);
      expect(d.ip?.src).toBe(c.src);
      expect(d.l4).toMatchObject(c.l4);
      expect(c.frame.subarray(d.payloadOffset, d.payloadEnd).toString("latin1")).toBe(c.payload);
    });
  }

  it("IPv6 extension headers and fragments", () => {
    const inner = ipPacket({ src: "2001:db8::1", dst: "2001:db8::2", protocol: "udp", srcPort: 1, dstPort: 2, payload: Buffer.from("abc") });
    // insert hop-by-hop (8 bytes) + fragment header (first fragment) before UDP
    const ext = Buffer.from([44, 0, 1, 4, 0, 0, 0, 0, /* frag: */ 17, 0, 0x00, 0x01, 0, 0, 0x30, 0x39]);
    const p = Buffer.concat([inner.subarray(0, 40), ext, inner.subarray(40)]);
    p[6] = 0;
    p.writeUInt16BE(inner.length - 40 + ext.length, 4);
    const d = decodePacket(LINKTYPE_RAW, p);
    expect(d.error).toBeUndefined();
    expect(d.ip).toMatchObject({ version: 6, protocol: 17, fragment: { id: 12345, offset: 0, moreFragments: true } });
    expect(d.l4).toMatchObject({ protocol: "udp", srcPort: 1, dstPort: 2 });
    const later = Buffer.from(p);
    later.writeUInt16BE(0x0100, 50); // offset 256: no L4 header
    const d2 = decodePacket(LINKTYPE_RAW, later);
    expect(d2.l4).toBeUndefined();
    expect(d2.ip).toMatchObject({ fragment: { offset: 256 } });
  });

  const errors = [
    { name: "short Ethernet", lt: LINKTYPE_ETHERNET, frame: Buffer.alloc(10), layer: "link", code: "truncated" },
    { name: "unknown link type", lt: 147, frame: Buffer.alloc(40), layer: "link", code: "unsupported-linktype" },
    { name: "IPv4 header cut", lt: LINKTYPE_RAW, frame: tcp.subarray(0, 12), layer: "ipv4", code: "truncated" },
    { name: "IPv4 IHL < 5", lt: LINKTYPE_RAW, frame: Buffer.concat([Buffer.from([0x44]), tcp.subarray(1)]), layer: "ipv4", code: "bad-header-length" },
    { name: "TCP header cut by snaplen", lt: LINKTYPE_RAW, frame: tcp.subarray(0, 30), layer: "tcp", code: "truncated" },
    { name: "UDP length < 8", lt: LINKTYPE_RAW, frame: (() => { const b = Buffer.from(udp6); b.writeUInt16BE(3, 44); return b; })(), layer: "udp", code: "bad-length" },
    { name: "IPv6 header cut", lt: LINKTYPE_RAW, frame: udp6.subarray(0, 30), layer: "ipv6", code: "truncated" },
  ];
  for (const c of errors) {
    it(`error: ${c.name}`, () => {
      const d = decodePacket(c.lt, c.frame);
      expect(d.error).toMatchObject({ layer: c.layer, code: c.code });
    });
  }
  it("non-IP Ethernet is not an error", () => {
    const arp = Buffer.alloc(60);
    arp.writeUInt16BE(0x0806, 12);
    expect(decodePacket(LINKTYPE_ETHERNET, arp)).toEqual({ link: { ok: true, l3Offset: 14, ethertype: 0x0806 } });
  });
});

describe("packet identity", () => {
  const cfg = identityConfig();
  const id = (lt: number, f: Buffer, c = cfg) => packetIdentity(decodePacket(lt, f), f, c)!;
  it("is the same across link types, TTL, checksum and Ethernet padding", () => {
    const hop = Buffer.from(tcp);
    hop[8] = 50; // TTL
    hop.writeUInt16BE(0xbeef, 10); // IP checksum
    hop[1] = 0x28; // DSCP remarked
    expect(id(LINKTYPE_ETHERNET, ethernetFrame(tcp)).key).toBe(id(LINKTYPE_LINUX_SLL2, sll2Frame(hop)).key);
    expect(id(LINKTYPE_ETHERNET, ethernetFrame(tcp)).ttl).toBe(61);
  });
  it("differs by IP id, seq, payload", () => {
    const base = id(LINKTYPE_RAW, tcp).key;
    for (const change of [(b: Buffer) => b.writeUInt16BE(8, 4), (b: Buffer) => b.writeUInt32BE(1001, 24), (b: Buffer) => (b[45] = 0x21)]) {
      const b = Buffer.from(tcp);
      change(b);
      expect(id(LINKTYPE_RAW, b).key).not.toBe(base);
    }
  });
  it("ignores NAT-rewritten addresses and ports when configured", () => {
    const natted = ipPacket({ src: "203.0.113.7", dst: "198.51.100.5", protocol: "tcp", srcPort: 61000, dstPort: 443, seq: 1000, ack: 2000, ipId: 7, payload: Buffer.from("GET / HTTP/1.1\r\n") });
    expect(id(LINKTYPE_RAW, natted).key).not.toBe(id(LINKTYPE_RAW, tcp).key);
    const nat = identityConfig({ ignore: ["addresses", "ports"] });
    expect(id(LINKTYPE_RAW, natted, nat).key).toBe(id(LINKTYPE_RAW, tcp, nat).key);
  });
  it("describes packets like tcpdump", () => {
    expect(describePacket(decodePacket(LINKTYPE_RAW, tcp))).toBe("TCP 192.0.2.10:40001 > 198.51.100.5:443 [P.] seq 1000 ack 2000 len 16 id 7");
    expect(describePacket(decodePacket(LINKTYPE_RAW, udp6))).toBe("UDP [2001:db8::10]:514 > [2001:db8::5]:20514 len 9");
    expect(describePacket(decodePacket(LINKTYPE_RAW, icmp))).toBe("ICMP 192.0.2.10 > 198.51.100.5 type 8 code 0 echo id 9 seq 3 id 1");
  });
});
