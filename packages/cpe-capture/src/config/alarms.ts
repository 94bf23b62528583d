// The alarm matchers a config may name in stop.alarms: the generic ones and the vendors' own.
import { DEVICE_ALARMS } from "./devices.js";

/** Alarm matchers the triggers package provides by name. */
export const BUILTIN_ALARMS = ["connection-lost", ...DEVICE_ALARMS] as const;
export type BuiltinAlarm = (typeof BUILTIN_ALARMS)[number];
