// One folder per run under the configured output dir. Every file is created exclusively ("wx")
// or replaced atomically (temp + rename); nothing already captured is ever overwritten.
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { CapsyncError, isSafeFilename } from "@capsync/protocol";

export class RunFolder {
  readonly dir: string;
  readonly runId: string;
  private readonly reserved = new Set<string>();
  /**
   * What the folder held when this process took it (empty for a new one): reserve() checks names
   * against it and `reserved` instead of asking the file system on every call — naming a capture
   * is on the path from an alarm to its STOP datagram. Capture files land here only under names
   * reserve() handed out, so this listing plus `reserved` is what the disk would say (no other
   * process writes capture files into a run's folder while it runs: `stop <folder>` signals it).
   */
  private readonly present: Set<string>;

  private constructor(dir: string, runId: string, present: Set<string>) {
    this.dir = dir;
    this.runId = runId;
    this.present = present;
  }

  /** Create `<output>/<run id>/`; the id is time-based plus random, so two runs never collide. */
  static create(output: string, now = new Date()): RunFolder {
    const base = resolve(output);
    mkdirSync(base, { recursive: true });
    const p = (n: number) => String(n).padStart(2, "0");
    const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
    for (let i = 0; i < 10; i++) {
      const runId = `run-${stamp}-${randomBytes(2).toString("hex")}`;
      try {
        mkdirSync(join(base, runId), { mode: 0o750 });
        return new RunFolder(join(base, runId), runId, new Set());
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
    }
    throw new CapsyncError("run-folder", `cannot create a new run folder under ${base}`);
  }

  /** Open an existing run folder (resume, report). */
  static open(dir: string): RunFolder {
    const abs = resolve(dir);
    if (!existsSync(join(abs, "manifest.json"))) throw new CapsyncError("run-folder", `${abs} is not a capsync run folder (no manifest.json)`);
    return new RunFolder(abs, abs.split("/").pop()!, new Set(readdirSync(abs)));
  }

  path(name: string): string {
    if (!isSafeFilename(name)) throw new CapsyncError("run-folder", `unsafe file name '${name.slice(0, 80)}'`);
    return join(this.dir, name);
  }

  /** A name not yet used in the folder (name, name_2, ...), reserved for this run. */
  reserve(name: string): string {
    const dot = name.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
    for (let n = 1; ; n++) {
      const c = n === 1 ? name : `${stem}_${n}${ext}`;
      if (!this.reserved.has(c) && !this.present.has(c)) {
        if (!isSafeFilename(c)) throw new CapsyncError("run-folder", `unsafe file name '${c.slice(0, 80)}'`);
        this.reserved.add(c);
        return c;
      }
    }
  }

  /** Replace a file atomically: readers see the old or the new content, never half. */
  writeAtomic(name: string, content: string | Buffer): void {
    const target = this.path(name);
    const tmp = `${target}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, content, { mode: 0o640 });
      renameSync(tmp, target);
    } catch (e) {
      // A half-written temp file (disk full) would only hold on to the space that ran out.
      rmSync(tmp, { force: true });
      throw e;
    }
  }
}
