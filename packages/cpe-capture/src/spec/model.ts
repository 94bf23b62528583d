// The capture spec model as cpe-capture uses it. The type, its validator and the wire encoding live
// in @capsync/protocol (the agent decodes the same JSON); this module re-exports them so drivers,
// config and prompts import from one place.
export {
  type CaptureFilter,
  type CaptureLimits,
  type CaptureSpec,
  type Direction,
  type Prefix,
  type SpecIssue,
  type SpecProtocol,
  type SpecResult,
  DIRECTIONS,
  SPEC_LIMITS,
  SPEC_PROTOCOLS,
  agentSpec,
  canonicalSpecJson,
  decodeSpecWire,
  encodeSpecWire,
  filterFamily,
  formatPrefix,
  mergeCaptureSpecs,
  parsePrefix,
  validateCaptureSpec,
} from "@capsync/protocol";

/** Where a spec is compiled for: a server-capture agent (tcpdump) or a device type. */
export type CaptureTarget = "agent" | "msbr" | "gwsbc" | "iosxe";
export const CAPTURE_TARGETS: readonly CaptureTarget[] = ["agent", "msbr", "gwsbc", "iosxe"];

/** What each target can express, for prompts and docs (the compilers are the authority). */
export const TARGET_FEATURES: Readonly<Record<CaptureTarget, readonly string[]>> = {
  agent: ["direction", "filter", "snaplen", "limits.durationSec", "limits.packets", "limits.maxSizeMb", "limits.ringFiles", "limits.bufferMb"],
  msbr: ["interfaces"],
  gwsbc: ["interfaces"],
  iosxe: ["interfaces", "direction", "filter", "vrf", "snaplen", "limits.durationSec", "limits.packets", "limits.maxSizeMb", "limits.bufferMb"],
};
