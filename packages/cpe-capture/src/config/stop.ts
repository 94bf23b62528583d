// The alarms of the run's `stop:` section: a built-in matcher by name, or a user pattern with a
// `device` group.
import { BUILTIN_ALARMS, type BuiltinAlarm } from "./alarms.js";
import { describeValue, fail, isPlainObject, ok, unknownKeys, type Parsed } from "./issues.js";

export type StopAlarm =
  | { kind: "builtin"; name: BuiltinAlarm }
  /** A JS regular expression with a named group `device` that captures the device address. */
  | { kind: "pattern"; pattern: string; flags: string };

export function parseAlarm(v: unknown): Parsed<StopAlarm> {
  if (typeof v === "string") {
    return (BUILTIN_ALARMS as readonly string[]).includes(v)
      ? ok({ kind: "builtin", name: v as BuiltinAlarm })
      : fail(`expected ${BUILTIN_ALARMS.join("|")} or { pattern: REGEX }, got ${describeValue(v)}`);
  }
  if (!isPlainObject(v)) return fail(`expected ${BUILTIN_ALARMS.join("|")} or { pattern: REGEX }, got ${describeValue(v)}`);
  const issues = unknownKeys(v, ["pattern", "flags"]);
  const flags = v.flags === undefined ? "" : v.flags;
  if (typeof flags !== "string" || !/^(?!.*(.).*\1)[imsu]*$/.test(flags)) {
    issues.push({ path: ["flags"], message: `expected some of the flags i, m, s, u, got ${describeValue(v.flags)}` });
  }
  if (v.pattern === undefined) {
    issues.push({ path: ["pattern"], message: "required" });
  } else if (typeof v.pattern !== "string" || v.pattern === "") {
    issues.push({ path: ["pattern"], message: `expected a regular expression, got ${describeValue(v.pattern)}` });
  } else if (typeof flags === "string" && issues.every((i) => i.path[0] !== "flags")) {
    const problem = checkAlarmPattern(v.pattern, flags);
    if (problem !== undefined) issues.push({ path: ["pattern"], message: problem });
  }
  return issues.length === 0 ? ok({ kind: "pattern", pattern: v.pattern as string, flags: flags as string }) : { ok: false, issues };
}

/** Why a user pattern is unusable, or undefined: it must compile and have a `device` named group. */
export function checkAlarmPattern(pattern: string, flags = ""): string | undefined {
  let groups: Record<string, unknown> | undefined;
  try {
    new RegExp(pattern, flags);
    // Matching "" against `(?:p)|` always succeeds through the empty branch, and `groups` then
    // lists every named group of p: the one sure way to ask the engine which groups exist.
    groups = new RegExp(`(?:${pattern})|`, flags).exec("")?.groups;
  } catch (e) {
    // V8 says "Invalid regular expression: /<source>/<flags>: <reason>"; the source is in the file already.
    const text = e instanceof Error ? e.message : String(e);
    return `invalid regular expression: ${text.slice(text.lastIndexOf(": ") + 2)}`;
  }
  if (groups === undefined || !("device" in groups)) {
    return "needs a named group (?<device>...) that captures the device address";
  }
  return undefined;
}
