// k-way streaming merge of several capture points (each one or more pcap/pcapng files) into one
// pcapng: one named interface per capture point and link type, each point's clock offset removed.
// Like mergecap it assumes each input file is in time order; it does not sort within a file.
// Bounded whatever the number of files: at most `maxOpenFiles` (256) are open at once — with more
// (a fleet's run folder: two per device), groups of files are merged into temporary pcapng files
// first, keeping each packet's capture point, and those are merged into the output.
import { unlink } from "node:fs/promises";
import { CaptureError } from "./errors.js";
import { BinaryHeap } from "./heap.js";
import { linktypeName } from "./linktypes.js";
import { PcapngWriter } from "./pcapng-writer.js";
import { openCapture, type CaptureReader } from "./reader.js";
import { hl, nsToHiLo, RawBatch } from "./raw.js";

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
  /** Input files open at once (default 256); more files are merged in groups through temporary files. */
  maxOpenFiles?: number;
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
  batch: RawBatch;
  idx: number;
  /** Offset to remove, split as offSec·10^9 + offNsec with 0 ≤ offNsec < 10^9. */
  offSec: number;
  offNsec: number;
  drift: number; // ppm × 1e-6
  refSec: number;
  refNsec: number;
  /** Corrected time of batch[idx]. */
  sec: number;
  nsec: number;
  order: number;
  /** An intermediate file of a grouped merge: its interface id → the capture point (source). */
  ifaceSource: number[] | undefined;
  lastLinktype: number;
  lastInIface: number;
  lastIface: number;
  lastSource: number;
}

/** One input file of a merge round. */
interface Input {
  path: string;
  source: number;
  file: MergeFileResult;
  ifaceSource?: number[];
}

const NS = 1_000_000_000;
/** Bytes of read buffers the merge aims at whatever the number of input files (above a few hundred files the 4 KiB floor wins). */
const MERGE_READ_BUDGET = 16 * 1024 * 1024;
const MAX_OPEN_FILES = 256;

/** Corrected time of batch entry i into s.sec/s.nsec scratch (t − offset − drift·(t − ref)). */
function correct(s: Stream, i: number, out: { sec: number; nsec: number }): void {
  const b = s.batch;
  let sec = b.sec[i]! - s.offSec;
  let nsec = b.nsec[i]! - s.offNsec;
  if (s.drift !== 0) {
    const rel = (b.sec[i]! - s.refSec) * NS + (b.nsec[i]! - s.refNsec);
    nsec -= Math.round(rel * s.drift);
  }
  if (nsec < 0 || nsec >= NS) {
    const carry = Math.floor(nsec / NS);
    sec += carry;
    nsec -= carry * NS;
  }
  out.sec = sec;
  out.nsec = nsec;
}

async function advanceBatch(s: Stream): Promise<boolean> {
  if (!(await s.reader.nextRawBatch(s.batch))) {
    if (s.reader.error) s.file.error = s.reader.error;
    s.file.format = s.reader.format;
    return false;
  }
  s.idx = 0;
  correct(s, 0, s);
  return true;
}

const before = (x: Stream, y: Stream) => x.sec < y.sec || (x.sec === y.sec && (x.nsec < y.nsec || (x.nsec === y.nsec && x.order < y.order)));

function split(ns: bigint): [number, number] {
  let sec = ns / 1_000_000_000n;
  let rem = ns - sec * 1_000_000_000n;
  if (rem < 0n) ((rem += 1_000_000_000n), (sec -= 1n));
  return [Number(sec), Number(rem)];
}

/**
 * Merge `sources` into one pcapng at `outPath` (overwritten). Bad or truncated input files keep
 * their good packets and are reported in `sources[i].files[j].error`; only output I/O throws.
 */
export async function mergeCaptures(sources: MergeSource[], outPath: string, opts: MergeOptions = {}): Promise<MergeResult> {
  const inputs: Input[] = sources.flatMap((src, source) => src.files.map((path) => ({ path, source, file: { path, packets: 0 } })));
  const maxOpen = Math.max(2, opts.maxOpenFiles ?? MAX_OPEN_FILES);
  if (inputs.length <= maxOpen) {
    const r = await mergeRound(sources, inputs, outPath, opts);
    for (const i of inputs) r.sources[i.source]!.files.push(i.file);
    return r;
  }
  // Groups of consecutive files (so equal timestamps keep the input order), each merged with its
  // sources' offsets into a temporary pcapng; then those, interface by interface back to their source.
  const groups = Math.ceil(inputs.length / maxOpen);
  if (groups > maxOpen) throw new RangeError(`merge of ${inputs.length} files: at most ${maxOpen * maxOpen} with maxOpenFiles ${maxOpen}`);
  const size = Math.ceil(inputs.length / groups);
  const parts: Input[] = [];
  try {
    for (let g = 0; g < groups; g++) {
      const chunk = inputs.slice(g * size, (g + 1) * size);
      const local = [...new Set(chunk.map((i) => i.source))];
      const path = `${outPath}.part${g}`;
      const r = await mergeRound(
        local.map((si) => ({ ...sources[si]!, files: [] })),
        chunk.map((i) => ({ ...i, source: local.indexOf(i.source) })),
        path,
        opts.chunkBytes === undefined ? {} : { chunkBytes: opts.chunkBytes },
      );
      const ifaceSource: number[] = [];
      for (const i of r.interfaces) ifaceSource[i.id] = local[i.source]!;
      parts.push({ path, source: local[0]!, file: { path, packets: 0 }, ifaceSource });
    }
    const r = await mergeRound(sources, parts, outPath, opts);
    for (const i of inputs) r.sources[i.source]!.files.push(i.file);
    return r;
  } finally {
    for (const p of parts) await unlink(p.path).catch(() => undefined);
  }
}

/** One k-way merge of `inputs` (all open at once) into `outPath`; file outcomes go into each input's `file`. */
async function mergeRound(sources: MergeSource[], inputs: Input[], outPath: string, opts: MergeOptions): Promise<MergeResult> {
  const fileCount = inputs.length;
  // Bound memory with many files: a reader holds its current chunk and one read ahead, each up to
  // twice chunkBytes with the room kept for a record spanning two chunks: ~4 × chunkBytes per
  // file. So chunks share MERGE_READ_BUDGET / 4, between 4 KiB and 1 MiB each.
  const chunkBytes = opts.chunkBytes ?? Math.max(4 * 1024, Math.min(1024 * 1024, Math.floor(MERGE_READ_BUDGET / 4 / Math.max(1, fileCount))));
  // Packet slots per file's batch (~48 bytes each): no more than a chunk can hold (a record takes
  // at least 48 bytes), so slots cost at most a chunk's size again.
  const batchSlots = Math.max(64, Math.min(8192, Math.floor(chunkBytes / 48)));
  const result: MergeResult = { path: outPath, packets: 0, bytes: 0, interfaces: [], sources: sources.map((s) => ({ name: s.name, packets: 0, files: [] })) };
  // Min-heap of streams by (time, order): order keeps equal timestamps in input order.
  const heap = new BinaryHeap<Stream>(before);
  const streams: Stream[] = [];
  let order = 0;
  for (const input of inputs) {
    const src = sources[input.source]!;
    const direct = input.ifaceSource === undefined;
    const [offSec, offNsec] = split(direct ? (src.offsetNanos ?? 0n) : 0n);
    const [refSec, refNsec] = split(direct ? (src.refNanos ?? 0n) : 0n);
    const s: Stream = {
      reader: openCapture(input.path, { chunkBytes, reuseChunks: true }), // runs are copied out before advanceBatch
      source: input.source,
      file: input.file,
      batch: new RawBatch(batchSlots),
      idx: 0,
      offSec,
      offNsec,
      drift: direct ? (src.driftPpm ?? 0) * 1e-6 : 0,
      refSec,
      refNsec,
      sec: 0,
      nsec: 0,
      order: order++,
      ifaceSource: input.ifaceSource,
      lastLinktype: -1,
      lastInIface: -1,
      lastIface: 0,
      lastSource: input.source,
    };
    streams.push(s);
    if (await advanceBatch(s)) heap.push(s);
  }
  const perSource = new Float64Array(sources.length);

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
      s.reader.interfaces.forEach((i, id) => {
        const k = (s.ifaceSource?.[id] ?? s.source) * 65536 + i.linktype;
        snap.set(k, Math.max(snap.get(k) ?? 0, i.snaplen || 262144));
      });
    }
    for (const k of [...snap.keys()].sort((a, b) => a - b)) addInterface(Math.floor(k / 65536), k % 65536, snap.get(k)!);

    let firstSec = -1;
    let firstNsec = 0;
    let lastSec = 0;
    let lastNsec = 0;
    const t = { sec: 0, nsec: 0 };
    // A run: adjacent whole EPBs of one input copied with one memcpy, then patched (iface, time).
    const cap = 8192;
    const offs = new Int32Array(cap);
    const ifs = new Int32Array(cap);
    const his = new Float64Array(cap);
    const los = new Float64Array(cap);
    let runFrom = -1;
    let runEnd = -1;
    let runN = 0;
    const flushRun = (chunk: Buffer): boolean => {
      if (runN === 0) return false;
      const full = writer.appendEpbRun(chunk, runFrom, runEnd, offs, ifs, his, los, runN);
      runN = 0;
      runFrom = -1;
      return full;
    };
    while (heap.size > 0) {
      const s = heap.peek()!;
      const next = heap.runnerUp();
      const b = s.batch;
      const chunk = b.chunk;
      let i = s.idx;
      let written = 0;
      // Emit from this stream while it stays ahead of the runner-up: no heap work per packet.
      for (;;) {
        correct(s, i, t);
        if (next !== undefined && (t.sec > next.sec || (t.sec === next.sec && (t.nsec > next.nsec || (t.nsec === next.nsec && s.order > next.order))))) break;
        const lt = b.linktype[i]!;
        const inIface = b.iface[i]!;
        let iface = s.lastIface;
        if (lt !== s.lastLinktype || inIface !== s.lastInIface) {
          const si = s.ifaceSource?.[inIface] ?? s.source;
          iface = ifaceOf.get(si * 65536 + lt) ?? addInterface(si, lt, 262144);
          s.lastLinktype = lt;
          s.lastInIface = inIface;
          s.lastIface = iface;
          s.lastSource = si;
        }
        perSource[s.lastSource]!++;
        if (t.sec < 0) ((t.sec = 0), (t.nsec = 0));
        if (firstSec < 0) ((firstSec = t.sec), (firstNsec = t.nsec));
        lastSec = t.sec;
        lastNsec = t.nsec;
        const blen = b.blockLen[i]!;
        let full = false;
        if (blen > 0 && t.sec < 4294967296 && writer.acceptsRawEpb(iface)) {
          const bs = b.blockStart[i]!;
          if (runN > 0 && (bs !== runEnd || runN === cap || runEnd - runFrom >= 1 << 20)) full = flushRun(chunk);
          if (runN === 0) runFrom = runEnd = bs;
          nsToHiLo(t.sec, t.nsec);
          offs[runN] = bs - runFrom;
          ifs[runN] = iface;
          his[runN] = hl.hi;
          los[runN] = hl.lo;
          runN++;
          runEnd = bs + blen;
        } else {
          full = flushRun(chunk);
          const extra = b.extra?.get(i);
          full =
            (extra
              ? writer.writeEpb(iface, BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec), chunk.subarray(b.start[i]!, b.start[i]! + b.caplen[i]!), b.origlen[i]!, extra.comment, extra.flags)
              : writer.writeEpbRaw(iface, t.sec, t.nsec, chunk, b.start[i]!, b.caplen[i]!, b.origlen[i]!)) || full;
        }
        written++;
        i++;
        if (full) await writer.drain();
        if (i >= b.n) break;
      }
      // The batch's chunk may be replaced by the next read: copy the run out before moving on.
      if (flushRun(chunk)) await writer.drain();
      s.file.packets += written;
      result.packets += written;
      if (i < b.n) {
        s.idx = i;
        correct(s, i, s);
        heap.siftRoot(false);
      } else if (await advanceBatch(s)) heap.siftRoot(false);
      else heap.siftRoot(true);
    }
    if (firstSec >= 0) {
      result.firstNanos = BigInt(firstSec) * 1_000_000_000n + BigInt(firstNsec);
      result.lastNanos = BigInt(lastSec) * 1_000_000_000n + BigInt(lastNsec);
    }
  } finally {
    for (const s of streams) await s.reader.close();
    await writer.close();
  }
  result.bytes = writer.bytesWritten;
  result.sources.forEach((s, i) => (s.packets = perSource[i]!));
  return result;
}
