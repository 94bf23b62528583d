// Packets of one capture point (several files: ring files, per-interface files) in time order:
// a k-way merge over the files' readers with a synchronous fast path and an async refill.
import type { CaptureError } from "./errors.js";
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

export class PointStream {
  readonly files: FileOutcome[] = [];
  private readonly heap: Src[] = [];
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
      if (await PointStream.advance(s)) ps.push(s);
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

  private less(x: Src, y: Src): boolean {
    const a = tsOf(x);
    const b = tsOf(y);
    return a < b || (a === b && x.order < y.order);
  }
  private push(s: Src): void {
    const h = this.heap;
    h.push(s);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  private sift(remove: boolean): void {
    const h = this.heap;
    if (remove) {
      const last = h.pop()!;
      if (h.length === 0) return;
      h[0] = last;
    }
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }

  /**
   * The next packet in time order and advance past it; null at the end; undefined when a file needs
   * reading first (await refill(), then call again). Synchronous for all but one call per chunk.
   */
  next(): CapturedPacket | null | undefined {
    if (this.stale) return undefined;
    const s = this.heap[0];
    if (s === undefined) return null;
    const p = s.batch[s.idx++]!;
    if (s.idx >= s.batch.length) {
      this.stale = s;
      return p;
    }
    if (this.heap.length > 1) this.sift(false);
    return p;
  }

  async refill(): Promise<void> {
    const s = this.stale;
    if (s === undefined) return;
    this.stale = undefined;
    // s is still the heap root: it was when its batch ran out.
    if (await PointStream.advance(s)) this.sift(false);
    else this.sift(true);
  }

  async close(): Promise<void> {
    for (const s of this.heap) await s.reader.close();
    if (this.stale) await this.stale.reader.close();
  }
}
