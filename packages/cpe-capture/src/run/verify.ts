// VERIFY on an alarm, before the stop: the same bounded test traffic as the original's (ICMP echo,
// SNMPv3 authPriv GETs when credentials are configured, TCP/443, and an SNMPv2c GET to the
// device's own address) from every capturing agent and from here, so both captures show whether
// the path still carries it. The results go into the device's record (manifest.json).
import { verifyFromDetails, verifyPath, type VerifyOptions, type VerifyResult } from "@capsync/common";
import type { AgentClient } from "../agents/index.js";
import type { RunRecorder } from "./recorder.js";
import type { DeviceRun } from "./device-run.js";

/** How long the stop waits for VERIFY's probes to be on the wire before STOP leaves. */
export const VERIFY_WINDOW_MS = 250;

export type VerifyProbes = Pick<VerifyOptions, "icmp" | "snmpv3" | "snmpv3Port">;

/** Bounded: 3 tries of 500 ms on each side (ICMP: its count and timeout, 3 × 1 s by default). */
export async function verifyDevice(run: DeviceRun, client: AgentClient | undefined, recorder: RunRecorder, probes: VerifyProbes = {}): Promise<void> {
  const { rec } = run;
  recorder.setState(run, "stopping", `verifying the path (VERIFY, ${VERIFY_WINDOW_MS} ms before STOP)`);
  const agents = run.cfg.agents
    .map((ep, i) => ({ ep, side: rec.agents[i]! }))
    .filter(({ side }) => side.capture === "capturing")
    .map(async ({ ep, side }) => {
      try {
        const a = await client!.request(ep, { verb: "VERIFY", device: rec.device }, { deadlineMs: 2000, tryingDeadlineMs: 6000 });
        recorder.agentAnswer(rec, side, a);
        return { agent: side.agent, code: a.code, details: a.details, ...verifyFromDetails(a.details) };
      } catch (e) {
        return { agent: side.agent, code: 0, details: { error: recorder.redact((e as Error).message) } };
      }
    });
  const failed: VerifyResult = { ok: false, tcpTries: 0, tcpAnswered: 0, tcpTimeouts: 0, udpSent: 0, udpAnswers: 0 };
  const local = verifyPath(rec.device, { tries: 3, timeoutMs: 500, ...probes }).catch(() => failed);
  const [agentResults, mine] = await Promise.all([Promise.all(agents), local]);
  // Errors are library texts; redacted all the same, so no key can reach the manifest through one.
  if (mine.snmpv3?.error) mine.snmpv3.error = recorder.redact(mine.snmpv3.error);
  rec.verify = {
    at: new Date().toISOString(),
    agents: agentResults,
    orchestrator: {
      ok: mine.ok,
      tcp: `${mine.tcpAnswered}/${mine.tcpTries}`,
      snmp: `${mine.udpAnswers}/${mine.udpSent}`,
      ...(mine.icmp ? { icmp: mine.icmp } : {}),
      ...(mine.snmpv3 ? { snmpv3: mine.snmpv3 } : {}),
    },
  };
  recorder.event(rec, "run", "verify", mine.ok ? "ok" : "failed", `orchestrator ${summary(mine)}; ${agentResults.map((a) => `${a.agent} ${a.code}`).join(", ")}`);
}

/** One line for the event log: "icmp 3/3 snmpv3 2/2 tcp 3/3 snmp 3/3", failures with their reason. */
export function summary(r: VerifyResult): string {
  const parts: string[] = [];
  if (r.icmp) parts.push(`icmp ${r.icmp.received}/${r.icmp.sent}${r.icmp.error ? ` (${r.icmp.error})` : ""}`);
  if (r.snmpv3) parts.push(`snmpv3 ${r.snmpv3.answered}/${r.snmpv3.sent}${r.snmpv3.error ? ` (${r.snmpv3.error})` : ""}`);
  parts.push(`tcp ${r.tcpAnswered}/${r.tcpTries}`, `snmp ${r.udpAnswers}/${r.udpSent}`);
  return parts.join(" ");
}
