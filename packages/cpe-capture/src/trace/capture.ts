// `cpe-capture trace --capture`: the path the walk found becomes an ordinary flow run — every hop
// whose device type can capture (the registry's capabilities) on its out interface, plus agents on
// the source and destination hosts, one `flow:` with the traced 5-tuple — handed to runConfig, so the
// run folder, manifest, hop files, merged.pcapng and report are those of any `cpe-capture run`. Then
// the report's forward path names the first hop pair where packets vanish.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { ConfigError, formatEndpoint } from "@capsync/protocol";
import { configFromObject } from "../config/loader.js";
import { parseDurationField } from "../config/fields.js";
import { DEFAULT_AGENT_PORT, parseEndpoint, type AgentEndpoint } from "../config/addresses.js";
import { FLOW_MAX_HOPS } from "../config/flow.js";
import { deviceType } from "../drivers/index.js";
import { runConfig, type Io } from "../commands/run.js";
import type { Manifest } from "../run/model.js";
import type { TraceSettings } from "./options.js";
import type { HopReport } from "./walker.js";

export const DEFAULT_CAPTURE_MS = 30_000;
/** The run resolves the hops' password from this private map, never from process.env. */
const PASSWORD_REF = "CAPSYNC_TRACE_CAPTURE_PASSWORD";

export interface CaptureCliOptions {
  capture?: boolean;
  duration?: string;
  agent?: string[];
  keyFile?: string;
  sshKeyFile?: string;
  sftpPort?: string;
  output?: string;
}

export interface CaptureAgent {
  side: "src" | "dest";
  agent: AgentEndpoint;
}

export interface CaptureSettings {
  durationMs: number;
  agents: CaptureAgent[];
  keyFile: string | undefined;
  sshKeyFile: string | undefined;
  sftpPort: number | undefined;
  output: string;
}

/**
 * The capture options, checked before any hop is asked (bad input is exit 2 before a connection).
 * `--agent [src=|dest=]<host[:port]>`: without a side, the agent's host must be --src or --dest.
 */
export function settleCapture(o: CaptureCliOptions, flow: { src: string; dst: string }): CaptureSettings | undefined {
  const given = (["duration", "agent", "keyFile", "sshKeyFile", "sftpPort"] as const).filter((k) => o[k] !== undefined);
  if (!o.capture) {
    if (given.length > 0) throw new ConfigError(`--${given[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --capture`);
    return undefined;
  }
  let durationMs = DEFAULT_CAPTURE_MS;
  if (o.duration !== undefined) {
    const d = parseDurationField(/^\d+$/.test(o.duration) ? Number(o.duration) : o.duration);
    if (!d.ok) throw new ConfigError(`--duration: ${d.issues[0]?.message ?? "expected a duration like 30s or 2m"}`);
    if (d.value < 1000) throw new ConfigError(`--duration: at least 1s, got ${JSON.stringify(o.duration)}`);
    durationMs = d.value;
  }
  const agents: CaptureAgent[] = [];
  for (const text of o.agent ?? []) {
    const m = /^(?:(src|dest)=)?(.+)$/.exec(text.trim())!;
    const r = parseEndpoint(m[2]!, { defaultPort: DEFAULT_AGENT_PORT });
    if (!r.ok) throw new ConfigError(`--agent ${JSON.stringify(text)}: ${r.message}`);
    const side = (m[1] as CaptureAgent["side"] | undefined) ?? (r.value.host === flow.src ? "src" : r.value.host === flow.dst ? "dest" : undefined);
    if (!side) throw new ConfigError(`--agent ${text}: ${r.value.host} is neither --src nor --dest; say which host it captures on: src=${text} or dest=${text}`);
    if (agents.some((a) => a.side === side)) throw new ConfigError(`--agent ${text}: one agent per side; ${side} has one already`);
    agents.push({ side, agent: r.value });
  }
  if (agents.length > 0 && !o.keyFile) throw new ConfigError("--agent needs --key-file (the agents' CSYNC/1 pre-shared key, as agents.keyFile of `cpe-capture run`)");
  let sftpPort: number | undefined;
  if (o.sftpPort !== undefined) {
    if (!/^\d+$/.test(o.sftpPort) || Number(o.sftpPort) < 1 || Number(o.sftpPort) > 65535) throw new ConfigError(`--sftp-port: expected 1..65535, got ${JSON.stringify(o.sftpPort)}`);
    sftpPort = Number(o.sftpPort);
  }
  return { durationMs, agents, keyFile: o.keyFile, sshKeyFile: o.sshKeyFile, sftpPort, output: o.output ?? "./runs" };
}

/** One capture point of the traced path, in path order. */
export interface CapturePlanPoint {
  /** The flow run's hop number (the file names' hop<N>_). */
  hop: number;
  kind: "device" | "server";
  /** hostname (out interface), or "agent ip:port (src host)". */
  label: string;
  /** The trace's hop number; undefined for an agent. */
  traceHop?: number;
}

export interface CapturePlan {
  points: CapturePlanPoint[];
  /** Trace hops that take no capture, with why. */
  skipped: { traceHop: number; hostname: string; reason: string }[];
  raw: Record<string, unknown>;
}

const agentLabel = (a: CaptureAgent) => `agent ${formatEndpoint(a.agent.host, a.agent.port)} (${a.side} host)`;

/** The run config of the traced path: a device per capturing hop (its out interface), the agents, the flow. */
export function capturePlan(s: TraceSettings, c: CaptureSettings, hops: readonly HopReport[]): CapturePlan {
  const skipped: CapturePlan["skipped"] = [];
  const devices: Record<string, unknown>[] = [];
  const points: CapturePlanPoint[] = [];
  const path: string[] = [];
  const add = (p: Omit<CapturePlanPoint, "hop">, entry: string) => {
    points.push({ hop: points.length + 1, ...p });
    path.push(entry);
  };
  for (const a of c.agents.filter((x) => x.side === "src")) add({ kind: "server", label: agentLabel(a) }, `agent:${formatEndpoint(a.agent.host, a.agent.port)}`);
  const tls = s.tls?.mode === "insecure" ? "insecure" : s.tls?.mode === "ca" ? { ca: s.tls.ca } : "verify";
  const limit = FLOW_MAX_HOPS - c.agents.filter((x) => x.side === "dest").length;
  for (const h of hops) {
    const why =
      deviceType(h.type).capabilities.capture === false
        ? `${h.type} takes no capture`
        : h.local
          ? "the destination is the device itself (no out interface)"
          : points.length >= limit
            ? `a flow run captures at most ${FLOW_MAX_HOPS} hops`
            : undefined;
    if (why) {
      skipped.push({ traceHop: h.number, hostname: h.hostname, reason: why });
      continue;
    }
    const name = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(h.hostname) ? h.hostname : `hop${h.number}`;
    devices.push({
      name,
      address: h.connectedVia,
      type: h.type,
      interfaces: [h.outInterface],
      username: s.user,
      password: { env: PASSWORD_REF },
      tls,
      ...(s.restPort !== undefined ? { restPort: s.restPort } : {}),
      ...(s.sshPort !== undefined ? { sshPort: s.sshPort } : {}),
    });
    add({ kind: "device", label: `${h.hostname} (${h.outInterface})`, traceHop: h.number }, name);
  }
  for (const a of c.agents.filter((x) => x.side === "dest")) add({ kind: "server", label: agentLabel(a) }, `agent:${formatEndpoint(a.agent.host, a.agent.port)}`);
  const f = s.flow;
  const raw: Record<string, unknown> = {
    output: c.output,
    verify: false,
    timeouts: { rest: `${s.timeoutMs}ms` },
    syslog: { listen: "127.0.0.1:0" },
    // No alarm: the capture lasts --duration (or until Ctrl-C); a hop unreachable at stop is retried briefly.
    stop: { alarms: [], duration: `${c.durationMs}ms`, deviceRetry: "30s" },
    ...(c.agents.length > 0 ? { agents: { keyFile: c.keyFile, ...(c.sshKeyFile ? { sshKeyFile: c.sshKeyFile } : {}), ...(c.sftpPort ? { sftpPort: c.sftpPort } : {}) } } : {}),
    devices,
    flow: {
      filter: { src: f.src, dst: f.dst, ...(f.proto !== undefined ? { protocol: f.proto } : {}), ...(f.sport !== undefined ? { sport: f.sport } : {}), ...(f.dport !== undefined ? { dport: f.dport } : {}) },
      ...(f.vrf !== "default" ? { vrf: f.vrf } : {}),
      path,
    },
  };
  return { points, skipped, raw };
}

export interface CaptureOutcome {
  folder: string | undefined;
  /** 0 every capturing hop collected; 1 a hop could not capture or collect, or nothing to compare. */
  exitCode: 0 | 1;
  lines: string[];
  json: Record<string, unknown>;
}

interface ReportPathJson {
  hops: { from: string; to: string; sent: number; lost: number }[];
}
interface ReportJson {
  points: { name: string; packets: number }[];
  paths: ReportPathJson[];
  summaryLine: string;
}

const hopOf = (name: string) => Number(/^hop(\d+)-/.exec(name)?.[1]);

/** The first pair of the forward path where packets vanish, in the trace's names. */
export function firstVanish(plan: CapturePlan, report: ReportJson | undefined): { line: string; at?: [number, number]; lost?: number; sent?: number } {
  const hops = report?.paths[0]?.hops ?? [];
  const label = (n: number) => plan.points[n - 1]?.label ?? `hop ${n}`;
  const bare = (n: number) => label(n).replace(/ \([^)]*\)$/, "");
  const worst = hops.find((h) => h.lost > 0);
  if (worst) {
    const [a, b] = [hopOf(worst.from), hopOf(worst.to)];
    return { line: `packets vanish between ${label(a)} and ${bare(b)}: lost ${worst.lost}/${worst.sent}`, at: [a, b], lost: worst.lost, sent: worst.sent };
  }
  if (hops.length === 0) return { line: "no two hops to compare: where packets vanish is not known" };
  const sent = hops[0]!.sent;
  return { line: sent > 0 ? `no packets vanish along the path: ${sent} sent at ${label(hopOf(hops[0]!.from))}, every hop saw them` : `the flow was not seen at ${label(hopOf(hops[0]!.from))} during the capture: nothing to compare` };
}

/** Runs the capture of the plan and describes the result (the run's own output goes to its log). */
export async function captureAlong(plan: CapturePlan, s: TraceSettings, c: CaptureSettings, io: Io): Promise<CaptureOutcome> {
  const lines: string[] = [];
  const skippedLines = plan.skipped.map((x) => `  ${x.hostname} (trace hop ${x.traceHop}): not captured (${x.reason})`);
  if (plan.points.length < 2) {
    lines.push(`CAPTURE NOT STARTED: ${plan.points.length} capture point${plan.points.length === 1 ? "" : "s"} on the path; a loss report needs two`, ...skippedLines);
    return { folder: undefined, exitCode: 1, lines, json: { started: false, points: plan.points, skipped: plan.skipped } };
  }
  const { config } = configFromObject(plan.raw, { baseDir: process.cwd() });
  const quiet = new Writable({ write: (_c, _e, cb) => cb() });
  if (!s.json) io.stdout.write(`\nCAPTURING ${plan.points.length} points for ${c.durationMs / 1000} s (Ctrl-C stops early): ${plan.points.map((p) => `hop${p.hop} ${p.label}`).join(", ")}\n`);
  const r = await runConfig(config, { stdout: quiet, stderr: io.stderr }, { json: false, quiet: true, env: { [PASSWORD_REF]: s.password } });
  const manifest = JSON.parse(readFileSync(join(r.folder, "manifest.json"), "utf8")) as Manifest;
  let report: ReportJson | undefined;
  try {
    report = JSON.parse(readFileSync(join(r.folder, "report.json"), "utf8")) as ReportJson;
  } catch {
    report = undefined;
  }
  const packets = new Map((report?.points ?? []).map((p) => [hopOf(p.name), p.packets]));
  const failed: string[] = [];
  const perHop = plan.points.map((p) => {
    const rec = manifest.path?.find((x) => x.hop === p.hop);
    const ok = rec !== undefined && (rec.capture === "collected" || rec.capture === "remote");
    if (!ok) failed.push(`${p.label}: ${rec?.error ?? rec?.capture ?? "not in the manifest"}`);
    const files = rec?.files.map((f) => f.name) ?? [];
    const text = ok ? `${packets.get(p.hop) ?? 0} packets  ${files.join(", ") || "(no file)"}` : `FAILED: ${rec?.error ?? rec?.capture ?? "no record"}`;
    return { hop: p.hop, label: p.label, traceHop: p.traceHop ?? null, capture: rec?.capture ?? null, files, packets: packets.get(p.hop) ?? null, error: rec?.error ?? null, text };
  });
  const vanish = firstVanish(plan, report);
  const exitCode: 0 | 1 = failed.length > 0 || r.exitCode !== 0 ? 1 : 0;
  lines.push(
    `CAPTURE ${exitCode === 0 ? "COMPLETE" : "PARTIAL"}: ${plan.points.length - failed.length}/${plan.points.length} points collected in ${r.folder}`,
    ...perHop.map((h) => `  hop${h.hop} ${h.label}: ${h.text}`),
    ...skippedLines,
    vanish.line,
    ...(report ? [report.summaryLine] : []),
  );
  return {
    folder: r.folder,
    exitCode,
    lines,
    json: { started: true, folder: r.folder, exitCode, points: perHop.map(({ text: _t, ...h }) => h), skipped: plan.skipped, vanish: { text: vanish.line, ...(vanish.at ? { between: vanish.at, lost: vanish.lost, sent: vanish.sent } : {}) }, failed },
  };
}
