// `cpe-capture serve --config serve.yaml`: the remote job API. Runs until SIGINT/SIGTERM; jobs
// under way then stay as they are (devices keep capturing) and are resumed at the next start.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { Io } from "./run.js";
import { loadServeConfig, resolveTokens } from "../serve/config.js";
import { createApi } from "../serve/http.js";
import { JobRunner, JobStore } from "../serve/jobs.js";

export async function serveCommand(opts: { config: string; json?: boolean }, io: Io): Promise<number> {
  const config = loadServeConfig(opts.config);
  const tokens = await resolveTokens(config);
  const log = (level: "info" | "warn" | "error", msg: string) =>
    io.stderr.write(opts.json ? JSON.stringify({ t: new Date().toISOString(), level, msg }) + "\n" : `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}\n`);
  const store = new JobStore(config.dataDir);
  const runner = new JobRunner({ store, maxConcurrent: config.maxConcurrentJobs, log });
  const server = createApi({ config, tokens, store, runner, log });
  server.listen(config.listen.port, config.listen.host);
  await Promise.race([once(server, "listening"), once(server, "error").then(([e]) => Promise.reject(e as Error))]);
  const a = server.address() as AddressInfo;
  const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
  log("info", `serve: listening on ${config.tls ? "https" : "http"}://${host}:${a.port} (data ${config.dataDir}, up to ${config.maxConcurrentJobs} concurrent jobs)`);
  runner.recover();
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals) => resolve(s);
    process.once("SIGINT", on);
    process.once("SIGTERM", on);
  });
  log("info", `serve: ${signal}: closing; jobs under way resume at the next start`);
  runner.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  return 0;
}
