// SHA-256 of a file read through a few reused buffers. A fleet stop hashes two files per device
// (its capture and its server side): a read stream allocates a fresh 64 KiB buffer per read, two
// reads even for a small file, so 1,000 devices left ~250 MB of garbage buffers that V8 frees
// only when external memory pressure forces a collection: tens of MB of RSS during the collect.
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";

const CHUNK_BYTES = 64 * 1024;
/** Buffers kept between hashes: as many as downloads usually finish side by side, 2 MiB in all. */
const MAX_SPARE = 32;
const spare: Buffer[] = [];

/** Hex SHA-256 of the file's bytes; throws the fs error (ENOENT, EACCES, ...) as is. */
export async function sha256File(path: string): Promise<string> {
  const fh = await open(path, "r");
  const buf = spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
  try {
    const h = createHash("sha256");
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK_BYTES, null);
      if (bytesRead === 0) break;
      // update() copies what it needs before returning: the buffer is free for the next read.
      h.update(buf.subarray(0, bytesRead));
    }
    return h.digest("hex");
  } finally {
    // No read is in flight here (each was awaited), so the buffer can serve another hash.
    if (spare.length < MAX_SPARE) spare.push(buf);
    await fh.close();
  }
}
