// Pass 1 of matching: sample packet identities at both points (bounded memory), find which way each
// address pair runs, and estimate the clock offset between the points (minimum one-way delay each
// way, NTP-style, with a linear drift fit when the capture is long enough).
import { identityKey, packetIdentity, type IdentityConfig, type PacketIdentity } from "./identity.js";
import type { ClockEstimate, MatchOptions, PointInput } from "./match-types.js";
import type { FileOutcome } from "./ordered.js";
import { openCapture } from "./reader.js";

const AB = 0;
const BA = 1;
export type Dir = typeof AB | typeof BA;
const MAX_HOST_PAIRS = 4096;

export interface SideScan {
  packets: number;
  nonIp: number;
  first?: bigint;
  last?: bigint;
  files: FileOutcome[];
}

/** Read every file of one point, noting its span, and hand each IP packet's identity to `add`. */
async function scanSide(paths: string[], cfg: IdentityConfig, scan: SideScan, pairs: Set<string>, add: (id: PacketIdentity, ts: bigint) => void): Promise<void> {
  for (const path of paths) {
    const reader = openCapture(path, { decode: true, reuseChunks: true }) // nothing below keeps `data` past its batch;
    const outcome: FileOutcome = { path, packets: 0 };
    for (;;) {
      const batch = await reader.nextBatch();
      if (batch === null) break;
      outcome.packets += batch.length;
      for (const p of batch) {
        scan.packets++;
        if (scan.first === undefined || p.tsNanos < scan.first) scan.first = p.tsNanos;
        if (scan.last === undefined || p.tsNanos > scan.last) scan.last = p.tsNanos;
        const id = packetIdentity(p.decoded!, p.data, cfg);
        if (id === undefined) {
          scan.nonIp++;
          continue;
        }
        if (pairs.size < MAX_HOST_PAIRS) pairs.add(id.hostPair);
        add(id, p.tsNanos);
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

export interface Scope {
  /** Directed address pair at this side → direction. */
  known: Map<string, Dir>;
  /** Addresses on A's side / B's side, as seen at this point. */
  aSide: Set<string>;
  bSide: Set<string>;
  cache: Map<string, Dir | -1>;
}

export function classify(s: Scope, pair: string): Dir | undefined {
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

export interface Pass1 {
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
type Columns = Pick<SampleTable, "h" | "tA" | "tB" | "nA" | "nB" | "pA" | "pB" | "ttlA" | "ttlB">;
/** The last table's columns at their first size: the next pair's table reuses them (no garbage per pair). */
let spare: Columns | undefined;

class SampleTable {
  shift = 0;
  private mask = 0;
  private readonly index = new Map<number, number>();
  private n = 0;
  h: Uint32Array;
  tA: Float64Array;
  tB: Float64Array;
  nA: Uint8Array;
  nB: Uint8Array;
  pA: Int32Array;
  pB: Int32Array;
  ttlA: Uint8Array;
  ttlB: Uint8Array;
  private baseA: bigint | undefined;
  private baseB: bigint | undefined;
  private readonly pairs: string[] = [];
  private readonly pairIds = new Map<string, number>();

  constructor(private readonly max: number) {
    // Sized for what is seen, up to max + 1: a run report samples ~1,000 device pairs in turn.
    const c = Math.min(max + 1, 4096);
    const s = spare;
    if (s !== undefined && s.h.length === c) {
      // As new ones: zeroed, pB -1 (not seen at B).
      spare = undefined;
      for (const col of [s.h, s.tA, s.tB, s.nA, s.nB, s.pA, s.ttlA, s.ttlB]) col.fill(0);
      s.pB.fill(-1);
      ({ h: this.h, tA: this.tA, tB: this.tB, nA: this.nA, nB: this.nB, pA: this.pA, pB: this.pB, ttlA: this.ttlA, ttlB: this.ttlB } = s);
      return;
    }
    this.h = new Uint32Array(c); // identity hash: the sampling decision
    this.tA = new Float64Array(c); // first seen at A, ns after baseA
    this.tB = new Float64Array(c); // first seen at B, ns after baseB
    this.nA = new Uint8Array(c); // times seen at A (stops at 255)
    this.nB = new Uint8Array(c); // times seen at B (stops at 255)
    this.pA = new Int32Array(c); // interned address pair at A
    this.pB = new Int32Array(c).fill(-1); // interned address pair at B (-1: not seen)
    this.ttlA = new Uint8Array(c); // TTL or hop limit at A
    this.ttlB = new Uint8Array(c); // TTL or hop limit at B
  }

  /** Hand the columns to the next table; this one must not be used any more. */
  recycle(): void {
    if (this.h.length === Math.min(this.max + 1, 4096)) spare = { h: this.h, tA: this.tA, tB: this.tB, nA: this.nA, nB: this.nB, pA: this.pA, pB: this.pB, ttlA: this.ttlA, ttlB: this.ttlB };
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

  addA(id: { key: string; hash: number; hostPair: string; ttl: number }, ts: bigint): void {
    if ((id.hash & this.mask) !== 0) return;
    const k = identityKey(id);
    const i = this.index.get(k);
    if (i !== undefined) {
      if (this.nA[i]! < 255) this.nA[i]!++;
      return;
    }
    this.baseA ??= ts;
    if (this.n >= this.h.length) this.grow();
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
    const i = this.index.get(identityKey(id));
    if (i === undefined) return;
    if (this.nB[i] === 0) {
      this.baseB ??= ts;
      this.tB[i] = Number(ts - this.baseB);
      this.pB[i] = this.pairId(id.hostPair);
      this.ttlB[i] = id.ttl;
    }
    if (this.nB[i]! < 255) this.nB[i]!++;
  }

  private grow(): void {
    const c = Math.min(this.max + 1, this.h.length * 2);
    const more = <T extends Uint32Array | Float64Array | Uint8Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(c);
      b.set(a as never);
      return b;
    };
    this.h = more(this.h, (n) => new Uint32Array(n));
    this.tA = more(this.tA, (n) => new Float64Array(n));
    this.tB = more(this.tB, (n) => new Float64Array(n));
    this.nA = more(this.nA, (n) => new Uint8Array(n));
    this.nB = more(this.nB, (n) => new Uint8Array(n));
    this.pA = more(this.pA, (n) => new Int32Array(n));
    this.pB = more(this.pB, (n) => new Int32Array(n).fill(-1));
    this.ttlA = more(this.ttlA, (n) => new Uint8Array(n));
    this.ttlB = more(this.ttlB, (n) => new Uint8Array(n));
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
export async function pass1(a: PointInput, b: PointInput, cfg: IdentityConfig, opts: MatchOptions): Promise<Pass1> {
  const maxSamples = opts.maxSamples ?? 100_000;
  const S = new SampleTable(maxSamples);
  const pairsA = new Set<string>();
  const pairsB = new Set<string>();
  const scanA: SideScan = { packets: 0, nonIp: 0, files: [] };
  const scanB: SideScan = { packets: 0, nonIp: 0, files: [] };
  await scanSide(a.files, cfg, scanA, pairsA, (id, ts) => S.addA(id, ts));
  await scanSide(b.files, cfg, scanB, pairsB, (id, ts) => S.addB(id, ts));
  const shift = S.shift;
  const samples = S.all();
  S.recycle();

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
