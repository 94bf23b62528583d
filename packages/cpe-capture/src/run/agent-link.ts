// The run's link to its agents: the UDP client (opened only when some device or flow hop has
// agents, or the syslog port is shared with them), the SSH key for their SFTP, and one pooled SSH
// connection per agent for the downloads.
import { readFileSync } from "node:fs";
import type { Logger } from "@capsync/common";
import { keyId } from "@capsync/protocol";
import { AgentClient } from "../agents/index.js";
import type { RunConfig } from "../config/schema.js";
import { AgentSftpPool } from "../artifacts/collect.js";
import type { SyslogIntake } from "./syslog-intake.js";

export class AgentLink {
  client?: AgentClient;
  sshKey?: Buffer;
  /** One SSH connection per agent for its files, shared while downloads are under way. */
  readonly sftp = new AgentSftpPool();

  constructor(private readonly config: RunConfig) {}

  /** Read agents.sshKeyFile (first thing a run does: a bad key fails it before any socket binds). */
  loadSshKey(): void {
    const file = this.config.agents.sshKeyFile;
    if (file) this.sshKey = readFileSync(file);
  }

  async open(agentKey: Buffer | undefined, log: Logger, syslog: SyslogIntake): Promise<void> {
    const c = this.config;
    const share = c.syslog.sharePortWithAgents;
    // No device with agents: no agent socket (and no key) needed.
    const anyAgents = c.devices.some((d) => d.agents.length > 0) || Boolean(c.flow?.path.some((h) => h.kind === "server"));
    if (!anyAgents && !share) return;
    this.client = await AgentClient.open({
      mode: c.agents.legacy ? "legacy" : "v1",
      ...(agentKey ? { key: agentKey } : {}),
      ...(share ? { bind: { address: c.syslog.listen.host, port: c.syslog.listen.port } } : c.agents.answerPort ? { bind: { port: c.agents.answerPort } } : {}),
      onForeignDatagram: (buf, rinfo) => syslog.agentSocketDatagram(buf, rinfo),
      timing: { CAPTURE: { deadlineMs: c.timeouts.agentMs }, REGISTER: { deadlineMs: c.timeouts.agentMs } },
      log,
    });
    // Agents name a capture's owner by key id (409 owned-by): this run's, to tell them apart.
    if (agentKey) log.info(`agent key id ${keyId(agentKey)}`);
  }

  close(): void {
    this.client?.close();
    this.sftp.close();
  }
}
