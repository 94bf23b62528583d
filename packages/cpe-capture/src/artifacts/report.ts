// The comparison of both sides: which capture points a run folder holds (from its manifest), and
// the merged.pcapng + report.txt/json/html written by packages/pcap.
import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { writeRunReport, type CapturePoint } from "@capsync/pcap";
import type { Manifest } from "../run/model.js";

export interface RunReportResult {
  summaryLine: string;
  files: string[];
}

/** One point per device capture and one per agent capture of that device, paired device → server. */
export function capturePoints(manifest: Manifest, folder: string): { points: CapturePoint[]; pairs: [string, string][]; alarmAt?: Date } {
  const points: CapturePoint[] = [];
  const pairs: [string, string][] = [];
  let alarmAt: Date | undefined;
  for (const d of manifest.devices) {
    const local = (name: string) => existsSync(join(folder, name));
    const devName = `${d.type}-${d.device}`;
    const hasDevice = d.deviceFile && local(d.deviceFile.name);
    if (hasDevice) {
      points.push({
        name: devName,
        role: "device",
        files: [d.deviceFile!.name],
        addresses: [d.device],
        ...(d.times.capturing ? { startedAt: new Date(d.times.capturing) } : {}),
        ...(d.times.stopped ? { stoppedAt: new Date(d.times.stopped) } : {}),
      });
    }
    for (const a of d.agents) {
      const files = a.files.filter((f) => !f.remote && local(f.name)).map((f) => f.name);
      if (!files.length) continue;
      const name = `server-${a.agent}-for-${d.device}`;
      points.push({ name, role: "server", files, ...(d.times.agentsStopSent ? { stoppedAt: new Date(d.times.agentsStopSent) } : {}) });
      if (hasDevice) pairs.push([devName, name]);
    }
    if (d.stopReason === "alarm" && d.stopEvent) {
      const t = new Date(d.stopEvent.receivedAt);
      if (!alarmAt || t < alarmAt) alarmAt = t;
    }
  }
  return { points, pairs, ...(alarmAt ? { alarmAt } : {}) };
}

/** Write merged.pcapng and the reports for a run folder; undefined when it holds no capture. */
export async function reportRun(folder: string): Promise<RunReportResult | undefined> {
  const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8")) as Manifest;
  const { points, pairs, alarmAt } = capturePoints(manifest, folder);
  if (!points.length) return undefined;
  const r = await writeRunReport(folder, { points, ...(pairs.length ? { pairs } : {}), ...(alarmAt ? { alarmAt } : {}) });
  return { summaryLine: r.summaryLine, files: r.files };
}
