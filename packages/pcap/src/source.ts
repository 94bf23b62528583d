// Chunked, forward-only byte access over a file or an in-memory buffer. Holds the current chunk,
// one chunk being read ahead, and at most one record spanning the two: a capture of any size is
// read with bounded memory, and reading overlaps parsing.
import { open, type FileHandle } from "node:fs/promises";
import { ChunkPool } from "./chunk-pool.js";

export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** Room before each read-ahead chunk for the unread tail of the previous one (no extra copy). */
const TAIL_RESERVE = 64 * 1024;

async function readFully(fh: FileHandle, buf: Buffer, at: number, len: number, position: number): Promise<number> {
  let have = 0;
  while (have < len) {
    const { bytesRead } = await fh.read(buf, at + have, len - have, position + have);
    if (bytesRead === 0) break;
    have += bytesRead;
  }
  return have;
}

/** Chunks of cursors opened with `reuse`: shared by every such cursor in the process. */
const pool = new ChunkPool();

/**
 * A window [pos, buf.length) of unread bytes; `base` is the file offset of buf[0].
 * By default chunks are freshly allocated and never reused, so a packet's `data` (a view into a
 * chunk) stays valid after the reader moves on; keeping many packets alive keeps their chunks
 * alive: copy `data` if you store packets for long. With `reuse`, a chunk goes back to a shared
 * pool as soon as the cursor moves past it (or closes), so a view into `buf` is valid only until
 * the next `fill` or `close`: for readers whose every consumer is done with a batch before asking
 * for the next (the report's passes, the merge), it saves a fresh chunk per read.
 */
export class Cursor {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  base = 0;
  private fh: FileHandle | undefined;
  private size = 0;
  private readPos = 0;
  private pending: Promise<{ chunk: Buffer; n: number; reserve: number }> | undefined;
  private readonly chunkBytes: number;
  private readonly reuse: boolean;
  /** The pooled chunk `buf` is a view of (undefined: not pooled). */
  private owned: Buffer | undefined;
  /** The pooled chunk the read ahead fills (undefined: none, or not pooled). */
  private pendingOwned: Buffer | undefined;

  private constructor(chunkBytes: number, reuse = false) {
    this.chunkBytes = chunkBytes;
    this.reuse = reuse;
  }

  static fromBuffer(b: Uint8Array): Cursor {
    const c = new Cursor(0);
    c.buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    c.size = c.buf.length;
    c.readPos = c.size;
    return c;
  }

  /** Throws the fs error (ENOENT, EACCES, ...) as is: the caller wraps it. */
  static async fromFile(path: string, chunkBytes = DEFAULT_CHUNK_BYTES, reuse = false): Promise<Cursor> {
    const c = new Cursor(chunkBytes, reuse);
    c.fh = await open(path, "r");
    try {
      c.size = (await c.fh.stat()).size;
    } catch (e) {
      await c.fh.close();
      throw e;
    }
    c.startRead();
    return c;
  }

  /** File offset of the next unread byte. */
  get offset(): number {
    return this.base + this.pos;
  }
  get available(): number {
    return this.buf.length - this.pos;
  }
  /** Size of the file when it was opened (captures are read after they are closed). */
  get totalSize(): number {
    return this.size;
  }

  private startRead(): void {
    const fh = this.fh;
    if (fh === undefined || this.pending !== undefined || this.readPos >= this.size) return;
    const len = Math.min(this.chunkBytes, this.size - this.readPos);
    const at = this.readPos;
    // No reserve before a file's first chunk (nothing precedes it): a merge of 2,000 small captures
    // held 2,000 unused 64 KiB reserves. (With `reuse` the chunk is full size anyway: at most twice
    // chunkBytes, within the merge's budget of 4 × chunkBytes per open file.)
    const reserve = at === 0 ? 0 : Math.min(TAIL_RESERVE, len);
    let chunk: Buffer;
    if (this.reuse) {
      // Every chunk of a file longer than one the same size: each release fits the next read.
      const full = this.size > this.chunkBytes ? Math.min(TAIL_RESERVE, this.chunkBytes) + this.chunkBytes : 0;
      this.pendingOwned = pool.acquire(Math.max(reserve + len, full));
      chunk = this.pendingOwned.subarray(0, reserve + len);
    } else chunk = Buffer.allocUnsafe(reserve + len);
    this.readPos += len;
    this.pending = readFully(fh, chunk, reserve, len, at).then((n) => ({ chunk, n, reserve }));
  }

  /**
   * Make at least `min` unread bytes available. False when the file ends first; nothing beyond the
   * file's size is ever allocated, so a corrupt length field cannot make us allocate 4 GB.
   */
  async fill(min: number): Promise<boolean> {
    if (this.available >= min) return true;
    if (this.offset + min > this.size) return false;
    while (this.available < min) {
      this.startRead();
      const pending = this.pending;
      if (pending === undefined) return false;
      const { chunk, n, reserve } = await pending;
      this.pending = undefined;
      if (this.fh === undefined) return false; // closed meanwhile: the chunk went back to the pool
      const got = this.pendingOwned;
      this.pendingOwned = undefined;
      if (n === 0) {
        if (got) pool.release(got);
        this.readPos = this.size; // the file shrank under us: stop here
        return false;
      }
      const tail = this.buf.length - this.pos;
      const newBase = this.base + this.pos;
      const old = this.owned;
      if (tail <= reserve) {
        this.buf.copy(chunk, reserve - tail, this.pos);
        this.buf = chunk.subarray(reserve - tail, reserve + n);
        this.owned = got;
      } else {
        this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk.subarray(reserve, reserve + n)]);
        this.owned = undefined;
        if (got) pool.release(got);
      }
      // The unread tail is copied out of the old chunk: with `reuse` nothing else may point into it.
      if (old) pool.release(old);
      this.base = newBase;
      this.pos = 0;
    }
    this.startRead();
    return true;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.readPos = this.size;
    if (fh) {
      await this.pending?.catch(() => undefined); // never close under an in-flight read
      this.pending = undefined;
      if (this.pendingOwned) pool.release(this.pendingOwned);
      this.pendingOwned = undefined;
      await fh.close();
    }
    if (this.owned) {
      pool.release(this.owned);
      this.owned = undefined;
      // Nothing may read the released chunk; `offset` stays where reading stopped.
      this.base += this.pos;
      this.buf = Buffer.alloc(0);
      this.pos = 0;
    }
  }
}
