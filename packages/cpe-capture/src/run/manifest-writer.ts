// Writes manifest.json atomically, coalescing bursts of updates into one write per tick.
import type { RunFolder } from "../artifacts/run-folder.js";
import type { Manifest } from "./model.js";
import { redact } from "@capsync/protocol";

export class ManifestWriter {
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
    this.folder.writeAtomic("manifest.json", redact(JSON.stringify(this.manifest, null, 2), this.secrets()) + "\n");
  }
}
