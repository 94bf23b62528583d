// `cpe-capture validate --config run.yaml`: load, check and print the normalised config; on stderr
// the warnings, then each value rewritten to its canonical form (`note: … 10.10.10.10/24 → 10.10.10.0/24`).
import type { Writable } from "node:stream";
import { loadConfig } from "../config/loader.js";
import { formatForDisplay } from "../config/display.js";

export async function validateCommand(opts: { config: string; json?: boolean }, io: { stdout: Writable; stderr: Writable }): Promise<number> {
  const { config, warnings, notes } = await loadConfig(opts.config);
  for (const w of warnings) io.stderr.write(`warning: ${w}\n`);
  // stderr, like the warnings: stdout stays the config alone, loadable again (and pure JSON with --json).
  for (const n of notes) io.stderr.write(`note: ${n}\n`);
  io.stdout.write(formatForDisplay(config, opts.json ? "json" : "yaml"));
  io.stderr.write(`${opts.config}: valid (${config.devices.length} device(s))\n`);
  return 0;
}
