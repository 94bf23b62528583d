// Syslog listeners: UDP (RFC 5426, one message per datagram) and TCP (RFC 6587 octet counting or LF
// framing, detected per connection), feeding one bounded, two-lane queue into the AlarmRouter.
// A storm of unrelated messages costs a byte search each and never delays a stop alarm: frames that
// hold a built-in stop literal go to a priority lane that is drained first. Not handled: TLS (RFC 5425).
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

const DEFAULT_SYSLOG_PORT = 20514;
/** RFC 5424 §6.1 asks receivers for >= 2048 octets; OVOC alarms are ~500. Longer frames are truncated. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024;
/** Requested SO_RCVBUF; Linux caps it at net.core.rmem_max (raise that for big storms) and reports double. */
const DEFAULT_RECV_BUFFER_BYTES = 8 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// RFC 6587 stream framing

export type Framing = "octet-counting" | "newline";
export type StreamResult = { ok: true } | { ok: false; code: "framing"; offset: number; message: string };

const MAX_LEN_DIGITS = 9;
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
 * Splits a TCP byte stream into syslog frames. Framing is decided by the connection's first
 * significant byte: a digit means octet counting (§3.4.1), anything else LF-terminated
 * non-transparent framing (§3.4.2, NUL accepted as trailer too). Frames longer than
 * `maxFrameBytes` are skipped whole and counted; a broken MSG-LEN is an error (no way to resync).
 */
export class SyslogStreamDecoder {
  framing: Framing | null = null;
  oversize = 0;
  private readonly max: number;
  private readonly onFrame: (frame: Buffer) => void;
  private parts: Buffer[] = [];
  private partsLen = 0;
  // octet counting: digits of MSG-LEN so far (-1: between frames), bytes still wanted, skipping?
  private lenDigits = -1;
  private len = 0;
  private want = 0;
  private skipping = false;
  private failed = false;
  private consumed = 0;

  constructor(opts: { maxFrameBytes: number; onFrame: (frame: Buffer) => void }) {
    this.max = opts.maxFrameBytes;
    this.onFrame = opts.onFrame;
  }

  push(chunk: Buffer): StreamResult {
    if (this.failed) return { ok: false, code: "framing", offset: this.consumed, message: "stream already failed" };
    const r = this.framing === "newline" ? this.pushNewline(chunk, 0) : this.pushOctets(chunk);
    if (r.ok) this.consumed += chunk.length;
    else this.failed = true;
    return r;
  }

  /** The peer closed: a last LF-framed message without its trailer still counts. */
  end(): void {
    if (this.framing === "newline" && !this.skipping && this.partsLen > 0) this.emit();
    this.parts = [];
    this.partsLen = 0;
  }

  private emit(): void {
    const frame = Buffer.concat(this.parts, this.partsLen); // always a copy: frames may outlive the chunk
    this.parts = [];
    this.partsLen = 0;
    if (frame.length > 0) this.onFrame(frame);
  }

  private pushNewline(chunk: Buffer, from: number): StreamResult {
    let i = from;
    while (i < chunk.length) {
      let j = i;
      while (j < chunk.length && chunk[j] !== 0x0a && chunk[j] !== 0) j++;
      const piece = chunk.subarray(i, j);
      if (!this.skipping) {
        if (this.partsLen + piece.length > this.max) {
          this.skipping = true;
          this.oversize++;
          this.parts = [];
          this.partsLen = 0;
        } else if (piece.length > 0) {
          this.parts.push(piece);
          this.partsLen += piece.length;
        }
      }
      if (j >= chunk.length) break;
      if (this.skipping) this.skipping = false;
      else this.emit();
      i = j + 1;
    }
    return { ok: true };
  }

  private pushOctets(chunk: Buffer): StreamResult {
    let i = 0;
    while (i < chunk.length) {
      if (this.want > 0) {
        const take = Math.min(this.want, chunk.length - i);
        if (!this.skipping) {
          this.parts.push(chunk.subarray(i, i + take));
          this.partsLen += take;
        }
        this.want -= take;
        i += take;
        if (this.want === 0) {
          if (this.skipping) this.skipping = false;
          else this.emit();
        }
        continue;
      }
      const c = chunk[i]!;
      if (this.lenDigits < 0) {
        // Between frames: tolerate stray LF/CR/NUL/SP some senders add after each frame.
        if (c === 0x0a || c === 0x0d || c === 0 || c === 0x20) {
          i++;
          continue;
        }
        if (this.framing === null) {
          if (c >= 0x31 && c <= 0x39) this.framing = "octet-counting";
          else {
            this.framing = "newline";
            return this.pushNewline(chunk, i);
          }
        }
        if (c < 0x31 || c > 0x39) return this.bad(i, "MSG-LEN must start with a digit 1-9");
        this.lenDigits = 1;
        this.len = c - 0x30;
        i++;
        continue;
      }
      if (c >= 0x30 && c <= 0x39) {
        if (++this.lenDigits > MAX_LEN_DIGITS) return this.bad(i, "MSG-LEN has too many digits");
        this.len = this.len * 10 + (c - 0x30);
        i++;
        continue;
      }
      if (c !== 0x20) return this.bad(i, "MSG-LEN must be followed by SP");
      i++;
      this.lenDigits = -1;
      this.want = this.len;
      if (this.len > this.max) {
        this.skipping = true;
        this.oversize++;
      }
    }
    return { ok: true };
  }

  private bad(i: number, message: string): StreamResult {
    return { ok: false, code: "framing", offset: this.consumed + i, message };
  }
}

// ---------------------------------------------------------------------------------------------
// Bounded queue

interface Pending {
  frame: Uint8Array;
  from: Sender;
  // Clock readings at arrival; the ISO string is built only when the frame is processed (it is
  // the costly part and most queued frames never become events).
  monotonicMs: number;
  wallMs: number;
}

// ---------------------------------------------------------------------------------------------
// Listener

export interface UdpListenOptions {
  /** Default "0.0.0.0": the alarm comes from the management server, not from this host. */
  address?: string;
  /** Default 20514 (non-privileged); 0 picks a free port. */
  port?: number;
  recvBufferSize?: number;
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
  /** Queue capacities per lane and bulk frames parsed per event-loop turn. */
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
  private tcp: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();
  private immediate: NodeJS.Immediate | null = null;
  /** performance.now() of the last frame that went to the priority lane. */
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
    this.bulk = new Ring(opts.queue?.bulk ?? BULK_CAPACITY);
    this.batch = opts.queue?.batch ?? 8;
  }

  /** Bind the configured sockets. Rejects with CapsyncError "syslog-listen" (EADDRINUSE, EACCES, ...). */
  async listen(): Promise<ListeningAddresses> {
    const out: ListeningAddresses = {};
    const udpOpts = this.opts.udp === false ? null : (this.opts.udp ?? {});
    if (udpOpts) {
      const address = udpOpts.address ?? "0.0.0.0";
      const port = udpOpts.port ?? DEFAULT_SYSLOG_PORT;
      const sock = dgram.createSocket({
        type: net.isIPv6(address) ? "udp6" : "udp4",
        recvBufferSize: udpOpts.recvBufferSize ?? DEFAULT_RECV_BUFFER_BYTES,
      });
      await new Promise<void>((resolve, reject) => {
        sock.once("error", (err) => {
          sock.close();
          reject(new CapsyncError("syslog-listen", `cannot bind UDP ${address}:${port}: ${err.message}`, { cause: err }));
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
    return { ...this.s, queued: this.priority.length + this.bulk.length, rawFrames: this.router.decodeStats.raw };
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
    return this.priority.length > 0 || performance.now() - this.lastPriorityAt < quietMs;
  }

  /** Resolves once both lanes are empty (at once if they are). */
  whenIdle(): Promise<void> {
    if (this.priority.length + this.bulk.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop listening; frames still queued are dropped (and counted). Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    const pendingPriority = this.priority.clear();
    this.s.droppedPriority += pendingPriority;
    this.s.dropped += pendingPriority + this.bulk.clear();
    for (const w of this.idleWaiters.splice(0)) w();
    const tasks: Array<Promise<void>> = [];
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
      monotonicMs: Number(process.hrtime.bigint() / 1000n) / 1000,
      wallMs: Date.now(),
    };
    const q = lane === "priority" ? this.priority : this.bulk;
    if (lane === "priority") this.lastPriorityAt = performance.now();
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
    else for (const w of this.idleWaiters.splice(0)) w();
  };

  private process(item: Pending): void {
    this.s.processed++;
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
