// Legacy text mode, byte-compatible with trafficCapture v1.0.6 (cpe_capture_app.py /
// ovoc_capture_app.py). No authentication, no request ids, IPv4 in the original: opt-in only.
import { isDeviceAddress } from "./address.js";
import {
  type Code,
  type LegacyVerb,
  type ParseResult,
  LEGACY_VERBS,
  REASON_PHRASES,
  decodeDatagram,
  fail,
  isCode,
} from "./codes.js";
import { filenameProblem } from "./filename.js";

export interface LegacyRequest {
  verb: LegacyVerb;
  device: string;
  /** STOP only: the device capture's file name the agent's files must be renamed to match. */
  filename?: string;
}

export interface LegacyAnswer {
  code: Code;
  verb: LegacyVerb;
  device: string;
}

/** `CAPTURE 192.0.2.10`, `STOP 192.0.2.10 CPE_device_...pcap` — single spaces, as the original formats them. */
export function formatLegacyRequest(req: LegacyRequest): Buffer {
  const parts: string[] = [req.verb, req.device];
  if (req.verb === "STOP") parts.push(req.filename ?? "");
  return Buffer.from(parts.join(" "), "utf8");
}

/** `200 OK 192.0.2.10 CAPTURE` — the original's `'<code> <reason> {} <VERB>'.format(device)`. */
export function formatLegacyAnswer(ans: LegacyAnswer): Buffer {
  return Buffer.from(`${ans.code} ${REASON_PHRASES[ans.code]} ${ans.device} ${ans.verb}`, "utf8");
}

export function isLegacyVerb(s: string): s is LegacyVerb {
  return (LEGACY_VERBS as readonly string[]).includes(s);
}

export function parseLegacyRequest(buf: Uint8Array): ParseResult<LegacyRequest> {
  const text = decodeDatagram(buf);
  if (!text.ok) return text;
  // The original matched `^VERB` then `(VERB)\s+(.*$)`; we split on whitespace runs the same way
  // but then validate every field strictly.
  const tokens = text.value.trim().split(/\s+/);
  const verb = tokens[0] ?? "";
  if (!isLegacyVerb(verb)) return fail("unknown-verb", `unknown verb '${verb.slice(0, 20)}'`, "verb");
  const want = verb === "STOP" ? 3 : 2;
  if (tokens.length !== want) return fail("bad-args", `${verb} takes ${want - 1} argument(s), got ${tokens.length - 1}`, "args");
  const device = tokens[1]!;
  if (!isDeviceAddress(device)) return fail("bad-address", "device is not an IPv4/IPv6 literal", "device");
  if (verb !== "STOP") return { ok: true, value: { verb, device } };
  const filename = tokens[2]!;
  const problem = filenameProblem(filename);
  if (problem) return fail("bad-filename", `file name ${problem}`, "filename");
  return { ok: true, value: { verb, device, filename } };
}

// The original cpe_capture_app matched answers with /(\d+\s+[\w\s]+)\s+([0-9a-fA-F:.]+)\s+(.*)$/.
// We must accept exactly what it accepts, but not with that regex: V8 backtracks it in cubic time
// (a 1,190-byte datagram of digits and blanks takes over a minute), and anyone can send the orchestrator a
// datagram. originalAnswerMatch() finds the same leftmost match and groups in linear time;
// test/hostile/protocol.test.ts checks it against the regex itself on 100,000 inputs.

// JavaScript's \s, \w, \d, `.` (no line terminators) and the original's [0-9a-fA-F:.], per UTF-16 unit.
function isSpace(c: number): boolean {
  return (
    (c >= 9 && c <= 13) || c === 32 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
  );
}
const isDigit = (c: number) => c >= 48 && c <= 57;
const isWord = (c: number) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isHexish = (c: number) => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === 58 || c === 46;
const isLineTerminator = (c: number) => c === 10 || c === 13 || c === 0x2028 || c === 0x2029;

/**
 * Groups 1-3 of the original regex's match in `s`, or undefined when it does not match. How the
 * backtracking resolves: \d+ and the \s+ after the device take whole runs; group 1 is the longest
 * `\d+\s+[\w\s]+` (at least one unit after the first blank) whose end k starts
 * `\s+[0-9a-fA-F:.]+\s+` with no line terminator after it (`.*$`); the first digit where such a k
 * exists is the match.
 */
function originalAnswerMatch(s: string): [string, string, string] | undefined {
  const n = s.length;
  const c = new Array<number>(n);
  for (let i = 0; i < n; i++) c[i] = s.charCodeAt(i);
  // End of the run of a class starting at i (i itself when s[i] is not in it).
  const runEnds = (inClass: (x: number) => boolean) => {
    const end = new Int32Array(n + 1);
    end[n] = n;
    for (let i = n - 1; i >= 0; i--) end[i] = inClass(c[i]!) ? end[i + 1]! : i;
    return end;
  };
  const wsEnd = runEnds(isSpace);
  const hexEnd = runEnds(isHexish);
  const digitEnd = runEnds(isDigit);
  const wordOrSpaceEnd = runEnds((x) => isWord(x) || isSpace(x));
  let lastLineTerminator = -1;
  for (let i = 0; i < n; i++) if (isLineTerminator(c[i]!)) lastLineTerminator = i;
  // tail(k): `\s+([0-9a-fA-F:.]+)\s+(.*)$` matches at k. lastTail[i]: the largest such k <= i.
  const tail = (k: number) => {
    if (k >= n || !isSpace(c[k]!)) return false;
    const a = wsEnd[k]!;
    if (a >= n || !isHexish(c[a]!)) return false;
    const b = hexEnd[a]!;
    return b < n && isSpace(c[b]!) && wsEnd[b]! > lastLineTerminator;
  };
  const lastTail = new Int32Array(n);
  for (let k = 0, last = -1; k < n; k++) lastTail[k] = last = tail(k) ? k : last;
  for (let p = 0; p < n; p++) {
    if (!isDigit(c[p]!)) continue;
    const d = digitEnd[p]!;
    if (d >= n || !isSpace(c[d]!)) continue;
    const r = wordOrSpaceEnd[wsEnd[d]!]!;
    const k = lastTail[Math.min(r, n - 1)]!;
    if (k < d + 2) continue;
    const a = wsEnd[k]!;
    const b = hexEnd[a]!;
    return [s.slice(p, k), s.slice(a, b), s.slice(wsEnd[b]!)];
  }
  return undefined;
}

export function parseLegacyAnswer(buf: Uint8Array): ParseResult<LegacyAnswer> {
  const text = decodeDatagram(buf);
  if (!text.ok) return text;
  const m = originalAnswerMatch(text.value);
  if (!m) return fail("syntax", "not a legacy answer");
  const status = m[0].trim();
  const device = m[1];
  const verb = m[2].trim();
  const sm = /^(\d{3})\s+(.+)$/.exec(status);
  if (!sm) return fail("bad-code", "answer has no 3-digit code", "code");
  const code = Number(sm[1]);
  if (!isCode(code) || REASON_PHRASES[code] !== sm[2]) return fail("bad-code", `unknown status '${status.slice(0, 40)}'`, "code");
  if (!isLegacyVerb(verb)) return fail("unknown-verb", `unknown verb '${verb.slice(0, 20)}'`, "verb");
  if (!isDeviceAddress(device)) return fail("bad-address", "device is not an IPv4/IPv6 literal", "device");
  return { ok: true, value: { code, verb, device } };
}
