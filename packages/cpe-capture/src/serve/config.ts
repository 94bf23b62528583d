// The `cpe-capture serve --config serve.yaml` file: where the API listens (TLS optional), the
// tokens it accepts (by reference only), where jobs and run folders live, and `run:` — the run
// config every job starts from (storage, notify, agents, timeouts...), whose `devices` are the
// routers /pcap_json captures on; `xepacketcap:` — the plain-HTTP listener that answers like
// xepacketcap (port 5000), where clients of the allow list need no token.
import { readFileSync } from "node:fs";
import { BlockList, isIP } from "node:net";
import { dirname, resolve } from "node:path";
import { ConfigError } from "@capsync/protocol";
import { parse as parseYaml } from "yaml";
import { configFromObject, ConfigFileError } from "../config/loader.js";
import { resolveSecret } from "../config/secrets.js";
import { parseEndpoint } from "../config/addresses.js";
import { parseSecretRef, type SecretRef } from "../config/credentials.js";
import { describeValue, formatPath, type PathIssue } from "../config/issues.js";
import type { RunConfig } from "../config/run-config.js";
import { parseWebexConfig, type WebexConfig } from "./webex-config.js";

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
  /** xepacketcap compatibility mode, when configured. */
  xepacketcap: XePacketCapListener | undefined;
  /** The Webex bot (pcap-sparkbot's commands on a webhook), when configured. */
  webex: WebexConfig | undefined;
}

export interface XePacketCapListener {
  listen: { host: string; port: number };
  /** The CIDRs as written (normalised), e.g. ["127.0.0.0/8", "::1/128"]. */
  allow: string[];
  /** Whether a client address needs no token. */
  allows(address: string): boolean;
}

export const XEPACKETCAP_DEFAULTS = { listen: "127.0.0.1:5000", allow: ["127.0.0.0/8", "::1/128"] } as const;

const KEYS = ["listen", "tls", "tokens", "dataDir", "maxConcurrentJobs", "run", "pcapJson", "xepacketcap", "webex"];

/** "10.0.0.0/8", "192.0.2.7", "::1", "2001:db8::/32" → a normalised CIDR, or a message. */
export function parseCidr(text: unknown): { ok: true; family: "ipv4" | "ipv6"; net: string; prefix: number } | { ok: false; message: string } {
  const bad = { ok: false as const, message: `expected an address or CIDR like 10.0.0.0/8 or ::1, got ${describeValue(text)}` };
  if (typeof text !== "string") return bad;
  const [addr, len, ...rest] = text.trim().split("/");
  const fam = isIP(addr ?? "");
  if (!fam || rest.length) return bad;
  const max = fam === 4 ? 32 : 128;
  const prefix = len === undefined ? max : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return { ok: false, message: `prefix length of ${JSON.stringify(text)} is 0..${max}` };
  return { ok: true, family: fam === 4 ? "ipv4" : "ipv6", net: addr!, prefix };
}

function xePacketCapListener(raw: unknown, issues: PathIssue[]): XePacketCapListener | undefined {
  if (raw === undefined || raw === false || raw === null) return undefined;
  const v: Record<string, unknown> = raw === true ? {} : (raw as Record<string, unknown>);
  if (typeof v !== "object" || Array.isArray(v)) {
    issues.push({ path: ["xepacketcap"], message: `expected true or { listen, allow }, got ${describeValue(raw)}` });
    return undefined;
  }
  for (const k of Object.keys(v)) if (k !== "listen" && k !== "allow") issues.push({ path: ["xepacketcap", k], message: `unknown key ${describeValue(k)}; expected listen, allow` });
  let listen = { host: "127.0.0.1", port: 5000 };
  const l = v.listen ?? XEPACKETCAP_DEFAULTS.listen;
  const r = typeof l === "string" ? parseEndpoint(l, { allowPortZero: true }) : typeof l === "number" ? parseEndpoint(`127.0.0.1:${l}`, { allowPortZero: true }) : undefined;
  if (!r || !r.ok) issues.push({ path: ["xepacketcap", "listen"], message: r && !r.ok ? r.message : `expected IP:port like 0.0.0.0:5000, got ${describeValue(l)}` });
  else listen = r.value;
  const list = v.allow === undefined ? [...XEPACKETCAP_DEFAULTS.allow] : Array.isArray(v.allow) ? v.allow : [v.allow];
  const block = new BlockList();
  const allow: string[] = [];
  list.forEach((c, i) => {
    const p = parseCidr(c);
    if (!p.ok) return issues.push({ path: ["xepacketcap", "allow", i], message: p.message });
    block.addSubnet(p.net, p.prefix, p.family);
    allow.push(`${p.net}/${p.prefix}`);
  });
  const allows = (address: string): boolean => {
    // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
    const a = address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
    const fam = isIP(a);
    return fam !== 0 && block.check(a, fam === 4 ? "ipv4" : "ipv6");
  };
  return { listen, allow, allows };
}

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
  const xepacketcap = xePacketCapListener(v.xepacketcap, issues);
  const tokens: SecretRef[] = [];
  const list = v.tokens === undefined ? [] : Array.isArray(v.tokens) ? v.tokens : [v.tokens];
  // Without tokens only the allow list of xepacketcap mode admits anyone, and the native API stays closed.
  if (!list.length && !xepacketcap?.allow.length) issues.push({ path: ["tokens"], message: "required: at least one { env: NAME } or { file: PATH } (requests carry it as Authorization: Bearer <token>), unless xepacketcap.allow lists the clients that need none" });
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
  const webex = v.webex === undefined ? undefined : parseWebexConfig(v.webex, abs, issues);
  if (issues.length) throw new ConfigFileError(issues.map((i) => ({ file, line: 0, path: formatPath(i.path), message: i.message })));
  return { configFile: resolve(file), baseDir, listen, tls, tokens, dataDir, maxConcurrentJobs, run, runConfig, pcapJsonDevices, xepacketcap, webex };
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
