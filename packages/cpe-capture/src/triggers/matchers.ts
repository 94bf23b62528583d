// Stop-alarm matchers: the built-ins by name (the registry's list: OVOC's connection-lost and each
// vendor's own), user regex patterns with a named group `device`, and the router that turns one
// syslog frame into a stop or log event for one device (honouring `maxEventsPerDevice`). Pure: no
// sockets, no timers.
import { ConfigError } from "@capsync/protocol";
import { isIPv4 } from "node:net";
import { BUILTIN_ALARMS, BUILTIN_ALARM_NAMES, type BuiltinAlarmName } from "../drivers/index.js";
import type { DeviceVia, MatchHit, Matcher, Sender, SyslogFormat, SyslogView } from "./matcher.js";
import { parseRfc3164 } from "./rfc3164.js";
import { type SyslogErrorCode, parsePri, parseRfc5424, trimmedLength } from "./rfc5424.js";

export type { DeviceVia, MatchHit, Matcher, Sender, SyslogFormat, SyslogView } from "./matcher.js";

/** When a frame arrived: monotonic (hrtime-based, ms with µs resolution) for ordering and latency, wall clock for people. */
export interface ReceivedAt {
  monotonicMs: number;
  iso: string;
}
export function receivedNow(): ReceivedAt {
  return { monotonicMs: Number(process.hrtime.bigint() / 1000n) / 1000, iso: new Date().toISOString() };
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Decode one frame: RFC 5424 when VERSION "1 " follows PRI, else RFC 3164. Frames neither strict
 * parser accepts are still matched on their text: losing a real alarm to an odd header would be worse.
 */
export function decodeSyslog(frame: Uint8Array, from: Sender): SyslogView {
  const end = trimmedLength(frame);
  const buf = Buffer.from(frame.buffer, frame.byteOffset, end);
  const line = buf.toString("utf8");
  const pri = parsePri(buf, end);
  const is5424 = pri.ok && buf[pri.value.end] === 0x31 && buf[pri.value.end + 1] === 0x20;
  if (is5424) {
    const r = parseRfc5424(buf);
    if (r.ok) return { format: "rfc5424", msg: r.value.msg, hostname: r.value.hostname, line, parseError: null, from };
    return raw(buf, line, pri.ok ? pri.value.end : 0, r, from);
  }
  const r = parseRfc3164(buf);
  if (r.ok) return { format: "rfc3164", msg: r.value.msg, hostname: r.value.hostname, line, parseError: null, from };
  return raw(buf, line, pri.ok ? pri.value.end : 0, r, from);
}

function raw(buf: Buffer, line: string, start: number, err: { code: SyslogErrorCode; offset: number }, from: Sender): SyslogView {
  return {
    format: "raw",
    msg: start === 0 ? line : buf.subarray(start).toString("utf8"),
    hostname: null,
    line,
    parseError: { code: err.code, offset: err.offset },
    from,
  };
}

// ---------------------------------------------------------------------------------------------
// Built-in matchers

/** Every built-in's name, from the registry (drivers/index.ts). */
export const BUILTIN_MATCHERS = BUILTIN_ALARM_NAMES;
export type BuiltinMatcherName = BuiltinAlarmName;
const DEFAULT_STOP_ALARMS: readonly BuiltinMatcherName[] = ["connection-lost"];

export function builtinMatcher(name: BuiltinMatcherName): Matcher {
  return BUILTIN_ALARMS.get(name)!;
}

// ---------------------------------------------------------------------------------------------
// User patterns

/** `stop.alarms` entry for a user pattern, e.g. `{ pattern: "LINK DOWN on (?<device>\\S+)" }`. */
export interface PatternSpec {
  pattern: string;
  /** Shown in events; default "pattern-<position in the list>". */
  name?: string;
  /** Regex flags; only i, m, s, u (g and y would make matching stateful). */
  flags?: string;
  /** Literal(s) every matching frame contains: lets the listener skip parsing everything else in a storm. */
  contains?: string | readonly string[];
  /** Event reason; default "<name>: <matched text>". */
  reason?: string;
}
export type MatcherSpec = BuiltinMatcherName | PatternSpec;

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
const MAX_PATTERN = 1000;

export type CompileResult = { ok: true; value: Matcher[] } | { ok: false; index: number; message: string };

/** Validate and compile `stop.alarms` without throwing (for config validation). */
export function checkMatcherSpecs(specs: readonly unknown[]): CompileResult {
  const out: Matcher[] = [];
  const names = new Set<string>();
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i];
    let m: Matcher | string;
    if (typeof spec === "string") {
      m = BUILTIN_ALARMS.get(spec as BuiltinMatcherName) ?? `unknown alarm matcher '${spec}' (built-in: ${BUILTIN_MATCHERS.join(", ")})`;
    } else if (typeof spec === "object" && spec !== null && typeof (spec as PatternSpec).pattern === "string") {
      m = compilePattern(spec as PatternSpec, i);
    } else {
      m = "expected a built-in matcher name or { pattern: ... }";
    }
    if (typeof m === "string") return { ok: false, index: i, message: m };
    if (names.has(m.name)) return { ok: false, index: i, message: `matcher '${m.name}' is listed twice` };
    names.add(m.name);
    out.push(m);
  }
  return { ok: true, value: out };
}

/** Compile `stop.alarms`; throws ConfigError naming the bad entry. Default: connection-lost only. */
export function compileMatchers(specs: readonly MatcherSpec[] = DEFAULT_STOP_ALARMS): Matcher[] {
  const r = checkMatcherSpecs(specs);
  if (!r.ok) throw new ConfigError(`stop.alarms[${r.index}]: ${r.message}`);
  return r.value;
}

function compilePattern(spec: PatternSpec, index: number): Matcher | string {
  const name = spec.name ?? `pattern-${index + 1}`;
  if (!NAME.test(name)) return `name '${name}' must be lower-case letters, digits and '-'`;
  if (BUILTIN_ALARMS.has(name as BuiltinMatcherName)) return `name '${name}' is a built-in matcher's`;
  const flags = spec.flags ?? "";
  if (!/^[imsu]*$/.test(flags) || new Set(flags).size !== flags.length) return `flags '${flags}' not allowed (use i, m, s, u)`;
  if (spec.pattern.length === 0 || spec.pattern.length > MAX_PATTERN) return `pattern must be 1..${MAX_PATTERN} characters`;
  let re: RegExp;
  let probe: RegExp;
  try {
    re = new RegExp(spec.pattern, flags);
    // A pattern that compiles alone has balanced groups, so `(?:p)|` is the same language plus the
    // empty string: exec("") then succeeds and lists every named group of p.
    probe = new RegExp(`(?:${spec.pattern})|`, flags);
  } catch (err) {
    return `pattern does not compile: ${(err as Error).message}`;
  }
  const groups = probe.exec("")?.groups;
  if (!groups || !Object.hasOwn(groups, "device")) return "pattern needs a named group (?<device>...) for the device address";
  const contains = spec.contains === undefined ? null : typeof spec.contains === "string" ? [spec.contains] : [...spec.contains];
  if (contains !== null && (contains.length === 0 || contains.some((c) => typeof c !== "string" || c.length === 0))) {
    return "contains must be one or more non-empty strings";
  }
  return {
    name,
    stopLiterals: contains,
    logLiterals: [],
    match(view: SyslogView) {
      const m = re.exec(view.msg);
      if (!m) return undefined;
      const device = m.groups?.device?.trim();
      const candidates: MatchHit["candidates"] = [];
      if (device) candidates.push({ address: device, via: "pattern" });
      candidates.push({ address: view.from.address, via: "sender" });
      const matched = m[0].length > 200 ? `${m[0].slice(0, 200)}…` : m[0];
      return { stop: true, reason: spec.reason ?? `${name}: ${matched}`, candidates };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Events and routing

interface EventBase {
  reason: string;
  matcher: string;
  /** The whole syslog line as text. */
  message: string;
  format: SyslogFormat;
  receivedAt: ReceivedAt;
  from: Sender;
}
/** Stop the device's captures now. */
export interface StopEvent extends EventBase {
  kind: "stop";
  device: string;
  via: DeviceVia;
  /** Matching alarms seen for this device, this one included (== maxEventsPerDevice). */
  count: number;
}
export type LogNote = "not-a-stop-alarm" | "unknown-device" | "below-threshold" | "after-stop";
/** Logged only: related alarms, alarms for devices not in this run, and matches before/after the stop. */
export interface LogEvent extends EventBase {
  kind: "log";
  device: string | null;
  via: DeviceVia | null;
  note: LogNote;
  count: number | null;
}
export type SyslogEvent = StopEvent | LogEvent;

// Object literals spelled out (no spread of a shared base): a spread costs V8's slow clone path, per event.
function logEvent(device: string | null, via: DeviceVia | null, note: LogNote, count: number | null, hit: MatchHit, matcher: Matcher, view: SyslogView, receivedAt: ReceivedAt): LogEvent {
  return { kind: "log", device, via, note, count, reason: hit.reason, matcher: matcher.name, message: view.line, format: view.format, receivedAt, from: view.from };
}

/** Lower-case, no brackets, IPv4-mapped IPv6 as IPv4: "::ffff:192.0.2.1" and "192.0.2.1" are one sender. */
export function normalizeAddress(address: string): string {
  let a = address.trim().toLowerCase();
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  if (a.startsWith("::ffff:") && isIPv4(a.slice(7))) a = a.slice(7);
  return a;
}

export type Lane = "priority" | "bulk" | "ignore";
/** The prefilter's literals: "priority" when a frame holds one of `priority`, else "bulk" when `unfiltered` or it holds one of `bulk`. */
export interface Prefilter {
  priority: string[];
  bulk: string[];
  unfiltered: boolean;
}

/**
 * The prefilter itself: 0 (priority) when `frame` holds one of `priority`, 1 (bulk) when
 * `unfiltered` or it holds one of `bulk`, -1 (ignore). Self-contained (nothing from this module's
 * scope), because the syslog reader thread runs it from its source text (udp-reader.ts).
 */
export function prefilterLane(frame: Buffer, priority: readonly Buffer[], bulk: readonly Buffer[], unfiltered: boolean): 0 | 1 | -1 {
  for (const lit of priority) if (frame.indexOf(lit) !== -1) return 0;
  if (unfiltered) return 1;
  for (const lit of bulk) if (frame.indexOf(lit) !== -1) return 1;
  return -1;
}

const LANES = ["priority", "bulk"] as const;

export interface RouterOptions {
  matchers: readonly Matcher[];
  /** Device addresses of this run; events name them as spelled here. Omitted: any address is a device. */
  devices?: Iterable<string>;
  /** Stop a device at its Nth matching alarm (default 1). */
  maxEventsPerDevice?: number;
}

// Without a device list every alarm address gets a counter; cap them so forged alarms cannot grow memory.
const MAX_TRACKED_DEVICES = 4096;

export class AlarmRouter {
  readonly matchers: readonly Matcher[];
  readonly maxEventsPerDevice: number;
  /** Frames routed, by how they decoded. */
  readonly decodeStats = { rfc5424: 0, rfc3164: 0, raw: 0 };
  private readonly devices: Map<string, string> | null;
  private readonly counts = new Map<string, number>();
  private readonly priorityLiterals: Buffer[];
  private readonly bulkLiterals: Buffer[];
  private readonly unfiltered: boolean;

  constructor(opts: RouterOptions) {
    this.matchers = [...opts.matchers];
    const max = opts.maxEventsPerDevice ?? 1;
    if (!Number.isInteger(max) || max < 1) throw new ConfigError(`maxEventsPerDevice must be an integer >= 1, got ${max}`);
    this.maxEventsPerDevice = max;
    this.devices = opts.devices === undefined ? null : new Map([...opts.devices].map((d) => [normalizeAddress(d), d]));
    const uniq = (xs: string[]) => [...new Set(xs)].map((s) => Buffer.from(s, "utf8"));
    this.priorityLiterals = uniq(this.matchers.flatMap((m) => m.stopLiterals ?? []));
    this.bulkLiterals = uniq(this.matchers.flatMap((m) => m.logLiterals));
    this.unfiltered = this.matchers.some((m) => m.stopLiterals === null);
  }

  /**
   * The cheap prefilter, run on every frame before any parsing: "priority" when the bytes hold a
   * built-in stop literal, "bulk" when they might matter otherwise, "ignore" for unrelated traffic.
   */
  lane(frame: Uint8Array): Lane {
    const buf = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.length);
    const lane = prefilterLane(buf, this.priorityLiterals, this.bulkLiterals, this.unfiltered);
    return lane === -1 ? "ignore" : LANES[lane];
  }

  /** What lane() searches for, as text: the syslog reader thread runs the same prefilter (udp-reader.ts). */
  prefilter(): Prefilter {
    return { priority: this.priorityLiterals.map((b) => b.toString("utf8")), bulk: this.bulkLiterals.map((b) => b.toString("utf8")), unfiltered: this.unfiltered };
  }

  /** Decode, match and count one frame. undefined: nothing any matcher cares about. */
  route(frame: Uint8Array, from: Sender, receivedAt: ReceivedAt): SyslogEvent | undefined {
    const view = decodeSyslog(frame, from);
    this.decodeStats[view.format]++;
    let hit: MatchHit | undefined;
    let matcher: Matcher | undefined;
    for (const m of this.matchers) {
      const h = m.match(view);
      if (h === undefined) continue;
      if (h.stop) {
        hit = h;
        matcher = m;
        break;
      }
      if (hit === undefined) {
        hit = h;
        matcher = m;
      }
    }
    if (hit === undefined || matcher === undefined) return undefined;
    const dev = this.resolve(hit.candidates);
    if (dev === undefined) return logEvent(null, null, hit.stop ? "unknown-device" : "not-a-stop-alarm", null, hit, matcher, view, receivedAt);
    if (!hit.stop) return logEvent(dev.device, dev.via, "not-a-stop-alarm", null, hit, matcher, view, receivedAt);
    const count = this.bump(dev.device);
    if (count === this.maxEventsPerDevice) {
      return { kind: "stop", device: dev.device, via: dev.via, count, reason: hit.reason, matcher: matcher.name, message: view.line, format: view.format, receivedAt, from: view.from };
    }
    return logEvent(dev.device, dev.via, count < this.maxEventsPerDevice ? "below-threshold" : "after-stop", count, hit, matcher, view, receivedAt);
  }

  /** Matching alarms counted per device so far. */
  countFor(device: string): number {
    return this.counts.get(device) ?? 0;
  }

  private resolve(candidates: MatchHit["candidates"]): { device: string; via: DeviceVia } | undefined {
    for (const c of candidates) {
      const key = normalizeAddress(c.address);
      if (key === "") continue;
      if (this.devices === null) return { device: key, via: c.via };
      const device = this.devices.get(key);
      if (device !== undefined) return { device, via: c.via };
    }
    return undefined;
  }

  private bump(device: string): number {
    const prev = this.counts.get(device);
    if (prev === undefined && this.counts.size >= MAX_TRACKED_DEVICES) return this.maxEventsPerDevice + 1;
    const n = (prev ?? 0) + 1;
    this.counts.set(device, n);
    return n;
  }
}
