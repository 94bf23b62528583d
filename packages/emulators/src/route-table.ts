// What the emulated routers and switches share to answer from a routing table: IPv4 text as a
// number, longest-prefix matching, and the deterministic hash that picks an ECMP member (the same
// flow always takes the same member, as a real FIB hash does). IPv4 only, like the trace lab.

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** "192.0.2.1" → 0xc0000201; undefined for anything but a dotted-quad IPv4 address. */
export function ipv4Number(text: string): number | undefined {
  const m = IPV4.exec(text);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
}

/** The length of `prefix` ("a.b.c.d/len") when `addr` is inside it, else undefined. */
export function prefixLength(prefix: string, addr: number): number | undefined {
  const [net, lenText] = prefix.split("/");
  const n = ipv4Number(net ?? "");
  const len = Number(lenText ?? "32");
  if (n === undefined || !(len >= 0 && len <= 32)) return undefined;
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((addr & mask) >>> 0) === ((n & mask) >>> 0) ? len : undefined;
}

/** FNV-1a over the text's UTF-16 code units. */
export function flowHash(text: string): number {
  let h = 0x811c9dc5;
  for (const ch of text) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
