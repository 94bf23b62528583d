// One streaming reader over classic pcap and pcapng, chosen by the file's magic. Packets come in
// batches parsed synchronously from one chunk; bad bytes end the stream with `error` set, after
// every packet before them was delivered.
import { decodePacket } from "./decode.js";
import { CaptureError, type FormatError } from "./errors.js";
import { isPcapMagic, parsePcapHeader, PcapParser, PCAP_HEADER_BYTES } from "./pcap.js";
import { PcapngParser } from "./pcapng.js";
import { BT_SHB } from "./pcapng-blocks.js";
import { RawBatch } from "./raw.js";
import { Cursor, DEFAULT_CHUNK_BYTES } from "./source.js";
import type { FormatParser } from "./parser.js";
import type { CaptureMeta, CapturedPacket, InterfaceInfo, InterfaceStatistics, NameRecord, SectionInfo } from "./types.js";

export type CaptureFormat = "pcap" | "pcapng";

/** The format a file's first four bytes announce: classic pcap (either byte order, µs or ns) or pcapng. */
export function captureFormatOf(head: Buffer, at = 0): CaptureFormat | undefined {
  if (isPcapMagic(head, at)) return "pcap";
  if (head.length >= at + 4 && head.readUInt32LE(at) === BT_SHB) return "pcapng";
  return undefined;
}

export interface OpenOptions {
  /** Fill `packet.decoded` (link, IP, TCP/UDP/ICMP headers). Default false. */
  decode?: boolean;
  /** Read size; memory per open reader is about one chunk plus the largest block. */
  chunkBytes?: number;
  /**
   * Read into chunks shared through a pool: a batch's packet `data` (and a RawBatch's `chunk`) is
   * valid only until the next nextBatch/nextRawBatch or close. For consumers done with each batch
   * before asking for the next; saves a fresh chunk per read. Default false.
   */
  reuseChunks?: boolean;
}

/**
 * @example
 * const r = openCapture("device.pcap", { decode: true });
 * for await (const p of r) console.log(p.tsNanos, p.decoded?.ip?.src);
 * if (r.error) console.error(r.error.code, r.error.offset); // e.g. "truncated", 1048612
 */
export class CaptureReader implements AsyncIterable<CapturedPacket>, CaptureMeta {
  /** The path, or "<buffer>". */
  readonly name: string;
  format: CaptureFormat | undefined;
  readonly interfaces: InterfaceInfo[] = [];
  readonly statistics: InterfaceStatistics[] = [];
  readonly names: NameRecord[] = [];
  readonly sections: SectionInfo[] = [];
  /** Set when the stream ended on bad bytes or an I/O failure; packets before it were delivered. */
  error: CaptureError | undefined;
  /** Packets delivered so far. */
  packets = 0;
  private cursor: Cursor | undefined;
  private parser: FormatParser | undefined;
  private done = false;
  private readonly source: string | Uint8Array;
  private readonly opts: OpenOptions;

  constructor(source: string | Uint8Array, opts: OpenOptions = {}) {
    this.source = source;
    this.name = typeof source === "string" ? source : "<buffer>";
    this.opts = opts;
  }

  /** Bytes of the file consumed so far (offset of the next record). */
  get offset(): number {
    return this.cursor?.offset ?? 0;
  }
  /** Size of the file (or buffer), once opened. */
  get size(): number | undefined {
    return this.cursor?.totalSize;
  }

  private fail(e: FormatError, cause?: unknown): void {
    this.error = new CaptureError(e.code, e.offset, e.message, { file: this.name, ...(cause !== undefined ? { cause } : {}) });
  }

  private async init(): Promise<boolean> {
    try {
      this.cursor = typeof this.source === "string" ? await Cursor.fromFile(this.source, this.opts.chunkBytes ?? DEFAULT_CHUNK_BYTES, this.opts.reuseChunks === true) : Cursor.fromBuffer(this.source);
    } catch (e) {
      this.fail({ code: "io", offset: 0, message: `cannot open: ${(e as Error).message}` }, e);
      return false;
    }
    const c = this.cursor;
    if (!(await c.fill(4))) {
      this.fail(c.available === 0 ? { code: "empty", offset: 0, message: "empty file" } : { code: "truncated", offset: 0, message: `file of ${c.available} bytes has no complete magic` });
      return false;
    }
    const format = captureFormatOf(c.buf, c.pos);
    if (format === "pcap") {
      this.format = "pcap";
      if (!(await c.fill(PCAP_HEADER_BYTES))) {
        this.fail({ code: "truncated", offset: 0, message: `pcap file header needs ${PCAP_HEADER_BYTES} bytes, file has ${c.available}` });
        return false;
      }
      const h = parsePcapHeader(c.buf, c.pos);
      if (!h.ok) {
        this.fail(h);
        return false;
      }
      this.parser = new PcapParser(h.value, this);
      c.pos += PCAP_HEADER_BYTES;
      return true;
    }
    if (format === "pcapng") {
      this.format = "pcapng";
      this.parser = new PcapngParser(this);
      return true;
    }
    this.fail({ code: "bad-magic", offset: 0, message: `not a pcap or pcapng file (magic 0x${c.buf.readUInt32BE(c.pos).toString(16).padStart(8, "0")})` });
    return false;
  }

  /**
   * The next packets (at most `max`, usually everything left in the current chunk), or null at the
   * end of the stream — check `error` then. Cheaper than the async iterator for bulk work.
   */
  async nextBatch(max = 8192): Promise<CapturedPacket[] | null> {
    const out: CapturedPacket[] = [];
    if (!(await this.pump(out, max))) return this.finish();
    if (this.opts.decode) for (const p of out) p.decoded = decodePacket(p.linktype, p.data);
    this.packets += out.length;
    return out;
  }

  /**
   * Bulk form for the merge: fills `batch` (struct of arrays, data as ranges of batch.chunk) and
   * returns false at the end of the stream. No decoding.
   */
  async nextRawBatch(batch: RawBatch): Promise<boolean> {
    if (!(await this.pump(batch, batch.capacity))) {
      await this.finish();
      return false;
    }
    this.packets += batch.n;
    return true;
  }

  /** Parse the next packets into `out`; false when none are left (then `error` may be set). */
  private async pump(out: CapturedPacket[] | RawBatch, max: number): Promise<boolean> {
    if (this.done) return false;
    if (this.parser === undefined && !(await this.init())) return false;
    const c = this.cursor!;
    const parser = this.parser!;
    const count = () => (out instanceof RawBatch ? out.n : out.length);
    try {
      for (;;) {
        if (out instanceof RawBatch) out.reset(c.buf);
        c.pos = parser.parse(c.buf, c.pos, c.base, out, max);
        if (parser.error) {
          this.fail(parser.error);
          break;
        }
        if (count() > 0) break; // deliver before reading on
        const need = parser.need;
        if (!(await c.fill(need))) {
          if (c.available > 0) {
            this.fail({ code: "truncated", offset: c.offset, message: `file ends ${c.available} bytes into a record that needs ${need}` });
          }
          break;
        }
      }
    } catch (e) {
      this.fail({ code: "io", offset: c.offset, message: `read failed: ${(e as Error).message}` }, e);
    }
    return count() > 0;
  }

  private async finish(): Promise<null> {
    this.done = true;
    await this.close();
    return null;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<CapturedPacket, void, undefined> {
    try {
      for (;;) {
        const batch = await this.nextBatch();
        if (batch === null) return;
        for (const p of batch) yield p;
      }
    } finally {
      await this.close();
    }
  }

  /** Release the file; safe to call twice. An early `break` out of for-await calls it. */
  async close(): Promise<void> {
    this.done = true;
    await this.cursor?.close();
  }
}

/** Open a pcap or pcapng file (or an in-memory copy of one) for streaming. Never throws. */
export function openCapture(source: string | Uint8Array, opts: OpenOptions = {}): CaptureReader {
  return new CaptureReader(source, opts);
}

/** Read a whole (small) capture into memory: for tests and tools, not for run folders. */
export async function readCapture(source: string | Uint8Array, opts: OpenOptions = {}): Promise<{ packets: CapturedPacket[]; reader: CaptureReader }> {
  const reader = openCapture(source, opts);
  const packets: CapturedPacket[] = [];
  for (;;) {
    const b = await reader.nextBatch();
    if (b === null) break;
    for (const p of b) packets.push(p);
  }
  return { packets, reader };
}
