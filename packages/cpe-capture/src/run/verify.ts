// VERIFY on an alarm, before the stop: the same bounded test traffic (TCP/443 and SNMP to the
// device's own address) from every capturing agent and from here, so both captures show whether
// the path still carries it. The results go into the device's record.
import { verifyPath } from "@capsync/common";
import type { AgentClient } from "../agents/index.js";
import type { RunRecorder } from "./recorder.js";
import type { DeviceRun } from "./device-run.js";

/** How long the stop waits for VERIFY's probes to be on the wire before STOP leaves. */
export const VERIFY_WINDOW_MS = 250;

/** Bounded: 3 tries of 500 ms on each side. */
export async function verifyDevice(run: DeviceRun, client: AgentClient | undefined, recorder: RunRecorder): Promise<void> {
  const { rec } = run;
  recorder.setState(run, "stopping", `verifying the path (VERIFY, ${VERIFY_WINDOW_MS} ms before STOP)`);
  const agents = run.cfg.agents
    .map((ep, i) => ({ ep, side: rec.agents[i]! }))
    .filter(({ side }) => side.capture === "capturing")
    .map(async ({ ep, side }) => {
      try {
        const a = await client!.request(ep, { verb: "VERIFY", device: rec.device }, { deadlineMs: 2000, tryingDeadlineMs: 6000 });
        recorder.agentAnswer(rec, side, a);
        return { agent: side.agent, code: a.code, details: a.details };
      } catch (e) {
        return { agent: side.agent, code: 0, details: { error: (e as Error).message } };
      }
    });
  const local = verifyPath(rec.device, { tries: 3, timeoutMs: 500 }).catch(() => ({ ok: false, tcpTries: 0, tcpAnswered: 0, tcpTimeouts: 0, udpSent: 0, udpAnswers: 0 }));
  const [agentResults, mine] = await Promise.all([Promise.all(agents), local]);
  rec.verify = {
    at: new Date().toISOString(),
    agents: agentResults,
    orchestrator: { ok: mine.ok, tcp: `${mine.tcpAnswered}/${mine.tcpTries}`, snmp: `${mine.udpAnswers}/${mine.udpSent}` },
  };
  recorder.event(rec, "run", "verify", mine.ok ? "ok" : "failed", `orchestrator tcp ${rec.verify.orchestrator.tcp} snmp ${rec.verify.orchestrator.snmp}; ${agentResults.map((a) => `${a.agent} ${a.code}`).join(", ")}`);
}
