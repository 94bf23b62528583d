// Starting `cpe-capture serve` in a process: the job store and runner, the API listener and, in
// xepacketcap mode, the plain-HTTP listener of port 5000; used by the command and by the lab.
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadServeConfig, resolveTokens, type ServeConfig } from "./config.js";
import { createApi } from "./http.js";
import { JobRunner, JobStore } from "./jobs.js";
import { createWebexBot } from "./webex.js";

export type ServeLog = (level: "info" | "warn" | "error", msg: string) => void;

export interface ServeHandle {
  config: ServeConfig;
  /** The API's base URL, e.g. "https://127.0.0.1:8080". */
  api: string;
  /** xepacketcap mode's base URL, e.g. "http://127.0.0.1:5000"; undefined when not configured. */
  xepacketcap: string | undefined;
  store: JobStore;
  runner: JobRunner;
  /** Stops listening and taking jobs; jobs under way resume at the next start. */
  close(): Promise<void>;
}

async function listen(server: Server, at: { host: string; port: number }, scheme: string): Promise<string> {
  server.listen(at.port, at.host);
  await Promise.race([once(server, "listening"), once(server, "error").then(([e]) => Promise.reject(e as Error))]);
  const a = server.address() as AddressInfo;
  return `${scheme}://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
}

/**
 * Starts serve from a serve.yaml path or a parsed config.
 * @example const s = await startServe("serve.yaml"); console.log(s.xepacketcap); await s.close();
 */
export async function startServe(source: string | ServeConfig, o: { log?: ServeLog; env?: NodeJS.ProcessEnv } = {}): Promise<ServeHandle> {
  const config = typeof source === "string" ? loadServeConfig(source) : source;
  const log: ServeLog = o.log ?? (() => undefined);
  const tokens = await resolveTokens(config, o.env);
  const store = new JobStore(config.dataDir);
  const runner = new JobRunner({ store, maxConcurrent: config.maxConcurrentJobs, log, ...(o.env ? { env: o.env } : {}) });
  const webex = config.webex ? await createWebexBot(config.webex, { store, log, ...(o.env ? { env: o.env } : {}) }) : undefined;
  const base = { config, tokens, store, runner, log };
  const servers: Server[] = [];
  const close = async () => {
    runner.close();
    webex?.close();
    await Promise.all(
      servers.map((s) => {
        s.closeAllConnections();
        return new Promise<void>((r) => s.close(() => r()));
      }),
    );
  };
  try {
    const apiServer = createApi({ ...base, ...(webex ? { webex } : {}) });
    servers.push(apiServer);
    const api = await listen(apiServer, config.listen, config.tls ? "https" : "http");
    log("info", `serve: listening on ${api} (data ${config.dataDir}, up to ${config.maxConcurrentJobs} concurrent jobs${tokens.length ? "" : "; no tokens: the native API refuses every request"})`);
    let xepacketcap: string | undefined;
    if (config.xepacketcap) {
      const compat = createApi({ ...base, config: { ...config, tls: undefined }, compat: config.xepacketcap });
      servers.push(compat);
      xepacketcap = await listen(compat, config.xepacketcap.listen, "http");
      log("info", `serve: xepacketcap mode on ${xepacketcap} (/pcap_json, /status_json; no token needed from ${config.xepacketcap.allow.join(", ") || "nowhere"})`);
    }
    webex?.setCaptureBase(xepacketcap ?? api);
    runner.recover();
    return { config, api, xepacketcap, store, runner, close };
  } catch (e) {
    await close();
    throw e;
  }
}
