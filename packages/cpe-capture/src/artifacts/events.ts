// events.csv: one row per task or event per device (the original's roadmap item), appended as
// they happen so a crash keeps everything before it.
import { appendFileSync, existsSync, writeFileSync } from "node:fs";

export interface EventRow {
  timestamp: string;
  device: string;
  source: "device" | "agent" | "trigger" | "run" | "collect";
  event: string;
  status: string;
  httpStatus?: number | undefined;
  detail?: string | undefined;
}

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
    appendFileSync(this.path, this.buffer.join(""));
    this.buffer = [];
  }
}
