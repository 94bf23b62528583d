// k-way streaming merge of several capture points (each one or more pcap/pcapng files) into one
// pcapng: one named interface per capture point and link type, each point's clock offset removed.
// Like mergecap it assumes each input file is in time order; it does not sort within a file.
import { CaptureError } from "./errors.js";
import { linktypeName } from "./linktypes.js";
import { PcapngWriter } from "./pcapng.js";
import { openCapture, type CaptureReader } from "./reader.js";
import type { CapturedPacket } from "./types.js";

export interface MergeSource {
  /** Interface name in the merged file, e.g. "msbr-1". */
  name: string;
  description?: string;
  files: string[];
  /**
   * This source's clock minus the reference clock, in ns: subtracted from every timestamp so all
   * sources share the reference's time axis. 0 or absent for the reference itself.
   */
  offsetNanos?: bigint;
  /** Drift of this source's clock against the reference (ppm) around `refNanos` (source clock). */
  driftPpm?: number;
  refNanos?: bigint;
  /** opt_comment lines on the source's interface(s), e.g. how the offset was estimated. */
  comments?: string[];
}

export interface MergeOptions {
  /** Section comment (SHB opt_comment). */
  comment?: string;
  /** Read size per input file; by default 1 MiB, less when there are many files (bounded memory). */
  chunkBytes?: number;
}

export interface MergedInterface {
  id: number;
  name: string;
  source: number;
  linktype: number;
}

export interface MergeFileResult {
  path: string;
  packets: number;
  format?: "pcap" | "pcapng";
  error?: CaptureError;
}

export interface MergeResult {
  path: string;
  packets: number;
  bytes: number;
  interfaces: MergedInterface[];
  sources: { name: string; packets: number; files: MergeFileResult[] }[];
  /** Time span of the merged packets (reference clock), ns. */
  firstNanos?: bigint;
  lastNanos?: bigint;
}

interface Stream {
  reader: CaptureReader;
  source: number;
  file: MergeFileResult;
  batch: CapturedPacket[];
  idx: number;
  offset: bigint;
  drift: number; // ppm × 1e-6
  ref: bigint;
  /** Corrected timestamp of batch[idx]. */
  ts: bigint;
  order: number;
  lastLinktype: number;
  lastIface: number;
}

function corrected(s: Stream, t: bigint): bigint {
  if (s.drift === 0) return s.offset === 0n ? t : t - s.offset;
  return t - s.offset - BigInt(Math.round(Number(t - s.ref) * s.drift));
}

async function advanceBatch(s: Stream): Promise<boolean> {
  for (;;) {
    const b = await s.reader.nextBatch();
    if (b === null) {
      if (s.reader.error) s.file.error = s.reader.error;
      s.file.format = s.reader.format;
      return false;
    }
    if (b.length === 0) continue;
    s.batch = b;
    s.idx = 0;
    s.ts = corrected(s, b[0]!.tsNanos);
    return true;
  }
}

/** Min-heap of streams by (ts, order): order keeps equal timestamps in input order. */
class Heap {
  readonly a: Stream[] = [];
  private less(x: Stream, y: Stream): boolean {
    return x.ts < y.ts || (x.ts === y.ts && x.order < y.order);
  }
  push(s: Stream): void {
    const a = this.a;
    a.push(s);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  /** Restore order after the root's key grew (or remove it when `remove`). */
  siftRoot(remove: boolean): void {
    const a = this.a;
    if (remove) {
      const last = a.pop()!;
      if (a.length === 0) return;
      a[0] = last;
    }
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
      if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
      if (m === i) return;
      [a[i], a[m]] = [a[m]!, a[i]!];
      i = m;
    }
  }
  /** The smaller child of the root: the next stream to compete with the root. */
  runnerUp(): Stream | undefined {
    const a = this.a;
    const l = a[1];
    const r = a[2];
    if (l === undefined) return r;
    if (r === undefined) return l;
    return this.less(l, r) ? l : r;
  }
}

/**
 * Merge `sources` into one pcapng at `outPath` (overwritten). Bad or truncated input files keep
 * their good packets and are reported in `sources[i].files[j].error`; only output I/O throws.
 */
export async function mergeCaptures(sources: MergeSource[], outPath: string, opts: MergeOptions = {}): Promise<MergeResult> {
  const fileCount = sources.reduce((n, s) => n + s.files.length, 0);
  // Bound memory with many ring files: ≤ ~64 MiB of read chunks in total, 64 KiB..1 MiB each.
  const chunkBytes = opts.chunkBytes ?? Math.max(64 * 1024, Math.min(1024 * 1024, Math.floor((64 * 1024 * 1024) / Math.max(1, fileCount))));
  const result: MergeResult = { path: outPath, packets: 0, bytes: 0, interfaces: [], sources: sources.map((s) => ({ name: s.name, packets: 0, files: [] })) };
  const heap = new Heap();
  const streams: Stream[] = [];
  let order = 0;
  for (let si = 0; si < sources.length; si++) {
    const src = sources[si]!;
    for (const path of src.files) {
      const file: MergeFileResult = { path, packets: 0 };
      result.sources[si]!.files.push(file);
      const s: Stream = { reader: openCapture(path, { chunkBytes }), source: si, file, batch: [], idx: 0, offset: src.offsetNanos ?? 0n, drift: (src.driftPpm ?? 0) * 1e-6, ref: src.refNanos ?? 0n, ts: 0n, order: order++, lastLinktype: -1, lastIface: 0 };
      streams.push(s);
      if (await advanceBatch(s)) heap.push(s);
    }
  }

  const writer = await PcapngWriter.create(outPath, opts.comment === undefined ? {} : { comment: opts.comment });
  try {
    const ifaceOf = new Map<number, number>(); // source * 65536 + linktype → output interface
    const addInterface = (si: number, linktype: number, snaplen: number): number => {
      const src = sources[si]!;
      const sameSource = result.interfaces.filter((i) => i.source === si).length;
      const name = sameSource === 0 ? src.name : `${src.name}/${linktypeName(linktype)}`;
      const id = writer.addInterface({
        linktype,
        snaplen,
        name,
        ...(src.description !== undefined ? { description: src.description } : {}),
        ...(src.comments !== undefined ? { comments: src.comments } : {}),
      });
      result.interfaces.push({ id, name, source: si, linktype });
      ifaceOf.set(si * 65536 + linktype, id);
      return id;
    };
    // Describe every interface seen in the first chunk of each file up front, in source order, so
    // the merged file opens with all its IDBs; a link type that appears later gets its IDB then.
    const snap = new Map<number, number>();
    for (const s of streams) {
      for (const i of s.reader.interfaces) {
        const k = s.source * 65536 + i.linktype;
        snap.set(k, Math.max(snap.get(k) ?? 0, i.snaplen || 262144));
      }
    }
    for (const k of [...snap.keys()].sort((a, b) => a - b)) addInterface(Math.floor(k / 65536), k % 65536, snap.get(k)!);

    let first: bigint | undefined;
    let last = 0n;
    while (heap.a.length > 0) {
      const s = heap.a[0]!;
      const next = heap.runnerUp();
      const limit = next?.ts;
      const limitOrder = next?.order ?? 0;
      const b = s.batch;
      let i = s.idx;
      const offset = s.offset;
      const plain = s.drift === 0;
      let written = 0;
      // Emit from this stream while it stays ahead of the runner-up: no heap work per packet.
      for (;;) {
        const p = b[i]!;
        const ts = plain ? (offset === 0n ? p.tsNanos : p.tsNanos - offset) : corrected(s, p.tsNanos);
        if (limit !== undefined && (ts > limit || (ts === limit && s.order > limitOrder))) break;
        let iface = p.linktype === s.lastLinktype ? s.lastIface : ifaceOf.get(s.source * 65536 + p.linktype);
        if (iface === undefined) iface = addInterface(s.source, p.linktype, 262144);
        s.lastLinktype = p.linktype;
        s.lastIface = iface;
        if (first === undefined) first = ts;
        last = ts;
        const full = writer.writeEpb(iface, ts < 0n ? 0n : ts, p.data, p.originalLength, p.comment, p.flags);
        written++;
        i++;
        if (full) await writer.drain();
        if (i >= b.length) break;
      }
      s.file.packets += written;
      result.sources[s.source]!.packets += written;
      result.packets += written;
      if (i < b.length) {
        s.idx = i;
        const p = b[i]!;
        s.ts = corrected(s, p.tsNanos);
        heap.siftRoot(false);
      } else if (await advanceBatch(s)) heap.siftRoot(false);
      else heap.siftRoot(true);
    }
    if (first !== undefined) {
      result.firstNanos = first;
      result.lastNanos = last;
    }
  } finally {
    for (const s of streams) await s.reader.close();
    await writer.close();
  }
  result.bytes = writer.bytesWritten;
  return result;
}
