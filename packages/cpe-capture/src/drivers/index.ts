// THE registry of vendor modules: the one list of device types and of built-in stop alarms. Config
// validation, the prompts, the spec layer, the alarm matchers and the orchestrator read it and name
// no vendor. A new vendor is one folder under drivers/ and one line in VENDORS.
import { ConfigError } from "@capsync/protocol";
import { CONNECTION_LOST } from "../triggers/ovoc-alarm.js";
import type { Matcher } from "../triggers/matcher.js";
import { checkCaptureSpec, type SpecCheck } from "./capture-spec.js";
import type { CaptureSpec, DriverFactory } from "./driver.js";
import type { DeviceTypeModule, VendorConfigKey, VendorModule } from "./vendor.js";
import { audiocodes } from "./audiocodes/index.js";
import { iosxe } from "./iosxe/index.js";

/** In the order config messages and prompts list the types. */
const VENDORS = [audiocodes, iosxe] as const satisfies readonly VendorModule[];

type Vendor = (typeof VENDORS)[number];
/** Each registered device type's module, with its literal name and plan types. */
export type DeviceTypeEntry = Vendor["types"][number];
export type DeviceType = DeviceTypeEntry["name"];

/** Every device type, e.g. ["msbr", "gwsbc", "iosxe"]. */
export const DEVICE_TYPES: readonly [DeviceType, ...DeviceType[]] = unique(
  "device type",
  VENDORS.flatMap((v) => v.types.map((t) => t.name)),
) as [DeviceType, ...DeviceType[]];

const TYPES = new Map<string, DeviceTypeEntry>(VENDORS.flatMap((v) => v.types.map((t) => [t.name, t] as const)));

export function isDeviceType(name: unknown): name is DeviceType {
  return typeof name === "string" && TYPES.has(name);
}

/** The module of a device type; ConfigError for a name no vendor registers. */
export function deviceType<T extends DeviceType>(name: T): Extract<DeviceTypeEntry, { name: T }>;
export function deviceType(name: string): DeviceTypeModule;
export function deviceType(name: string): DeviceTypeModule {
  const t = TYPES.get(name);
  if (!t) throw new ConfigError(`no capture driver for device type ${JSON.stringify(name)}`);
  return t;
}

/** The driver factory per device type (the orchestrator's default drivers). */
export const drivers: Readonly<Record<DeviceType, DriverFactory>> = (() => {
  const all = {} as Record<DeviceType, DriverFactory>;
  for (const t of DEVICE_TYPES) all[t] = deviceType(t).driver;
  return all;
})();

/** The factory for a configured device type; ConfigError for an unregistered one. */
export function driverFor(type: DeviceType): DriverFactory {
  return deviceType(type).driver;
}

/** The interface check of checkCaptureSpec for a device type, with the type's own capabilities. */
export function checkCaptureSpecFor(type: DeviceType, spec: CaptureSpec): SpecCheck {
  return checkCaptureSpec(type, spec, deviceType(type).capabilities);
}

// ---------------------------------------------------------------------------------------------
// Vendor-only device keys

type ConfigKeysOf<V> = V extends { configKeys: infer K } ? K : never;
type AllConfigKeys = ConfigKeysOf<Vendor>;
type KeyNames = AllConfigKeys extends infer K ? (K extends unknown ? keyof K & string : never) : never;
type ValuesOf<N extends string> = AllConfigKeys extends infer K ? (K extends Record<N, { values: readonly (infer X)[] }> ? X : never) : never;
/** The vendor-only keys a device config may carry, typed by their values. */
export type VendorOptions = { [N in KeyNames]?: ValuesOf<N> };

/** Every vendor-only key, with the device types that take it, in registry order. */
export const VENDOR_CONFIG_KEYS: ReadonlyMap<string, { key: VendorConfigKey; types: readonly DeviceType[] }> = (() => {
  const keys = new Map<string, { key: VendorConfigKey; types: DeviceType[] }>();
  for (const v of VENDORS) {
    for (const [name, key] of Object.entries(v.configKeys as Readonly<Record<string, VendorConfigKey>>)) {
      if (keys.has(name)) throw new Error(`device key ${JSON.stringify(name)} is registered twice`);
      keys.set(name, { key, types: v.types.map((t) => t.name) });
    }
  }
  return keys;
})();

/** The vendor-only keys `source` sets, for the driver options. */
export function vendorOptions(source: Readonly<Record<string, unknown>>): VendorOptions {
  return Object.fromEntries([...VENDOR_CONFIG_KEYS.keys()].filter((k) => source[k] !== undefined).map((k) => [k, source[k]])) as VendorOptions;
}

// ---------------------------------------------------------------------------------------------
// Built-in stop alarms

type AlarmNamesOf<V> = V extends { alarms: infer A } ? keyof A & string : never;
export type BuiltinAlarmName = typeof CONNECTION_LOST_NAME | AlarmNamesOf<Vendor>;
const CONNECTION_LOST_NAME = "connection-lost";

/** By name: the vendor-neutral ones (OVOC's connection-lost), then each vendor's, in registry order. */
export const BUILTIN_ALARMS: ReadonlyMap<BuiltinAlarmName, Matcher> = (() => {
  const all = new Map<BuiltinAlarmName, Matcher>([[CONNECTION_LOST_NAME, CONNECTION_LOST]]);
  for (const v of VENDORS) {
    for (const [name, m] of Object.entries(v.alarms as Readonly<Record<string, Matcher>>)) {
      if (all.has(name as BuiltinAlarmName)) throw new Error(`alarm matcher ${JSON.stringify(name)} is registered twice`);
      if (m.name !== name) throw new Error(`alarm matcher ${JSON.stringify(name)} calls itself ${JSON.stringify(m.name)}`);
      all.set(name as BuiltinAlarmName, m);
    }
  }
  return all;
})();

/** The built-in alarm names, e.g. ["connection-lost", "iosxe-link-down", "iosxe-lineproto-down"]. */
export const BUILTIN_ALARM_NAMES: readonly [BuiltinAlarmName, ...BuiltinAlarmName[]] = [...BUILTIN_ALARMS.keys()] as [BuiltinAlarmName, ...BuiltinAlarmName[]];

function unique<T extends string>(what: string, names: T[]): T[] {
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new Error(`${what} ${JSON.stringify(dup)} is registered twice`);
  return names;
}

export type { CaptureDriver, CaptureHandle, CaptureSpec, DeviceFacts, DriverCapabilities, DriverFactory, DriverOptions, DriverTask, LocalFile, RemoteFile } from "./driver.js";
export { cpeCaptureFileName } from "./driver.js";
