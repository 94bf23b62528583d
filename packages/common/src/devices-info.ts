// The original trafficCapture's `devices_info` record format, shared by both sides' exports (the
// orchestrator's run folder, the agent's capture dir): value formats, the VERIFY traffic tasks and
// the file's JSON text. Which capsync state becomes which record is each side's own module.
//
// Source: github:dgrissom55/trafficCapture v1.0.6 (de5ec0f). Both apps keep `devices_info` as
// {"devices": [record, ...]}, one record per device, and print it to their log as JSON with
// indent=4 (cpe_capture_app.py 3769, 4021 via secure_json_dump 618-643 with 'password' masked
// as '*****'; ovoc_capture_app.py 4422-4424 after every datagram). capsync writes the same JSON
// to devices_info.json instead, so scripts read a file rather than scrape a log.
import { isCode, redact, REASON_PHRASES } from "@capsync/protocol";

export const DEVICES_INFO_FILE = "devices_info.json";

export type InfoStatus = "Success" | "Failure";
export type InfoSeverity = "NORMAL" | "MINOR" | "MAJOR" | "CRITICAL";

/** One entry of a record's `tasks`, in the original's key order. */
export interface InfoTask {
  task: string;
  timestamp: string;
  status: InfoStatus;
  /** The REST status of the call; -1 when there was none (send_cli_script's default, cpe 447). */
  statusCode?: number;
  output?: string;
  description: string;
  filename?: string;
}

/** A record's summary of its latest step: the original sets these three after each step. */
export interface StepOutcome {
  status: InfoStatus;
  severity: InfoSeverity;
  description: string;
}

export const outcome = (ok: boolean): InfoStatus => (ok ? "Success" : "Failure");

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/**
 * The original's task timestamp: `datetime.now().strftime('%Y-%m-%dT%H:%M:%S.%f%z')` (cpe 2437,
 * ovoc 3120): local wall-clock time, six fraction digits, and no offset, because now() is naive and
 * its %z is empty — as in the apps' own example "2022-06-22T16:13:39.895358" (cpe 149). (The
 * README's "%Y-%m-%dT%H:%M:%S:%f%z" with a colon before %f is not what the code writes.)
 */
export function originalTimestamp(at: string | number | Date): string {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds() * 1000, 6)}`;
}

/** An agent answer code as the original's lastResponse spells it: "200 OK", "503 Service Unavailable". */
export function responseLine(code: number | undefined): string {
  return code !== undefined && isCode(code) ? `${code} ${REASON_PHRASES[code]}` : "";
}

/** Sent and answered probes of one kind. */
export interface ProbeCount {
  sent: number;
  answered: number;
}

/** VERIFY's traffic by kind; a kind that was not sent is absent. */
export interface ProbeCounts {
  icmp?: ProbeCount;
  snmpv3?: ProbeCount;
  snmp?: ProbeCount;
  tcp?: ProbeCount;
}

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

function count(v: unknown): ProbeCount | undefined {
  // "answered/sent", as the manifest's verify results spell them.
  if (typeof v === "string") {
    const m = /^(\d+)\/(\d+)$/.exec(v.trim());
    return m ? { answered: Number(m[1]), sent: Number(m[2]) } : undefined;
  }
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (typeof o.sent !== "number") return undefined;
    return { sent: num(o.sent), answered: num(o.answered ?? o.received) };
  }
  return undefined;
}

/**
 * Probe counts from a VERIFY result: the probes' own result (tcpTries/tcpAnswered, udpSent/udpAnswers,
 * icmp {sent, received}, snmpv3 {sent, answered}) or the manifest's summary ({tcp: "3/3", snmp: "0/3", …}).
 */
export function probeCounts(r: unknown): ProbeCounts {
  if (!r || typeof r !== "object") return {};
  const o = r as Record<string, unknown>;
  const out: ProbeCounts = {};
  const icmp = count(o.icmp);
  const v3 = count(o.snmpv3);
  const snmp = typeof o.udpSent === "number" ? { sent: num(o.udpSent), answered: num(o.udpAnswers) } : count(o.snmp);
  const tcp = typeof o.tcpTries === "number" ? { sent: num(o.tcpTries), answered: num(o.tcpAnswered) } : count(o.tcp);
  if (icmp) out.icmp = icmp;
  if (v3) out.snmpv3 = v3;
  if (snmp) out.snmp = snmp;
  if (tcp) out.tcp = tcp;
  return out;
}

/**
 * VERIFY as the original's send_traffic records it (cpe 2622-2920, ovoc 1711-2010): one task per kind
 * of traffic ('Send ICMP (Ping)', 'Send UDP (SNMPv3)', 'Send TCP (Port 443)'), each "Success" only if
 * every probe was answered; the device's description joins the three sentences, its severity is
 * NORMAL when nothing failed and CRITICAL otherwise. capsync's extra SNMPv2c probe is its own task,
 * 'Send UDP (SNMP)', so a script matching 'SNMPv3' never mistakes it for an authenticated answer.
 * The original wrote "out of 10" (its fixed attempt count); here it is the count actually sent.
 */
export function verifyTasks(at: string, c: ProbeCounts, opts: { statusCode?: boolean } = {}): { tasks: InfoTask[]; step: StepOutcome } {
  const timestamp = originalTimestamp(at);
  const tasks: InfoTask[] = [];
  const sentences: string[] = [];
  let failed = false;
  const kinds: { key: keyof ProbeCounts; task: string; label: string; ok: string; what: string; disabled?: string }[] = [
    { key: "icmp", task: "Send ICMP (Ping)", label: "ICMP", ok: "Successfully sent all ICMP pings to device.", what: "ICMP pings", disabled: "Sending ICMP PING requests is disabled." },
    { key: "snmpv3", task: "Send UDP (SNMPv3)", label: "SNMPv3", ok: "Successfully sent all SNMP GET requests to device.", what: "SNMP GET requests", disabled: "Sending UDP SNMPv3 GET requests is disabled." },
    { key: "snmp", task: "Send UDP (SNMP)", label: "SNMP", ok: "Successfully sent all SNMP GET requests to device.", what: "SNMP GET requests" },
    { key: "tcp", task: "Send TCP (Port 443)", label: "TCP", ok: "Successfully sent all TCP connection requests to device.", what: "TCP connection requests", disabled: "Sending TCP connection attempts is disabled." },
  ];
  for (const k of kinds) {
    const n = c[k.key];
    if (!n) {
      if (k.disabled) sentences.push(k.disabled);
      continue;
    }
    const misses = Math.max(0, n.sent - n.answered);
    const ok = n.sent > 0 && misses === 0;
    if (!ok) failed = true;
    const description = ok ? k.ok : `Failed to receive response to ${n.sent === 0 ? "any" : misses} out of ${n.sent} ${k.what}!`;
    sentences.push(description);
    tasks.push({
      task: k.task,
      timestamp,
      status: outcome(ok),
      ...(opts.statusCode ? { statusCode: -1 } : {}),
      output: `${k.label}: ${n.answered} of ${n.sent} answered.`,
      description,
    });
  }
  return { tasks, step: { status: outcome(!failed), severity: failed ? "CRITICAL" : "NORMAL", description: sentences.join(" ") } };
}

/**
 * The file's text: {"devices": [...]} with the original's indent of 4, every secret redacted (belt
 * and braces: records never hold one, and `password` is the original's mask '*****').
 */
export function devicesInfoText(devices: readonly object[], secrets: readonly string[]): string {
  return redact(JSON.stringify({ devices }, null, 4), secrets) + "\n";
}
