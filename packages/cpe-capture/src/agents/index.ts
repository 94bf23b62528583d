// The orchestrator's client for server-capture agents (UDP, packages/protocol wire formats).
export * from "./client.js";
export * from "./refusal.js";
