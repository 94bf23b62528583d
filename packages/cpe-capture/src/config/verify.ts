// The run config's `verify:` setting: `true`/`false` as before, or a mapping that also sets the
// probes the original sends — ICMP echo (`icmp:`) and SNMPv3 authPriv GETs (`snmpv3:`, keys only
// as { env } / { file } references) — and how `validate` shows it. verify-secrets.ts reads the keys.
import { formatDuration } from "@capsync/protocol";
import { desAvailable, SNMPV3_AUTH_PROTOCOLS, SNMPV3_PRIV_PROTOCOLS, type Snmpv3AuthProtocol, type Snmpv3PrivProtocol } from "@capsync/common";
import { absoluteSecretRef, displaySecretRef, parseSecretRef, type DisplaySecret, type SecretRef } from "./credentials.js";
import { parseDurationField, parseInteger } from "./fields.js";
import { describeValue, fail, isPlainObject, ok, prefix, take, unknownKeys, type Parsed, type PathIssue } from "./issues.js";

export interface IcmpProbeConfig {
  count: number;
  timeoutMs: number;
  /** ICMP payload bytes (ping -s). */
  size: number;
}

export interface Snmpv3ProbeConfig {
  user: string;
  authProtocol: Snmpv3AuthProtocol;
  authKey: SecretRef;
  privProtocol: Snmpv3PrivProtocol;
  privKey: SecretRef;
  port: number;
}

export interface VerifyProbesConfig {
  /** false: no ICMP. */
  icmp: IcmpProbeConfig | false;
  snmpv3?: Snmpv3ProbeConfig;
}

/** `verify:` parsed: whether VERIFY runs, and the probe settings when a mapping was written. */
export interface VerifySetting {
  enabled: boolean;
  probes?: VerifyProbesConfig;
}

export const ICMP_CONFIG_DEFAULTS: IcmpProbeConfig = { count: 3, timeoutMs: 1000, size: 56 };

export function parseVerify(v: unknown): Parsed<VerifySetting> {
  if (typeof v === "boolean") return ok({ enabled: v });
  if (!isPlainObject(v)) return fail(`expected true, false or a mapping { enabled, icmp, snmpv3 }, got ${describeValue(v)}`);
  const issues = unknownKeys(v, ["enabled", "icmp", "snmpv3"]);
  let enabled = true;
  if (v.enabled !== undefined) {
    if (typeof v.enabled === "boolean") enabled = v.enabled;
    else issues.push({ path: ["enabled"], message: `expected true or false, got ${describeValue(v.enabled)}` });
  }
  const icmp = v.icmp === undefined ? { ...ICMP_CONFIG_DEFAULTS } : parseIcmp(v.icmp, issues);
  const snmpv3 = v.snmpv3 === undefined ? undefined : parseSnmpv3(v.snmpv3, issues);
  if (issues.length > 0 || icmp === undefined || (v.snmpv3 !== undefined && snmpv3 === undefined)) return { ok: false, issues };
  return ok({ enabled, probes: { icmp, ...(snmpv3 ? { snmpv3 } : {}) } });
}

function parseIcmp(v: unknown, issues: PathIssue[]): IcmpProbeConfig | false | undefined {
  if (v === false) return false;
  if (v === true) return { ...ICMP_CONFIG_DEFAULTS };
  if (!isPlainObject(v)) {
    issues.push({ path: ["icmp"], message: `expected false or a mapping { count, timeout, size }, got ${describeValue(v)}` });
    return undefined;
  }
  const before = issues.length;
  issues.push(...prefix(["icmp"], unknownKeys(v, ["count", "timeout", "size"])));
  const count = v.count === undefined ? ICMP_CONFIG_DEFAULTS.count : take(parseInteger(1, 20)(v.count), ["icmp", "count"], issues);
  const size = v.size === undefined ? ICMP_CONFIG_DEFAULTS.size : take(parseInteger(0, 65_507, "a payload size in bytes")(v.size), ["icmp", "size"], issues);
  let timeoutMs: number | undefined = ICMP_CONFIG_DEFAULTS.timeoutMs;
  if (v.timeout !== undefined) {
    timeoutMs = take(parseDurationField(v.timeout), ["icmp", "timeout"], issues);
    if (timeoutMs !== undefined && (timeoutMs < 100 || timeoutMs > 10_000)) {
      issues.push({ path: ["icmp", "timeout"], message: `expected 100ms..10s, got ${formatDuration(timeoutMs)}` });
    }
  }
  if (issues.length > before || count === undefined || size === undefined || timeoutMs === undefined) return undefined;
  return { count, timeoutMs, size };
}

function parseSnmpv3(v: unknown, issues: PathIssue[]): Snmpv3ProbeConfig | undefined {
  const at = (...p: string[]) => ["snmpv3", ...p];
  if (!isPlainObject(v)) {
    issues.push({ path: at(), message: `expected a mapping { user, authProtocol, authKey, privProtocol, privKey }, got ${describeValue(v)}` });
    return undefined;
  }
  const before = issues.length;
  issues.push(...prefix(at(), unknownKeys(v, ["user", "authProtocol", "authKey", "privProtocol", "privKey", "port"])));
  if (typeof v.user !== "string" || v.user === "" || v.user.length > 32) {
    issues.push({ path: at("user"), message: v.user === undefined ? "required" : `expected a user name of 1..32 characters, got ${describeValue(v.user)}` });
  }
  const authProtocol = oneOf(v.authProtocol ?? "sha", SNMPV3_AUTH_PROTOCOLS, at("authProtocol"), issues);
  const privProtocol = oneOf(v.privProtocol ?? "aes", SNMPV3_PRIV_PROTOCOLS, at("privProtocol"), issues);
  if (privProtocol === "des" && !desAvailable()) {
    issues.push({ path: at("privProtocol"), message: "des: single DES is disabled in this Node.js (OpenSSL 3); run node with --openssl-legacy-provider, or use aes" });
  }
  const key = (name: "authKey" | "privKey") => {
    if (v[name] === undefined) {
      issues.push({ path: at(name), message: "required: { env: NAME } or { file: PATH }" });
      return undefined;
    }
    return parseSecretRef(v[name], at(name), issues);
  };
  const authKey = key("authKey");
  const privKey = key("privKey");
  const port = v.port === undefined ? 161 : take(parseInteger(1, 65535, "a port")(v.port), at("port"), issues);
  if (issues.length > before || !authKey || !privKey || !authProtocol || !privProtocol || port === undefined) return undefined;
  return { user: v.user as string, authProtocol, authKey, privProtocol, privKey, port };
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], path: (string | number)[], issues: PathIssue[]): T | undefined {
  const s = typeof v === "string" ? v.toLowerCase().replace(/^sha-?1$/, "sha").replace(/^aes-?128$/, "aes") : v;
  if (typeof s === "string" && (allowed as readonly string[]).includes(s)) return s as T;
  issues.push({ path, message: `expected ${allowed.join("|")}, got ${describeValue(v)}` });
  return undefined;
}

/** `{ file }` key references made absolute, as the device passwords are. */
export function absoluteVerifyProbes(p: VerifyProbesConfig, abs: (file: string) => string): VerifyProbesConfig {
  return p.snmpv3 ? { ...p, snmpv3: { ...p.snmpv3, authKey: absoluteSecretRef(p.snmpv3.authKey, abs), privKey: absoluteSecretRef(p.snmpv3.privKey, abs) } } : p;
}

/** How `validate` shows `verify:` — back as written: a boolean, or the mapping with key references. */
export function displayVerify(enabled: boolean, p: VerifyProbesConfig | undefined):
  | boolean
  | { enabled: boolean; icmp: false | { count: number; timeout: string; size: number }; snmpv3?: Omit<Snmpv3ProbeConfig, "authKey" | "privKey"> & { authKey: DisplaySecret; privKey: DisplaySecret } } {
  if (!p) return enabled;
  return {
    enabled,
    icmp: p.icmp === false ? false : { count: p.icmp.count, timeout: formatDuration(p.icmp.timeoutMs), size: p.icmp.size },
    ...(p.snmpv3 ? { snmpv3: { ...p.snmpv3, authKey: displaySecretRef(p.snmpv3.authKey), privKey: displaySecretRef(p.snmpv3.privKey) } } : {}),
  };
}
