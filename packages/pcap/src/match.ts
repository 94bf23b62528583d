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
import { altStringHash, identityConfig, packetIdentity, type IdentityConfig, type IdentityOptions } from "./identity.js";
import { DelayHistogram, type DelayStats } from "./histogram.js";
import { PointStream, type FileOutcome } from "./ordered.js";
import { openCapture } from "./reader.js";
import type { Decoded } from "./decode.js";
import { tcpFlagString } from "./tcp.js";
import type { CapturedPacket } from "./types.js";

export interface PointInput {
  name: string;
  files: string[];
  /** Addresses on this point's side of the path (e.g. the device's management IP); optional hints. */
  addresses?: string[];
  /** When the capture really started/stopped on this point's clock (else: first/last packet). */
  startNanos?: bigint;
  endNanos?: bigint;
}

export interface MatchOptions extends IdentityOptions {
  /** Longest one-way delay before a packet counts as lost (default 3000 ms). */
  maxDelayMs?: number;
  /** Packets waiting for their outcome per direction (default 100 000); older ones are decided early. */
  maxPending?: number;
  /** Identities kept for the clock estimate (default 100 000). */
  maxSamples?: number;
  /** Known offset (b's clock minus a's clock, ns) instead of estimating it. */
  clockOffsetNanos?: bigint;
  /** Timeline resolution for the report (default 240 bins). */
  timelineBins?: number;
  /** Packets listed before/after the failure (default 5). */
  keep?: number;
  /** Flows reported per direction (default 1000, by packets sent); the rest are summed as "other". */
  maxFlows?: number;
  /** Called for every packet sent between the points once decided, in send order per direction. */
  onOutcome?: (o: PacketOutcome) => void;
}

export interface PacketOutcome {
  /** 0: a→b, 1: b→a. */
  direction: 0 | 1;
  status: "delivered" | "lost" | "excluded";
  /** Send time on a's clock. */
  tsNanos: bigint;
  delayNanos?: number;
  packet: Decoded;
}

export interface ClockEstimate {
  /** b's clock minus a's clock at `refNanos` (a's clock), ns. */
  offsetNanos: bigint;
  refNanos: bigint;
  /** Drift of b's clock against a's, parts per million (0 unless fitted). */
  driftPpm: number;
  /** Half-width of the interval the true offset lies in, ns; null when only one direction matched. */
  uncertaintyNanos: number | null;
  method: "two-way-min-delay" | "one-way-min-delay" | "given" | "none";
  samplesAB: number;
  samplesBA: number;
  /** Sampling rate used in pass 1: 1 in 2^shift identities. */
  samplingShift: number;
  notes: string[];
}

/** Offset (b minus a, ns) at time t on a's clock. */
export function clockOffsetAt(c: Pick<ClockEstimate, "offsetNanos" | "refNanos" | "driftPpm">, t: bigint): bigint {
  if (c.driftPpm === 0) return c.offsetNanos;
  return c.offsetNanos + BigInt(Math.round(Number(t - c.refNanos) * c.driftPpm * 1e-6));
}

export interface PacketRow {
  /** Send time on a's clock (the pair's axis). */
  tsNanos: bigint;
  summary: string;
  flow: string;
  /** One-way delay for delivered packets, ns. */
  delayNanos?: number;
}

export interface FlowResult {
  flow: string;
  sent: number;
  delivered: number;
  lost: number;
  duplicates: number;
  reordered: number;
  delay: DelayStats | null;
  firstLostNanos?: bigint;
}

export interface Timeline {
  /** Start of bin 0 on a's clock; bins are binNanos wide. */
  startNanos: bigint;
  binNanos: number;
  sent: number[];
  delivered: number[];
  lost: number[];
  delayMinNanos: (number | null)[];
  delayMeanNanos: (number | null)[];
  delayMaxNanos: (number | null)[];
}

export interface FailureResult {
  /** "blackout": every countable packet from `startNanos` on was lost; "burst": the longest loss run. */
  kind: "blackout" | "burst";
  startNanos: bigint;
  lostInRun: number;
  lastDelivered: PacketRow[];
  firstLost: PacketRow[];
}

export interface DirectionResult {
  from: string;
  to: string;
  /** Countable packets the sender put on the path: delivered + lost. */
  sent: number;
  delivered: number;
  lost: number;
  /** Packets the receiver could not have seen, not counted in sent. */
  excluded: { beforeReceiverStart: number; afterReceiverStop: number; inFlightAtStop: number; receivedOutsideSenderCapture: number };
  duplicates: number;
  /** Seen by the receiver but never by the sender, while the sender was capturing. */
  unexpected: number;
  /** Delivered packets that arrived before a packet sent earlier (RFC 4737 style count). */
  reordered: number;
  delay: DelayStats | null;
  flows: FlowResult[];
  flowsOmitted: number;
  failure: FailureResult | null;
  timeline: Timeline;
  /** Packets decided early because the window hit maxPending (0 normally). */
  decidedEarly: number;
}

export interface SideResult {
  name: string;
  packets: number;
  /** Non-IP frames (ARP, LLDP, ...) and undecodable ones. */
  nonIp: number;
  /** IP packets not between the two points (other hosts). */
  outOfScope: number;
  firstNanos?: bigint;
  lastNanos?: bigint;
  files: FileOutcome[];
}

export interface PairResult {
  a: string;
  b: string;
  clock: ClockEstimate;
  sides: [SideResult, SideResult];
  /** [a→b, b→a] */
  directions: [DirectionResult, DirectionResult];
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Pass 1: sampling, direction of each address pair, clock offset.

const AB = 0;
const BA = 1;
type Dir = typeof AB | typeof BA;
const MAX_HOST_PAIRS = 4096;

interface SideScan {
  packets: number;
  nonIp: number;
  first?: bigint;
  last?: bigint;
  files: FileOutcome[];
}

async function scanFiles(paths: string[], each: (p: CapturedPacket) => void, scan: SideScan): Promise<void> {
  for (const path of paths) {
    const reader = openCapture(path, { decode: true });
    const outcome: FileOutcome = { path, packets: 0 };
    for (;;) {
      const batch = await reader.nextBatch();
      if (batch === null) break;
      outcome.packets += batch.length;
      for (const p of batch) {
        scan.packets++;
        if (scan.first === undefined || p.tsNanos < scan.first) scan.first = p.tsNanos;
        if (scan.last === undefined || p.tsNanos > scan.last) scan.last = p.tsNanos;
        each(p);
      }
    }
    outcome.format = reader.format;
    if (reader.error) outcome.error = reader.error;
    scan.files.push(outcome);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor((s.length - 1) / 2)]!;
}

interface Scope {
  /** Directed address pair at this side → direction. */
  known: Map<string, Dir>;
  /** Addresses on A's side / B's side, as seen at this point. */
  aSide: Set<string>;
  bSide: Set<string>;
  cache: Map<string, Dir | -1>;
}

function classify(s: Scope, pair: string): Dir | undefined {
  const c = s.cache.get(pair);
  if (c !== undefined) return c < 0 ? undefined : (c as Dir);
  let d: Dir | -1 = s.known.get(pair) ?? -1;
  if (d < 0) {
    const i = pair.indexOf(">");
    const src = pair.slice(0, i);
    const dst = pair.slice(i + 1);
    if (s.aSide.has(src) && s.bSide.has(dst)) d = AB;
    else if (s.bSide.has(src) && s.aSide.has(dst)) d = BA;
  }
  if (s.cache.size < 65536) s.cache.set(pair, d);
  return d < 0 ? undefined : (d as Dir);
}

interface Pass1 {
  clock: ClockEstimate;
  scopeA: Scope;
  scopeB: Scope;
  scanA: SideScan;
  scanB: SideScan;
  /** Coarse part of the offset (bigint) and fine model: offset(t) = coarse + fine + drift·(t − ref). */
  coarse: bigint;
  fine: number;
  notes: string[];
}

/** One sampled identity: where and when each point first saw it. */
interface Sample {
  tA: bigint;
  tB: bigint;
  nA: number;
  nB: number;
  pairA: string;
  pairB: string;
  ttlA: number;
  ttlB: number;
}

/**
 * Pass 1's bounded memory: identities as 53-bit hashes (no key strings kept), times as ns after each
 * side's first sample in typed arrays, address pairs interned. When full, the sampling rate halves
 * by hash, so both points keep sampling the same identities. ~40 bytes per sample.
 */
class SampleTable {
  shift = 0;
  private mask = 0;
  private readonly index = new Map<number, number>();
  private n = 0;
  private h: Uint32Array;
  private tA: Float64Array;
  private tB: Float64Array;
  private nA: Uint8Array;
  private nB: Uint8Array;
  private pA: Int32Array;
  private pB: Int32Array;
  private ttlA: Uint8Array;
  private ttlB: Uint8Array;
  private baseA: bigint | undefined;
  private baseB: bigint | undefined;
  private readonly pairs: string[] = [];
  private readonly pairIds = new Map<string, number>();

  constructor(private readonly max: number) {
    const c = max + 1;
    this.h = new Uint32Array(c);
    this.tA = new Float64Array(c);
    this.tB = new Float64Array(c);
    this.nA = new Uint8Array(c);
    this.nB = new Uint8Array(c);
    this.pA = new Int32Array(c);
    this.pB = new Int32Array(c).fill(-1);
    this.ttlA = new Uint8Array(c);
    this.ttlB = new Uint8Array(c);
  }

  private pairId(p: string): number {
    let i = this.pairIds.get(p);
    if (i === undefined) {
      if (this.pairs.length >= MAX_HOST_PAIRS) return -1;
      i = this.pairs.length;
      this.pairs.push(p);
      this.pairIds.set(p, i);
    }
    return i;
  }

  private static key(id: { key: string; hash: number }): number {
    return id.hash * 2097152 + (altStringHash(id.key) & 0x1fffff);
  }

  addA(id: { key: string; hash: number; hostPair: string; ttl: number }, ts: bigint): void {
    if ((id.hash & this.mask) !== 0) return;
    const k = SampleTable.key(id);
    const i = this.index.get(k);
    if (i !== undefined) {
      if (this.nA[i]! < 255) this.nA[i]!++;
      return;
    }
    this.baseA ??= ts;
    const j = this.n++;
    this.index.set(k, j);
    this.h[j] = id.hash;
    this.tA[j] = Number(ts - this.baseA);
    this.nA[j] = 1;
    this.pA[j] = this.pairId(id.hostPair);
    this.ttlA[j] = id.ttl;
    if (this.n > this.max) this.halve();
  }

  addB(id: { key: string; hash: number; hostPair: string; ttl: number }, ts: bigint): void {
    if ((id.hash & this.mask) !== 0) return;
    const i = this.index.get(SampleTable.key(id));
    if (i === undefined) return;
    if (this.nB[i] === 0) {
      this.baseB ??= ts;
      this.tB[i] = Number(ts - this.baseB);
      this.pB[i] = this.pairId(id.hostPair);
      this.ttlB[i] = id.ttl;
    }
    if (this.nB[i]! < 255) this.nB[i]!++;
  }

  private halve(): void {
    this.shift++;
    this.mask = (1 << this.shift) - 1;
    let w = 0;
    const keep = new Map<number, number>();
    for (const [k, r] of this.index) {
      if ((this.h[r]! & this.mask) !== 0) continue;
      this.h[w] = this.h[r]!;
      this.tA[w] = this.tA[r]!;
      this.nA[w] = this.nA[r]!;
      this.pA[w] = this.pA[r]!;
      this.ttlA[w] = this.ttlA[r]!;
      keep.set(k, w++);
    }
    this.index.clear();
    for (const [k, v] of keep) this.index.set(k, v);
    this.n = w;
  }

  all(): Sample[] {
    const out: Sample[] = [];
    for (let i = 0; i < this.n; i++) {
      const s: Sample = { tA: this.baseA! + BigInt(this.tA[i]!), tB: 0n, nA: this.nA[i]!, nB: this.nB[i]!, pairA: this.pairs[this.pA[i]!] ?? "", pairB: "", ttlA: this.ttlA[i]!, ttlB: this.ttlB[i]! };
      if (s.nB > 0) {
        s.tB = this.baseB! + BigInt(this.tB[i]!);
        s.pairB = this.pairs[this.pB[i]!] ?? "";
      }
      out.push(s);
    }
    return out;
  }
}

async function pass1(a: PointInput, b: PointInput, cfg: IdentityConfig, opts: MatchOptions): Promise<Pass1> {
  const maxSamples = opts.maxSamples ?? 100_000;
  const S = new SampleTable(maxSamples);
  const pairsA = new Set<string>();
  const pairsB = new Set<string>();
  const scanA: SideScan = { packets: 0, nonIp: 0, files: [] };
  const scanB: SideScan = { packets: 0, nonIp: 0, files: [] };
  await scanFiles(
    a.files,
    (p) => {
      const id = packetIdentity(p.decoded!, p.data, cfg);
      if (id === undefined) {
        scanA.nonIp++;
        return;
      }
      if (pairsA.size < MAX_HOST_PAIRS) pairsA.add(id.hostPair);
      S.addA(id, p.tsNanos);
    },
    scanA,
  );
  await scanFiles(
    b.files,
    (p) => {
      const id = packetIdentity(p.decoded!, p.data, cfg);
      if (id === undefined) {
        scanB.nonIp++;
        return;
      }
      if (pairsB.size < MAX_HOST_PAIRS) pairsB.add(id.hostPair);
      S.addB(id, p.tsNanos);
    },
    scanB,
  );
  const shift = S.shift;
  const samples = S.all();

  const notes: string[] = [];
  const unique = [...samples.values()].filter((s) => s.nA === 1 && s.nB === 1);
  const matchedAny = [...samples.values()].filter((s) => s.nB > 0);
  // Coarse offset: the median difference, exact in bigint (clocks may be years apart).
  let coarse = 0n;
  if (unique.length > 0) {
    const diffs = unique.map((s) => s.tB - s.tA).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    coarse = diffs[Math.floor((diffs.length - 1) / 2)]!;
  } else if (opts.clockOffsetNanos !== undefined) coarse = opts.clockOffsetNanos;
  const dOf = (s: Sample) => Number(s.tB - s.tA - coarse);

  // Direction of each address pair (as seen at A).
  const groups = new Map<string, { ds: number[]; ttl: number }>();
  for (const s of unique.length > 0 ? unique : matchedAny) {
    let g = groups.get(s.pairA);
    if (!g) groups.set(s.pairA, (g = { ds: [], ttl: 0 }));
    g.ds.push(dOf(s));
    g.ttl += Math.sign(s.ttlA - s.ttlB);
  }
  const med = new Map<string, number>();
  for (const [k, g] of groups) med.set(k, median(g.ds));
  const dirOfPair = new Map<string, Dir>();
  const reverse = (p: string) => {
    const i = p.indexOf(">");
    return `${p.slice(i + 1)}>${p.slice(0, i)}`;
  };
  // Every delay is ≥ 0, so each packet a→b has d = delay + offset ≥ offset ≥ d of every packet b→a:
  // of two opposite pairs, the one with the larger differences runs a→b.
  for (const [k, g] of groups) {
    const r = med.get(reverse(k));
    if (r !== undefined && r !== med.get(k)) dirOfPair.set(k, med.get(k)! > r ? AB : BA);
    else if (g.ttl !== 0) dirOfPair.set(k, g.ttl > 0 ? AB : BA); // TTL falls along the path
  }
  const known = [...dirOfPair];
  const abMeds = known.filter(([, d]) => d === AB).map(([k]) => med.get(k)!);
  const baMeds = known.filter(([, d]) => d === BA).map(([k]) => med.get(k)!);
  let guessed = 0;
  for (const k of groups.keys()) {
    if (dirOfPair.has(k)) continue;
    const m = med.get(k)!;
    const threshold =
      abMeds.length > 0 && baMeds.length > 0
        ? (Math.min(...abMeds) + Math.max(...baMeds)) / 2
        : abMeds.length > 0
          ? Math.min(...abMeds) - 1
          : baMeds.length > 0
            ? Math.max(...baMeds) + 1
            : -Number(coarse); // nothing known: assume the clocks roughly agree
    dirOfPair.set(k, m >= threshold ? AB : BA);
    guessed++;
  }
  if (guessed > 0) notes.push(`${guessed} address pair(s) seen one way only: direction inferred from timing`);

  // Scopes: which packets at each point travel between the two points, and which way.
  const mkScope = (): Scope => ({ known: new Map(), aSide: new Set(), bSide: new Set(), cache: new Map() });
  const scopeA = mkScope();
  const scopeB = mkScope();
  const addSides = (sc: Scope, pair: string, d: Dir) => {
    const i = pair.indexOf(">");
    const src = pair.slice(0, i);
    const dst = pair.slice(i + 1);
    (d === AB ? sc.aSide : sc.bSide).add(src);
    (d === AB ? sc.bSide : sc.aSide).add(dst);
  };
  for (const [k, d] of dirOfPair) {
    scopeA.known.set(k, d);
    addSides(scopeA, k, d);
  }
  for (const s of matchedAny) {
    const d = dirOfPair.get(s.pairA);
    if (d === undefined || scopeB.known.has(s.pairB)) continue;
    scopeB.known.set(s.pairB, d);
    addSides(scopeB, s.pairB, d);
  }
  for (const addr of a.addresses ?? []) (scopeA.aSide.add(addr), scopeB.aSide.add(addr));
  for (const addr of b.addresses ?? []) (scopeA.bSide.add(addr), scopeB.bSide.add(addr));
  // Without NAT the same address pair appears at both points: give B the pairs A knows.
  for (const p of pairsB) if (!scopeB.known.has(p) && scopeA.known.has(p)) scopeB.known.set(p, scopeA.known.get(p)!);

  // Clock offset.
  const ab: [bigint, number][] = [];
  const ba: [bigint, number][] = [];
  for (const s of unique) {
    const d = dirOfPair.get(s.pairA);
    (d === AB ? ab : ba).push([s.tA, dOf(s)]);
  }
  const clock: ClockEstimate = {
    offsetNanos: coarse,
    refNanos: scanA.first ?? 0n,
    driftPpm: 0,
    uncertaintyNanos: null,
    method: "none",
    samplesAB: ab.length,
    samplesBA: ba.length,
    samplingShift: shift,
    notes,
  };
  let fine = 0;
  const minOf = (xs: [bigint, number][]) => xs.reduce((m, x) => Math.min(m, x[1]), Number.POSITIVE_INFINITY);
  const maxOf = (xs: [bigint, number][]) => xs.reduce((m, x) => Math.max(m, x[1]), Number.NEGATIVE_INFINITY);
  if (opts.clockOffsetNanos !== undefined) {
    clock.method = "given";
    fine = Number(opts.clockOffsetNanos - coarse);
    if (ab.length > 0 && ba.length > 0) clock.uncertaintyNanos = Math.max(0, (minOf(ab) - maxOf(ba)) / 2);
  } else if (ab.length > 0 && ba.length > 0) {
    clock.method = "two-way-min-delay";
    fine = (minOf(ab) + maxOf(ba)) / 2;
    let u = (minOf(ab) - maxOf(ba)) / 2;
    const fit = fitDrift(ab, ba, clock.refNanos);
    if (fit) {
      fine = fit.offset;
      clock.driftPpm = fit.ppm;
      u = fit.uncertainty;
      notes.push(`clock drift ${fit.ppm.toFixed(3)} ppm fitted over ${fit.segments} segments`);
    }
    if (u < 0) {
      notes.push("one-way delays inconsistent with one clock offset (drift or false matches): uncertainty widened");
      u = Math.abs(u);
    }
    clock.uncertaintyNanos = Math.round(u);
  } else if (ab.length > 0 || ba.length > 0) {
    clock.method = "one-way-min-delay";
    fine = ab.length > 0 ? minOf(ab) : maxOf(ba);
    notes.push("packets matched in one direction only: offset assumes the fastest packet took no time; delays are relative to it");
  } else {
    notes.push("no packet seen at both points: no clock offset, nothing can be matched");
  }
  clock.offsetNanos = coarse + BigInt(Math.round(fine));
  return { clock, scopeA, scopeB, scanA, scanB, coarse: clock.offsetNanos, fine: fine - Math.round(fine), notes };
}

/**
 * Drift: the offset per time segment (min delay each way within the segment), then a least-squares
 * line through the segment offsets. Only when both directions have enough samples over ≥ 60 s.
 */
function fitDrift(ab: [bigint, number][], ba: [bigint, number][], ref: bigint): { offset: number; ppm: number; uncertainty: number; segments: number } | undefined {
  if (ab.length < 60 || ba.length < 60) return undefined;
  const t = (x: [bigint, number]) => Number(x[0] - ref);
  const all = [...ab, ...ba].map(t);
  const t0 = Math.min(...all);
  const t1 = Math.max(...all);
  if (t1 - t0 < 60e9) return undefined;
  const n = Math.min(16, Math.floor(Math.min(ab.length, ba.length) / 20));
  if (n < 3) return undefined;
  const w = (t1 - t0) / n;
  const segs: { t: number; off: number; u: number }[] = [];
  for (let k = 0; k < n; k++) {
    const lo = t0 + k * w;
    const hi = k === n - 1 ? t1 + 1 : lo + w;
    const sa = ab.filter((x) => t(x) >= lo && t(x) < hi);
    const sb = ba.filter((x) => t(x) >= lo && t(x) < hi);
    if (sa.length === 0 || sb.length === 0) continue;
    const minA = Math.min(...sa.map((x) => x[1]));
    const maxB = Math.max(...sb.map((x) => x[1]));
    segs.push({ t: lo + w / 2, off: (minA + maxB) / 2, u: Math.abs(minA - maxB) / 2 });
  }
  if (segs.length < 3) return undefined;
  const mt = segs.reduce((s, x) => s + x.t, 0) / segs.length;
  const mo = segs.reduce((s, x) => s + x.off, 0) / segs.length;
  const sxx = segs.reduce((s, x) => s + (x.t - mt) ** 2, 0);
  const slope = segs.reduce((s, x) => s + (x.t - mt) * (x.off - mo), 0) / sxx;
  const at0 = mo - slope * mt; // offset at ref
  const resid = Math.max(...segs.map((x) => Math.abs(x.off - (at0 + slope * x.t))));
  const ppm = slope * 1e6;
  // A fitted drift below 0.05 ppm is noise: keep the constant (simpler to read in the report).
  if (Math.abs(ppm) < 0.05) return undefined;
  return { offset: at0, ppm, uncertainty: Math.max(...segs.map((x) => x.u)) + resid, segments: segs.length };
}

// ---------------------------------------------------------------------------------------------
// Pass 2: matching in time order.

/** Matched identities remembered for duplicate detection, per direction. */
const MAX_RECENT = 50_000;
const PENDING = 0;
const MATCHED = 1;

const K_OTHER = 0;
const K_TCP = 1;
const K_UDP = 2;
const K_ICMP = 3;

/** What a report row needs about one packet, copied out of the window. */
interface Row {
  t: number;
  delay: number;
  flowName: string;
  kind: number;
  flags: number;
  seq: number;
  ack: number;
  ipId: number;
  plen: number;
  type: number;
  code: number;
  echoId: number;
  echoSeq: number;
}

function rowSummary(r: Row): string {
  const id = r.ipId >= 0 ? ` id ${r.ipId}` : "";
  if (r.kind === K_TCP) return `${r.flowName} ${tcpFlagString(r.flags)} seq ${r.seq} ack ${r.ack} len ${r.plen}${id}`;
  if (r.kind === K_ICMP) return `${r.flowName} type ${r.type} code ${r.code}${r.echoId >= 0 ? ` echo id ${r.echoId} seq ${r.echoSeq}` : ""}${id}`;
  return `${r.flowName} len ${r.plen}${id}`;
}

interface RecvEntry {
  key: number;
  t: number;
  idx: number;
  done: boolean;
}

interface FlowAcc {
  flow: string;
  sent: number;
  delivered: number;
  lost: number;
  duplicates: number;
  reordered: number;
  maxRecvIdx: number;
  hist: DelayHistogram;
  firstLost?: number;
}

class Deque<T> {
  private a: T[] = [];
  private h = 0;
  get size(): number {
    return this.a.length - this.h;
  }
  push(x: T): void {
    this.a.push(x);
  }
  peek(): T | undefined {
    return this.a[this.h];
  }
  shift(): T | undefined {
    const x = this.a[this.h];
    if (x === undefined) return undefined;
    this.a[this.h++] = undefined as T;
    if (this.h > 4096 && this.h * 2 > this.a.length) {
      this.a = this.a.slice(this.h);
      this.h = 0;
    }
    return x;
  }
}

interface Run {
  start: number;
  count: number;
  before: Row[];
  first: Row[];
}

/**
 * Sent packets waiting for their outcome, in send order, as columns of typed arrays: no object and
 * no key string per packet (≈ 90 bytes each), so the window's memory is fixed by its capacity.
 * Entries are addressed by absolute sequence number; slot = seq & mask.
 */
class SendRing {
  cap = 0;
  private mask = 0;
  first = 0;
  end = 0;
  t = new Float64Array(0);
  delay = new Float64Array(0);
  recvIdx = new Float64Array(0);
  key = new Float64Array(0);
  state = new Uint8Array(0);
  kind = new Uint8Array(0);
  flags = new Uint8Array(0);
  type = new Uint8Array(0);
  code = new Uint8Array(0);
  flow = new Int32Array(0);
  seq = new Uint32Array(0);
  ack = new Uint32Array(0);
  plen = new Uint32Array(0);
  ipId = new Int32Array(0);
  echoId = new Int32Array(0);
  echoSeq = new Int32Array(0);
  names: string[] = [];
  decoded: (Decoded | undefined)[] | undefined;

  constructor(keepDecoded: boolean) {
    if (keepDecoded) this.decoded = [];
    this.resize(1024);
  }
  get size(): number {
    return this.end - this.first;
  }
  slot(n: number): number {
    return n & this.mask;
  }
  private resize(cap: number): void {
    const old = this.cap;
    const cols = ["t", "delay", "recvIdx", "key", "state", "kind", "flags", "type", "code", "flow", "seq", "ack", "plen", "ipId", "echoId", "echoSeq"] as const;
    const self = this as unknown as Record<string, Float64Array | Uint8Array | Int32Array | Uint32Array>;
    for (const c of cols) {
      const src = self[c]!;
      const dst = new (src.constructor as new (n: number) => typeof src)(cap);
      for (let n = this.first; n < this.end; n++) dst[n & (cap - 1)] = src[n & (old - 1)]!;
      self[c] = dst;
    }
    const names = new Array<string>(cap);
    const dec = this.decoded ? new Array<Decoded | undefined>(cap) : undefined;
    for (let n = this.first; n < this.end; n++) {
      names[n & (cap - 1)] = this.names[n & (old - 1)]!;
      if (dec) dec[n & (cap - 1)] = this.decoded![n & (old - 1)];
    }
    this.names = names;
    if (dec) this.decoded = dec;
    this.cap = cap;
    this.mask = cap - 1;
  }
  push(): number {
    if (this.size === this.cap) this.resize(this.cap * 2);
    return this.end++;
  }
  row(n: number): Row {
    const s = n & this.mask;
    return {
      t: this.t[s]!,
      delay: this.delay[s]!,
      flowName: this.names[s]!,
      kind: this.kind[s]!,
      flags: this.flags[s]!,
      seq: this.seq[s]!,
      ack: this.ack[s]!,
      ipId: this.ipId[s]!,
      plen: this.plen[s]!,
      type: this.type[s]!,
      code: this.code[s]!,
      echoId: this.echoId[s]!,
      echoSeq: this.echoSeq[s]!,
    };
  }
}

class Direction {
  // identity (53-bit) → absolute sequence number(s) of sent packets not yet seen by the receiver.
  // One per identity almost always: an array only for repeats (IPv6 retransmissions, ignored ids).
  private readonly pending = new Map<number, number | number[]>();
  readonly ring: SendRing;
  private readonly recvPending = new Map<number, RecvEntry[]>();
  private readonly recvQueue = new Deque<RecvEntry>();
  // Recently matched identities (duplicate detection): a fixed ring of (key, time, flow).
  private readonly recent = new Map<number, number>();
  private readonly recentKey = new Float64Array(MAX_RECENT);
  private readonly recentT = new Float64Array(MAX_RECENT);
  private readonly recentFlow = new Int32Array(MAX_RECENT);
  private recentFirst = 0;
  private recentEnd = 0;
  private readonly flowIds = new Map<string, number>();
  private readonly flowList: FlowAcc[] = [newFlow("(other flows)")]; // id 0 is the overflow bucket
  readonly hist = new DelayHistogram();
  sent = 0;
  delivered = 0;
  lost = 0;
  duplicates = 0;
  unexpected = 0;
  reordered = 0;
  decidedEarly = 0;
  readonly excluded = { beforeReceiverStart: 0, afterReceiverStop: 0, inFlightAtStop: 0, receivedOutsideSenderCapture: 0 };
  private recvCount = 0;
  private maxRecvIdx = -1;
  private maxDelaySeen = 0;
  private readonly lastDelivered: Row[] = [];
  private run: Run | undefined;
  private longest: Run | undefined;
  readonly bins: { sent: Float64Array; delivered: Float64Array; lost: Float64Array; dmin: Float64Array; dmax: Float64Array; dsum: Float64Array };

  constructor(
    readonly maxDelay: number,
    readonly early: number, // how far a receive may precede its send (clock uncertainty)
    readonly maxPending: number,
    readonly maxFlows: number,
    readonly keep: number,
    readonly recvStart: number,
    readonly recvEnd: number,
    readonly sendStart: number,
    readonly sendEnd: number,
    readonly binNs: number,
    nbins: number,
    readonly dirIndex: 0 | 1,
    readonly origin: bigint,
    readonly onOutcome: ((o: PacketOutcome) => void) | undefined,
  ) {
    this.ring = new SendRing(onOutcome !== undefined);
    this.bins = {
      sent: new Float64Array(nbins),
      delivered: new Float64Array(nbins),
      lost: new Float64Array(nbins),
      dmin: new Float64Array(nbins).fill(Number.POSITIVE_INFINITY),
      dmax: new Float64Array(nbins).fill(Number.NEGATIVE_INFINITY),
      dsum: new Float64Array(nbins),
    };
  }

  get queueSize(): number {
    return this.ring.size;
  }

  private flowId(name: string): number {
    let f = this.flowIds.get(name);
    if (f === undefined) {
      if (this.flowList.length > this.maxFlows * 4) return 0; // bounded: the long tail is summed
      f = this.flowList.length;
      this.flowList.push(newFlow(name));
      this.flowIds.set(name, f);
    }
    return f;
  }

  onSend(key: number, flow: string, d: Decoded, t: number): void {
    const R = this.ring;
    const n = R.push();
    const s = R.slot(n);
    const fid = this.flowId(flow);
    R.t[s] = t;
    R.key[s] = key;
    R.state[s] = PENDING;
    R.flow[s] = fid;
    R.names[s] = fid === 0 ? flow : this.flowList[fid]!.flow;
    if (R.decoded) R.decoded[s] = d;
    const ip = d.ip!;
    R.ipId[s] = ip.version === 4 ? ip.id : -1;
    R.plen[s] = d.payloadLength ?? 0;
    const l4 = d.l4;
    R.echoId[s] = -1;
    if (l4 === undefined) R.kind[s] = K_OTHER;
    else if (l4.protocol === "tcp") ((R.kind[s] = K_TCP), (R.flags[s] = l4.flags), (R.seq[s] = l4.seq), (R.ack[s] = l4.ack));
    else if (l4.protocol === "udp") R.kind[s] = K_UDP;
    else {
      R.kind[s] = K_ICMP;
      R.type[s] = l4.type;
      R.code[s] = l4.code;
      if (l4.id !== undefined) ((R.echoId[s] = l4.id), (R.echoSeq[s] = l4.seq ?? 0));
    }
    const waiting = this.recvPending.get(key);
    if (waiting !== undefined) {
      // The receiver saw it first: only possible within the clock uncertainty.
      const r = waiting.shift()!;
      if (waiting.length === 0) this.recvPending.delete(key);
      r.done = true;
      this.matched(n, r.t, r.idx);
    } else {
      const cur = this.pending.get(key);
      if (cur === undefined) this.pending.set(key, n);
      else if (typeof cur === "number") this.pending.set(key, [cur, n]);
      else cur.push(n);
    }
    while (R.size > this.maxPending) {
      this.decidedEarly++;
      this.finalizeHead(true);
    }
  }

  onRecv(key: number, t: number): void {
    const idx = this.recvCount++;
    const R = this.ring;
    const cur = this.pending.get(key);
    if (cur !== undefined) {
      // The latest send before this arrival: a retransmission that got through is matched to
      // itself, and the earlier lost copy stays lost.
      if (typeof cur === "number") {
        if (t - R.t[R.slot(cur)]! <= this.maxDelay) {
          this.pending.delete(key);
          this.matched(cur, t, idx);
          return;
        }
      } else {
        let i = cur.length - 1;
        while (i > 0 && R.t[R.slot(cur[i]!)]! > t + this.early) i--;
        const n = cur[i]!;
        if (t - R.t[R.slot(n)]! <= this.maxDelay) {
          cur.splice(i, 1);
          if (cur.length === 1) this.pending.set(key, cur[0]!);
          this.matched(n, t, idx);
          return;
        }
      }
    }
    const rec = this.recent.get(key);
    if (rec !== undefined) {
      this.duplicates++;
      this.flowList[this.recentFlow[rec % MAX_RECENT]!]!.duplicates++;
      return;
    }
    const r: RecvEntry = { key, t, idx, done: false };
    const w = this.recvPending.get(key);
    if (w === undefined) this.recvPending.set(key, [r]);
    else w.push(r);
    this.recvQueue.push(r);
  }

  private matched(n: number, tRecv: number, idx: number): void {
    const R = this.ring;
    const s = R.slot(n);
    R.state[s] = MATCHED;
    const delay = tRecv - R.t[s]!;
    R.delay[s] = delay;
    R.recvIdx[s] = idx;
    if (delay > this.maxDelaySeen) this.maxDelaySeen = delay;
    // Duplicates are looked for within maxDelay, but never among more than MAX_RECENT packets.
    if (this.recentEnd - this.recentFirst >= MAX_RECENT) this.forgetOldestRecent();
    const r = this.recentEnd++;
    const rs = r % MAX_RECENT;
    this.recentKey[rs] = R.key[s]!;
    this.recentT[rs] = tRecv;
    this.recentFlow[rs] = R.flow[s]!;
    this.recent.set(R.key[s]!, r);
  }

  private forgetOldestRecent(): void {
    const r = this.recentFirst++;
    const k = this.recentKey[r % MAX_RECENT]!;
    if (this.recent.get(k) === r) this.recent.delete(k);
  }

  /** Decide everything older than the windows allow, in send order. */
  expire(now: number): void {
    const R = this.ring;
    while (R.size > 0) {
      const s = R.slot(R.first);
      if (R.state[s] === MATCHED || now - R.t[s]! > this.maxDelay) this.finalizeHead(false);
      else break;
    }
    for (;;) {
      const r = this.recvQueue.peek();
      if (r === undefined || (!r.done && now - r.t <= this.early)) break;
      this.recvQueue.shift();
      if (r.done) continue;
      r.done = true;
      const w = this.recvPending.get(r.key);
      if (w !== undefined) {
        const i = w.indexOf(r);
        if (i >= 0) w.splice(i, 1);
        if (w.length === 0) this.recvPending.delete(r.key);
      }
      this.countUnseen(r.t);
    }
    while (this.recentEnd > this.recentFirst && now - this.recentT[this.recentFirst % MAX_RECENT]! > this.maxDelay) this.forgetOldestRecent();
  }

  private finalizeHead(early: boolean): void {
    const R = this.ring;
    const n = R.first;
    const s = R.slot(n);
    if (R.state[s] === PENDING) {
      const k = R.key[s]!;
      const cur = this.pending.get(k);
      if (cur === n) this.pending.delete(k);
      else if (typeof cur === "object") {
        const i = cur.indexOf(n);
        if (i >= 0) cur.splice(i, 1);
        if (cur.length === 1) this.pending.set(k, cur[0]!);
      }
    }
    const status = this.account(n, early);
    if (this.onOutcome) {
      const o: PacketOutcome = { direction: this.dirIndex, status, tsNanos: this.origin + BigInt(Math.round(R.t[s]!)), packet: R.decoded![s]! };
      if (status === "delivered") o.delayNanos = R.delay[s]!;
      this.onOutcome(o);
      R.decoded![s] = undefined;
    }
    R.first++;
  }

  private bin(t: number): number {
    const i = Math.floor(t / this.binNs);
    return i < 0 ? 0 : i >= this.bins.sent.length ? this.bins.sent.length - 1 : i;
  }

  private account(n: number, early: boolean): PacketOutcome["status"] {
    const R = this.ring;
    const s = R.slot(n);
    const t = R.t[s]!;
    const f = this.flowList[R.flow[s]!]!;
    const b = this.bin(t);
    if (R.state[s] === MATCHED) {
      this.sent++;
      this.delivered++;
      f.sent++;
      f.delivered++;
      this.bins.sent[b]!++;
      this.bins.delivered[b]!++;
      const dl = R.delay[s]!;
      this.hist.add(dl);
      f.hist.add(dl);
      if (dl < this.bins.dmin[b]!) this.bins.dmin[b] = dl;
      if (dl > this.bins.dmax[b]!) this.bins.dmax[b] = dl;
      this.bins.dsum[b]! += dl;
      const ri = R.recvIdx[s]!;
      if (ri < this.maxRecvIdx) this.reordered++;
      else this.maxRecvIdx = ri;
      if (ri < f.maxRecvIdx) f.reordered++;
      else f.maxRecvIdx = ri;
      if (this.keep > 0) {
        this.lastDelivered.push(R.row(n));
        if (this.lastDelivered.length > this.keep) this.lastDelivered.shift();
      }
      if (this.run) {
        if (!this.longest || this.run.count > this.longest.count) this.longest = this.run;
        this.run = undefined;
      }
      return "delivered";
    }
    // Not seen at the receiver: lost only if the receiver was capturing when it should have arrived.
    if (t < this.recvStart) return this.exclude("beforeReceiverStart");
    if (t > this.recvEnd) return this.exclude("afterReceiverStop");
    const horizon = Math.min(this.maxDelay, Math.max(1e6, this.maxDelaySeen));
    if (!early && t + horizon > this.recvEnd) return this.exclude("inFlightAtStop");
    this.sent++;
    this.lost++;
    f.sent++;
    f.lost++;
    if (f.firstLost === undefined) f.firstLost = t;
    this.bins.sent[b]!++;
    this.bins.lost[b]!++;
    if (!this.run) this.run = { start: t, count: 0, before: [...this.lastDelivered], first: [] };
    this.run.count++;
    if (this.run.first.length < this.keep) this.run.first.push(R.row(n));
    return "lost";
  }

  /** A packet the receiver saw and the sender never did: unexpected only while the sender captured. */
  private countUnseen(t: number): void {
    const horizon = Math.min(this.maxDelay, Math.max(1e6, this.maxDelaySeen));
    if (t < this.sendStart || t > this.sendEnd + horizon) this.excluded.receivedOutsideSenderCapture++;
    else this.unexpected++;
  }

  private exclude(why: keyof DirectionResult["excluded"]): "excluded" {
    this.excluded[why]++;
    return "excluded";
  }

  finish(): void {
    while (this.ring.size > 0) this.finalizeHead(false);
    for (;;) {
      const r = this.recvQueue.shift();
      if (r === undefined) break;
      if (!r.done) this.countUnseen(r.t);
    }
    this.recvPending.clear();
    this.recent.clear();
  }

  result(from: string, to: string, origin: bigint, maxFlows: number): DirectionResult {
    const row = (e: Row, delivered: boolean): PacketRow => {
      const r: PacketRow = { tsNanos: origin + BigInt(Math.round(e.t)), summary: rowSummary(e), flow: e.flowName };
      if (delivered) r.delayNanos = e.delay;
      return r;
    };
    let failure: FailureResult | null = null;
    const run = this.run ?? this.longest;
    if (run) {
      failure = {
        kind: this.run ? "blackout" : "burst",
        startNanos: origin + BigInt(Math.round(run.start)),
        lostInRun: run.count,
        lastDelivered: run.before.map((e) => row(e, true)),
        firstLost: run.first.map((e) => row(e, false)),
      };
    }
    const flows = this.flowList.slice(1);
    const other = this.flowList[0]!;
    if (other.sent + other.duplicates > 0) flows.push(other);
    flows.sort((x, y) => y.sent - x.sent || x.flow.localeCompare(y.flow));
    const shown = flows.slice(0, maxFlows);
    const nb = this.bins.sent.length;
    const tl: Timeline = {
      startNanos: origin,
      binNanos: this.binNs,
      sent: [...this.bins.sent],
      delivered: [...this.bins.delivered],
      lost: [...this.bins.lost],
      delayMinNanos: [],
      delayMeanNanos: [],
      delayMaxNanos: [],
    };
    for (let i = 0; i < nb; i++) {
      const c = this.bins.delivered[i]!;
      tl.delayMinNanos.push(c > 0 ? this.bins.dmin[i]! : null);
      tl.delayMaxNanos.push(c > 0 ? this.bins.dmax[i]! : null);
      tl.delayMeanNanos.push(c > 0 ? Math.round(this.bins.dsum[i]! / c) : null);
    }
    return {
      from,
      to,
      sent: this.sent,
      delivered: this.delivered,
      lost: this.lost,
      excluded: { ...this.excluded },
      duplicates: this.duplicates,
      unexpected: this.unexpected,
      reordered: this.reordered,
      delay: this.hist.stats(),
      flows: shown.map((f) => {
        const r: FlowResult = { flow: f.flow, sent: f.sent, delivered: f.delivered, lost: f.lost, duplicates: f.duplicates, reordered: f.reordered, delay: f.hist.stats() };
        if (f.firstLost !== undefined) r.firstLostNanos = origin + BigInt(Math.round(f.firstLost));
        return r;
      }),
      flowsOmitted: flows.length - shown.length,
      failure,
      timeline: tl,
      decidedEarly: this.decidedEarly,
    };
  }
}

function newFlow(flow: string): FlowAcc {
  return { flow, sent: 0, delivered: 0, lost: 0, duplicates: 0, reordered: 0, maxRecvIdx: -1, hist: new DelayHistogram() };
}

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
  /** @internal */
  readonly state: unknown;
  readonly opts: MatchOptions;
}

export async function estimatePair(a: PointInput, b: PointInput, opts: MatchOptions = {}): Promise<PairEstimate> {
  const p1 = await pass1(a, b, identityConfig(opts), opts);
  const span = (s: SideScan) => ({ ...(s.first !== undefined ? { first: s.first } : {}), ...(s.last !== undefined ? { last: s.last } : {}) });
  return { a, b, clock: p1.clock, spans: [span(p1.scanA), span(p1.scanB)], state: p1, opts };
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

  const sA = await PointStream.open(a.files, { decode: true });
  const sB = await PointStream.open(b.files, { decode: true });
  const process = (p: CapturedPacket, side: 0 | 1, t: number) => {
    const s = sides[side];
    s.packets++;
    const id = packetIdentity(p.decoded!, p.data, cfg);
    if (id === undefined) return void s.nonIp++;
    const dir = classify(side === 0 ? p1.scopeA : p1.scopeB, id.hostPair);
    if (dir === undefined) return void s.outOfScope++;
    const D = dirs[dir];
    const key = id.hash * 2097152 + (altStringHash(id.key) & 0x1fffff); // 53 bits: no strings kept
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
  return {
    a: a.name,
    b: b.name,
    clock,
    sides,
    directions: [dirs[0].result(a.name, b.name, origin, maxFlows), dirs[1].result(b.name, a.name, origin, maxFlows)],
    notes,
  };
}
