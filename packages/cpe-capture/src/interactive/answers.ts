// What the interactive mode asks for, remembers between sessions and turns into a run config.
// Pure except for the remembered-answers file. Passwords are never part of these types.

import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, extname, isAbsolute, join } from "node:path";
import { Document, isMap, isSeq, visit } from "yaml";
import {
  checkConfig,
  DEFAULTS,
  DEFAULT_AGENT_PORT,
  formatEndpoint,
  isPlainObject,
  parseEndpoint,
  parseHost,
  hostKey,
  type DeviceConfig,
  type DeviceType,
} from "../config/schema.js";

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
    const e = formatEndpoint(r.value);
    if (agents.includes(e)) return { ok: false, message: `${e} is listed twice` };
    agents.push(e);
  }
  return { ok: true, agents };
}

/** IOS-XE interface names, comma or space separated. */
export function parseInterfaceList(text: string): { ok: true; interfaces: string[] } | { ok: false; message: string } {
  const list = text.split(/[,\s]+/).filter((p) => p !== "");
  if (list.length === 0) return { ok: false, message: "Enter at least one interface, e.g. GigabitEthernet1" };
  const bad = list.find((i) => !/^[A-Za-z][A-Za-z0-9/.:-]{0,63}$/.test(i));
  if (bad !== undefined) return { ok: false, message: `${bad} is not an interface name like GigabitEthernet1` };
  const dup = list.find((i, n) => list.indexOf(i) !== n);
  if (dup !== undefined) return { ok: false, message: `${dup} is listed twice` };
  return { ok: true, interfaces: list };
}

// ---------------------------------------------------------------------------------------------
// Answers → config

export type PasswordRef = { env: string } | { file: string };

/** The config value (the shape of run.yaml) the answers describe; passwords only by reference. */
export function toRawConfig(a: Answers, password: (i: number) => PasswordRef): Record<string, unknown> {
  const usesAgents = a.devices.some((d) => d.agents.length > 0);
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
      if ((k === "password" || k === "tls") && isMap(pair.value)) pair.value.flow = true;
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

export function deviceAnswerFrom(dc: DeviceConfig): DeviceAnswer {
  return {
    address: dc.address,
    type: dc.type,
    interfaces: [...dc.interfaces],
    username: dc.username,
    tls: dc.tls.mode === "ca" ? { ca: dc.tls.ca } : dc.tls.mode,
    restPort: dc.restPort,
    sshPort: dc.sshPort,
    agents: dc.agents.map(formatEndpoint),
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
