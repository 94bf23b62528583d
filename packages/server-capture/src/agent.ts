// The server-capture agent: a UDP server that runs one tcpdump per device on command.
// Speaks CSYNC/1 (default) or the original's legacy text; answers 100 Trying then a final answer.
// This file is the wiring: socket, bounded intake, request parsing, dispatch of each verb, answers
// and the tick; the session table, the limits and the registrations live in their own modules.
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import type { BlockList } from "node:net";
import { isIPv6 } from "node:net";
import { type Code, type LegacyVerb, type Verb, describeSkew, formatAnswer, keyId, formatEndpoint, formatLegacyAnswer, parseLegacyRequest, parseRequest } from "@capsync/protocol";
import { type Logger, type VerifyOptions, WallStepDetector, monotonicMs, verifyDetails, verifyPath } from "@capsync/common";
import { CaptureGuards, IntakeLimits, allowList, type IntakeCounters } from "./limits.js";
import { noopRegistrar, type Registrar } from "./registrar.js";
import { Registrations } from "./registrations.js";
import { Sessions, captureProgram, type Details, type Outcome } from "./sessions.js";
import { type DeviceRecord, type DurableWriter, StateStore } from "./state.js";
import { devicesInfoWriter } from "./devices-info.js";
import { isValidInterface } from "./tcpdump.js";
import type { Owner } from "./owners.js";
import { DRAIN_STRETCH_MS, INTAKE_LIMIT, INTAKE_MAX_BYTES, IntakeQueue } from "./intake-queue.js";

export interface AgentOptions {
  listen: { address: string; port: number };
  dir: string;
  /** v1 keys (two during a rotation). Empty only in legacy mode. */
  keys: Buffer[];
  legacy: boolean;
  allow: string[];
  iface: string;
  /** shared: one tcpdump per interface, demultiplexed into each device's files (shared-capture.ts); default per-device. */
  captureMode?: "shared" | "per-device";
  maxSessions: number;
  maxDurationMs: number;
  ringSizeMb?: number;
  ringFiles?: number;
  minFreeMb: number;
  windowMs: number;
  /** tcpdump drops to this user after opening the device (-Z); undefined keeps root. */
  tcpdumpUser?: string;
  tcpdumpBinary?: string;
  registrar?: Registrar;
  /** Unregister a device (delete its forwarding rule) after this long without REGISTER/CAPTURE/STOP and no capture running. Default 24 h. */
  registerIdleMs?: number;
  verify?: VerifyOptions;
  /** Datagrams waiting to be handled (default INTAKE_LIMIT); beyond it a valid request is answered 503 overload. */
  queueLimit?: number;
  /** The state file's durable writer (state.ts); tests slow it down to check that answers wait for it. */
  stateWriter?: DurableWriter;
  tickMs?: number;
  /** The monotonic clock of every age and expiry (--max-duration, spec limits, replay cache); tests cross days with a shifted one. */
  now?: () => number;
  log: Logger;
}

interface Cmd {
  mode: "v1" | "legacy";
  verb: Verb;
  device?: string;
  filename?: string;
  spec?: string;
  id?: string;
  keyIndex: number;
  peer: RemoteInfo;
  received: number;
}

export class Agent {
  readonly opts: AgentOptions;
  private socket!: Socket;
  private readonly store: StateStore;
  private readonly sessions: Sessions;
  private readonly guards: CaptureGuards;
  private readonly intake: IntakeLimits;
  private readonly registrations: Registrations;
  /** id → answers given, so a retried id gets the same answer and never a second run. */
  private readonly replies = new Map<string, { trying?: Buffer; final?: Buffer; expires: number; ts: number; resentAt?: number }>();
  /** Monotonic ms: every age, expiry and latency (clock.ts); Date.now only for the wire's ts and names. */
  private readonly mono: () => number;
  private readonly wallSteps = new WallStepDetector();
  /** Per key file, the id a capture's owner is named by (owners.ts). */
  private readonly keyIds: string[];
  private readonly allow: BlockList | undefined;
  private readonly queue = new IntakeQueue();
  private draining = false;
  /** While drain() handles a batch: tcpdumps spawned in it, and the answers held until their pids are written. */
  private batch: { pids: boolean; out: (() => void)[] } | undefined;
  private tick?: NodeJS.Timeout;
  private closed = false;
  /** Per device, the latest command dispatched (one entry per device, like the state store). */
  private readonly latestCommand = new Map<string, Cmd>();
  readonly counters: IntakeCounters = { received: 0, queueDrops: 0, rejected: 0, peerDenied: 0, stale: 0, replays: 0, commands: 0, overloadAnswers: 0 };

  private constructor(opts: AgentOptions) {
    this.opts = opts;
    this.mono = opts.now ?? monotonicMs;
    this.keyIds = opts.keys.map((k) => keyId(k));
    this.store = new StateStore(opts.dir, devicesInfoWriter(opts.dir, (e) => opts.log.warn(`devices_info.json not written: ${e.message}`)), opts.stateWriter);
    this.store.onError = (e) => opts.log.error(`state file ${this.store.path} not written (answers that promise it wait, retried): ${e.message}`);
    this.sessions = new Sessions(this.store, opts, (device) => {
      this.store.save(device);
      if (this.batch) this.batch.pids = true;
    });
    this.guards = new CaptureGuards(this.store, this.sessions, opts);
    this.intake = new IntakeLimits(this.counters, opts.windowMs, opts.log);
    this.registrations = new Registrations(this.store, opts.registrar ?? noopRegistrar, opts.log, opts.registerIdleMs, this.mono);
    this.allow = allowList(opts.allow);
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    if (!isValidInterface(opts.iface)) throw new Error(`--interface '${opts.iface}' is not a valid interface name`);
    const a = new Agent(opts);
    a.sessions.prepareDirs();
    a.sessions.recover();
    await a.bind();
    a.tick = setInterval(() => void a.onTick(), opts.tickMs ?? 1000);
    a.onTick();
    return a;
  }

  address(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  devices(): DeviceRecord[] {
    return this.store.all();
  }

  private bind(): Promise<void> {
    const type = isIPv6(this.opts.listen.address) ? "udp6" : "udp4";
    // The kernel's side of the intake: a fleet-wide STOP lands thousands of datagrams at once; the
    // loop moves them into the queue between handling stretches (capped by net.core.rmem_max).
    this.socket = createSocket({ type, recvBufferSize: 8 * 1024 * 1024 });
    this.socket.on("message", (buf, peer) => this.enqueue(buf, peer));
    this.socket.on("error", (e) => this.opts.log.error(`socket error: ${e.message}`));
    return new Promise((resolve, reject) => {
      this.socket.once("error", reject);
      this.socket.bind(this.opts.listen.port, this.opts.listen.address, () => {
        this.socket.off("error", reject);
        resolve();
      });
    });
  }

  // --- datagram intake ---------------------------------------------------------------------------
  private enqueue(buf: Buffer, peer: RemoteInfo): void {
    this.counters.received++;
    // Bounded queue (entries and bytes): a flood beyond it is answered 503 overload when it is a
    // valid request (its sender learns to retry), dropped otherwise; never an unbounded backlog.
    if (this.queue.length >= (this.opts.queueLimit ?? INTAKE_LIMIT) || this.queue.bytes + buf.length > INTAKE_MAX_BYTES) {
      this.counters.queueDrops++;
      this.overloaded(buf, peer);
      return;
    }
    this.queue.push(buf, peer);
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    // A burst of CAPTUREs spawns a tcpdump per datagram, and each pid must be on disk before any
    // answer leaves. Writing the whole state file per spawn would make a fleet's start quadratic;
    // the batch writes it once, then sends what the batch answered.
    const batch: { pids: boolean; out: (() => void)[] } = (this.batch = { pids: false, out: [] });
    try {
      // Bounded in count and time (a per-device CAPTURE forks a tcpdump: milliseconds each on a
      // loaded host): between stretches the loop reads the socket and completes other work.
      const until = performance.now() + DRAIN_STRETCH_MS;
      for (let n = 0; n < 256 && this.queue.length && (n === 0 || performance.now() < until); n++) {
        const { buf, peer } = this.queue.shift()!;
        this.handle(buf, peer);
      }
    } finally {
      this.batch = undefined;
      const sendAll = () => {
        for (const send of batch.out) send();
      };
      // The pids spawned in this stretch share one durable write; its answers leave after it.
      if (batch.pids) this.store.afterFlush(sendAll);
      else sendAll();
    }
    if (this.queue.length) setImmediate(() => this.drain());
    else this.draining = false;
  }

  /**
   * The intake is full: a valid CSYNC/1 request gets `503 overload` (authenticated, nothing done, its
   * id not remembered, so a resend once the backlog is through is handled normally); a repeat of an
   * answered id gets that answer; anything else is dropped as before.
   */
  private overloaded(buf: Buffer, peer: RemoteInfo): void {
    if (this.closed || this.opts.legacy) return;
    if (this.allow && !this.allow.check(peer.address, peer.family === "IPv6" ? "ipv6" : "ipv4")) return;
    const r = parseRequest(buf, { keys: this.opts.keys, windowMs: this.opts.windowMs });
    if (!r.ok) return;
    const req = r.value;
    const seen = this.replies.get(req.id);
    if (seen) {
      const again = seen.final ?? seen.trying;
      if (again && this.intake.repeatMayAnswer(seen, peer, this.mono())) this.socket.send(again, peer.port, peer.address);
      return;
    }
    this.counters.overloadAnswers++;
    const limit = this.opts.queueLimit ?? INTAKE_LIMIT;
    const details = { reason: "overload", msg: `intake full: ${this.queue.length} requests queued (limit ${limit}, ${Math.round(this.queue.bytes / 1024)} KiB of ${INTAKE_MAX_BYTES / 1048576} MiB); retry` };
    const answer = formatAnswer({ id: req.id, ts: Date.now(), code: 503, verb: req.verb, device: req.device ?? null, details }, this.opts.keys[r.keyIndex]!);
    this.socket.send(answer, peer.port, peer.address, () => undefined);
  }

  private handle(buf: Buffer, peer: RemoteInfo): void {
    if (this.closed) return;
    if (this.allow && !this.allow.check(peer.address, peer.family === "IPv6" ? "ipv6" : "ipv4")) {
      this.counters.peerDenied++;
      this.intake.reject(peer, "peer-not-allowed");
      return;
    }
    const received = this.mono();
    if (this.opts.legacy) {
      const r = parseLegacyRequest(buf);
      if (!r.ok) return this.intake.reject(peer, r.code);
      this.dispatch({ mode: "legacy", verb: r.value.verb, device: r.value.device, filename: r.value.filename, keyIndex: 0, peer, received });
      return;
    }
    const r = parseRequest(buf, { keys: this.opts.keys, windowMs: this.opts.windowMs });
    if (!r.ok) {
      if (r.code === "stale" && "request" in r) {
        // Answer so an operator sees the clock skew; do nothing else.
        const req = r.request;
        if (!this.intake.staleMayAnswer(peer, req.ts)) return;
        // The answer's own ts is the agent's time too; skew_ms and the words say which side is off.
        const now = Date.now();
        this.send(
          { mode: "v1", verb: req.verb, device: req.device, id: req.id, keyIndex: r.keyIndex, peer, received },
          400,
          {
            reason: "stale",
            msg: `timestamp ${req.ts} is outside the ${this.opts.windowMs} ms window; agent time ${now}: ${describeSkew(req.ts - now, "the sender's", "this agent's")}`,
            skew_ms: String(now - req.ts),
          },
          false,
        );
        return;
      }
      return this.intake.reject(peer, r.code);
    }
    const req = r.value;
    const seen = this.replies.get(req.id);
    if (seen) {
      // A retry or a replay of a request id: same answer again, never the work again.
      this.counters.replays++;
      const again = seen.final ?? seen.trying;
      if (!again || !this.intake.repeatMayAnswer(seen, peer, received)) return;
      this.socket.send(again, peer.port, peer.address);
      return;
    }
    this.replies.set(req.id, { expires: received + 2 * this.opts.windowMs, ts: req.ts });
    this.dispatch({ mode: "v1", verb: req.verb, device: req.device, filename: req.filename, spec: req.spec, id: req.id, keyIndex: r.keyIndex, peer, received });
  }

  // --- answers -----------------------------------------------------------------------------------
  private send(cmd: Cmd, code: Code, details: Details = {}, log = true): void {
    let buf: Buffer;
    let entry: { trying?: Buffer; final?: Buffer } | undefined;
    if (cmd.mode === "legacy") {
      buf = formatLegacyAnswer({ code, verb: cmd.verb as LegacyVerb, device: cmd.device ?? "" });
    } else {
      buf = formatAnswer({ id: cmd.id!, ts: Date.now(), code, verb: cmd.verb, device: cmd.device ?? null, details }, this.opts.keys[cmd.keyIndex]!);
      entry = this.replies.get(cmd.id!);
      if (entry && code === 100) entry.trying = buf;
    }
    // `log` false (the stale answer): not a command, so neither logged per datagram nor recorded.
    let durable = false;
    if (code !== 100 && cmd.device && log) {
      const d = this.store.upsert(cmd.device);
      // devices_info's lastRequest is the latest request received, as the original's: a VERIFY
      // whose probes outlast the STOP that followed it does not overwrite the STOP's record.
      if (this.latestCommand.get(cmd.device) === cmd) {
        d.lastRequest = cmd.verb;
        d.lastResponse = `${code}`;
      }
      // A final answer promises a state (a capture running as pid N, files renamed, a registration):
      // it leaves once the state file holds it, so an agent killed right after answering restarts
      // knowing it, and the file never lags an answer. Group-committed (state.ts): a burst of
      // answers shares one write (in the thread pool, while the socket is read on), not one each.
      durable = true;
    }
    const out = () => {
      // A retry gets the final answer only once it may leave.
      if (entry && code !== 100) entry.final = buf;
      if (!this.closed || code !== 100) this.socket.send(buf, cmd.peer.port, cmd.peer.address, () => undefined);
    };
    if (durable) this.store.afterFlush(out);
    else if (this.batch) this.batch.out.push(out);
    else out();
    if (log && code !== 100) {
      const extra = Object.entries(details)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
      this.opts.log.info(
        `peer=${formatEndpoint(cmd.peer.address, cmd.peer.port)} mode=${cmd.mode} verb=${cmd.verb} device=${cmd.device ?? "-"}` +
          ` code=${code} latency=${Math.round(this.mono() - cmd.received)}ms${cmd.id ? ` id=${cmd.id}` : ""}${extra ? ` ${extra}` : ""}`,
      );
    }
  }

  private dispatch(cmd: Cmd): void {
    this.counters.commands++;
    if (cmd.device) this.latestCommand.set(cmd.device, cmd);
    if (cmd.device && (cmd.verb === "REGISTER" || cmd.verb === "CAPTURE" || cmd.verb === "STOP")) this.registrations.touch(cmd.device);
    const work = async (): Promise<Outcome> => {
      switch (cmd.verb) {
        case "PING":
          return [200, { agent: "server-capture", sessions: String(this.sessions.activeCount()) }];
        case "STATUS":
          return [200, this.sessions.statusDetails()];
        case "REGISTER":
          // PROTOCOL.md: 100 first (the management server's REST calls take a while); the original never sent one.
          if (cmd.mode === "v1") this.send(cmd, 100);
          return this.registrations.register(cmd.device!, cmd.peer);
        case "CAPTURE":
          this.send(cmd, 100);
          return this.capture(cmd);
        case "VERIFY":
          this.send(cmd, 100);
          return this.verify(cmd);
        case "STOP":
          // Like the original: an unknown device gets 404 at once, without a 100 Trying first.
          if (!this.store.peek(cmd.device!)?.session) return [404, { reason: "no-session", msg: `no capture for ${cmd.device!}` }];
          this.send(cmd, 100);
          return this.stop(cmd);
      }
    };
    work().then(
      ([code, details]) => this.send(cmd, code, details),
      (e: Error) => {
        this.opts.log.error(`${cmd.verb} ${cmd.device ?? ""} failed: ${e.stack ?? e.message}`);
        this.send(cmd, 503, { reason: "internal", msg: e.message.slice(0, 200) });
      },
    );
  }

  // --- verbs -------------------------------------------------------------------------------------
  private async capture(cmd: Cmd): Promise<Outcome> {
    const compiled = captureProgram(cmd.device!, cmd.spec);
    if (!compiled.ok) return [400, compiled.details];
    return this.sessions.capture(cmd.device!, compiled, formatEndpoint(cmd.peer.address, cmd.peer.port), () => this.guards.refuse(), this.owner(cmd));
  }

  private async verify(cmd: Cmd): Promise<Outcome> {
    const r = await verifyPath(cmd.device!, this.opts.verify);
    this.store.task(cmd.device!, "verify", r.ok ? "ok" : "failed", JSON.stringify(r));
    const details = verifyDetails(r);
    this.opts.log.info(`VERIFY ${cmd.device!}: ${Object.entries(details).map(([k, v]) => `${k}=${v}`).join(" ")}`);
    return [r.ok ? 200 : 430, r.ok ? details : { ...details, reason: "no-answer", msg: "no ICMP, SNMP or TCP/443 answer from the device" }];
  }

  private stop(cmd: Cmd): Promise<Outcome> {
    const device = cmd.device!;
    // The device's capture is over: its forwarding rule goes too (after the answer, never delaying it).
    return this.sessions.stop(device, cmd.filename!, () => setImmediate(() => void this.registrations.unregister(device, "capture stopped")), this.owner(cmd));
  }

  /** CSYNC/1: the requesting orchestrator as the wire names it (owners.ts); legacy has no owners. */
  private owner(cmd: Cmd): Owner | undefined {
    if (cmd.mode !== "v1") return undefined;
    return { key: this.keyIds[cmd.keyIndex]!, address: cmd.peer.address };
  }

  // --- tick --------------------------------------------------------------------------------------
  private onTick(): void {
    const now = this.mono();
    const step = this.wallSteps.check();
    if (step !== undefined) {
      this.opts.log.warn(`wall clock stepped ${step > 0 ? "forward" : "back"} by ${Math.abs(step / 1000).toFixed(1)} s (NTP or an operator): capture ages and limits are unaffected (monotonic clock); CSYNC/1 timestamps are checked against the new time`);
    }
    // An id is forgotten once 2 x window have passed (monotonic) AND its datagram would be stale now:
    // after the wall clock steps back, a datagram from the stepped-over time is fresh again, and
    // must still meet its id here rather than run a second time.
    const wall = Date.now();
    for (const [id, e] of this.replies) if (e.expires < now && Math.abs(wall - e.ts) > this.opts.windowMs) this.replies.delete(id);
    this.registrations.expire(now);
    this.guards.check(now);
    this.intake.logDrops();
  }

  /**
   * Stop every tcpdump cleanly, keep their files, write the state file. `keepCaptures` (a restart or
   * an upgrade): leave them running and registered for the next agent to adopt (--on-term keep).
   */
  async close(opts: { keepCaptures?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.tick);
    if (!opts.keepCaptures) {
      await this.sessions.stopAll();
      await this.registrations.unregisterAll();
    }
    this.store.flush();
    this.store.close();
    await new Promise<void>((r) => this.socket.close(() => r()));
  }
}
