// OVOC alarm text as OVOC alarm-forwarding rules (ruleDestType SYSLOG) put it in the syslog MSG:
// "New Alarm - Connection Alarm, Source: ..., Description: Connection Lost, ..., IP Address: 192.0.2.10, ...".
// Fields are found the way trafficCapture v1.0.6 found them (one lazy `Key:(.*?),` search each), so field
// order and extra fields do not matter. Not handled: OVOC's SNMP/mail destinations, localised alarm text.
import { isDeviceAddress } from "@capsync/protocol";
import type { Matcher } from "./matcher.js";

export interface OvocAlarm {
  /** The word before "Alarm -": "New" for raised alarms (the only state the original acted on). */
  state: string;
  /** e.g. "Connection Alarm" */
  alarmName: string;
  description: string;
  source: string | null;
  /** The managed device's address, validated as an IPv4/IPv6 literal. */
  ipAddress: string | null;
  deviceName: string | null;
  tenant: string | null;
  region: string | null;
  deviceType: string | null;
  deviceSerial: string | null;
  deviceDescription: string | null;
}

export type OvocAlarmErrorCode = "not-ovoc-alarm" | "missing-field" | "invalid-field";
export interface OvocAlarmFailure {
  ok: false;
  code: OvocAlarmErrorCode;
  field: string;
  message: string;
}
export type OvocAlarmResult = { ok: true; value: OvocAlarm } | OvocAlarmFailure;

// Callers bound the text (the listener caps message size at 16 KiB). The header and Source: are
// matched as the original's regexes /(?:^|[^A-Za-z])([A-Z][A-Za-z]*)\s+Alarm\s*-\s*(.*?),/ and
// /(?:^|[\s,.])Source:(.*?)(?:,|$)/ would (test/hostile/syslog.test.ts checks them against each
// other), but not by those regexes: an attempt that finds no comma before the end of the line
// scans the whole line, so "X Alarm - " (or " Source:") repeated over a frame is quadratic work.
// The remaining fields start with a comma; each is found as the regex /,\s*Key:(.*?)(?:,|$)/ would
// find it (ovoc-alarm.test.ts checks the two against each other), by an indexOf of "Key:" instead:
// eight regexes were most of the cost of an alarm's parse (a syslog storm parses every OVOC line).
const HEADER_AT = /([A-Z][A-Za-z]*)\s+Alarm\s*-\s*/y;

function clean(v: string): string {
  // NULs too: OVOC ends its datagrams with one and callers may hand us the raw frame.
  let end = v.length;
  while (end > 0 && v.charCodeAt(end - 1) === 0) end--;
  return (end === v.length ? v : v.slice(0, end)).trim();
}

/** What /\s/ matches: WhiteSpace and LineTerminator (ECMA-262). */
function isJsSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/**
 * /,\s*<key>:(.*?)(?:,|$)/ — or with `toEnd`, /,\s*<key>:(.*)$/s — on `s`: the first `<key>:`
 * with only blanks back to a comma, whose value reaches a comma or the end without a line
 * terminator (`.` stops at one, and `$` is the end of the text); cleaned.
 */
export function fieldOf(s: string, key: string, toEnd = false): string | null {
  const needle = `${key}:`;
  for (let i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + 1)) {
    let j = i - 1;
    while (j >= 0 && isJsSpace(s.charCodeAt(j))) j--;
    if (j < 0 || s.charCodeAt(j) !== 0x2c) continue;
    const from = i + needle.length;
    if (toEnd) return clean(s.slice(from));
    let k = from;
    for (; k < s.length; k++) {
      const c = s.charCodeAt(k);
      if (c === 0x2c || isLineTerminator(c)) break;
    }
    if (k === s.length || s.charCodeAt(k) === 0x2c) return clean(s.slice(from, k));
  }
  return null;
}

const isLetter = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isLineTerminator = (c: number) => c === 10 || c === 13 || c === 0x2028 || c === 0x2029;

/**
 * The first ',' or line terminator at or after an index (s.length if none): where `.*?` before a
 * comma must stop. Remembers the last stretch it scanned, so the rising indexes of one search scan
 * each character about once (linear even for "X Alarm - " repeated over 16 KiB), without the
 * per-message table a full precomputation cost on every OVOC line.
 */
function stopFinder(s: string): (from: number) => number {
  let lo = 0;
  let stop = -1;
  return (from) => {
    if (from >= lo && from <= stop) return stop;
    let i = from;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x2c || isLineTerminator(c)) break;
    }
    lo = from;
    stop = i;
    return i;
  };
}

/** The header: where its match starts, the comma that ends it, the state word and the alarm name. */
function findHeader(s: string): { index: number; comma: number; state: string; name: string } | undefined {
  if (!s.includes("Alarm") || !s.includes(",")) return undefined;
  const nextStop = stopFinder(s);
  const at = (st: number, p: number) => {
    // The state word starts with [A-Z]: every other position fails before the regex runs.
    const c0 = s.charCodeAt(p);
    if (!(c0 >= 65 && c0 <= 90)) return undefined;
    HEADER_AT.lastIndex = p;
    const m = HEADER_AT.exec(s);
    if (!m) return undefined;
    const q = p + m[0].length;
    const c = nextStop(q);
    return c < s.length && s.charCodeAt(c) === 0x2c ? { index: st, comma: c, state: m[1]!, name: s.slice(q, c) } : undefined;
  };
  // (?:^|[^A-Za-z]) at st: "^" (the state word starts at 0), else a non-letter before it.
  const first = at(0, 0);
  if (first) return first;
  for (let st = 0; st < s.length - 1; st++) {
    if (isLetter(s.charCodeAt(st))) continue;
    const h = at(st, st + 1);
    if (h) return h;
  }
  return undefined;
}

/** `Source:` after the start, a blank, ',' or '.', up to the next comma or the end (never across a line end). */
function sourceField(s: string): string | null {
  let nextStop: ((from: number) => number) | undefined;
  for (let i = s.indexOf("Source:"); i >= 0; i = s.indexOf("Source:", i + 1)) {
    if (i > 0 && !/[\s,.]/.test(s[i - 1]!)) continue;
    nextStop ??= stopFinder(s);
    const c = nextStop(i + 7);
    if (c === s.length || s.charCodeAt(c) === 0x2c) return clean(s.slice(i + 7, c));
  }
  return null;
}

/** Cheap test a caller can run before the full parse. */
export function looksLikeOvocAlarm(text: string): boolean {
  return findHeader(text) !== undefined;
}

/**
 * Parse the OVOC alarm fields out of a syslog MSG (or any text holding one).
 * @example parseOvocAlarm("New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, IP Address: 192.0.2.10, Device Type: Mediant 500L")
 *   → { ok: true, value: { state: "New", alarmName: "Connection Alarm", description: "Connection Lost", source: "Board#1",
 *        ipAddress: "192.0.2.10", deviceType: "Mediant 500L", deviceName: null, ... } }
 */
export function parseOvocAlarm(text: string): OvocAlarmResult {
  const header = findHeader(text);
  if (!header) return { ok: false, code: "not-ovoc-alarm", field: "header", message: "no '<State> Alarm - <name>,' header" };
  // Search fields from the comma that ends the header, so "Description:" in a host name cannot count.
  const rest = text.slice(header.comma);
  const description = fieldOf(rest, "Description");
  if (description === null) return { ok: false, code: "missing-field", field: "Description", message: "no 'Description:' field" };
  const ip = fieldOf(rest, "IP Address");
  if (ip !== null && !isDeviceAddress(ip)) {
    return { ok: false, code: "invalid-field", field: "IP Address", message: "'IP Address:' is not an IPv4/IPv6 literal" };
  }
  return {
    ok: true,
    value: {
      state: header.state,
      alarmName: header.name.trim(),
      description,
      source: sourceField(rest),
      ipAddress: ip,
      deviceName: fieldOf(rest, "Device Name"),
      tenant: fieldOf(rest, "Tenant"),
      region: fieldOf(rest, "Region"),
      deviceType: fieldOf(rest, "Device Type"),
      deviceSerial: fieldOf(rest, "Device Serial"),
      // Free text, last in OVOC's order: everything to the end, like the original's `Device Description:(.*$)`.
      deviceDescription: fieldOf(rest, "Device Description", true),
    },
  };
}

/** acEMSNodeConnectionLostAlarm as raised: "New ... Alarm" with Description "Connection Lost". */
export function isConnectionLost(alarm: OvocAlarm): boolean {
  return alarm.state === "New" && alarm.description.toLowerCase() === "connection lost";
}

/**
 * The built-in `connection-lost` stop alarm. Vendor-neutral on purpose, although OVOC is one vendor's
 * management server: the alarm is the server's text about any device it manages (the device is
 * read from its `IP Address:` field, never from who sent it), it is the default of `stop.alarms`
 * whatever device types a run has, and no device driver is involved in it. So it lives here, not
 * in a vendor module; the registry (drivers/index.ts) lists it first among the built-ins.
 */
export const CONNECTION_LOST: Matcher = {
  name: "connection-lost",
  stopLiterals: ["Connection Lost"],
  // Other OVOC alarms ("Connection established", ...) are logged, at lower priority.
  logLiterals: ["Alarm"],
  match(view) {
    if (!view.msg.includes("Alarm")) return undefined;
    const r = parseOvocAlarm(view.msg);
    const sender = { address: view.from.address, via: "sender" as const };
    if (!r.ok) {
      if (r.code === "not-ovoc-alarm") return undefined;
      return { stop: false, reason: `OVOC alarm not understood: ${r.message}`, candidates: [sender] };
    }
    const a = r.value;
    const candidates = a.ipAddress === null ? [sender] : [{ address: a.ipAddress, via: "alarm" as const }, sender];
    return { stop: isConnectionLost(a), reason: `${a.alarmName}: ${a.description}`, candidates };
  },
};
