// Typed errors for capture files. Parsers never throw on bad bytes: they return a FormatError
// (code + byte offset); the reader turns it into a CaptureError kept on `reader.error`.
import { CapsyncError } from "@capsync/protocol";

/** Stable codes for what can be wrong with a capture file. */
export type CaptureErrorCode =
  | "empty" // zero-length file
  | "bad-magic" // neither pcap nor pcapng
  | "truncated" // the file ends inside a header, record or block
  | "bad-version" // unsupported major version
  | "bad-block-length" // pcapng block length < 12, not a multiple of 4, or trailer differs
  | "block-too-large" // a length field asks for more than MAX_BLOCK_BYTES
  | "packet-too-large" // captured length > MAX_PACKET_BYTES or larger than its block
  | "bad-timestamp" // pcap fraction out of range
  | "bad-interface" // EPB/SPB/ISB names an interface the section has not described
  | "no-section" // pcapng data before the first Section Header Block
  | "bad-option" // pcapng option runs past its block
  | "bad-record" // NRB record runs past its block
  | "io"; // the file could not be opened or read

/** Plain data form, as returned by the parsers. */
export interface FormatError {
  code: CaptureErrorCode;
  /** Byte offset in the file of the header, record, block or option that is wrong. */
  offset: number;
  message: string;
}

export class CaptureError extends CapsyncError {
  override readonly code: CaptureErrorCode;
  readonly offset: number;
  readonly file: string | undefined;
  constructor(code: CaptureErrorCode, offset: number, message: string, options?: { file?: string; cause?: unknown }) {
    super(code, `${options?.file ? `${options.file}: ` : ""}${message} (at byte ${offset})`, options);
    this.code = code;
    this.offset = offset;
    this.file = options?.file;
  }
  static from(e: FormatError, file?: string): CaptureError {
    return new CaptureError(e.code, e.offset, e.message, file === undefined ? {} : { file });
  }
}

/** Largest packet we accept: tcpdump's MAXIMUM_SNAPLEN. Bigger lengths mean a corrupt file. */
export const MAX_PACKET_BYTES = 262_144;
/** Largest pcapng block we accept (packet + options, or a name table); bounds memory per read. */
export const MAX_BLOCK_BYTES = 16 * 1024 * 1024;
