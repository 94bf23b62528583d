// Building the run report: match every pair, chain the clock offsets to the reference point, and
// put every time on the reference axis. Pure model building; the only I/O is reading captures.
import { estimatePair, matchEstimated } from "./match.js";
import type { DirectionResult, PacketRow, PairResult } from "./match-types.js";
import type { FileOutcome } from "./ordered.js";
import { fmtDuration, isoNanos, pct, timeOfDay } from "./report-format.js";
import type { CapturePoint, ReportDirection, ReportFile, ReportOptions, ReportPair, ReportPath, ReportPoint, ReportRow, RunReport } from "./report-types.js";

/** A point's clock minus the reference clock: offset + drift·(t − ref), t and ref on the reference axis. */
export interface Model {
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

export function fileReport(f: FileOutcome): ReportFile {
  const r: ReportFile = { path: f.path, packets: f.packets };
  if (f.format) r.format = f.format;
  if (f.error) r.error = { code: f.error.code, offset: f.error.offset, message: f.error.message };
  return r;
}

/** Match every pair and build the report model (no merged file yet). Reads each pair's captures twice; writes nothing. */
export async function buildModel(opts: ReportOptions & { runFolder?: string }): Promise<{ report: RunReport; models: Map<string, Model> }> {
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
