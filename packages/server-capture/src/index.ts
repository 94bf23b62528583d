export { Agent, type AgentOptions } from "./agent.js";

export { noopRegistrar, type Registrar } from "./registrar.js";
export { finalName, tempName } from "./naming.js";
export { TcpdumpProcess, tcpdumpArgs, isValidInterface } from "./tcpdump.js";
