// The contract between the streaming reader and a file format's record parser (pcap, pcapng).
import type { FormatError } from "./errors.js";
import type { RawBatch } from "./raw.js";
import type { CapturedPacket } from "./types.js";

/**
 * A synchronous record parser driven by the reader. `parse` consumes whole records from
 * buf[pos..], pushing packets to `out` until `max` packets, and returns the new position. When it
 * stops early it sets exactly one of `need` (bytes needed at the returned position) or `error`.
 */
export interface FormatParser {
  need: number;
  error: FormatError | undefined;
  parse(buf: Buffer, pos: number, base: number, out: CapturedPacket[] | RawBatch, max: number): number;
}
