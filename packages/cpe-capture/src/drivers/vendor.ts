// The shape of a vendor module (drivers/<vendor>/index.ts, checked with `satisfies VendorModule`):
// everything capsync knows about one vendor's devices, as data the registry (drivers/index.ts)
// collects for config validation, prompts, the spec layer, the alarm matchers and the orchestrator.
import type { SpecCompiler } from "../spec/compile.js";
import type { Matcher } from "../triggers/matcher.js";
import type { DriverCapabilities, DriverFactory } from "./driver.js";
import type { HopClientFactory } from "./hop.js";

/** How a device type names its capture interfaces, and what the config says about a wrong one. */
export type InterfaceRules =
  | {
      /** A fixed set of capture points. */
      kind: "list";
      /** In the order prompts show them. */
      allowed: readonly string[];
      /** Captured when the config names none; [] when the config must name them. */
      defaults: readonly string[];
      /** Several interfaces in one capture. */
      multiple: boolean;
      /** The config's message for another name reads `expected <expected>, got 'x'`. */
      expected: string;
    }
  | {
      /** Free-form names the device checks (the compiler may check their form). */
      kind: "names";
      /** The form of one name as the config and the prompts accept it. */
      pattern: RegExp;
      /** @example "GigabitEthernet1" */
      example: string;
      /** The config's message for a name of another form reads `expected <expected>, got 'x'`. */
      expected: string;
    };

export type NameRules = Extract<InterfaceRules, { kind: "names" }>;

/** The widest form of a free-form interface name capsync takes: safe in CLI lines, file names and logs. */
export const INTERFACE_NAME = /^[A-Za-z][A-Za-z0-9/.:-]{0,63}$/;

/** Whether `name` is one of a type's capture interfaces (or has the form of one). */
export function acceptsInterface(rules: InterfaceRules, name: string): boolean {
  return rules.kind === "list" ? rules.allowed.includes(name) : rules.pattern.test(name);
}

/** How `cpe-capture interactive` asks for a device's interfaces. */
export type InterfacePrompt =
  /** A checkbox over the type's `allowed` list. */
  | { kind: "choose"; message: string }
  /** No question: the type's `defaults`, with this note printed instead. */
  | { kind: "fixed"; note: string }
  /** A text answer: names separated by commas or blanks, checked against the type's `pattern`. */
  | { kind: "type"; message: string };

/** One device type of a vendor. */
export interface DeviceTypeModule<Name extends string = string, Key extends string = string, Plan = unknown> {
  /** The config's `type:` value; unique across all vendors. */
  readonly name: Name;
  /** Vendor and kind of device, shown beside the name when the prompts ask for a type, e.g. "Example Networks edge router". */
  readonly label: string;
  readonly interfaces: InterfaceRules;
  /** What the type's driver can do with its default settings (the driver reports its own). */
  readonly capabilities: DriverCapabilities;
  readonly compiler: SpecCompiler<Key, Plan>;
  readonly prompt: { readonly interfaces: InterfacePrompt };
  readonly driver: DriverFactory;
  /** How `cpe-capture trace` asks this type which way a flow goes; absent: trace cannot pass it. */
  readonly hop?: HopClientFactory;
}

/** A device key only this vendor's types take, e.g. a choice of transport. */
export interface VendorConfigKey {
  /** The values the config accepts. */
  readonly values: readonly [string, ...string[]];
  readonly default: string;
  /** The config's message when another type sets it ends `(<type> <refusal>)`, e.g. "has one transport". */
  readonly refusal: string;
}

export interface VendorModule {
  /** The folder name under drivers/. */
  readonly vendor: string;
  readonly types: readonly DeviceTypeModule[];
  /** Device keys of these types beyond the common ones, by key. */
  readonly configKeys: Readonly<Record<string, VendorConfigKey>>;
  /** Built-in stop alarms about these devices, by the name `stop.alarms` lists (equal to the matcher's name). */
  readonly alarms: Readonly<Record<string, Matcher>>;
}
