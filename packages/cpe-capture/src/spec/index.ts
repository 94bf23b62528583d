// One entry point from a validated capture spec to what a target runs: tcpdump words for agents,
// and for a device whatever its vendor module's compiler makes (found in the registry). The
// orchestrator and `validate` call compileFor for every device and agent before anything starts.
import { deviceType, type DeviceType, type DeviceTypeEntry } from "../drivers/index.js";
import { compileBpf, type BpfProgram } from "./bpf.js";
import { compileWith, type CompileOptions, type SpecCompiler } from "./compile.js";
import { agentSpec, encodeSpecWire, validateCaptureSpec, type CaptureSpec } from "./model.js";

export * from "./model.js";
export * from "./bpf.js";
export * from "./xepacketcap.js";
export type { CompileOptions } from "./compile.js";

/** Where a spec is compiled for: a server-capture agent (tcpdump) or a registered device type. */
export type CaptureTarget = "agent" | DeviceType;

type PlanOf<C> = C extends SpecCompiler<string, infer P> ? P : never;
/** Per device type: `{ ok: true, target, text, <compiler key>: plan }`, e.g. `epc: EpcPlan`. */
type DeviceCompiled = {
  [M in DeviceTypeEntry as M["name"]]: { ok: true; target: M["name"]; text: string } & { [K in M["compiler"]["key"]]: PlanOf<M["compiler"]> };
}[DeviceType];

export type Compiled =
  | { ok: true; target: "agent"; text: string; bpf: BpfProgram }
  | DeviceCompiled
  | { ok: false; target: CaptureTarget; field: string; message: string };

/**
 * Validates `spec` (untrusted input is fine) and compiles it for `target`. For agents the device's
 * own fields (interfaces, vrf) are dropped first; direction stays, meaning the agent's own
 * interface (see agentSpec). Never throws.
 * @example compileFor("agent", { interfaces: ["eth-wan"], filter: { protocol: "udp", dport: 5060 } }, { device: "192.0.2.10" })
 *   → { ok: true, target: "agent", text: "host 192.0.2.10 and udp and dst port 5060", bpf: {...} }
 * @example compileFor(type, { filter: { dport: 53 } }, { device: "192.0.2.10" })
 *   → { ok: false, target: type, field: "filter.dport", message: "<type> 192.0.2.10: filter.dport: …" }
 * A device type's answer carries its plan under its compiler's key, e.g. `{ ok: true, target, text, epc: … }`.
 */
export function compileFor(target: CaptureTarget, spec: unknown, opts: CompileOptions = {}): Compiled {
  if (target !== "agent") {
    const compiler: SpecCompiler = deviceType(target).compiler;
    const r = compileWith(target, compiler, spec, opts);
    if (!r.ok) return { ok: false, target, field: r.field, message: r.message };
    return { ok: true, target, text: r.text, [compiler.key]: r.plan } as DeviceCompiled;
  }
  const agent = compileWith<BpfProgram>("agent", bpfCompiler, spec, opts);
  if (!agent.ok) return { ok: false, target, field: agent.field, message: agent.message };
  return { ok: true, target, text: agent.text, bpf: agent.plan };
}

/** Agents capture on their own interface: the device's interfaces and VRF are dropped, the device is the `host`. */
const bpfCompiler: SpecCompiler<"bpf", BpfProgram> = {
  key: "bpf",
  compile(spec, label, opts) {
    const r = compileBpf(agentSpec(spec), opts.device ? { host: opts.device } : {});
    if (!r.ok) return { ok: false, field: r.field, message: `${label}: ${r.field}: ${r.message}` };
    return { ok: true, text: r.program.text, plan: r.program };
  },
};

/**
 * The CAPTURE `spec=` value for a device's agents (base64url JSON of agentSpec), or undefined when
 * there is nothing beyond plain CAPTURE's `host <device>` — so legacy agents keep working for
 * specs without a server-side part (direction "both" included). Validate with compileFor("agent", …)
 * first; the value sent is the normalised spec (aliases named, host bits cleared), which every
 * CSYNC/1 agent reads.
 * @example agentWireSpec({ interfaces: ["eth-wan"], direction: "both" }) → undefined
 * @example agentWireSpec({ filter: { protocol: "udp", dport: 5060 } }) → "eyJmaWx0ZXIiOnsicHJvdG9jb2wiOiJ1ZHAiLCJkcG9ydCI6NTA2MH19"
 * @example agentWireSpec({ direction: "ingress" }) → base64url of {"direction":"in"}
 */
export function agentWireSpec(spec: CaptureSpec): string | undefined {
  const v = validateCaptureSpec(spec);
  const a = agentSpec(v.ok ? v.spec : spec);
  return Object.keys(a).length === 0 ? undefined : encodeSpecWire(a);
}
