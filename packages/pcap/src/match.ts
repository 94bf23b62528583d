// Match the same packets seen at two capture points, estimate the clock offset between them, and
// account per direction and per flow for what was sent, received, lost, duplicated and reordered.
//
// Two passes over each point's files, both with bounded memory:
//  1. Sampling: identities of A's packets go into a map capped at `maxSamples`; when it fills, the
//     sampling rate halves by identity hash (consistent, so B keeps matching the same subset).
//     Matched samples give each address pair's direction and the clock offset (minimum one-way
//     delay each way, NTP-style; a linear drift fit when the capture is long enough).
//  2. Matching in time order on A's clock: a packet sent at one point waits in a window keyed by
//     identity until the other point sees it, or `maxDelay` passes (lost). Windows are evicted by
//     time and capped at `maxPending`; the tradeoff: a packet delayed longer than maxDelay, or
//     older than the newest maxPending packets of its direction, is counted lost (reported as
//     decidedEarly). Waiting entries hold no decoded headers (~170 bytes each), so the defaults
//     bound matching to roughly 100 MB whatever the capture size.
// This file drives the two passes; clock.ts is pass 1, direction.ts pass 2's per-direction window.
import { identityConfig, identityKey, packetIdentity } from "./identity.js";
import { classify, pass1, type Pass1, type SideScan } from "./clock.js";
import { Direction } from "./direction.js";
import type { ClockEstimate, MatchOptions, PairResult, PointInput, SideResult } from "./match-types.js";
import { PointStream, type FileOutcome } from "./ordered.js";
import type { CapturedPacket } from "./types.js";

/**
 * Match the packets of two capture points.
 * @example
 * const r = await matchPair({ name: "msbr", files: ["CPE.pcap"] }, { name: "ovoc", files: ["OVOC-1.pcap"] });
 * r.directions[0] // { from: "msbr", to: "ovoc", sent: 1200, delivered: 1163, lost: 37, delay: { medianNanos: 12300000, ... }, failure: { kind: "blackout", ... } }
 */
export async function matchPair(a: PointInput, b: PointInput, opts: MatchOptions = {}): Promise<PairResult> {
  return matchEstimated(await estimatePair(a, b, opts));
}

/** Pass 1 alone: the clock estimate and the scope, kept for `matchEstimated`. */
export interface PairEstimate {
  readonly a: PointInput;
  readonly b: PointInput;
  readonly clock: ClockEstimate;
  /** Time span seen at each point (own clocks). */
  readonly spans: [{ first?: bigint; last?: bigint }, { first?: bigint; last?: bigint }];
  /** What pass 1 read at each point: packets and each file's outcome. */
  readonly scans: [{ packets: number; files: FileOutcome[] }, { packets: number; files: FileOutcome[] }];
  /** @internal */
  readonly state: unknown;
  readonly opts: MatchOptions;
}

export async function estimatePair(a: PointInput, b: PointInput, opts: MatchOptions = {}): Promise<PairEstimate> {
  const p1 = await pass1(a, b, identityConfig(opts), opts);
  const span = (s: SideScan) => ({ ...(s.first !== undefined ? { first: s.first } : {}), ...(s.last !== undefined ? { last: s.last } : {}) });
  return { a, b, clock: p1.clock, spans: [span(p1.scanA), span(p1.scanB)], scans: [p1.scanA, p1.scanB], state: p1, opts };
}

/**
 * Pass 2 with a finished estimate. `windows` overrides when each point really captured (own clock),
 * e.g. from the orchestrator's start/stop times converted with offsets known only after pass 1.
 */
export async function matchEstimated(est: PairEstimate, windows: { a?: { startNanos?: bigint; endNanos?: bigint }; b?: { startNanos?: bigint; endNanos?: bigint } } = {}): Promise<PairResult> {
  const opts = est.opts;
  const cfg = identityConfig(opts);
  const p1 = est.state as Pass1;
  const a: PointInput = { ...est.a, ...windows.a };
  const b: PointInput = { ...est.b, ...windows.b };
  const { clock } = p1;
  const maxDelay = (opts.maxDelayMs ?? 3000) * 1e6;
  // Axis: a's clock, origin at the earlier of the two first packets.
  // tB is on b's clock: tB − coarse is (to well under a µs) the same moment on a's clock.
  const offsetAt = (tB: bigint) => p1.coarse + BigInt(Math.round(p1.fine + (clock.driftPpm === 0 ? 0 : Number(tB - p1.coarse - clock.refNanos) * clock.driftPpm * 1e-6)));
  const firstB = p1.scanB.first !== undefined ? p1.scanB.first - offsetAt(p1.scanB.first) : undefined;
  const lastB = p1.scanB.last !== undefined ? p1.scanB.last - offsetAt(p1.scanB.last) : undefined;
  const candidates = [p1.scanA.first, firstB].filter((x): x is bigint => x !== undefined);
  const origin = candidates.length > 0 ? candidates.reduce((m, x) => (x < m ? x : m)) : 0n;
  const ends = [p1.scanA.last, lastB].filter((x): x is bigint => x !== undefined);
  const end = ends.length > 0 ? ends.reduce((m, x) => (x > m ? x : m)) : origin;
  const rel = (t: bigint) => Number(t - origin);
  const nbins = opts.timelineBins ?? 240;
  const binNs = Math.max(1, Math.ceil((rel(end) + 1) / nbins));
  const early = (clock.uncertaintyNanos ?? 0) + 1e6;
  const win = (pt: PointInput, scan: SideScan, toAxis: (t: bigint) => bigint): [number, number] => {
    const s = pt.startNanos ?? scan.first;
    const e = pt.endNanos ?? scan.last;
    return [s === undefined ? 0 : rel(toAxis(s)), e === undefined ? -1 : rel(toAxis(e))];
  };
  const [aStart, aEnd] = win(a, p1.scanA, (t) => t);
  const [bStart, bEnd] = win(b, p1.scanB, (t) => t - offsetAt(t));
  const maxPending = opts.maxPending ?? 100_000;
  const maxFlows = opts.maxFlows ?? 1000;
  const keep = opts.keep ?? 5;
  const dirs: [Direction, Direction] = [
    new Direction(maxDelay, early, maxPending, maxFlows, keep, bStart, bEnd, aStart, aEnd, binNs, nbins, 0, origin, opts.onOutcome),
    new Direction(maxDelay, early, maxPending, maxFlows, keep, aStart, aEnd, bStart, bEnd, binNs, nbins, 1, origin, opts.onOutcome),
  ];
  const sides: [SideResult, SideResult] = [
    { name: a.name, packets: 0, nonIp: 0, outOfScope: 0, files: [] },
    { name: b.name, packets: 0, nonIp: 0, outOfScope: 0, files: [] },
  ];
  if (p1.scanA.first !== undefined) ((sides[0].firstNanos = p1.scanA.first), (sides[0].lastNanos = p1.scanA.last!));
  if (p1.scanB.first !== undefined) ((sides[1].firstNanos = p1.scanB.first), (sides[1].lastNanos = p1.scanB.last!));

  // Each packet is done with (identity hashed, decoded headers hold no view of data) before its
  // stream reads on: chunks can be reused.
  const sA = await PointStream.open(a.files, { decode: true, reuseChunks: true });
  const sB = await PointStream.open(b.files, { decode: true, reuseChunks: true });
  const process = (p: CapturedPacket, side: 0 | 1, t: number) => {
    const s = sides[side];
    s.packets++;
    const id = packetIdentity(p.decoded!, p.data, cfg);
    if (id === undefined) return void s.nonIp++;
    const dir = classify(side === 0 ? p1.scopeA : p1.scopeB, id.hostPair);
    if (dir === undefined) return void s.outOfScope++;
    const D = dirs[dir];
    const key = identityKey(id);
    if (dir === side) D.onSend(key, id.flow, p.decoded!, t);
    else D.onRecv(key, t);
  };
  try {
    let pa = sA.next();
    let pb = sB.next();
    let ta = 0;
    let tb = 0;
    if (pa) ta = rel(pa.tsNanos);
    if (pb) tb = rel(pb.tsNanos - offsetAt(pb.tsNanos));
    let n = 0;
    for (;;) {
      if (pa === undefined) {
        await sA.refill();
        pa = sA.next();
        if (pa) ta = rel(pa.tsNanos);
        continue;
      }
      if (pb === undefined) {
        await sB.refill();
        pb = sB.next();
        if (pb) tb = rel(pb.tsNanos - offsetAt(pb.tsNanos));
        continue;
      }
      if (pa === null && pb === null) break;
      let now: number;
      if (pb === null || (pa !== null && ta <= tb)) {
        now = ta;
        process(pa!, 0, ta);
        pa = sA.next();
        if (pa) ta = rel(pa.tsNanos);
      } else {
        now = tb;
        process(pb, 1, tb);
        pb = sB.next();
        if (pb) tb = rel(pb.tsNanos - offsetAt(pb.tsNanos));
      }
      if ((++n & 63) === 0) {
        dirs[0].expire(now);
        dirs[1].expire(now);
      }
    }
  } finally {
    await sA.close();
    await sB.close();
  }
  dirs[0].finish();
  dirs[1].finish();
  sides[0].files = sA.files;
  sides[1].files = sB.files;
  const notes: string[] = [];
  for (const d of dirs) if (d.decidedEarly > 0) notes.push(`${d.decidedEarly} packets decided before maxDelay because more than ${maxPending} were waiting`);
  const directions: PairResult["directions"] = [dirs[0].result(a.name, b.name, origin, maxFlows), dirs[1].result(b.name, a.name, origin, maxFlows)];
  for (const d of dirs) d.ring.recycle(); // finished: every row it reports is copied out
  return { a: a.name, b: b.name, clock, sides, directions, notes };
}
