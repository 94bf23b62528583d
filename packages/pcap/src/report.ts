// The run report written into a run folder: merged.pcapng (every point on the reference clock) and
// report.txt, report.json and report.html, each replaced atomically.
import { rename, writeFile, unlink } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { mergeCaptures, type MergeResult } from "./merge.js";
import { offsetText } from "./report-format.js";
import { renderHtml } from "./report-html.js";
import { buildModel, fileReport, summaryLine } from "./report-model.js";
import { renderJson, renderText } from "./report-text.js";
import type { ReportOptions, RunReport } from "./report-types.js";

const REPORT_FILES = { merged: "merged.pcapng", text: "report.txt", json: "report.json", html: "report.html" } as const;

async function writeAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode: 0o640 });
  await rename(tmp, path);
}

/**
 * Write merged.pcapng, report.txt, report.json and report.html into `runFolder` (each replaced
 * atomically) and return the one-line summary. Capture damage is reported, not thrown; only
 * output I/O failures and invalid options throw.
 * @example
 * const { summaryLine, files } = await writeRunReport("runs/run-20261103-101500-ab12", {
 *   points: [
 *     { name: "msbr-192.0.2.10", role: "device", files: ["CPE_device_192.0.2.10_2026-11-03T10.15.00.000000.pcap"] },
 *     { name: "ovoc-198.51.100.5", role: "server", files: ["OVOC_device_192.0.2.10_2026-11-03T10.15.00.000000-1.pcap"] },
 *   ],
 *   alarmAt: new Date("2026-11-03T10:32:15Z"),
 * });
 * // summaryLine: "capsync report: msbr-192.0.2.10→ovoc-198.51.100.5 lost 37/1200 (3.08%) from 10:32:01.123, delay p50 12.300 ms; ..."
 */
export async function writeRunReport(
  runFolder: string,
  opts: ReportOptions,
): Promise<{ summaryLine: string; files: string[]; report: RunReport }> {
  const abs = (f: string) => (isAbsolute(f) ? f : join(runFolder, f));
  const points = opts.points.map((p) => ({ ...p, files: p.files.map(abs) }));
  const merged = join(runFolder, REPORT_FILES.merged);

  // Offsets first (the merge applies them), then one merge pass; the report reuses the matches.
  const { report: report0, models } = await buildModel({ ...opts, points, runFolder });
  const tmpMerged = `${merged}.${process.pid}.tmp`;
  let mergeResult: MergeResult;
  try {
    mergeResult = await mergeCaptures(
      points.map((p) => {
        const rp = report0.points.find((x) => x.name === p.name)!;
        const m = models.get(p.name);
        const off = m?.offset;
        const comment =
          p.name === report0.reference
            ? `capsync: reference clock for this merge (role ${p.role})`
            : off === undefined
              ? `capsync: clock offset against ${report0.reference} unknown, timestamps unadjusted`
              : `capsync: clock offset ${off} ns (${offsetText(rp.clockOffset.seconds, rp.clockOffset.uncertaintyNanos, rp.clockOffset.driftPpm)}) against ${report0.reference} removed from every timestamp`;
        const src: Parameters<typeof mergeCaptures>[0][number] = { name: p.name, description: `capsync ${p.role} capture point`, files: p.files, comments: [comment] };
        if (off !== undefined) src.offsetNanos = off;
        if (m && m.driftPpm !== 0) ((src.driftPpm = m.driftPpm), (src.refNanos = m.ref + m.offset)); // merge reads the source's own clock
        return src;
      }),
      tmpMerged,
      { comment: `capsync merge of ${points.length} capture point(s); time axis: clock of ${report0.reference}` },
    );
    await rename(tmpMerged, merged);
  } catch (e) {
    await unlink(tmpMerged).catch(() => undefined);
    throw e;
  }
  const report: RunReport = { ...report0, merged: { file: merged, packets: mergeResult.packets, interfaces: mergeResult.interfaces.map((i) => i.name) } };
  // Points in no pair were read only by the merge: take their counts and file outcomes from it.
  const paired = new Set(report0.pairs.flatMap((p) => [p.a, p.b]));
  report.points = report0.points.map((p) => {
    const src = mergeResult.sources.find((s) => s.name === p.name);
    return paired.has(p.name) || !src ? p : { ...p, packets: src.packets, files: src.files.map(fileReport) };
  });
  report.summaryLine = summaryLine(report);
  const files = [merged];
  for (const [name, render] of [
    [REPORT_FILES.text, renderText],
    [REPORT_FILES.json, renderJson],
    [REPORT_FILES.html, renderHtml],
  ] as const) {
    const path = join(runFolder, name);
    await writeAtomic(path, render(report));
    files.push(path);
  }
  return { summaryLine: report.summaryLine, files, report };
}
