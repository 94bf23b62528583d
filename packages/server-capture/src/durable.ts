// Replacing a file so that a power cut leaves either the old or the new content, never an empty or
// torn one: write a temp file, fsync it, rename it into place, fsync the directory (the rename is
// only durable once the directory entry is). Used where an answer already given depends on the file.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/** Returns the milliseconds spent waiting for the disk (the fsyncs). */
export function writeFileDurable(path: string, data: string, mode = 0o600): number {
  let syncMs = 0;
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", mode);
  try {
    const buf = Buffer.from(data);
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    const t0 = performance.now();
    fsyncSync(fd);
    syncMs += performance.now() - t0;
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const t1 = performance.now();
  fsyncDir(dirname(path));
  return syncMs + performance.now() - t1;
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
