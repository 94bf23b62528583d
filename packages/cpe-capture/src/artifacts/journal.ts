// The run journal: an append-only JSON-lines record of every state change, so an interrupted run
// can be resumed or stopped from its folder. Appends are synchronous: the journal must be ahead
// of whatever it describes.
//
// Durability (group commit; the run's journal, `groupCommit`): every append is one write(2) of
// its whole line to a descriptor held open for the run, before append() returns — so the line is
// in the kernel before the request, datagram, file or status row that follows it, and a crash of
// the process (SIGKILL included) never loses a state change the run has acted on or shown. The
// fdatasync is batched: one per group — the lines of one event-loop turn, or all those written
// while the previous fdatasync ran (at most one in flight, in libuv's thread pool, never on the
// event loop). After a power loss or a kernel crash the journal holds every line up to the last
// completed fdatasync (milliseconds behind); `synced()` says when a line is on disk; close() syncs
// the rest. Without `groupCommit` (the upload's journal, appended now and then) each append
// opens, writes and closes the file, with no fdatasync.
//
// A full disk (ENOSPC) must not crash a run mid-stop: the unwritten bytes are kept in order, said
// once on stderr, retried every second and written before any later line; synced() waits for them.
// Until then those lines live only in this process (a SIGKILL in that window loses them).
import { appendFileSync, closeSync, existsSync, fdatasync, fdatasyncSync, openSync, readFileSync, writeSync } from "node:fs";

export interface JournalEntry {
  t: string;
  device?: string;
  kind: string;
  [k: string]: unknown;
}

export class Journal {
  readonly path: string;
  private readonly groupCommit: boolean;
  private fd: number | undefined;
  private closed = false;
  /** Lines written since the last fdatasync began, and who waits for them. */
  private unsynced = false;
  private syncing = false;
  private waiting: (() => void)[] = [];
  private inFlight: (() => void)[] = [];
  /** Bytes not yet written because the disk was full, in order. */
  private backlog: Buffer[] = [];
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(path: string, opts: { groupCommit?: boolean } = {}) {
    this.path = path;
    this.groupCommit = opts.groupCommit ?? false;
  }

  append(kind: string, fields: Omit<JournalEntry, "t" | "kind"> = {}): void {
    this.appendLines(Journal.line(kind, fields));
  }

  /** One journal line, timestamped now, for appendLines(). */
  static line(kind: string, fields: Omit<JournalEntry, "t" | "kind"> = {}): string {
    return JSON.stringify({ t: new Date().toISOString(), kind, ...fields }) + "\n";
  }

  /**
   * Lines made by line(), in order, with one write(2) (a burst of alarms: every line its STOP
   * datagrams wait for, written once before they leave); the same guarantees as append().
   */
  appendLines(text: string): void {
    if (!this.groupCommit || this.closed) {
      appendFileSync(this.path, text);
      return;
    }
    this.fd ??= openSync(this.path, "a");
    this.writeOrKeep(Buffer.from(text));
    // The first line of a group schedules its fdatasync after this event-loop turn, so the lines of
    // one turn (a burst of alarms, a thousand devices starting) share it.
    if (!this.unsynced && !this.syncing) setImmediate(() => this.sync());
    this.unsynced = true;
  }

  /** Writes `buf` after any backlog; on ENOSPC keeps what did not fit and retries every second. */
  private writeOrKeep(buf: Buffer): void {
    if (this.backlog.length > 0) {
      this.backlog.push(buf);
      return;
    }
    const written = writeUntilFull(this.fd!, buf);
    if (written === buf.length) return;
    this.backlog.push(buf.subarray(written));
    process.stderr.write(`cpe-capture: cannot append to ${this.path}: ENOSPC: no space left on device; keeping the lines and retrying every second\n`);
    this.retryTimer = setInterval(() => this.retry(), 1000);
    this.retryTimer.unref();
  }

  /** Writes the backlog as far as the disk allows; true once it is all written. */
  private retry(): boolean {
    const fd = this.fd;
    if (fd === undefined) return false;
    while (this.backlog.length > 0) {
      const head = this.backlog[0]!;
      const written = writeUntilFull(fd, head);
      if (written < head.length) {
        this.backlog[0] = head.subarray(written);
        return false;
      }
      this.backlog.shift();
    }
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    process.stderr.write(`cpe-capture: ${this.path} written again\n`);
    this.unsynced = true;
    this.sync();
    return true;
  }

  /** Resolves once every line appended before the call is on disk (fdatasync done). */
  synced(): Promise<void> {
    if (!this.unsynced && !this.syncing && this.backlog.length === 0) return Promise.resolve();
    return new Promise((r) => (this.unsynced || this.backlog.length > 0 ? this.waiting : this.inFlight).push(r));
  }

  /** One fdatasync for every line written since the last one began; the next group waits for it. */
  private sync(): void {
    const fd = this.fd;
    // Lines still in the backlog are not on disk: their waiters stay until retry() wrote them.
    if (fd === undefined || this.syncing || !this.unsynced || this.backlog.length > 0) return;
    this.syncing = true;
    this.unsynced = false;
    this.inFlight = this.waiting;
    this.waiting = [];
    // A failed fdatasync (EIO) cannot be repaired here; the lines are written, the next sync tries again.
    fdatasync(fd, () => {
      this.syncing = false;
      for (const r of this.inFlight) r();
      this.inFlight = [];
      if (this.unsynced && this.fd === fd) this.sync();
    });
  }

  /** Sync and close the descriptor (end of the run); later appends open the file each time. */
  close(): void {
    if (this.backlog.length > 0) this.retry();
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    const fd = this.fd;
    this.closed = true;
    this.fd = undefined;
    if (fd === undefined) return;
    try {
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    for (const r of [...this.inFlight, ...this.waiting]) r();
    this.inFlight = [];
    this.waiting = [];
    this.unsynced = false;
  }

  /** Every complete line; a torn last line (crash mid-write) is ignored. */
  read(): JournalEntry[] {
    if (!existsSync(this.path)) return [];
    const out: JournalEntry[] = [];
    for (const line of readFileSync(this.path, "utf8").split("\n")) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as JournalEntry);
      } catch {
        /* torn write */
      }
    }
    return out;
  }
}

/** write(2) until the whole buffer is in or the disk is full; returns the bytes written. */
function writeUntilFull(fd: number, buf: Buffer): number {
  let off = 0;
  try {
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  }
  return off;
}
