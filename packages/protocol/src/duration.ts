// Human durations as users write them on command lines and in run.yaml: "90s", "15m", "24h", "1d",
// "500ms", "1h30m" (units largest first, spaces allowed between parts), or a plain number of seconds.
// Values are milliseconds (what timers take). Not handled: weeks, negative or signed values, ISO 8601.

export type DurationParse = { ok: true; ms: number } | { ok: false; message: string };

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type Unit = keyof typeof UNIT_MS;
// Largest first; also the order compound durations must be written in ("1h30m", not "30m1h").
const UNITS: readonly Unit[] = ["d", "h", "m", "s", "ms"];

/** Upper bound for any duration in the config: a year is already far beyond any real capture. */
export const MAX_DURATION_MS = 366 * UNIT_MS.d;

const EXPECTED = "expected a duration like 90s, 15m, 24h, 1d or a number of seconds";

/**
 * Parse one value (text, or a number of seconds); never throws. Rejects zero, negatives and
 * anything above `maxMs`, each with a message that quotes the value.
 * @example parseDurationValue("1h30m") → { ok: true, ms: 5_400_000 }
 */
export function parseDurationValue(input: unknown, maxMs: number = Number.MAX_SAFE_INTEGER): DurationParse {
  let ms: number;
  if (typeof input === "number") {
    if (!Number.isFinite(input)) return { ok: false, message: `${EXPECTED}, got ${String(input)}` };
    ms = Math.round(input * 1000);
  } else if (typeof input === "string") {
    const parsed = parseDurationText(input);
    if (parsed === undefined) return { ok: false, message: `${EXPECTED}, got ${quote(input)}` };
    ms = parsed;
  } else {
    return { ok: false, message: `${EXPECTED}, got ${kindOf(input)}` };
  }
  if (ms <= 0) return { ok: false, message: `must be longer than 0, got ${describeValue(input)}` };
  if (ms > maxMs) return { ok: false, message: `must be at most ${formatDuration(maxMs)}, got ${describeValue(input)}` };
  return { ok: true, ms };
}

/** Milliseconds, or undefined when the text (or number of seconds) is not a positive duration. */
export function parseDuration(text: string | number): number | undefined {
  const r = parseDurationValue(text);
  return r.ok ? r.ms : undefined;
}

function parseDurationText(text: string): number | undefined {
  const s = text.trim();
  // A bare number in a string ("90") means seconds, like a YAML/JSON number does.
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const part = /(\d+(?:\.\d+)?)\s*(ms|d|h|m|s)\s*/y;
  let pos = 0;
  let lastUnit = -1;
  let total = 0;
  while (pos < s.length) {
    part.lastIndex = pos;
    const m = part.exec(s);
    if (!m) return undefined;
    const unitIndex = UNITS.indexOf(m[2] as Unit);
    if (unitIndex <= lastUnit) return undefined; // repeated or out of order: "1m1h", "1s1s"
    lastUnit = unitIndex;
    total += Number(m[1]) * UNIT_MS[m[2] as Unit];
    pos = part.lastIndex;
  }
  return pos === 0 ? undefined : Math.round(total);
}

/** Canonical text for a duration in ms: 90000 → "1m30s", 86400000 → "1d"; parseDuration reads it back. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return "0s";
  let rest = Math.round(ms);
  let out = "";
  for (const unit of UNITS) {
    const n = Math.floor(rest / UNIT_MS[unit]);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * UNIT_MS[unit];
    }
  }
  return out;
}

function quote(s: string): string {
  const shown = s.length > 60 ? `${s.slice(0, 57)}...` : s;
  return `'${shown.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}'`;
}

function describeValue(v: unknown): string {
  return typeof v === "string" ? quote(v) : String(v);
}

function kindOf(v: unknown): string {
  if (v === null) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "boolean") return String(v);
  return typeof v === "object" ? "a mapping" : typeof v;
}
