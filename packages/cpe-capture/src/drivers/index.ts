// THE registry of vendor modules: the one list of device types and of built-in stop alarms. Config
// validation, the prompts, the spec layer, the alarm matchers and the orchestrator read it and name
// no vendor. A new vendor is one folder under drivers/ and one line in VENDORS.
import { ConfigError } from "@capsync/protocol";
import { CONNECTION_LOST } from "../triggers/ovoc-alarm.js";
import type { Matcher } from "../triggers/matcher.js";
import { checkCaptureSpec, type SpecCheck } from "./capture-spec.js";
import type { CaptureSpec, DriverFactory } from "./driver.js";
import type { HopClientFactory } from "./hop.js";
import type { DeviceTypeModule, VendorConfigKey, VendorModule } from "./vendor.js";
import { audiocodes } from "./audiocodes/index.js";
import { iosxe } from "./iosxe/index.js";
import { nxos } from "./nxos/index.js";

/** In the order config messages and prompts list the types. */
const VENDORS = [audiocodes, iosxe, nxos] as const satisfies readonly VendorModule[];

type Vendor = (typeof VENDORS)[number];
/** Each registered device type's module, with its literal name and plan types. */
export type DeviceTypeEntry = Vendor["types"][number];
export type DeviceType = DeviceTypeEntry["name"];

/**
 * Refuses a registry that would be ambiguous: a device type, vendor-only key or built-in alarm
 * registered twice, an alarm under another matcher's name, an interface prompt that cannot ask
 * for the type's interfaces. Runs once when this module loads.
 */
export function checkVendors(vendors: readonly VendorModule[], neutralAlarms: Readonly<Record<string, Matcher>> = {}): void {
  const seen = (what: string) => {
    const names = new Set<string>();
    return (name: string) => {
      if (names.has(name)) throw new Error(`${what} ${JSON.stringify(name)} is registered twice`);
      names.add(name);
    };
  };
  const type = seen("device type");
  const key = seen("device key");
  const alarm = seen("alarm matcher");
  for (const [name, m] of Object.entries(neutralAlarms)) {
    alarm(name);
    if (m.name !== name) throw new Error(`alarm matcher ${JSON.stringify(name)} calls itself ${JSON.stringify(m.name)}`);
  }
  for (const v of vendors) {
    for (const t of v.types) {
      type(t.name);
      const fits = t.prompt.interfaces.kind === "type" ? t.interfaces.kind === "names" : t.interfaces.kind === "list";
      if (!fits) throw new Error(`device type ${t.name}: a ${t.prompt.interfaces.kind} prompt cannot ask for ${t.interfaces.kind} interfaces`);
    }
    for (const k of Object.keys(v.configKeys)) key(k);
    for (const [name, m] of Object.entries(v.alarms)) {
      alarm(name);
      if (m.name !== name) throw new Error(`alarm matcher ${JSON.stringify(name)} calls itself ${JSON.stringify(m.name)}`);
    }
  }
}

/** Alarms of no vendor: OVOC's connection-lost is the management server's (see triggers/ovoc-alarm.ts). */
const NEUTRAL_ALARMS = { "connection-lost": CONNECTION_LOST };

checkVendors(VENDORS, NEUTRAL_ALARMS);

/** Every device type, in registry order. */
export const DEVICE_TYPES = VENDORS.flatMap((v) => v.types.map((t) => t.name)) as readonly DeviceType[] as readonly [DeviceType, ...DeviceType[]];

const TYPES = new Map<string, DeviceTypeEntry>(VENDORS.flatMap((v) => v.types.map((t) => [t.name, t] as const)));

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

/** The device types `cpe-capture trace` can ask about a flow (those with a hop client), in registry order. */
export const HOP_TYPES: readonly string[] = VENDORS.flatMap((v) => v.types.filter((t) => (t as DeviceTypeModule).hop !== undefined).map((t) => t.name));

/** The hop client factory of a device type; ConfigError for an unknown type or one trace cannot ask. */
export function hopClientFor(type: string): HopClientFactory {
  const hop = deviceType(type).hop;
  if (!hop) throw new ConfigError(`device type ${JSON.stringify(type)} cannot answer a path trace (types that can: ${HOP_TYPES.join(", ")})`);
  return hop;
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
export const VENDOR_CONFIG_KEYS: ReadonlyMap<string, { key: VendorConfigKey; types: readonly DeviceType[] }> = new Map(
  VENDORS.flatMap((v) => Object.entries(v.configKeys as Readonly<Record<string, VendorConfigKey>>).map(([name, key]) => [name, { key, types: v.types.map((t) => t.name) }] as const)),
);

/** The vendor-only keys `source` sets, for the driver options. */
export function vendorOptions(source: Readonly<Record<string, unknown>>): VendorOptions {
  return Object.fromEntries([...VENDOR_CONFIG_KEYS.keys()].filter((k) => source[k] !== undefined).map((k) => [k, source[k]])) as VendorOptions;
}

// ---------------------------------------------------------------------------------------------
// Built-in stop alarms

type AlarmNamesOf<V> = V extends { alarms: infer A } ? keyof A & string : never;
export type BuiltinAlarmName = keyof typeof NEUTRAL_ALARMS | AlarmNamesOf<Vendor>;

/** By name: the vendor-neutral ones first, then each vendor's, in registry order. */
export const BUILTIN_ALARMS: ReadonlyMap<BuiltinAlarmName, Matcher> = new Map(
  [NEUTRAL_ALARMS, ...VENDORS.map((v) => v.alarms)].flatMap((alarms) => Object.entries(alarms as Readonly<Record<string, Matcher>>)) as [BuiltinAlarmName, Matcher][],
);

/** The built-in alarm names, in the order of BUILTIN_ALARMS. */
export const BUILTIN_ALARM_NAMES = [...BUILTIN_ALARMS.keys()] as readonly BuiltinAlarmName[] as readonly [BuiltinAlarmName, ...BuiltinAlarmName[]];
