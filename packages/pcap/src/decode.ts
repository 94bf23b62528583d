// One frame from link layer to transport: linktypes.ts → ipv4.ts/ipv6.ts → tcp.ts/udp.ts/icmp.ts.
// Stops at the first layer it cannot read and says where (never throws); no reassembly.
import { decodeIcmp, type IcmpHeader } from "./icmp.js";
import { decodeIpv4, type Ipv4Header } from "./ipv4.js";
import { decodeIpv6, type Ipv6Header } from "./ipv6.js";
import { decodeLink, ETHERTYPE_IPV4, ETHERTYPE_IPV6, type LinkHeader } from "./linktypes.js";
import { decodeTcp, type TcpHeader } from "./tcp.js";
import { decodeUdp, type UdpHeader } from "./udp.js";

export interface DecodeError {
  layer: "link" | "ipv4" | "ipv6" | "tcp" | "udp" | "icmp";
  code: string;
  /** Offset in the frame. */
  offset: number;
}

export interface Decoded {
  link?: LinkHeader;
  ip?: Ipv4Header | Ipv6Header;
  l4?: TcpHeader | UdpHeader | IcmpHeader;
  /** Captured upper-layer payload: data[payloadOffset, payloadEnd). */
  payloadOffset?: number;
  payloadEnd?: number;
  /** Upper-layer payload length on the wire, from the IP/UDP length fields (snaplen-independent). */
  payloadLength?: number;
  error?: DecodeError;
}

const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ICMPV6 = 58;

export function decodePacket(linktype: number, data: Buffer): Decoded {
  const link = decodeLink(linktype, data);
  if (!link.ok) return { error: { layer: "link", code: link.code, offset: link.offset } };
  const d: Decoded = { link };
  let payloadOffset: number;
  let end: number;
  let wire: number;
  let protocol: number;
  let isFirstFragment = true;
  if (link.ethertype === ETHERTYPE_IPV4) {
    const r = decodeIpv4(data, link.l3Offset);
    if (!r.ok) return { ...d, error: { layer: "ipv4", code: r.code, offset: r.offset } };
    d.ip = r.header;
    ({ payloadOffset, payloadEnd: end, wireLength: wire } = r);
    protocol = r.header.protocol;
    isFirstFragment = r.header.fragmentOffset === 0;
  } else if (link.ethertype === ETHERTYPE_IPV6) {
    const r = decodeIpv6(data, link.l3Offset);
    if (!r.ok) return { ...d, error: { layer: "ipv6", code: r.code, offset: r.offset } };
    d.ip = r.header;
    ({ payloadOffset, payloadEnd: end, wireLength: wire } = r);
    protocol = r.header.protocol;
    isFirstFragment = (r.header.fragment?.offset ?? 0) === 0;
  } else {
    return d; // not IP: ARP, LLDP, ...
  }
  d.payloadOffset = payloadOffset;
  d.payloadEnd = end;
  d.payloadLength = wire;
  if (!isFirstFragment) return d; // a later fragment: its bytes are payload, no L4 header
  const v6 = d.ip.version === 6;
  let l4: { ok: true; header: TcpHeader | UdpHeader | IcmpHeader; payloadOffset: number } | { ok: false; code: string; offset: number } | undefined;
  let layer: DecodeError["layer"] = "tcp";
  if (protocol === IPPROTO_TCP) l4 = decodeTcp(data, payloadOffset, end);
  else if (protocol === IPPROTO_UDP) ((layer = "udp"), (l4 = decodeUdp(data, payloadOffset, end)));
  else if (protocol === IPPROTO_ICMP && !v6) ((layer = "icmp"), (l4 = decodeIcmp(data, payloadOffset, end, false)));
  else if (protocol === IPPROTO_ICMPV6 && v6) ((layer = "icmp"), (l4 = decodeIcmp(data, payloadOffset, end, true)));
  if (l4 === undefined) return d;
  if (!l4.ok) return { ...d, error: { layer, code: l4.code, offset: l4.offset } };
  d.l4 = l4.header;
  const hdr = l4.payloadOffset - payloadOffset;
  d.payloadOffset = l4.payloadOffset;
  d.payloadLength = Math.max(0, wire - hdr);
  if (l4.header.protocol === "udp" && l4.header.length >= 8) d.payloadLength = Math.min(d.payloadLength, l4.header.length - 8);
  d.payloadEnd = Math.max(l4.payloadOffset, Math.min(end, l4.payloadOffset + d.payloadLength));
  return d;
}
