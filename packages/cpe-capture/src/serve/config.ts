// The `cpe-capture serve --config serve.yaml` file: where the API listens (TLS optional), the
// tokens it accepts (by reference only), where jobs and run folders live, and `run:` — the run
// config every job starts from (storage, notify, agents, timeouts...), whose `devices` are the
// routers /pcap_json captures on.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ConfigError } from "@capsync/protocol";
import { parse as parseYaml } from "yaml";
import { configFromObject, ConfigFileError } from "../config/loader.js";
import { resolveSecret } from "../config/secrets.js";
import { parseEndpoint } from "../config/addresses.js";
import { parseSecretRef, type SecretRef } from "../config/credentials.js";
import { describeValue, formatPath, type PathIssue } from "../config/issues.js";
import type { RunConfig } from "../config/run-config.js";

export interface ServeConfig {
  configFile: string;
  baseDir: string;
  listen: { host: string; port: number };
  tls: { cert: string; key: string } | undefined;
  tokens: SecretRef[];
  /** jobs.json and runs/ live here (absolute). */
  dataDir: string;
  maxConcurrentJobs: number;
  /** The raw `run:` object: merged under every job's config (the loader validates each job). */
  run: Record<string, unknown>;
  /** Validated `run:` when it lists devices (the /pcap_json routers). */
  runConfig: RunConfig | undefined;
  /** Devices (by name or address) /pcap_json uses when the request names none; default every device of `run`. */
  pcapJsonDevices: string[];
}

const KEYS = ["listen", "tls", "tokens", "dataDir", "maxConcurrentJobs", "run", "pcapJson"];

export function parseServeConfig(raw: unknown, file: string): ServeConfig {
  const baseDir = dirname(resolve(file));
  const abs = (p: string) => resolve(baseDir, p);
  const issues: PathIssue[] = [];
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(`${file}: expected a mapping with listen, tokens, dataDir, run, got ${describeValue(raw)}`);
  const v = raw as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!KEYS.includes(k)) issues.push({ path: [k], message: `unknown key ${describeValue(k)}; expected ${KEYS.join(", ")}` });

  let listen = { host: "127.0.0.1", port: 8080 };
  if (v.listen !== undefined) {
    const r = typeof v.listen === "string" ? parseEndpoint(v.listen, { allowPortZero: true }) : typeof v.listen === "number" ? parseEndpoint(`127.0.0.1:${v.listen}`, { allowPortZero: true }) : undefined;
    if (!r || !r.ok) issues.push({ path: ["listen"], message: r && !r.ok ? r.message : `expected IP:port, got ${describeValue(v.listen)}` });
    else listen = r.value;
  }
  let tls: ServeConfig["tls"];
  if (v.tls !== undefined) {
    const t = v.tls as Record<string, unknown>;
    if (typeof t !== "object" || t === null || typeof t.cert !== "string" || typeof t.key !== "string") issues.push({ path: ["tls"], message: "expected { cert: PEM file, key: PEM file }" });
    else tls = { cert: abs(t.cert), key: abs(t.key) };
  }
  const tokens: SecretRef[] = [];
  const list = v.tokens === undefined ? [] : Array.isArray(v.tokens) ? v.tokens : [v.tokens];
  if (!list.length) issues.push({ path: ["tokens"], message: "required: at least one { env: NAME } or { file: PATH }; every request must carry one (Authorization: Bearer <token>)" });
  list.forEach((t, i) => {
    const r = parseSecretRef(t, Array.isArray(v.tokens) ? ["tokens", i] : ["tokens"], issues);
    if (r) tokens.push(r.kind === "file" ? { kind: "file", file: abs(r.file) } : r);
  });
  let dataDir = abs("./capsync-serve");
  if (v.dataDir !== undefined) {
    if (typeof v.dataDir !== "string" || !v.dataDir.trim()) issues.push({ path: ["dataDir"], message: `expected a folder, got ${describeValue(v.dataDir)}` });
    else dataDir = abs(v.dataDir);
  }
  let maxConcurrentJobs = 4;
  if (v.maxConcurrentJobs !== undefined) {
    if (typeof v.maxConcurrentJobs !== "number" || !Number.isInteger(v.maxConcurrentJobs) || v.maxConcurrentJobs < 1 || v.maxConcurrentJobs > 256) issues.push({ path: ["maxConcurrentJobs"], message: `expected an integer 1..256, got ${describeValue(v.maxConcurrentJobs)}` });
    else maxConcurrentJobs = v.maxConcurrentJobs;
  }
  const run = v.run === undefined ? {} : (v.run as Record<string, unknown>);
  if (typeof run !== "object" || run === null || Array.isArray(run)) issues.push({ path: ["run"], message: `expected a run config mapping (as in run.yaml), got ${describeValue(v.run)}` });
  let runConfig: RunConfig | undefined;
  if (!issues.length && Array.isArray(run.devices) && run.devices.length) {
    try {
      runConfig = configFromObject({ ...run, output: resolve(dataDir, "runs") }, { baseDir }).config;
    } catch (e) {
      if (!(e instanceof ConfigFileError)) throw e;
      for (const i of e.issues) issues.push({ path: ["run"], message: `${i.path ? `${i.path}: ` : ""}${i.message}` });
    }
  }
  let pcapJsonDevices: string[] = runConfig?.devices.map((d) => d.name) ?? [];
  if (v.pcapJson !== undefined) {
    const p = v.pcapJson as Record<string, unknown>;
    const devs = p && typeof p === "object" ? p.devices : undefined;
    const names = Array.isArray(devs) ? devs : devs === undefined ? [] : [devs];
    const known = new Set(runConfig?.devices.flatMap((d) => [d.name, d.address]) ?? []);
    names.forEach((n, i) => {
      if (typeof n !== "string" || !known.has(n)) issues.push({ path: ["pcapJson", "devices", i], message: `expected the name or address of a device in run.devices, got ${describeValue(n)}` });
    });
    if (names.length) pcapJsonDevices = names as string[];
  }
  if (issues.length) throw new ConfigFileError(issues.map((i) => ({ file, line: 0, path: formatPath(i.path), message: i.message })));
  return { configFile: resolve(file), baseDir, listen, tls, tokens, dataDir, maxConcurrentJobs, run, runConfig, pcapJsonDevices };
}

export function loadServeConfig(file: string): ServeConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`${file}: cannot read the serve config: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(`${file}: ${(e as Error).message.split("\n")[0]}`);
  }
  return parseServeConfig(raw, file);
}

/** The accepted token values (resolved now, so a missing variable stops the start with exit 2). */
export async function resolveTokens(c: ServeConfig, env?: NodeJS.ProcessEnv): Promise<string[]> {
  const out: string[] = [];
  for (const [i, t] of c.tokens.entries()) {
    const v = (await resolveSecret(t, `tokens[${i}]`, env ? { env } : {})).value;
    if (v.length < 16) throw new ConfigError(`${c.configFile}: tokens[${i}]: too short (${v.length} characters); use at least 16 random characters, e.g. \`openssl rand -hex 24\``);
    out.push(v);
  }
  return out;
}
