// Preload for bench/lib/rss-phases.mjs (node --import ./bench/lib/rss-buffers.mjs ...): tallies
// the bytes of every Buffer allocated through the Buffer statics (Node's own modules call the same
// ones) by the first stack frame outside node internals and the Buffer wrappers, per phase
// (globalThis.__rssPhase, set by rss-phases). Printed by rss-phases when it ends.
import { Buffer } from "node:buffer";

const tallies = new Map();
let inside = false;
function site() {
  const lines = new Error().stack.split("\n");
  for (let i = 3; i < lines.length; i++) {
    const l = lines[i];
    if (l.includes("rss-buffers.mjs") || l.includes("node:buffer")) continue;
    return l.trim().replace(/^at /, "").replace(/file:\/\/\/work\/main\//, "").replace(/\/work\/main\//, "").slice(0, 140);
  }
  return "?";
}
function count(bytes) {
  if (inside || !(bytes > 0)) return;
  inside = true;
  try {
    const key = `${globalThis.__rssPhase ?? "setup"}\t${site()}`;
    const t = tallies.get(key);
    if (t) ((t.bytes += bytes), t.calls++);
    else tallies.set(key, { bytes, calls: 1 });
  } finally {
    inside = false;
  }
}
for (const name of ["alloc", "allocUnsafe", "allocUnsafeSlow"]) {
  const orig = Buffer[name];
  Buffer[name] = function (size, ...rest) {
    count(size);
    return orig.call(this, size, ...rest);
  };
}
const from = Buffer.from;
Buffer.from = function (value, ...rest) {
  const b = from.call(this, value, ...rest);
  // A view over an existing ArrayBuffer allocates nothing.
  if (!(value instanceof ArrayBuffer) && !(typeof SharedArrayBuffer !== "undefined" && value instanceof SharedArrayBuffer)) count(b.length);
  return b;
};
const concat = Buffer.concat;
Buffer.concat = function (list, total) {
  const b = concat.call(this, list, total);
  count(b.length);
  return b;
};

globalThis.__rssBufferReport = (top = 12) => {
  const byPhase = new Map();
  for (const [k, v] of tallies) {
    const [phase, where] = k.split("\t");
    if (!byPhase.has(phase)) byPhase.set(phase, []);
    byPhase.get(phase).push({ where, ...v });
  }
  const out = [];
  for (const [phase, rows] of byPhase) {
    const total = rows.reduce((a, r) => a + r.bytes, 0);
    out.push(`  Buffers allocated in ${phase}: ${(total / 1048576).toFixed(1)} MB`);
    for (const r of rows.sort((a, b) => b.bytes - a.bytes).slice(0, top)) out.push(`    ${(r.bytes / 1048576).toFixed(1).padStart(7)} MB ${String(r.calls).padStart(8)} calls  ${r.where}`);
  }
  return out.join("\n");
};
