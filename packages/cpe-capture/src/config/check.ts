// Checks a run config value (as parsed from YAML/JSON) and builds the RunConfig: the file's zod
// shape, the checks that span fields, and the normal form. Pure: no I/O, never throws on bad
// input; loader.ts adds file/line to the issues.
import { homedir } from "node:os";
import { isIPv6 } from "node:net";
import { resolve as resolvePath } from "node:path";
import { formatEndpoint, mergeCaptureSpecs } from "@capsync/protocol";
import { z } from "zod";
import { absoluteNotify, parseNotify } from "../notify/config.js";
import { absoluteStorage, parseStorage } from "../storage/config.js";
import { hostKey, parseAddress, parseAgent, parseHost, parseListenAddress, type ListenAddress } from "./addresses.js";
import { checkDeviceSpec, specFromConfig } from "./capture.js";
import { absoluteSecretRef, parseSecret, parseTls } from "./credentials.js";
import { checkCaptures, checkDeviceOptions, checkInterfaces, defaultInterfaces, DEVICE_OPTION_FIELDS, DEVICE_TYPES, deviceOptions, type DeviceType } from "./devices.js";
import { field, parseDurationField, parseDurationOrNone, parseFilePath, parseInteger, parseName, parseNonEmptyString, parsePort, parsePortOrZero } from "./fields.js";
import { checkFlow, flowDeviceSpec, type FlowConfig } from "./flow.js";
import { describeValue, isPlainObject, listOf, ok, unknownKeyMessage, type Parsed, type PathIssue } from "./issues.js";
import { DEFAULTS, type DeviceConfig, type RunConfig } from "./run-config.js";
import { parseAlarm } from "./stop.js";
import { absoluteVerifyProbes, parseVerify } from "./verify.js";

export interface CheckOptions {
  /** Relative paths in the config are resolved against this (the config file's folder). */
  baseDir: string;
  configFile?: string | undefined;
}

export interface CheckResult {
  /** Set only when `issues` is empty. */
  config: RunConfig | undefined;
  issues: PathIssue[];
  warnings: PathIssue[];
}

const parseListen = (v: unknown): Parsed<ListenAddress> => parseListenAddress(v, DEFAULTS.syslogListen.host);

// ---------------------------------------------------------------------------------------------
// The file's shape. Everything that depends on another field is in crossCheck below, so that one
// bad field never hides the problems of the others.

const DurationField = field(parseDurationField);
// Capture durations: absent or `none` = until the alarm (trafficCapture's behaviour), never a hidden cut.
const CaptureDurationField = field(parseDurationOrNone);
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
  duration: CaptureDurationField.optional(),
  // Checked (and compiled for the device and its agents) in crossCheck.
  capture: z.unknown().optional(),
  ...DEVICE_OPTION_FIELDS,
});

const ConfigShape = z.strictObject({
  output: field(parseFilePath).default(DEFAULTS.output),
  capture: z.unknown().optional(),
  concurrency: field(parseInteger(1, 4096)).default(DEFAULTS.concurrency),
  retries: field(parseInteger(0, 100)).default(DEFAULTS.retries),
  verify: field(parseVerify).default({ enabled: DEFAULTS.verify }),
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
      duration: CaptureDurationField.optional(),
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
  // `x-router: &router { type: ..., username: ... }` shared by devices with `<<: *router`.
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
      const type = d.type as DeviceType;
      const before = issues.length;
      checkCaptures(type, at("type"), issues);
      checkInterfaces(type, d.interfaces, at("interfaces"), issues);
      const deviceSpec = specFromConfig(d.capture, at("capture"), issues);
      if (issues.length === before && runSpec && deviceSpec && typeof d.address === "string") {
        const hasAgents = d.agents !== undefined && (!Array.isArray(d.agents) || d.agents.length > 0);
        const interfaces = d.interfaces === undefined ? undefined : Array.isArray(d.interfaces) ? (d.interfaces as string[]) : [d.interfaces as string];
        checkDeviceSpec({ runSpec, deviceSpec, interfaces, type, address: d.address, hasAgents, legacy, path: at(), issues });
      }
      checkDeviceOptions(type, d, at, issues);
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
      if (first !== undefined) issues.push({ path: p, message: `duplicate agent ${formatEndpoint(r.value.host, r.value.port)}, also at agents[${first}]` });
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
    warnings.push({ path: ["stop", "alarms"], message: `empty: the run stops only on ${stop.duration === undefined || stop.duration === "none" ? "a signal or a manual stop (no stop.duration either)" : "stop.duration, a signal or a manual stop"}` });
  }
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
    verify: p.verify.enabled,
    ...(p.verify.probes ? { verifyProbes: absoluteVerifyProbes(p.verify.probes, abs) } : {}),
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
      interfaces: d.interfaces ?? defaultInterfaces(d.type),
      username: d.username,
      password: absoluteSecretRef(d.password, abs),
      tls: d.tls.mode === "ca" ? { mode: "ca", ca: abs(d.tls.ca) } : d.tls,
      restPort: d.restPort,
      sshPort: d.sshPort,
      agents: d.agents,
      durationMs: d.duration ?? p.stop.duration,
      spec: mergeCaptureSpecs(specFromConfig(p.capture, [], []), {
        ...specFromConfig(d.capture, [], []),
        interfaces: d.interfaces ?? defaultInterfaces(d.type),
      }),
      ...deviceOptions(d),
    })),
    ...(p.storage ? { storage: absoluteStorage(p.storage, abs) } : {}),
    ...(p.notify ? { notify: absoluteNotify(p.notify, abs) } : {}),
  };
}

/** After build: the flow on the config, and each device hop's own capture (its agents keep `spec`). */
function attachFlow(config: RunConfig, flow: FlowConfig): RunConfig {
  config.flow = flow;
  for (const h of flow.path) {
    if (h.kind !== "device") continue;
    const d = config.devices.find((x) => x.address === h.address);
    if (d) d.flowHop = { hop: h.hop, spec: flowDeviceSpec(d.spec, flow) };
  }
  return config;
}
