// Orchestrator side of the server-capture agent protocol: shared/PROTOCOL.md "Rules at the
// orchestrator" (v1) and DESIGN.md "Wire protocol" (legacy text mode of trafficCapture v1.0.6).
// Not handled here: which agents capture which device, fetching the agents' files, parsing syslog
// (non-protocol datagrams are only handed to onForeignDatagram).
import dgram from "node:dgram";
import { type AddressInfo, SocketAddress, isIP } from "node:net";
import { performance } from "node:perf_hooks";
import {
  AgentError,
  type Code,
  ConfigError,
  type Verb,
  V1_TAG,
  filenameProblem,
  formatEndpoint,
  formatLegacyRequest,
  formatRequest,
  isDeviceAddress,
  isLegacyVerb,
  isVerb,
  newRequestId,
  parseAnswer,
  parseLegacyAnswer,
} from "@capsync/protocol";
import { MinHeap } from "./heap.js";

export type AgentMode = "v1" | "legacy";

export interface AgentEndpoint {
  /** IPv4 or IPv6 literal (no hostnames: the agent answers to an address, and we match on it). */
  host: string;
  port: number;
}

export interface AgentRequest {
  verb: Verb;
  /** REGISTER/CAPTURE/VERIFY/STOP. */
  device?: string;
  /** STOP only: the device capture's file name the agent's files are renamed to match. */
  filename?: string;
  /** CAPTURE only, v1 only: base64url of the JSON capture spec. */
  spec?: string;
}

export interface VerbTiming {
  /** Give up this long after request() was called unless a 100 Trying arrived. */
  deadlineMs: number;
  /** Once a 100 Trying arrived, give up this long after request() was called (hard bound). */
  tryingDeadlineMs: number;
}

export interface BackoffOptions {
  /** First resend this long after the first send; each later gap doubles... */
  initialMs: number;
  /** ...up to this cap. */
  maxMs: number;
  /** v1 after a 100 Trying: resend at most this often (the agent re-sends its last answer, so a lost final answer is recovered). */
  tryingResendMs: number;
  /** v1: never resend a datagram older than this (the agent answers 400 stale outside its 30 s window); just wait. */
  resendWindowMs: number;
}

/** winston's Logger satisfies this. */
export interface AgentLogger {
  debug(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

export interface SendInfo {
  /** v1: the wire request id; legacy: a local id (the legacy wire has none). */
  id: string;
  agent: string;
  verb: Verb;
  device: string | null;
  /** 1 for the first datagram, 2.. for resends (byte-identical in v1 and legacy). */
  attempt: number;
  /** performance.now() just before the datagram was handed to the socket. */
  at: number;
  bytes: number;
}

export interface AgentClientOptions {
  mode: AgentMode;
  /** v1 pre-shared key (loadKeyFile). Never logged. */
  key?: Uint8Array;
  /**
   * Local address/port. When given, the socket of that address's family (IPv4 when no address)
   * is bound at open() so it can also receive forwarded syslog (legacy setups used one port for
   * both); the other family's socket binds its wildcard address on the same port when first needed.
   */
  bind?: { address?: string; port?: number };
  /** Requests not yet acknowledged (no 100 Trying or final answer) per agent; more wait in a FIFO queue (their deadline still runs). Default 64. */
  maxInFlightPerAgent?: number;
  /** Per-verb deadlines; see DEFAULT_TIMING. */
  timing?: Partial<Record<Verb, Partial<VerbTiming>>>;
  backoff?: Partial<BackoffOptions>;
  /** Datagrams that are not protocol answers (e.g. syslog on a shared port). */
  onForeignDatagram?: (buf: Buffer, rinfo: dgram.RemoteInfo) => void;
  /** Every datagram sent (first and resends), for latency measurements. */
  onSend?: (info: SendInfo) => void;
  log?: AgentLogger;
}

export interface RequestOptions {
  deadlineMs?: number;
  tryingDeadlineMs?: number;
  signal?: AbortSignal;
  /** Called once, on the first 100 Trying. */
  onTrying?: () => void;
  onSend?: (info: SendInfo) => void;
}

export interface AgentAnswer {
  agent: string;
  /** v1: the wire request id; legacy: a local id for logs. */
  id: string;
  code: Code;
  verb: Verb;
  device: string | null;
  /** v1 key=value details (decoded); always {} in legacy mode. */
  details: Record<string, string>;
  tries: number;
  /** A 100 Trying was seen before the final answer. */
  trying: boolean;
  /** performance.now() just before the first datagram was sent. */
  sentAt: number;
  /** performance.now() when the final answer was received. */
  answeredAt: number;
  /** answeredAt - sentAt. */
  elapsedMs: number;
  /** Time spent waiting for a per-agent slot (and a socket) before the first send. */
  queuedMs: number;
}

export interface AgentClientStats {
  requests: number;
  datagramsSent: number;
  resends: number;
  sendErrors: number;
  trying: number;
  answers: number;
  timeouts: number;
  aborts: number;
  /** Authentic answers for requests that already finished (duplicates caused by resends). */
  late: number;
  /** Datagrams that are not protocol answers (passed to onForeignDatagram when set). */
  foreign: number;
  dropped: {
    /** v1 answer whose MAC does not match the key. */
    badMac: number;
    /** Looks like our protocol but does not parse (or is the other mode's protocol). */
    malformed: number;
    /** Parses (and authenticates) but matches no pending request: unknown id (v1), unknown device+verb or agent (legacy). */
    unmatched: number;
    /** v1: the id matches but the verb or device does not. */
    mismatch: number;
  };
}

// STOP and VERIFY get longer after a 100: tcpdump finalises its files / test traffic runs; REGISTER
// calls the management server's REST API. Without a 100 every verb gets the same 8 s.
export const DEFAULT_TIMING: Readonly<Record<Verb, VerbTiming>> = {
  REGISTER: { deadlineMs: 8_000, tryingDeadlineMs: 30_000 },
  CAPTURE: { deadlineMs: 8_000, tryingDeadlineMs: 30_000 },
  VERIFY: { deadlineMs: 8_000, tryingDeadlineMs: 60_000 },
  STOP: { deadlineMs: 8_000, tryingDeadlineMs: 60_000 },
  STATUS: { deadlineMs: 8_000, tryingDeadlineMs: 8_000 },
  PING: { deadlineMs: 8_000, tryingDeadlineMs: 8_000 },
};

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = {
  initialMs: 250,
  maxMs: 2_000,
  tryingResendMs: 2_000,
  resendWindowMs: 25_000,
};

// Well under the agent's intake queue (1024 datagrams); 16 held a fleet's 1000 STOPs to one agent
// back behind the agent's round trips.
export const DEFAULT_MAX_IN_FLIGHT_PER_AGENT = 64;

// Timer firings are batched: anything due within this many ms of a firing is handled in it
// (also absorbs timers that fire a fraction of a millisecond early).
const COALESCE_MS = 2;
const RECENT_KEEP_MS = 60_000;
const RECV_BUFFER = 1 << 20;

type Family = 4 | 6;

interface Pending {
  readonly id: string;
  readonly agent: string;
  readonly host: string;
  readonly port: number;
  readonly socket: dgram.Socket;
  readonly verb: Verb;
  readonly device: string | null;
  readonly req: AgentRequest;
  /** Legacy correlation key `<VERB> <device>` (canonical address). */
  readonly legacyKey: string;
  readonly t0: number;
  readonly deadlineMs: number;
  readonly tryingDeadlineMs: number;
  datagram: Buffer;
  /** performance.now() when the datagram's ts was taken (v1 resend window). */
  stampedAt: number;
  budgetMs: number;
  state: "queued" | "active" | "done";
  tries: number;
  sentAt: number;
  lastSentAt: number;
  interval: number;
  nextSendAt: number;
  trying: boolean;
  /** The agent acknowledged (100 Trying): the request no longer counts against maxInFlightPerAgent. */
  slotFreed?: boolean;
  /** Bumped on every (re)schedule: heap entries carrying an older generation are stale. */
  gen: number;
  lastSendError: string | undefined;
  opts: RequestOptions;
  resolve(a: AgentAnswer): void;
  reject(e: AgentError): void;
  detach: (() => void) | undefined;
}

interface Slot {
  active: number;
  queue: Pending[];
}

export class AgentClient {
  private readonly mode: AgentMode;
  private readonly keys: readonly Uint8Array[];
  private readonly maxInFlight: number;
  private readonly timing: Record<Verb, VerbTiming>;
  private readonly backoff: BackoffOptions;
  private readonly opts: AgentClientOptions;
  private readonly log: AgentLogger | undefined;

  private readonly sockets: Partial<Record<Family, Promise<dgram.Socket>>> = {};
  private readonly bound: Partial<Record<Family, dgram.Socket>> = {};
  private readonly live = new Set<Pending>();
  private readonly byId = new Map<string, Pending>();
  private readonly byLegacyKey = new Map<string, Pending[]>();
  private readonly slots = new Map<string, Slot>();
  /** Finished requests (v1 id, or `<agent> <legacy key>`) → finish time, to tell late duplicates from strays. */
  private readonly recent = new Map<string, number>();
  private readonly heap = new MinHeap<{ p: Pending; gen: number }>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private tickQueued: NodeJS.Immediate | undefined;
  private ticking = false;
  private closed = false;
  private readonly warned = new Set<string>();
  private readonly counters: AgentClientStats = {
    requests: 0,
    datagramsSent: 0,
    resends: 0,
    sendErrors: 0,
    trying: 0,
    answers: 0,
    timeouts: 0,
    aborts: 0,
    late: 0,
    foreign: 0,
    dropped: { badMac: 0, malformed: 0, unmatched: 0, mismatch: 0 },
  };

  private constructor(opts: AgentClientOptions) {
    this.opts = opts;
    this.mode = opts.mode;
    this.log = opts.log;
    this.keys = opts.key ? [opts.key] : [];
    this.maxInFlight = opts.maxInFlightPerAgent ?? DEFAULT_MAX_IN_FLIGHT_PER_AGENT;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    const timing = {} as Record<Verb, VerbTiming>;
    for (const verb of Object.keys(DEFAULT_TIMING) as Verb[]) {
      timing[verb] = { ...DEFAULT_TIMING[verb], ...opts.timing?.[verb] };
    }
    this.timing = timing;
  }

  static async open(opts: AgentClientOptions): Promise<AgentClient> {
    if (opts.mode !== "v1" && opts.mode !== "legacy") throw new ConfigError(`agent mode must be 'v1' or 'legacy'`);
    if (opts.mode === "v1" && (!opts.key || opts.key.length === 0)) throw new ConfigError("agent mode v1 needs a key (agents.keyFile)");
    const max = opts.maxInFlightPerAgent;
    if (max !== undefined && !(Number.isInteger(max) && max >= 1)) throw new ConfigError(`maxInFlightPerAgent must be an integer >= 1, got ${max}`);
    for (const [name, v] of Object.entries(opts.backoff ?? {})) checkMs(`backoff.${name}`, v);
    for (const [verb, t] of Object.entries(opts.timing ?? {})) {
      if (!isVerb(verb)) throw new ConfigError(`timing: unknown verb '${verb}'`);
      for (const [name, v] of Object.entries(t ?? {})) checkMs(`timing.${verb}.${name}`, v);
    }
    const b = opts.bind;
    if (b?.address !== undefined && isIP(b.address) === 0) throw new ConfigError(`bind address '${b.address}' is not an IP literal`);
    if (b?.port !== undefined && !(Number.isInteger(b.port) && b.port >= 0 && b.port <= 65535)) throw new ConfigError(`bind port ${b.port} is out of range`);

    const client = new AgentClient(opts);
    if (opts.mode === "legacy") {
      opts.log?.warn("agent protocol: legacy mode - no authentication, anyone on the path can forge or replay requests and answers");
    }
    // A shared (syslog) port must listen before the first request, so bind it now.
    if (b !== undefined || opts.onForeignDatagram !== undefined) {
      await client.socketFor(b?.address !== undefined && isIP(b.address) === 6 ? 6 : 4);
    }
    return client;
  }

  /** The local address of the family's socket, once it exists. */
  localAddress(family: Family = 4): AddressInfo | undefined {
    return this.bound[family]?.address();
  }

  stats(): AgentClientStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  /**
   * Send one request and resolve with its final answer (any code but 100: a 503 or 430 is an
   * answer, not an exception). Rejects with AgentError 'agent-timeout', 'agent-aborted' (signal
   * or close()), 'agent-bad-request' or 'agent-socket'.
   */
  async request(to: AgentEndpoint, req: AgentRequest, opts: RequestOptions = {}): Promise<AgentAnswer> {
    const t0 = performance.now();
    if (this.closed) throw new AgentError("agent-aborted", "agent client is closed");
    const family = isIP(to.host);
    if (family === 0 || to.host.includes("%")) throw new AgentError("agent-bad-request", `agent address '${to.host}' is not an IP literal`);
    if (!(Number.isInteger(to.port) && to.port >= 1 && to.port <= 65535)) throw new AgentError("agent-bad-request", `agent port ${to.port} is out of range`);
    const host = canonicalAddress(to.host);
    const agent = formatEndpoint(host, to.port);
    this.checkRequest(agent, req);
    const timing = this.timing[req.verb];
    const deadlineMs = opts.deadlineMs ?? timing.deadlineMs;
    const tryingDeadlineMs = opts.tryingDeadlineMs ?? timing.tryingDeadlineMs;
    checkMs("deadlineMs", deadlineMs, AgentError);
    checkMs("tryingDeadlineMs", tryingDeadlineMs, AgentError);
    const id = newRequestId();
    const stamped = this.stamp(id, req);
    if (opts.signal?.aborted) throw this.abortError(agent, req, 0, opts.signal.reason);

    // Synchronously when the socket is open: a STOP then leaves within the caller's own turn, before
    // whatever it starts next (the device's stop request: measured ~6 ms of axios and TLS set-up
    // that the STOP datagram used to wait behind, a whole burst's worth with many alarms at once).
    const socket = this.bound[family as Family] ?? (await this.socketFor(family as Family));
    if (this.closed) throw new AgentError("agent-aborted", "agent client is closed");
    if (opts.signal?.aborted) throw this.abortError(agent, req, 0, opts.signal.reason);

    return new Promise<AgentAnswer>((resolve, reject) => {
      const device = req.device === undefined ? null : canonicalAddress(req.device);
      const p: Pending = {
        id,
        agent,
        host,
        port: to.port,
        socket,
        verb: req.verb,
        device,
        req,
        legacyKey: `${req.verb} ${device ?? "-"}`,
        t0,
        deadlineMs,
        tryingDeadlineMs,
        datagram: stamped.datagram,
        stampedAt: stamped.at,
        budgetMs: deadlineMs,
        state: "queued",
        tries: 0,
        sentAt: NaN,
        lastSentAt: NaN,
        interval: this.backoff.initialMs,
        nextSendAt: Infinity,
        trying: false,
        gen: 0,
        lastSendError: undefined,
        opts,
        resolve,
        reject,
        detach: undefined,
      };
      const signal = opts.signal;
      if (signal) {
        const onAbort = () => this.finishError(p, this.abortError(agent, req, p.tries, signal.reason), "aborts");
        signal.addEventListener("abort", onAbort, { once: true });
        p.detach = () => signal.removeEventListener("abort", onAbort);
      }
      this.counters.requests++;
      this.live.add(p);
      let slot = this.slots.get(agent);
      if (!slot) this.slots.set(agent, (slot = { active: 0, queue: [] }));
      // A STOP never waits for a slot (it is what an alarm waits for: measured, 200 alarms at once
      // queued the later STOPs ~100 ms behind the agent's acknowledgements); it still takes one.
      if (slot.active < this.maxInFlight || req.verb === "STOP") {
        slot.active++;
        this.activate(p);
      } else {
        slot.queue.push(p);
        this.schedule(p);
      }
    });
  }

  /** Reject every pending request ('agent-aborted') and close the sockets. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of [...this.live]) {
      this.finishError(p, new AgentError("agent-aborted", `${describe(p.verb, p.device)} to agent ${p.agent} aborted: agent client closed`), "aborts");
    }
    if (this.timer) clearTimeout(this.timer);
    if (this.tickQueued) clearImmediate(this.tickQueued);
    this.timer = undefined;
    this.tickQueued = undefined;
    this.heap.clear();
    for (const s of Object.values(this.sockets)) {
      s.then((sock) => sock.close()).catch(() => {});
    }
  }

  // --- requests -----------------------------------------------------------------------------

  private checkRequest(agent: string, req: AgentRequest): void {
    const bad = (why: string) => new AgentError("agent-bad-request", `${req.verb ?? "request"} to agent ${agent}: ${why}`);
    if (!isVerb(req.verb)) throw bad(`unknown verb '${String(req.verb).slice(0, 20)}'`);
    const needsDevice = req.verb !== "STATUS" && req.verb !== "PING";
    if (this.mode === "legacy" && !isLegacyVerb(req.verb)) throw bad(`${req.verb} is not part of the legacy protocol`);
    if (needsDevice) {
      if (req.device === undefined) throw bad("needs a device address");
      if (!isDeviceAddress(req.device)) throw bad(`device '${req.device.slice(0, 60)}' is not an IPv4/IPv6 literal`);
    } else if (req.device !== undefined) throw bad("takes no device");
    if (req.verb === "STOP") {
      const problem = req.filename === undefined ? "is missing" : filenameProblem(req.filename);
      if (problem) throw bad(`file name ${problem}`);
    } else if (req.filename !== undefined) throw bad("only STOP takes a file name");
    if (req.spec !== undefined) {
      if (req.verb !== "CAPTURE") throw bad("only CAPTURE takes a spec");
      if (this.mode === "legacy") throw bad("a capture spec cannot be expressed in the legacy protocol (it always captures 'host <device>')");
      if (!/^[A-Za-z0-9_-]{1,1000}$/.test(req.spec)) throw bad("spec must be 1..1000 base64url characters");
    }
  }

  /** The datagram, with its v1 timestamp taken now. */
  private stamp(id: string, req: AgentRequest): { datagram: Buffer; at: number } {
    const at = performance.now();
    try {
      if (this.mode === "legacy") {
        return { datagram: formatLegacyRequest({ verb: req.verb as "CAPTURE", device: req.device!, filename: req.filename }), at };
      }
      const datagram = formatRequest(
        { id, ts: Date.now(), verb: req.verb, device: req.device, filename: req.filename, spec: req.spec },
        this.keys[0]!,
      );
      return { datagram, at };
    } catch (e) {
      throw new AgentError("agent-bad-request", `${describe(req.verb, req.device ?? null)}: ${(e as Error).message}`, { cause: e });
    }
  }

  private activate(p: Pending): void {
    p.state = "active";
    // A request that queued for a while gets a fresh ts, so the agent's 30 s window starts at the first send.
    if (this.mode === "v1" && performance.now() - p.stampedAt > 1_000) {
      const s = this.stamp(p.id, p.req);
      p.datagram = s.datagram;
      p.stampedAt = s.at;
    }
    if (this.mode === "v1") this.byId.set(p.id, p);
    else {
      const list = this.byLegacyKey.get(p.legacyKey);
      if (list) list.push(p);
      else this.byLegacyKey.set(p.legacyKey, [p]);
    }
    this.transmit(p, performance.now());
    this.schedule(p);
  }

  private transmit(p: Pending, now: number): void {
    p.tries++;
    if (p.tries > 1) this.counters.resends++;
    this.counters.datagramsSent++;
    const at = performance.now();
    if (p.tries === 1) p.sentAt = at;
    p.lastSentAt = now;
    const info: SendInfo = { id: p.id, agent: p.agent, verb: p.verb, device: p.device, attempt: p.tries, at, bytes: p.datagram.length };
    p.socket.send(p.datagram, p.port, p.host, (err) => {
      if (!err) return;
      this.counters.sendErrors++;
      p.lastSendError = (err as NodeJS.ErrnoException).code ?? err.message;
      this.log?.debug("agent datagram not sent", { agent: p.agent, id: p.id, verb: p.verb, error: p.lastSendError });
    });
    this.callHook("onSend", () => this.opts.onSend?.(info));
    this.callHook("onSend", () => p.opts.onSend?.(info));
    this.planNext(p);
  }

  private planNext(p: Pending): void {
    if (p.state !== "active" || p.tries === 0) return;
    if (!p.trying) {
      p.nextSendAt = p.lastSentAt + p.interval;
      p.interval = Math.min(p.interval * 2, this.backoff.maxMs);
    } else if (this.mode === "legacy") {
      // A legacy agent has no request ids: a resend after its 100 could start the work twice.
      p.nextSendAt = Infinity;
    } else {
      p.nextSendAt = p.lastSentAt + Math.max(p.interval, this.backoff.tryingResendMs);
    }
    if (this.mode === "v1" && p.nextSendAt > p.stampedAt + this.backoff.resendWindowMs) p.nextSendAt = Infinity;
  }

  // --- one timer for every pending request ---------------------------------------------------
  // Each request's next event (resend or deadline) sits in a min-heap; one setTimeout is armed
  // for the earliest. Unlike a fixed 50 ms scan this keeps the backoff steps exact and costs
  // nothing when idle; 1000 pending requests are 1000 heap entries, not 1000 timers.

  private schedule(p: Pending): void {
    p.gen++;
    this.heap.push(Math.min(p.nextSendAt, p.t0 + p.budgetMs), { p, gen: p.gen });
    // Cancelled entries stay in the heap until due; shed them when they dominate.
    if (this.heap.size > 64 && this.heap.size > 4 * this.live.size) {
      this.heap.retain((e) => e.gen === e.p.gen && e.p.state !== "done");
    }
    this.arm();
  }

  private arm(): void {
    // A queued tick re-arms when it is done.
    if (this.ticking || this.closed || this.tickQueued) return;
    const at = this.heap.peekAt();
    if (at === undefined) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Infinity;
      return;
    }
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      // Work in the check phase, after the poll phase has read answers already queued on the
      // socket: under load this avoids resending requests whose answers are waiting to be read.
      this.tickQueued = setImmediate(() => {
        this.tickQueued = undefined;
        this.tick();
      });
    }, Math.max(0, Math.ceil(at - performance.now())));
  }

  private tick(): void {
    this.ticking = true;
    try {
      const now = performance.now();
      for (;;) {
        const at = this.heap.peekAt();
        if (at === undefined || at > now + COALESCE_MS) break;
        const { p, gen } = this.heap.pop()!.value;
        if (gen !== p.gen || p.state === "done") continue;
        if (now + COALESCE_MS >= p.t0 + p.budgetMs) {
          this.expire(p);
          continue;
        }
        if (p.state === "active" && now + COALESCE_MS >= p.nextSendAt) this.transmit(p, now);
        this.schedule(p);
      }
    } finally {
      this.ticking = false;
    }
    this.arm();
  }

  private expire(p: Pending): void {
    const what = describe(p.verb, p.device);
    const tries = `${p.tries} ${p.tries === 1 ? "try" : "tries"}`;
    const within = `${seconds(p.budgetMs)} s`;
    let message = p.trying
      ? `agent ${p.agent} answered 100 Trying to ${what} but sent no final answer after ${tries} in ${within}`
      : `agent ${p.agent} did not answer ${what} after ${tries} in ${within}`;
    if (p.state === "queued") {
      message += `: it waited behind ${this.slots.get(p.agent)?.active ?? 0} requests in flight to this agent (maxInFlightPerAgent ${this.maxInFlight})`;
    }
    if (p.lastSendError !== undefined) message += ` (last send error: ${p.lastSendError})`;
    this.finishError(p, new AgentError("agent-timeout", message), "timeouts");
  }

  // --- answers ------------------------------------------------------------------------------

  private onMessage(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return;
    const isV1 = buf.length >= V1_TAG.length + 1 && buf.toString("latin1", 0, V1_TAG.length + 1) === `${V1_TAG} `;
    if (this.mode === "v1") {
      if (!isV1) {
        if (parseLegacyAnswer(buf).ok) return this.drop("malformed", rinfo, "a legacy-mode answer arrived but this client speaks v1: is the agent in legacy mode?");
        return this.foreign(buf, rinfo);
      }
      return this.onV1Answer(buf, rinfo);
    }
    if (isV1) return this.drop("malformed", rinfo, "a v1 answer arrived but this client speaks legacy mode: is the agent in v1 mode?");
    return this.onLegacyAnswer(buf, rinfo);
  }

  private onV1Answer(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    const r = parseAnswer(buf, this.keys);
    if (!r.ok) return this.drop(r.code === "bad-mac" ? "badMac" : "malformed", rinfo, r.message);
    const a = r.value;
    const p = this.byId.get(a.id);
    if (!p) {
      if (this.recent.has(a.id)) this.counters.late++;
      else this.drop("unmatched", rinfo, `answer for unknown request id ${a.id}`);
      return;
    }
    // The source address is not checked: MAC and id authenticate the answer, and an agent bound to
    // a wildcard address on a multi-homed host may answer from another address than we sent to.
    const device = a.device === null ? null : canonicalAddress(a.device);
    if (a.verb !== p.verb || device !== p.device) {
      return this.drop("mismatch", rinfo, `answer ${a.id} is for ${describe(a.verb, device)}, the request was ${describe(p.verb, p.device)}`);
    }
    this.onAnswer(p, a.code, a.details, rinfo);
  }

  private onLegacyAnswer(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    const r = parseLegacyAnswer(buf);
    // Syslog lines and anything else never parse as `<code> <reason> <device> <VERB>`.
    if (!r.ok) return this.foreign(buf, rinfo);
    const a = r.value;
    const key = `${a.verb} ${canonicalAddress(a.device)}`;
    const from = formatEndpoint(canonicalAddress(rinfo.address), rinfo.port);
    const list = this.byLegacyKey.get(key) ?? [];
    // Prefer the request sent to the answering address; a multi-homed agent bound to a wildcard
    // may answer from another address, which is fine when only one request can be meant.
    let p = list.find((q) => q.agent === from);
    if (!p && list.length === 1) {
      p = list[0];
      this.log?.debug("legacy answer from another address than the request went to", { agent: p!.agent, from });
    }
    if (!p) {
      if (this.recent.has(`${from} ${key}`)) this.counters.late++;
      else this.drop("unmatched", rinfo, `answer '${a.code} ${key}' matches no pending request`);
      return;
    }
    this.onAnswer(p, a.code, {}, rinfo);
  }

  private onAnswer(p: Pending, code: Code, details: Record<string, string>, rinfo: dgram.RemoteInfo): void {
    if (code === 100) {
      this.counters.trying++;
      if (p.trying) return;
      p.trying = true;
      // The limit protects the agent's intake from floods; a request it has acknowledged only waits
      // for its work (a STOP's tcpdump exiting). Holding the slot until then let 16 slow STOPs hold
      // back a fleet's other STOP datagrams for seconds (measured: 1000 STOPs to one agent timed out).
      this.freeSlot(p);
      p.budgetMs = Math.max(p.deadlineMs, p.tryingDeadlineMs);
      this.planNext(p);
      this.schedule(p);
      this.log?.debug("agent is trying", { agent: p.agent, id: p.id, verb: p.verb, device: p.device });
      this.callHook("onTrying", () => p.opts.onTrying?.());
      return;
    }
    const answeredAt = performance.now();
    this.counters.answers++;
    this.finish(p);
    this.log?.debug("agent answered", { agent: p.agent, from: formatEndpoint(rinfo.address, rinfo.port), id: p.id, verb: p.verb, code, tries: p.tries });
    p.resolve({
      agent: p.agent,
      id: p.id,
      code,
      verb: p.verb,
      device: p.device,
      details,
      tries: p.tries,
      trying: p.trying,
      sentAt: p.sentAt,
      answeredAt,
      elapsedMs: answeredAt - p.sentAt,
      queuedMs: p.sentAt - p.t0,
    });
  }

  private foreign(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    this.counters.foreign++;
    this.callHook("onForeignDatagram", () => this.opts.onForeignDatagram?.(buf, rinfo));
  }

  private drop(kind: keyof AgentClientStats["dropped"], rinfo: dgram.RemoteInfo, why: string): void {
    this.counters.dropped[kind]++;
    const meta = { from: formatEndpoint(rinfo.address, rinfo.port), kind, why };
    // One warning per kind, then debug: a flood of forged datagrams must not flood the log.
    if (this.warned.has(kind)) this.log?.debug("agent datagram dropped", meta);
    else {
      this.warned.add(kind);
      this.log?.warn("agent datagram dropped (further drops of this kind are logged at debug level)", meta);
    }
  }

  // --- bookkeeping --------------------------------------------------------------------------

  private finishError(p: Pending, e: AgentError, counter: "timeouts" | "aborts"): void {
    if (p.state === "done") return;
    this.counters[counter]++;
    this.finish(p);
    this.log?.debug(e.message, { agent: p.agent, id: p.id, code: e.code });
    p.reject(e);
  }

  private finish(p: Pending): void {
    const was = p.state;
    p.state = "done";
    this.live.delete(p);
    p.detach?.();
    const now = performance.now();
    if (was === "active") {
      if (this.mode === "v1") {
        this.byId.delete(p.id);
        this.recent.set(p.id, now);
      } else {
        const list = this.byLegacyKey.get(p.legacyKey);
        const i = list?.indexOf(p) ?? -1;
        if (list && i >= 0) list.splice(i, 1);
        if (list?.length === 0) this.byLegacyKey.delete(p.legacyKey);
        this.recent.set(`${p.agent} ${p.legacyKey}`, now);
      }
    }
    // Map iteration is insertion order, so the oldest entries come first.
    for (const [k, at] of this.recent) {
      if (now - at < RECENT_KEEP_MS) break;
      this.recent.delete(k);
    }
    if (was === "active") this.freeSlot(p);
    else {
      const slot = this.slots.get(p.agent);
      const i = slot?.queue.indexOf(p) ?? -1;
      if (slot && i >= 0) slot.queue.splice(i, 1);
      if (slot) this.pump(p.agent, slot);
    }
  }

  /** An active request gives its per-agent slot back (once) to the next queued one. */
  private freeSlot(p: Pending): void {
    if (p.slotFreed) return;
    p.slotFreed = true;
    const slot = this.slots.get(p.agent);
    if (!slot) return;
    slot.active--;
    this.pump(p.agent, slot);
  }

  private pump(agent: string, slot: Slot): void {
    if (!this.closed) {
      while (slot.active < this.maxInFlight && slot.queue.length > 0) {
        slot.active++;
        this.activate(slot.queue.shift()!);
      }
    }
    if (slot.active === 0 && slot.queue.length === 0) this.slots.delete(agent);
  }

  private abortError(agent: string, req: AgentRequest, tries: number, reason: unknown): AgentError {
    return new AgentError("agent-aborted", `${describe(req.verb, req.device ?? null)} to agent ${agent} aborted after ${tries} ${tries === 1 ? "try" : "tries"}`, {
      cause: reason,
    });
  }

  private callHook(name: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log?.warn(`agent client: ${name} callback threw`, { error: (e as Error)?.message ?? String(e) });
    }
  }

  // --- sockets ------------------------------------------------------------------------------

  private socketFor(family: Family): Promise<dgram.Socket> {
    const have = this.sockets[family];
    if (have) return have;
    const created = this.createSocket(family);
    this.sockets[family] = created;
    // A failed bind (e.g. no IPv6 on this host) is retried by the next request that needs it.
    created.catch(() => {
      if (this.sockets[family] === created) delete this.sockets[family];
    });
    return created;
  }

  private async createSocket(family: Family): Promise<dgram.Socket> {
    const type = family === 4 ? "udp4" : "udp6";
    const b = this.opts.bind;
    const address = b?.address !== undefined && isIP(b.address) === family ? b.address : family === 4 ? "0.0.0.0" : "::";
    const port = b?.port ?? 0;
    // ipv6Only: the udp4 and udp6 sockets may share one port number, and IPv4 peers never show up
    // as ::ffff:a.b.c.d on the IPv6 socket.
    const sock = dgram.createSocket({ type, ipv6Only: family === 6 });
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => {
        sock.close();
        reject(new AgentError("agent-socket", `cannot bind ${type} socket to ${formatEndpoint(address, port)}: ${e.message}`, { cause: e }));
      };
      sock.once("error", onError);
      sock.bind({ address, port, exclusive: true }, () => {
        sock.off("error", onError);
        resolve();
      });
    });
    if (this.closed) {
      sock.close();
      throw new AgentError("agent-aborted", "agent client is closed");
    }
    try {
      // Bursts of answers to many concurrent requests; the kernel caps this at net.core.rmem_max.
      sock.setRecvBufferSize(RECV_BUFFER);
    } catch {
      // Not fatal: retries cover the odd drop.
    }
    sock.on("error", (e) => this.log?.warn("agent socket error", { socket: type, error: e.message }));
    sock.on("message", (buf, rinfo) => this.onMessage(buf, rinfo));
    this.bound[family] = sock;
    const local = sock.address();
    this.log?.debug("agent socket bound", { socket: type, local: formatEndpoint(local.address, local.port) });
    return sock;
  }
}

function describe(verb: Verb, device: string | null): string {
  return device === null ? verb : `${verb} for ${device}`;
}

/** 8000 → "8", 1500 → "1.5", 250 → "0.25". */
function seconds(ms: number): string {
  return String(Number((ms / 1000).toFixed(3)));
}

/** One spelling per address, so answers match requests however the config wrote the address. */
function canonicalAddress(address: string): string {
  if (isIP(address) !== 6) return address;
  try {
    return new SocketAddress({ address, family: "ipv6" }).address;
  } catch {
    return address.toLowerCase();
  }
}

function checkMs(name: string, v: unknown, E: typeof ConfigError | typeof AgentError = ConfigError): void {
  if (typeof v === "number" && Number.isFinite(v) && v > 0) return;
  const message = `${name} must be a positive number of milliseconds, got ${String(v)}`;
  throw E === AgentError ? new AgentError("agent-bad-request", message) : new ConfigError(message);
}
