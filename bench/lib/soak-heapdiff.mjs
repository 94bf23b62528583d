#!/usr/bin/env node
// What grew between two V8 heap snapshots (bench/soak.mjs HEAP_DIR=...: one at the end of the
// warm-up, one at the end of the soak): objects grouped by type and constructor/name, the groups
// whose count or bytes grew most, largest first. Strings are grouped by their first 40 characters.
//   node bench/lib/soak-heapdiff.mjs <before.heapsnapshot> <after.heapsnapshot> [top=25]
import { readFileSync } from "node:fs";

function groups(path) {
  const snap = JSON.parse(readFileSync(path, "utf8"));
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = [f.indexOf("type"), f.indexOf("name"), f.indexOf("self_size")];
  const stride = f.length;
  const out = new Map();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += stride) {
    const type = types[snap.nodes[i + iType]];
    let name = snap.strings[snap.nodes[i + iName]];
    if (type === "string" || type === "concatenated string" || type === "sliced string") name = name.slice(0, 40);
    const key = `${type} ${name}`;
    const size = snap.nodes[i + iSize];
    total += size;
    const g = out.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    out.set(key, g);
  }
  return { groups: out, total, nodes: snap.nodes.length / stride };
}

const [a, b, top = "25"] = process.argv.slice(2);
if (!a || !b) {
  console.error("usage: soak-heapdiff.mjs <before.heapsnapshot> <after.heapsnapshot> [top]");
  process.exit(2);
}
const before = groups(a);
const after = groups(b);
console.log(`heap: ${(before.total / 1048576).toFixed(1)} MB in ${before.nodes} objects → ${(after.total / 1048576).toFixed(1)} MB in ${after.nodes} objects`);
const rows = [];
for (const [k, g] of after.groups) {
  const p = before.groups.get(k) ?? { count: 0, bytes: 0 };
  rows.push({ k, dCount: g.count - p.count, dBytes: g.bytes - p.bytes, count: g.count, bytes: g.bytes });
}
for (const [k, p] of before.groups) if (!after.groups.has(k)) rows.push({ k, dCount: -p.count, dBytes: -p.bytes, count: 0, bytes: 0 });
rows.sort((x, y) => y.dBytes - x.dBytes);
console.log("grew most (bytes):");
for (const r of rows.slice(0, Number(top))) console.log(`  ${(r.dBytes / 1024).toFixed(1).padStart(9)} KiB  ${String(r.dCount).padStart(7)} objects  (now ${r.count}, ${(r.bytes / 1024).toFixed(1)} KiB)  ${JSON.stringify(r.k).slice(0, 100)}`);
rows.sort((x, y) => y.dCount - x.dCount);
console.log("grew most (count):");
for (const r of rows.slice(0, 10)) console.log(`  ${String(r.dCount).padStart(7)} objects  ${(r.dBytes / 1024).toFixed(1).padStart(9)} KiB  ${JSON.stringify(r.k).slice(0, 100)}`);
