// Capture file names that cross the wire (STOP <device> <filename>): a single path component
// from a small alphabet, so no request can name a file outside the capture directory.

const NAME = /^[A-Za-z0-9._-]{1,200}$/;

export function isSafeFilename(s: string): boolean {
  return NAME.test(s) && s !== "." && s !== ".." && !s.includes("..");
}

/** Why a name is refused, for error messages; undefined when it is fine. */
export function filenameProblem(s: string): string | undefined {
  if (s.length === 0) return "is empty";
  if (s.length > 200) return "is longer than 200 characters";
  if (/[/\\]/.test(s)) return "contains a path separator";
  if (s.includes("..")) return "contains '..'";
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(s)) return "contains a control character";
  if (!NAME.test(s)) return "may only contain letters, digits, '.', '_' and '-'";
  if (s === ".") return "is '.'";
  return undefined;
}

/** Timestamp in the original's file-name format: YYYY-mm-ddTHH.MM.SS.ffffff (local time, like Python's). */
export function captureTimestamp(d: Date = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
    `${p(d.getHours())}.${p(d.getMinutes())}.${p(d.getSeconds())}.${p(d.getMilliseconds() * 1000, 6)}`
  );
}
