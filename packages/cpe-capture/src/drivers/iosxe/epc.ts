// Capture spec → Cisco IOS-XE Embedded Packet Capture: `monitor capture` exec CLI lines and the
// equivalent Cisco-IOS-XE-rpc `monitor` RPC inputs (YANG 17.x, JSON per RFC 7951; ranges from the
// module: buffer size 1..100 MB, limit duration 1..1000000 s, packets 1..100000, packet-len 64..9500).
// Circular buffers come from the device's `epcBuffer: circular` (the size stays the spec's
// bufferMb, or EPC's default). Not handled: access-list/class-map filters (config mode),
// control-plane capture points and `limit every|pps` (no spec field asks for them).
import type { CaptureFilter, CaptureSpec, Direction, SpecIssue } from "../../spec/model.js";
import type { SpecCompiler } from "../../spec/compile.js";
import type { DriverCapabilities } from "../driver.js";
import { INTERFACE_NAME, type InterfaceRules } from "../vendor.js";
import { canonicalIosXeInterface } from "./interfaces.js";

/** The config and the prompts check the form only; the compiler canonicalises, the device knows which exist. */
export const IOSXE_INTERFACE_RULES = {
  kind: "names",
  pattern: INTERFACE_NAME,
  example: "GigabitEthernet1",
  expected: "an IOS-XE interface name like GigabitEthernet1",
} as const satisfies InterfaceRules;

/** EPC: any interfaces, both directions or one, a 5-tuple match, a packet length. */
export const IOSXE_CAPABILITIES: DriverCapabilities = {
  vendor: "cisco",
  // Names are checked against the IOS-XE interface types by the EPC compiler, existence by the device.
  interfaces: null,
  defaultInterfaces: [],
  multipleInterfaces: true,
  filter: true,
  direction: true,
  snaplen: true,
  // The default file transfer; a driver reports the one it was configured with.
  transfer: "scp",
};

/** The ranges of the Cisco-IOS-XE-rpc monitor input. */
const EPC_RANGES = {
  bufferMb: { min: 1, max: 100 },
  duration: { min: 1, max: 1_000_000 },
  packets: { min: 1, max: 100_000 },
  packetLen: { min: 64, max: 9500 },
} as const;

interface EpcLimit {
  duration?: number;
  packets?: number;
  packetLen?: number;
}

/** @example { interfaces: ["GigabitEthernet1"], direction: "both", match: "ipv4 protocol udp any any eq 5060", bufferMb: 10, limit: { duration: 60 } } */
export interface EpcPlan {
  interfaces: string[];
  direction: Direction;
  /** The words after `match`: "any", "ipv4 any any", "ipv6 protocol tcp host 2001:db8::1 any eq 443". */
  match: string;
  bufferMb?: number;
  /** `buffer circular`: the newest packets are kept when the buffer is full, instead of stopping. */
  bufferCircular?: boolean;
  limit: EpcLimit;
  /** Checked by the driver against the interfaces' `vrf forwarding`; EPC itself has no VRF clause. */
  vrf?: string;
}
type EpcResult = { ok: true; plan: EpcPlan } | SpecIssue;

function endpoint(p: string | undefined): string {
  if (!p) return "any";
  return p.includes("/") ? p : `host ${p}`;
}

/**
 * The inline match for a filter, written like an extended ACE: `ipv4 [protocol P] SRC [eq N] DST [eq N]`.
 * No filter at all is `any` (every frame, ARP included, like the original's physical captures).
 */
function epcMatch(f: CaptureFilter | undefined): string {
  if (!f || Object.keys(f).length === 0) return "any";
  const family = [f.src, f.dst].some((x) => x?.includes(":")) ? "ipv6" : "ipv4";
  const words: string[] = [family];
  if (f.protocol !== undefined && f.protocol !== "ip") words.push("protocol", String(f.protocol));
  words.push(endpoint(f.src));
  if (f.sport !== undefined) words.push("eq", String(f.sport));
  words.push(endpoint(f.dst));
  if (f.dport !== undefined) words.push("eq", String(f.dport));
  return words.join(" ");
}

/**
 * Compiles a validated spec for IOS-XE EPC; rejects what EPC cannot express, naming the field.
 * @param label names the device in messages, e.g. "iosxe 192.0.2.1".
 */
function compileEpc(spec: CaptureSpec, label = "iosxe"): EpcResult {
  const no = (field: string, why: string): SpecIssue => ({ ok: false, field, message: `${label}: ${field}: ${why}` });
  const asked = spec.interfaces ?? [];
  if (asked.length === 0) return no("interfaces", "IOS-XE needs at least one capture interface, e.g. GigabitEthernet1");
  const interfaces: string[] = [];
  const bad: string[] = [];
  for (const name of asked) {
    const c = canonicalIosXeInterface(name);
    if (!c) bad.push(JSON.stringify(name));
    else if (!interfaces.includes(c)) interfaces.push(c);
  }
  if (bad.length > 0) {
    return { ok: false, field: "interfaces", message: `${label} cannot capture on ${bad.join(", ")}: not an IOS-XE interface name (e.g. GigabitEthernet1, Gi0/0/1, Vlan10, Port-channel1)` };
  }
  const l = spec.limits ?? {};
  const inRange = (v: number | undefined, r: { min: number; max: number }) => v === undefined || (v >= r.min && v <= r.max);
  if (!inRange(spec.snaplen, EPC_RANGES.packetLen)) return no("snaplen", `EPC keeps ${EPC_RANGES.packetLen.min}..${EPC_RANGES.packetLen.max} bytes per packet (limit packet-len), got ${spec.snaplen}`);
  if (!inRange(l.durationSec, EPC_RANGES.duration)) return no("limits.durationSec", `EPC limit duration is ${EPC_RANGES.duration.min}..${EPC_RANGES.duration.max} s, got ${l.durationSec}`);
  if (!inRange(l.packets, EPC_RANGES.packets)) return no("limits.packets", `EPC limit packets is ${EPC_RANGES.packets.min}..${EPC_RANGES.packets.max}, got ${l.packets}`);
  if (l.ringFiles !== undefined) return no("limits.ringFiles", "EPC keeps one buffer exported as one file; it has no ring of files");
  if (!inRange(l.bufferMb, EPC_RANGES.bufferMb)) return no("limits.bufferMb", `EPC buffer size is ${EPC_RANGES.bufferMb.min}..${EPC_RANGES.bufferMb.max} MB, got ${l.bufferMb}`);
  // A linear EPC buffer stops capturing when full: its size is the capture's maximum size.
  if (!inRange(l.maxSizeMb, EPC_RANGES.bufferMb)) return no("limits.maxSizeMb", `EPC keeps at most its buffer, ${EPC_RANGES.bufferMb.min}..${EPC_RANGES.bufferMb.max} MB, got ${l.maxSizeMb}`);
  if (l.maxSizeMb !== undefined && l.bufferMb !== undefined && l.maxSizeMb !== l.bufferMb) {
    return no("limits.maxSizeMb", `on EPC the buffer is the maximum size: give maxSizeMb or bufferMb, or equal values (got ${l.maxSizeMb} and ${l.bufferMb})`);
  }
  const limit: EpcLimit = {};
  if (l.durationSec !== undefined) limit.duration = l.durationSec;
  if (l.packets !== undefined) limit.packets = l.packets;
  if (spec.snaplen !== undefined) limit.packetLen = spec.snaplen;
  const plan: EpcPlan = { interfaces, direction: spec.direction ?? "both", match: epcMatch(spec.filter), limit };
  const buffer = l.bufferMb ?? l.maxSizeMb;
  if (buffer !== undefined) plan.bufferMb = buffer;
  if (spec.vrf !== undefined) plan.vrf = spec.vrf;
  return { ok: true, plan };
}

function limitWords(limit: EpcLimit): string[] {
  const w: string[] = [];
  if (limit.duration !== undefined) w.push("duration", String(limit.duration));
  if (limit.packets !== undefined) w.push("packets", String(limit.packets));
  if (limit.packetLen !== undefined) w.push("packet-len", String(limit.packetLen));
  return w;
}

/** Where a capture point is exported: `bootflash:<name>.pcap`. */
export function epcExportPath(name: string): string {
  return `bootflash:${name}.pcap`;
}

/** Capture point names capsync uses: letters and digits only, so they are safe in CLI and file names. */
export const EPC_NAME = /^[A-Za-z][A-Za-z0-9]{0,31}$/;

/** The exec CLI for one capture point, line by line as an engineer would type it. */
export function epcCommands(name: string, plan: EpcPlan): { define: string[]; start: string; stop: string; export: string; show: string; remove: string; delete: string } {
  if (!EPC_NAME.test(name)) throw new TypeError(`bad capture point name ${JSON.stringify(name)}`);
  const p = `monitor capture ${name}`;
  const define = plan.interfaces.map((i) => `${p} interface ${i} ${plan.direction}`);
  define.push(`${p} match ${plan.match}`);
  if (plan.bufferCircular || plan.bufferMb !== undefined) define.push(`${p} buffer${plan.bufferCircular ? " circular" : ""}${plan.bufferMb !== undefined ? ` size ${plan.bufferMb}` : ""}`);
  const lw = limitWords(plan.limit);
  if (lw.length > 0) define.push(`${p} limit ${lw.join(" ")}`);
  const file = epcExportPath(name);
  return {
    define,
    start: `${p} start`,
    stop: `${p} stop`,
    export: `${p} export ${file}`,
    show: `show monitor capture ${name}`,
    remove: `no monitor capture ${name}`,
    delete: `delete /force ${file}`,
  };
}

/** The whole start as text (golden tests, dry runs, logs). */
function epcText(name: string, plan: EpcPlan): string {
  const c = epcCommands(name, plan);
  return [...c.define, c.start].join("\n");
}

/** compileFor's compiler: the plan is `epc`, the text the start as typed on the CLI (capture point CAPSYNC unless named). */
export const epcCompiler: SpecCompiler<"epc", EpcPlan> = {
  key: "epc",
  compile(spec, label, opts) {
    const r = compileEpc(spec, label);
    if (!r.ok) return r;
    return { ok: true, text: epcText(opts.captureName ?? "CAPSYNC", r.plan), plan: r.plan };
  },
};

/** RFC 7951 encodes YANG `empty` leaves as [null]. */
const EMPTY = [null] as const;

/**
 * `Cisco-IOS-XE-rpc:monitor` inputs that define the capture point: one per interface, the first also
 * carrying match, buffer and limit (the device accepts them in one command, as the CLI does).
 */
export function epcDefineInputs(name: string, plan: EpcPlan): Record<string, unknown>[] {
  return plan.interfaces.map((iface, i) => {
    const input: Record<string, unknown> = { capture: name, interface: iface, [plan.direction]: EMPTY };
    if (i > 0) return input;
    input.match = plan.match;
    if (plan.bufferCircular || plan.bufferMb !== undefined) input.buffer = { ...(plan.bufferCircular ? { circular: EMPTY } : {}), ...(plan.bufferMb !== undefined ? { size: plan.bufferMb } : {}) };
    const limit: Record<string, number> = {};
    if (plan.limit.duration !== undefined) limit.duration = plan.limit.duration;
    if (plan.limit.packets !== undefined) limit.packets = plan.limit.packets;
    if (plan.limit.packetLen !== undefined) limit["packet-len"] = plan.limit.packetLen;
    if (Object.keys(limit).length > 0) input.limit = limit;
    return input;
  });
}

/** The other RPC inputs, keyed by the operation they belong to. */
export const epcRpcInputs = {
  start: (name: string) => ({ rpc: "monitor", input: { capture: name, start: EMPTY } }),
  stop: (name: string) => ({ rpc: "monitor", input: { capture: name, stop: EMPTY } }),
  export: (name: string) => ({ rpc: "monitor", input: { capture: name, export: epcExportPath(name) } }),
  remove: (name: string) => ({ rpc: "no", input: { monitor: { capture: name } } }),
  delete: (path: string) => ({ rpc: "delete", input: { "filename-drop-node-name": path } }),
} as const;
