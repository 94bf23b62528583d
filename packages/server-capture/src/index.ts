export { Agent, type AgentOptions } from "./agent.js";

export { noopRegistrar, type Registrar } from "./registrar.js";
export { finalName, tempName } from "./naming.js";
export { TcpdumpProcess, tcpdumpArgs, isValidInterface } from "./tcpdump.js";
export {
  startAgentSftp,
  loadAuthorizedKeys,
  parseAuthorizedKeys,
  loadHostKey,
  loadOrCreateHostKey,
  isServedName,
  fingerprint,
  SftpSetupError,
  DEFAULT_SFTP_PORT,
  HOST_KEY_FILE,
  type AgentSftp,
  type AgentSftpOptions,
  type AuthorizedKey,
  type HostKey,
} from "./sftp.js";
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
