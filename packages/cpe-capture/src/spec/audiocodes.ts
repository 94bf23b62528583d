// Capture spec → AudioCodes debug capture CLI (MSBR `debug capture data physical`, Mediant GW/SBC
// `debug capture voip physical`, firmware 7.2/7.4). The physical debug capture records whole frames
// in both directions on the chosen interfaces and nothing else: every other spec field is rejected.
import { CAPTURE_INTERFACES, checkCaptureSpec } from "../drivers/capture-spec.js";
import type { CaptureSpec, SpecIssue } from "./model.js";

export type AudioCodesTarget = "msbr" | "gwsbc";

export const AUDIOCODES_PREFIX: Readonly<Record<AudioCodesTarget, string>> = {
  msbr: "debug capture data physical",
  gwsbc: "debug capture voip physical",
};

export interface AudioCodesCapture {
  interfaces: string[];
  /** CLI lines of the start script, ending with a `show` that confirms in the same call. */
  start: string[];
  stop: string[];
}
export type AudioCodesResult = ({ ok: true } & AudioCodesCapture) | SpecIssue;

/** MSBR: stop, select each interface, start (the original's order). GW/SBC: eth-lan, start. Both end with `show`. */
export function audioCodesStartLines(type: AudioCodesTarget, interfaces: readonly string[]): string[] {
  const p = AUDIOCODES_PREFIX[type];
  return type === "msbr"
    ? [`${p} stop`, ...interfaces.map((i) => `${p} ${i}`), `${p} start`, `${p} show`]
    : [...interfaces.map((i) => `${p} ${i}`), `${p} start`, `${p} show`];
}

export function audioCodesStopLines(type: AudioCodesTarget): string[] {
  const p = AUDIOCODES_PREFIX[type];
  return [`${p} stop`, `${p} show`];
}

/**
 * @param label names the device in messages, e.g. "msbr 192.0.2.10".
 * @example compileAudioCodes("msbr", { interfaces: ["eth-wan"] }).start
 *          → ["debug capture data physical stop", "debug capture data physical eth-wan", "debug capture data physical start", "debug capture data physical show"]
 */
export function compileAudioCodes(type: AudioCodesTarget, spec: CaptureSpec, label: string = type): AudioCodesResult {
  const no = (field: string, why: string): SpecIssue => ({ ok: false, field, message: `${label}: ${field}: ${why}` });
  const t = CAPTURE_INTERFACES[type];
  const check = checkCaptureSpec(label, spec, { interfaces: t.allowed, defaultInterfaces: t.defaults, multipleInterfaces: t.multiple });
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
