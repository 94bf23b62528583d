// Building the run report: match every pair, chain the clock offsets to the reference point, and
// put every time on the reference axis. Pure model building; the only I/O is reading captures.
// Built for fleets: pass 1 of every pair first (clock estimates, kept small), then pass 2 one pair
// at a time, each pair's full result handed to the caller and dropped, keeping only a digest.
import { estimatePair, matchEstimated, type PairEstimate } from "./match.js";
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

/**
 * Offsets of every point against the reference, chained through the matched pairs; a point's
 * `peers` (same clock) take its model.
 */
function chainOffsets(pairs: Pick<PairResult, "a" | "b" | "clock">[], reference: string, peers: (name: string) => readonly string[]): Map<string, Model> {
  const out = new Map<string, Model>();
  const put = (name: string, m: Model) => {
    out.set(name, m);
    for (const n of peers(name)) if (!out.has(n)) out.set(n, m);
  };
  put(reference, { offset: 0n, driftPpm: 0, ref: 0n, uncertainty: 0 });
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
        put(p.b, { offset: atRef(ma, R) + p.clock.offsetNanos, driftPpm: ma.driftPpm + p.clock.driftPpm, ref: R, uncertainty: u(ma) });
        grew = true;
      } else if (mb && !ma) {
        const tb = p.clock.refNanos + p.clock.offsetNanos;
        const R = tb - atOwn(mb, tb);
        put(p.a, { offset: atRef(mb, R) - p.clock.offsetNanos, driftPpm: mb.driftPpm - p.clock.driftPpm, ref: R, uncertainty: u(mb) });
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

/** What the summary line and the paths need of a pair: a ReportPair is one. */
export interface PairDigest {
  a: string;
  b: string;
  directions: [DirectionDigest, DirectionDigest];
}
export interface DirectionDigest {
  from: string;
  to: string;
  sent: number;
  lost: number;
  lossPercent: number;
  failure: { kind: "blackout" | "burst"; at: string } | null;
  delay: { medianNanos: number } | null;
}

/** A pair reduced to its digest (~0.5 kB instead of its flows, timelines and failure rows). */
export function digestOf(p: ReportPair): PairDigest {
  const d = (x: ReportDirection): DirectionDigest => ({
    from: x.from,
    to: x.to,
    sent: x.sent,
    lost: x.lost,
    lossPercent: x.lossPercent,
    failure: x.failure ? { kind: x.failure.kind, at: x.failure.at } : null,
    delay: x.delay ? { medianNanos: x.delay.medianNanos } : null,
  });
  return { a: p.a, b: p.b, directions: [d(p.directions[0]), d(p.directions[1])] };
}

/**
 * The report being built: pass 1 of every pair done, offsets chained, points known. `matchNext`
 * runs pass 2 of the pairs in order, one at a time.
 */
export class ReportModel {
  /** The report without pairs, paths, merge and summary line yet. */
  readonly report: RunReport;
  readonly models: Map<string, Model>;
  readonly pairNames: [string, string][];
  private readonly estimates: (PairEstimate | undefined)[];
  private next = 0;

  private constructor(
    report: RunReport,
    models: Map<string, Model>,
    pairNames: [string, string][],
    estimates: PairEstimate[],
    private readonly byName: Map<string, CapturePoint>,
    private readonly alarmNs: bigint | undefined,
  ) {
    this.report = report;
    this.models = models;
    this.pairNames = pairNames;
    this.estimates = estimates;
  }

  /** Pass 1 of every pair and the offsets against the reference. Reads each paired point's files once; writes nothing. */
  static async build(opts: ReportOptions & { runFolder?: string }): Promise<ReportModel> {
    const points = opts.points;
    const names = points.map((p) => p.name);
    if (new Set(names).size !== names.length) throw new TypeError("capture point names must be unique");
    const byName = new Map(points.map((p) => [p.name, p]));
    const pairs = opts.pairs ?? points.slice(1).map((p, i) => [points[i]!.name, p.name] as [string, string]);
    for (const [a, b] of pairs) if (!byName.has(a) || !byName.has(b)) throw new TypeError(`pair ${a}/${b} names an unknown capture point`);
    const reference = opts.reference ?? points.find((p) => p.role === "server")?.name ?? points[0]?.name ?? "";
    const input = (p: CapturePoint) => {
      const i: Parameters<typeof estimatePair>[0] = { name: p.name, files: p.files };
      if (p.addresses) i.addresses = p.addresses;
      return i;
    };
    // Pass 1 for every pair, then the offsets against the reference; pass 2 (matchNext) moves each
    // point's start/stop (orchestrator clock) onto that point's own clock with them.
    const estimates: PairEstimate[] = [];
    for (const [a, b] of pairs) estimates.push(await estimatePair(input(byName.get(a)!), input(byName.get(b)!), opts.match ?? {}));
    const clocks = new Map<string, string[]>();
    for (const p of points) {
      if (p.clock === undefined) continue;
      const g = clocks.get(p.clock);
      if (g) g.push(p.name);
      else clocks.set(p.clock, [p.name]);
    }
    const models = chainOffsets(
      estimates.map((e) => ({ a: e.a.name, b: e.b.name, clock: e.clock })),
      reference,
      (name) => {
        const c = byName.get(name)?.clock;
        return c === undefined ? [] : clocks.get(c)!;
      },
    );
    const notes: string[] = [];
    for (const n of names) if (!models.has(n)) notes.push(`no clock offset for ${n} against ${reference}: its times are shown unadjusted`);
    const alarmNs = toNs(opts.alarmAt);

    // Point facts come from pass 1, which read every file of every paired point.
    const pointFacts = new Map<string, { packets: number; first?: bigint; last?: bigint; files: FileOutcome[] }>();
    for (const e of estimates) {
      for (const [i, pt] of [e.a, e.b].entries()) {
        if (pointFacts.has(pt.name)) continue;
        const f: { packets: number; first?: bigint; last?: bigint; files: FileOutcome[] } = { packets: e.scans[i]!.packets, files: e.scans[i]!.files };
        const sp = e.spans[i]!;
        if (sp.first !== undefined) f.first = sp.first;
        if (sp.last !== undefined) f.last = sp.last;
        pointFacts.set(pt.name, f);
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
      if (p.notCollected?.length) rp.notCollected = p.notCollected.map((n) => ({ ...n }));
      return rp;
    });
    const report: RunReport = {
      version: 1,
      generatedAt: new Date().toISOString(),
      reference,
      points: reportPoints,
      pairs: [],
      paths: [],
      summaryLine: "",
      notes,
    };
    if (opts.runFolder) report.runFolder = opts.runFolder;
    if (alarmNs !== undefined) report.alarm = { at: isoNanos(alarmNs), clock: "orchestrator" };
    setSpan(report);
    return new ReportModel(report, models, pairs, estimates, byName, alarmNs);
  }

  get pairCount(): number {
    return this.estimates.length;
  }

  /** Pass 2 of the next pair, on the reference axis; undefined when every pair is done. */
  async matchNext(): Promise<ReportPair | undefined> {
    const i = this.next;
    if (i >= this.estimates.length) return undefined;
    const e = this.estimates[i]!;
    this.estimates[i] = undefined; // its scopes and caches go with it
    this.next++;
    const r = await matchEstimated(e, { a: this.ownWindow(e.a.name), b: this.ownWindow(e.b.name) });
    return this.pairOut(r);
  }

  private ownWindow(name: string): { startNanos?: bigint; endNanos?: bigint } {
    const p = this.byName.get(name)!;
    const m = this.models.get(name);
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
  }

  private pairOut(r: PairResult): ReportPair {
    const toRef = (name: string, t: bigint) => t - atOwn(this.models.get(name), t);
    const alarmNs = this.alarmNs;
    const rowOut = (a: string, x: PacketRow): ReportRow => {
      const o: ReportRow = { at: isoNanos(toRef(a, x.tsNanos)), summary: x.summary, flow: x.flow };
      if (x.delayNanos !== undefined) o.delayNanos = x.delayNanos;
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
          lastDelivered: d.failure.lastDelivered.map((x) => rowOut(a, x)),
          firstLost: d.failure.firstLost.map((x) => rowOut(a, x)),
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
    const { offsetNanos, refNanos, ...rest } = r.clock;
    return {
      a: r.a,
      b: r.b,
      clock: { ...rest, offsetNanos: offsetNanos.toString(), offsetSeconds: Number(offsetNanos) / 1e9, at: isoNanos(toRef(r.a, refNanos)) },
      sides: r.sides.map((s) => ({ name: s.name, packets: s.packets, nonIp: s.nonIp, outOfScope: s.outOfScope })),
      directions: [dirOut(r.a, r.directions[0]), dirOut(r.a, r.directions[1])],
      notes: [...r.clock.notes, ...r.notes],
    };
  }
}

const toNs = (d: Date | undefined) => (d === undefined ? undefined : BigInt(d.getTime()) * 1_000_000n);

/** Span of all packets on the reference axis, from the points' first and last. */
export function setSpan(report: RunReport): void {
  let first: string | undefined;
  let last: string | undefined;
  for (const p of report.points) {
    if (p.first && (first === undefined || p.first < first)) first = p.first;
    if (p.last && (last === undefined || p.last > last)) last = p.last;
  }
  if (first !== undefined && last !== undefined) report.span = { start: first, end: last };
  else delete report.span;
}

/**
 * Multi-hop: follow the pairs along `path` and say where packets vanished. Without `path`, the
 * pairs are one path only when each starts where the one before ended (a → b, b → c, ...):
 * pairs of separate devices are never chained into one.
 */
export function pathsOf(pairs: readonly PairDigest[], path?: string[]): ReportPath[] {
  const paths: ReportPath[] = [];
  const chained = pairs.every((p, i) => i === 0 || pairs[i - 1]!.b === p.a);
  const chain = path ? path.slice(1).flatMap((b, i) => pairs.filter((r) => r.a === path[i] && r.b === b)) : chained ? pairs : [];
  if (chain.length > 1 || (path && chain.length > 0)) {
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
  return paths;
}

/** Up to this many pairs the summary line lists every direction; beyond, it aggregates. */
export const SUMMARY_FULL_PAIRS = 2;
/** Directions named in an aggregated summary line. */
export const SUMMARY_WORST = 5;

/** Order of loss: more packets lost first, then the higher ratio; stable otherwise. */
export const worseFirst = (x: { lost: number; lossPercent: number }, y: { lost: number; lossPercent: number }) => y.lost - x.lost || y.lossPercent - x.lossPercent;

function directionText(d: DirectionDigest): string {
  let s = `${d.from}→${d.to} lost ${d.lost}/${d.sent}`;
  if (d.lost > 0) s += ` (${d.lossPercent}%)`;
  if (d.failure?.kind === "blackout") s += ` from ${timeOfDay(d.failure.at)}`;
  if (d.delay) s += `, delay p50 ${fmtDuration(d.delay.medianNanos)}`;
  return s;
}

/** "server side not collected for 3 capture point(s) (127.0.0.1:4000)", per role. */
function notCollectedText(points: readonly ReportPoint[]): string[] {
  const byRole = new Map<string, { points: number; names: Set<string> }>();
  for (const p of points) {
    const roles = new Set<string>();
    for (const n of p.notCollected ?? []) {
      let g = byRole.get(n.role);
      if (!g) byRole.set(n.role, (g = { points: 0, names: new Set() }));
      g.names.add(n.name);
      if (!roles.has(n.role)) (roles.add(n.role), g.points++);
    }
  }
  return [...byRole].map(([role, g]) => {
    const names = [...g.names];
    const shown = names.slice(0, 3).join(", ") + (names.length > 3 ? ` and ${names.length - 3} more` : "");
    return `${role} side not collected for ${g.points} capture point(s) (${shown})`;
  });
}

/**
 * One line for `run`/`demo`. Up to two pairs: every direction's lost/sent, delay and failure time.
 * More: how many pairs, how many with loss, and the five directions that lost most.
 */
export function summaryLine(r: Pick<RunReport, "points" | "paths" | "merged">, pairs: readonly PairDigest[]): string {
  const missing = notCollectedText(r.points);
  if (pairs.length === 0) {
    return `capsync report: ${r.points.length} capture point(s), nothing to match${missing.map((m) => `; ${m}`).join("")}${r.merged ? `; merged ${r.merged.packets} packets` : ""}`;
  }
  let body: string;
  if (pairs.length <= SUMMARY_FULL_PAIRS) body = pairs.flatMap((p) => p.directions.map(directionText)).join("; ");
  else {
    const lossy = pairs.filter((p) => p.directions.some((d) => d.lost > 0)).length;
    const worst = pairs
      .flatMap((p) => p.directions.filter((d) => d.lost > 0))
      .sort(worseFirst)
      .slice(0, SUMMARY_WORST);
    body = `${pairs.length} pairs, ${lossy} with loss${worst.length ? `; worst: ${worst.map(directionText).join("; ")}` : ""}`;
  }
  const worstPath = r.paths.find((p) => p.vanishedBetween);
  const tail = worstPath ? `; vanished between ${worstPath.vanishedBetween![0]} and ${worstPath.vanishedBetween![1]}` : "";
  const errs = r.points.reduce((n, p) => n + p.files.filter((f) => f.error).length, 0);
  return `capsync report: ${body}${tail}${errs > 0 ? `; ${errs} capture file(s) damaged` : ""}${missing.map((m) => `; ${m}`).join("")}`;
}
