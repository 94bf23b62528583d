// Read chunks handed back and forth between file cursors (source.ts) instead of a fresh Buffer per
// read: the report reads every capture of a run three times, and fresh chunks were ~3× the run's
// capture bytes of garbage that V8 frees only at a major GC. Sizes are rounded to classes and a
// request takes the smallest idle chunk of up to twice its size, so a released chunk fits the next
// file's read. What is kept idle is bounded (the merge's 256 open files hold ~16 MiB of chunks at
// once: kept between its rounds), given up as fresh chunks are allocated, and dropped once no
// cursor has used the pool for a second (the orchestrator lives on after its report).

/** Idle chunks kept at most, in bytes. */
const MAX_IDLE_BYTES = 24 * 1024 * 1024;
const IDLE_DROP_MS = 1000;
const SMALL = 64 * 1024;

/** Multiples of 4 KiB up to 64 KiB, then multiples of 64 KiB. */
export function chunkClass(size: number): number {
  const step = size <= SMALL ? 4096 : SMALL;
  return Math.max(4096, Math.ceil(size / step) * step);
}

function nextClass(cls: number): number {
  return cls < SMALL ? cls + 4096 : cls + SMALL;
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
    if (this.idleBytes > 0) {
      for (let c = cls; c <= 2 * cls; c = nextClass(c)) {
        const b = this.free.get(c)?.pop();
        if (b !== undefined) {
          this.idleBytes -= c;
          return b;
        }
      }
    }
    // A miss: let go of as many idle bytes as are allocated, so idle + in use never grows past
    // the most ever in use at once (the merge's last round needs other sizes than its first).
    this.evict(cls);
    return Buffer.allocUnsafeSlow(cls);
  }

  private evict(bytes: number): void {
    for (const [cls, list] of this.free) {
      while (bytes > 0 && list.pop() !== undefined) {
        this.idleBytes -= cls;
        bytes -= cls;
      }
      if (bytes <= 0) return;
    }
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
