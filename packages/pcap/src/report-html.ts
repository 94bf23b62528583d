// report.html from the report model: one self-contained page with inline SVG timelines, no
// scripts, no external resources. Written in parts (head, pair sections or overview rows, tail)
// so a fleet's page is written as it goes.
import { basename } from "node:path";
import { fmtDuration, isoNanos, offsetText, timeOfDay } from "./report-format.js";
import type { ReportDirection, ReportPair, RunReport } from "./report-types.js";
import type { PairDigest } from "./report-model.js";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

function isoToNs(iso: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)\.(\d{9})Z$/.exec(iso);
  if (!m) return BigInt(Date.parse(iso)) * 1_000_000n;
  return BigInt(Date.parse(`${m[1]}Z`)) * 1_000_000n + BigInt(m[2]!);
}

function timelineSvg(d: ReportDirection, alarm: string | undefined, idBase: string): string {
  const W = 960;
  const H1 = 120;
  const H2 = 110;
  const padL = 76;
  const padR = 12;
  const tl = d.timeline;
  const n = tl.sent.length;
  const plotW = W - padL - padR;
  const bw = plotW / Math.max(1, n);
  const start = isoToNs(tl.start);
  const spanNs = tl.binNanos * n;
  const xOf = (t: bigint) => padL + (Number(t - start) / spanNs) * plotW;
  const maxCount = Math.max(1, ...tl.sent);
  const maxDelay = Math.max(1, ...tl.delayMaxNanos.map((x) => x ?? 0));
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" id="${idBase}-timeline" class="timeline" viewBox="0 0 ${W} ${H1 + H2 + 40}" width="${W}" height="${H1 + H2 + 40}" role="img" aria-label="${esc(`${d.from} to ${d.to}: delivered and lost packets, one-way delay over time`)}">`);
  parts.push(`<rect x="${padL}" y="4" width="${plotW}" height="${H1}" class="frame"/>`);
  parts.push(`<rect x="${padL}" y="${H1 + 24}" width="${plotW}" height="${H2}" class="frame"/>`);
  for (let i = 0; i < n; i++) {
    const x = (padL + i * bw).toFixed(2);
    const w = Math.max(0.5, bw - 0.3).toFixed(2);
    const hd = ((tl.delivered[i]! / maxCount) * (H1 - 4)).toFixed(2);
    const hl = ((tl.lost[i]! / maxCount) * (H1 - 4)).toFixed(2);
    if (tl.delivered[i]! > 0) parts.push(`<rect class="ok" x="${x}" y="${(4 + H1 - Number(hd)).toFixed(2)}" width="${w}" height="${hd}"><title>${tl.delivered[i]} delivered</title></rect>`);
    if (tl.lost[i]! > 0) parts.push(`<rect class="lost" x="${x}" y="${(4 + H1 - Number(hd) - Number(hl)).toFixed(2)}" width="${w}" height="${hl}"><title>${tl.lost[i]} lost</title></rect>`);
  }
  const yD = (v: number) => H1 + 24 + H2 - (v / maxDelay) * (H2 - 4);
  let band = "";
  let line = "";
  for (let i = 0; i < n; i++) {
    const mn = tl.delayMinNanos[i];
    const mx = tl.delayMaxNanos[i];
    const me = tl.delayMeanNanos[i];
    if (mn === null || mx === null || me === null || mn === undefined || mx === undefined || me === undefined) continue;
    const x = padL + i * bw;
    band += `<rect class="band" x="${x.toFixed(2)}" y="${yD(mx).toFixed(2)}" width="${Math.max(0.5, bw).toFixed(2)}" height="${Math.max(0.5, yD(mn) - yD(mx)).toFixed(2)}"/>`;
    line += `${line === "" ? "M" : "L"}${(x + bw / 2).toFixed(2)},${yD(me).toFixed(2)}`;
  }
  parts.push(band);
  if (line) parts.push(`<path class="mean" d="${line}"/>`);
  parts.push(`<text x="${padL - 4}" y="14" class="axis" text-anchor="end">${maxCount}</text>`);
  parts.push(`<text x="${padL - 4}" y="${H1 + 4}" class="axis" text-anchor="end">0</text>`);
  parts.push(`<text x="${padL - 4}" y="${H1 + 36}" class="axis" text-anchor="end">${esc(fmtDuration(maxDelay))}</text>`);
  parts.push(`<text x="${padL - 4}" y="${H1 + 24 + H2}" class="axis" text-anchor="end">0</text>`);
  parts.push(`<text x="${padL}" y="${H1 + H2 + 38}" class="axis">${esc(timeOfDay(tl.start))}</text>`);
  parts.push(`<text x="${W - padR}" y="${H1 + H2 + 38}" class="axis" text-anchor="end">${esc(timeOfDay(isoNanos(start + BigInt(Math.round(spanNs)))))}</text>`);
  parts.push(`<text x="${padL + 4}" y="16" class="label">packets per ${esc(fmtDuration(tl.binNanos))}: delivered / lost</text>`);
  parts.push(`<text x="${padL + 4}" y="${H1 + 36}" class="label">one-way delay (min–max band, mean line)</text>`);
  if (d.failure) {
    const x = xOf(isoToNs(d.failure.at));
    if (x >= padL && x <= W - padR) parts.push(`<line class="fail" x1="${x.toFixed(2)}" x2="${x.toFixed(2)}" y1="4" y2="${H1 + 24 + H2}"><title>${esc(`${d.failure.kind} from ${d.failure.at}`)}</title></line>`);
  }
  if (alarm) {
    const x = xOf(isoToNs(alarm));
    if (x >= padL && x <= W - padR) {
      parts.push(`<line class="alarm" x1="${x.toFixed(2)}" x2="${x.toFixed(2)}" y1="4" y2="${H1 + 24 + H2}"/>`);
      parts.push(`<text class="alarmtext" x="${(x + 3).toFixed(2)}" y="${H1 + 18}">alarm</text>`);
    }
  }
  parts.push("</svg>");
  return parts.join("");
}

const num = (cls: string, v: number | string) => `<td class="num ${cls}" data-value="${esc(String(v))}">${esc(String(v))}</td>`;

/** The page up to and including the capture points table. */
export function htmlHead(r: RunReport): string {
  const H: string[] = [];
  H.push("<!DOCTYPE html>");
  H.push('<html lang="en"><head><meta charset="utf-8">');
  H.push('<meta name="viewport" content="width=device-width, initial-scale=1">');
  H.push(`<title>capsync report${r.runFolder ? ` — ${esc(basename(r.runFolder))}` : ""}</title>`);
  H.push(`<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.lost[data-value]:not([data-value="0"]){color:#b42318;font-weight:600}
.summary{font-family:ui-monospace,monospace;background:#f6f8fa;padding:8px;border-radius:6px}
.meta{color:#57606a}.err{color:#b42318}.mono{font-family:ui-monospace,monospace;font-size:12px}
svg .frame{fill:#fafbfc;stroke:#d0d7de}svg .ok{fill:#2da44e}svg .lost{fill:#cf222e}svg .band{fill:#9ecbff}svg .mean{fill:none;stroke:#0969da;stroke-width:1.5}
svg .axis{font-size:11px;fill:#57606a}svg .label{font-size:11px;fill:#1b1f24}svg .fail{stroke:#cf222e;stroke-width:1.5;stroke-dasharray:4 3}
svg .alarm{stroke:#bf8700;stroke-width:2}svg .alarmtext{font-size:11px;fill:#bf8700}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
</style></head><body>`);
  H.push("<h1>capsync loss / delay report</h1>");
  H.push(`<p class="meta">generated ${esc(r.generatedAt)}${r.runFolder ? ` · run folder <span class="mono">${esc(r.runFolder)}</span>` : ""} · time axis: clock of <b>${esc(r.reference)}</b> (UTC)${r.alarm ? ` · alarm <b id="alarm-time">${esc(r.alarm.at)}</b> (orchestrator clock)` : ""}</p>`);
  H.push(`<p class="summary" id="summary">${esc(r.summaryLine)}</p>`);
  H.push("<h2>Capture points</h2><table><tr><th>name</th><th>role</th><th>packets</th><th>first</th><th>last</th><th>clock vs reference</th><th>files</th></tr>");
  for (const p of r.points) {
    const files = [
      ...p.files.map((f) => `${esc(basename(f.path))} (${f.packets})${f.error ? ` <span class="err">${esc(f.error.code)} at byte ${f.error.offset}</span>` : ""}`),
      ...(p.notCollected ?? []).map((n) => `<span class="err notcollected">${esc(`${n.role} side not collected: ${n.name} (${n.reason})`)}</span>`),
    ].join("<br>");
    H.push(
      `<tr><td>${esc(p.name)}</td><td>${esc(p.role)}</td>${num("packets", p.packets)}<td class="mono">${esc(p.first ?? "—")}</td><td class="mono">${esc(p.last ?? "—")}</td><td>${p.name === r.reference ? "reference" : esc(offsetText(p.clockOffset.seconds, p.clockOffset.uncertaintyNanos, p.clockOffset.driftPpm))}</td><td class="mono">${files}</td></tr>`,
    );
  }
  H.push("</table>");
  return `${H.join("\n")}\n`;
}

/** Start of the one-row-per-pair table a page with many pairs has before the pairs in full. */
export function htmlOverviewHead(pairs: number, detailed: number): string {
  return `<h2>Pairs</h2>\n<p class="meta" id="pairs-overview-note">${pairs} pairs; in full below: the ${detailed} with most loss (every pair in full in report.txt and report.json)</p>\n<table id="pairs-overview"><tr><th>pair</th><th>direction</th><th>sent</th><th>lost</th><th>loss %</th><th>delay median</th></tr>\n`;
}

/** The overview rows of one pair (pair index `pi`, as in the full sections' ids). */
export function htmlOverviewRows(pr: PairDigest, pi: number): string {
  return (
    pr.directions
      .map(
        (d, di) =>
          `<tr id="pair-${pi}-${di}">${di === 0 ? `<td rowspan="2">${esc(pr.a)} ↔ ${esc(pr.b)}</td>` : ""}<td>${esc(d.from)} → ${esc(d.to)}</td>${num("sent", d.sent)}${num("lost", d.lost)}${num("losspct", d.lossPercent.toFixed(2))}${num("dmed", fmtDuration(d.delay?.medianNanos))}</tr>`,
      )
      .join("\n") + "\n"
  );
}
export const htmlOverviewTail = "</table>\n";

/** One pair in full: its table, timelines, failure and flows. */
export function htmlPair(pr: ReportPair, pi: number, alarm: string | undefined): string {
  const H: string[] = [];
  H.push(`<h2>${esc(pr.a)} ↔ ${esc(pr.b)}</h2>`);
  const c = pr.clock;
  H.push(`<p>clock ${esc(pr.b)} − ${esc(pr.a)}: <b>${esc(offsetText(c.offsetSeconds, c.uncertaintyNanos, c.driftPpm))}</b> <span class="meta">(${esc(c.method)}, ${c.samplesAB}+${c.samplesBA} matched samples)</span></p>`);
  H.push("<table><tr><th>direction</th><th>sent</th><th>delivered</th><th>lost</th><th>loss %</th><th>duplicates</th><th>unexpected</th><th>reordered</th><th>delay min</th><th>median</th><th>p99</th><th>max</th></tr>");
  pr.directions.forEach((d, di) => {
    H.push(
      `<tr id="dir-${pi}-${di}"><td>${esc(d.from)} → ${esc(d.to)}</td>${num("sent", d.sent)}${num("delivered", d.delivered)}${num("lost", d.lost)}${num("losspct", d.lossPercent.toFixed(2))}${num("dup", d.duplicates)}${num("unexp", d.unexpected)}${num("reord", d.reordered)}${num("dmin", fmtDuration(d.delay?.minNanos))}${num("dmed", fmtDuration(d.delay?.medianNanos))}${num("dp99", fmtDuration(d.delay?.p99Nanos))}${num("dmax", fmtDuration(d.delay?.maxNanos))}</tr>`,
    );
  });
  H.push("</table>");
  pr.directions.forEach((d, di) => {
    H.push(`<h3>${esc(d.from)} → ${esc(d.to)}</h3>`);
    H.push('<p class="legend"><span style="background:#2da44e"></span>delivered<span style="background:#cf222e"></span>lost<span style="background:#9ecbff"></span>delay min–max<span style="background:#0969da"></span>mean delay<span style="background:#bf8700"></span>alarm</p>');
    H.push(timelineSvg(d, alarm, `dir-${pi}-${di}`));
    const f = d.failure;
    if (f) {
      const when = f.beforeAlarmMs === undefined ? "" : `, ${Math.abs(f.beforeAlarmMs / 1000).toFixed(3)} s ${f.beforeAlarmMs <= 0 ? "before" : "after"} the alarm`;
      H.push(`<p id="failure-${pi}-${di}"><b>${f.kind === "blackout" ? "Nothing got through from" : "Largest loss burst at"} <span class="mono">${esc(f.at)}</span></b> (${f.lostInRun} lost${esc(when)})</p>`);
      H.push('<table class="mono"><tr><th>time</th><th>packet</th><th>delay</th></tr>');
      for (const x of f.lastDelivered) H.push(`<tr><td>${esc(x.at)}</td><td>${esc(x.summary)}</td><td class="num">${esc(fmtDuration(x.delayNanos))}</td></tr>`);
      H.push(`<tr><th colspan="3">first lost</th></tr>`);
      for (const x of f.firstLost) H.push(`<tr class="lostrow"><td>${esc(x.at)}</td><td>${esc(x.summary)}</td><td class="num">lost</td></tr>`);
      H.push("</table>");
    }
    if (d.flows.length > 0) {
      H.push("<details><summary>flows</summary><table><tr><th>flow</th><th>sent</th><th>lost</th><th>dup</th><th>reordered</th><th>median</th><th>p99</th><th>first lost</th></tr>");
      for (const fl of d.flows.slice(0, 200)) {
        H.push(`<tr><td class="mono">${esc(fl.flow)}</td>${num("sent", fl.sent)}${num("lost", fl.lost)}${num("dup", fl.duplicates)}${num("reord", fl.reordered)}<td class="num">${esc(fmtDuration(fl.delay?.medianNanos))}</td><td class="num">${esc(fmtDuration(fl.delay?.p99Nanos))}</td><td class="mono">${esc(fl.firstLost ?? "")}</td></tr>`);
      }
      H.push("</table></details>");
    }
  });
  for (const n of pr.notes) H.push(`<p class="meta">note: ${esc(n)}</p>`);
  return `${H.join("\n")}\n`;
}

/** Paths, the merged file, notes, end of page. */
export function htmlTail(r: RunReport): string {
  const H: string[] = [];
  if (r.paths.length > 0) {
    H.push("<h2>Along the path</h2>");
    for (const p of r.paths) {
      H.push(`<h3>${esc(p.direction)}</h3><table><tr><th>hop</th><th>sent</th><th>lost</th></tr>`);
      for (const h of p.hops) H.push(`<tr><td>${esc(h.from)} → ${esc(h.to)}</td>${num("sent", h.sent)}${num("lost", h.lost)}</tr>`);
      H.push("</table>");
      if (p.vanishedBetween) H.push(`<p class="vanished">Packets vanished between <b>${esc(p.vanishedBetween[0])}</b> and <b>${esc(p.vanishedBetween[1])}</b>.</p>`);
    }
  }
  if (r.merged) H.push(`<p class="meta">merged capture: <span class="mono">${esc(basename(r.merged.file))}</span> — ${r.merged.packets} packets, interfaces ${esc(r.merged.interfaces.join(", "))}</p>`);
  for (const n of r.notes) H.push(`<p class="meta">note: ${esc(n)}</p>`);
  H.push("</body></html>");
  return `${H.join("\n")}\n`;
}

/** The whole page of a report held in memory, every pair in full. */
export function renderHtml(r: RunReport): string {
  return htmlHead(r) + r.pairs.map((pr, pi) => htmlPair(pr, pi, r.alarm?.at)).join("") + htmlTail(r);
}
