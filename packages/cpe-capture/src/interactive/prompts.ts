// The questions of `cpe-capture interactive` (@inquirer/prompts). Only asks: it writes nothing
// and starts nothing, so a Ctrl-C anywhere in here leaves no trace (commands/interactive.ts acts
// on the finished plan). Typed passwords live only in the returned plan, in memory.

import { statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { checkbox, confirm, input, number, password, select } from "@inquirer/prompts";
import { parseHost } from "../config/schema.js";
import { DEVICE_TYPES, deviceType, type DeviceType } from "../drivers/index.js";
import { compileFor } from "../spec/index.js";
import {
  FLOW_PROTOCOLS,
  checkAddress,
  checkFlowAnswers,
  checkFlowHost,
  checkFlowPort,
  flowHost,
  checkVrf,
  describeFlow,
  describeHop,
  flowAgents,
  parseAgentHopAnswer,
  reconcileFlow,
  parseAgentList,
  parseInterfaceList,
  passwordEnvName,
  type Answers,
  type DeviceAnswer,
  type FlowAnswer,
  type PasswordStorage,
  type TlsAnswer,
} from "./answers.js";

export interface PromptContext {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Resolved relative paths are taken against this. */
  cwd: string;
  /** Why the answers cannot be run now (e.g. an unusable key file), or undefined. */
  runBlocker: (a: Answers) => string | undefined;
}

export type Action = "save-run" | "save" | "run";

export type SavePlan =
  | { path: string; storage: "env" }
  | { path: string; storage: "file"; files: string[]; writeFiles: boolean };

export interface Plan {
  answers: Answers;
  /** Index-aligned with answers.devices; never written anywhere except password files on request. */
  passwords: string[];
  action: Action;
  save: SavePlan | undefined;
}

interface Draft {
  device: DeviceAnswer;
  password: string | undefined;
}

/** "<type>  <label>", the labels lined up: how the type question lists the registered types. */
function typeChoiceName(type: DeviceType): string {
  const width = Math.max(...DEVICE_TYPES.map((t) => t.length)) + 2;
  return `${type.padEnd(width)}${deviceType(type).label}`;
}

/** Ask everything; `previous` supplies the defaults (remembered from the last session). */
export async function askPlan(previous: Answers, ctx: PromptContext): Promise<Plan> {
  const ask = { input: ctx.input, output: ctx.output };
  const say = (line = "") => ctx.output.write(`${line}\n`);
  const drafts: Draft[] = previous.devices.map((device) => ({ device, password: undefined }));
  if (drafts.length > 0) say(`${drafts.length} device(s) from your last session; their passwords are asked before the run.`);
  let flow = previous.flow;

  // --- the device list ---------------------------------------------------------------------
  for (;;) {
    say();
    say(drafts.length === 0 ? "No devices yet." : `Devices (${drafts.length}):`);
    drafts.forEach((d, i) => say(`  ${i + 1}. ${describeDevice(d.device)}${d.password === undefined ? "  [password not entered yet]" : ""}`));
    const hops = flow?.path.length ?? 0;
    flow = reconcileFlow(flow, drafts.map((d) => d.device));
    if (hops > (flow?.path.length ?? 0)) say(flow ? "Removed the deleted device(s) from the flow's path." : "Removed the flow: fewer than two of its hops are left.");
    if (flow) say(`Flow: ${describeFlow(flow, drafts.map((d) => d.device))}`);
    const has = drafts.length > 0;
    const action = await select(
      {
        message: "Devices",
        choices: [
          { name: "Add a device", value: "add" },
          { name: "Edit a device", value: "edit", disabled: has ? false : "(no devices yet)" },
          { name: "Delete a device", value: "delete", disabled: has ? false : "(no devices yet)" },
          { name: "Done with the devices", value: "done", disabled: has ? false : "(add a device first)" },
          { name: flow ? "Edit or remove the flow along a path" : "Capture a flow along a path (5-tuple, several hops)", value: "flow", disabled: has ? false : "(add a device first)" },
        ],
        default: has ? "done" : "add",
      },
      ask,
    );
    if (action === "done") {
      // A device edited after the flow was set (type, address) may no longer capture it.
      const problems = checkFlowAnswers({ ...previous, devices: drafts.map((d) => d.device), flow });
      if (problems.length === 0) break;
      say("The flow cannot be captured as it is; edit or remove it:");
      for (const p of problems) say(`  ${p}`);
      continue;
    }
    if (action === "flow") {
      flow = await askFlow(flow, { ...previous, devices: drafts.map((d) => d.device) }, ctx);
      continue;
    }
    if (action === "add") {
      drafts.push(await askDevice(undefined, undefined, drafts.map((d) => d.device), ctx));
      continue;
    }
    const i = await pickDevice(drafts, action === "edit" ? "Edit which device?" : "Delete which device?", ask);
    if (i < 0) continue;
    if (action === "delete") {
      say(`Deleted ${drafts[i]!.device.address}.`);
      drafts.splice(i, 1);
    } else {
      const others = drafts.filter((_, j) => j !== i).map((d) => d.device);
      drafts[i] = await askDevice(drafts[i]!.device, drafts[i]!.password, others, ctx);
    }
  }
  for (const d of drafts) {
    if (d.password === undefined) d.password = await askPassword(`${d.device.username}@${d.device.address}`, ask, say);
  }
  const devices = drafts.map((d) => d.device);

  // --- run settings ----------------------------------------------------------------------------
  const answers: Answers = { ...previous, devices, flow };
  if (devices.some((d) => d.agents.length > 0) || flowAgents(flow).length > 0) {
    answers.keyFile = abs(
      ctx.cwd,
      await input(
        {
          message: "Agent key file (the CSYNC/1 pre-shared key, mode 0600)",
          default: previous.keyFile ?? "/etc/capsync/agent.key",
          validate: (v) => (v.trim() !== "" ? true : "Enter the path of the key file the agents were started with"),
        },
        ask,
      ),
    );
    const ssh = await input(
      {
        message: "SSH private key to download the agents' captures (empty: leave them on the servers)",
        default: previous.sshKeyFile ?? "",
        validate: (v) => (v.trim() === "" || isFile(abs(ctx.cwd, v)) ? true : `${v.trim()}: no such file`),
      },
      ask,
    );
    answers.sshKeyFile = ssh.trim() === "" ? undefined : abs(ctx.cwd, ssh);
  }
  answers.syslogPort = await number(
    { message: "UDP port to receive the syslog alarms on", default: previous.syslogPort, min: 1, max: 65535, required: true },
    ask,
  );
  answers.retries = await number(
    { message: "Retries of device and agent requests", default: previous.retries, min: 0, max: 100, required: true },
    ask,
  );
  answers.maxEventsPerDevice = await number(
    { message: "Alarms per device before its capture is stopped", default: previous.maxEventsPerDevice, min: 1, max: 1_000_000, required: true },
    ask,
  );
  answers.output = abs(
    ctx.cwd,
    await input(
      {
        message: "Folder for the run folders",
        default: previous.output,
        validate: (v) => (v.trim() === "" ? "Enter a folder" : isDirOrMissing(abs(ctx.cwd, v)) ? true : `${v.trim()} exists and is not a folder`),
      },
      ask,
    ),
  );

  // --- what to do with it ----------------------------------------------------------------------
  const blocker = ctx.runBlocker(answers);
  if (blocker !== undefined) say(`Cannot start the captures from here: ${blocker}`);
  const cannot = blocker === undefined ? false : "(cannot start now, see above)";
  const action = await select<Action>(
    {
      message: "What now?",
      choices: [
        { name: "Save a config file and start the captures", value: "save-run", disabled: cannot },
        { name: "Save a config file only, don't start", value: "save" },
        { name: "Start the captures without saving a config file", value: "run", disabled: cannot },
      ],
      default: blocker === undefined ? "save-run" : "save",
    },
    ask,
  );
  const passwords = drafts.map((d) => d.password!);
  const save = action === "run" ? undefined : await askSave(answers, ctx);
  if (save) {
    answers.configPath = save.path;
    answers.passwordStorage = save.storage;
  }
  return { answers, passwords, action, save };
}

function describeDevice(d: DeviceAnswer): string {
  const tls = typeof d.tls === "string" ? (d.tls === "insecure" ? "  tls: not verified" : "") : `  tls: ca ${d.tls.ca}`;
  const ports = d.restPort !== 443 || d.sshPort !== 22 ? `  ports: rest ${d.restPort}, ssh ${d.sshPort}` : "";
  return `${d.address}  ${d.type}  ${d.interfaces.join(", ")}  user ${d.username}  agents: ${d.agents.length ? d.agents.join(", ") : "none"}${tls}${ports}`;
}

async function pickDevice(drafts: Draft[], message: string, ask: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream }): Promise<number> {
  return select<number>(
    {
      message,
      choices: [
        ...drafts.map((d, i) => ({ name: `${i + 1}. ${d.device.address} (${d.device.type})`, value: i })),
        { name: "Back", value: -1 },
      ],
    },
    ask,
  );
}

/** One device; `before` (editing) supplies the defaults. */
async function askDevice(before: DeviceAnswer | undefined, knownPassword: string | undefined, others: DeviceAnswer[], ctx: PromptContext): Promise<Draft> {
  const ask = { input: ctx.input, output: ctx.output };
  const say = (line: string) => ctx.output.write(`${line}\n`);
  const typed = await input(
    { message: "Device address (IPv4, IPv6 or host name)", default: before?.address, validate: (v) => checkAddress(v, others) },
    ask,
  );
  // The normal form (lower case, no brackets or trailing dot), as the config loader would store it.
  const address = (parseHost(typed) as { host: string }).host;
  const type = await select<DeviceType>(
    {
      message: "Device type",
      // Types that take no capture (trace hops) are not offered for a capture run.
      choices: DEVICE_TYPES.filter((t) => deviceType(t).capabilities.capture !== false).map((t) => ({ name: typeChoiceName(t), value: t, short: t })),
      default: before?.type ?? DEVICE_TYPES[0],
    },
    ask,
  );
  const interfaces = await askInterfaces(type, before?.type === type ? before.interfaces : undefined, ctx);
  const username = (
    await input(
      { message: "Username", default: before?.username ?? "Admin", validate: (v) => (v.trim() !== "" ? true : "Enter the device's user name") },
      ask,
    )
  ).trim();
  const label = `${username}@${address}`;
  let pw = knownPassword;
  if (pw === undefined || !(await confirm({ message: `Keep the password entered for ${label}?`, default: true }, ask))) {
    pw = await askPassword(label, ask, say);
  }
  const tlsKind = await select<"verify" | "insecure" | "ca">(
    {
      message: "The device's HTTPS certificate",
      choices: [
        { name: "Verify it against the system CAs", value: "verify" },
        { name: "Don't verify it (self-signed certificate)", value: "insecure" },
        { name: "Verify it against a CA file", value: "ca" },
      ],
      default: before === undefined ? "verify" : typeof before.tls === "string" ? before.tls : "ca",
    },
    ask,
  );
  let tls: TlsAnswer = tlsKind === "ca" ? { ca: "" } : tlsKind;
  if (tlsKind === "ca") {
    const ca = await input(
      {
        message: "CA certificate file (PEM)",
        default: before && typeof before.tls === "object" ? before.tls.ca : undefined,
        validate: (v) => (isFile(abs(ctx.cwd, v)) ? true : `${v.trim() || "(empty)"}: no such file`),
      },
      ask,
    );
    tls = { ca: abs(ctx.cwd, ca) };
  }
  const restPort = await number({ message: "REST (HTTPS) port", default: before?.restPort ?? 443, min: 1, max: 65535, required: true }, ask);
  const sshPort = await number({ message: "SFTP (SSH) port", default: before?.sshPort ?? 22, min: 1, max: 65535, required: true }, ask);
  const agentText = await input(
    {
      message: "Server-capture agent(s) for this device: IP[:port], comma-separated (empty: none)",
      default: before?.agents.join(", ") || undefined,
      validate: (v) => {
        const r = parseAgentList(v);
        return r.ok ? true : r.message;
      },
    },
    ask,
  );
  const agents = (parseAgentList(agentText) as { agents: string[] }).agents;
  return { device: { address, type, interfaces, username, tls, restPort, sshPort, agents }, password: pw };
}

/** The device's capture interfaces, the way its vendor module says to ask for them. */
async function askInterfaces(type: DeviceType, previous: string[] | undefined, ctx: PromptContext): Promise<string[]> {
  const ask = { input: ctx.input, output: ctx.output };
  const { interfaces: rules, prompt } = deviceType(type);
  if (rules.kind === "list" && prompt.interfaces.kind === "choose") {
    return checkbox(
      {
        message: prompt.interfaces.message,
        choices: rules.allowed.map((i) => ({ value: i, checked: (previous ?? []).includes(i) })),
        required: true,
        pageSize: rules.allowed.length,
      },
      ask,
    );
  }
  if (rules.kind === "list" && prompt.interfaces.kind === "fixed") {
    ctx.output.write(`${prompt.interfaces.note}\n`);
    return [...rules.defaults];
  }
  if (rules.kind === "names" && prompt.interfaces.kind === "type") {
    const list = await input(
      {
        message: prompt.interfaces.message,
        default: previous?.join(", "),
        validate: (v) => {
          const r = parseInterfaceList(v, rules);
          return r.ok ? true : r.message;
        },
      },
      ask,
    );
    return (parseInterfaceList(list, rules) as { interfaces: string[] }).interfaces;
  }
  throw new Error(`${type}: a ${prompt.interfaces.kind} prompt cannot ask for ${rules.kind} interfaces`); // the registry refuses such a type
}

/**
 * The flow: its 5-tuple field by field (each checked as typed), the VRF, then the hops in order
 * among the devices and agents entered (or another agent). Checked whole by the config schema at
 * the end; returns undefined when the user removes it.
 */
async function askFlow(before: FlowAnswer | undefined, a: Answers, ctx: PromptContext): Promise<FlowAnswer | undefined> {
  const ask = { input: ctx.input, output: ctx.output };
  const say = (line = "") => ctx.output.write(`${line}\n`);
  if (before) {
    const what = await select<"edit" | "remove" | "back">(
      { message: "The flow", choices: [{ name: "Edit it", value: "edit" }, { name: "Remove it", value: "remove" }, { name: "Back", value: "back" }] },
      ask,
    );
    if (what === "remove") return undefined;
    if (what === "back") return before;
  }
  say("A flow is one direction of one conversation, read like an ACL entry: packets from the source (port) to the destination (port).");
  say("Every hop of its path captures it; all hops stop together. The reverse direction is a second flow.");
  const host = (text: string) => {
    const h = flowHost(text);
    if (h !== undefined && h !== text.trim()) say(`${text.trim()} has host bits set: capturing the network ${h}`);
    return h;
  };
  const src = host(
    await input({ message: "Flow source: address or prefix (empty: any)", default: before?.filter.src, validate: (v) => checkFlowHost(v) }, ask),
  );
  const dst = host(
    await input({ message: "Flow destination: address or prefix (empty: any)", default: before?.filter.dst, validate: (v) => checkFlowHost(v, src) }, ask),
  );
  const protocol = await select<FlowAnswer["filter"]["protocol"]>(
    { message: "Flow protocol", choices: FLOW_PROTOCOLS.map((p) => ({ name: p === "ip" ? "ip (any IP protocol)" : p, value: p })), default: before?.filter.protocol ?? "udp" },
    ask,
  );
  let sport: number | undefined;
  let dport: number | undefined;
  if (protocol === "udp" || protocol === "tcp") {
    const port = async (message: string, previousPort: number | undefined) => {
      const t = (await input({ message, default: previousPort === undefined ? undefined : String(previousPort), validate: checkFlowPort }, ask)).trim();
      return t === "" ? undefined : Number(t);
    };
    sport = await port("Flow source port (empty: any)", before?.filter.sport);
    dport = await port("Flow destination port (empty: any)", before?.filter.dport);
  }
  const vrf = (await input({ message: "VRF of the flow on the routers (empty: none)", default: before?.vrf, validate: checkVrf }, ask)).trim();
  const filter: FlowAnswer["filter"] = { ...(src ? { src } : {}), ...(dst ? { dst } : {}), protocol, ...(sport ? { sport } : {}), ...(dport ? { dport } : {}) };

  // --- the path, hop by hop ---------------------------------------------------------------------
  const known = [...new Set([...a.devices.flatMap((d) => d.agents), ...flowAgents(before)])];
  const path: string[] = [];
  for (;;) {
    say(path.length === 0 ? "Path: no hops yet (at least two)." : `Path: ${path.map((h, i) => `${i + 1}. ${describeHop(h, a.devices)}`).join("  ")}`);
    const deviceChoices = a.devices
      .filter((d) => !path.includes(d.address))
      .map((d) => ({
        name: `device ${describeHop(d.address, a.devices)}`,
        value: d.address,
        disabled: canCapture(d, filter, vrf),
      }));
    const agentChoices = known.filter((e) => !path.includes(`agent:${e}`)).map((e) => ({ name: `agent ${e}`, value: `agent:${e}` }));
    const choice = await select<string>(
      {
        message: `Hop ${path.length + 1}`,
        choices: [
          ...deviceChoices,
          ...agentChoices,
          { name: "Another server-capture agent (IP[:port])", value: "+agent" },
          ...(path.length > 0 ? [{ name: "Remove the last hop", value: "-last" }] : []),
          { name: "Done with the path", value: "done", disabled: path.length >= 2 ? false : "(at least two hops)" },
        ],
        default: path.length >= 2 ? "done" : undefined,
        pageSize: 12,
      },
      ask,
    );
    if (choice === "done") break;
    if (choice === "-last") path.pop();
    else if (choice === "+agent") {
      const typed = await input(
        {
          message: "Agent IP[:port]",
          validate: (v) => {
            const r = parseAgentHopAnswer(v);
            if (!r.ok) return r.message;
            return path.includes(r.hop) ? "That agent is already a hop" : true;
          },
        },
        ask,
      );
      const hop = (parseAgentHopAnswer(typed) as { hop: string }).hop;
      path.push(hop);
      if (!known.includes(hop.slice("agent:".length))) known.push(hop.slice("agent:".length));
    } else path.push(choice);
  }
  const flow: FlowAnswer = { filter, ...(vrf ? { vrf } : {}), path };
  const problems = checkFlowAnswers({ ...a, flow });
  if (problems.length > 0) {
    say("This flow cannot be captured on that path:");
    for (const p of problems) say(`  ${p}`);
    say("Edit or remove it from the device menu before you continue.");
  } else say(`Flow: ${describeFlow(flow, a.devices)}`);
  return flow;
}

/** false when the device can capture the flow, else why not (shown beside the choice). */
function canCapture(d: DeviceAnswer, filter: FlowAnswer["filter"], vrf: string): false | string {
  const c = compileFor(d.type, { interfaces: d.interfaces, filter, ...(vrf ? { vrf } : {}) }, { device: d.address });
  if (c.ok) return false;
  // "<type> <address>: <field>: <why>; <what to do instead>" → the reason only.
  return `(${c.message.split(": ").slice(2).join(": ").split(";")[0]})`;
}

/** Masked, asked twice, never empty; a mismatch asks again from the start. */
async function askPassword(
  label: string,
  ask: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream },
  say: (line: string) => void,
): Promise<string> {
  for (;;) {
    const first = await password(
      // toggleMask (on by default) would let Ctrl-T print the password into the terminal's scrollback.
      { message: `Password for ${label}`, mask: "*", toggleMask: false, validate: (v) => (v !== "" ? true : "The password must not be empty") },
      ask,
    );
    const again = await password({ message: `Confirm the password for ${label}`, mask: "*", toggleMask: false }, ask);
    if (first === again) return first;
    say("The two passwords differ; enter the password again.");
  }
}

async function askSave(a: Answers, ctx: PromptContext): Promise<SavePlan> {
  const ask = { input: ctx.input, output: ctx.output };
  let path: string;
  for (;;) {
    path = abs(
      ctx.cwd,
      await input(
        {
          message: "Config file to write (.yaml, or .json)",
          default: a.configPath ?? join(ctx.cwd, "capsync-run.yaml"),
          validate: (v) => {
            if (v.trim() === "") return "Enter a file name";
            const p = abs(ctx.cwd, v);
            if (isDir(p)) return `${p} is a folder`;
            return isDirOrMissing(dirname(p)) ? true : `${dirname(p)} is not a folder`;
          },
        },
        ask,
      ),
    );
    if (!isFile(path) || (await confirm({ message: `${path} exists. Replace it?`, default: false }, ask))) break;
  }
  const n = a.devices.length;
  const storage = await select<PasswordStorage>(
    {
      message: "How should the config file refer to the passwords? (they are never written into it)",
      choices: [
        {
          name: `Environment variables ${n === 1 ? passwordEnvName(0) : `${passwordEnvName(0)} … ${passwordEnvName(n - 1)}`}`,
          value: "env",
          description: "set them before `cpe-capture run --config`",
        },
        { name: "Password files, one per device", value: "file", description: "one line each, mode 0600; the config names the files" },
      ],
      default: a.passwordStorage,
    },
    ask,
  );
  if (storage === "env") return { path, storage };
  const files: string[] = [];
  for (const d of a.devices) {
    const file = abs(
      ctx.cwd,
      await input(
        {
          message: `Password file for ${d.username}@${d.address}`,
          default: join(dirname(path), "secrets", `${d.address.replace(/[^A-Za-z0-9.-]/g, "_")}.password`),
          validate: (v) => {
            const p = abs(ctx.cwd, v);
            if (v.trim() === "" || isDir(p)) return "Enter a file name";
            if (p === path) return "That is the config file";
            return files.includes(p) ? `${basename(p)} is already used for another device` : true;
          },
        },
        ask,
      ),
    );
    files.push(file);
  }
  const writeFiles = await confirm({ message: "Write these password files now (mode 0600)?", default: false }, ask);
  return { path, storage, files, writeFiles };
}

function abs(cwd: string, p: string): string {
  const t = p.trim();
  return t === "~" || t.startsWith("~/") ? join(homedir(), t.slice(1)) : resolve(cwd, t);
}

function stat(p: string) {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}
const isFile = (p: string) => stat(p)?.isFile() ?? false;
const isDir = (p: string) => stat(p)?.isDirectory() ?? false;
const isDirOrMissing = (p: string) => {
  const s = stat(p);
  return s === undefined || s.isDirectory();
};
