// How a VERIFY result travels in the agent's answer: as the answer's existing key=value details
// (tcp, snmp, and icmp/snmpv3 beside them), and back into structured results on the orchestrator.
// The answer is one datagram of at most 1200 bytes, so free text is clipped.
import type { IcmpResult } from "./icmp.js";
import type { Snmpv3Result } from "./snmpv3.js";
import type { VerifyResult } from "./verify.js";

const TEXT_MAX = 80;

/** The details of a VERIFY answer: tcp/snmp/icmp/snmpv3 as answered/sent, plus rtt, errors and sysDescr. */
export function verifyDetails(r: VerifyResult): Record<string, string> {
  const d: Record<string, string> = { tcp: `${r.tcpAnswered}/${r.tcpTries}`, snmp: `${r.udpAnswers}/${r.udpSent}` };
  if (r.icmp) {
    d.icmp = `${r.icmp.received}/${r.icmp.sent}`;
    if (r.icmp.rttMs) d.icmp_rtt_ms = `${r.icmp.rttMs.min}/${r.icmp.rttMs.avg}/${r.icmp.rttMs.max}`;
    if (r.icmp.error) d.icmp_error = r.icmp.error.slice(0, TEXT_MAX);
  }
  if (r.snmpv3) {
    d.snmpv3 = `${r.snmpv3.answered}/${r.snmpv3.sent}`;
    if (r.snmpv3.error) d.snmpv3_error = r.snmpv3.error.slice(0, TEXT_MAX);
    if (r.snmpv3.sysDescr !== undefined) d.snmpv3_sysdescr = r.snmpv3.sysDescr.slice(0, TEXT_MAX);
  }
  return d;
}

/** The ICMP and SNMPv3 results in an agent's VERIFY details; absent when the agent did not send them. */
export function verifyFromDetails(d: Record<string, string>): { icmp?: IcmpResult; snmpv3?: Snmpv3Result } {
  const out: { icmp?: IcmpResult; snmpv3?: Snmpv3Result } = {};
  const icmp = fraction(d.icmp);
  if (icmp) {
    out.icmp = { sent: icmp.of, received: icmp.n };
    const rtt = d.icmp_rtt_ms?.split("/").map(Number);
    if (rtt && rtt.length === 3 && rtt.every(Number.isFinite)) out.icmp.rttMs = { min: rtt[0]!, avg: rtt[1]!, max: rtt[2]! };
    if (d.icmp_error) out.icmp.error = d.icmp_error;
  }
  const v3 = fraction(d.snmpv3);
  if (v3) {
    out.snmpv3 = { ok: v3.n > 0, sent: v3.of, answered: v3.n };
    if (d.snmpv3_error) out.snmpv3.error = d.snmpv3_error;
    if (d.snmpv3_sysdescr !== undefined) out.snmpv3.sysDescr = d.snmpv3_sysdescr;
  }
  return out;
}

function fraction(s: string | undefined): { n: number; of: number } | undefined {
  const m = s === undefined ? null : /^(\d{1,4})\/(\d{1,4})$/.exec(s);
  return m ? { n: Number(m[1]), of: Number(m[2]) } : undefined;
}
