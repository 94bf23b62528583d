// Answer codes shared by both wire modes, with the legacy reason phrases spelled exactly as the
// original trafficCapture tools send them.

export const VERBS = ["REGISTER", "CAPTURE", "VERIFY", "STOP", "STATUS", "PING"] as const;
export type Verb = (typeof VERBS)[number];
export const LEGACY_VERBS = ["REGISTER", "CAPTURE", "VERIFY", "STOP"] as const;
export type LegacyVerb = (typeof LEGACY_VERBS)[number];

export const CODES = [100, 200, 400, 404, 409, 430, 503] as const;
export type Code = (typeof CODES)[number];

export const REASON_PHRASES: Record<Code, string> = {
  100: "Trying",
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  409: "Conflict",
  430: "Flow Failed",
  503: "Service Unavailable",
};

export function isVerb(s: string): s is Verb {
  return (VERBS as readonly string[]).includes(s);
}
export function isCode(n: number): n is Code {
  return (CODES as readonly number[]).includes(n);
}

export const MAX_DATAGRAM = 1200;
export const DEFAULT_PORT = 20001;

/** Typed parse failure: parsers of wire input never throw. */
export type ParseErrorCode =
  | "oversize"
  | "not-utf8"
  | "empty"
  | "syntax"
  | "bad-version"
  | "bad-id"
  | "bad-ts"
  | "unknown-verb"
  | "bad-address"
  | "bad-filename"
  | "bad-args"
  | "bad-code"
  | "bad-detail"
  | "bad-mac"
  | "stale";

export interface ParseFailure {
  ok: false;
  code: ParseErrorCode;
  field?: string;
  message: string;
}
export type ParseResult<T> = { ok: true; value: T } | ParseFailure;

export function fail(code: ParseErrorCode, message: string, field?: string): ParseFailure {
  return field === undefined ? { ok: false, code, message } : { ok: false, code, message, field };
}

/** Decode one datagram to text: size limit, strict UTF-8, trailing NULs dropped. */
export function decodeDatagram(buf: Uint8Array): ParseResult<string> {
  if (buf.length > MAX_DATAGRAM) return fail("oversize", `datagram is ${buf.length} bytes, limit ${MAX_DATAGRAM}`);
  let end = buf.length;
  while (end > 0 && buf[end - 1] === 0) end--;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(0, end));
  } catch {
    return fail("not-utf8", "datagram is not valid UTF-8");
  }
  if (text.length === 0) return fail("empty", "datagram is empty");
  return { ok: true, value: text };
}
