// Authenticated mode v1 ("CSYNC/1"), exactly as ../shared/PROTOCOL.md specifies: one datagram per
// message, HMAC-SHA256 over every byte before " mac=". Not handled here: sockets, retries, replay
// caches (the agent and the orchestrator's client own those).
import { type KeyObject, createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual } from "node:crypto";
import { isDeviceAddress } from "./address.js";
import {
  type Code,
  type ParseFailure,
  type ParseResult,
  type Verb,
  MAX_DATAGRAM,
  decodeDatagram,
  fail,
  isCode,
  isVerb,
} from "./codes.js";
import { CapsyncError } from "./errors.js";
import { filenameProblem } from "./filename.js";

export const V1_TAG = "CSYNC/1";
const DEFAULT_WINDOW_MS = 30_000;

export interface V1Request {
  id: string;
  ts: number;
  verb: Verb;
  /** REGISTER/CAPTURE/VERIFY/STOP. */
  device?: string;
  /** STOP only. */
  filename?: string;
  /** CAPTURE only: base64url of a JSON capture spec, decoded by the caller. */
  spec?: string;
}

export interface V1Answer {
  id: string;
  ts: number;
  code: Code;
  verb: Verb;
  /** null is written as "-" (PING, STATUS). */
  device: string | null;
  details: Record<string, string>;
}

export interface Verified<T> {
  value: T;
  /** Index of the key (in the list given to the parser) whose MAC matched: answer with the same one. */
  keyIndex: number;
}

export type V1RequestResult =
  | ({ ok: true } & Verified<V1Request>)
  | ParseFailure
  | (ParseFailure & { code: "stale"; request: V1Request; keyIndex: number });

/** Random bytes drawn 8 at a time: one randomBytes() call per 512 ids (each call costs as much as 4 kB). */
let idPool = Buffer.alloc(0);
let idAt = 0;

export function newRequestId(): string {
  if (idAt + 8 > idPool.length) {
    idPool = randomBytes(4096);
    idAt = 0;
  }
  idAt += 8;
  return idPool.toString("hex", idAt - 8, idAt);
}

/**
 * A key's public name (12 hex digits of SHA-256 over a label and the key): an agent names the
 * orchestrator that owns a capture by it, and cpe-capture prints its own, so an operator can tell
 * two orchestrators' keys apart. It allows no guessing an authenticated datagram's HMAC does not.
 */
export function keyId(key: Uint8Array): string {
  return createHash("sha256").update("capsync key id\0").update(key).digest("hex").slice(0, 12);
}

// --- percent encoding (RFC 3986: only unreserved characters stay literal) -----------------------
export function pctEncode(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

export function pctDecode(s: string): string | undefined {
  if (!/^(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})*$/.test(s)) return undefined;
  const bytes = Buffer.from(s.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1");
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

// --- MAC ----------------------------------------------------------------------------------------
/** A key's KeyObject, made once: createHmac() with raw key bytes imports them again on every call (~3x the cost). */
const keyObjects = new WeakMap<Uint8Array, KeyObject>();

export function computeMac(key: Uint8Array, body: string | Uint8Array): string {
  let k = keyObjects.get(key);
  if (!k) keyObjects.set(key, (k = createSecretKey(key)));
  return createHmac("sha256", k).update(body).digest("hex");
}

function seal(body: string, key: Uint8Array): Buffer {
  const out = Buffer.from(`${body} mac=${computeMac(key, body)}`, "utf8");
  if (out.length > MAX_DATAGRAM) throw new CapsyncError("protocol-oversize", `message is ${out.length} bytes, limit ${MAX_DATAGRAM}`);
  return out;
}

/** Split "<body> mac=<hex>" and find the key that signed it; constant-time compare. */
function open(text: string, keys: readonly Uint8Array[]): ParseResult<{ body: string; keyIndex: number }> {
  const at = text.lastIndexOf(" mac=");
  if (at < 0) return fail("syntax", "no mac field", "mac");
  const mac = text.slice(at + 5);
  if (!/^[0-9a-f]{64}$/.test(mac)) return fail("syntax", "mac is not 64 lowercase hex digits", "mac");
  const body = text.slice(0, at);
  const given = Buffer.from(mac, "hex");
  for (let i = 0; i < keys.length; i++) {
    const want = Buffer.from(computeMac(keys[i]!, body), "hex");
    if (timingSafeEqual(given, want)) return { ok: true, value: { body, keyIndex: i } };
  }
  return fail("bad-mac", "mac does not match any key", "mac");
}

const ID = /^[0-9a-f]{16}$/;
const TS = /^(0|[1-9]\d{0,15})$/;
const DETAIL_KEY = /^[a-z][a-z0-9_]{0,31}$/;

function checkHeader(tokens: string[], kind: "REQ" | "ANS"): ParseFailure | { id: string; ts: number } {
  if (tokens[0] !== V1_TAG) return fail("bad-version", `expected ${V1_TAG}`, "version");
  if (tokens[1] !== kind) return fail("syntax", `expected ${kind}`, "kind");
  const id = tokens[2] ?? "";
  if (!ID.test(id)) return fail("bad-id", "id must be 16 lowercase hex digits", "id");
  const tsText = tokens[3] ?? "";
  if (!TS.test(tsText)) return fail("bad-ts", "ts must be decimal milliseconds", "ts");
  return { id, ts: Number(tsText) };
}

function tokenize(body: string): string[] | undefined {
  // Exactly one space between fields, nothing leading or trailing.
  const tokens = body.split(" ");
  return tokens.some((t) => t.length === 0) ? undefined : tokens;
}

// --- requests -----------------------------------------------------------------------------------
export function formatRequest(req: V1Request, key: Uint8Array): Buffer {
  const parts: string[] = [V1_TAG, "REQ", req.id, String(req.ts), req.verb];
  if (req.device !== undefined) parts.push(req.device);
  if (req.filename !== undefined) parts.push(req.filename);
  if (req.spec !== undefined) parts.push(`spec=${req.spec}`);
  return seal(parts.join(" "), key);
}

export interface ParseRequestOptions {
  keys: readonly Uint8Array[];
  now?: number;
  windowMs?: number;
}

export function parseRequest(buf: Uint8Array, opts: ParseRequestOptions): V1RequestResult {
  const text = decodeDatagram(buf);
  if (!text.ok) return text;
  const opened = open(text.value, opts.keys);
  if (!opened.ok) return opened;
  const tokens = tokenize(opened.value.body);
  if (!tokens) return fail("syntax", "fields must be separated by exactly one space");
  const head = checkHeader(tokens, "REQ");
  if ("ok" in head) return head;
  const verb = tokens[4] ?? "";
  if (!isVerb(verb)) return fail("unknown-verb", `unknown verb '${verb.slice(0, 20)}'`, "verb");
  const args = tokens.slice(5);
  const req: V1Request = { id: head.id, ts: head.ts, verb };
  const bad = fillArgs(req, args);
  if (bad) return bad;
  const now = opts.now ?? Date.now();
  const windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
  if (Math.abs(now - req.ts) > windowMs) {
    return { ok: false, code: "stale", field: "ts", message: `timestamp is ${now - req.ts} ms from now`, request: req, keyIndex: opened.value.keyIndex };
  }
  return { ok: true, value: req, keyIndex: opened.value.keyIndex };
}

function fillArgs(req: V1Request, args: string[]): ParseFailure | undefined {
  const verb = req.verb;
  if (verb === "STATUS" || verb === "PING") {
    return args.length === 0 ? undefined : fail("bad-args", `${verb} takes no arguments`, "args");
  }
  const device = args[0];
  if (device === undefined) return fail("bad-args", `${verb} needs a device address`, "device");
  if (!isDeviceAddress(device)) return fail("bad-address", "device is not an IPv4/IPv6 literal", "device");
  req.device = device;
  if (verb === "STOP") {
    if (args.length !== 2) return fail("bad-args", "STOP takes <device> <filename>", "args");
    const problem = filenameProblem(args[1]!);
    if (problem) return fail("bad-filename", `file name ${problem}`, "filename");
    req.filename = args[1]!;
    return undefined;
  }
  if (verb === "CAPTURE" && args.length === 2) {
    const m = /^spec=([A-Za-z0-9_-]{1,1000})$/.exec(args[1]!);
    if (!m) return fail("bad-args", "CAPTURE's second argument must be spec=<base64url>", "spec");
    req.spec = m[1]!;
    return undefined;
  }
  return args.length === 1 ? undefined : fail("bad-args", `${verb} takes <device>`, "args");
}

// --- answers ------------------------------------------------------------------------------------
export function formatAnswer(ans: V1Answer, key: Uint8Array): Buffer {
  const parts: string[] = [V1_TAG, "ANS", ans.id, String(ans.ts), String(ans.code), ans.verb, ans.device ?? "-"];
  for (const [k, v] of Object.entries(ans.details)) {
    if (!DETAIL_KEY.test(k)) throw new CapsyncError("protocol-bad-detail", `detail key '${k}' is not allowed`);
    parts.push(`${k}=${pctEncode(v)}`);
  }
  return seal(parts.join(" "), key);
}

export function parseAnswer(buf: Uint8Array, keys: readonly Uint8Array[]): ({ ok: true } & Verified<V1Answer>) | ParseFailure {
  const text = decodeDatagram(buf);
  if (!text.ok) return text;
  const opened = open(text.value, keys);
  if (!opened.ok) return opened;
  const tokens = tokenize(opened.value.body);
  if (!tokens) return fail("syntax", "fields must be separated by exactly one space");
  const head = checkHeader(tokens, "ANS");
  if ("ok" in head) return head;
  const code = Number(tokens[4]);
  if (!/^\d{3}$/.test(tokens[4] ?? "") || !isCode(code)) return fail("bad-code", "unknown answer code", "code");
  const verb = tokens[5] ?? "";
  if (!isVerb(verb)) return fail("unknown-verb", `unknown verb '${verb.slice(0, 20)}'`, "verb");
  const devTok = tokens[6];
  if (devTok === undefined) return fail("bad-args", "answer has no device field", "device");
  if (devTok !== "-" && !isDeviceAddress(devTok)) return fail("bad-address", "device is not an IPv4/IPv6 literal", "device");
  const details: Record<string, string> = {};
  for (const t of tokens.slice(7)) {
    const eq = t.indexOf("=");
    const k = eq > 0 ? t.slice(0, eq) : "";
    if (!DETAIL_KEY.test(k) || k in details) return fail("bad-detail", `bad detail key '${k.slice(0, 32)}'`, "details");
    const v = pctDecode(t.slice(eq + 1));
    if (v === undefined) return fail("bad-detail", `detail '${k}' is not percent-encoded UTF-8`, k);
    details[k] = v;
  }
  return {
    ok: true,
    value: { id: head.id, ts: head.ts, code, verb, device: devTok === "-" ? null : devTok, details },
    keyIndex: opened.value.keyIndex,
  };
}
