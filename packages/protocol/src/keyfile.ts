// The v1 pre-shared key file (PROTOCOL.md "Key"): one line of >= 32 printable ASCII characters,
// owned by the running user, not readable by group or others. The only I/O in this package.
import { readFileSync, statSync } from "node:fs";
import { CapsyncError } from "./errors.js";

export class KeyFileError extends CapsyncError {
  constructor(message: string) {
    super("key-file", message);
  }
}

export function loadKeyFile(path: string): Buffer {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new KeyFileError(`key file ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? "error"})`);
  }
  if (!st.isFile()) throw new KeyFileError(`key file ${path}: not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new KeyFileError(
      `key file ${path}: mode ${(st.mode & 0o777).toString(8).padStart(4, "0")} lets group/others read it; run: chmod 600 ${path}`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new KeyFileError(`key file ${path}: owned by uid ${st.uid}, not by the running user (uid ${uid})`);
  const key = readFileSync(path, "latin1").trim();
  // Never echo the key itself, not even a prefix.
  if (key.length < 32) throw new KeyFileError(`key file ${path}: key is ${key.length} characters, at least 32 required`);
  if (!/^[\x20-\x7e]+$/.test(key)) throw new KeyFileError(`key file ${path}: key must be one line of printable ASCII`);
  return Buffer.from(key, "latin1");
}
