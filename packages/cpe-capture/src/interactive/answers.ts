// What the interactive mode asks for, remembers between sessions and turns into a run config.
// Pure except for the remembered-answers file. Passwords are never part of these types.

import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, extname, isAbsolute, join } from "node:path";
import { Document, isMap, isSeq, visit } from "yaml";
import { formatEndpoint, formatPrefix, parsePrefix, validateCaptureSpec } from "@capsync/protocol";
import { parseAgentHop } from "../config/flow.js";
import {
  checkConfig,
  DEFAULTS,
  DEFAULT_AGENT_PORT,
  isPlainObject,
  parseEndpoint,
  parseHost,
  hostKey,
  type DeviceConfig,
  type DeviceType,
} from "../config/schema.js";
import { INTERFACE_NAME, acceptsInterface, type NameRules } from "../drivers/vendor.js";

export type TlsAnswer = "verify" | "insecure" | { ca: string };

/** One device as the user described it; `agents` formatted as `ip:port` / `[v6]:port`. */
export interface DeviceAnswer {
  address: string;
  type: DeviceType;
  interfaces: string[];
  username: string;
  tls: TlsAnswer;
  restPort: number;
  sshPort: number;
  agents: string[];
}

export type PasswordStorage = "env" | "file";

export const FLOW_PROTOCOLS = ["udp", "tcp", "icmp", "ip"] as const;

/** The run's flow as asked: one direction of one conversation, and the hops that capture it. */
export interface FlowAnswer {
  filter: { src?: string; dst?: string; protocol: (typeof FLOW_PROTOCOLS)[number]; sport?: number; dport?: number };
  vrf?: string;
  /** In hop order: a device's address, or `agent:<ip>:<port>`. */
  path: string[];
}

export interface Answers {
  devices: DeviceAnswer[];
  /** Absolute paths. keyFile/sshKeyFile only matter when some device lists agents. */
  keyFile: string | undefined;
  sshKeyFile: string | undefined;
  output: string;
  syslogPort: number;
  retries: number;
  maxEventsPerDevice: number;
  /** Where the last config file was saved: the default for the next one. */
  configPath: string | undefined;
  passwordStorage: PasswordStorage;
  /** A flow captured along a path of the devices and agents (config `flow:`), or none. */
  flow?: FlowAnswer | undefined;
}

export function defaultAnswers(cwd: string): Answers {
  return {
    devices: [],
    keyFile: undefined,
    sshKeyFile: undefined,
    output: join(cwd, "runs"),
    syslogPort: DEFAULTS.syslogListen.port,
    retries: DEFAULTS.retries,
    maxEventsPerDevice: DEFAULTS.maxEventsPerDevice,
    configPath: undefined,
    passwordStorage: "env",
  };
}

/** `$XDG_CONFIG_HOME/capsync/interactive.json`, else `~/.config/capsync/interactive.json`. */
export function answersFile(env: NodeJS.ProcessEnv = process.env): string {
  // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), ".config");
  return join(base, "capsync", "interactive.json");
}

/** The variable a saved config names for device `i` (0-based): CAPSYNC_PW_1, CAPSYNC_PW_2, ... */
export function passwordEnvName(i: number): string {
  return `CAPSYNC_PW_${i + 1}`;
}

// ---------------------------------------------------------------------------------------------
// Field checks for the prompts: `true` or the message to show.

export function checkAddress(text: string, others: readonly DeviceAnswer[]): true | string {
  const h = parseHost(text);
  if (!h.ok) return "Enter an IPv4 address, an IPv6 address or a host name (FQDN)";
  const key = hostKey(h.host, h.kind);
  const taken = others.find((d) => {
    const o = parseHost(d.address);
    return o.ok && hostKey(o.host, o.kind) === key;
  });
  return taken ? `${taken.address} is already in the device list` : true;
}

/** "198.51.100.5, [2001:db8::5]:20002" → normalised endpoints; "", "-" or "none" → []. */
export function parseAgentList(text: string): { ok: true; agents: string[] } | { ok: false; message: string } {
  const t = text.trim();
  if (t === "" || t === "-" || t.toLowerCase() === "none") return { ok: true, agents: [] };
  const agents: string[] = [];
  for (const part of t.split(/[,\s]+/).filter((p) => p !== "")) {
    const r = parseEndpoint(part, { defaultPort: DEFAULT_AGENT_PORT });
    if (!r.ok) return { ok: false, message: `${part}: ${r.message}` };
    const e = formatEndpoint(r.value.host, r.value.port);
    if (agents.includes(e)) return { ok: false, message: `${e} is listed twice` };
    agents.push(e);
  }
  return { ok: true, agents };
}

/**
 * Interface names typed comma or space separated, each of the form `rules` take (without rules:
 * any INTERFACE_NAME); the messages give the rules' example.
 */
export function parseInterfaceList(text: string, rules?: NameRules): { ok: true; interfaces: string[] } | { ok: false; message: string } {
  const list = text.split(/[,\s]+/).filter((p) => p !== "");
  if (list.length === 0) return { ok: false, message: `Enter at least one interface${rules ? `, e.g. ${rules.example}` : ""}` };
  const bad = list.find((i) => !(rules ? acceptsInterface(rules, i) : INTERFACE_NAME.test(i)));
  if (bad !== undefined) return { ok: false, message: `${bad} is not an interface name${rules ? ` like ${rules.example}` : ""}` };
  const dup = list.find((i, n) => list.indexOf(i) !== n);
  if (dup !== undefined) return { ok: false, message: `${dup} is listed twice` };
  return { ok: true, interfaces: list };
}

// ---------------------------------------------------------------------------------------------
// The flow's fields, one prompt each (the config loader checks the whole flow again at the end).

/** "" or "any" → any; else a host address or a prefix (host bits are cleared: see flowHost), of the other side's family. */
export function checkFlowHost(text: string, other?: string): true | string {
  const t = text.trim();
  if (t === "" || t.toLowerCase() === "any") return true;
  const p = parsePrefix(t, { hostBits: "clear" });
  if (p === undefined) return "Enter an IPv4/IPv6 address, a prefix like 10.1.0.0/16, or leave it empty for any";
  if ("error" in p) return p.error;
  const o = other === undefined || other.trim() === "" || other.trim().toLowerCase() === "any" ? undefined : parsePrefix(other.trim());
  if (o && !("error" in o) && o.family !== p.family) return `The source is IPv${o.family}: both ends must be IPv4 or both IPv6`;
  return true;
}

/** A checked flow host as the config keeps it: undefined for any, a prefix's host bits cleared ("10.10.10.10/24" → "10.10.10.0/24"). */
export function flowHost(text: string): string | undefined {
  const t = text.trim();
  if (t === "" || t.toLowerCase() === "any") return undefined;
  const p = parsePrefix(t, { hostBits: "clear" });
  return p && !("error" in p) ? formatPrefix(p) : t;
}

/** "" → any; else 1..65535. */
export function checkFlowPort(text: string): true | string {
  const t = text.trim();
  if (t === "") return true;
  return /^\d{1,5}$/.test(t) && Number(t) >= 1 && Number(t) <= 65535 ? true : "Enter a port 1..65535, or leave it empty for any";
}

export function checkVrf(text: string): true | string {
  if (text.trim() === "") return true;
  const r = validateCaptureSpec({ vrf: text.trim() });
  return r.ok ? true : "Enter a VRF name (letters, digits, _ . : -; at most 32), or leave it empty";
}

/** A hop typed as an agent endpoint: "198.51.100.7", "198.51.100.7:20002", "[2001:db8::7]:20002" → `agent:<ip>:<port>`. */
export function parseAgentHopAnswer(text: string): { ok: true; hop: string } | { ok: false; message: string } {
  const r = parseAgentList(text);
  if (!r.ok) return r;
  if (r.agents.length !== 1) return { ok: false, message: "Enter one agent as IP[:port]" };
  return { ok: true, hop: `agent:${r.agents[0]!}` };
}

/** The hop as the prompts show it. */
export function describeHop(hop: string, devices: readonly DeviceAnswer[]): string {
  if (parseAgentHop(hop) !== undefined) return `agent ${hop.slice("agent:".length)}`;
  const d = devices.find((x) => x.address === hop);
  return d ? `${d.address} (${d.type})` : hop;
}

export function describeFlow(f: FlowAnswer, devices: readonly DeviceAnswer[]): string {
  const end = (host: string | undefined, port: number | undefined) => `${host ?? "any"}${port !== undefined ? `:${port}` : ""}`;
  return `${f.filter.protocol} ${end(f.filter.src, f.filter.sport)} → ${end(f.filter.dst, f.filter.dport)}${f.vrf ? ` vrf ${f.vrf}` : ""}; path: ${f.path.map((h) => describeHop(h, devices)).join(" → ")}`;
}

/** The config section for a flow. */
function rawFlow(f: FlowAnswer): Record<string, unknown> {
  const filter: Record<string, unknown> = {};
  for (const k of ["src", "dst", "protocol", "sport", "dport"] as const) if (f.filter[k] !== undefined) filter[k] = f.filter[k];
  return { filter, ...(f.vrf ? { vrf: f.vrf } : {}), path: [...f.path] };
}

/**
 * The loader's verdict on the answers' flow (hops that cannot capture it, no host for agent
 * hops, ...), one message per problem; [] when there is no flow or it is fine.
 */
export function checkFlowAnswers(a: Answers): string[] {
  if (!a.flow) return [];
  const raw = toRawConfig({ ...a, keyFile: a.keyFile ?? "/unused" }, () => ({ env: "UNUSED" }));
  return checkConfig(raw, { baseDir: "/" }).issues.filter((i) => i.path[0] === "flow").map((i) => {
    const at = i.path[1] === "path" && typeof i.path[2] === "number" ? `hop ${i.path[2] + 1}` : i.path.slice(1).join(".");
    return at ? `${at}: ${i.message}` : i.message;
  });
}

/** Keep only hops that still exist after devices were edited or deleted; undefined when fewer than two remain. */
export function reconcileFlow(f: FlowAnswer | undefined, devices: readonly DeviceAnswer[]): FlowAnswer | undefined {
  if (!f) return undefined;
  const path = f.path.filter((h) => parseAgentHop(h) !== undefined || devices.some((d) => d.address === h));
  return path.length >= 2 ? { ...f, path } : undefined;
}

/** Agents of the flow's path, as `ip:port`. */
export function flowAgents(f: FlowAnswer | undefined): string[] {
  return (f?.path ?? []).filter((h) => parseAgentHop(h) !== undefined).map((h) => h.slice("agent:".length));
}

// ---------------------------------------------------------------------------------------------
// Answers → config

export type PasswordRef = { env: string } | { file: string };

/** The config value (the shape of run.yaml) the answers describe; passwords only by reference. */
export function toRawConfig(a: Answers, password: (i: number) => PasswordRef): Record<string, unknown> {
  const usesAgents = a.devices.some((d) => d.agents.length > 0) || flowAgents(a.flow).length > 0;
  const agents: Record<string, unknown> = {};
  if (usesAgents && a.keyFile !== undefined) agents.keyFile = a.keyFile;
  if (usesAgents && a.sshKeyFile !== undefined) agents.sshKeyFile = a.sshKeyFile;
  return {
    output: a.output,
    retries: a.retries,
    ...(Object.keys(agents).length > 0 ? { agents } : {}),
    syslog: { listen: `${DEFAULTS.syslogListen.host}:${a.syslogPort}` },
    stop: { alarms: ["connection-lost"], maxEventsPerDevice: a.maxEventsPerDevice },
    devices: a.devices.map((d, i) => ({
      address: d.address,
      type: d.type,
      interfaces: [...d.interfaces],
      username: d.username,
      password: password(i),
      tls: typeof d.tls === "string" ? d.tls : { ca: d.tls.ca },
      restPort: d.restPort,
      sshPort: d.sshPort,
      agents: [...d.agents],
    })),
    ...(a.flow ? { flow: rawFlow(a.flow) } : {}),
  };
}

/** The config file text: JSON for `.json`, else YAML with `header` as its opening comment. */
export function renderConfigFile(raw: Record<string, unknown>, file: string, header: string[]): string {
  if (extname(file).toLowerCase() === ".json") return `${JSON.stringify(raw, null, 2)}\n`;
  const doc = new Document(raw);
  // Short lists and the password/tls references read best on one line, as in examples/run.yaml.
  visit(doc, {
    Pair(_key, pair) {
      const k = String((pair.key as { value?: unknown } | null)?.value ?? "");
      if (isSeq(pair.value)) pair.value.flow = k !== "devices";
      if ((k === "password" || k === "tls" || k === "filter") && isMap(pair.value)) pair.value.flow = true;
    },
  });
  doc.commentBefore = header.map((l) => ` ${l}`).join("\n");
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

// ---------------------------------------------------------------------------------------------
// Remembered answers (no passwords): offered as defaults next time.

const FILE_TAG = "capsync-interactive-answers";

/** Never throws: a missing file gives the defaults; an unusable one the defaults plus a note. */
export function loadAnswers(file: string, cwd: string): { answers: Answers; notes: string[] } {
  const answers = defaultAnswers(cwd);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { answers, notes: code === "ENOENT" ? [] : [`cannot read ${file} (${code ?? "error"}); starting without saved answers`] };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { answers, notes: [`${file} is not valid JSON; starting without saved answers`] };
  }
  const saved = isPlainObject(parsed) && parsed.format === FILE_TAG && isPlainObject(parsed.answers) ? parsed.answers : undefined;
  if (saved === undefined) return { answers, notes: [`${file} is not a capsync answers file; starting without saved answers`] };

  const notes: string[] = [];
  const int = (v: unknown, min: number, max: number, fallback: number) =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? v : fallback;
  const path = (v: unknown) => (typeof v === "string" && isAbsolute(v) && !v.includes("\0") ? v : undefined);
  answers.keyFile = path(saved.keyFile);
  answers.sshKeyFile = path(saved.sshKeyFile);
  answers.output = path(saved.output) ?? answers.output;
  answers.configPath = path(saved.configPath);
  answers.syslogPort = int(saved.syslogPort, 1, 65535, answers.syslogPort);
  answers.retries = int(saved.retries, 0, 100, answers.retries);
  answers.maxEventsPerDevice = int(saved.maxEventsPerDevice, 1, 1_000_000, answers.maxEventsPerDevice);
  if (saved.passwordStorage === "file") answers.passwordStorage = "file";

  const devices = Array.isArray(saved.devices) ? saved.devices : [];
  let dropped = 0;
  for (const d of devices) {
    const device = checkSavedDevice(d, answers.devices);
    if (device) answers.devices.push(device);
    else dropped++;
  }
  if (dropped > 0) notes.push(`ignored ${dropped} saved device(s) in ${file} that are no longer valid`);
  if (saved.flow !== undefined) {
    const flow = checkSavedFlow(saved.flow, answers);
    if (flow) answers.flow = flow;
    else notes.push(`ignored the saved flow in ${file}: it is no longer valid for the saved devices`);
  }
  return { answers, notes };
}

const DEVICE_KEYS = ["address", "type", "interfaces", "username", "tls", "restPort", "sshPort", "agents"] as const;

/** A saved device goes through the config schema itself, so a hand-edited file cannot smuggle in a bad value. */
function checkSavedDevice(d: unknown, others: readonly DeviceAnswer[]): DeviceAnswer | undefined {
  if (!isPlainObject(d)) return undefined;
  const picked = Object.fromEntries(DEVICE_KEYS.filter((k) => d[k] !== undefined).map((k) => [k, d[k]]));
  // The key file only satisfies the "agents need a key" check; it is not read here.
  const r = checkConfig({ agents: { keyFile: "/unused" }, devices: [{ ...picked, password: { env: "UNUSED" } }] }, { baseDir: "/" });
  const dc = r.config?.devices[0];
  if (!dc || checkAddress(dc.address, others) !== true) return undefined;
  return deviceAnswerFrom(dc);
}

/** A saved flow is checked by the config schema too, against the devices that survived. */
function checkSavedFlow(f: unknown, a: Answers): FlowAnswer | undefined {
  if (!isPlainObject(f) || !isPlainObject(f.filter) || !Array.isArray(f.path) || !f.path.every((h) => typeof h === "string")) return undefined;
  const spec = validateCaptureSpec({ filter: f.filter, ...(f.vrf !== undefined ? { vrf: f.vrf } : {}) });
  if (!spec.ok || !spec.spec.filter) return undefined;
  const { src, dst, protocol, sport, dport } = spec.spec.filter;
  if (!(FLOW_PROTOCOLS as readonly unknown[]).includes(protocol)) return undefined;
  const flow: FlowAnswer = {
    filter: { ...(src ? { src } : {}), ...(dst ? { dst } : {}), protocol: protocol as FlowAnswer["filter"]["protocol"], ...(sport ? { sport } : {}), ...(dport ? { dport } : {}) },
    ...(spec.spec.vrf ? { vrf: spec.spec.vrf } : {}),
    path: f.path as string[],
  };
  return checkFlowAnswers({ ...a, flow }).length === 0 ? flow : undefined;
}

export function deviceAnswerFrom(dc: DeviceConfig): DeviceAnswer {
  return {
    address: dc.address,
    type: dc.type,
    interfaces: [...dc.interfaces],
    username: dc.username,
    tls: dc.tls.mode === "ca" ? { ca: dc.tls.ca } : dc.tls.mode,
    restPort: dc.restPort,
    sshPort: dc.sshPort,
    agents: dc.agents.map((a) => formatEndpoint(a.host, a.port)),
  };
}

/** Written atomically with mode 0600 (it names hosts and users, though never passwords). */
export function saveAnswers(file: string, a: Answers): void {
  const data = { format: FILE_TAG, version: 1, savedAt: new Date().toISOString(), answers: a };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, `${JSON.stringify(data, null, 2)}\n`, 0o600);
}

/** Write to a temporary name beside `file`, then rename: an interrupted write leaves no half file. */
export function writeFileAtomic(file: string, content: string, mode: number): void {
  const tmp = join(dirname(file), `.${randomBytes(6).toString("hex")}.tmp`);
  try {
    writeFileSync(tmp, content, { mode, flag: "wx" });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
