// Parsers of single config values (integers, ports, names, paths, durations, booleans) and the
// wrapper that turns any field parser into a zod schema.
import { MAX_DURATION_MS, parseDurationValue } from "@capsync/protocol";
import { z } from "zod";
import { describeValue, fail, ok, type Parsed } from "./issues.js";

export function parseInteger(min: number, max: number, what = "an integer") {
  return (v: unknown): Parsed<number> =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max
      ? ok(v)
      : fail(`expected ${what} ${min}..${max}, got ${describeValue(v)}`);
}
export const parsePort = parseInteger(1, 65535, "a port");
export const parsePortOrZero = parseInteger(0, 65535, "a port (0 = any free port)");

export function parseBoolean(v: unknown): Parsed<boolean> {
  return typeof v === "boolean" ? ok(v) : fail(`expected true or false, got ${describeValue(v)}`);
}

export function parseNonEmptyString(v: unknown): Parsed<string> {
  if (typeof v !== "string") return fail(`expected a string, got ${describeValue(v)}`);
  return v.trim() === "" ? fail("must not be empty") : ok(v);
}

export function parseFilePath(v: unknown): Parsed<string> {
  if (typeof v !== "string" || v.trim() === "" || v.includes("\0")) {
    return fail(`expected a file path, got ${describeValue(v)}`);
  }
  return ok(v);
}

export function parseName(v: unknown): Parsed<string> {
  // Names end up in run-folder file names, so keep them to a portable alphabet.
  return typeof v === "string" && /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v)
    ? ok(v)
    : fail(`expected a name of letters, digits, '.', '_' or '-' (at most 64), got ${describeValue(v)}`);
}

/** "90s", "1h30m" or seconds, up to MAX_DURATION_MS → milliseconds. */
export function parseDurationField(v: unknown): Parsed<number> {
  const r = parseDurationValue(v, MAX_DURATION_MS);
  return r.ok ? ok(r.ms) : fail(r.message);
}

/**
 * stop.duration and a device's duration: a duration, or `none` — no limit, the capture waits for
 * its alarm (or a signal, or `cpe-capture stop`) however long that takes.
 */
export function parseDurationOrNone(v: unknown): Parsed<number | undefined> {
  return v === "none" ? ok(undefined) : parseDurationField(v);
}

/** Wrap a parser for zod; `undefined` (a missing key) is "required" unless the field is optional/defaulted. */
export function field<T>(parse: (v: unknown) => Parsed<T>) {
  return z.unknown().transform((v, ctx): T => {
    const r: Parsed<T> = v === undefined ? fail("required") : parse(v);
    if (r.ok) return r.value;
    for (const issue of r.issues) ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
    return z.NEVER;
  });
}
