// Capture spec → AudioCodes debug capture CLI (MSBR `debug capture data physical`, Mediant GW/SBC
// `debug capture voip physical`, firmware 7.2/7.4). The physical debug capture records whole frames
// in both directions on the chosen interfaces and nothing else: every other spec field is rejected.
import type { CaptureSpec, SpecIssue } from "../../spec/model.js";
import type { SpecCompiler } from "../../spec/compile.js";
import { checkCaptureSpec } from "../capture-spec.js";
import type { DriverCapabilities } from "../driver.js";
import type { InterfaceRules } from "../vendor.js";
import { AUDIOCODES_CAPTURE_INTERFACES, AUDIOCODES_CAPTURE_PREFIX, type AudioCodesType } from "./interfaces.js";

export type { AudioCodesType } from "./interfaces.js";

/** How each type's config names its capture points. */
export const AUDIOCODES_INTERFACE_RULES = {
  msbr: { kind: "list", allowed: AUDIOCODES_CAPTURE_INTERFACES.msbr, defaults: [], multiple: true, expected: AUDIOCODES_CAPTURE_INTERFACES.msbr.join("|") },
  gwsbc: { kind: "list", allowed: AUDIOCODES_CAPTURE_INTERFACES.gwsbc, defaults: ["eth-lan"], multiple: false, expected: "eth-lan (the only capture interface of a gateway/SBC)" },
} as const satisfies Record<AudioCodesType, InterfaceRules & { kind: "list" }>;

/** The debug capture has interfaces and nothing else. */
export function audioCodesCapabilities(type: AudioCodesType): DriverCapabilities {
  const t = AUDIOCODES_INTERFACE_RULES[type];
  return {
    vendor: "audiocodes",
    interfaces: t.allowed,
    defaultInterfaces: t.defaults,
    multipleInterfaces: t.multiple,
    filter: false,
    direction: false,
    snaplen: false,
    transfer: "sftp",
  };
}

export interface AudioCodesCapture {
  interfaces: string[];
  /** CLI lines of the start script, ending with a `show` that confirms in the same call. */
  start: string[];
  stop: string[];
}
type AudioCodesResult = ({ ok: true } & AudioCodesCapture) | SpecIssue;

/** MSBR: stop, select each interface, start (the original's order). GW/SBC: eth-lan, start. Both end with `show`. */
export function audioCodesStartLines(type: AudioCodesType, interfaces: readonly string[]): string[] {
  const p = AUDIOCODES_CAPTURE_PREFIX[type];
  return type === "msbr"
    ? [`${p} stop`, ...interfaces.map((i) => `${p} ${i}`), `${p} start`, `${p} show`]
    : [...interfaces.map((i) => `${p} ${i}`), `${p} start`, `${p} show`];
}

export function audioCodesStopLines(type: AudioCodesType): string[] {
  const p = AUDIOCODES_CAPTURE_PREFIX[type];
  return [`${p} stop`, `${p} show`];
}

/**
 * @param label names the device in messages, e.g. "msbr 192.0.2.10".
 * @example compileAudioCodes("msbr", { interfaces: ["eth-wan"] }).start
 *          → ["debug capture data physical stop", "debug capture data physical eth-wan", "debug capture data physical start", "debug capture data physical show"]
 */
function compileAudioCodes(type: AudioCodesType, spec: CaptureSpec, label: string = type): AudioCodesResult {
  const no = (field: string, why: string): SpecIssue => ({ ok: false, field, message: `${label}: ${field}: ${why}` });
  const check = checkCaptureSpec(label, spec, audioCodesCapabilities(type));
  if (!check.ok) return check;
  if (spec.direction !== undefined && spec.direction !== "both") {
    return no("direction", "the AudioCodes debug capture records both directions; it cannot keep only one");
  }
  const f = spec.filter ?? {};
  const fkey = (["protocol", "src", "dst", "sport", "dport"] as const).find((k) => f[k] !== undefined);
  if (fkey) return no(`filter.${fkey}`, "the AudioCodes debug capture has no filter; leave the filter out for this device (filter the file afterwards)");
  if (spec.vrf !== undefined) return no("vrf", "the AudioCodes debug capture cannot select a VRF");
  if (spec.snaplen !== undefined) return no("snaplen", "the AudioCodes debug capture always keeps whole packets");
  const lkey = (["durationSec", "packets", "maxSizeMb", "ringFiles", "bufferMb"] as const).find((k) => spec.limits?.[k] !== undefined);
  if (lkey) {
    const hint = lkey === "durationSec" ? "; use the run's duration trigger (stop.duration) instead" : "";
    return no(`limits.${lkey}`, `the AudioCodes debug capture has no ${lkey} limit${hint}`);
  }
  return { ok: true, interfaces: check.interfaces, start: audioCodesStartLines(type, check.interfaces), stop: audioCodesStopLines(type) };
}

/** compileFor's compiler for one type: the plan is `audiocodes`, the text the start script. */
export function audioCodesCompiler(type: AudioCodesType): SpecCompiler<"audiocodes", AudioCodesCapture> {
  return {
    key: "audiocodes",
    compile(spec, label) {
      const r = compileAudioCodes(type, spec, label);
      if (!r.ok) return r;
      const { ok: _ok, ...plan } = r;
      return { ok: true, text: plan.start.join("\n"), plan };
    },
  };
}
