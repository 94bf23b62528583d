// `cpe-capture validate --config run.yaml`: load, check and print the normalised config.
import type { Writable } from "node:stream";
import { loadConfig } from "../config/loader.js";
import { formatForDisplay } from "../config/display.js";

export async function validateCommand(opts: { config: string; json?: boolean }, io: { stdout: Writable; stderr: Writable }): Promise<number> {
  const { config, warnings } = await loadConfig(opts.config);
  for (const w of warnings) io.stderr.write(`warning: ${w}\n`);
  io.stdout.write(formatForDisplay(config, opts.json ? "json" : "yaml"));
  io.stderr.write(`${opts.config}: valid (${config.devices.length} device(s))\n`);
  return 0;
}
