// One entry point from a validated capture spec to what a target runs: tcpdump words for agents,
// debug-capture lines for AudioCodes, an EPC plan for IOS-XE. The orchestrator and `validate`
// call compileFor for every device and agent before anything starts.
import { agentSpec, encodeSpecWire, validateCaptureSpec, type CaptureSpec, type CaptureTarget } from "./model.js";
import { compileBpf, type BpfProgram } from "./bpf.js";
import { compileAudioCodes, type AudioCodesCapture } from "./audiocodes.js";
import { compileEpc, epcText, type EpcPlan } from "./epc.js";

export * from "./model.js";
export * from "./bpf.js";
export * from "./audiocodes.js";
export * from "./epc.js";
export * from "./xepacketcap.js";

export type Compiled =
  | { ok: true; target: "agent"; text: string; bpf: BpfProgram }
  | { ok: true; target: "msbr" | "gwsbc"; text: string; audiocodes: AudioCodesCapture }
  | { ok: true; target: "iosxe"; text: string; epc: EpcPlan }
  | { ok: false; target: CaptureTarget; field: string; message: string };

export interface CompileOptions {
  /** The device address: named in messages, and for agents the `host <device>` scope. */
  device?: string;
  /** IOS-XE capture point name shown in `text` (default CAPSYNC; drivers pick a unique one per run). */
  captureName?: string;
}

/**
 * Validates `spec` (untrusted input is fine) and compiles it for `target`. For agents the device's
 * own fields (interfaces, vrf, direction) are dropped first: see agentSpec. Never throws.
 * @example compileFor("iosxe", { interfaces: ["Gi1"], filter: { protocol: "udp", dport: 5060 } }, { device: "192.0.2.1" })
 *   → { ok: true, target: "iosxe", text: "monitor capture CAPSYNC interface GigabitEthernet1 both\nmonitor capture CAPSYNC match ipv4 protocol udp any any eq 5060\nmonitor capture CAPSYNC start", epc: {...} }
 * @example compileFor("msbr", { interfaces: ["eth-wan"], snaplen: 128 }, { device: "192.0.2.10" })
 *   → { ok: false, target: "msbr", field: "snaplen", message: "msbr 192.0.2.10: snaplen: the AudioCodes debug capture always keeps whole packets" }
 */
export function compileFor(target: CaptureTarget, spec: unknown, opts: CompileOptions = {}): Compiled {
  const label = opts.device ? `${target} ${opts.device}` : target;
  const v = validateCaptureSpec(spec ?? {});
  if (!v.ok) return { ok: false, target, field: v.field, message: `${label}: ${v.field || "spec"}: ${v.message}` };
  const s: CaptureSpec = v.spec;
  switch (target) {
    case "agent": {
      const r = compileBpf(agentSpec(s), opts.device ? { host: opts.device } : {});
      if (!r.ok) return { ok: false, target, field: r.field, message: `${label}: ${r.field}: ${r.message}` };
      return { ok: true, target, text: r.program.text, bpf: r.program };
    }
    case "msbr":
    case "gwsbc": {
      const r = compileAudioCodes(target, s, label);
      if (!r.ok) return { ok: false, target, field: r.field, message: r.message };
      const { ok: _ok, ...audiocodes } = r;
      return { ok: true, target, text: audiocodes.start.join("\n"), audiocodes };
    }
    case "iosxe": {
      const r = compileEpc(s, label);
      if (!r.ok) return { ok: false, target, field: r.field, message: r.message };
      return { ok: true, target, text: epcText(opts.captureName ?? "CAPSYNC", r.plan), epc: r.plan };
    }
  }
}

/**
 * The CAPTURE `spec=` value for a device's agents (base64url JSON of agentSpec), or undefined when
 * there is nothing beyond plain CAPTURE's `host <device>` — so legacy agents keep working for
 * specs without a server-side part. Validate with compileFor("agent", …) first.
 * @example agentWireSpec({ interfaces: ["eth-wan"] }) → undefined
 * @example agentWireSpec({ filter: { protocol: "udp", dport: 5060 } }) → "eyJmaWx0ZXIiOnsicHJvdG9jb2wiOiJ1ZHAiLCJkcG9ydCI6NTA2MH19"
 */
export function agentWireSpec(spec: CaptureSpec): string | undefined {
  const a = agentSpec(spec);
  return Object.keys(a).length === 0 ? undefined : encodeSpecWire(a);
}
