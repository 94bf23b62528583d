// Syslog listeners: UDP (RFC 5426, one message per datagram) and TCP (RFC 6587 octet counting or LF
// framing, detected per connection), feeding one bounded, two-lane queue into the AlarmRouter.
// A storm of unrelated messages costs a byte search each and never delays a stop alarm: frames that
// hold a built-in stop literal go to a priority lane that is drained first. The UDP socket is read
// in a thread of its own (udp-reader.ts: reads, arrival stamps, prefilter and lane bounds), so a
// burst is read as it arrives however busy this thread is; parsing and events stay on this thread.
// Not handled: TLS (RFC 5425).
import dgram from "node:dgram";
import { readFile } from "node:fs/promises";
import net from "node:net";
import { CapsyncError } from "@capsync/protocol";
import {
  AlarmRouter,
  type Lane,
  type Matcher,
  type Sender,
  type SyslogEvent,
  type ReceivedAt,
  compileMatchers,
  normalizeAddress,
} from "./matchers.js";
import { Ring } from "./ring.js";
import { SyslogStreamDecoder } from "./stream-decoder.js";
import { UdpReader } from "./udp-reader.js";

export { SyslogStreamDecoder, type Framing, type StreamResult } from "./stream-decoder.js";

const DEFAULT_SYSLOG_PORT = 20514;
/** RFC 5424 §6.1 asks receivers for >= 2048 octets; OVOC alarms are ~500. Longer frames are truncated. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024;
/** Requested SO_RCVBUF; Linux caps it at net.core.rmem_max (raise that for big storms) and reports double. */
const DEFAULT_RECV_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * Frame handling per event-loop turn: at least SLICE_MS, and for stop-alarm candidates as long as
 * the loop spent elsewhere since the last stretch (at most MAX_PRIORITY_SLICE_MS). Between
 * stretches the poll phase reads the socket (libuv: at most 32 datagrams per turn), so a thousand
 * alarms in 20 ms are read as they arrive — into the priority lane, not left in the kernel —
 * while alarms still get at least half of a loop busy with other I/O.
 */
const SLICE_MS = 0.5;
const MAX_PRIORITY_SLICE_MS = 20;
/** Default lane capacities: a burst of a thousand alarms fits the priority lane. */
const PRIORITY_CAPACITY = 2048;
const BULK_CAPACITY = 1024;
/**
 * With the reader thread the lanes, not the kernel's receive buffer, absorb the moments this thread
 * is busy or descheduled: the bulk lane holds up to this many frames and BULK_BYTES (the 8 MiB the
 * kernel would have held).
 */
const THREAD_BULK_CAPACITY = 16_384;
const BULK_BYTES = 8 * 1024 * 1024;
/** The reader thread posts bulk (log-only candidate) frames at most this late, or this many at once. */
const BULK_POST_DELAY_MS = 2;
const BULK_POST_BATCH = 256;

// ---------------------------------------------------------------------------------------------
// Bounded queue

interface Pending {
  frame: Uint8Array;
  from: Sender;
  // Clock readings at arrival; the ISO string is built only when the frame is processed (it is
  // the costly part and most queued frames never become events).
  monotonicMs: number;
  wallMs: number;
  /** Lane in the reader thread's inflight count (udp-reader.ts), -1 for frames taken on this thread. */
  readerLane: -1 | 0 | 1;
}

const monotonicNow = (): number => Number(process.hrtime.bigint() / 1000n) / 1000;

// ---------------------------------------------------------------------------------------------
// Listener

export interface UdpListenOptions {
  /** Default "0.0.0.0": the alarm comes from the management server, not from this host. */
  address?: string;
  /** Default 20514 (non-privileged); 0 picks a free port. */
  port?: number;
  recvBufferSize?: number;
  /**
   * Read the socket in a thread of its own (default true), so reads do not wait for this thread's
   * other work: the timestamps, prefilter and lane bounds happen there, parsing and events here.
   */
  readerThread?: boolean;
}
export interface TcpListenOptions {
  address?: string;
  port?: number;
  /** Connections beyond this are closed at once and counted (default 64). */
  maxConnections?: number;
  /** Close connections silent for this long (default 0: never; relays keep one connection open). */
  idleTimeoutMs?: number;
}

export interface SyslogListenerOptions {
  onEvent: (event: SyslogEvent) => void;
  /** Socket errors after listen() and exceptions thrown by onEvent. */
  onError?: (error: CapsyncError) => void;
  /** A prepared router, or the parts to build one (default matchers: connection-lost). */
  router?: AlarmRouter;
  matchers?: readonly Matcher[];
  devices?: Iterable<string>;
  maxEventsPerDevice?: number;
  /** UDP socket to bind (default { address: "0.0.0.0", port: 20514 }); false when datagrams come via handleDatagram(). */
  udp?: false | UdpListenOptions;
  /** TCP listener (default off; true = same address/port as UDP). */
  tcp?: boolean | TcpListenOptions;
  maxMessageBytes?: number;
  /** Queue capacities per lane (bulk: 16,384 frames and 8 MiB with the reader thread, else 1024) and bulk frames parsed per event-loop turn. */
  queue?: { priority?: number; bulk?: number; batch?: number };
}

export interface ListenerStats {
  /** Frames taken in: UDP datagrams, TCP frames and handleDatagram() calls. */
  received: number;
  bytes: number;
  /** Rejected by the prefilter without parsing. */
  ignored: number;
  /** Parsed and matched. received === ignored + dropped + processed + queued at every instant. */
  processed: number;
  /** Candidates lost because their lane was full (or pending at close). */
  dropped: number;
  droppedPriority: number;
  queued: number;
  peakQueued: number;
  truncated: number;
  stopEvents: number;
  logEvents: number;
  /** Candidates neither strict parser accepted (matched on raw text). */
  rawFrames: number;
  tcpAccepted: number;
  tcpOpen: number;
  tcpRejected: number;
  tcpFramingErrors: number;
  tcpOversize: number;
  /** SO_RCVBUF the kernel granted (Linux reports twice the effective value), null without a UDP socket. */
  recvBufferSize: number | null;
}

export interface ListeningAddresses {
  udp?: { address: string; port: number };
  tcp?: { address: string; port: number };
}

/** True when a datagram on a shared port is syslog ("<PRI>...") rather than an agent answer. */
export function looksLikeSyslog(buf: Uint8Array): boolean {
  return buf.length >= 3 && buf[0] === 0x3c && buf[1]! >= 0x30 && buf[1]! <= 0x39;
}

export class SyslogListener {
  readonly router: AlarmRouter;
  private readonly opts: SyslogListenerOptions;
  private readonly maxMessageBytes: number;
  private readonly batch: number;
  private readonly priority: Ring<Pending>;
  private readonly bulk: Ring<Pending>;
  private readonly s: ListenerStats = {
    received: 0,
    bytes: 0,
    ignored: 0,
    processed: 0,
    dropped: 0,
    droppedPriority: 0,
    queued: 0,
    peakQueued: 0,
    truncated: 0,
    stopEvents: 0,
    logEvents: 0,
    rawFrames: 0,
    tcpAccepted: 0,
    tcpOpen: 0,
    tcpRejected: 0,
    tcpFramingErrors: 0,
    tcpOversize: 0,
    recvBufferSize: null,
  };
  private udp: dgram.Socket | null = null;
  private reader: UdpReader | null = null;
  /** Frames from the reader thread now in this thread's lanes, per lane (the rest of its inflight counts are in transit). */
  private readonly readerInLanes: [number, number] = [0, 0];
  private tcp: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();
  private immediate: NodeJS.Immediate | null = null;
  /** Monotonic ms of the last frame that went to the priority lane. */
  private lastPriorityAt = -Infinity;
  /** When the last stretch of a drain ended with frames left (-1: the lanes were empty). */
  private lastDrainEnd = -1;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  private udpPort: number | null = null;

  constructor(opts: SyslogListenerOptions) {
    this.opts = opts;
    this.router =
      opts.router ??
      new AlarmRouter({
        matchers: opts.matchers ?? compileMatchers(),
        ...(opts.devices !== undefined ? { devices: opts.devices } : {}),
        ...(opts.maxEventsPerDevice !== undefined ? { maxEventsPerDevice: opts.maxEventsPerDevice } : {}),
      });
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.priority = new Ring(opts.queue?.priority ?? PRIORITY_CAPACITY);
    const readerThread = opts.udp !== false && opts.udp?.readerThread !== false;
    this.bulk = new Ring(opts.queue?.bulk ?? (readerThread ? THREAD_BULK_CAPACITY : BULK_CAPACITY));
    this.batch = opts.queue?.batch ?? 8;
  }

  /** Bind the configured sockets. Rejects with CapsyncError "syslog-listen" (EADDRINUSE, EACCES, ...). */
  async listen(): Promise<ListeningAddresses> {
    const out: ListeningAddresses = {};
    const udpOpts = this.opts.udp === false ? null : (this.opts.udp ?? {});
    if (udpOpts) {
      const address = udpOpts.address ?? "0.0.0.0";
      const port = udpOpts.port ?? DEFAULT_SYSLOG_PORT;
      const recvBufferSize = udpOpts.recvBufferSize ?? DEFAULT_RECV_BUFFER_BYTES;
      const bindError = (err: Error) => new CapsyncError("syslog-listen", `cannot bind UDP ${address}:${port}: ${err.message}`, { cause: err });
      if (udpOpts.readerThread !== false) {
        const o = { address, port, recvBufferSize, maxMessageBytes: this.maxMessageBytes, prefilter: this.router.prefilter(), capacity: [this.priority.capacity, this.bulk.capacity] as [number, number], bulkBytes: BULK_BYTES, bulkDelayMs: BULK_POST_DELAY_MS, bulkBatch: BULK_POST_BATCH };
        const onError = (message: string) => this.report(new CapsyncError("syslog-socket", `UDP syslog socket: ${message}`));
        this.reader = await UdpReader.start(o, this.fromReader, onError).catch((err: Error) => {
          throw bindError(err);
        });
        this.udpPort = this.reader.port;
        this.s.recvBufferSize = this.reader.recvBufferSize;
        out.udp = { address: this.reader.address, port: this.reader.port };
      } else {
        const sock = dgram.createSocket({ type: net.isIPv6(address) ? "udp6" : "udp4", recvBufferSize });
        await new Promise<void>((resolve, reject) => {
          sock.once("error", (err) => {
            sock.close();
            reject(bindError(err));
          });
          sock.bind({ address, port }, () => resolve());
        });
        sock.removeAllListeners("error");
        sock.on("error", (err) => this.report(new CapsyncError("syslog-socket", `UDP syslog socket: ${err.message}`, { cause: err })));
        sock.on("message", (msg, rinfo) => this.handleDatagram(msg, rinfo));
        this.udp = sock;
        const a = sock.address();
        this.udpPort = a.port;
        this.s.recvBufferSize = sock.getRecvBufferSize();
        out.udp = { address: a.address, port: a.port };
      }
    }
    const tcpOpts = this.opts.tcp === true ? {} : this.opts.tcp === false || this.opts.tcp === undefined ? null : this.opts.tcp;
    if (tcpOpts) {
      const address = tcpOpts.address ?? udpOpts?.address ?? "0.0.0.0";
      const port = tcpOpts.port ?? udpOpts?.port ?? DEFAULT_SYSLOG_PORT;
      const server = net.createServer((sock) => this.accept(sock, tcpOpts));
      await new Promise<void>((resolve, reject) => {
        server.once("error", (err) => reject(new CapsyncError("syslog-listen", `cannot listen TCP ${address}:${port}: ${err.message}`, { cause: err })));
        server.listen({ host: address, port, exclusive: true }, () => resolve());
      }).catch(async (err: unknown) => {
        await this.close();
        throw err;
      });
      server.removeAllListeners("error");
      server.on("error", (err) => this.report(new CapsyncError("syslog-socket", `TCP syslog server: ${err.message}`, { cause: err })));
      this.tcp = server;
      const a = server.address() as net.AddressInfo;
      out.tcp = { address: a.address, port: a.port };
    }
    return out;
  }

  /**
   * Take one datagram. The UDP socket calls this; so may another socket sharing the port (the
   * original received agent answers and alarms on one port): forward what looksLikeSyslog() accepts.
   */
  handleDatagram(buf: Uint8Array, rinfo: { address: string; port: number }): void {
    this.take(buf, rinfo.address, rinfo.port, "udp");
  }

  /** A snapshot of the counters. */
  stats(): ListenerStats {
    const out = { ...this.s, queued: this.queuedNow(), rawFrames: this.router.decodeStats.raw };
    if (this.reader) {
      const r = this.reader.stats();
      out.received += r.received;
      out.bytes += r.bytes;
      out.ignored += r.ignored;
      out.truncated += r.truncated;
      out.dropped += r.dropped;
      out.droppedPriority += r.droppedPriority;
      out.peakQueued = Math.max(out.peakQueued, r.peakQueued);
    }
    return out;
  }

  /** Frames in the lanes, and those the reader thread read that have not reached them yet. */
  private queuedNow(): number {
    const lanes = this.priority.length + this.bulk.length;
    return this.reader ? lanes - this.readerInLanes[0] - this.readerInLanes[1] + this.reader.queued(0) + this.reader.queued(1) : lanes;
  }

  /**
   * Datagrams the kernel dropped on our UDP port because the receive buffer was full (Linux
   * /proc/net/udp{,6} "drops"); null where unknown. Best effort: matched by local port.
   */
  async kernelDrops(): Promise<number | null> {
    if (this.udpPort === null) return null;
    const port = this.udpPort.toString(16).toUpperCase().padStart(4, "0");
    let total: number | null = null;
    for (const file of ["/proc/net/udp", "/proc/net/udp6"]) {
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch {
        continue;
      }
      for (const line of text.split("\n").slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length < 13 || !cols[1]!.endsWith(`:${port}`)) continue;
        total = (total ?? 0) + Number(cols[cols.length - 1]);
      }
    }
    return total;
  }

  /**
   * True while stop-alarm candidates wait in the priority lane or one arrived within `quietMs`:
   * work that may wait (what follows an alarm's STOP) should, so a burst is read and handled first.
   */
  alarmsPending(quietMs: number): boolean {
    if (this.priority.length > 0) return true;
    const last = this.reader ? Math.max(this.lastPriorityAt, this.reader.lastPriorityAt()) : this.lastPriorityAt;
    return (this.reader !== null && this.reader.queued(0) > 0) || monotonicNow() - last < quietMs;
  }

  /** Resolves once both lanes are empty (at once if they are). */
  whenIdle(): Promise<void> {
    if (this.queuedNow() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop listening; frames still queued are dropped (and counted). Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    // Frames from the reader thread are counted once, from its inflight counts (lanes and transit).
    const [readerPriority, readerBulk] = this.readerInLanes;
    const pendingPriority = this.priority.clear() - readerPriority;
    this.s.droppedPriority += pendingPriority;
    this.s.dropped += pendingPriority + this.bulk.clear() - readerBulk;
    this.readerInLanes[0] = this.readerInLanes[1] = 0;
    for (const w of this.idleWaiters.splice(0)) w();
    const tasks: Array<Promise<void>> = [];
    if (this.reader) {
      tasks.push(
        this.reader.close().then(([p, b]) => {
          this.s.droppedPriority += p;
          this.s.dropped += p + b;
        }),
      );
    }
    if (this.udp) {
      const u = this.udp;
      tasks.push(new Promise((resolve) => u.close(() => resolve())));
    }
    if (this.tcp) {
      const t = this.tcp;
      tasks.push(new Promise((resolve) => t.close(() => resolve())));
      for (const c of this.conns) c.destroy();
    }
    await Promise.all(tasks);
  }

  private accept(sock: net.Socket, opts: TcpListenOptions): void {
    if (this.closed || this.conns.size >= (opts.maxConnections ?? 64)) {
      this.s.tcpRejected++;
      sock.destroy();
      return;
    }
    this.s.tcpAccepted++;
    this.conns.add(sock);
    this.s.tcpOpen = this.conns.size;
    const address = sock.remoteAddress ?? "";
    const port = sock.remotePort ?? 0;
    const decoder = new SyslogStreamDecoder({
      maxFrameBytes: this.maxMessageBytes,
      onFrame: (frame) => this.take(frame, address, port, "tcp"),
    });
    let oversizeSeen = 0;
    const countOversize = () => {
      this.s.tcpOversize += decoder.oversize - oversizeSeen;
      oversizeSeen = decoder.oversize;
    };
    sock.on("data", (chunk: Buffer) => {
      const r = decoder.push(chunk);
      countOversize();
      if (!r.ok) {
        this.s.tcpFramingErrors++;
        this.report(new CapsyncError("syslog-framing", `TCP syslog from ${address}:${port}: ${r.message} at byte ${r.offset}; connection closed`));
        sock.destroy();
      }
    });
    sock.on("end", () => {
      decoder.end();
      sock.end();
    });
    sock.on("error", () => {
      // ECONNRESET and friends: the peer is gone, "close" follows; nothing to report per connection.
    });
    sock.on("close", () => {
      this.conns.delete(sock);
      this.s.tcpOpen = this.conns.size;
    });
    if (opts.idleTimeoutMs) sock.setTimeout(opts.idleTimeoutMs, () => sock.destroy());
  }

  /** A candidate the reader thread read, prefiltered and counted (received, lane bounds). */
  private readonly fromReader = (frame: Buffer, address: string, port: number, lane: 0 | 1, monotonicMs: number, wallMs: number): void => {
    if (this.closed) return;
    const item: Pending = { frame, from: { address: normalizeAddress(address), port, transport: "udp" }, monotonicMs, wallMs, readerLane: lane };
    // The reader bounds its inflight count by these capacities, so this push only fails when
    // frames of handleDatagram() or TCP share the lane.
    if (!(lane === 0 ? this.priority : this.bulk).push(item)) {
      this.reader!.done(lane, frame.length);
      this.s.dropped++;
      if (lane === 0) this.s.droppedPriority++;
      return;
    }
    this.readerInLanes[lane]++;
    if (this.immediate === null) this.immediate = setImmediate(this.drain);
  };

  private take(frame: Uint8Array, address: string, port: number, transport: "udp" | "tcp"): void {
    if (this.closed) return;
    const s = this.s;
    s.received++;
    s.bytes += frame.length;
    if (frame.length > this.maxMessageBytes) {
      // A copy: a queued view would keep the whole datagram (up to 64 KiB) alive.
      frame = Uint8Array.prototype.slice.call(frame, 0, this.maxMessageBytes);
      s.truncated++;
    }
    const lane: Lane = this.router.lane(frame);
    if (lane === "ignore") {
      s.ignored++;
      return;
    }
    const item: Pending = {
      frame,
      from: { address: normalizeAddress(address), port, transport },
      monotonicMs: monotonicNow(),
      wallMs: Date.now(),
      readerLane: -1,
    };
    const q = lane === "priority" ? this.priority : this.bulk;
    if (lane === "priority") this.lastPriorityAt = item.monotonicMs;
    if (!q.push(item)) {
      s.dropped++;
      if (lane === "priority") s.droppedPriority++;
      return;
    }
    const queued = this.priority.length + this.bulk.length;
    if (queued > s.peakQueued) s.peakQueued = queued;
    if (this.immediate === null) this.immediate = setImmediate(this.drain);
  }

  // Runs in the check phase, right after the poll phase has read what was ready (libuv reads at
  // most 32 datagrams per socket per turn). Priority frames first, then bulk ones (at most `batch`,
  // within SLICE_MS), so that under overload the socket keeps being read and the lanes overflow
  // here, counted, instead of the kernel dropping datagrams blindly (the alarm among them). When
  // the loop is otherwise idle, turns are quick and the slices add up.
  private readonly drain = (): void => {
    this.immediate = null;
    const start = performance.now();
    const away = this.lastDrainEnd < 0 ? 0 : start - this.lastDrainEnd;
    let deadline = start + Math.min(Math.max(SLICE_MS, away), MAX_PRIORITY_SLICE_MS);
    let spent = false;
    while (!spent) {
      const item = this.priority.shift();
      if (item === undefined) break;
      this.process(item);
      spent = performance.now() > deadline;
    }
    deadline = Math.min(deadline, start + SLICE_MS);
    spent ||= performance.now() > deadline;
    for (let n = 0; n < this.batch && !spent; n++) {
      const item = this.bulk.shift();
      if (item === undefined) break;
      this.process(item);
      spent = performance.now() > deadline;
    }
    if (this.closed) return;
    this.lastDrainEnd = this.priority.length + this.bulk.length > 0 ? performance.now() : -1;
    if (this.priority.length + this.bulk.length > 0) this.immediate = setImmediate(this.drain);
    else if (this.queuedNow() === 0) for (const w of this.idleWaiters.splice(0)) w();
  };

  private process(item: Pending): void {
    this.s.processed++;
    if (item.readerLane !== -1) {
      this.readerInLanes[item.readerLane]--;
      this.reader!.done(item.readerLane, item.frame.length);
    }
    let event: SyslogEvent | undefined;
    try {
      const receivedAt: ReceivedAt = { monotonicMs: item.monotonicMs, iso: new Date(item.wallMs).toISOString() };
      event = this.router.route(item.frame, item.from, receivedAt);
    } catch (err) {
      this.report(new CapsyncError("syslog-match", `matching a syslog frame failed: ${(err as Error).message}`, { cause: err }));
      return;
    }
    if (event === undefined) return;
    if (event.kind === "stop") this.s.stopEvents++;
    else this.s.logEvents++;
    try {
      this.opts.onEvent(event);
    } catch (err) {
      this.report(new CapsyncError("syslog-handler", `syslog event handler threw: ${(err as Error).message}`, { cause: err }));
    }
  }

  private report(err: CapsyncError): void {
    try {
      this.opts.onError?.(err);
    } catch {
      // An error reporter that throws must not take the listener down with it.
    }
  }
}
