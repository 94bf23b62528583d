// Each agent's answer time as this client sees it (RFC 6298 smoothing), so a request's first
// resend waits about as long as that agent takes to acknowledge: an agent working through a queue
// of thousands answers in seconds, and resending its requests every 250 ms would only fill its
// intake with copies. Samples only from requests sent once (Karn: a resent request's answer may
// belong to either copy); a resend doubles the timeout until the next sample (as TCP's RTO), so
// when every answer is slower than the estimate, requests sent later wait long enough to give one.
interface Estimate {
  srtt: number;
  rttvar: number;
  /** Backed-off timeout since the last sample (0: none). */
  backedOff: number;
}

export class AgentRtt {
  private readonly agents = new Map<string, Estimate>();

  /** `ms` from the first send of a once-sent request to its first answer (100 Trying or final). */
  sample(agent: string, ms: number): void {
    const e = this.agents.get(agent);
    if (!e || Number.isNaN(e.srtt)) {
      this.agents.set(agent, { srtt: ms, rttvar: ms / 2, backedOff: 0 });
      return;
    }
    e.backedOff = 0;
    e.rttvar = 0.75 * e.rttvar + 0.25 * Math.abs(e.srtt - ms);
    e.srtt = 0.875 * e.srtt + 0.125 * ms;
  }

  /** A request to `agent` went unanswered for `waitedMs` and is sent again. */
  resent(agent: string, waitedMs: number, ceiling: number): void {
    let e = this.agents.get(agent);
    if (!e) this.agents.set(agent, (e = { srtt: NaN, rttvar: NaN, backedOff: 0 }));
    e.backedOff = Math.min(ceiling, Math.max(e.backedOff, 2 * waitedMs));
  }

  /** The first resend's delay for this agent: srtt + 4 rttvar or the backed-off timeout, within [floor, ceiling]. */
  timeout(agent: string, floor: number, ceiling: number): number {
    const e = this.agents.get(agent);
    if (!e) return floor;
    const estimate = Number.isNaN(e.srtt) ? 0 : e.srtt + 4 * e.rttvar;
    return Math.min(ceiling, Math.max(floor, estimate, e.backedOff));
  }
}
