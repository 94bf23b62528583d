// `cpe-capture serve --config serve.yaml`: the remote job API (and xepacketcap mode's listener).
// Runs until SIGINT/SIGTERM; jobs under way then stay as they are (devices keep capturing) and
// are resumed at the next start.
import type { Io } from "./run.js";
import { startServe } from "../serve/start.js";

export async function serveCommand(opts: { config: string; json?: boolean }, io: Io): Promise<number> {
  const log = (level: "info" | "warn" | "error", msg: string) =>
    io.stderr.write(opts.json ? JSON.stringify({ t: new Date().toISOString(), level, msg }) + "\n" : `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}\n`);
  const serve = await startServe(opts.config, { log });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals) => resolve(s);
    process.once("SIGINT", on);
    process.once("SIGTERM", on);
  });
  log("info", `serve: ${signal}: closing; jobs under way resume at the next start`);
  await serve.close();
  return 0;
}
