// The run.yaml schema (DESIGN.md "Config file"): shapes, defaults and every check that needs no
// file positions. Pure: no I/O, never throws on bad input; loader.ts adds file/line to the issues.

import { isIPv6 } from "node:net";
import { homedir } from "node:os";
import { resolve as resolvePath } from "node:path";
import { z } from "zod";
import { parseDuration } from "./duration.js";
import { type CaptureSpec, mergeCaptureSpecs } from "@capsync/protocol";
import { checkDeviceSpec, specFromConfig } from "./capture.js";
import { attachFlow, checkFlow, type FlowConfig } from "./flow.js";
import { absoluteNotify, absoluteStorage, parseNotify, parseStorage, type NotifyConfig, type StorageConfig } from "../storage/config.js";

// ---------------------------------------------------------------------------------------------
// Public types: what the orchestrator receives. Durations are milliseconds (`…Ms`), paths absolute.

export const DEVICE_TYPES = ["msbr", "gwsbc", "iosxe"] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

/** MSBR physical capture interfaces (`debug capture data physical <iface>`); several may be captured at once. */
export const MSBR_INTERFACES = [
  "cellular-wan",
  "fiber-wan",
  "xdsl-wan",
  "shdsl-wan",
  "t1-e1-wan",
  "eth-wan",
  "eth-lan",
] as const;
export type MsbrInterface = (typeof MSBR_INTERFACES)[number];
/** Gateway/SBC: `debug capture voip physical eth-lan` is the only capture point. */
export const GWSBC_INTERFACES = ["eth-lan"] as const;

/** Alarm matchers the triggers package provides by name. */
export const BUILTIN_ALARMS = ["connection-lost", "iosxe-link-down", "iosxe-lineproto-down"] as const;
export type BuiltinAlarm = (typeof BUILTIN_ALARMS)[number];

/** Default UDP port of server-capture agents (legacy and v1). */
export const DEFAULT_AGENT_PORT = 20001;

/** A password by reference; `plain` only exists when the config allows it (allowPlain: true). */
export type SecretRef =
  | { kind: "env"; env: string }
  | { kind: "file"; file: string }
  | { kind: "plain"; value: string };

export type TlsConfig = { mode: "verify" } | { mode: "insecure" } | { mode: "ca"; ca: string };

/** host is an IP literal without brackets (IPv6 lower-case), port 1..65535. */
export interface AgentEndpoint {
  host: string;
  port: number;
}

/** Where the syslog listener binds; port 0 means "any free port". */
export interface ListenAddress {
  host: string;
  port: number;
}

export type StopAlarm =
  | { kind: "builtin"; name: BuiltinAlarm }
  /** A JS regular expression with a named group `device` that captures the device address. */
  | { kind: "pattern"; pattern: string; flags: string };

export interface DeviceConfig {
  /** Defaults to the address. */
  name: string;
  /** IPv4/IPv6 literal (no brackets, IPv6 lower-case) or host name (lower-case, no trailing dot). */
  address: string;
  type: DeviceType;
  /** Never empty: gwsbc defaults to ["eth-lan"]; msbr and iosxe must list theirs. */
  interfaces: string[];
  username: string;
  password: SecretRef;
  tls: TlsConfig;
  restPort: number;
  sshPort: number;
  agents: AgentEndpoint[];
  /** The device's own `duration`, else stop.duration. */
  durationMs: number;
  /** What to capture: run-level `capture` merged with the device's, interfaces included; checked for the device and its agents. */
  spec: CaptureSpec;
  /** IOS-XE only: RESTCONF (default) or the SSH CLI; scp (default) or sftp for the export. */
  transport?: "restconf" | "ssh-cli";
  fileTransfer?: "scp" | "sftp";
  /** A hop of the run's `flow`: the device captures this `spec` (its own with the flow's filter and VRF); its agents keep `spec`. */
  flowHop?: { hop: number; spec: CaptureSpec };
}

export interface RunConfig {
  /** Absolute path of the file this came from; undefined for configs built from objects. */
  configFile: string | undefined;
  /** Absolute; one run folder is created under it. */
  output: string;
  /** How many devices are driven at once. */
  concurrency: number;
  /** Retries of REST, SFTP and agent requests after the first attempt. */
  retries: number;
  /** Run the VERIFY step (test traffic on both sides) after the captures start. */
  verify: boolean;
  timeouts: { restMs: number; sftpMs: number; agentMs: number };
  agents: {
    /** v1 pre-shared key file (absolute); set whenever devices list agents and legacy is false. */
    keyFile: string | undefined;
    legacy: boolean;
    sshKeyFile: string | undefined;
    sftpPort: number;
    /** Local UDP port for agent requests/answers; 0 = any free port; the syslog port when shared. */
    answerPort: number;
  };
  syslog: { listen: ListenAddress; tcp: boolean; sharePortWithAgents: boolean };
  /** deviceRetryMs: how long a device that is unreachable at stop time keeps being retried (stop + download). */
  stop: { alarms: StopAlarm[]; maxEventsPerDevice: number; durationMs: number; deviceRetryMs: number };
  devices: DeviceConfig[];
  /** One flow captured at every hop of a path of devices and agents (config/flow.ts); absent when not configured. */
  flow?: FlowConfig;
  /** Upload the run folder at the end (storage/); absent when not configured. */
  storage?: StorageConfig;
  /** Webhooks on run events (notify/); absent when not configured. */
  notify?: NotifyConfig;
}

export const DEFAULTS = {
  output: "./runs",
  concurrency: 64,
  retries: 3,
  verify: true,
  timeouts: { restMs: 10_000, sftpMs: 60_000, agentMs: 8_000 },
  sftpPort: 20022,
  syslogListen: { host: "0.0.0.0", port: 20514 },
  stopDurationMs: 24 * 3_600_000,
  deviceRetryMs: 30 * 60_000,
  maxEventsPerDevice: 1,
  restPort: 443,
  sshPort: 22,
} as const;

/** A problem at a path inside the config value; loader.ts turns the path into file:line. */
export interface PathIssue {
  path: (string | number)[];
  message: string;
  /** Another place the message refers to; the loader appends "(line N)" of it. */
  related?: (string | number)[];
}

export interface CheckResult {
  /** Set only when `issues` is empty. */
  config: RunConfig | undefined;
  issues: PathIssue[];
  warnings: PathIssue[];
}

// ---------------------------------------------------------------------------------------------
// Message helpers

/** How a value appears in a message: strings quoted and clipped, collections by kind. */
export function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "an empty value";
  if (typeof v === "string") {
    const shown = v.length > 60 ? `${v.slice(0, 57)}...` : v;
    return `'${shown.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}'`;
  }
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `a ${typeof v}`;
}

/** Kind only, for values that may be secrets. */
function kindOf(v: unknown): string {
  if (v === null) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return "a string";
  return `a ${typeof v}`;
}

/** `devices[2].type`; keys that are not identifiers are quoted: `agents["key file"]`. */
export function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return "(top level)";
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** The closest candidate for a mistyped key: "pasword" → "password", "key_file" → "keyFile". */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_\s]/g, "");
  const w = norm(word);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, norm(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const allowed = Math.max(1, Math.floor(w.length / 3));
  return bestDistance <= allowed ? best : undefined;
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions ("tpye" → "type" is 1). */
function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Infinity; // no typo of ours is that long
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const hint = suggest(key, allowed);
  // describeValue escapes control characters: a "\n" in a key must not split the one-line report.
  return hint === undefined ? `unknown key ${describeValue(key)}` : `unknown key ${describeValue(key)} (did you mean '${hint}'?)`;
}

// ---------------------------------------------------------------------------------------------
// Field parsers: plain functions (also used by the cross-checks), wrapped for zod by `field`.

type Parsed<T> = { ok: true; value: T } | { ok: false; issues: PathIssue[] };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T = never>(message: string, path: (string | number)[] = []): Parsed<T> => ({
  ok: false,
  issues: [{ path, message }],
});

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export type HostKind = "ipv4" | "ipv6" | "name";

/** An IPv4/IPv6 literal (IPv6 optionally in brackets) or a host name; returns the normal form. */
export function parseHost(text: string): { ok: true; host: string; kind: HostKind } | { ok: false } {
  let s = text.trim();
  if (IPV4.test(s)) return { ok: true, host: s, kind: "ipv4" };
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  if (isIPv6(s)) return { ok: true, host: s.toLowerCase(), kind: "ipv6" };
  const name = s.toLowerCase().replace(/\.$/, "");
  const labels = name.split(".");
  if (
    name.length > 0 &&
    name.length <= 253 &&
    labels.every((l) => LABEL.test(l)) &&
    // An all-numeric last label is a mistyped IPv4 address ("192.0.2.300"), not a host name.
    !/^\d+$/.test(labels[labels.length - 1]!)
  ) {
    return { ok: true, host: name, kind: "name" };
  }
  return { ok: false };
}

/** The form two spellings of one address share, for duplicate detection. */
export function hostKey(host: string, kind: HostKind): string {
  if (kind !== "ipv6") return host;
  const [addr, zone] = host.split("%", 2) as [string, string | undefined];
  let canonical = addr;
  try {
    canonical = new URL(`http://[${addr}]/`).hostname.slice(1, -1);
  } catch {
    // isIPv6 accepted it; URL may still refuse odd forms. The lower-case text is good enough then.
  }
  return zone === undefined ? canonical : `${canonical}%${zone}`;
}

function parseAddress(v: unknown): Parsed<string> {
  if (typeof v !== "string") return fail(`expected an IPv4/IPv6 address or a host name, got ${describeValue(v)}`);
  const h = parseHost(v);
  return h.ok ? ok(h.host) : fail(`expected an IPv4/IPv6 address or a host name, got ${describeValue(v)}`);
}

function parseInteger(min: number, max: number, what = "an integer") {
  return (v: unknown): Parsed<number> =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max
      ? ok(v)
      : fail(`expected ${what} ${min}..${max}, got ${describeValue(v)}`);
}
const parsePort = parseInteger(1, 65535, "a port");
const parsePortOrZero = parseInteger(0, 65535, "a port (0 = any free port)");

function parseNonEmptyString(v: unknown): Parsed<string> {
  if (typeof v !== "string") return fail(`expected a string, got ${describeValue(v)}`);
  return v.trim() === "" ? fail("must not be empty") : ok(v);
}

function parseFilePath(v: unknown): Parsed<string> {
  if (typeof v !== "string" || v.trim() === "" || v.includes("\0")) {
    return fail(`expected a file path, got ${describeValue(v)}`);
  }
  return ok(v);
}

function parseName(v: unknown): Parsed<string> {
  // Names end up in run-folder file names, so keep them to a portable alphabet.
  return typeof v === "string" && /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v)
    ? ok(v)
    : fail(`expected a name of letters, digits, '.', '_' or '-' (at most 64), got ${describeValue(v)}`);
}

function parseDurationField(v: unknown): Parsed<number> {
  const r = parseDuration(v);
  return r.ok ? ok(r.ms) : fail(r.message);
}

/** `a.b.c.d:port`, `[v6]:port`; the port may be left out when `defaultPort` is given. */
export function parseEndpoint(
  text: string,
  opts: { defaultPort?: number; allowPortZero?: boolean } = {},
): { ok: true; value: AgentEndpoint } | { ok: false; message: string } {
  const s = text.trim();
  const shape = `expected IP:port (IPv6 as [addr]:port), got ${describeValue(text)}`;
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
    if (!isIPv6(host)) return { ok: false, message: shape };
  } else if (isIPv6(s)) {
    // "2001:db8::5:20001" is itself a valid IPv6 address, so a port can never follow bare IPv6.
    return { ok: false, message: `write IPv6 endpoints as [addr]:port, got ${describeValue(text)}` };
  } else {
    const i = s.lastIndexOf(":");
    host = i < 0 ? s : s.slice(0, i);
    portText = i < 0 ? undefined : s.slice(i + 1);
    if (!IPV4.test(host)) return { ok: false, message: shape };
  }
  let port: number;
  if (portText === undefined) {
    if (opts.defaultPort === undefined) return { ok: false, message: shape };
    port = opts.defaultPort;
  } else {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    const min = opts.allowPortZero ? 0 : 1;
    if (!(port >= min && port <= 65535)) {
      return { ok: false, message: `port must be ${min}..65535, got ${/^\d+$/.test(portText) ? portText : describeValue(portText)}` };
    }
  }
  return { ok: true, value: { host: host.toLowerCase(), port } };
}

function parseAgent(v: unknown): Parsed<AgentEndpoint> {
  if (typeof v === "string") {
    const r = parseEndpoint(v, { defaultPort: DEFAULT_AGENT_PORT });
    return r.ok ? ok(r.value) : fail(r.message);
  }
  if (isPlainObject(v)) {
    const issues = unknownKeys(v, ["host", "port"]);
    const host = typeof v.host === "string" ? parseHost(v.host) : { ok: false as const };
    if (!host.ok || host.kind === "name") {
      issues.push({ path: ["host"], message: `expected an IP address, got ${describeValue(v.host)}` });
    }
    const port = v.port === undefined ? ok(DEFAULT_AGENT_PORT) : parsePort(v.port);
    if (!port.ok) issues.push(...prefix(["port"], port.issues));
    if (issues.length > 0 || !host.ok || !port.ok) return { ok: false, issues };
    return ok({ host: host.host, port: port.value });
  }
  return fail(`expected IP:port (IPv6 as [addr]:port), got ${describeValue(v)}`);
}

function parseListen(v: unknown): Parsed<ListenAddress> {
  if (typeof v === "number") {
    const p = parsePortOrZero(v);
    return p.ok ? ok({ host: DEFAULTS.syslogListen.host, port: p.value }) : p;
  }
  if (typeof v !== "string") return fail(`expected IP:port (IPv6 as [addr]:port), got ${describeValue(v)}`);
  const s = v.trim().startsWith(":") ? `${DEFAULTS.syslogListen.host}${v.trim()}` : v;
  const r = parseEndpoint(s, { allowPortZero: true });
  return r.ok ? ok(r.value) : fail(r.message);
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_SHAPE = "expected { env: NAME } or { file: PATH } (a plain string only with allowPlain: true)";

/**
 * A password: `{ env: NAME }`, `{ file: PATH }` or a plain string (refused later unless allowed).
 * Messages never contain the value, and not even unknown key names: a user who writes the
 * password as a key (`password: { hunter2: }`) must not see it echoed in a log.
 */
function parseSecret(v: unknown): Parsed<SecretRef> {
  if (typeof v === "string") return v === "" ? fail("must not be empty") : ok({ kind: "plain", value: v });
  if (!isPlainObject(v)) return fail(`${SECRET_SHAPE}, got ${kindOf(v)}`);
  const keys = Object.keys(v);
  const others = keys.filter((k) => k !== "env" && k !== "file");
  if (others.length > 0) {
    const hint = others.map((k) => suggest(k, ["env", "file"])).find((h) => h !== undefined);
    return fail(`${SECRET_SHAPE}; found another key${hint ? ` (did you mean '${hint}'?)` : ""}`);
  }
  if (keys.length !== 1) return fail(keys.length === 0 ? SECRET_SHAPE : "use either env or file, not both");
  if ("env" in v) {
    return typeof v.env === "string" && ENV_NAME.test(v.env)
      ? ok({ kind: "env", env: v.env })
      : fail(`expected an environment variable name like MSBR1_PASSWORD, got ${describeValue(v.env)}`, ["env"]);
  }
  const file = parseFilePath(v.file);
  return file.ok ? ok({ kind: "file", file: file.value }) : { ok: false, issues: prefix(["file"], file.issues) };
}

function parseTls(v: unknown): Parsed<TlsConfig> {
  if (v === "verify" || v === "insecure") return ok({ mode: v });
  if (isPlainObject(v)) {
    const issues = unknownKeys(v, ["ca"]);
    const ca = parseFilePath(v.ca);
    if (v.ca === undefined) issues.push({ path: ["ca"], message: "required" });
    else if (!ca.ok) issues.push(...prefix(["ca"], ca.issues));
    return issues.length === 0 && ca.ok ? ok({ mode: "ca", ca: ca.value }) : { ok: false, issues };
  }
  return fail(`expected verify|insecure or { ca: PATH }, got ${describeValue(v)}`);
}

function parseAlarm(v: unknown): Parsed<StopAlarm> {
  if (typeof v === "string") {
    return (BUILTIN_ALARMS as readonly string[]).includes(v)
      ? ok({ kind: "builtin", name: v as BuiltinAlarm })
      : fail(`expected ${BUILTIN_ALARMS.join("|")} or { pattern: REGEX }, got ${describeValue(v)}`);
  }
  if (!isPlainObject(v)) return fail(`expected ${BUILTIN_ALARMS.join("|")} or { pattern: REGEX }, got ${describeValue(v)}`);
  const issues = unknownKeys(v, ["pattern", "flags"]);
  const flags = v.flags === undefined ? "" : v.flags;
  if (typeof flags !== "string" || !/^(?!.*(.).*\1)[imsu]*$/.test(flags)) {
    issues.push({ path: ["flags"], message: `expected some of the flags i, m, s, u, got ${describeValue(v.flags)}` });
  }
  if (v.pattern === undefined) {
    issues.push({ path: ["pattern"], message: "required" });
  } else if (typeof v.pattern !== "string" || v.pattern === "") {
    issues.push({ path: ["pattern"], message: `expected a regular expression, got ${describeValue(v.pattern)}` });
  } else if (typeof flags === "string" && issues.every((i) => i.path[0] !== "flags")) {
    const problem = checkAlarmPattern(v.pattern, flags);
    if (problem !== undefined) issues.push({ path: ["pattern"], message: problem });
  }
  return issues.length === 0 ? ok({ kind: "pattern", pattern: v.pattern as string, flags: flags as string }) : { ok: false, issues };
}

/** Why a user pattern is unusable, or undefined: it must compile and have a `device` named group. */
export function checkAlarmPattern(pattern: string, flags = ""): string | undefined {
  let groups: Record<string, unknown> | undefined;
  try {
    new RegExp(pattern, flags);
    // Matching "" against `(?:p)|` always succeeds through the empty branch, and `groups` then
    // lists every named group of p: the one sure way to ask the engine which groups exist.
    groups = new RegExp(`(?:${pattern})|`, flags).exec("")?.groups;
  } catch (e) {
    // V8 says "Invalid regular expression: /<source>/<flags>: <reason>"; the source is in the file already.
    const text = e instanceof Error ? e.message : String(e);
    return `invalid regular expression: ${text.slice(text.lastIndexOf(": ") + 2)}`;
  }
  if (groups === undefined || !("device" in groups)) {
    return "needs a named group (?<device>...) that captures the device address";
  }
  return undefined;
}

function unknownKeys(v: Record<string, unknown>, allowed: readonly string[]): PathIssue[] {
  return Object.keys(v)
    .filter((k) => !allowed.includes(k))
    .map((k) => ({ path: [k], message: unknownKeyMessage(k, allowed) }));
}

function prefix(path: (string | number)[], issues: PathIssue[]): PathIssue[] {
  return issues.map((i) => ({ path: [...path, ...i.path], message: i.message }));
}

/** A single item where a list is expected is taken as a list of one. */
function listOf<T>(parse: (v: unknown) => Parsed<T>) {
  return (v: unknown): Parsed<T[]> => {
    if (!Array.isArray(v)) {
      const one = parse(v);
      return one.ok ? ok([one.value]) : one;
    }
    const out: T[] = [];
    const issues: PathIssue[] = [];
    v.forEach((item, i) => {
      const r = parse(item);
      if (r.ok) out.push(r.value);
      else issues.push(...prefix([i], r.issues));
    });
    return issues.length === 0 ? ok(out) : { ok: false, issues };
  };
}

/** Wrap a parser for zod; `undefined` (a missing key) is "required" unless the field is optional/defaulted. */
function field<T>(parse: (v: unknown) => Parsed<T>) {
  return z.unknown().transform((v, ctx): T => {
    const r: Parsed<T> = v === undefined ? fail("required") : parse(v);
    if (r.ok) return r.value;
    for (const issue of r.issues) ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
    return z.NEVER;
  });
}

// ---------------------------------------------------------------------------------------------
// The file's shape. Everything that depends on another field is in crossCheck below, so that one
// bad field never hides the problems of the others.

const DurationField = field(parseDurationField);
const PortField = field(parsePort);

const DeviceShape = z.strictObject({
  name: field(parseName).optional(),
  address: field(parseAddress),
  type: z.enum(DEVICE_TYPES),
  // Checked against the device type in crossCheck.
  interfaces: field(listOf(parseNonEmptyString)).optional(),
  username: field(parseNonEmptyString),
  password: field(parseSecret),
  allowPlain: z.boolean().optional(),
  tls: field(parseTls).default({ mode: "verify" }),
  restPort: PortField.default(DEFAULTS.restPort),
  sshPort: PortField.default(DEFAULTS.sshPort),
  agents: field(listOf(parseAgent)).default([]),
  duration: DurationField.optional(),
  // Checked (and compiled for the device and its agents) in crossCheck.
  capture: z.unknown().optional(),
  transport: z.enum(["restconf", "ssh-cli"]).optional(),
  fileTransfer: z.enum(["scp", "sftp"]).optional(),
});

const ConfigShape = z.strictObject({
  output: field(parseFilePath).default(DEFAULTS.output),
  capture: z.unknown().optional(),
  concurrency: field(parseInteger(1, 4096)).default(DEFAULTS.concurrency),
  retries: field(parseInteger(0, 100)).default(DEFAULTS.retries),
  verify: z.boolean().default(DEFAULTS.verify),
  allowPlain: z.boolean().default(false),
  timeouts: z
    .strictObject({
      rest: DurationField.default(DEFAULTS.timeouts.restMs),
      sftp: DurationField.default(DEFAULTS.timeouts.sftpMs),
      agent: DurationField.default(DEFAULTS.timeouts.agentMs),
    })
    .prefault({}),
  agents: z
    .strictObject({
      keyFile: field(parseFilePath).optional(),
      legacy: z.boolean().default(false),
      sshKeyFile: field(parseFilePath).optional(),
      sftpPort: PortField.default(DEFAULTS.sftpPort),
      answerPort: field(parsePortOrZero).optional(),
    })
    .prefault({}),
  syslog: z
    .strictObject({
      listen: field(parseListen).default({ ...DEFAULTS.syslogListen }),
      tcp: z.boolean().default(false),
      sharePortWithAgents: z.boolean().default(false),
    })
    .prefault({}),
  stop: z
    .strictObject({
      alarms: field(listOf(parseAlarm)).default([{ kind: "builtin", name: "connection-lost" }]),
      maxEventsPerDevice: field(parseInteger(1, 1_000_000)).default(DEFAULTS.maxEventsPerDevice),
      duration: DurationField.default(DEFAULTS.stopDurationMs),
      deviceRetry: DurationField.default(DEFAULTS.deviceRetryMs),
    })
    .prefault({}),
  // Required, and not empty, unless a flow names the hops (checkConfig): a flow of agents needs no device.
  devices: z.array(DeviceShape).optional(),
  flow: z.unknown().optional(),
  storage: field(parseStorage).optional(),
  notify: field(parseNotify).optional(),
});

type ParsedShape = z.output<typeof ConfigShape>;

/** Messages for zod's own issues (objects, booleans, enums, the devices list), in our words. */
const errorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case "invalid_type":
      if (iss.input === undefined) return "required";
      return `expected ${TYPE_NAMES[iss.expected] ?? iss.expected}, got ${describeValue(iss.input)}`;
    case "invalid_value":
      if (iss.input === undefined) return "required";
      return `expected ${iss.values.map(String).join("|")}, got ${describeValue(iss.input)}`;
    case "unrecognized_keys": {
      // One line per key; checkConfig splits them into one issue per key, each at its own line.
      const shape = (iss.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
      const allowed = shape ? Object.keys(shape) : [];
      return iss.keys.map((k) => unknownKeyMessage(k, allowed)).join("\n");
    }
    default:
      return undefined;
  }
};
const TYPE_NAMES: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  boolean: "true or false",
  string: "a string",
  number: "a number",
};

// ---------------------------------------------------------------------------------------------

export interface CheckOptions {
  /** Relative paths in the config are resolved against this (the config file's folder). */
  baseDir: string;
  configFile?: string | undefined;
}

/** Validate and normalise a config value (as parsed from YAML/JSON). Never throws on bad input. */
export function checkConfig(input: unknown, opts: CheckOptions): CheckResult {
  if (!isPlainObject(input)) {
    return {
      config: undefined,
      issues: [{ path: [], message: `expected a mapping of settings (output, agents, syslog, stop, devices), got ${describeValue(input)}` }],
      warnings: [],
    };
  }
  // Top-level `x-` keys are the user's own (as in Compose files): a home for YAML anchors such as
  // `x-msbr: &msbr { type: msbr, ... }` shared by devices with `<<: *msbr`.
  const raw = Object.fromEntries(Object.entries(input).filter(([k]) => !k.startsWith("x-")));
  const issues: PathIssue[] = [];
  const warnings: PathIssue[] = [];
  const parsed = ConfigShape.safeParse(raw, { error: errorMap });
  if (!parsed.success) {
    for (const iss of parsed.error.issues) {
      const path = iss.path.map((p) => (typeof p === "number" ? p : String(p)));
      if (iss.code === "unrecognized_keys") {
        const lines = iss.message.split("\n");
        iss.keys.forEach((k, i) => issues.push({ path: [...path, k], message: lines[i] ?? `unknown key '${k}'` }));
      } else {
        issues.push({ path, message: iss.message });
      }
    }
  }
  crossCheck(raw, issues, warnings);
  const flow = checkFlow(raw, issues);
  if (raw.flow === undefined && (raw.devices === undefined || (Array.isArray(raw.devices) && raw.devices.length === 0))) {
    issues.push({ path: ["devices"], message: raw.devices === undefined ? "required" : "at least one device is required" });
  }
  if (issues.length > 0 || !parsed.success) return { config: undefined, issues, warnings };
  const config = build(parsed.data, opts);
  return { config: flow ? attachFlow(config, flow) : config, issues, warnings };
}

/**
 * Checks that span fields. They read the raw value and skip whatever the shape check already
 * rejects, so each problem is reported once and independent problems are all reported.
 */
function crossCheck(raw: Record<string, unknown>, issues: PathIssue[], warnings: PathIssue[]): void {
  const agentsSection = isPlainObject(raw.agents) ? raw.agents : {};
  const syslog = isPlainObject(raw.syslog) ? raw.syslog : {};
  const stop = isPlainObject(raw.stop) ? raw.stop : {};
  const legacy = agentsSection.legacy === true;
  const runAllowPlain = raw.allowPlain === true;
  const devices = Array.isArray(raw.devices) ? raw.devices : [];
  const runSpec = specFromConfig(raw.capture, ["capture"], issues);

  const seenAddress = new Map<string, number>();
  const seenName = new Map<string, number>();
  let firstAgents: (string | number)[] | undefined;
  devices.forEach((d, i) => {
    if (!isPlainObject(d)) return;
    const at = (...p: (string | number)[]) => ["devices", i, ...p];

    if (typeof d.address === "string") {
      const h = parseHost(d.address);
      if (h.ok) {
        const key = hostKey(h.host, h.kind);
        const first = seenAddress.get(key);
        if (first !== undefined) {
          issues.push({ path: at("address"), message: `duplicate address ${describeValue(d.address)}, also used by devices[${first}]`, related: ["devices", first, "address"] });
        } else seenAddress.set(key, i);
      }
    }
    const name = typeof d.name === "string" ? d.name : undefined;
    if (name !== undefined && parseName(name).ok) {
      const first = seenName.get(name.toLowerCase());
      if (first !== undefined) {
        issues.push({ path: at("name"), message: `duplicate name ${describeValue(name)}, also used by devices[${first}]`, related: ["devices", first, "name"] });
      } else seenName.set(name.toLowerCase(), i);
    }

    if (typeof d.type === "string" && (DEVICE_TYPES as readonly string[]).includes(d.type)) {
      const before = issues.length;
      checkInterfaces(d.type as DeviceType, d.interfaces, at("interfaces"), issues);
      const deviceSpec = specFromConfig(d.capture, at("capture"), issues);
      if (issues.length === before && runSpec && deviceSpec && typeof d.address === "string") {
        const hasAgents = d.agents !== undefined && (!Array.isArray(d.agents) || d.agents.length > 0);
        const interfaces = d.interfaces === undefined ? undefined : Array.isArray(d.interfaces) ? (d.interfaces as string[]) : [d.interfaces as string];
        checkDeviceSpec({ runSpec, deviceSpec, interfaces, type: d.type as DeviceType, address: d.address, hasAgents, legacy, path: at(), issues });
      }
      for (const k of ["transport", "fileTransfer"] as const) {
        if (d[k] !== undefined && d.type !== "iosxe") issues.push({ path: at(k), message: `only for iosxe devices (${d.type} has one transport)` });
      }
    }

    if (typeof d.password === "string" && d.password !== "") {
      const allowed = typeof d.allowPlain === "boolean" ? d.allowPlain : runAllowPlain;
      if (allowed) warnings.push({ path: at("password"), message: "plain-text password in the config file; prefer { env: NAME } or { file: PATH }" });
      else issues.push({ path: at("password"), message: "plain-text password refused; use { env: NAME } or { file: PATH } (or set allowPlain: true)" });
    }

    const agents = d.agents === undefined ? [] : Array.isArray(d.agents) ? d.agents : [d.agents];
    const singleAgent = d.agents !== undefined && !Array.isArray(d.agents);
    const seenAgent = new Map<string, number>();
    agents.forEach((a, j) => {
      const r = parseAgent(a);
      if (!r.ok) return;
      firstAgents ??= at("agents");
      const p = singleAgent ? at("agents") : at("agents", j);
      const key = `${hostKey(r.value.host, isIPv6(r.value.host) ? "ipv6" : "ipv4")}:${r.value.port}`;
      const first = seenAgent.get(key);
      if (first !== undefined) issues.push({ path: p, message: `duplicate agent ${formatEndpoint(r.value)}, also at agents[${first}]` });
      else seenAgent.set(key, j);
      if (legacy && isIPv6(r.value.host)) issues.push({ path: p, message: "the legacy protocol (agents.legacy: true) is IPv4 only" });
    });
  });

  if (firstAgents !== undefined && !legacy && agentsSection.keyFile === undefined) {
    if (raw.agents === undefined) {
      issues.push({ path: firstAgents, message: "needs agents.keyFile (v1 signs every request with that pre-shared key), or agents.legacy: true" });
    } else if (isPlainObject(raw.agents)) {
      issues.push({ path: ["agents", "keyFile"], message: "required when devices list agents (v1 signs every request with this key), or set agents.legacy: true" });
    }
  }
  if (legacy) {
    warnings.push({ path: ["agents", "legacy"], message: "the legacy protocol has no authentication and is IPv4 only; use it on trusted networks only" });
    if (agentsSection.keyFile !== undefined) warnings.push({ path: ["agents", "keyFile"], message: "ignored with legacy: true" });
  }

  const listen = syslog.listen === undefined ? ok({ ...DEFAULTS.syslogListen }) : parseListen(syslog.listen);
  const answer = agentsSection.answerPort === undefined ? undefined : parsePortOrZero(agentsSection.answerPort);
  if (listen.ok && answer?.ok && answer.value !== 0) {
    if (syslog.sharePortWithAgents === true && answer.value !== listen.value.port) {
      issues.push({ path: ["agents", "answerPort"], message: `must be the syslog port ${listen.value.port} when syslog.sharePortWithAgents is true (or leave it out)` });
    } else if (syslog.sharePortWithAgents !== true && answer.value === listen.value.port) {
      issues.push({ path: ["agents", "answerPort"], message: `is the syslog port too; set syslog.sharePortWithAgents: true to share it` });
    }
  }

  if (Array.isArray(stop.alarms) && stop.alarms.length === 0) {
    warnings.push({ path: ["stop", "alarms"], message: "empty: the run stops only on stop.duration, a signal or a manual stop" });
  }
}

function checkInterfaces(type: DeviceType, v: unknown, path: (string | number)[], issues: PathIssue[]): void {
  if (v === undefined) {
    if (type === "msbr") issues.push({ path, message: `required for msbr: one or more of ${MSBR_INTERFACES.join(", ")}` });
    if (type === "iosxe") issues.push({ path, message: "required for iosxe: one or more interface names, e.g. GigabitEthernet1" });
    return;
  }
  const single = !Array.isArray(v);
  const list: unknown[] = single ? [v] : (v as unknown[]);
  if (list.length === 0) {
    issues.push({ path, message: "expected at least one interface" });
    return;
  }
  const seen = new Set<string>();
  list.forEach((item, j) => {
    if (typeof item !== "string" || item.trim() === "") return; // the shape check reports these
    const p = single ? path : [...path, j];
    if (type === "msbr" && !(MSBR_INTERFACES as readonly string[]).includes(item)) {
      issues.push({ path: p, message: `expected ${MSBR_INTERFACES.join("|")}, got ${describeValue(item)}` });
    } else if (type === "gwsbc" && !(GWSBC_INTERFACES as readonly string[]).includes(item)) {
      issues.push({ path: p, message: `expected eth-lan (the only capture interface of a gateway/SBC), got ${describeValue(item)}` });
    } else if (type === "iosxe" && !/^[A-Za-z][A-Za-z0-9/.:-]{0,63}$/.test(item)) {
      issues.push({ path: p, message: `expected an IOS-XE interface name like GigabitEthernet1, got ${describeValue(item)}` });
    } else if (seen.has(item)) {
      issues.push({ path: p, message: `duplicate interface ${describeValue(item)}` });
    }
    seen.add(item);
  });
}

export function formatEndpoint(e: { host: string; port: number }): string {
  return e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

function build(p: ParsedShape, opts: CheckOptions): RunConfig {
  const abs = (file: string) =>
    file === "~" || file.startsWith("~/") ? resolvePath(homedir(), file.slice(2)) : resolvePath(opts.baseDir, file);
  const share = p.syslog.sharePortWithAgents;
  return {
    configFile: opts.configFile === undefined ? undefined : resolvePath(opts.configFile),
    output: abs(p.output),
    concurrency: p.concurrency,
    retries: p.retries,
    verify: p.verify,
    timeouts: { restMs: p.timeouts.rest, sftpMs: p.timeouts.sftp, agentMs: p.timeouts.agent },
    agents: {
      keyFile: p.agents.legacy || p.agents.keyFile === undefined ? undefined : abs(p.agents.keyFile),
      legacy: p.agents.legacy,
      sshKeyFile: p.agents.sshKeyFile === undefined ? undefined : abs(p.agents.sshKeyFile),
      sftpPort: p.agents.sftpPort,
      answerPort: share ? p.syslog.listen.port : (p.agents.answerPort ?? 0),
    },
    syslog: { listen: p.syslog.listen, tcp: p.syslog.tcp, sharePortWithAgents: share },
    stop: { alarms: p.stop.alarms, maxEventsPerDevice: p.stop.maxEventsPerDevice, durationMs: p.stop.duration, deviceRetryMs: p.stop.deviceRetry },
    devices: (p.devices ?? []).map((d): DeviceConfig => ({
      name: d.name ?? d.address,
      address: d.address,
      type: d.type,
      interfaces: d.interfaces ?? (d.type === "gwsbc" ? [...GWSBC_INTERFACES] : []),
      username: d.username,
      password: d.password.kind === "file" ? { kind: "file", file: abs(d.password.file) } : d.password,
      tls: d.tls.mode === "ca" ? { mode: "ca", ca: abs(d.tls.ca) } : d.tls,
      restPort: d.restPort,
      sshPort: d.sshPort,
      agents: d.agents,
      durationMs: d.duration ?? p.stop.duration,
      spec: mergeCaptureSpecs(specFromConfig(p.capture, [], []), {
        ...specFromConfig(d.capture, [], []),
        interfaces: d.interfaces ?? (d.type === "gwsbc" ? [...GWSBC_INTERFACES] : []),
      }),
      ...(d.transport ? { transport: d.transport } : {}),
      ...(d.fileTransfer ? { fileTransfer: d.fileTransfer } : {}),
    })),
    ...(p.storage ? { storage: absoluteStorage(p.storage, abs) } : {}),
    ...(p.notify ? { notify: absoluteNotify(p.notify, abs) } : {}),
  };
}
