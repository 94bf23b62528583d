// The run report: from the capture points of a run folder, a merged pcapng and a loss/delay
// report (report.txt for terminals and tickets, report.json for scripts, report.html with inline
// SVG timelines). Pure model building + rendering; the only I/O is reading captures and writing
// the four files atomically into the run folder.
import { rename, writeFile, unlink } from "node:fs/promises";
import { isAbsolute, join, basename } from "node:path";
import type { DelayStats } from "./histogram.js";
import { mergeCaptures, type MergeResult } from "./merge.js";
import { estimatePair, matchEstimated, type ClockEstimate, type DirectionResult, type MatchOptions, type PacketRow, type PairResult } from "./match.js";
import type { FileOutcome } from "./ordered.js";

export type CapturePointRole = "device" | "server" | "hop";

export interface CapturePoint {
  /** Unique name, shown as the interface name in merged.pcapng, e.g. "msbr-192.0.2.10". */
  name: string;
  role: CapturePointRole;
  /** Capture files (absolute, or relative to the run folder), in any order. */
  files: string[];
  /** Addresses on this point's side (device management IP, server IP): helps scoping, optional. */
  addresses?: string[];
  /**
   * When the capture started/stopped, on the orchestrator's clock (taken as the reference clock),
   * if known; else the point's first/last packet. Without a stop time, packets sent after the
   * receiver's last packet cannot count as lost: they are reported as "after it stopped".
   */
  startedAt?: Date;
  stoppedAt?: Date;
}

export interface ReportOptions {
  points: CapturePoint[];
  /** Alarm time (orchestrator clock, assumed close to the reference point's clock). */
  alarmAt?: Date;
  /** Point pairs to match; default: consecutive points in the order given (device … server). */
  pairs?: [string, string][];
  /**
   * A multi-hop path, point names in order: the path summary ("where packets vanished") follows the
   * pairs between consecutive names only. Default: all pairs, in order.
   */
  path?: string[];
  /** Point whose clock is the report's time axis; default: the first server, else the first point. */
  reference?: string;
  match?: MatchOptions;
}

export interface ReportFile {
  path: string;
  packets: number;
  format?: string;
  error?: { code: string; offset: number; message: string };
}

export interface ReportPoint {
  name: string;
  role: CapturePointRole;
  packets: number;
  first?: string;
  last?: string;
  /** This point's clock minus the reference clock; null when no path of matched pairs links them. */
  clockOffset: { nanos: string | null; seconds: number | null; uncertaintyNanos: number | null; driftPpm: number };
  files: ReportFile[];
}

export interface ReportRow {
  at: string;
  summary: string;
  flow: string;
  delayNanos?: number;
}

export interface ReportDirection {
  from: string;
  to: string;
  sent: number;
  delivered: number;
  lost: number;
  lossPercent: number;
  excluded: DirectionResult["excluded"];
  duplicates: number;
  unexpected: number;
  reordered: number;
  delay: DelayStats | null;
  flows: (Omit<DirectionResult["flows"][number], "firstLostNanos"> & { firstLost?: string })[];
  flowsOmitted: number;
  failure: null | {
    kind: "blackout" | "burst";
    at: string;
    /** Failure start minus alarm time, ms (negative: before the alarm). */
    beforeAlarmMs?: number;
    lostInRun: number;
    lastDelivered: ReportRow[];
    firstLost: ReportRow[];
  };
  timeline: {
    start: string;
    binNanos: number;
    sent: number[];
    delivered: number[];
    lost: number[];
    delayMinNanos: (number | null)[];
    delayMeanNanos: (number | null)[];
    delayMaxNanos: (number | null)[];
  };
  decidedEarly: number;
}

export interface ReportPair {
  a: string;
  b: string;
  clock: Omit<ClockEstimate, "offsetNanos" | "refNanos"> & { offsetNanos: string; offsetSeconds: number; at: string };
  sides: { name: string; packets: number; nonIp: number; outOfScope: number }[];
  directions: [ReportDirection, ReportDirection];
  notes: string[];
}

export interface ReportPath {
  direction: string;
  hops: { from: string; to: string; sent: number; lost: number }[];
  /** The hop pair where most packets vanished. */
  vanishedBetween?: [string, string];
}

export interface RunReport {
  version: 1;
  generatedAt: string;
  runFolder?: string;
  reference: string;
  alarm?: { at: string; clock: "orchestrator" };
  /** Span of all packets on the reference axis. */
  span?: { start: string; end: string };
  points: ReportPoint[];
  pairs: ReportPair[];
  paths: ReportPath[];
  merged?: { file: string; packets: number; interfaces: string[] };
  summaryLine: string;
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Time formatting

const NS = 1_000_000_000n;

/** ISO 8601 with nanoseconds, UTC: 2026-11-03T10:00:00.123456789Z. */
export function isoNanos(ns: bigint): string {
  let sec = ns / NS;
  let frac = ns % NS;
  if (frac < 0n) ((frac += NS), (sec -= 1n));
  const d = new Date(Number(sec) * 1000);
  if (Number.isNaN(d.getTime())) return `${ns}ns`;
  return `${d.toISOString().slice(0, 19)}.${frac.toString().padStart(9, "0")}Z`;
}

/** A duration for humans: "850 ns", "12.345 µs", "12.300 ms", "2.134567 s". */
export function fmtDuration(ns: number | null | undefined): string {
  if (ns === null || ns === undefined || !Number.isFinite(ns)) return "—";
  const a = Math.abs(ns);
  if (a < 1e3) return `${Math.round(ns)} ns`;
  if (a < 1e6) return `${(ns / 1e3).toFixed(1)} µs`;
  if (a < 1e9) return `${(ns / 1e6).toFixed(3)} ms`;
  return `${(ns / 1e9).toFixed(6)} s`;
}

const pct = (lost: number, sent: number) => (sent === 0 ? 0 : Math.round((lost / sent) * 10000) / 100);
const timeOfDay = (iso: string) => iso.slice(11, 23);

// ---------------------------------------------------------------------------------------------
// Model

/** A point's clock minus the reference clock: offset + drift·(t − ref), t and ref on the reference axis. */
interface Model {
  offset: bigint;
  driftPpm: number;
  ref: bigint;
  uncertainty: number | null;
}

const atRef = (m: Model, t: bigint) => (m.driftPpm === 0 ? m.offset : m.offset + BigInt(Math.round(Number(t - m.ref) * m.driftPpm * 1e-6)));
/** The offset for a time read on the point's own clock. */
const atOwn = (m: Model | undefined, t: bigint) => (m === undefined ? 0n : atRef(m, t - m.offset));

/** Offsets of every point against the reference, chained through the matched pairs. */
function chainOffsets(pairs: Pick<PairResult, "a" | "b" | "clock">[], reference: string): Map<string, Model> {
  const out = new Map<string, Model>([[reference, { offset: 0n, driftPpm: 0, ref: 0n, uncertainty: 0 }]]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of pairs) {
      if (p.clock.method === "none") continue;
      const ma = out.get(p.a);
      const mb = out.get(p.b);
      const u = (x: Model) => (x.uncertainty === null || p.clock.uncertaintyNanos === null ? null : x.uncertainty + p.clock.uncertaintyNanos);
      if (ma && !mb) {
        // b − ref = (b − a) + (a − ref), at the moment the pair's estimate refers to (p.clock.refNanos on a's clock)
        const R = p.clock.refNanos - atOwn(ma, p.clock.refNanos);
        out.set(p.b, { offset: atRef(ma, R) + p.clock.offsetNanos, driftPpm: ma.driftPpm + p.clock.driftPpm, ref: R, uncertainty: u(ma) });
        grew = true;
      } else if (mb && !ma) {
        const tb = p.clock.refNanos + p.clock.offsetNanos;
        const R = tb - atOwn(mb, tb);
        out.set(p.a, { offset: atRef(mb, R) - p.clock.offsetNanos, driftPpm: mb.driftPpm - p.clock.driftPpm, ref: R, uncertainty: u(mb) });
        grew = true;
      }
    }
  }
  return out;
}

function fileReport(f: FileOutcome): ReportFile {
  const r: ReportFile = { path: f.path, packets: f.packets };
  if (f.format) r.format = f.format;
  if (f.error) r.error = { code: f.error.code, offset: f.error.offset, message: f.error.message };
  return r;
}

/** Match every pair and build the report model. Reads each pair's captures twice; writes nothing. */
export async function buildReport(opts: ReportOptions & { runFolder?: string }): Promise<RunReport> {
  return (await build(opts)).report;
}

async function build(opts: ReportOptions & { runFolder?: string; mergedFile?: string; merged?: MergeResult }): Promise<{ report: RunReport; models: Map<string, Model> }> {
  const points = opts.points;
  const names = points.map((p) => p.name);
  if (new Set(names).size !== names.length) throw new TypeError("capture point names must be unique");
  const byName = new Map(points.map((p) => [p.name, p]));
  const pairs = opts.pairs ?? points.slice(1).map((p, i) => [points[i]!.name, p.name] as [string, string]);
  for (const [a, b] of pairs) if (!byName.has(a) || !byName.has(b)) throw new TypeError(`pair ${a}/${b} names an unknown capture point`);
  const reference = opts.reference ?? points.find((p) => p.role === "server")?.name ?? points[0]?.name ?? "";
  const toNs = (d: Date | undefined) => (d === undefined ? undefined : BigInt(d.getTime()) * 1_000_000n);
  const input = (p: CapturePoint) => {
    const i: Parameters<typeof estimatePair>[0] = { name: p.name, files: p.files };
    if (p.addresses) i.addresses = p.addresses;
    return i;
  };
  // Pass 1 for every pair, then the offsets against the reference, then pass 2 with each point's
  // start/stop (orchestrator clock) moved onto that point's own clock.
  const estimates = [];
  for (const [a, b] of pairs) estimates.push(await estimatePair(input(byName.get(a)!), input(byName.get(b)!), opts.match ?? {}));
  const models = chainOffsets(
    estimates.map((e) => ({ a: e.a.name, b: e.b.name, clock: e.clock })),
    reference,
  );
  const ownWindow = (name: string) => {
    const p = byName.get(name)!;
    const m = models.get(name);
    const own = (d: Date | undefined) => {
      const t = toNs(d);
      return t === undefined ? undefined : m === undefined ? t : t + atRef(m, t);
    };
    const w: { startNanos?: bigint; endNanos?: bigint } = {};
    const s = own(p.startedAt);
    const e = own(p.stoppedAt);
    if (s !== undefined) w.startNanos = s;
    if (e !== undefined) w.endNanos = e;
    return w;
  };
  const results: PairResult[] = [];
  for (const e of estimates) results.push(await matchEstimated(e, { a: ownWindow(e.a.name), b: ownWindow(e.b.name) }));
  const notes: string[] = [];
  for (const n of names) if (!models.has(n)) notes.push(`no clock offset for ${n} against ${reference}: its times are shown unadjusted`);
  const alarmNs = toNs(opts.alarmAt);

  // Point facts come from the pair results (pass 1 read every file of every paired point).
  const pointFacts = new Map<string, { packets: number; first?: bigint; last?: bigint; files: FileOutcome[] }>();
  for (const r of results) {
    for (const s of r.sides) {
      if (pointFacts.has(s.name)) continue;
      const f: { packets: number; first?: bigint; last?: bigint; files: FileOutcome[] } = { packets: s.packets, files: s.files };
      if (s.firstNanos !== undefined) f.first = s.firstNanos;
      if (s.lastNanos !== undefined) f.last = s.lastNanos;
      pointFacts.set(s.name, f);
    }
  }
  if (opts.merged) {
    opts.merged.sources.forEach((s) => {
      if (!pointFacts.has(s.name)) pointFacts.set(s.name, { packets: s.packets, files: s.files });
    });
  }
  const toRef = (name: string, t: bigint) => t - atOwn(models.get(name), t);
  const reportPoints: ReportPoint[] = points.map((p) => {
    const f = pointFacts.get(p.name);
    const m = models.get(p.name);
    const rp: ReportPoint = {
      name: p.name,
      role: p.role,
      packets: f?.packets ?? 0,
      clockOffset: m
        ? { nanos: m.offset.toString(), seconds: Number(m.offset) / 1e9, uncertaintyNanos: m.uncertainty, driftPpm: m.driftPpm }
        : { nanos: null, seconds: null, uncertaintyNanos: null, driftPpm: 0 },
      files: (f?.files ?? p.files.map((path) => ({ path, packets: 0 }))).map(fileReport),
    };
    if (f?.first !== undefined) rp.first = isoNanos(toRef(p.name, f.first));
    if (f?.last !== undefined) rp.last = isoNanos(toRef(p.name, f.last));
    return rp;
  });

  const rowOut = (a: string, r: PacketRow): ReportRow => {
    const o: ReportRow = { at: isoNanos(toRef(a, r.tsNanos)), summary: r.summary, flow: r.flow };
    if (r.delayNanos !== undefined) o.delayNanos = r.delayNanos;
    return o;
  };
  const dirOut = (a: string, d: DirectionResult): ReportDirection => {
    let failure: ReportDirection["failure"] = null;
    if (d.failure) {
      const at = toRef(a, d.failure.startNanos);
      failure = {
        kind: d.failure.kind,
        at: isoNanos(at),
        lostInRun: d.failure.lostInRun,
        lastDelivered: d.failure.lastDelivered.map((r) => rowOut(a, r)),
        firstLost: d.failure.firstLost.map((r) => rowOut(a, r)),
      };
      if (alarmNs !== undefined) failure.beforeAlarmMs = Number(at - alarmNs) / 1e6;
    }
    return {
      from: d.from,
      to: d.to,
      sent: d.sent,
      delivered: d.delivered,
      lost: d.lost,
      lossPercent: pct(d.lost, d.sent),
      excluded: d.excluded,
      duplicates: d.duplicates,
      unexpected: d.unexpected,
      reordered: d.reordered,
      delay: d.delay,
      flows: d.flows.map(({ firstLostNanos, ...f }) => (firstLostNanos === undefined ? f : { ...f, firstLost: isoNanos(toRef(a, firstLostNanos)) })),
      flowsOmitted: d.flowsOmitted,
      failure,
      timeline: (({ startNanos, ...t }) => ({ ...t, start: isoNanos(toRef(a, startNanos)) }))(d.timeline),
      decidedEarly: d.decidedEarly,
    };
  };
  const reportPairs: ReportPair[] = results.map((r) => {
    const { offsetNanos, refNanos, ...rest } = r.clock;
    return {
      a: r.a,
      b: r.b,
      clock: { ...rest, offsetNanos: offsetNanos.toString(), offsetSeconds: Number(offsetNanos) / 1e9, at: isoNanos(toRef(r.a, refNanos)) },
      sides: r.sides.map((s) => ({ name: s.name, packets: s.packets, nonIp: s.nonIp, outOfScope: s.outOfScope })),
      directions: [dirOut(r.a, r.directions[0]), dirOut(r.a, r.directions[1])],
      notes: [...r.clock.notes, ...r.notes],
    };
  });

  // Multi-hop: follow the pairs along the point order and say where packets vanished.
  const paths: ReportPath[] = [];
  const chain = opts.path ? opts.path.slice(1).flatMap((b, i) => results.filter((r) => r.a === opts.path![i] && r.b === b)) : results;
  if (chain.length > 1 || (opts.path && chain.length > 0)) {
    for (const forward of [true, false]) {
      const hops = chain.map((r) => {
        const d = r.directions[forward ? 0 : 1];
        return { from: d.from, to: d.to, sent: d.sent, lost: d.lost };
      });
      if (!forward) hops.reverse();
      const worst = hops.reduce<(typeof hops)[number] | undefined>((w, h) => (h.lost > 0 && (!w || h.lost > w.lost) ? h : w), undefined);
      const p: ReportPath = { direction: `${hops[0]!.from} → ${hops[hops.length - 1]!.to}`, hops };
      if (worst) p.vanishedBetween = [worst.from, worst.to];
      paths.push(p);
    }
  }

  const firsts = reportPoints.map((p) => p.first).filter((x): x is string => !!x);
  const lasts = reportPoints.map((p) => p.last).filter((x): x is string => !!x);
  const report: RunReport = {
    version: 1,
    generatedAt: new Date().toISOString(),
    reference,
    points: reportPoints,
    pairs: reportPairs,
    paths,
    summaryLine: "",
    notes,
  };
  if (opts.runFolder) report.runFolder = opts.runFolder;
  if (alarmNs !== undefined) report.alarm = { at: isoNanos(alarmNs), clock: "orchestrator" };
  if (firsts.length > 0) report.span = { start: firsts.sort()[0]!, end: lasts.sort()[lasts.length - 1]! };
  if (opts.merged && opts.mergedFile) report.merged = { file: opts.mergedFile, packets: opts.merged.packets, interfaces: opts.merged.interfaces.map((i) => i.name) };
  report.summaryLine = summaryLine(report);
  return { report, models };
}

/** One line for `run`/`demo`: per direction lost/sent and the failure time. */
export function summaryLine(r: RunReport): string {
  if (r.pairs.length === 0) return `capsync report: ${r.points.length} capture point(s), nothing to match${r.merged ? `; merged ${r.merged.packets} packets` : ""}`;
  const parts: string[] = [];
  for (const p of r.pairs) {
    for (const d of p.directions) {
      let s = `${d.from}→${d.to} lost ${d.lost}/${d.sent}`;
      if (d.lost > 0) s += ` (${d.lossPercent}%)`;
      if (d.failure?.kind === "blackout") s += ` from ${timeOfDay(d.failure.at)}`;
      if (d.delay) s += `, delay p50 ${fmtDuration(d.delay.medianNanos)}`;
      parts.push(s);
    }
  }
  const worst = r.paths.find((p) => p.vanishedBetween);
  const tail = worst ? `; vanished between ${worst.vanishedBetween![0]} and ${worst.vanishedBetween![1]}` : "";
  const errs = r.points.reduce((n, p) => n + p.files.filter((f) => f.error).length, 0);
  return `capsync report: ${parts.join("; ")}${tail}${errs > 0 ? `; ${errs} capture file(s) damaged` : ""}`;
}

// ---------------------------------------------------------------------------------------------
// Text

function table(rows: string[][], right: Set<number> = new Set()): string[] {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r
      .map((c, i) => (right.has(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

function offsetText(seconds: number | null, u: number | null, drift: number): string {
  if (seconds === null) return "unknown";
  const sign = seconds >= 0 ? "+" : "-";
  return `${sign}${Math.abs(seconds).toFixed(6)} s${u === null ? " (one-way estimate)" : ` ± ${fmtDuration(u)}`}${drift ? `, drift ${drift.toFixed(3)} ppm` : ""}`;
}

export function renderText(r: RunReport): string {
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
  }
  for (const pr of r.pairs) {
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
  }
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

export function renderJson(r: RunReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------
// HTML: one self-contained page, no scripts, no external resources.

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

export function renderHtml(r: RunReport): string {
  const H: string[] = [];
  const num = (cls: string, v: number | string) => `<td class="num ${cls}" data-value="${esc(String(v))}">${esc(String(v))}</td>`;
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
    const files = p.files.map((f) => `${esc(basename(f.path))} (${f.packets})${f.error ? ` <span class="err">${esc(f.error.code)} at byte ${f.error.offset}</span>` : ""}`).join("<br>");
    H.push(
      `<tr><td>${esc(p.name)}</td><td>${esc(p.role)}</td>${num("packets", p.packets)}<td class="mono">${esc(p.first ?? "—")}</td><td class="mono">${esc(p.last ?? "—")}</td><td>${p.name === r.reference ? "reference" : esc(offsetText(p.clockOffset.seconds, p.clockOffset.uncertaintyNanos, p.clockOffset.driftPpm))}</td><td class="mono">${files}</td></tr>`,
    );
  }
  H.push("</table>");
  r.pairs.forEach((pr, pi) => {
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
      H.push(timelineSvg(d, r.alarm?.at, `dir-${pi}-${di}`));
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
  });
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

// ---------------------------------------------------------------------------------------------
// The run-folder entry point

export const REPORT_FILES = { merged: "merged.pcapng", text: "report.txt", json: "report.json", html: "report.html" } as const;

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

  // Offsets first (the merge applies them), then one merge pass; buildReport reuses the matches.
  const { report: report0, models } = await build({ ...opts, points, runFolder });
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
