// The capture spec (README "The capture spec"): one JSON model for every capture target, and its
// strict validator. It lives here, not in cpe-capture, because the agent decodes it from CAPTURE
// `spec=<base64url JSON>` (PROTOCOL.md) and must agree with the orchestrator byte for byte.
// Not handled here: what a target can express (the compilers say that: bpf.ts, and cpe-capture's
// AudioCodes and IOS-XE EPC compilers), and config-file syntax such as "24h" (the config loader).
import { isIPv4, isIPv6 } from "node:net";

export const SPEC_PROTOCOLS = ["ip", "tcp", "udp", "icmp"] as const;
/** A protocol name, or an IP protocol number 0..255 (6, 17 and 1 are normalised to tcp, udp, icmp). */
export type SpecProtocol = (typeof SPEC_PROTOCOLS)[number] | number;
export const DIRECTIONS = ["in", "out", "both"] as const;
export type Direction = (typeof DIRECTIONS)[number];
/** polycube packetcapture's words (`capture=ingress|egress|bidirectional`), accepted and normalised. */
export const DIRECTION_ALIASES: Readonly<Record<string, Direction>> = { ingress: "in", egress: "out", bidirectional: "both" };

/**
 * A 5-tuple filter read like one ACL entry: packets from `src` (port `sport`) to `dst` (port `dport`).
 * It is directional on purpose — IOS-XE `match ipv4` and an ACE are — so "both ways" means leaving
 * the other side `any`.
 * @example { src: "192.0.2.10", dst: "198.51.100.0/24", protocol: "udp", dport: 5060 }
 */
export interface CaptureFilter {
  /** "any" (the default), a host address, or a prefix "a.b.c.d/n" / "x::/n". */
  src?: string;
  dst?: string;
  protocol?: SpecProtocol;
  /** Only with protocol tcp or udp. */
  sport?: number;
  dport?: number;
}

/** @example { durationSec: 3600, packets: 100000, maxSizeMb: 100, ringFiles: 4, bufferMb: 10 } */
export interface CaptureLimits {
  /** Stop after this many seconds. */
  durationSec?: number;
  /** Stop after this many packets. */
  packets?: number;
  /** Most megabytes (10^6 bytes) kept; with ringFiles, the total of the ring. */
  maxSizeMb?: number;
  /** Keep the newest `ringFiles` files of maxSizeMb/ringFiles each instead of stopping. */
  ringFiles?: number;
  /** Capture buffer in MB (kernel buffer for tcpdump, EPC `buffer size` on IOS-XE). */
  bufferMb?: number;
}

/**
 * What to capture on one target. Every field is optional; a target rejects what it cannot express.
 * @example { interfaces: ["GigabitEthernet1"], direction: "both", filter: { protocol: "udp", dport: 5060 }, snaplen: 256, limits: { durationSec: 600 } }
 */
export interface CaptureSpec {
  /** Device capture points, e.g. MSBR ["eth-wan", "cellular-wan"], IOS-XE ["GigabitEthernet1"]. */
  interfaces?: string[];
  /**
   * Relative to each capture point's own interface (default both): "in" is what that interface
   * receives, "out" what it sends — on a device its listed interfaces, on an agent its --interface.
   */
  direction?: Direction;
  filter?: CaptureFilter;
  /** VRF the interfaces must belong to, where the target has VRFs (IOS-XE). */
  vrf?: string;
  /** Bytes kept of each packet. */
  snaplen?: number;
  limits?: CaptureLimits;
}

/** A spec problem, naming the field as a dotted path, e.g. "filter.dport" or "interfaces.1". */
export interface SpecIssue {
  ok: false;
  field: string;
  message: string;
}
/** A value validation rewrote to its canonical form, e.g. { field: "filter.src", from: "10.10.10.10/24", to: "10.10.10.0/24" }. */
export interface SpecNote {
  field: string;
  from: string;
  to: string;
}
/** `notes` is there only when something was rewritten (an alias, a prefix with host bits). */
export type SpecResult = { ok: true; spec: CaptureSpec; notes?: SpecNote[] } | SpecIssue;

export const SPEC_LIMITS = {
  interfaces: 16,
  snaplen: { min: 1, max: 262_144, unit: "bytes" },
  durationSec: { min: 1, max: 31_536_000, unit: "seconds" },
  packets: { min: 1, max: 1_000_000_000, unit: "packets" },
  maxSizeMb: { min: 1, max: 1_000_000, unit: "MB" },
  // The STOP answer names every ring file in one datagram (PROTOCOL.md: 1200 bytes): 10 IPv6 names fit.
  ringFiles: { min: 2, max: 10, unit: "files" },
  bufferMb: { min: 1, max: 4096, unit: "MB" },
} as const;

/** Interface names reach device CLIs: one word, no spaces or quoting characters. */
const INTERFACE = /^[A-Za-z][A-Za-z0-9/.:_-]{0,63}$/;
const VRF = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,31}$/;
const PROTOCOL_NUMBERS: Record<number, (typeof SPEC_PROTOCOLS)[number]> = { 1: "icmp", 6: "tcp", 17: "udp" };

const issue = (field: string, message: string): SpecIssue => ({ ok: false, field, message });

/** An untrusted value for a message: never throws (a YAML alias can make a cycle), never long. */
function show(v: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = undefined;
  }
  s ??= Array.isArray(v) ? "a list" : typeof v === "object" && v !== null ? "an object" : String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A parsed address or prefix: canonical address text, prefix length, family. */
export interface Prefix {
  family: 4 | 6;
  address: string;
  length: number;
  /** length is 32 (IPv4) or 128 (IPv6). */
  host: boolean;
}

function addressBytes(a: string, family: 4 | 6): number[] {
  if (family === 4) return a.split(".").map(Number);
  // Expand "::" and any embedded IPv4 tail to 16 bytes.
  let text = a;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [b0, b1, b2, b3] = v4[1]!.split(".").map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1]!.length)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

function formatIpv6(bytes: number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952: compress the longest run (length ≥ 2) of zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

export interface PrefixOptions {
  /** "error" (the default): a prefix with host bits set is an error; "clear": they are zeroed and `hostBitsCleared` set. */
  hostBits?: "error" | "clear";
}

/**
 * "192.0.2.1", "192.0.2.0/24", "2001:db8::/32"; undefined when it is none of those. Host bits must
 * be zero unless `hostBits: "clear"`: then "10.10.10.10/24" is 10.10.10.0/24 (polycube's reading).
 */
export function parsePrefix(text: string, opts: PrefixOptions = {}): (Prefix & { hostBitsCleared?: true }) | { error: string } | undefined {
  const m = /^([^/\s]+)(?:\/(\d{1,3}))?$/.exec(text);
  if (!m) return undefined;
  const addr = m[1]!;
  const family = isIPv4(addr) && /^[\d.]+$/.test(addr) ? 4 : isIPv6(addr) && !addr.includes("%") ? 6 : undefined;
  if (!family) return undefined;
  const max = family === 4 ? 32 : 128;
  const length = m[2] === undefined ? max : Number(m[2]);
  if (length > max) return { error: `prefix length ${length} is longer than ${max}` };
  const bytes = addressBytes(addr, family);
  const net = bytes.map((b, i) => (i * 8 >= length ? 0 : i * 8 + 8 <= length ? b : b & (0xff << (8 - (length - i * 8))) & 0xff));
  const text4or6 = (x: number[]) => (family === 4 ? x.join(".") : formatIpv6(x));
  const cleared = net.some((b, i) => b !== bytes[i]);
  if (cleared && opts.hostBits !== "clear") return { error: `${text} has host bits set; the network is ${text4or6(net)}/${length}` };
  const p: Prefix = { family, address: text4or6(net), length, host: length === max };
  return cleared ? { ...p, hostBitsCleared: true } : p;
}

/** "a.b.c.d" for hosts, "a.b.c.d/n" for networks (canonical text). */
export function formatPrefix(p: Prefix): string {
  return p.host ? p.address : `${p.address}/${p.length}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function unknownKey(o: Record<string, unknown>, allowed: readonly string[], at: string): SpecIssue | undefined {
  const bad = Object.keys(o).find((k) => !allowed.includes(k));
  if (bad === undefined) return undefined;
  return issue(at ? `${at}.${bad}` : bad, `unknown field; expected one of: ${allowed.join(", ")}`);
}

function intIn(v: unknown, field: string, range: { min: number; max: number; unit?: string }): number | SpecIssue {
  const unit = range.unit;
  if (typeof v !== "number" || !Number.isInteger(v)) return issue(field, `must be a whole number${unit ? ` of ${unit}` : ""}, got ${show(v)}`);
  if (v < range.min || v > range.max) return issue(field, `must be ${range.min}..${range.max}${unit ? ` ${unit}` : ""}, got ${v}`);
  return v;
}

/**
 * Checks an untrusted value (a parsed config section, or JSON from the wire) against the model and
 * returns it normalised: canonical addresses, host bits of a prefix cleared (10.10.10.10/24 →
 * 10.10.10.0/24), direction aliases named (ingress → in), "any" and empty sections dropped,
 * protocol numbers 1/6/17 named, duplicate interfaces collapsed. The rewrites that change what
 * the user wrote come back as `notes` so `validate` can show them. Never throws; unknown fields are errors.
 */
export function validateCaptureSpec(input: unknown): SpecResult {
  if (!isPlainObject(input)) return issue("", "a capture spec must be an object");
  const bad = unknownKey(input, ["interfaces", "direction", "filter", "vrf", "snaplen", "limits"], "");
  if (bad) return bad;
  const out: CaptureSpec = {};
  const notes: SpecNote[] = [];

  if (input.interfaces !== undefined) {
    const list = input.interfaces;
    if (!Array.isArray(list)) return issue("interfaces", "must be a list of interface names");
    if (list.length > SPEC_LIMITS.interfaces) return issue("interfaces", `at most ${SPEC_LIMITS.interfaces} interfaces, got ${list.length}`);
    const names: string[] = [];
    for (const [i, name] of list.entries()) {
      if (typeof name !== "string" || !INTERFACE.test(name)) {
        return issue(`interfaces.${i}`, `${show(name)} is not an interface name (a letter, then letters, digits, / . : _ -; at most 64)`);
      }
      if (!names.includes(name)) names.push(name);
    }
    if (names.length > 0) out.interfaces = names;
  }

  if (input.direction !== undefined) {
    const d = input.direction;
    const alias = typeof d === "string" && Object.hasOwn(DIRECTION_ALIASES, d) ? DIRECTION_ALIASES[d] : undefined;
    if (alias) notes.push({ field: "direction", from: d as string, to: alias });
    else if (!(DIRECTIONS as readonly unknown[]).includes(d)) return issue("direction", `must be in, out or both (or ingress, egress, bidirectional), got ${show(d)}`);
    out.direction = alias ?? (d as Direction);
  }

  if (input.filter !== undefined) {
    const f = checkFilter(input.filter, notes);
    if ("ok" in f) return f;
    if (Object.keys(f).length > 0) out.filter = f;
  }

  if (input.vrf !== undefined) {
    if (typeof input.vrf !== "string" || !VRF.test(input.vrf)) return issue("vrf", `${show(input.vrf)} is not a VRF name (letters, digits, _ . : -; at most 32)`);
    out.vrf = input.vrf;
  }

  if (input.snaplen !== undefined) {
    const n = intIn(input.snaplen, "snaplen", SPEC_LIMITS.snaplen);
    if (typeof n !== "number") return n;
    out.snaplen = n;
  }

  if (input.limits !== undefined) {
    const l = input.limits;
    if (!isPlainObject(l)) return issue("limits", "must be an object");
    const badKey = unknownKey(l, ["durationSec", "packets", "maxSizeMb", "ringFiles", "bufferMb"], "limits");
    if (badKey) return badKey;
    const limits: CaptureLimits = {};
    for (const k of ["durationSec", "packets", "maxSizeMb", "ringFiles", "bufferMb"] as const) {
      if (l[k] === undefined) continue;
      const n = intIn(l[k], `limits.${k}`, SPEC_LIMITS[k]);
      if (typeof n !== "number") return n;
      limits[k] = n;
    }
    if (limits.ringFiles !== undefined && limits.maxSizeMb === undefined) return issue("limits.ringFiles", "needs limits.maxSizeMb (the total size of the ring)");
    if (limits.ringFiles !== undefined && limits.maxSizeMb! < limits.ringFiles) {
      return issue("limits.ringFiles", `${limits.ringFiles} files cannot share ${limits.maxSizeMb} MB (at least 1 MB each)`);
    }
    if (Object.keys(limits).length > 0) out.limits = limits;
  }
  return notes.length > 0 ? { ok: true, spec: out, notes } : { ok: true, spec: out };
}

function checkFilter(v: unknown, notes: SpecNote[]): CaptureFilter | SpecIssue {
  if (!isPlainObject(v)) return issue("filter", "must be an object");
  const bad = unknownKey(v, ["src", "dst", "protocol", "sport", "dport"], "filter");
  if (bad) return bad;
  const f: CaptureFilter = {};
  let family: 4 | 6 | undefined;
  for (const side of ["src", "dst"] as const) {
    const x = v[side];
    if (x === undefined || x === "any") continue;
    if (typeof x !== "string") return issue(`filter.${side}`, `must be "any", an address or a prefix, got ${show(x)}`);
    const p = parsePrefix(x.trim(), { hostBits: "clear" });
    if (!p) return issue(`filter.${side}`, `${show(x)} is not "any", an IPv4/IPv6 address or a prefix like 192.0.2.0/24`);
    if ("error" in p) return issue(`filter.${side}`, p.error);
    if (family !== undefined && p.family !== family) return issue(`filter.${side}`, "src and dst must both be IPv4 or both IPv6");
    family = p.family;
    // 0.0.0.0/0 and ::/0 say "any": keep one spelling.
    if (p.length === 0) continue;
    f[side] = formatPrefix(p);
    // Only a changed meaning is worth a note; 2001:DB8::1 → 2001:db8::1 is the same address.
    if (p.hostBitsCleared) notes.push({ field: `filter.${side}`, from: x.trim(), to: f[side] });
  }
  if (v.protocol !== undefined) {
    const p = v.protocol;
    if (typeof p === "number") {
      const n = intIn(p, "filter.protocol", { min: 0, max: 255 });
      if (typeof n !== "number") return n;
      f.protocol = PROTOCOL_NUMBERS[n] ?? n;
    } else if ((SPEC_PROTOCOLS as readonly unknown[]).includes(p)) {
      f.protocol = p as SpecProtocol;
    } else {
      return issue("filter.protocol", `must be ip, tcp, udp, icmp or a protocol number 0..255, got ${show(p)}`);
    }
  }
  for (const k of ["sport", "dport"] as const) {
    if (v[k] === undefined) continue;
    const n = intIn(v[k], `filter.${k}`, { min: 1, max: 65535 });
    if (typeof n !== "number") return n;
    if (f.protocol !== "tcp" && f.protocol !== "udp") return issue(`filter.${k}`, "a port needs filter.protocol tcp or udp");
    f[k] = n;
  }
  // "ip" alone, without addresses, still says "IP only" (it drops ARP and the like): keep it.
  return f;
}

/** The address family a filter implies (prefixes decide; default IPv4). */
export function filterFamily(f: CaptureFilter | undefined): 4 | 6 {
  for (const x of [f?.src, f?.dst]) if (x && x.includes(":")) return 6;
  return 4;
}

/**
 * The part of a device's spec that applies to the servers capturing its traffic: the 5-tuple
 * filter, direction, snaplen and limits. Interfaces and VRF name the device's side only. Direction
 * is kept as written (each capture point's own in/out, see CaptureSpec.direction); "both" is left
 * out, so a spec that says nothing else still goes as plain CAPTURE to legacy agents.
 */
export function agentSpec(spec: CaptureSpec): CaptureSpec {
  const out: CaptureSpec = {};
  if (spec.direction === "in" || spec.direction === "out") out.direction = spec.direction;
  if (spec.filter) out.filter = { ...spec.filter };
  if (spec.snaplen !== undefined) out.snaplen = spec.snaplen;
  if (spec.limits) out.limits = { ...spec.limits };
  return out;
}

/**
 * Run-level defaults under a device's own spec: scalars and lists are replaced, `limits` merge per
 * key, and a device `filter` replaces the default filter whole (mixing two filters' halves would
 * build a 5-tuple nobody wrote).
 */
export function mergeCaptureSpecs(defaults: CaptureSpec | undefined, device: CaptureSpec | undefined): CaptureSpec {
  const d = defaults ?? {};
  const s = device ?? {};
  const out: CaptureSpec = { ...d, ...s };
  if (d.limits || s.limits) out.limits = { ...d.limits, ...s.limits };
  for (const k of Object.keys(out) as (keyof CaptureSpec)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** JSON with keys in one order, undefined dropped: equal specs give equal bytes. */
export function canonicalSpecJson(spec: CaptureSpec): string {
  const order = ["interfaces", "direction", "filter", "vrf", "snaplen", "limits", "src", "dst", "protocol", "sport", "dport", "durationSec", "packets", "maxSizeMb", "ringFiles", "bufferMb"];
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (!isPlainObject(v)) return v;
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort((a, b) => order.indexOf(a) - order.indexOf(b))) if (v[k] !== undefined) o[k] = sort(v[k]);
    return o;
  };
  return JSON.stringify(sort(spec));
}

/** CAPTURE's `spec=` value: base64url (no padding) of the canonical JSON. */
export function encodeSpecWire(spec: CaptureSpec): string {
  return Buffer.from(canonicalSpecJson(spec), "utf8").toString("base64url");
}

/** Decodes and validates a `spec=` value; never throws. */
export function decodeSpecWire(text: string): SpecResult {
  if (!/^[A-Za-z0-9_-]{1,1000}$/.test(text)) return issue("spec", "must be 1..1000 base64url characters");
  const raw = Buffer.from(text, "base64url");
  // Buffer's decoder skips junk silently; a round trip proves the text was canonical base64url.
  if (raw.toString("base64url") !== text) return issue("spec", "is not canonical base64url");
  let json: string;
  try {
    json = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    return issue("spec", "is not UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return issue("spec", "is not JSON");
  }
  return validateCaptureSpec(value);
}
