// The two framings on the agent socket, as this client uses them: checking a request against the
// mode (legacy has no ids, no spec and fewer verbs), building its datagram, telling a v1 answer
// from anything else, and the one spelling of an address that answers are matched on.
import { SocketAddress, isIP } from "node:net";
import { performance } from "node:perf_hooks";
import { AgentError, type Verb, V1_TAG, filenameProblem, formatLegacyRequest, formatRequest, isDeviceAddress, isLegacyVerb, isVerb } from "@capsync/protocol";
import type { AgentMode, AgentRequest } from "./types.js";

/** AgentError 'agent-bad-request' for a request the agent would refuse (or the mode cannot express). */
export function checkRequest(mode: AgentMode, agent: string, req: AgentRequest): void {
  const bad = (why: string) => new AgentError("agent-bad-request", `${req.verb ?? "request"} to agent ${agent}: ${why}`);
  if (!isVerb(req.verb)) throw bad(`unknown verb '${String(req.verb).slice(0, 20)}'`);
  const needsDevice = req.verb !== "STATUS" && req.verb !== "PING";
  if (mode === "legacy" && !isLegacyVerb(req.verb)) throw bad(`${req.verb} is not part of the legacy protocol`);
  if (needsDevice) {
    if (req.device === undefined) throw bad("needs a device address");
    if (!isDeviceAddress(req.device)) throw bad(`device '${req.device.slice(0, 60)}' is not an IPv4/IPv6 literal`);
  } else if (req.device !== undefined) throw bad("takes no device");
  if (req.verb === "STOP") {
    const problem = req.filename === undefined ? "is missing" : filenameProblem(req.filename);
    if (problem) throw bad(`file name ${problem}`);
  } else if (req.filename !== undefined) throw bad("only STOP takes a file name");
  if (req.spec !== undefined) {
    if (req.verb !== "CAPTURE") throw bad("only CAPTURE takes a spec");
    if (mode === "legacy") throw bad("a capture spec cannot be expressed in the legacy protocol (it always captures 'host <device>')");
    if (!/^[A-Za-z0-9_-]{1,1000}$/.test(req.spec)) throw bad("spec must be 1..1000 base64url characters");
  }
}

/** The datagram, with its v1 timestamp taken now (`key` unused in legacy mode). */
export function stampRequest(mode: AgentMode, key: Uint8Array | undefined, id: string, req: AgentRequest): { datagram: Buffer; at: number } {
  const at = performance.now();
  try {
    if (mode === "legacy") {
      return { datagram: formatLegacyRequest({ verb: req.verb as "CAPTURE", device: req.device!, filename: req.filename }), at };
    }
    const datagram = formatRequest({ id, ts: Date.now(), verb: req.verb, device: req.device, filename: req.filename, spec: req.spec }, key!);
    return { datagram, at };
  } catch (e) {
    throw new AgentError("agent-bad-request", `${describe(req.verb, req.device ?? null)}: ${(e as Error).message}`, { cause: e });
  }
}

/** Starts with the v1 tag and a space: a v1 answer (authentic or not), never syslog or legacy. */
export function isV1Datagram(buf: Buffer): boolean {
  return buf.length >= V1_TAG.length + 1 && buf.toString("latin1", 0, V1_TAG.length + 1) === `${V1_TAG} `;
}

export function describe(verb: Verb, device: string | null): string {
  return device === null ? verb : `${verb} for ${device}`;
}

/** One spelling per address, so answers match requests however the config wrote the address. */
export function canonicalAddress(address: string): string {
  if (isIP(address) !== 6) return address;
  try {
    return new SocketAddress({ address, family: "ipv6" }).address;
  } catch {
    return address.toLowerCase();
  }
}
