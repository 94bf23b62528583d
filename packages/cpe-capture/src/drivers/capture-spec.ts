// The interface check a device compiler can start with: the spec's interfaces (or the target's
// defaults) against the names and the count the target accepts (its DriverCapabilities).
import type { CaptureSpec } from "../spec/model.js";
import type { DriverCapabilities } from "./driver.js";

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
