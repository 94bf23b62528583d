// Run configs the fault tests write for emulated AudioCodes MSBRs: the device entries every such
// test repeats, and the one header the disk-full tests share.

export interface MsbrEntry {
  address: string;
  restPort: number;
  sshPort: number;
}

/** The `devices:` block: eth-wan, Basic auth from `passwordEnv`, the emulator's self-signed TLS; `agents` per device when given. */
export function msbrDevicesYaml(devices: readonly MsbrEntry[], o: { passwordEnv: string; agents?: readonly string[] }): string {
  const entries = devices.map(
    (d) => `  - address: ${d.address}
    type: msbr
    interfaces: [eth-wan]
    username: Admin
    password: { env: ${o.passwordEnv} }
    tls: insecure
    restPort: ${d.restPort}
    sshPort: ${d.sshPort}${o.agents ? `\n    agents: [${o.agents.join(", ")}]` : ""}`,
  );
  return `devices:\n${entries.join("\n")}\n`;
}

/** A run out of disk space: short timeouts, one retry, no VERIFY, a minute for the device side to be collected once space returns. */
export function diskFaultRunYaml(o: { output: string; syslogPort: number; passwordEnv: string; devices: readonly MsbrEntry[] }): string {
  return `output: ${o.output}
timeouts: { rest: 3s, sftp: 10s, agent: 4s }
retries: 1
verify: false
syslog: { listen: 127.0.0.1:${o.syslogPort} }
stop: { deviceRetry: 60s }
${msbrDevicesYaml(o.devices, { passwordEnv: o.passwordEnv })}`;
}
