// The UDP syslog socket read in its own thread. The orchestrator's main thread does TLS, SSH and
// journal work; every moment it is busy a socket it owns is not read, and a burst waits in the
// kernel (or is dropped by it). This thread owns the socket, stamps each datagram's arrival, runs
// the prefilter (AlarmRouter.lane's literals) and posts only the candidates to the main thread,
// batched per event-loop turn in one transferred buffer. Lane capacity is enforced here: a frame
// counts as queued from its read until the main thread has processed it (inflight counters in
// shared memory), so a slow main thread makes this thread drop (counted), never queue without bound.
import dgram from "node:dgram";
import net from "node:net";
import { Worker } from "node:worker_threads";
import { prefilterLane, type Prefilter } from "./matchers.js";

export interface UdpReaderOptions {
  address: string;
  port: number;
  recvBufferSize: number;
  maxMessageBytes: number;
  prefilter: Prefilter;
  /** Lane capacities: priority, bulk. */
  capacity: [number, number];
  /** Bytes of bulk frames queued at most (frames are up to maxMessageBytes each). */
  bulkBytes: number;
  /** Bulk frames are posted to the main thread after at most this long, or this many at once. */
  bulkDelayMs: number;
  bulkBatch: number;
}

/** One candidate frame: lane 0 priority, 1 bulk; clocks as read in the reader thread. */
export type FrameSink = (frame: Buffer, address: string, port: number, lane: 0 | 1, monotonicMs: number, wallMs: number) => void;

/** Counters the reader thread keeps (shared memory, read without a round trip). */
export interface ReaderCounters {
  received: number;
  bytes: number;
  ignored: number;
  truncated: number;
  dropped: number;
  droppedPriority: number;
  peakQueued: number;
}

// Float64 slots of the counters, written by the reader thread only (it gets this table in workerData:
// its source cannot see this module's scope).
const SLOT = { received: 0, bytes: 1, ignored: 2, truncated: 3, dropped: 4, droppedPriority: 5, lastPriority: 6, peak: 7 } as const;
const SLOTS = 8;

type ToMain =
  | { t: "listening"; address: string; port: number; recvBufferSize: number }
  | { t: "bind-error"; message: string; code?: string }
  | { t: "error"; message: string }
  | { t: "frames"; buf: ArrayBuffer; meta: ArrayBuffer; addrs: string[] };

interface ReaderData {
  o: UdpReaderOptions;
  slot: typeof SLOT;
  counters: SharedArrayBuffer;
  inflight: SharedArrayBuffer;
}

/**
 * The reader thread's whole program. It runs from its source text (Function.prototype.toString,
 * `eval: true`), so it must not use anything from this module's scope: a Worker file next to this
 * one would not exist in the one-file executable, nor as .js when tests run the TypeScript.
 */
function readerMain(wt: typeof import("node:worker_threads"), dgramMod: typeof dgram, netMod: typeof net, laneOf: typeof prefilterLane): void {
  const port = wt.parentPort!;
  const { o, slot, counters, inflight } = wt.workerData as ReaderData;
  const c = new Float64Array(counters);
  // [0] [1]: frames queued per lane; [2]: bytes of queued bulk frames.
  const q = new Int32Array(inflight);
  const pLits = o.prefilter.priority.map((s) => Buffer.from(s, "utf8"));
  const bLits = o.prefilter.bulk.map((s) => Buffer.from(s, "utf8"));
  const unfiltered = o.prefilter.unfiltered;
  const max = o.maxMessageBytes;
  const cap = o.capacity;
  let frames: Buffer[] = [];
  let meta: number[] = [];
  let addrs: string[] = [];
  let bytes = 0;
  let flushing: NodeJS.Immediate | null = null;
  let later: NodeJS.Timeout | null = null;

  // A stop-alarm candidate is posted at the end of the turn that read it (the poll phase has read
  // what was ready: libuv takes up to 32 datagrams per wakeup). Bulk frames wait up to
  // o.bulkDelayMs or o.bulkBatch frames: each post wakes the main thread, and in a storm a post
  // per turn cost more CPU than the frames themselves.
  const flush = (): void => {
    if (flushing !== null) clearImmediate(flushing);
    if (later !== null) clearTimeout(later);
    flushing = null;
    later = null;
    const buf = Buffer.allocUnsafeSlow(bytes); // its own ArrayBuffer (not the pool's): transferable
    let off = 0;
    for (const f of frames) {
      buf.set(f, off);
      off += f.length;
    }
    const m = new Float64Array(meta);
    port.postMessage({ t: "frames", buf: buf.buffer, meta: m.buffer, addrs } satisfies ToMain, [buf.buffer, m.buffer]);
    frames = [];
    meta = [];
    addrs = [];
    bytes = 0;
  };

  const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    c[slot.received]!++;
    c[slot.bytes]! += msg.length;
    let frame = msg;
    if (frame.length > max) {
      frame = frame.subarray(0, max);
      c[slot.truncated]!++;
    }
    const lane = laneOf(frame, pLits, bLits, unfiltered);
    if (lane === -1) {
      c[slot.ignored]!++;
      return;
    }
    if (Atomics.load(q, lane) >= cap[lane]! || (lane === 1 && Atomics.load(q, 2) + frame.length > o.bulkBytes)) {
      c[slot.dropped]!++;
      if (lane === 0) c[slot.droppedPriority]!++;
      return;
    }
    // Stamped once the prefilter kept it (an ignored frame needs no clock): still this read's callback.
    const mono = Number(process.hrtime.bigint() / 1000n) / 1000;
    Atomics.add(q, lane, 1);
    if (lane === 1) Atomics.add(q, 2, frame.length);
    if (lane === 0) c[slot.lastPriority] = mono;
    const queued = Atomics.load(q, 0) + Atomics.load(q, 1);
    if (queued > c[slot.peak]!) c[slot.peak] = queued;
    frames.push(frame);
    meta.push(frame.length, lane, rinfo.port, mono, Date.now());
    addrs.push(rinfo.address);
    bytes += frame.length;
    if (flushing !== null) return;
    if (lane === 0) flushing = setImmediate(flush);
    else if (addrs.length >= o.bulkBatch) flush();
    else if (later === null) later = setTimeout(flush, o.bulkDelayMs);
  };

  const sock = dgramMod.createSocket({ type: netMod.isIPv6(o.address) ? "udp6" : "udp4", recvBufferSize: o.recvBufferSize });
  sock.once("error", (err: NodeJS.ErrnoException) => {
    port.postMessage({ t: "bind-error", message: err.message, ...(err.code ? { code: err.code } : {}) } satisfies ToMain);
    sock.close();
    port.close();
  });
  sock.bind({ address: o.address, port: o.port }, () => {
    sock.removeAllListeners("error");
    sock.on("error", (err) => port.postMessage({ t: "error", message: err.message } satisfies ToMain));
    sock.on("message", onMessage);
    const a = sock.address();
    port.postMessage({ t: "listening", address: a.address, port: a.port, recvBufferSize: sock.getRecvBufferSize() } satisfies ToMain);
  });
  port.on("message", (m: { t: string }) => {
    if (m.t !== "close") return;
    if (flushing !== null) clearImmediate(flushing);
    if (later !== null) clearTimeout(later);
    sock.close(() => port.close());
  });
}

// The prefilter is AlarmRouter.lane()'s own function (matchers.ts), passed in as source text.
const READER_SOURCE = `(${readerMain.toString()})(require("node:worker_threads"), require("node:dgram"), require("node:net"), ${prefilterLane.toString()});`;

export class UdpReader {
  /** Bound address and the receive buffer the kernel granted (Linux reports twice the effective value). */
  readonly address: string;
  readonly port: number;
  readonly recvBufferSize: number;
  private readonly counters: Float64Array;
  private readonly inflight: Int32Array;
  private closed = false;

  private constructor(
    private readonly worker: Worker,
    shared: { counters: SharedArrayBuffer; inflight: SharedArrayBuffer },
    bound: { address: string; port: number; recvBufferSize: number },
  ) {
    this.counters = new Float64Array(shared.counters);
    this.inflight = new Int32Array(shared.inflight);
    this.address = bound.address;
    this.port = bound.port;
    this.recvBufferSize = bound.recvBufferSize;
  }

  /**
   * Start the thread and bind. Rejects with an Error carrying the socket's message and code
   * (EADDRINUSE, EACCES, ...) when the bind fails. `onError`: socket errors after the bind, or the
   * thread failing.
   */
  static start(o: UdpReaderOptions, onFrame: FrameSink, onError: (message: string) => void): Promise<UdpReader> {
    const shared = { counters: new SharedArrayBuffer(SLOTS * 8), inflight: new SharedArrayBuffer(3 * 4) };
    const worker = new Worker(READER_SOURCE, { eval: true, workerData: { o, slot: SLOT, ...shared } satisfies ReaderData, stdout: false, stderr: false });
    return new Promise((resolve, reject) => {
      let reader: UdpReader | null = null;
      worker.on("message", (m: ToMain) => {
        if (m.t === "frames") {
          if (reader && !reader.closed) deliver(m, onFrame);
        } else if (m.t === "listening") {
          reader = new UdpReader(worker, shared, m);
          resolve(reader);
        } else if (m.t === "bind-error") {
          reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
        } else onError(m.message);
      });
      worker.on("error", (err) => {
        if (reader) onError(`syslog reader thread failed: ${err.message}`);
        else reject(err);
      });
      worker.on("exit", (code) => {
        if (!reader) reject(new Error(`syslog reader thread exited (${code}) before binding`));
        else if (!reader.closed) onError(`syslog reader thread exited (${code})`);
      });
    });
  }

  stats(): ReaderCounters {
    const c = this.counters;
    return {
      received: c[SLOT.received]!,
      bytes: c[SLOT.bytes]!,
      ignored: c[SLOT.ignored]!,
      truncated: c[SLOT.truncated]!,
      dropped: c[SLOT.dropped]!,
      droppedPriority: c[SLOT.droppedPriority]!,
      peakQueued: c[SLOT.peak]!,
    };
  }

  /** Frames read but not yet processed by the main thread, per lane (0 priority, 1 bulk). */
  queued(lane: 0 | 1): number {
    return Atomics.load(this.inflight, lane);
  }

  /** The main thread is done with one frame of `lane` and `bytes` (processed, or dropped there). */
  done(lane: 0 | 1, bytes: number): void {
    Atomics.sub(this.inflight, lane, 1);
    if (lane === 1) Atomics.sub(this.inflight, 2, bytes);
  }

  /** Monotonic ms (hrtime axis) of the last priority frame read; -Infinity before any. */
  lastPriorityAt(): number {
    return this.counters[SLOT.lastPriority] || -Infinity;
  }

  /** Close the socket and end the thread; frames still queued are returned as dropped, per lane. */
  async close(): Promise<[number, number]> {
    if (this.closed) return [0, 0];
    this.closed = true;
    const exited = new Promise<void>((resolve) => this.worker.once("exit", () => resolve()));
    this.worker.postMessage({ t: "close" });
    const timer = setTimeout(() => void this.worker.terminate(), 2000);
    await exited;
    clearTimeout(timer);
    const pending: [number, number] = [Atomics.exchange(this.inflight, 0, 0), Atomics.exchange(this.inflight, 1, 0)];
    Atomics.store(this.inflight, 2, 0);
    return pending;
  }
}

function deliver(m: { buf: ArrayBuffer; meta: ArrayBuffer; addrs: string[] }, onFrame: FrameSink): void {
  const meta = new Float64Array(m.meta);
  let off = 0;
  for (let i = 0, k = 0; i < m.addrs.length; i++, k += 5) {
    const len = meta[k]!;
    onFrame(Buffer.from(m.buf, off, len), m.addrs[i]!, meta[k + 2]!, meta[k + 1] as 0 | 1, meta[k + 3]!, meta[k + 4]!);
    off += len;
  }
}
