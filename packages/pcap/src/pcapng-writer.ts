// Streaming pcapng file writer: PcapngEncoder's blocks written to a file with bounded buffering.
import { open, type FileHandle } from "node:fs/promises";
import { PcapngEncoder, type InterfaceSpec, type PacketSpec, type SectionSpec, type StatisticsSpec } from "./pcapng-encoder.js";
import type { NameRecord } from "./types.js";

/**
 * Streaming pcapng file writer. Block calls are synchronous and buffer; `writePacket` returns true
 * when the buffer is past its high-water mark and the caller should `await drain()` (like
 * stream.write), so a merge of any size holds at most one buffer of output.
 */
export class PcapngWriter {
  private readonly enc: PcapngEncoder;
  private readonly fh: FileHandle;
  private readonly highWater: number;
  private readonly spares: Buffer[] = [];
  private readonly inflight: Promise<void>[] = [];
  private written = 0;
  packets = 0;

  /** Buffers being written at once: page-cache copies overlap each other and the encoding. */
  static readonly MAX_INFLIGHT = 3;

  private constructor(fh: FileHandle, enc: PcapngEncoder, highWater: number) {
    this.fh = fh;
    this.enc = enc;
    this.highWater = highWater;
  }

  static async create(path: string, section: SectionSpec = {}, opts: { highWaterBytes?: number } = {}): Promise<PcapngWriter> {
    const highWater = opts.highWaterBytes ?? 1 << 20;
    const fh = await open(path, "w", 0o640);
    return new PcapngWriter(fh, new PcapngEncoder(section, highWater + 65536), highWater);
  }

  get bytesWritten(): number {
    return this.written + this.enc.length;
  }

  addInterface(i: InterfaceSpec): number {
    return this.enc.addInterface(i);
  }
  writePacket(p: PacketSpec): boolean {
    this.enc.writePacket(p);
    this.packets++;
    return this.enc.length >= this.highWater;
  }
  acceptsRawEpb(interfaceId: number): boolean {
    return this.enc.acceptsRawEpb(interfaceId);
  }
  /** See PcapngEncoder.appendEpbRun; same return as writePacket. */
  appendEpbRun(src: Buffer, from: number, to: number, offs: Int32Array, ifaces: Int32Array, his: Float64Array, los: Float64Array, count: number): boolean {
    this.enc.appendEpbRun(src, from, to, offs, ifaces, his, los, count);
    this.packets += count;
    return this.enc.length >= this.highWater;
  }
  /** EPB from a raw batch entry (see PcapngEncoder.writeEpbRaw); same return as writePacket. */
  writeEpbRaw(interfaceId: number, sec: number, nsec: number, src: Buffer, start: number, caplen: number, originalLength: number): boolean {
    this.enc.writeEpbRaw(interfaceId, sec, nsec, src, start, caplen, originalLength);
    this.packets++;
    return this.enc.length >= this.highWater;
  }
  /** writePacket without the spec object; same return. */
  writeEpb(interfaceId: number, tsNanos: bigint, data: Uint8Array, originalLength?: number, comment?: string, flags?: number): boolean {
    this.enc.writeEpb(interfaceId, tsNanos, data, originalLength, comment, flags);
    this.packets++;
    return this.enc.length >= this.highWater;
  }
  writeSimplePacket(data: Uint8Array, originalLength?: number): boolean {
    this.enc.writeSimplePacket(data, originalLength);
    this.packets++;
    return this.enc.length >= this.highWater;
  }
  writeNames(records: NameRecord[]): void {
    this.enc.writeNames(records);
  }
  writeStatistics(s: StatisticsSpec): void {
    this.enc.writeStatistics(s);
  }

  /**
   * Hand what is buffered to the file (positioned write) and continue in a spare buffer. Waits only
   * when MAX_INFLIGHT writes are already under way, so memory stays at a few buffers.
   */
  async drain(): Promise<void> {
    while (this.inflight.length >= PcapngWriter.MAX_INFLIGHT) await this.inflight.shift();
    if (this.enc.length === 0) return;
    const { buf, length } = this.enc.swap(this.spares.pop() ?? Buffer.allocUnsafe(this.highWater + 65536));
    const position = this.written;
    this.written += length;
    const w = (async () => {
      let off = 0;
      while (off < length) {
        const { bytesWritten } = await this.fh.write(buf, off, length - off, position + off);
        off += bytesWritten;
      }
      this.spares.push(buf);
    })();
    w.catch(() => undefined); // observed later (drain/close); not an unhandled rejection meanwhile
    this.inflight.push(w);
  }

  async close(): Promise<void> {
    try {
      await this.drain();
      // allSettled first: never close the handle under a write still in flight
      const results = await Promise.allSettled(this.inflight.splice(0));
      for (const r of results) if (r.status === "rejected") throw r.reason;
    } finally {
      await this.fh.close();
    }
  }
}
