// A/B stand-in for packages/common/src/file-hash.ts as it was: a read stream per file (a fresh
// 64 KiB buffer per read). Loaded in its place by `node --import ./bench/lib/rss-streamhash.mjs`:
// the hook below resolves common's dist/file-hash.js to this file, in this process only.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { register } from "node:module";

export async function sha256File(path) {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk);
  return h.digest("hex");
}

if (!import.meta.url.includes("?stand-in")) {
  const self = `${import.meta.url}?stand-in`;
  const hook = `export async function resolve(s, c, next) { const r = await next(s, c); return r.url.endsWith("/packages/common/dist/file-hash.js") ? { ...r, url: ${JSON.stringify(self)} } : r; }`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
}
