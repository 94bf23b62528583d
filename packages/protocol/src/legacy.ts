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

// The original cpe_capture_app's answer regex, kept verbatim so we accept exactly what it accepts.
const ORIGINAL_ANSWER = /(\d+\s+[\w\s]+)\s+([0-9a-fA-F:.]+)\s+(.*)$/;

export function parseLegacyAnswer(buf: Uint8Array): ParseResult<LegacyAnswer> {
  const text = decodeDatagram(buf);
  if (!text.ok) return text;
  const m = ORIGINAL_ANSWER.exec(text.value);
  if (!m) return fail("syntax", "not a legacy answer");
  const status = m[1]!.trim();
  const device = m[2]!;
  const verb = m[3]!.trim();
  const sm = /^(\d{3})\s+(.+)$/.exec(status);
  if (!sm) return fail("bad-code", "answer has no 3-digit code", "code");
  const code = Number(sm[1]);
  if (!isCode(code) || REASON_PHRASES[code] !== sm[2]) return fail("bad-code", `unknown status '${status.slice(0, 40)}'`, "code");
  if (!isLegacyVerb(verb)) return fail("unknown-verb", `unknown verb '${verb.slice(0, 20)}'`, "verb");
  if (!isDeviceAddress(device)) return fail("bad-address", "device is not an IPv4/IPv6 literal", "device");
  return { ok: true, value: { code, verb, device } };
}
