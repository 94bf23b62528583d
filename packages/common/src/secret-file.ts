// Files that hold a secret (the v1 key, the OVOC credentials): read only when they are regular files
// owned by the running user and closed to group and others. Errors name the file, never its content.
import { readFileSync, statSync } from "node:fs";

/** The file's text; `what` starts every error ("key file", "OVOC credentials file"), `fail` makes the error. */
export function readSecretFile(path: string, what: string, encoding: BufferEncoding, fail: (message: string) => Error): string {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw fail(`${what} ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? "error"})`);
  }
  if (!st.isFile()) throw fail(`${what} ${path}: not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw fail(`${what} ${path}: mode ${(st.mode & 0o777).toString(8).padStart(4, "0")} lets group/others read it; run: chmod 600 ${path}`);
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw fail(`${what} ${path}: owned by uid ${st.uid}, not by the running user (uid ${uid})`);
  return readFileSync(path, encoding);
}
