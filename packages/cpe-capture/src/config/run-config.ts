// The validated run config: what the orchestrator receives (durations in milliseconds, `…Ms`;
// paths absolute), and the defaults of every optional setting.
import type { CaptureSpec } from "@capsync/protocol";
import type { NotifyConfig } from "../notify/config.js";
import type { StorageConfig } from "../storage/config.js";
import type { AgentEndpoint, ListenAddress } from "./addresses.js";
import type { SecretRef, TlsConfig } from "./credentials.js";
import type { DeviceOptions, DeviceType } from "./devices.js";
import type { FlowConfig } from "./flow.js";
import type { StopAlarm } from "./stop.js";
import type { VerifyProbesConfig } from "./verify.js";

export interface DeviceConfig extends DeviceOptions {
  /** Defaults to the address. */
  name: string;
  /** IPv4/IPv6 literal (no brackets, IPv6 lower-case) or host name (lower-case, no trailing dot). */
  address: string;
  type: DeviceType;
  /** Never empty: a type with one capture interface defaults to it (devices.ts); the others must list theirs. */
  interfaces: string[];
  username: string;
  password: SecretRef;
  tls: TlsConfig;
  restPort: number;
  sshPort: number;
  agents: AgentEndpoint[];
  /** The device's own `duration`, else stop.duration; undefined = no limit (until the alarm). */
  durationMs: number | undefined;
  /** What to capture: run-level `capture` merged with the device's, interfaces included; checked for the device and its agents. */
  spec: CaptureSpec;
  /** A hop of the run's `flow`: the device captures this `spec` (its own with the flow's filter and VRF); its agents keep `spec`. */
  flowHop?: { hop: number; spec: CaptureSpec };
}

export interface RunConfig {
  /** Absolute path of the file this came from; undefined for configs built from objects. */
  configFile: string | undefined;
  /** Absolute; one run folder is created under it. */
  output: string;
  /** How many devices are driven at once. */
  concurrency: number;
  /** Retries of REST, SFTP and agent requests after the first attempt. */
  retries: number;
  /** Run the VERIFY step (test traffic on both sides) after the captures start. */
  verify: boolean;
  /** VERIFY's ICMP and SNMPv3 settings (config/verify.ts); absent when `verify` is a plain boolean (ICMP defaults, no SNMPv3). */
  verifyProbes?: VerifyProbesConfig;
  timeouts: { restMs: number; sftpMs: number; agentMs: number };
  agents: {
    /** v1 pre-shared key file (absolute); set whenever devices list agents and legacy is false. */
    keyFile: string | undefined;
    legacy: boolean;
    sshKeyFile: string | undefined;
    sftpPort: number;
    /** Local UDP port for agent requests/answers; 0 = any free port; the syslog port when shared. */
    answerPort: number;
  };
  syslog: { listen: ListenAddress; tcp: boolean; sharePortWithAgents: boolean };
  /** deviceRetryMs: how long a device that is unreachable at stop time keeps being retried (stop + download). */
  /** durationMs undefined (the default, or `none`): no run-wide limit; the run waits for its alarms, a signal or `cpe-capture stop`. */
  stop: { alarms: StopAlarm[]; maxEventsPerDevice: number; durationMs: number | undefined; deviceRetryMs: number };
  devices: DeviceConfig[];
  /** One flow captured at every hop of a path of devices and agents (config/flow.ts); absent when not configured. */
  flow?: FlowConfig;
  /** Upload the run folder at the end (storage/); absent when not configured. */
  storage?: StorageConfig;
  /** Webhooks on run events (notify/); absent when not configured. */
  notify?: NotifyConfig;
}

export const DEFAULTS = {
  output: "./runs",
  concurrency: 64,
  retries: 3,
  verify: true,
  timeouts: { restMs: 10_000, sftpMs: 60_000, agentMs: 8_000 },
  sftpPort: 20022,
  syslogListen: { host: "0.0.0.0", port: 20514 },
  deviceRetryMs: 30 * 60_000,
  maxEventsPerDevice: 1,
  restPort: 443,
  sshPort: 22,
} as const;
