// The run's `flow:` section: one directional 5-tuple (+ VRF) captured at every hop of an ordered
// path of devices and server-capture agents, all stopped together. Pure: no I/O, never throws;
// check.ts calls checkFlow from checkConfig.
//
// Agent hops: an agent scopes every capture to one host (CAPTURE/STOP <device>, `host <device>`
// in the BPF). A flow hop uses the flow's own src host as that scope (else its dst host), so the
// agent needs no change and its session, STOP and state file work as for a device; a flow whose
// src and dst are both prefixes (or any) therefore cannot have agent hops — said at validation.
import { type CaptureFilter, type CaptureSpec, addressToken, agentSpec, formatEndpoint, mergeCaptureSpecs, parsePrefix, validateCaptureSpec } from "@capsync/protocol";
import { agentWireSpec, compileFor } from "../spec/index.js";
import { DEFAULT_AGENT_PORT, hostKey, parseEndpoint, parseHost, type AgentEndpoint } from "./addresses.js";
import { specFromConfig } from "./capture.js";
import { DEVICE_TYPES, type DeviceType } from "./devices.js";
import { describeValue, isPlainObject, type PathIssue } from "./issues.js";

export const FLOW_MAX_HOPS = 16;
const KEYS = ["filter", "vrf", "path"] as const;

/** One hop of the path, 1-based `hop` in path order. */
export type FlowHop =
  | { hop: number; kind: "device"; name: string; address: string }
  | { hop: number; kind: "server"; name: string; agent: AgentEndpoint };

export interface FlowConfig {
  /** The flow, normalised (canonical addresses, protocol names); never empty. */
  filter: CaptureFilter;
  /** Applied on the devices of the path that have VRFs; agents capture on their own interface. */
  vrf?: string;
  /** The host every agent hop's capture is scoped to (the filter's src host, else its dst host); set when the path has agent hops. */
  agentHost?: string;
  /** What agent hops capture (run-level `capture:` defaults with the flow's filter); set when the path has agent hops. */
  agentSpec?: CaptureSpec;
  path: FlowHop[];
}

/** The path entry as a user writes it: the device's name, or `agent:<ip>:<port>`. */
export function hopLabel(h: FlowHop): string {
  return h.kind === "device" ? h.name : `agent:${formatEndpoint(h.agent.host, h.agent.port)}`;
}

/** A device's capture when it is a hop: its own spec with the flow's filter (whole) and VRF. */
export function flowDeviceSpec(spec: CaptureSpec, flow: Pick<FlowConfig, "filter" | "vrf">): CaptureSpec {
  return mergeCaptureSpecs(spec, { filter: { ...flow.filter }, ...(flow.vrf !== undefined ? { vrf: flow.vrf } : {}) });
}

/** The scope host for agent hops: the filter's src when it is one host, else its dst; undefined when neither is. */
export function flowAgentHost(filter: CaptureFilter): string | undefined {
  for (const side of [filter.src, filter.dst]) {
    if (side === undefined) continue;
    const p = parsePrefix(side);
    if (p && !("error" in p) && p.host) return p.address;
  }
  return undefined;
}

/**
 * Hop file names, all with the flow's one stop timestamp so they sort by hop:
 * `hop1_CPE_device_<ip>_<ts>.pcap` (a device: "hop<N>_" before the name its agents rename to),
 * `hop2_server_<ip>-<port>_<ts>.pcap` (an agent; ring parts get `-<n>` before `.pcap`).
 */
export function hopFileName(h: FlowHop, deviceCaptureName: string | undefined, stamp: string, part?: number): string {
  if (h.kind === "device") return `hop${h.hop}_${deviceCaptureName}`;
  return `hop${h.hop}_server_${addressToken(h.agent.host)}-${h.agent.port}_${stamp}${part === undefined ? "" : `-${part}`}.pcap`;
}

/** `agent:198.51.100.5:20001`, `agent:[2001:db8::5]:20001`, `agent:198.51.100.5` (default port). */
export function parseAgentHop(text: string): { ok: true; agent: AgentEndpoint } | { ok: false; message: string } | undefined {
  const m = /^agent:(.*)$/i.exec(text.trim());
  if (!m) return undefined;
  const r = parseEndpoint(m[1]!, { defaultPort: DEFAULT_AGENT_PORT });
  return r.ok ? { ok: true, agent: r.value } : { ok: false, message: `agent hop: ${r.message}` };
}

interface RawDevice {
  index: number;
  name: string | undefined;
  address: string;
  key: string;
  type: DeviceType | undefined;
  raw: Record<string, unknown>;
}

function keyOf(host: string): string {
  const h = parseHost(host);
  return h.ok ? hostKey(h.host, h.kind) : host;
}

function endpointKey(e: AgentEndpoint): string {
  return `${keyOf(e.host)}|${e.port}`;
}

/**
 * Checks `raw.flow` against the rest of the raw config (devices, agents, run-level capture) and
 * returns the normalised flow, or undefined (with issues pushed) when there is none or it is bad.
 * Every device hop must compile the flow for its type; every agent hop for tcpdump.
 */
export function checkFlow(raw: Record<string, unknown>, issues: PathIssue[]): FlowConfig | undefined {
  const v = raw.flow;
  if (v === undefined) return undefined;
  const at = (...p: (string | number)[]) => ["flow", ...p];
  const before = issues.length;
  if (!isPlainObject(v)) {
    issues.push({ path: at(), message: `expected { filter: { src, dst, protocol, sport, dport }, vrf, path: [...] }, got ${describeValue(v)}` });
    return undefined;
  }
  for (const k of Object.keys(v)) if (!(KEYS as readonly string[]).includes(k)) issues.push({ path: at(k), message: `unknown key '${k}'; expected ${KEYS.join(", ")}` });

  // --- the 5-tuple and VRF ---------------------------------------------------------------------
  let filter: CaptureFilter | undefined;
  if (v.filter === undefined) issues.push({ path: at("filter"), message: "required: the flow's { src, dst, protocol, sport, dport }" });
  else {
    const r = validateCaptureSpec({ filter: v.filter });
    if (!r.ok) issues.push({ path: at(...r.field.split(".").filter(Boolean)), message: r.message });
    else if (!r.spec.filter || Object.keys(r.spec.filter).length === 0) issues.push({ path: at("filter"), message: "an empty filter is every packet, not a flow; give its src, dst, protocol and ports" });
    else filter = r.spec.filter;
  }
  let vrf: string | undefined;
  if (v.vrf !== undefined) {
    const r = validateCaptureSpec({ vrf: v.vrf });
    if (!r.ok) issues.push({ path: at("vrf"), message: r.message });
    else vrf = r.spec.vrf;
  }

  // --- the path --------------------------------------------------------------------------------
  const devices: RawDevice[] = [];
  (Array.isArray(raw.devices) ? raw.devices : []).forEach((d, index) => {
    if (!isPlainObject(d) || typeof d.address !== "string") return;
    const h = parseHost(d.address);
    if (!h.ok) return;
    const type = (DEVICE_TYPES as readonly unknown[]).includes(d.type) ? (d.type as DeviceType) : undefined;
    devices.push({ index, name: typeof d.name === "string" ? d.name : undefined, address: h.host, key: hostKey(h.host, h.kind), type, raw: d });
  });
  const path: FlowHop[] = [];
  const list = v.path;
  if (list === undefined) issues.push({ path: at("path"), message: `required: the hops in order, each a device's name or address, or agent:<ip>:<port>` });
  else if (!Array.isArray(list)) issues.push({ path: at("path"), message: `expected a list of hops, got ${describeValue(list)}` });
  else if (list.length < 2 || list.length > FLOW_MAX_HOPS) issues.push({ path: at("path"), message: `expected 2..${FLOW_MAX_HOPS} hops, got ${list.length}` });
  else {
    const seen = new Map<string, number>();
    list.forEach((entry, j) => {
      const p = at("path", j);
      if (typeof entry !== "string" || entry.trim() === "") {
        issues.push({ path: p, message: `expected a device's name or address, or agent:<ip>:<port>, got ${describeValue(entry)}` });
        return;
      }
      const agent = parseAgentHop(entry);
      let hop: FlowHop | undefined;
      let key: string;
      if (agent !== undefined) {
        if (!agent.ok) return void issues.push({ path: p, message: agent.message });
        key = `agent|${endpointKey(agent.agent)}`;
        hop = { hop: j + 1, kind: "server", name: formatEndpoint(agent.agent.host, agent.agent.port), agent: agent.agent };
      } else {
        const h = parseHost(entry);
        const byKey = h.ok ? devices.find((d) => d.key === hostKey(h.host, h.kind)) : undefined;
        const d = byKey ?? devices.find((x) => x.name !== undefined && x.name.toLowerCase() === entry.trim().toLowerCase());
        if (!d) {
          const names = devices.map((x) => x.name ?? x.address);
          return void issues.push({ path: p, message: `${describeValue(entry)} is no configured device${names.length ? ` (devices: ${names.join(", ")})` : ""}; an agent hop is written agent:<ip>:<port>` });
        }
        key = `device|${d.key}`;
        hop = { hop: j + 1, kind: "device", name: d.name ?? d.address, address: d.address };
      }
      const first = seen.get(key);
      if (first !== undefined) return void issues.push({ path: p, message: `${describeValue(entry)} is already hop ${first + 1}; a hop appears once`, related: at("path", first) });
      seen.set(key, j);
      path.push(hop);
    });
  }
  if (issues.length > before || !filter) return undefined;

  // --- can every hop capture it? ---------------------------------------------------------------
  const flow: FlowConfig = { filter, ...(vrf !== undefined ? { vrf } : {}), path };
  const scratch: PathIssue[] = []; // problems of the capture sections themselves are reported by crossCheck
  const runSpec = specFromConfig(raw.capture, ["capture"], scratch) ?? {};
  const agentsSection = isPlainObject(raw.agents) ? raw.agents : {};
  const legacy = agentsSection.legacy === true;
  path.forEach((h, j) => {
    const p = at("path", j);
    if (h.kind === "device") {
      const d = devices.find((x) => x.address === h.address)!;
      if (!d.type) return; // the device's own type error is reported there
      const deviceSpec = specFromConfig(d.raw.capture, [], scratch);
      if (!deviceSpec) return;
      const interfaces = d.raw.interfaces === undefined ? undefined : Array.isArray(d.raw.interfaces) ? (d.raw.interfaces as string[]) : [d.raw.interfaces as string];
      const spec = flowDeviceSpec(mergeCaptureSpecs(runSpec, { ...deviceSpec, ...(interfaces ? { interfaces } : {}) }), flow);
      const c = compileFor(d.type, spec, { device: h.address });
      if (!c.ok) issues.push({ path: p, message: `${h.name} cannot capture the flow: ${c.message}`, related: ["devices", d.index] });
      return;
    }
    flow.agentHost ??= flowAgentHost(filter);
    if (flow.agentHost === undefined) {
      issues.push({ path: p, message: "an agent scopes its capture to one host: give flow.filter.src or flow.filter.dst as a host address (not a prefix or any)" });
      return;
    }
    flow.agentSpec ??= agentSpec(mergeCaptureSpecs(runSpec, { filter }));
    const c = compileFor("agent", flow.agentSpec, { device: flow.agentHost });
    if (!c.ok) return void issues.push({ path: p, message: `for the agent: ${c.message}` });
    if (legacy && agentWireSpec(flow.agentSpec) !== undefined) {
      return void issues.push({ path: p, message: "the legacy agent protocol cannot carry the flow filter; agent hops need CSYNC/1 agents (agents.keyFile)" });
    }
    if (!legacy && agentsSection.keyFile === undefined) {
      issues.push({ path: p, message: "an agent hop needs agents.keyFile (v1 signs every request with that pre-shared key)" });
    }
    // The agent keys its sessions by host: the same agent capturing that host for a device too
    // would be asked for two different filters on one session (409 spec-conflict).
    const clash = devices.find((d) => d.key === keyOf(flow.agentHost!) && listsAgent(d.raw.agents, h.agent));
    if (clash) issues.push({ path: p, message: `this agent also captures ${clash.address} for devices[${clash.index}]; one agent cannot capture one host with two filters — use another agent for the hop`, related: ["devices", clash.index] });
  });
  return issues.length > before ? undefined : flow;
}

function listsAgent(agents: unknown, ep: AgentEndpoint): boolean {
  const list = agents === undefined ? [] : Array.isArray(agents) ? agents : [agents];
  return list.some((a) => {
    if (isPlainObject(a)) return typeof a.host === "string" && endpointKey({ host: a.host, port: typeof a.port === "number" ? a.port : DEFAULT_AGENT_PORT }) === endpointKey(ep);
    const r = typeof a === "string" ? parseEndpoint(a, { defaultPort: DEFAULT_AGENT_PORT }) : undefined;
    return r?.ok === true && endpointKey(r.value) === endpointKey(ep);
  });
}

/** The flow as written in a config file (what `validate` shows). */
export function displayFlow(flow: FlowConfig): { filter: CaptureFilter; vrf?: string; path: string[] } {
  return { filter: { ...flow.filter }, ...(flow.vrf !== undefined ? { vrf: flow.vrf } : {}), path: flow.path.map(hopLabel) };
}
