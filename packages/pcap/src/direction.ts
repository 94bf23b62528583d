// Pass 2 of matching, one direction: sent packets wait in a window keyed by identity until the
// receiver sees them or maxDelay passes; each outcome is counted per direction, per flow, per
// timeline bin, with the duplicate, reordering and loss-run bookkeeping for the report.
import type { Decoded } from "./decode.js";
import { DelayHistogram } from "./histogram.js";
import type { DirectionResult, FailureResult, FlowResult, PacketOutcome, PacketRow, Timeline } from "./match-types.js";
import { K_ICMP, K_OTHER, K_TCP, K_UDP, MATCHED, PENDING, rowSummary, SendRing, type Row } from "./send-ring.js";

/** Matched identities remembered for duplicate detection, per direction. */
const MAX_RECENT = 50_000;

interface RecvEntry {
  key: number;
  t: number;
  idx: number;
  done: boolean;
}

interface FlowAcc extends Omit<FlowResult, "delay" | "firstLostNanos"> {
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

export class Direction {
  // identity (53-bit) → absolute sequence number(s) of sent packets not yet seen by the receiver.
  // One per identity almost always: an array only for repeats (IPv6 retransmissions, ignored ids).
  private readonly pending = new Map<number, number | number[]>();
  readonly ring: SendRing;
  private readonly recvPending = new Map<number, RecvEntry[]>();
  private readonly recvQueue = new Deque<RecvEntry>();
  // Recently matched identities (duplicate detection): a fixed ring of (key, time, flow).
  private readonly recent = new Map<number, number>();
  // Grown on demand up to MAX_RECENT (a run report matches ~1,000 small device pairs in turn).
  private recentKey = new Float64Array(1024);
  private recentT = new Float64Array(1024);
  private recentFlow = new Int32Array(1024);
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
      this.flowList[this.recentFlow[rec % this.recentKey.length]!]!.duplicates++;
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
    else if (this.recentEnd - this.recentFirst >= this.recentKey.length) this.growRecent();
    const r = this.recentEnd++;
    const rs = r % this.recentKey.length;
    this.recentKey[rs] = R.key[s]!;
    this.recentT[rs] = tRecv;
    this.recentFlow[rs] = R.flow[s]!;
    this.recent.set(R.key[s]!, r);
  }

  private growRecent(): void {
    const c = Math.min(MAX_RECENT, this.recentKey.length * 2);
    const key = new Float64Array(c);
    const t = new Float64Array(c);
    const flow = new Int32Array(c);
    const old = this.recentKey.length;
    for (let r = this.recentFirst; r < this.recentEnd; r++) {
      key[r % c] = this.recentKey[r % old]!;
      t[r % c] = this.recentT[r % old]!;
      flow[r % c] = this.recentFlow[r % old]!;
    }
    this.recentKey = key;
    this.recentT = t;
    this.recentFlow = flow;
  }

  private forgetOldestRecent(): void {
    const r = this.recentFirst++;
    const k = this.recentKey[r % this.recentKey.length]!;
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
    while (this.recentEnd > this.recentFirst && now - this.recentT[this.recentFirst % this.recentT.length]! > this.maxDelay) this.forgetOldestRecent();
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
