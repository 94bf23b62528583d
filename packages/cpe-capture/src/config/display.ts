// What `cpe-capture validate` prints: the normalised config in the file's own shape (every
// default filled in, paths absolute, durations canonical), passwords as `***`.

import { formatDuration, formatEndpoint } from "@capsync/protocol";
import { stringify } from "yaml";
import { displayNotify } from "../notify/config.js";
import { displayStorage } from "../storage/config.js";
import { displaySecretRef, type DisplaySecret, type TlsConfig } from "./credentials.js";
import { displayFlow } from "./flow.js";
import type { RunConfig } from "./run-config.js";
import type { StopAlarm } from "./stop.js";
import { displayVerify } from "./verify.js";

/** Plain JSON data; loading it again gives the same RunConfig (plain passwords aside). */
export interface DisplayConfig {
  output: string;
  concurrency: number;
  retries: number;
  verify: ReturnType<typeof displayVerify>;
  timeouts: { rest: string; sftp: string; agent: string };
  agents: { keyFile?: string; legacy: boolean; sshKeyFile?: string; sftpPort: number; answerPort: number };
  syslog: { listen: string; tcp: boolean; sharePortWithAgents: boolean };
  stop: { alarms: (string | { pattern: string; flags?: string })[]; maxEventsPerDevice: number; duration: string; deviceRetry: string };
  devices: {
    /** Left out when it is just the address. */
    name?: string;
    address: string;
    type: string;
    interfaces: string[];
    username: string;
    password: DisplaySecret;
    tls: "verify" | "insecure" | { ca: string };
    restPort: number;
    sshPort: number;
    agents: string[];
    duration: string;
  }[];
  flow?: ReturnType<typeof displayFlow>;
  storage?: Record<string, unknown>;
  notify?: Record<string, unknown>;
}

/**
 * The config as `validate` shows it. References are shown as written (a variable or file name
 * is not the secret); plain-text passwords become `***`.
 */
export function normalisedForDisplay(config: RunConfig): DisplayConfig {
  const a = config.agents;
  return {
    output: config.output,
    concurrency: config.concurrency,
    retries: config.retries,
    verify: displayVerify(config.verify, config.verifyProbes),
    timeouts: {
      rest: formatDuration(config.timeouts.restMs),
      sftp: formatDuration(config.timeouts.sftpMs),
      agent: formatDuration(config.timeouts.agentMs),
    },
    agents: {
      ...(a.keyFile === undefined ? {} : { keyFile: a.keyFile }),
      legacy: a.legacy,
      ...(a.sshKeyFile === undefined ? {} : { sshKeyFile: a.sshKeyFile }),
      sftpPort: a.sftpPort,
      answerPort: a.answerPort,
    },
    syslog: {
      listen: formatEndpoint(config.syslog.listen.host, config.syslog.listen.port),
      tcp: config.syslog.tcp,
      sharePortWithAgents: config.syslog.sharePortWithAgents,
    },
    stop: {
      alarms: config.stop.alarms.map(displayAlarm),
      maxEventsPerDevice: config.stop.maxEventsPerDevice,
      duration: durationOrNone(config.stop.durationMs),
      deviceRetry: formatDuration(config.stop.deviceRetryMs),
    },
    devices: config.devices.map((d) => ({
      ...(d.name === d.address ? {} : { name: d.name }),
      address: d.address,
      type: d.type,
      interfaces: [...d.interfaces],
      username: d.username,
      password: displaySecretRef(d.password),
      tls: displayTls(d.tls),
      restPort: d.restPort,
      sshPort: d.sshPort,
      agents: d.agents.map((e) => formatEndpoint(e.host, e.port)),
      duration: durationOrNone(d.durationMs),
    })),
    ...(config.flow ? { flow: displayFlow(config.flow) } : {}),
    ...(config.storage ? { storage: displayStorage(config.storage, formatDuration) } : {}),
    ...(config.notify ? { notify: displayNotify(config.notify, formatDuration) } : {}),
  };
}

/** `validate`'s output: YAML for people, JSON for `--json`. */
export function formatForDisplay(config: RunConfig, format: "yaml" | "json" = "yaml"): string {
  const data = normalisedForDisplay(config);
  return format === "json" ? `${JSON.stringify(data, null, 2)}\n` : stringify(data, { lineWidth: 0 });
}

/** A capture duration as the config takes it back: "24h", or "none" for no limit (until the alarm). */
function durationOrNone(ms: number | undefined): string {
  return ms === undefined ? "none" : formatDuration(ms);
}

function displayTls(t: TlsConfig): DisplayConfig["devices"][number]["tls"] {
  return t.mode === "ca" ? { ca: t.ca } : t.mode;
}

function displayAlarm(a: StopAlarm): DisplayConfig["stop"]["alarms"][number] {
  if (a.kind === "builtin") return a.name;
  return a.flags === "" ? { pattern: a.pattern } : { pattern: a.pattern, flags: a.flags };
}
