// A loopback lab for orchestrator tests: a real agent (tcpdump on lo + read-only SFTP), emulated
// AudioCodes devices on 127.0.0.x, and a config file generator for them.
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startAudioCodesDevice, generateSshKeyPair, type AudioCodesDevice, type AudioCodesType } from "@capsync/emulators";
import { startAgent, tempDir, writeKey, type AgentProc } from "./agent-proc.js";

export interface LabDevice {
  type: AudioCodesType;
  address: string;
  password: string;
  latencyMs?: number;
}

export interface Lab {
  work: string;
  agent: AgentProc;
  sftpPort: number;
  devices: AudioCodesDevice[];
  /** Write a run config for the lab; `extra` is appended YAML at the top level. */
  writeConfig(name: string, syslogPort: number, extra?: string): string;
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startLab(devs: LabDevice[]): Promise<Lab> {
  const work = tempDir("capsync-testlab-");
  writeKey(work);
  const pair = generateSshKeyPair("capsync-lab");
  writeFileSync(join(work, "id_ed25519"), pair.private);
  chmodSync(join(work, "id_ed25519"), 0o600);
  writeFileSync(join(work, "authorized_keys"), pair.public + "\n");
  const agent = await startAgent(["--key-file", join(work, "agent.key"), "--interface", "lo", "--sftp-listen", "127.0.0.1:0", "--authorized-keys", join(work, "authorized_keys")]);
  const devices = await Promise.all(
    devs.map((d) =>
      startAudioCodesDevice({ type: d.type, address: d.address, username: "Admin", password: d.password, latencyMs: d.latencyMs ?? 0, capture: { kind: "synthetic", packetsPerSecond: 100 } }),
    ),
  );
  const env = Object.fromEntries(devs.map((d, i) => [`LAB_PW_${i}`, d.password]));
  return {
    work,
    agent,
    sftpPort: agent.sftpPort!,
    devices,
    env,
    writeConfig(name, syslogPort, extra = "") {
      const yaml = `output: ./runs
timeouts: { rest: 3s, sftp: 10s, agent: 4s }
retries: 1
verify: false
agents: { keyFile: ./agent.key, sshKeyFile: ./id_ed25519, sftpPort: ${agent.sftpPort} }
syslog: { listen: 127.0.0.1:${syslogPort} }
${extra}
devices:
${devices
  .map(
    (d, i) => `  - address: ${d.address}
    type: ${d.type}
    interfaces: [${d.type === "msbr" ? "eth-wan" : "eth-lan"}]
    username: Admin
    password: { env: LAB_PW_${i} }
    tls: insecure
    restPort: ${d.restPort}
    sshPort: ${d.sshPort}
    agents: [127.0.0.1:${agent.port}]`,
  )
  .join("\n")}
`;
      const p = join(work, name);
      writeFileSync(p, yaml);
      return p;
    },
    async close() {
      await Promise.all(devices.map((d) => d.close()));
      await agent.stop();
    },
  };
}
