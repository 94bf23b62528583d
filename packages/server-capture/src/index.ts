export { Agent, type AgentOptions } from "./agent.js";
export { DEFAULT_MAX_DURATION_MS, DEFAULT_RING_FILES, DEFAULT_RING_SIZE_MB } from "./limits.js";

export { noopRegistrar, type Registrar } from "./registrar.js";
export { finalName, tempName } from "./naming.js";
export { TcpdumpProcess, tcpdumpArgs, isValidInterface } from "./tcpdump.js";
export { startAgentSftp, isServedName, DEFAULT_SFTP_PORT, type AgentSftp, type AgentSftpOptions } from "./sftp.js";
export {
  loadAuthorizedKeys,
  parseAuthorizedKeys,
  loadHostKey,
  loadOrCreateHostKey,
  fingerprint,
  SftpSetupError,
  HOST_KEY_FILE,
  type AuthorizedKey,
  type HostKey,
} from "./sftp-keys.js";
export {
  OvocRegistrar,
  OvocCredentialsError,
  loadOvocCredentials,
  ovocCredentialsFromEnv,
  parseOvocUrl,
  ruleName as ovocRuleName,
  OVOC_ALARM_NAME,
  type OvocRegistrarOptions,
  type OvocCredentials,
} from "./ovoc-registrar.js";
