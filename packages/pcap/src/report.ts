// The run report written into a run folder: merged.pcapng (every point on the reference clock) and
// report.txt, report.json and report.html, each replaced atomically. Written as it goes: each
// pair's sections are spooled to temporary files right after its matching and only a digest of it
// stays in memory (~0.6 kB; pass 1's ~4 kB per pair until then): never every pair's detail at once.
import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { mergeCaptures, type MergeResult } from "./merge.js";
import { offsetText } from "./report-format.js";
import { htmlHead, htmlOverviewHead, htmlOverviewRows, htmlOverviewTail, htmlPair, htmlTail } from "./report-html.js";
import { digestOf, fileReport, pathsOf, ReportModel, summaryLine, worseFirst, type PairDigest } from "./report-model.js";
import { jsonAround, jsonPair, jsonPairSeparator, textHead, textPair, textTail } from "./report-text.js";
import type { ReportOptions, ReportPair, RunReport } from "./report-types.js";

const REPORT_FILES = { merged: "merged.pcapng", text: "report.txt", json: "report.json", html: "report.html" } as const;
const HTML_DETAIL_PAIRS = 20;

/** Text appended to a temporary file as it comes (one write per pair and format: no big strings). */
class Spool {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}
  static async create(path: string): Promise<Spool> {
    return new Spool(path, await open(path, "w+", 0o600));
  }
  async write(s: string): Promise<void> {
    await this.fh.write(s);
  }
  /** Append this spool's content to `out` in bounded chunks. */
  async copyTo(out: FileHandle): Promise<void> {
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await this.fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return;
      await out.write(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  }
  async discard(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await unlink(this.path).catch(() => undefined);
  }
}

/** Write head + spool + tail into `path` through a temporary file renamed over it. */
async function writeAssembled(path: string, head: string, body: Spool | undefined, tail: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, "w", 0o640);
  try {
    await fh.write(head);
    if (body) await body.copyTo(fh);
    await fh.write(tail);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
}

/** Pair with most loss first (its worse direction), ties in pair order. */
const pairWorse = (x: { pr: ReportPair; i: number }, y: { pr: ReportPair; i: number }) => {
  const wx = [...x.pr.directions].sort(worseFirst)[0]!;
  const wy = [...y.pr.directions].sort(worseFirst)[0]!;
  return worseFirst(wx, wy) || x.i - y.i;
};

/**
 * Write merged.pcapng, report.txt, report.json and report.html into `runFolder` (each replaced
 * atomically) and return the one-line summary. Capture damage is reported, not thrown; only
 * output I/O failures and invalid options throw. The returned `report` holds every pair when
 * there are at most `htmlDetailPairs` (20) of them, else the ones with most loss; report.json and
 * report.txt always hold all of them.
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

  // Pass 1 of every pair and the offsets first (the merge applies them), then pass 2 pair by pair.
  const model = await ReportModel.build({ ...opts, points, runFolder });
  const report0 = model.report;
  const models = model.models;
  const detail = Math.max(1, opts.htmlDetailPairs ?? HTML_DETAIL_PAIRS);
  const overview = model.pairCount > detail;
  const tag = `${process.pid}.tmp`;
  const spools: Spool[] = [];
  const spool = async (name: string) => {
    const sp = await Spool.create(join(runFolder, `.${name}.pairs.${tag}`));
    spools.push(sp);
    return sp;
  };
  try {
    const txt = await spool(REPORT_FILES.text);
    const json = await spool(REPORT_FILES.json);
    const html = await spool(REPORT_FILES.html);
    const digests: PairDigest[] = [];
    // report.html: every pair in full when few; else one row each and the `detail` worst in full.
    let kept: { pr: ReportPair; i: number }[] = [];
    for (let i = 0; ; i++) {
      const pr = await model.matchNext();
      if (pr === undefined) break;
      digests.push(digestOf(pr));
      await txt.write(textPair(pr));
      await json.write((i > 0 ? jsonPairSeparator : "") + jsonPair(pr));
      if (overview) await html.write(htmlOverviewRows(pr, i));
      kept.push({ pr, i });
      if (kept.length > detail) kept = kept.sort(pairWorse).slice(0, detail);
    }
    kept.sort((x, y) => x.i - y.i);

    // The merge after pass 2: run before it, the two phases add up in RSS (bench/report-fleet.mjs).
    const tmpMerged = `${merged}.${tag}`;
    let mergeResult: MergeResult;
    try {
      mergeResult = await mergeCaptures(
        points.map((p, pi) => {
          const rp = report0.points[pi]!;
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

    // Points in no pair were read only by the merge: take their counts and file outcomes from it.
    const paired = new Set(model.pairNames.flat());
    const report: RunReport = {
      ...report0,
      points: report0.points.map((p, pi) => {
        const src = mergeResult.sources[pi];
        return paired.has(p.name) || !src ? p : { ...p, packets: src.packets, files: src.files.map(fileReport) };
      }),
      paths: pathsOf(digests, opts.path),
      merged: { file: merged, packets: mergeResult.packets, interfaces: mergeResult.interfaces.map((i) => i.name) },
    };
    report.summaryLine = summaryLine(report, digests);
    const [jsonHead, jsonTail] = jsonAround(report, digests.length);
    const alarm = report.alarm?.at;
    const htmlBody = overview ? htmlOverviewHead(digests.length, kept.length) : "";
    const htmlAfter = (overview ? htmlOverviewTail : "") + kept.map(({ pr, i }) => htmlPair(pr, i, alarm)).join("") + htmlTail(report);
    const files = [merged];
    const out = [
      [REPORT_FILES.text, textHead(report), txt, textTail(report)],
      [REPORT_FILES.json, jsonHead, json, jsonTail],
      [REPORT_FILES.html, htmlHead(report) + htmlBody, overview ? html : undefined, htmlAfter],
    ] as const;
    for (const [name, head, body, tail] of out) {
      const path = join(runFolder, name);
      await writeAssembled(path, head, body, tail);
      files.push(path);
    }
    return { summaryLine: report.summaryLine, files, report: { ...report, pairs: kept.map((k) => k.pr) } };
  } finally {
    for (const sp of spools) await sp.discard();
  }
}
