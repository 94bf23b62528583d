// The comparison of both sides: which capture points a run folder holds (from its manifest), and
// the merged.pcapng + report.txt/json/html written by packages/pcap.
import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { writeRunReport, type CapturePoint } from "@capsync/pcap";
import type { AgentSide, Manifest, PathHopRecord } from "../run/model.js";

export interface RunReportResult {
  summaryLine: string;
  files: string[];
}

/**
 * One point per device capture and one per agent capture of that device, paired device → server;
 * with a flow, one "hop" point per hop of its path in path order (a device on the path is its hop
 * point), paired hop i → hop i+1, and `path` naming them for the report's "where packets vanished".
 */
export function capturePoints(manifest: Manifest, folder: string): { points: CapturePoint[]; pairs: [string, string][]; path?: string[]; alarmAt?: Date } {
  const points: CapturePoint[] = [];
  const pairs: [string, string][] = [];
  const local = (name: string) => existsSync(join(folder, name));
  const deviceOf = (address: string | undefined) => manifest.devices.find((d) => d.device === address);
  const hopName = (h: PathHopRecord) => (h.kind === "device" ? `hop${h.hop}-${deviceOf(h.device)?.type ?? "device"}-${h.device}` : `hop${h.hop}-server-${h.agent}`);
  const missing = new Map<string, NonNullable<CapturePoint["notCollected"]>>();
  let alarmAt: Date | undefined;
  for (const d of manifest.devices) {
    const hop = manifest.path?.find((h) => h.kind === "device" && h.device === d.device);
    const devName = hop ? hopName(hop) : `${d.type}-${d.device}`;
    // After a filter change every file segment of the capture point counts (run/segments.ts).
    const deviceFiles = (d.segments ? d.segments.flatMap((s) => (s.deviceFile ? [s.deviceFile.name] : [])) : d.deviceFile ? [d.deviceFile.name] : []).filter(local);
    const hasDevice = deviceFiles.length > 0;
    if (hasDevice && !hop) {
      points.push({
        name: devName,
        role: "device",
        files: deviceFiles,
        addresses: [d.device],
        ...(d.times.capturing ? { startedAt: new Date(d.times.capturing) } : {}),
        ...(d.times.stopped ? { stoppedAt: new Date(d.times.stopped) } : {}),
      });
    }
    const notCollected: NonNullable<CapturePoint["notCollected"]> = [];
    for (const a of d.agents) {
      const files = (d.segments ? d.segments.flatMap((s) => s.agents.find((x) => x.agent === a.agent)?.files ?? []) : a.files).filter((f) => !f.remote && local(f.name)).map((f) => f.name);
      if (!files.length) {
        notCollected.push({ role: "server", name: a.agent, reason: notCollectedReason(a) });
        continue;
      }
      const name = `server-${a.agent}-for-${d.device}`;
      // One agent's captures of many devices share its clock: one offset places all of them.
      points.push({ name, role: "server", files, clock: `agent ${a.agent}`, ...(d.times.agentsStopSent ? { stoppedAt: new Date(d.times.agentsStopSent) } : {}) });
      // Only with its own device: a server side is never compared with another device's capture.
      pairs.push([devName, name]);
    }
    if (notCollected.length) missing.set(devName, notCollected);
    if (d.stopReason === "alarm" && d.stopEvent) {
      const t = new Date(d.stopEvent.receivedAt);
      if (!alarmAt || t < alarmAt) alarmAt = t;
    }
  }
  const path: string[] = [];
  for (const h of manifest.path ?? []) {
    const files = h.files.filter((f) => !f.remote && local(f.name)).map((f) => f.name);
    if (!files.length) continue;
    const dev = h.kind === "device" ? deviceOf(h.device) : undefined;
    const t = dev ? { started: dev.times.capturing, stopped: dev.times.stopped } : { started: manifest.flow?.times.capturing, stopped: manifest.flow?.times.agentsStopSent };
    const name = hopName(h);
    points.push({
      name,
      role: "hop",
      files,
      ...(h.device ? { addresses: [h.device] } : {}),
      ...(t.started ? { startedAt: new Date(t.started) } : {}),
      ...(t.stopped ? { stoppedAt: new Date(t.stopped) } : {}),
    });
    // A hop without a file is skipped: its neighbours are compared with each other.
    if (path.length) pairs.push([path[path.length - 1]!, name]);
    path.push(name);
  }
  // A device (or hop) point exists only when its own file is here; its pairs and its list of sides
  // not collected go with it.
  const present = new Set(points.map((p) => p.name));
  for (const p of points) {
    const m = missing.get(p.name);
    if (m) p.notCollected = m;
  }
  return { points, pairs: pairs.filter(([a, b]) => present.has(a) && present.has(b)), ...(path.length > 1 ? { path } : {}), ...(alarmAt ? { alarmAt } : {}) };
}

/** Why an agent's side of a device is not in the run folder, as the report lists it. */
function notCollectedReason(a: AgentSide): string {
  if (a.capture === "remote") return "files stay on the agent";
  if (a.capture === "failed") return a.error ? `capture failed: ${a.error}` : "capture failed";
  if (a.capture === "collected") return "files missing from the run folder";
  return `capture ${a.capture}`;
}

/** Write merged.pcapng and the reports for a run folder; undefined when it holds no capture. */
export async function reportRun(folder: string): Promise<RunReportResult | undefined> {
  const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8")) as Manifest;
  const { points, pairs, path, alarmAt } = capturePoints(manifest, folder);
  if (!points.length) return undefined;
  // The pairs are always explicit (none at all when no server side was collected): the report's
  // default of pairing consecutive points would compare unrelated devices with each other.
  const r = await writeRunReport(folder, { points, pairs, ...(path ? { path } : {}), ...(alarmAt ? { alarmAt } : {}) });
  return { summaryLine: r.summaryLine, files: r.files };
}
