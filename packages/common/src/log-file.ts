// The log file as a long-running root service needs it: bounded (rotated by size, a fixed number
// of old files kept), reopened on request (SIGHUP after logrotate's `create` moved it away), and
// written with O_APPEND so logrotate's `copytruncate` leaves no hole: after the truncation the next
// line lands at offset 0, not at the old offset with a sparse run of NULs before it.
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import TransportStream from "winston-transport";

const MESSAGE = Symbol.for("message");

export interface LogFileOptions {
  path: string;
  /** Rotate before a line would take the file past this size; 0 = never (leave it to logrotate). */
  maxBytes: number;
  /** Rotated files kept (path.1 the newest ... path.N the oldest): the log takes at most (N + 1) x maxBytes. */
  maxFiles: number;
}

export class LogFileTransport extends TransportStream {
  readonly path: string;
  private fd: number | undefined;
  private failed = false;

  constructor(private readonly o: LogFileOptions) {
    super();
    this.path = o.path;
    mkdirSync(dirname(o.path), { recursive: true, mode: 0o750 });
    this.open();
  }

  /** Close and open the path again: a new file once logrotate (create mode) renamed the old one. */
  reopen(): void {
    this.closeFd();
    this.open();
  }

  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    const line = Buffer.from(`${String(info[MESSAGE] ?? info.message)}\n`, "utf8");
    try {
      if (this.fd === undefined) this.open();
      // fstat, not a running count: after a copytruncate the file is short again.
      if (this.o.maxBytes > 0) {
        const size = fstatSync(this.fd!).size;
        if (size > 0 && size + line.length > this.o.maxBytes) this.rotate();
      }
      writeSync(this.fd!, line);
      this.failed = false;
    } catch (e) {
      // A full or read-only log disk must not stop captures: the line is lost, said once on stderr.
      if (!this.failed) process.stderr.write(`log file ${this.path}: ${(e as Error).message}; lines are lost until it is writable\n`);
      this.failed = true;
      this.closeFd();
    }
    next();
  }

  override close(): void {
    this.closeFd();
  }

  private open(): void {
    // "a": O_WRONLY | O_CREAT | O_APPEND — every write goes to the current end, whoever truncated it.
    this.fd = openSync(this.path, "a", 0o640);
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      /* already gone */
    }
    this.fd = undefined;
  }

  private rotate(): void {
    this.closeFd();
    const n = this.o.maxFiles;
    if (n < 1) rmSync(this.path, { force: true });
    else {
      rmSync(`${this.path}.${n}`, { force: true });
      for (let i = n - 1; i >= 1; i--) renameIfThere(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      renameIfThere(this.path, `${this.path}.1`);
    }
    this.open();
  }
}

function renameIfThere(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}
