// The demo's closing summary: what happened to each device, when, which files, how many packets
// on each side — built from the run's manifest plus what the demo itself saw — and the verdict.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openCapture } from "@capsync/pcap";
import type { DeviceRecord, Manifest } from "@capsync/cpe-capture/run/model";

export type DemoMode = "netns" | "loopback";

export interface DemoFile {
  name: string;
  /** Where it is on this machine (run folder), if it is here. */
  path?: string;
  bytes: number;
  /** Packets in the file, or null when it could not be read as a capture to its end. */
  packets: number | null;
}

export interface DemoDeviceSummary {
  index: number;
  address: string;
  type: string;
  role: "broken" | "healthy";
  status: DeviceRecord["status"];
  stopReason: string | undefined;
  description: string;
  alarm?: {
    /** Sender as the orchestrator saw it ("198.51.100.10:41234"). */
    from: string;
    /** True when the demo sent it itself (loopback mode). */
    injected: boolean;
    /** When the management server sent it (netns mode). */
    sentAt?: string;
    receivedAt: string;
  };
  brokeAt?: string;
  /** When STOP left for the agents. */
  stopSentAt?: string;
  collectedAt?: string;
  alarmToCollectedMs?: number;
  deviceFile?: DemoFile;
  serverFiles: (DemoFile & { agent: string; remote?: string })[];
  /** Packets the device sent to the management server after the break, as each side captured them. */
  afterBreak?: { to: string; deviceSent: number | null; serverCaptured: number | null };
}

export interface DemoSummary {
  mode: DemoMode;
  ok: boolean;
  problems: string[];
  startedAt: string;
  wallMs: number;
  durationMs: number;
  breakAfterMs: number;
  runFolder: string | undefined;
  runExitCode: number | null;
  managementServer?: string;
  devices: DemoDeviceSummary[];
  /** Of the broken device. */
  alarmToCollectedMs?: number;
  /** --keep: what was left up. */
  kept?: { labDir: string; namespaces: string[] };
}

export interface SummaryInput {
  mode: DemoMode;
  startedAtMs: number;
  endedAtMs: number;
  durationMs: number;
  breakAfterMs: number;
  runFolder: string | undefined;
  runExitCode: number | null;
  manifest: Manifest | undefined;
  /** Devices in lab order; index 0 is the broken one. */
  devices: { address: string; type: string }[];
  breakAtMs?: number;
  /** netns: the management server's address, which must be the alarm's sender. */
  managementServer?: string;
  /** netns: when the management server logged sending each device's Connection Lost alarm. */
  alarmSentAt?: Map<string, number>;
  /** Extra problems found by the caller (lab failures, interruptions). */
  problems?: string[];
}

/** What a lab saw of its run, filled in as it goes and summarised at the end. */
export interface RunSeen {
  runFolder: string | undefined;
  runExitCode: number | null;
  manifest: Manifest | undefined;
  /** When each device's Connection Lost alarm was sent (by the management server, or by the demo itself). */
  alarmSentAt: Map<string, number>;
  /** Lab failures and interruptions. */
  problems: string[];
}

export function runSeen(): RunSeen {
  return { runFolder: undefined, runExitCode: null, manifest: undefined, alarmSentAt: new Map(), problems: [] };
}

/** The summary of a lab run that started at `o.t0` and ends now. */
export function summariseLab(
  mode: DemoMode,
  o: { t0: number; durationMs: number; breakAfterMs: number },
  seen: RunSeen,
  devices: SummaryInput["devices"],
  extra: Pick<SummaryInput, "breakAtMs" | "managementServer"> = {},
): Promise<DemoSummary> {
  return summarise({ mode, startedAtMs: o.t0, endedAtMs: Date.now(), durationMs: o.durationMs, breakAfterMs: o.breakAfterMs, ...seen, devices, ...extra });
}

const iso = (ms: number | undefined) => (ms === undefined || Number.isNaN(ms) ? undefined : new Date(ms).toISOString());
const hostOf = (endpoint: string) => endpoint.replace(/^\[([^\]]+)\]:\d+$/, "$1").replace(/^([^:]+):\d+$/, "$1");

/** What the packet counts look at: a packet's time and, for IP, its addresses. */
export interface PacketInfo {
  tsMs: number;
  src?: string;
  dst?: string;
}

/** Packets in a capture (file or bytes) and how many of them `match` accepts; undefined when it cannot be read to its end. */
export async function countPackets(source: string | Uint8Array, match?: (p: PacketInfo) => boolean): Promise<{ packets: number; matching: number } | undefined> {
  const reader = openCapture(source, { decode: match !== undefined });
  let matching = 0;
  for (let batch = await reader.nextBatch(); batch !== null; batch = await reader.nextBatch()) {
    if (!match) continue;
    for (const p of batch) {
      const ip = p.decoded?.ip;
      if (match({ tsMs: Number(p.tsNanos / 1000n) / 1000, src: ip?.src, dst: ip?.dst })) matching++;
    }
  }
  return reader.error ? undefined : { packets: reader.packets, matching };
}

export async function summarise(i: SummaryInput): Promise<DemoSummary> {
  const problems = [...(i.problems ?? [])];
  const folder = i.runFolder;
  if (!i.manifest && folder) problems.push(`no manifest.json in ${folder}`);
  const broken = i.devices[0]?.address;
  const devices: DemoDeviceSummary[] = [];
  // One device after the other, so that the problems come in device order.
  for (const [idx, d] of i.devices.entries()) devices.push(await summariseDevice(i, d, idx, problems));
  if (i.manifest && i.runExitCode !== 0 && problems.length === 0) problems.push(`cpe-capture run exited ${i.runExitCode}`);
  const b = devices.find((d) => d.address === broken);
  return {
    mode: i.mode,
    ok: problems.length === 0,
    problems,
    startedAt: iso(i.startedAtMs)!,
    wallMs: i.endedAtMs - i.startedAtMs,
    durationMs: i.durationMs,
    breakAfterMs: i.breakAfterMs,
    runFolder: folder,
    runExitCode: i.runExitCode,
    ...(i.managementServer ? { managementServer: i.managementServer } : {}),
    devices,
    ...(b?.alarmToCollectedMs !== undefined ? { alarmToCollectedMs: b.alarmToCollectedMs } : {}),
  };
}

async function summariseDevice(i: SummaryInput, d: SummaryInput["devices"][number], idx: number, problems: string[]): Promise<DemoDeviceSummary> {
  const folder = i.runFolder;
  const rec = i.manifest?.devices.find((r) => r.device === d.address);
  const role = idx === 0 ? "broken" : "healthy";
  const out: DemoDeviceSummary = {
    index: idx + 1,
    address: d.address,
    type: d.type,
    role,
    status: rec?.status ?? "failed",
    stopReason: rec?.stopReason,
    description: rec?.description ?? "not in the manifest",
    serverFiles: [],
  };
  if (!rec) {
    if (i.manifest) problems.push(`${d.address}: not in the manifest`);
    return out;
  }
  if (role === "broken" && i.breakAtMs !== undefined) out.brokeAt = iso(i.breakAtMs);
  if (rec.stopEvent) {
    const sent = i.alarmSentAt?.get(d.address);
    out.alarm = { from: rec.stopEvent.from ?? "", injected: i.mode === "loopback", receivedAt: rec.stopEvent.receivedAt, ...(sent !== undefined ? { sentAt: iso(sent)! } : {}) };
  }
  if (rec.times.agentsStopSent) out.stopSentAt = rec.times.agentsStopSent;
  if (rec.times.collected) out.collectedAt = rec.times.collected;
  if (out.alarm && out.collectedAt) out.alarmToCollectedMs = Date.parse(out.collectedAt) - Date.parse(out.alarm.receivedAt);
  const after = role === "broken" && i.breakAtMs !== undefined && i.managementServer ? { from: d.address, to: i.managementServer, since: i.breakAtMs } : undefined;
  const count = (path: string) => countPackets(path, after ? (p) => p.src === after.from && p.dst === after.to && p.tsMs >= after.since : undefined);
  let deviceAfter: number | null = null;
  let serverAfter: number | null = null;
  if (rec.deviceFile && folder) {
    const path = join(folder, rec.deviceFile.name);
    const here = existsSync(path);
    const c = here ? await count(path) : undefined;
    out.deviceFile = { name: rec.deviceFile.name, bytes: rec.deviceFile.bytes, packets: c ? c.packets : null, ...(here ? { path } : {}) };
    if (c) deviceAfter = c.matching;
  }
  for (const side of rec.agents) {
    for (const f of side.files) {
      const path = folder ? join(folder, f.name) : undefined;
      const here = path !== undefined && existsSync(path);
      const c = here ? await count(path) : undefined;
      out.serverFiles.push({ agent: side.agent, name: f.name, bytes: f.bytes, packets: c ? c.packets : null, ...(here ? { path } : {}), ...(f.remote && !here ? { remote: f.remote } : {}) });
      if (c) serverAfter = (serverAfter ?? 0) + c.matching;
    }
  }
  if (after) out.afterBreak = { to: after.to, deviceSent: deviceAfter, serverCaptured: serverAfter };

  // The verdict, device by device.
  const label = `device ${idx + 1} (${d.address})`;
  if (rec.status !== "collected") problems.push(`${label}: ${rec.status}: ${rec.description}`);
  if (!out.deviceFile?.path) problems.push(`${label}: no device capture in the run folder`);
  if (i.mode === "netns" && !out.serverFiles.some((f) => f.path)) problems.push(`${label}: no server capture in the run folder`);
  if (role === "broken") {
    if (rec.stopReason !== "alarm") problems.push(`${label}: stopped by ${rec.stopReason ?? "nothing"}, not by the Connection Lost alarm`);
    else if (i.managementServer && hostOf(out.alarm?.from ?? "") !== i.managementServer) {
      problems.push(`${label}: the alarm came from ${out.alarm?.from ?? "?"}, not from the management server ${i.managementServer}`);
    }
  } else if (rec.stopReason !== "run-duration") {
    problems.push(`${label}: stopped by ${rec.stopReason ?? "nothing"}; it should have captured until the end of the demo`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

function human(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatSummary(s: DemoSummary): string {
  const t0 = Date.parse(s.startedAt);
  const at = (when: string | undefined) => {
    if (!when) return "-";
    const ms = Date.parse(when);
    return `+${((ms - t0) / 1000).toFixed(1).padStart(5)} s  ${when.slice(11, 23)}`;
  };
  const file = (f: DemoFile & { remote?: string }) =>
    `${f.name}  ${f.packets === null ? "? packets" : `${f.packets} packets`}, ${human(f.bytes)}${f.remote ? ` (left on the server: ${f.remote})` : ""}`;
  const lines: string[] = [];
  lines.push("");
  lines.push(
    `capsync demo summary (${s.mode === "netns" ? "network namespaces, real tcpdump on both sides" : "loopback, synthetic device captures, alarm injected"}): ${s.devices.length} device(s), ${secs(s.durationMs)} run`,
  );
  for (const d of s.devices) {
    lines.push("");
    const stop =
      d.stopReason === "alarm"
        ? `Connection Lost alarm from ${d.alarm?.from ?? "?"}${d.alarm?.injected ? " (injected by the demo)" : s.managementServer ? " (the management server)" : ""}`
        : d.stopReason === "run-duration"
          ? `end of the run (--duration ${secs(s.durationMs)})`
          : (d.stopReason ?? "not stopped");
    lines.push(`  device ${d.index}  ${d.address}  ${d.type.padEnd(5)}  ${d.role === "broken" ? "BROKEN " : "healthy"}  ${d.status}; stop: ${stop}`);
    if (d.brokeAt) lines.push(`    path broken      ${at(d.brokeAt)}  (${d.address} → ${s.managementServer ?? "?"} dropped at the router)`);
    if (d.alarm?.sentAt) lines.push(`    alarm sent       ${at(d.alarm.sentAt)}  (${d.alarm.injected ? "injected by the demo" : "by the management server"})`);
    if (d.alarm) lines.push(`    alarm received   ${at(d.alarm.receivedAt)}  (by cpe-capture)`);
    if (d.alarm && d.stopSentAt) lines.push(`    STOP to agents   ${at(d.stopSentAt)}  (alarm → STOP ${secs(Date.parse(d.stopSentAt) - Date.parse(d.alarm.receivedAt))})`);
    lines.push(`    collected        ${at(d.collectedAt)}${d.alarmToCollectedMs !== undefined ? `  (alarm → collected ${secs(d.alarmToCollectedMs)})` : ""}`);
    lines.push(`    device capture   ${d.deviceFile ? file(d.deviceFile) : "none"}`);
    if (d.serverFiles.length === 0) lines.push(`    server capture   ${s.mode === "loopback" ? "none (loopback mode has no agents)" : "none"}`);
    for (const f of d.serverFiles) lines.push(`    server capture   ${file(f)}  [agent ${f.agent}]`);
    if (d.afterBreak) {
      const a = d.afterBreak;
      lines.push(
        `    after the break  the device sent ${a.deviceSent ?? "?"} packet(s) to ${a.to}; the server captured ${a.serverCaptured ?? "?"} of them`,
      );
    }
  }
  lines.push("");
  // The comparison of both sides, written by `run` into the run folder (packages/pcap).
  const report = s.runFolder ? join(s.runFolder, "report.json") : undefined;
  if (report && existsSync(report)) {
    try {
      const line = (JSON.parse(readFileSync(report, "utf8")) as { summaryLine?: string }).summaryLine;
      if (line) lines.push(line, `  (merged.pcapng, report.txt, report.html in the run folder)`);
    } catch {
      /* a report that cannot be read is not the demo's failure */
    }
  }
  lines.push(`run folder: ${s.runFolder ?? "(none)"}`);
  lines.push(`demo wall time ${secs(s.wallMs)}${s.alarmToCollectedMs !== undefined ? `; alarm → collected ${secs(s.alarmToCollectedMs)}` : ""}`);
  if (s.kept) {
    lines.push(`lab kept up (--keep): namespaces ${s.kept.namespaces.join(" ")}; config, keys and logs in ${s.kept.labDir}`);
    lines.push(`  e.g. ip netns exec cslab-orch node packages/cpe-capture/dist/index.js run --config ${s.kept.labDir}/lab.yaml`);
    lines.push(`  the break is still in place; heal it: ip netns exec cslab-wan nft delete table ip cslab`);
    lines.push(`  remove it all: cpe-capture demo --clean (the next demo does it too)`);
  }
  if (s.ok) {
    lines.push(
      s.mode === "netns"
        ? "result: OK: the broken device was stopped by the management server's real alarm, both sides were collected, the other device(s) captured to the end"
        : "result: OK: the broken device was stopped by the (injected) alarm and collected; the other device(s) captured to the end",
    );
  } else {
    lines.push("result: FAILED:");
    for (const p of s.problems) lines.push(`  - ${p}`);
  }
  return lines.join("\n") + "\n";
}
