// Replacing a file so that a power cut leaves either the old or the new content, never an empty or
// torn one: write a temp file, fsync it, rename it into place, fsync the directory (the rename is
// only durable once the directory entry is). Used where an answer already given depends on the file.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { open, rm } from "node:fs/promises";
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

let asyncTemps = 0;

/**
 * writeFileDurable off the event loop (the fsyncs run in libuv's thread pool, so the agent keeps
 * reading its socket meanwhile). `mayRename` is asked right before the rename, in the same turn:
 * false (a newer synchronous write replaced the file meanwhile) discards this one.
 */
export async function writeFileDurableAsync(path: string, data: string, mayRename: () => boolean = () => true, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.${++asyncTemps}.tmp`;
  const fh = await open(tmp, "w", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  if (!mayRename()) {
    await rm(tmp, { force: true });
    return;
  }
  renameSync(tmp, path);
  const dir = await open(dirname(path), "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
