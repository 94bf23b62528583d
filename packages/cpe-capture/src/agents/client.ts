// Orchestrator side of the server-capture agent protocol: shared/PROTOCOL.md "Rules at the
// orchestrator" (v1) and DESIGN.md "Wire protocol" (legacy text mode of trafficCapture v1.0.6).
// This file is each request's life: queued for a slot, sent and resent with backoff, acknowledged
// (100 Trying), answered, timed out or aborted. Its helpers: wire.ts (framing), correlation.ts
// (answer → request), slots.ts (in flight per agent, shrinking with a slow agent), rtt.ts (each
// agent's answer time, for the first resend), timer.ts (resends and deadlines), sockets.ts (UDP),
// options.ts (defaults and checks).
// Not handled here: which agents capture which device, fetching the agents' files, parsing syslog
// (non-protocol datagrams are only handed to onForeignDatagram).
import type dgram from "node:dgram";
import { type AddressInfo, isIP } from "node:net";
import { performance } from "node:perf_hooks";
import { AgentError, type Code, type Verb, formatEndpoint, measureSkew, newRequestId, parseAnswer, parseLegacyAnswer } from "@capsync/protocol";
import type { AgentEndpoint } from "../config/schema.js";
import type { AgentAnswer, AgentClientOptions, AgentClientStats, AgentLogger, AgentMode, AgentRequest, BackoffOptions, RequestOptions, SendInfo, VerbTiming } from "./types.js";
import { DEFAULT_BACKOFF, DEFAULT_MAX_IN_FLIGHT_PER_AGENT, DEFAULT_MAX_QUEUE_MS, DEFAULT_MAX_STOPS_IN_FLIGHT_PER_AGENT, checkMs, checkOptions, resolveTiming } from "./options.js";
import { canonicalAddress, checkRequest, describe, isV1Datagram, stampRequest } from "./wire.js";
import type { Pending } from "./pending.js";
import { AnswerCorrelation } from "./correlation.js";
import { AgentSlots } from "./slots.js";
import { AgentRtt } from "./rtt.js";

/** Resends of a request come at least this often once past the agent's answer-time estimate (unless that estimate is longer). */
const STEADY_RESEND_MS = 1_000;
import { COALESCE_MS, RequestTimer } from "./timer.js";
import { AgentSockets, type Family } from "./sockets.js";

export type * from "./types.js";
export { DEFAULT_BACKOFF, DEFAULT_MAX_IN_FLIGHT_PER_AGENT, DEFAULT_MAX_QUEUE_MS, DEFAULT_MAX_STOPS_IN_FLIGHT_PER_AGENT, DEFAULT_TIMING } from "./options.js";

export class AgentClient {
  private readonly mode: AgentMode;
  /** The v1 key, as parseAnswer takes it (empty in legacy mode). */
  private readonly keys: readonly Uint8Array[];
  private readonly timing: Record<Verb, VerbTiming>;
  private readonly backoff: BackoffOptions;
  private readonly opts: AgentClientOptions;
  private readonly log: AgentLogger | undefined;
  private readonly maxQueueMs: number;

  private readonly sockets: AgentSockets;
  private readonly live = new Set<Pending>();
  private readonly answers: AnswerCorrelation;
  private readonly slots: AgentSlots;
  private readonly timer: RequestTimer;
  private readonly rtt = new AgentRtt();
  /** When each agent last answered anything (performance.now()). */
  private readonly heardFrom = new Map<string, number>();
  private closed = false;
  /** A datagram arrived since the timer's last tick / in the ticks before this one (see due()). */
  private heard = false;
  private backlog = false;
  private tickAt = NaN;
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
    overloads: 0,
    staleRetries: 0,
    foreign: 0,
    dropped: { badMac: 0, malformed: 0, unmatched: 0, mismatch: 0 },
  };

  private constructor(opts: AgentClientOptions) {
    this.opts = opts;
    this.mode = opts.mode;
    this.log = opts.log;
    this.keys = opts.key ? [opts.key] : [];
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.timing = resolveTiming(opts.timing);
    this.sockets = new AgentSockets(opts.bind, opts.log, (buf, rinfo) => this.onMessage(buf, rinfo));
    this.answers = new AnswerCorrelation(opts.mode);
    this.maxQueueMs = opts.maxQueueMs ?? DEFAULT_MAX_QUEUE_MS;
    this.slots = new AgentSlots(
      opts.maxInFlightPerAgent ?? DEFAULT_MAX_IN_FLIGHT_PER_AGENT,
      opts.maxStopsInFlightPerAgent ?? DEFAULT_MAX_STOPS_IN_FLIGHT_PER_AGENT,
      (p) => this.activate(p),
    );
    this.timer = new RequestTimer(
      (p) => this.deadlineAt(p),
      (p, now) => this.due(p, now),
      () => this.live.size,
    );
  }

  static async open(opts: AgentClientOptions): Promise<AgentClient> {
    checkOptions(opts);
    const client = new AgentClient(opts);
    if (opts.mode === "legacy") {
      opts.log?.warn("agent protocol: legacy mode - no authentication, anyone on the path can forge or replay requests and answers");
    }
    // A shared (syslog) port must listen before the first request, so bind it now.
    const b = opts.bind;
    if (b !== undefined || opts.onForeignDatagram !== undefined) {
      await client.sockets.socketFor(b?.address !== undefined && isIP(b.address) === 6 ? 6 : 4);
    }
    return client;
  }

  /** The local address of the family's socket, once it exists. */
  localAddress(family: Family = 4): AddressInfo | undefined {
    return this.sockets.localAddress(family);
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
    checkRequest(this.mode, agent, req);
    const timing = this.timing[req.verb];
    const deadlineMs = opts.deadlineMs ?? timing.deadlineMs;
    const tryingDeadlineMs = opts.tryingDeadlineMs ?? timing.tryingDeadlineMs;
    checkMs("deadlineMs", deadlineMs, AgentError);
    checkMs("tryingDeadlineMs", tryingDeadlineMs, AgentError);
    const id = newRequestId();
    const stamped = stampRequest(this.mode, this.keys[0], id, req);
    if (opts.signal?.aborted) throw this.abortError(agent, req, 0, opts.signal.reason);

    // Synchronously when the socket is open: a STOP then leaves within the caller's own turn, before
    // whatever it starts next (the device's stop request, whose HTTPS set-up would otherwise delay
    // the STOP datagram, a whole burst's worth with many alarms at once).
    const socket = this.sockets.ready(family as Family) ?? (await this.sockets.socketFor(family as Family));
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
        intervalCap: this.backoff.maxMs,
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
      // A STOP waits only when the agent holds maxStopsInFlightPerAgent unacknowledged requests
      // (slots.ts): an alarm's STOP leaves within this turn, a fleet-wide stop at the agent's pace.
      if (this.slots.take(p, req.verb === "STOP")) this.activate(p);
      else this.timer.schedule(p);
    });
  }

  /** Reject every pending request ('agent-aborted') and close the sockets. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.slots.close();
    for (const p of [...this.live]) {
      this.finishError(p, new AgentError("agent-aborted", `${describe(p.verb, p.device)} to agent ${p.agent} aborted: agent client closed`), "aborts");
    }
    this.timer.close();
    this.sockets.close();
  }

  // --- sending ------------------------------------------------------------------------------

  private activate(p: Pending): void {
    p.state = "active";
    // A request that queued for a while gets a fresh ts, so the agent's 30 s window starts at the first send.
    if (this.mode === "v1" && performance.now() - p.stampedAt > 1_000) {
      const s = stampRequest(this.mode, this.keys[0], p.id, p.req);
      p.datagram = s.datagram;
      p.stampedAt = s.at;
    }
    this.answers.add(p);
    p.interval = this.rtt.timeout(p.agent, this.backoff.initialMs, this.backoff.maxMs);
    // Doubling from the agent's estimate all the way to maxMs would leave a request on a lossy
    // path 4 tries in its 8 s (each lost with the path's loss rate, both ways); beyond the
    // estimate, a copy a second is what an alive agent's intake can take.
    p.intervalCap = Math.min(this.backoff.maxMs, Math.max(p.interval, STEADY_RESEND_MS));
    this.transmit(p, performance.now());
    this.timer.schedule(p);
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
      p.interval = Math.min(p.interval * 2, p.intervalCap);
    } else if (this.mode === "legacy") {
      // A legacy agent has no request ids: a resend after its 100 could start the work twice.
      p.nextSendAt = Infinity;
    } else {
      p.nextSendAt = p.lastSentAt + Math.max(p.interval, this.backoff.tryingResendMs);
    }
    if (this.mode === "v1" && p.nextSendAt > p.stampedAt + this.backoff.resendWindowMs) p.nextSendAt = Infinity;
  }

  /**
   * When `p` fails: its answer deadline counts from its first send (time spent in our own queue
   * is not the agent's slowness); a queued request is bounded by maxQueueMs.
   */
  private deadlineAt(p: Pending): number {
    return p.state === "queued" ? p.t0 + this.maxQueueMs : Math.max(p.sentAt + p.budgetMs, p.graceUntil ?? 0);
  }

  /** The timer fired for `p`: past its deadline it fails, else it is resent when due. */
  private due(p: Pending, now: number): void {
    if (now !== this.tickAt) {
      this.tickAt = now;
      this.backlog = this.heard;
      this.heard = false;
    }
    if (now + COALESCE_MS >= this.deadlineAt(p)) {
      // Datagrams arrived since the last tick: libuv reads a bounded number per loop turn, so in a
      // process starved of CPU this request's answer may be waiting unread in the socket. Its
      // deadline waits for a turn with nothing read, BACKLOG_GRACE_MS at most.
      if (this.backlog && p.state === "active" && now < p.sentAt + p.budgetMs + BACKLOG_GRACE_MS) {
        p.graceUntil = now + COALESCE_MS + 1;
        this.timer.schedule(p);
        return;
      }
      // An agent answering other requests is working through its intake, not gone: this one is
      // queued there too, so it gets up to its after-100 deadline, still resent with backoff, and
      // the agent's window shrinks so that no more pile up behind it.
      const heard = this.heardFrom.get(p.agent) ?? -Infinity;
      if (p.state === "active" && !p.trying && now - heard < ALIVE_MS && now < p.sentAt + Math.max(p.deadlineMs, p.tryingDeadlineMs)) {
        this.slots.congested(p.agent, now);
        p.graceUntil = now + ALIVE_MS;
        p.waitedForSlowAgent = true;
        this.timer.schedule(p);
        return;
      }
      this.expire(p);
      return;
    }
    if (p.state === "active" && now + COALESCE_MS >= p.nextSendAt) {
      // Backed off at most to the steady resend rate: on a lossy path every agent has resent
      // requests, and a shared 2 s back-off left each new request 4 tries in its 8 s. A slow
      // agent's longer answer time still comes through its measured samples (srtt).
      if (!p.trying) this.rtt.resent(p.agent, now - p.lastSentAt, Math.min(this.backoff.maxMs, STEADY_RESEND_MS));
      this.transmit(p, now);
    }
    this.timer.schedule(p);
  }

  private expire(p: Pending): void {
    const what = describe(p.verb, p.device);
    if (p.state === "queued") {
      const message =
        `${what} to agent ${p.agent} was never sent: it waited ${seconds(this.maxQueueMs)} s (maxQueueMs) behind ` +
        `${this.slots.inFlight(p.agent)} requests in flight to this agent (maxInFlightPerAgent ${this.slots.max}, STOPs ${this.slots.maxStops})`;
      this.finishError(p, new AgentError("agent-timeout", message), "timeouts");
      return;
    }
    const tries = `${p.tries} ${p.tries === 1 ? "try" : "tries"}`;
    const within = p.waitedForSlowAgent ? `${seconds(Math.round(performance.now() - p.sentAt))} s (a slow agent, answering others)` : `${seconds(p.budgetMs)} s`;
    let message = p.trying
      ? `agent ${p.agent} answered 100 Trying to ${what} but sent no final answer after ${tries} in ${within}`
      : `agent ${p.agent} did not answer ${what} after ${tries} in ${within}`;
    if (p.lastSendError !== undefined) message += ` (last send error: ${p.lastSendError})`;
    this.finishError(p, new AgentError("agent-timeout", message), "timeouts");
  }

  // --- answers ------------------------------------------------------------------------------

  private onMessage(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return;
    this.heard = true;
    const isV1 = isV1Datagram(buf);
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
    const p = this.answers.byRequestId(a.id);
    if (!p) {
      if (this.answers.finishedRecently(a.id)) this.counters.late++;
      else this.drop("unmatched", rinfo, `answer for unknown request id ${a.id}`);
      return;
    }
    // The source address is not checked: MAC and id authenticate the answer, and an agent bound to
    // a wildcard address on a multi-homed host may answer from another address than we sent to.
    const device = a.device === null ? null : canonicalAddress(a.device);
    if (a.verb !== p.verb || device !== p.device) {
      return this.drop("mismatch", rinfo, `answer ${a.id} is for ${describe(a.verb, device)}, the request was ${describe(p.verb, p.device)}`);
    }
    // The first answer was stamped between our first send and now (a later one may be a re-sent
    // copy, or the end of long work): the skew is read at that interval's midpoint, on our wall
    // clock as it reads now (a step since the send does not count as skew).
    if (!p.skew) {
      const wall = Date.now();
      p.skew = measureSkew(a.ts, wall - (performance.now() - p.sentAt), wall);
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
    const p = this.answers.byLegacyAnswer(key, from);
    if (!p) {
      if (this.answers.finishedRecently(`${from} ${key}`)) this.counters.late++;
      else this.drop("unmatched", rinfo, `answer '${a.code} ${key}' matches no pending request`);
      return;
    }
    if (p.agent !== from) this.log?.debug("legacy answer from another address than the request went to", { agent: p.agent, from });
    this.onAnswer(p, a.code, {}, rinfo);
  }

  private onAnswer(p: Pending, code: Code, details: Record<string, string>, rinfo: dgram.RemoteInfo): void {
    const now = performance.now();
    this.heardFrom.set(p.agent, now);
    if (!p.trying) {
      if (p.tries === 1) this.rtt.sample(p.agent, now - p.sentAt);
      this.slots.answered(p.agent);
    }
    if (code === 100) {
      this.counters.trying++;
      if (p.trying) return;
      p.trying = true;
      // The limit protects the agent's intake from floods; a request it has acknowledged only waits
      // for its work (a STOP's tcpdump exiting). Holding the slot until then would let a few slow
      // STOPs hold back a fleet's other STOP datagrams until they time out.
      this.slots.free(p);
      p.budgetMs = Math.max(p.deadlineMs, p.tryingDeadlineMs);
      this.planNext(p);
      this.timer.schedule(p);
      this.log?.debug("agent is trying", { agent: p.agent, id: p.id, verb: p.verb, device: p.device });
      this.callHook("onTrying", () => p.opts.onTrying?.());
      return;
    }
    if (code === 503 && details.reason === "overload" && !p.trying) {
      // The agent's intake was full: nothing was done and the id was not remembered, so the same
      // datagram is sent again after the backoff (within the deadline from the first send).
      this.counters.overloads++;
      this.slots.congested(p.agent, now);
      this.planNext(p);
      this.timer.schedule(p);
      return;
    }
    if (code === 400 && details.reason === "stale" && !p.trying && this.mode === "v1" && now - p.stampedAt > 1_000) {
      // The agent read a copy over 30 s after we stamped it (its intake was that far behind) and did
      // nothing: the next resend carries a fresh timestamp, same id.
      this.counters.staleRetries++;
      this.slots.congested(p.agent, now);
      const s = stampRequest(this.mode, this.keys[0], p.id, p.req);
      p.datagram = s.datagram;
      p.stampedAt = s.at;
      this.planNext(p);
      this.timer.schedule(p);
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
      ...(p.skew ? { skew: p.skew } : {}),
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

  // --- endings ------------------------------------------------------------------------------

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
    this.answers.finished(p, was === "active", performance.now());
    if (was === "active") this.slots.free(p);
    else this.slots.unqueue(p);
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
}

/** How long past its deadline a request waits while answers are still being read (see due()). */
const BACKLOG_GRACE_MS = 4_000;
/** An agent that answered anything this recently is alive (see due()). */
const ALIVE_MS = 1_000;

/** 8000 → "8", 1500 → "1.5", 250 → "0.25". */
function seconds(ms: number): string {
  return String(Number((ms / 1000).toFixed(3)));
}
