// The CLI script the AudioCodes REST API takes (`PUT /api/v1/files/cliScript/incremental`, a
// multipart/form-data upload, RFC 7578) and the debug-capture commands in it, per device type.
// Not handled: any other CLI command (a script with one is rejected before anything runs).
import { AUDIOCODES_CAPTURE_INTERFACES, AUDIOCODES_CAPTURE_PREFIX } from "@capsync/cpe-capture/drivers/audiocodes/interfaces";
import type { AudioCodesType } from "./types.js";

/** The device's own command prefix per type (the vendor module's table: one definition). */
export const COMMAND_PREFIX = AUDIOCODES_CAPTURE_PREFIX;

/** The `file` part of a multipart/form-data body (RFC 7578), or why there is none. */
export function parseMultipartFile(contentType: string | undefined, body: Buffer): { ok: true; fileName: string | undefined; content: Buffer } | { ok: false; reason: string } {
  const m = /^multipart\/form-data\s*;.*\bboundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) return { ok: false, reason: "Expected multipart/form-data with a boundary" };
  const delim = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delim);
  while (pos !== -1) {
    const start = pos + delim.length;
    if (body.subarray(start, start + 2).toString() === "--") break;
    const headerEnd = body.indexOf("\r\n\r\n", start);
    if (headerEnd === -1) break;
    const next = body.indexOf(Buffer.concat([Buffer.from("\r\n"), delim]), headerEnd + 4);
    if (next === -1) break;
    const headers = body.subarray(start, headerEnd).toString("latin1");
    const disp = /content-disposition:\s*form-data\s*;([^\r\n]*)/i.exec(headers)?.[1] ?? "";
    const name = /\bname="([^"]*)"/i.exec(disp)?.[1];
    if (name === "file") {
      return { ok: true, fileName: /\bfilename="([^"]*)"/i.exec(disp)?.[1], content: body.subarray(headerEnd + 4, next) };
    }
    pos = next + 2;
  }
  return { ok: false, reason: "Missing multipart part 'file'" };
}

export type Command = { kind: "iface"; iface: string } | { kind: "start" } | { kind: "stop" } | { kind: "show" };

/** Parses one CLI line of the debug-capture family; anything else is an error text. */
export function parseDebugCaptureCommand(type: AudioCodesType, line: string): Command | { error: string } {
  const words = line.trim().split(/\s+/);
  const prefix = COMMAND_PREFIX[type].split(" ");
  const rest = words.slice(prefix.length);
  if (words.length !== prefix.length + 1 || prefix.some((w, i) => words[i]?.toLowerCase() !== w)) {
    return { error: `Invalid command: '${line.trim()}'` };
  }
  const arg = rest[0]!.toLowerCase();
  if (arg === "start" || arg === "stop" || arg === "show") return { kind: arg };
  if ((AUDIOCODES_CAPTURE_INTERFACES[type] as readonly string[]).includes(arg)) return { kind: "iface", iface: arg };
  return { error: `Invalid interface '${rest[0]}' (expected one of: ${AUDIOCODES_CAPTURE_INTERFACES[type].join(", ")}, start, stop, show)` };
}

