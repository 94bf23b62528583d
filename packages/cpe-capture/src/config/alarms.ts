// The alarm matchers a config may name in stop.alarms: the registry's built-ins (drivers/index.ts).
export { BUILTIN_ALARM_NAMES as BUILTIN_ALARMS, type BuiltinAlarmName as BuiltinAlarm } from "../drivers/index.js";
