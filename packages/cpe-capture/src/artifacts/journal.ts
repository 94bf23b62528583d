// The run journal: an append-only JSON-lines record of every state change, so an interrupted run
// can be resumed or stopped from its folder. Appends are synchronous: the journal must be ahead
// of whatever it describes.
import { appendFileSync, existsSync, readFileSync } from "node:fs";

export interface JournalEntry {
  t: string;
  device?: string;
  kind: string;
  [k: string]: unknown;
}

export class Journal {
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }
  append(kind: string, fields: Omit<JournalEntry, "t" | "kind"> = {}): void {
    appendFileSync(this.path, JSON.stringify({ t: new Date().toISOString(), kind, ...fields }) + "\n");
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
