// What every NX-OS text parser returns: the value, or a typed issue naming what the text lacked.
// Device text is input: parsers never throw on it.

/** @example { ok: false, code: "no-hash", message: "no 'Hash for VRF' line in: % Invalid command" } */
export interface ParseIssue {
  ok: false;
  code: string;
  message: string;
}

export type Parsed<T> = { ok: true; value: T } | ParseIssue;

/** The first non-blank line of `text`, at most 120 characters, for messages. */
export function firstLine(text: string): string {
  return (text.split("\n").find((l) => l.trim() !== "") ?? "(empty)").trim().slice(0, 120);
}

/** `text` with CRLF as LF, so one set of patterns reads NX-API and SSH output alike. */
export function lines(text: string): string[] {
  return text.replace(/\r\n?/g, "\n").split("\n");
}

export const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;
