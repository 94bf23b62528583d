// What the agent (server-capture) and the orchestrator (cpe-capture) share besides the wire format:
// the log, the HTTPS client settings and trust type, secret files (the v1 key), the VERIFY probes.
export * from "./log.js";
export * from "./clock.js";
export * from "./https-client.js";
export * from "./secret-file.js";
export * from "./keyfile.js";
export * from "./verify.js";
export * from "./icmp.js";
export * from "./snmpv3.js";
export * from "./devices-info.js";
export * from "./verify-details.js";
export * from "./file-hash.js";
