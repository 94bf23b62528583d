#!/usr/bin/env node
// Runs the suite as vitest.config.ts's projects ("lanes") side by side, one vitest process each, and
// fails if any lane fails. Vitest itself puts every project whose files run one at a time into one
// shared queue, so lanes that must not overlap *within* themselves (tcpdump, agents, namespaces) but
// may overlap each other only run concurrently as separate processes. Each line is prefixed with its
// lane; each lane's summary is printed again at the end.
// With arguments (`npm test -- test/agent`), one plain `vitest run <args>` instead.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const LANES = ["system", "install", "unit", "soak"];
const vitest = new URL("../node_modules/vitest/vitest.mjs", import.meta.url).pathname;
const args = process.argv.slice(2);

function run(argv, prefix) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [vitest, "run", ...argv], { stdio: ["ignore", "pipe", "pipe"], env: process.env });
    const tail = [];
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        process.stdout.write(prefix ? `[${prefix}] ${line}\n` : `${line}\n`);
        tail.push(line);
        if (tail.length > 12) tail.shift();
      });
    }
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), tail }));
  });
}

if (args.length) {
  const { code } = await run(args, "");
  process.exit(code);
}

const started = Date.now();
const results = await Promise.all(LANES.map(async (lane) => ({ lane, ...(await run(["--project", lane], lane)) })));
process.stdout.write(`\nlanes done in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
for (const r of results) {
  process.stdout.write(`\n== ${r.lane}: ${r.code === 0 ? "passed" : `FAILED (exit ${r.code})`}\n${r.tail.join("\n")}\n`);
}
process.exit(results.some((r) => r.code !== 0) ? 1 : 0);
