// The device facts the run config checks, all read from the vendor registry (drivers/index.ts):
// the device types, each type's capture interfaces (how they are checked, which are captured by
// default) and the keys only some types take. No vendor is named here: a new one changes nothing.
import { z } from "zod";
import { DEVICE_TYPES, VENDOR_CONFIG_KEYS, deviceType, vendorOptions, type DeviceType, type VendorOptions } from "../drivers/index.js";
import { acceptsInterface, type InterfaceRules } from "../drivers/vendor.js";
import { describeValue, type PathIssue } from "./issues.js";

export { DEVICE_TYPES, type DeviceType } from "../drivers/index.js";

/** The variable name error messages show as an example of a password reference: the first type's first device. */
export const PASSWORD_ENV_EXAMPLE = `${DEVICE_TYPES[0].toUpperCase()}1_PASSWORD`;

/** The interfaces a device captures when its config lists none ([] when the type has no default). */
export function defaultInterfaces(type: DeviceType): string[] {
  const rules = deviceType(type).interfaces;
  return rules.kind === "list" ? [...rules.defaults] : [];
}

/** What to say when a type that needs interfaces has none; undefined when it has defaults. */
function requiredMessage(type: DeviceType, rules: InterfaceRules): string | undefined {
  if (rules.kind === "names") return `required for ${type}: one or more interface names, e.g. ${rules.example}`;
  if (rules.defaults.length > 0) return undefined;
  return `required for ${type}: ${rules.multiple ? "one or more" : "one"} of ${rules.allowed.join(", ")}`;
}

/**
 * Refuses a type that takes no capture (its capabilities say `capture: false`, e.g. a trace hop) in a
 * capture run's devices; true when the type captures.
 */
export function checkCaptures(type: DeviceType, path: (string | number)[], issues: PathIssue[]): boolean {
  const t = deviceType(type);
  if (t.capabilities.capture !== false) return true;
  issues.push({ path, message: `${type} (${t.label}) takes no capture in capsync yet; it is a trace hop (cpe-capture trace), remove it from devices` });
  return false;
}

/** Checks a device's `interfaces` (as written: one name or a list) against its type. */
export function checkInterfaces(type: DeviceType, v: unknown, path: (string | number)[], issues: PathIssue[]): void {
  if (deviceType(type).capabilities.capture === false) return; // checkCaptures has said why
  const rules = deviceType(type).interfaces;
  if (v === undefined) {
    const message = requiredMessage(type, rules);
    if (message !== undefined) issues.push({ path, message });
    return;
  }
  const single = !Array.isArray(v);
  const list: unknown[] = single ? [v] : (v as unknown[]);
  if (list.length === 0) {
    issues.push({ path, message: "expected at least one interface" });
    return;
  }
  const seen = new Set<string>();
  list.forEach((item, j) => {
    if (typeof item !== "string" || item.trim() === "") return; // the shape check reports these
    const p = single ? path : [...path, j];
    if (!acceptsInterface(rules, item)) {
      issues.push({ path: p, message: `expected ${rules.expected}, got ${describeValue(item)}` });
    } else if (seen.has(item)) {
      issues.push({ path: p, message: `duplicate interface ${describeValue(item)}` });
    }
    seen.add(item);
  });
}

// ---------------------------------------------------------------------------------------------
// Keys only some device types take (each vendor module's `configKeys`).

export type DeviceOptions = VendorOptions;

type OptionFields = { [K in keyof Required<VendorOptions>]: z.ZodOptional<z.ZodType<NonNullable<VendorOptions[K]>>> };

/** The zod fields of the type-specific keys, part of a device's shape. */
export const DEVICE_OPTION_FIELDS = Object.fromEntries(
  [...VENDOR_CONFIG_KEYS].map(([name, { key }]) => [name, z.enum(key.values).optional()]),
) as unknown as OptionFields;

/** Type-specific keys set on a device of another type. */
export function checkDeviceOptions(type: DeviceType, d: Record<string, unknown>, at: (...p: (string | number)[]) => (string | number)[], issues: PathIssue[]): void {
  for (const [name, { key, types }] of VENDOR_CONFIG_KEYS) {
    if (d[name] !== undefined && !types.includes(type)) issues.push({ path: at(name), message: `only for ${types.join(", ")} devices (${type} ${key.refusal})` });
  }
}

/** The type-specific keys a device set, for its DeviceConfig. */
export function deviceOptions(d: DeviceOptions): DeviceOptions {
  return vendorOptions(d);
}
