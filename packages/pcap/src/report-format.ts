// Times, durations and clock offsets as the report prints them.

const NS = 1_000_000_000n;

/** ISO 8601 with nanoseconds, UTC: 2026-11-03T10:00:00.123456789Z. */
export function isoNanos(ns: bigint): string {
  let sec = ns / NS;
  let frac = ns % NS;
  if (frac < 0n) ((frac += NS), (sec -= 1n));
  const d = new Date(Number(sec) * 1000);
  if (Number.isNaN(d.getTime())) return `${ns}ns`;
  return `${d.toISOString().slice(0, 19)}.${frac.toString().padStart(9, "0")}Z`;
}

/** A duration for humans: "850 ns", "12.345 µs", "12.300 ms", "2.134567 s". */
export function fmtDuration(ns: number | null | undefined): string {
  if (ns === null || ns === undefined || !Number.isFinite(ns)) return "—";
  const a = Math.abs(ns);
  if (a < 1e3) return `${Math.round(ns)} ns`;
  if (a < 1e6) return `${(ns / 1e3).toFixed(1)} µs`;
  if (a < 1e9) return `${(ns / 1e6).toFixed(3)} ms`;
  return `${(ns / 1e9).toFixed(6)} s`;
}

export const pct = (lost: number, sent: number) => (sent === 0 ? 0 : Math.round((lost / sent) * 10000) / 100);
export const timeOfDay = (iso: string) => iso.slice(11, 23);

export function offsetText(seconds: number | null, u: number | null, drift: number): string {
  if (seconds === null) return "unknown";
  const sign = seconds >= 0 ? "+" : "-";
  return `${sign}${Math.abs(seconds).toFixed(6)} s${u === null ? " (one-way estimate)" : ` ± ${fmtDuration(u)}`}${drift ? `, drift ${drift.toFixed(3)} ppm` : ""}`;
}
