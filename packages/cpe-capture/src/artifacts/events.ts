// events.csv: one row per task or event per device, appended as they happen so a crash keeps
// everything before it.
import { closeSync, existsSync, openSync, writeFileSync, writeSync } from "node:fs";

export interface EventRow {
  timestamp: string;
  device: string;
  source: "device" | "agent" | "trigger" | "run" | "collect";
  event: string;
  status: string;
  httpStatus?: number | undefined;
  detail?: string | undefined;
}

/** Rows kept in memory while events.csv cannot be written (disk full). */
const MAX_BUFFERED_ROWS = 10_000;

const HEADER = "timestamp,device,source,event,status,http_status,detail\n";

function cell(v: string | number | undefined): string {
  const s = v === undefined ? "" : String(v);
  // RFC 4180 quoting; also neutralise spreadsheet formulas in free text.
  const safe = /^[=+\-@]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export class EventsCsv {
  readonly path: string;
  private buffer: string[] = [];
  private scheduled = false;
  private failing = false;
  private droppedRows = 0;
  /** Held open for the run (closed by close()): a batch is one write(2), not an open/write/close. */
  private fd: number | undefined;
  private closed = false;
  constructor(path: string) {
    this.path = path;
    if (!existsSync(path)) writeFileSync(path, HEADER, { flag: "wx", mode: 0o640 });
  }

  add(row: EventRow): void {
    this.buffer.push([row.timestamp, row.device, row.source, row.event, row.status, row.httpStatus, row.detail?.slice(0, 500)].map(cell).join(",") + "\n");
    // Batched: a burst of a thousand events costs one write.
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (!this.buffer.length) return;
    const text = Buffer.from(this.buffer.join(""));
    try {
      this.fd ??= openSync(this.path, "a");
      for (let off = 0; off < text.length; ) off += writeSync(this.fd, text, off, text.length - off);
      if (this.closed) this.closeFd();
    } catch (e) {
      this.closeFd();
      // Disk full (or the folder gone): the run must go on stopping and collecting captures. Keep
      // the rows (bounded) and try again in a second; a torn partial row is possible, not likely.
      if (!this.failing) process.stderr.write(`cpe-capture: cannot append to ${this.path}: ${(e as Error).message}; keeping the rows and retrying\n`);
      this.failing = true;
      if (this.buffer.length > MAX_BUFFERED_ROWS) {
        this.droppedRows += this.buffer.length - MAX_BUFFERED_ROWS;
        this.buffer.splice(0, this.buffer.length - MAX_BUFFERED_ROWS);
      }
      if (!this.scheduled) {
        this.scheduled = true;
        setTimeout(() => this.flush(), 1000).unref();
      }
      return;
    }
    if (this.failing) process.stderr.write(`cpe-capture: ${this.path} writable again${this.droppedRows ? `; ${this.droppedRows} row(s) were lost` : ""}\n`);
    this.failing = false;
    this.droppedRows = 0;
    this.buffer = [];
  }

  /** Write what is buffered and close the file (end of the run); a later row opens it for its write only. */
  close(): void {
    this.closed = true;
    this.flush();
    this.closeFd();
  }

  private closeFd(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        /* already unusable */
      }
    }
  }
}
