// report.txt (terminals and tickets) and report.json (scripts) from the report model, in three
// parts each (before the pairs, one pair, after the pairs) so a fleet's report is written as it goes.
import { basename } from "node:path";
import { fmtDuration, offsetText } from "./report-format.js";
import type { ReportPair, RunReport } from "./report-types.js";

function table(rows: string[][], right: Set<number> = new Set()): string[] {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r
      .map((c, i) => (right.has(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

/** Everything before the pairs: header and capture points. Lines end in "\n". */
export function textHead(r: RunReport): string {
  const L: string[] = [];
  L.push("capsync loss / delay report");
  L.push(`generated ${r.generatedAt}${r.runFolder ? `  run folder ${r.runFolder}` : ""}`);
  L.push(`time axis: clock of ${r.reference} (UTC); alarm: ${r.alarm ? `${r.alarm.at} (orchestrator clock)` : "none"}`);
  L.push("");
  L.push("Capture points");
  L.push(
    ...table(
      [["name", "role", "packets", "first", "last", `clock vs ${r.reference}`], ...r.points.map((p) => [p.name, p.role, String(p.packets), p.first ?? "—", p.last ?? "—", p.name === r.reference ? "reference" : offsetText(p.clockOffset.seconds, p.clockOffset.uncertaintyNanos, p.clockOffset.driftPpm)])].map((x) => x.map((c) => `  ${c}`.slice(0))),
      new Set([2]),
    ).map((l) => l),
  );
  for (const p of r.points) {
    for (const f of p.files) {
      if (f.error?.code === "io") L.push(`  ! ${p.name}: ${basename(f.path)}: cannot be read (${f.error.message})`);
      else if (f.error) L.push(`  ! ${p.name}: ${basename(f.path)}: ${f.error.code} at byte ${f.error.offset} (${f.packets} packets before it kept)`);
    }
    for (const n of p.notCollected ?? []) L.push(`  ! ${p.name}: ${n.role} side not collected: ${n.name} (${n.reason})`);
  }
  return `${L.join("\n")}\n`;
}

/** One pair's section. */
export function textPair(pr: ReportPair): string {
  const L: string[] = [];
  L.push("");
  L.push(`Pair ${pr.a} ↔ ${pr.b}`);
  const c = pr.clock;
  L.push(`  clock: ${pr.b} − ${pr.a} = ${offsetText(c.offsetSeconds, c.uncertaintyNanos, c.driftPpm)} (${c.method}, ${c.samplesAB}+${c.samplesBA} matched samples)`);
  L.push(
    ...table(
      [
        ["  direction", "sent", "delivered", "lost", "loss %", "dup", "unexp", "reord", "delay min", "median", "p99", "max"],
        ...pr.directions.map((d) => [
          `  ${d.from} → ${d.to}`,
          String(d.sent),
          String(d.delivered),
          String(d.lost),
          d.lossPercent.toFixed(2),
          String(d.duplicates),
          String(d.unexpected),
          String(d.reordered),
          fmtDuration(d.delay?.minNanos),
          fmtDuration(d.delay?.medianNanos),
          fmtDuration(d.delay?.p99Nanos),
          fmtDuration(d.delay?.maxNanos),
        ]),
      ],
      new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
    ),
  );
  for (const d of pr.directions) {
    const ex = d.excluded;
    if (ex.beforeReceiverStart + ex.afterReceiverStop + ex.inFlightAtStop + ex.receivedOutsideSenderCapture > 0) {
      L.push(
        `  ${d.from} → ${d.to}: not counted: ${ex.beforeReceiverStart} sent before ${d.to} started, ${ex.afterReceiverStop} after it stopped, ${ex.inFlightAtStop} in flight at its stop, ${ex.receivedOutsideSenderCapture} received while ${d.from} was not capturing`,
      );
    }
    const f = d.failure;
    if (!f) continue;
    const when = f.beforeAlarmMs === undefined ? "" : `, ${Math.abs(f.beforeAlarmMs / 1000).toFixed(3)} s ${f.beforeAlarmMs <= 0 ? "before" : "after"} the alarm`;
    L.push("");
    L.push(`  ${d.from} → ${d.to}: ${f.kind === "blackout" ? "nothing got through from" : "largest loss burst at"} ${f.at} (${f.lostInRun} lost${when})`);
    L.push("    last delivered:");
    for (const x of f.lastDelivered) L.push(`      ${x.at}  ${x.summary}  delay ${fmtDuration(x.delayNanos)}`);
    L.push("    first lost:");
    for (const x of f.firstLost) L.push(`      ${x.at}  ${x.summary}`);
  }
  for (const d of pr.directions) {
    if (d.flows.length === 0) continue;
    L.push("");
    L.push(`  flows ${d.from} → ${d.to}${d.flowsOmitted > 0 ? ` (top ${d.flows.length}, ${d.flowsOmitted} more in report.json)` : ""}`);
    L.push(
      ...table(
        [["    flow", "sent", "lost", "dup", "reord", "median", "p99", "first lost"], ...d.flows.slice(0, 20).map((f) => [`    ${f.flow}`, String(f.sent), String(f.lost), String(f.duplicates), String(f.reordered), fmtDuration(f.delay?.medianNanos), fmtDuration(f.delay?.p99Nanos), f.firstLost ?? ""])],
        new Set([1, 2, 3, 4, 5, 6]),
      ),
    );
  }
  for (const n of pr.notes) L.push(`  note: ${n}`);
  return `${L.join("\n")}\n`;
}

/** Everything after the pairs: paths, the merged file, notes and the summary line. */
export function textTail(r: RunReport): string {
  const L: string[] = [];
  for (const p of r.paths) {
    L.push("");
    L.push(`Path ${p.direction}: ${p.hops.map((h) => `${h.from}→${h.to} lost ${h.lost}/${h.sent}`).join(", ")}${p.vanishedBetween ? `; packets vanished between ${p.vanishedBetween[0]} and ${p.vanishedBetween[1]}` : ""}`);
  }
  if (r.merged) {
    L.push("");
    L.push(`merged: ${r.merged.file} (${r.merged.packets} packets; interfaces ${r.merged.interfaces.join(", ")})`);
  }
  for (const n of r.notes) L.push(`note: ${n}`);
  L.push("");
  L.push(r.summaryLine);
  return `${L.join("\n")}\n`;
}

/** The whole report.txt of a report held in memory. */
export function renderText(r: RunReport): string {
  return textHead(r) + r.pairs.map(textPair).join("") + textTail(r);
}

export function renderJson(r: RunReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

/**
 * report.json around its pairs: the text before the first pair and after the last, so that
 * head + pairs joined by jsonPairSeparator + tail is exactly renderJson of the whole report.
 */
export function jsonAround(r: RunReport, pairCount: number): [string, string] {
  const entries = Object.entries(r).filter(([, v]) => v !== undefined);
  const parts = entries.map(([k, v]) => (k === "pairs" ? null : `  ${JSON.stringify(k)}: ${JSON.stringify(v, null, 2).replace(/\n/g, "\n  ")}`));
  const at = entries.findIndex(([k]) => k === "pairs");
  const before = parts.slice(0, at);
  const after = parts.slice(at + 1);
  const open = pairCount === 0 ? `  "pairs": []` : `  "pairs": [\n`;
  const close = pairCount === 0 ? "" : "\n  ]";
  const head = `{\n${[...before, ""].join(",\n")}${open}`;
  const tail = `${close}${after.length ? `,\n${after.join(",\n")}` : ""}\n}\n`;
  return [head, tail];
}

/** One pair as an element of report.json's pairs array. */
export function jsonPair(pr: ReportPair): string {
  return `    ${JSON.stringify(pr, null, 2).replace(/\n/g, "\n    ")}`;
}
export const jsonPairSeparator = ",\n";
