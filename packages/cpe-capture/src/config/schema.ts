// The run config's public names, for code outside config/. Nothing inside config/ imports this
// file: each name lives in the module of its job (issues, fields, addresses, credentials, alarms,
// stop, devices, run-config, check).
export { BUILTIN_ALARMS, type BuiltinAlarm } from "./alarms.js";
export { DEFAULT_AGENT_PORT, hostKey, parseEndpoint, parseHost, type AgentEndpoint, type HostKind, type ListenAddress } from "./addresses.js";
export { checkConfig, type CheckOptions, type CheckResult } from "./check.js";
export { type SecretRef, type TlsConfig } from "./credentials.js";
export { DEVICE_TYPES, type DeviceType } from "./devices.js";
export { describeValue, formatPath, isPlainObject, suggest, type PathIssue } from "./issues.js";
export { DEFAULTS, type DeviceConfig, type RunConfig } from "./run-config.js";
export { checkAlarmPattern, type StopAlarm } from "./stop.js";
