// Every vendor fact the run config knows: the device types, their capture interfaces and how
// they are checked, the default interface, the keys only some types take, the vendors' built-in
// alarm names. The rest of config/ asks this module and names no vendor.
import { z } from "zod";
import { describeValue, type PathIssue } from "./issues.js";

export const DEVICE_TYPES = ["msbr", "gwsbc", "iosxe"] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

/** MSBR physical capture interfaces (`debug capture data physical <iface>`); several may be captured at once. */
export const MSBR_INTERFACES = [
  "cellular-wan",
  "fiber-wan",
  "xdsl-wan",
  "shdsl-wan",
  "t1-e1-wan",
  "eth-wan",
  "eth-lan",
] as const;
/** Gateway/SBC: `debug capture voip physical eth-lan` is the only capture point. */
export const GWSBC_INTERFACES = ["eth-lan"] as const;

/** Alarm matchers of the vendors' own syslog messages (config/alarms.ts adds the generic ones). */
export const DEVICE_ALARMS = ["iosxe-link-down", "iosxe-lineproto-down"] as const;

/** The variable name error messages show as an example of a password reference. */
export const PASSWORD_ENV_EXAMPLE = "MSBR1_PASSWORD";

/** The interfaces a device captures when its config lists none ([] when the type has no default). */
export function defaultInterfaces(type: DeviceType): string[] {
  return type === "gwsbc" ? [...GWSBC_INTERFACES] : [];
}

/** Checks a device's `interfaces` (as written: one name or a list) against its type. */
export function checkInterfaces(type: DeviceType, v: unknown, path: (string | number)[], issues: PathIssue[]): void {
  if (v === undefined) {
    if (type === "msbr") issues.push({ path, message: `required for msbr: one or more of ${MSBR_INTERFACES.join(", ")}` });
    if (type === "iosxe") issues.push({ path, message: "required for iosxe: one or more interface names, e.g. GigabitEthernet1" });
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
    if (type === "msbr" && !(MSBR_INTERFACES as readonly string[]).includes(item)) {
      issues.push({ path: p, message: `expected ${MSBR_INTERFACES.join("|")}, got ${describeValue(item)}` });
    } else if (type === "gwsbc" && !(GWSBC_INTERFACES as readonly string[]).includes(item)) {
      issues.push({ path: p, message: `expected eth-lan (the only capture interface of a gateway/SBC), got ${describeValue(item)}` });
    } else if (type === "iosxe" && !/^[A-Za-z][A-Za-z0-9/.:-]{0,63}$/.test(item)) {
      issues.push({ path: p, message: `expected an IOS-XE interface name like GigabitEthernet1, got ${describeValue(item)}` });
    } else if (seen.has(item)) {
      issues.push({ path: p, message: `duplicate interface ${describeValue(item)}` });
    }
    seen.add(item);
  });
}

// ---------------------------------------------------------------------------------------------
// Keys only some device types take.

/** IOS-XE only: RESTCONF (default) or the SSH CLI; scp (default) or sftp for the export. */
export interface DeviceOptions {
  transport?: "restconf" | "ssh-cli";
  fileTransfer?: "scp" | "sftp";
}

/** The zod fields of the type-specific keys, part of a device's shape. */
export const DEVICE_OPTION_FIELDS = {
  transport: z.enum(["restconf", "ssh-cli"]).optional(),
  fileTransfer: z.enum(["scp", "sftp"]).optional(),
};

const OPTION_KEYS = ["transport", "fileTransfer"] as const;

/** Type-specific keys set on a device of another type. */
export function checkDeviceOptions(type: DeviceType, d: Record<string, unknown>, at: (...p: (string | number)[]) => (string | number)[], issues: PathIssue[]): void {
  for (const k of OPTION_KEYS) {
    if (d[k] !== undefined && type !== "iosxe") issues.push({ path: at(k), message: `only for iosxe devices (${type} has one transport)` });
  }
}

/** The type-specific keys a device set, for its DeviceConfig. */
export function deviceOptions(d: DeviceOptions): DeviceOptions {
  return {
    ...(d.transport ? { transport: d.transport } : {}),
    ...(d.fileTransfer ? { fileTransfer: d.fileTransfer } : {}),
  };
}
