// The capture spec a driver compiles to vendor commands (DESIGN.md "Capture spec"). The model itself
// (interfaces, direction, 5-tuple filter, VRF, snaplen, limits) lives in ../spec/model.ts; this
// module keeps the AudioCodes interface table and the interface check the drivers and config share.
import type { DeviceType, DriverCapabilities } from "./driver.js";
import type { CaptureSpec } from "../spec/model.js";

export type { CaptureSpec } from "../spec/model.js";

/** Capture points per device type (AudioCodes CLI `debug capture data|voip physical <iface>`). */
export const CAPTURE_INTERFACES = {
  msbr: {
    allowed: ["cellular-wan", "fiber-wan", "xdsl-wan", "shdsl-wan", "t1-e1-wan", "eth-wan", "eth-lan"],
    defaults: [],
    multiple: true,
  },
  gwsbc: { allowed: ["eth-lan"], defaults: ["eth-lan"], multiple: false },
} as const satisfies Record<Exclude<DeviceType, "iosxe">, { allowed: readonly string[]; defaults: readonly string[]; multiple: boolean }>;

export type SpecCheck = { ok: true; interfaces: string[] } | { ok: false; field: "interfaces"; message: string };

/** Resolves the spec's interfaces against what the target accepts; never throws. Duplicates collapse. */
export function checkCaptureSpec(
  target: string,
  spec: CaptureSpec,
  caps: Pick<DriverCapabilities, "interfaces" | "defaultInterfaces" | "multipleInterfaces">,
): SpecCheck {
  const asked = spec.interfaces ?? [];
  const list = asked.length > 0 ? [...new Set(asked)] : [...caps.defaultInterfaces];
  const choices = caps.interfaces ? caps.interfaces.join(", ") : "interface names";
  if (list.length === 0) return { ok: false, field: "interfaces", message: `${target} needs at least one capture interface (one or more of: ${choices})` };
  if (caps.interfaces) {
    const bad = list.filter((i) => !caps.interfaces!.includes(i));
    if (bad.length > 0) {
      return {
        ok: false,
        field: "interfaces",
        message: `${target} cannot capture on ${bad.map((b) => JSON.stringify(b)).join(", ")}; expected ${caps.multipleInterfaces ? "one or more" : "one"} of: ${choices}`,
      };
    }
  }
  if (!caps.multipleInterfaces && list.length > 1) {
    return { ok: false, field: "interfaces", message: `${target} captures on one interface at a time, got ${list.join(", ")}` };
  }
  return { ok: true, interfaces: list };
}

/** The same check by device type, from CAPTURE_INTERFACES (for config validation and prompts). */
export function checkCaptureSpecFor(type: keyof typeof CAPTURE_INTERFACES, spec: CaptureSpec): SpecCheck {
  const t = CAPTURE_INTERFACES[type];
  return checkCaptureSpec(type, spec, { interfaces: t.allowed, defaultInterfaces: t.defaults, multipleInterfaces: t.multiple });
}
