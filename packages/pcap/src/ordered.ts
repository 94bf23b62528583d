// Packets of one capture point (several files: ring files, per-interface files) in time order:
// a k-way merge over the files' readers with a synchronous fast path and an async refill.
import type { CaptureError } from "./errors.js";
import { BinaryHeap } from "./heap.js";
import { openCapture, type CaptureReader, type OpenOptions } from "./reader.js";
import type { CapturedPacket } from "./types.js";

export interface FileOutcome {
  path: string;
  packets: number;
  format?: "pcap" | "pcapng";
  error?: CaptureError;
}

interface Src {
  reader: CaptureReader;
  file: FileOutcome;
  batch: CapturedPacket[];
  idx: number;
  order: number;
}

const tsOf = (s: Src) => s.batch[s.idx]!.tsNanos;
const less = (x: Src, y: Src) => {
  const a = tsOf(x);
  const b = tsOf(y);
  return a < b || (a === b && x.order < y.order);
};

export class PointStream {
  readonly files: FileOutcome[] = [];
  private readonly heap = new BinaryHeap<Src>(less);
  private stale: Src | undefined;

  private constructor() {}

  static async open(paths: string[], opts: OpenOptions = {}): Promise<PointStream> {
    const ps = new PointStream();
    const chunkBytes = opts.chunkBytes ?? Math.max(16 * 1024, Math.min(1 << 20, Math.floor((32 << 20) / Math.max(1, paths.length))));
    let order = 0;
    for (const path of paths) {
      const file: FileOutcome = { path, packets: 0 };
      ps.files.push(file);
      const s: Src = { reader: openCapture(path, { ...opts, chunkBytes }), file, batch: [], idx: 0, order: order++ };
      if (await PointStream.advance(s)) ps.heap.push(s);
    }
    return ps;
  }

  private static async advance(s: Src): Promise<boolean> {
    for (;;) {
      const b = await s.reader.nextBatch();
      if (b === null) {
        s.file.format = s.reader.format;
        if (s.reader.error) s.file.error = s.reader.error;
        return false;
      }
      if (b.length > 0) {
        s.batch = b;
        s.idx = 0;
        s.file.packets += b.length;
        return true;
      }
    }
  }

  /**
   * The next packet in time order and advance past it; null at the end; undefined when a file needs
   * reading first (await refill(), then call again). Synchronous for all but one call per chunk.
   * Opened with `reuseChunks`, a packet's `data` is valid only until the next refill() or close().
   */
  next(): CapturedPacket | null | undefined {
    if (this.stale) return undefined;
    const s = this.heap.peek();
    if (s === undefined) return null;
    const p = s.batch[s.idx++]!;
    if (s.idx >= s.batch.length) {
      this.stale = s;
      return p;
    }
    if (this.heap.size > 1) this.heap.siftRoot(false);
    return p;
  }

  async refill(): Promise<void> {
    const s = this.stale;
    if (s === undefined) return;
    this.stale = undefined;
    // s is still the heap root: it was when its batch ran out.
    this.heap.siftRoot(!(await PointStream.advance(s)));
  }

  async close(): Promise<void> {
    for (const s of this.heap.items) await s.reader.close();
    if (this.stale) await this.stale.reader.close();
  }
}
