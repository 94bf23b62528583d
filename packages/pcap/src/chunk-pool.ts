// Read chunks handed back and forth between file cursors (source.ts) instead of a fresh Buffer per
// read: the report reads every capture of a run three times, and fresh chunks were ~3× the run's
// capture bytes of garbage that V8 frees only at a major GC. Sizes are rounded to a few classes so
// a released chunk fits the next file's read; what is kept idle is bounded, and dropped once no
// cursor has used the pool for a second (the orchestrator lives on after its report).

/** Idle chunks kept at most, in bytes. */
const MAX_IDLE_BYTES = 4 * 1024 * 1024;
const IDLE_DROP_MS = 1000;

/** Power of two up to 64 KiB (at least 4 KiB), then multiples of 64 KiB. */
export function chunkClass(size: number): number {
  if (size <= 4096) return 4096;
  if (size <= 65536) return 2 ** Math.ceil(Math.log2(size));
  return Math.ceil(size / 65536) * 65536;
}

export class ChunkPool {
  private readonly free = new Map<number, Buffer[]>();
  private idleBytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxIdleBytes = MAX_IDLE_BYTES,
    private readonly idleDropMs = IDLE_DROP_MS,
  ) {}

  /** A chunk of at least `size` bytes (its length is the size class); contents are arbitrary. */
  acquire(size: number): Buffer {
    const cls = chunkClass(size);
    const b = this.free.get(cls)?.pop();
    if (b === undefined) return Buffer.allocUnsafeSlow(cls);
    this.idleBytes -= cls;
    return b;
  }

  /** Give back a chunk from `acquire`: nothing may point into it any more. */
  release(b: Buffer): void {
    const cls = b.length;
    if (cls !== chunkClass(cls) || this.idleBytes + cls > this.maxIdleBytes) return;
    let list = this.free.get(cls);
    if (list === undefined) this.free.set(cls, (list = []));
    list.push(b);
    this.idleBytes += cls;
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.drop(), this.idleDropMs);
      this.timer.unref();
    } else this.timer.refresh();
  }

  /** Bytes held idle (for tests and benchmarks). */
  get idle(): number {
    return this.idleBytes;
  }

  /** Forget every idle chunk (the GC frees them). */
  drop(): void {
    this.free.clear();
    this.idleBytes = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
