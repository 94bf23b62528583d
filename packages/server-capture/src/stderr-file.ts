// tcpdump's stderr as a file the agent reads, never a pipe: a pipe dies with the agent, and an
// orphaned tcpdump's next message to it ("listening on", a SIGUSR1 count, its summary) would get
// SIGPIPE and end the capture. A file outlives the agent; the agent that adopts the tcpdump reads
// the same file (its summary and kernel-drop count at stop).
import { closeSync, openSync, readSync, rmSync, statSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname, join } from "node:path";

/** What the agent keeps of it: tcpdump prints little, but a chatty process never grows memory. */
const KEEP_CHARS = 16_384;
/** Backstop when a change event is missed (some filesystems); events normally come at once. */
const POLL_MS = 100;

/**
 * `.<output>.stderr`: next to the output, where the agent that adopts the tcpdump finds it again;
 * hidden, so a listing of capture files does not take it for one.
 */
export function stderrPathFor(outPath: string): string {
  return join(dirname(outPath), `.${basename(outPath)}.stderr`);
}

/** Create (empty) the file a new tcpdump writes its stderr to; the fd is for spawn's stdio, closed by the caller. */
export function openForChild(path: string): number {
  return openSync(path, "w", 0o600);
}

/** The file's text (its last KEEP_CHARS), or "" when it does not exist. */
export function readStderrFile(path: string): string {
  try {
    const size = statSync(path).size;
    const from = Math.max(0, size - KEEP_CHARS);
    const buf = Buffer.alloc(size - from);
    const fd = openSync(path, "r");
    try {
      readSync(fd, buf, 0, buf.length, from);
    } finally {
      closeSync(fd);
    }
    return buf.toString("utf8");
  } catch {
    return "";
  }
}

export function removeStderrFile(path: string): void {
  rmSync(path, { force: true });
}

/** Follows the file while its tcpdump runs: the text so far, and a callback per new chunk. */
export class StderrFollower {
  private offset = 0;
  private buffered = "";
  private watcher?: FSWatcher;
  private poll?: NodeJS.Timeout;
  private readonly listeners = new Set<(chunk: string) => void>();
  /** Listeners that wait for something (start, drain): only while there are any does the backstop poll run. */
  private waiting = 0;

  constructor(readonly path: string) {
    try {
      this.watcher = watch(path, { persistent: false }, () => this.refresh());
      this.watcher.on("error", () => this.unwatch());
    } catch {
      /* not watchable: the poll below covers waits */
    }
  }

  get text(): string {
    return this.buffered;
  }

  /** Read what was appended since the last read; listeners get it. */
  refresh(): void {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return;
    }
    if (size <= this.offset) return;
    const buf = Buffer.alloc(size - this.offset);
    let n = 0;
    try {
      const fd = openSync(this.path, "r");
      try {
        n = readSync(fd, buf, 0, buf.length, this.offset);
      } finally {
        closeSync(fd);
      }
    } catch {
      return;
    }
    if (n <= 0) return;
    this.offset += n;
    const chunk = buf.subarray(0, n).toString("utf8");
    this.buffered = (this.buffered + chunk).slice(-KEEP_CHARS);
    for (const l of [...this.listeners]) l(chunk);
  }

  /**
   * `cb` for every new chunk until the returned function is called. `waits`: someone is waiting on
   * it, so a backstop poll runs meanwhile; a permanent listener costs no timer (a thousand captures
   * must not mean a thousand polls).
   */
  listen(cb: (chunk: string) => void, waits = true): () => void {
    this.listeners.add(cb);
    if (waits && this.waiting++ === 0) {
      this.poll = setInterval(() => this.refresh(), POLL_MS);
      this.poll.unref();
    }
    let on = true;
    return () => {
      if (!on) return;
      on = false;
      this.listeners.delete(cb);
      if (waits && --this.waiting === 0 && this.poll) {
        clearInterval(this.poll);
        this.poll = undefined;
      }
    };
  }

  /** The process exited: read the rest, stop following. */
  close(): void {
    this.refresh();
    this.unwatch();
    if (this.poll) clearInterval(this.poll);
    this.poll = undefined;
    this.waiting = 0;
    this.listeners.clear();
  }

  private unwatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}
