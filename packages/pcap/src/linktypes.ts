// Link-layer headers (tcpdump.org/linktypes.html): Ethernet II with 802.1Q/802.1ad tags, Linux
// cooked SLL and SLL2 (`tcpdump -i any`), raw IPv4/IPv6, BSD NULL/LOOP. Only as far as the
// network header; 802.3/LLC frames, FCS trailers and other link types decode as "not IP".

export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;

const LINKTYPE_NAMES: Readonly<Record<number, string>> = {
  [LINKTYPE_NULL]: "NULL",
  [LINKTYPE_ETHERNET]: "EN10MB",
  [LINKTYPE_RAW]: "RAW",
  [LINKTYPE_LOOP]: "LOOP",
  [LINKTYPE_LINUX_SLL]: "LINUX_SLL",
  [LINKTYPE_IPV4]: "IPV4",
  [LINKTYPE_IPV6]: "IPV6",
  [LINKTYPE_LINUX_SLL2]: "LINUX_SLL2",
};

export function linktypeName(lt: number): string {
  return LINKTYPE_NAMES[lt] ?? `LINKTYPE_${lt}`;
}

export interface LinkHeader {
  /** Offset of the network-layer header in the frame. */
  l3Offset: number;
  /** EtherType of what follows (synthesised from the version nibble for raw IP). 0 = unknown. */
  ethertype: number;
  /** 802.1Q/802.1ad VLAN ids, outermost first. */
  vlans?: number[];
  /** SLL/SLL2 packet type (0 to us, 4 outgoing, ...). */
  packetType?: number;
}

export type LinkResult = ({ ok: true } & LinkHeader) | { ok: false; code: "truncated" | "unsupported-linktype"; offset: number };

const short = (offset: number): LinkResult => ({ ok: false, code: "truncated", offset });

function fromVersion(b: Buffer, at: number): number {
  if (b.length <= at) return 0;
  const v = b[at]! >> 4;
  return v === 4 ? ETHERTYPE_IPV4 : v === 6 ? ETHERTYPE_IPV6 : 0;
}

/** Locate the network header of one frame. Never throws. */
export function decodeLink(linktype: number, b: Buffer): LinkResult {
  switch (linktype) {
    case LINKTYPE_ETHERNET: {
      if (b.length < 14) return short(0);
      let at = 12;
      let type = b.readUInt16BE(at);
      let vlans: number[] | undefined;
      while (type === 0x8100 || type === 0x88a8 || type === 0x9100) {
        if (b.length < at + 6) return short(at);
        (vlans ??= []).push(b.readUInt16BE(at + 2) & 0x0fff);
        at += 4;
        type = b.readUInt16BE(at);
      }
      // < 0x0600 is an 802.3 length field (LLC follows): not IP.
      const r: LinkResult = { ok: true, l3Offset: at + 2, ethertype: type >= 0x0600 ? type : 0 };
      if (vlans) r.vlans = vlans;
      return r;
    }
    case LINKTYPE_LINUX_SLL:
      if (b.length < 16) return short(0);
      return { ok: true, l3Offset: 16, ethertype: b.readUInt16BE(14), packetType: b.readUInt16BE(0) };
    case LINKTYPE_LINUX_SLL2:
      if (b.length < 20) return short(0);
      return { ok: true, l3Offset: 20, ethertype: b.readUInt16BE(0), packetType: b[10]! };
    case LINKTYPE_RAW:
    case 12: // DLT_RAW on some BSDs, written as is by old libpcap
    case 14:
      return { ok: true, l3Offset: 0, ethertype: fromVersion(b, 0) };
    case LINKTYPE_IPV4:
      return { ok: true, l3Offset: 0, ethertype: ETHERTYPE_IPV4 };
    case LINKTYPE_IPV6:
      return { ok: true, l3Offset: 0, ethertype: ETHERTYPE_IPV6 };
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP: {
      if (b.length < 4) return short(0);
      // NULL is in the capturing host's byte order, LOOP in network order; AF values differ per OS.
      let af = linktype === LINKTYPE_LOOP ? b.readUInt32BE(0) : b.readUInt32LE(0);
      if (af > 0xffff) af = linktype === LINKTYPE_LOOP ? b.readUInt32LE(0) : b.readUInt32BE(0);
      const type = af === 2 ? ETHERTYPE_IPV4 : af === 10 || af === 24 || af === 28 || af === 30 ? ETHERTYPE_IPV6 : 0;
      return { ok: true, l3Offset: 4, ethertype: type };
    }
    default:
      return { ok: false, code: "unsupported-linktype", offset: 0 };
  }
}
