// An agent's refusal in words for the operator: which clock is off and by how much (stale), whose
// capture it is (owned-by), else the code, reason and message as the agent sent them.
import { describeSkew } from "@capsync/protocol";
import type { AgentAnswer } from "./types.js";

/** The agent's clock minus this host's: measured here when we can, else the agent's own figure. */
export function answerSkewMs(a: Pick<AgentAnswer, "skew" | "details">): number | undefined {
  if (a.skew) return a.skew.skewMs;
  const n = Number(a.details.skew_ms);
  return a.details.skew_ms !== undefined && Number.isFinite(n) ? n : undefined;
}

/** e.g. "agent 127.0.0.1:5555 refused CAPTURE: stale — its clock is 95.2 s ahead of this host's". */
export function refusalText(a: Pick<AgentAnswer, "agent" | "verb" | "device" | "code" | "details" | "skew">, prefix = ""): string {
  const d = a.details;
  if (d.reason === "stale") {
    const skew = answerSkewMs(a);
    const how = skew === undefined ? "the two clocks differ by more than its window" : describeSkew(skew, "its", "this host's");
    return `agent ${a.agent} refused ${a.verb}: stale — ${how}; set the clock that is wrong right (NTP)`;
  }
  if (d.reason === "owned-by") {
    return `agent ${a.agent} refused ${a.verb}: ${a.device ?? "the device"} is being captured there by another orchestrator (key ${d.key ?? "?"} from ${d.owner ?? "?"}, since ${d.since ?? "?"}); only it can stop that capture`;
  }
  return `${prefix}${a.code} ${d.reason ?? ""} ${d.msg ?? ""}`.trim();
}
