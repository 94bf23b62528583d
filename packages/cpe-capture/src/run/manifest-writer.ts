// Writes manifest.json atomically, coalescing bursts of updates into one write per tick.
import type { RunFolder } from "../artifacts/run-folder.js";
import type { Manifest } from "./model.js";
import { redact } from "@capsync/protocol";

/** A write that failed (disk full) is tried again after this long. */
const RETRY_MS = 1000;

export class ManifestWriter {
  private failing = false;
  private scheduled = false;
  constructor(
    private readonly folder: RunFolder,
    readonly manifest: Manifest,
    private readonly secrets: () => readonly string[],
  ) {}

  touch(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    // Belt and braces: device outputs are already redacted, but nothing secret may reach disk.
    try {
      this.folder.writeAtomic("manifest.json", redact(JSON.stringify(this.manifest, null, 2), this.secrets()) + "\n");
    } catch (e) {
      // Disk full (a capture download filled it) or the folder gone: the run must go on stopping
      // and collecting captures, so keep the manifest in memory and write it again in a second.
      if (!this.failing) process.stderr.write(`cpe-capture: cannot write manifest.json: ${(e as Error).message}; retrying\n`);
      this.failing = true;
      if (!this.scheduled) {
        this.scheduled = true;
        setTimeout(() => this.flush(), RETRY_MS).unref();
      }
      return;
    }
    if (this.failing) process.stderr.write("cpe-capture: manifest.json written again\n");
    this.failing = false;
  }
}
