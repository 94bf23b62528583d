// The server-capture agent: a UDP server that runs one tcpdump per device on command.
// Speaks CSYNC/1 (default) or the original's legacy text; answers 100 Trying then a final answer.
// Never deletes captured data: every file tcpdump wrote ends up in the capture dir, renamed on STOP.
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { BlockList, isIPv6 } from "node:net";
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  type BpfProgram,
  type Code,
  type LegacyVerb,
  type Verb,
  canonicalSpecJson,
  compileBpf,
  decodeSpecWire,
  formatAnswer,
  formatEndpoint,
  formatLegacyAnswer,
  parseLegacyRequest,
  parseRequest,
} from "@capsync/protocol";
import type { Logger } from "@capsync/protocol";
import { finalName, tempName, unusedName } from "./naming.js";
import { noopRegistrar, type Registrar } from "./registrar.js";
import { type DeviceRecord, type FileInfo, type SessionRecord, type StopReason, StateStore } from "./state.js";
import { freeMegabytes, lookupUser } from "./system.js";
import { TcpdumpProcess, isValidInterface, parseSummary, stopPid } from "./tcpdump.js";
import { type VerifyOptions, verifyPath } from "./verify.js";

export interface AgentOptions {
  listen: { address: string; port: number };
  dir: string;
  /** v1 keys (two during a rotation). Empty only in legacy mode. */
  keys: Buffer[];
  legacy: boolean;
  allow: string[];
  iface: string;
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
  queueLimit?: number;
  tickMs?: number;
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

interface Live {
  proc?: TcpdumpProcess;
  adoptedPid?: number;
  starting?: Promise<void>;
  stopping?: Promise<void>;
}

type Details = Record<string, string>;

const INCOMING = ".incoming";
/** Lines of drop counts logged per tick; the rest are summed into one line (a flood from many ports is not many lines). */
const MAX_DROP_LINES = 10;
/** Distinct senders tracked per tick for those lines, so spoofed sources cannot grow the table. */
const MAX_DROP_KEYS = 1024;
/** 400 stale answers per sender address and tick: enough to show the clock skew, too few to reflect a replay flood. */
const STALE_ANSWERS_PER_TICK = 5;
/** Clients resend every 250 ms or slower (PROTOCOL.md); a request id repeated faster is a replay flood, re-answered at most this often. */
const RESEND_MIN_MS = 100;

export class Agent {
  readonly opts: AgentOptions;
  private socket!: Socket;
  private readonly store: StateStore;
  private readonly incoming: string;
  private readonly live = new Map<string, Live>();
  /** id → answers given, so a retried id gets the same answer and never a second run. */
  private readonly replies = new Map<string, { trying?: Buffer; final?: Buffer; expires: number; resentAt?: number }>();
  private readonly allow: BlockList | undefined;
  private readonly queue: { buf: Buffer; peer: RemoteInfo }[] = [];
  private draining = false;
  /** While drain() handles a batch: tcpdumps spawned in it, and the answers held until their pids are written. */
  private batch: { pids: boolean; out: (() => void)[] } | undefined;
  private tick?: NodeJS.Timeout;
  private diskLow = false;
  /** User tcpdump drops to (-Z), when that works for this capture dir. */
  private dropTo: string | undefined;
  private closed = false;
  readonly counters = { received: 0, queueDrops: 0, rejected: 0, peerDenied: 0, stale: 0, replays: 0, commands: 0 };
  private rejectLog = new Map<string, number>();
  private rejectOverflow = { datagrams: 0, senders: new Set<string>(), codes: new Map<string, number>() };
  private staleLog = new Map<string, { requests: number; answered: number; skewMs: number }>();
  private repeatsLimited = new Map<string, number>();
  private queueDropsLogged = 0;
  /** Per device: last REGISTER/CAPTURE/STOP (ms), for the registration idle timeout. */
  private readonly activity = new Map<string, number>();
  private readonly unregistering = new Map<string, Promise<void>>();
  /** REGISTERs in flight: shutdown waits for them, so a rule made during shutdown is deleted too. */
  private readonly registering = new Set<Promise<unknown>>();

  private constructor(opts: AgentOptions) {
    this.opts = opts;
    this.store = new StateStore(opts.dir);
    this.incoming = join(opts.dir, INCOMING);
    if (opts.allow.length) {
      this.allow = new BlockList();
      for (const cidr of opts.allow) addCidr(this.allow, cidr);
    }
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    if (!isValidInterface(opts.iface)) throw new Error(`--interface '${opts.iface}' is not a valid interface name`);
    const a = new Agent(opts);
    a.prepareDirs();
    await a.recover();
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

  // --- set-up ------------------------------------------------------------------------------------
  private prepareDirs(): void {
    mkdirSync(this.opts.dir, { recursive: true, mode: 0o750 });
    mkdirSync(this.incoming, { recursive: true, mode: 0o700 });
    // tcpdump opens ring-buffer files after dropping to its own user, so only the incoming dir
    // is writable by that user; finished files are moved out by the (root) agent.
    const user = this.opts.tcpdumpUser;
    const u = user ? lookupUser(user) : undefined;
    if (!user || !u) return;
    if (!isRoot()) {
      // Started without root but with CAP_NET_RAW (a systemd unit or setpriv): tcpdump inherits this
      // unprivileged uid and those capabilities, and has nothing to drop (-Z only works as root).
      this.opts.log.info(`running as uid ${process.getuid?.()} with capabilities: tcpdump runs as this user, not as '${user}'`);
      return;
    }
    chownSync(this.incoming, u.uid, u.gid);
    // Single-file captures are opened before tcpdump drops privileges (it chowns them), so -Z
    // always works; ring-buffer files are opened after the drop, which needs every parent dir
    // to be searchable by that user.
    if (this.opts.ringSizeMb && !searchableBy(this.incoming, u.uid, u.gid)) {
      this.opts.log.warn(`ring buffer: user '${user}' cannot reach ${this.incoming} (a parent dir is not searchable); tcpdump keeps root for ring captures`);
      this.dropTo = undefined;
    } else {
      this.dropTo = user;
    }
  }

  private bind(): Promise<void> {
    const type = isIPv6(this.opts.listen.address) ? "udp6" : "udp4";
    this.socket = createSocket({ type, recvBufferSize: 4 * 1024 * 1024 });
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

  /** After a restart: adopt tcpdumps that are still running, keep the files of the rest. */
  private async recover(): Promise<void> {
    for (const d of this.store.load()) {
      const s = d.session;
      if (!s || !["starting", "capturing", "stopping"].includes(s.state)) continue;
      if (s.pid && pidRunsFile(s.pid, s.tmpName)) {
        s.state = "capturing";
        this.live.set(d.device, { adoptedPid: s.pid });
        this.store.task(d.device, "adopt", "ok", `tcpdump pid ${s.pid} still running`);
        this.opts.log.warn(`adopted running tcpdump pid ${s.pid} for ${d.device} after restart`);
      } else {
        this.finishSession(s, "agent-restart");
        this.store.task(d.device, "recover", "ok", "tcpdump was gone; files kept");
      }
    }
    this.store.flush();
  }

  // --- datagram intake ---------------------------------------------------------------------------
  private enqueue(buf: Buffer, peer: RemoteInfo): void {
    this.counters.received++;
    // Bounded queue: a flood costs dropped datagrams, never an unbounded backlog or a blocked loop.
    if (this.queue.length >= (this.opts.queueLimit ?? 1024)) {
      this.counters.queueDrops++;
      return;
    }
    this.queue.push({ buf, peer });
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    // A burst of CAPTUREs spawns a tcpdump per datagram, and each pid must be on disk before any
    // answer leaves. Writing the whole state file per spawn made a 1000-device start O(n²)
    // (measured: 18 s of the agent's 23 s CPU for 500 devices); the batch writes it once, then
    // sends what the batch answered.
    const batch: { pids: boolean; out: (() => void)[] } = (this.batch = { pids: false, out: [] });
    try {
      for (let n = 0; n < 256 && this.queue.length; n++) {
        const { buf, peer } = this.queue.shift()!;
        this.handle(buf, peer);
      }
    } finally {
      this.batch = undefined;
      if (batch.pids) this.store.flush();
      for (const send of batch.out) send();
    }
    if (this.queue.length) setImmediate(() => this.drain());
    else this.draining = false;
  }

  private handle(buf: Buffer, peer: RemoteInfo): void {
    if (this.closed) return;
    if (this.allow && !this.allow.check(peer.address, peer.family === "IPv6" ? "ipv6" : "ipv4")) {
      this.counters.peerDenied++;
      this.noteReject(peer, "peer-not-allowed");
      return;
    }
    const received = Date.now();
    if (this.opts.legacy) {
      const r = parseLegacyRequest(buf);
      if (!r.ok) return this.noteReject(peer, r.code);
      this.dispatch({ mode: "legacy", verb: r.value.verb, device: r.value.device, filename: r.value.filename, keyIndex: 0, peer, received });
      return;
    }
    const r = parseRequest(buf, { keys: this.opts.keys, windowMs: this.opts.windowMs });
    if (!r.ok) {
      if (r.code === "stale" && "request" in r) {
        // Answer so an operator sees the clock skew; do nothing else. A replayed old datagram is
        // stale too, so answers per sender are capped and the log line is one per sender and tick.
        this.counters.stale++;
        const req = r.request;
        let st = this.staleLog.get(peer.address);
        if (!st && this.staleLog.size < MAX_DROP_KEYS) this.staleLog.set(peer.address, (st = { requests: 0, answered: 0, skewMs: 0 }));
        if (st) {
          st.requests++;
          st.skewMs = Date.now() - req.ts;
        }
        if (!st || st.answered >= STALE_ANSWERS_PER_TICK) return;
        st.answered++;
        this.send(
          { mode: "v1", verb: req.verb, device: req.device, id: req.id, keyIndex: r.keyIndex, peer, received },
          400,
          { reason: "stale", msg: `timestamp ${req.ts} is outside the ${this.opts.windowMs} ms window; agent time ${Date.now()}` },
          false,
        );
        return;
      }
      return this.noteReject(peer, r.code);
    }
    const req = r.value;
    const seen = this.replies.get(req.id);
    if (seen) {
      // A retry or a replay of a request id: same answer again, never the work again.
      this.counters.replays++;
      const again = seen.final ?? seen.trying;
      if (!again) return;
      if (seen.resentAt !== undefined && received - seen.resentAt < RESEND_MIN_MS) {
        this.repeatsLimited.set(peer.address, (this.repeatsLimited.get(peer.address) ?? 0) + 1);
        return;
      }
      seen.resentAt = received;
      this.socket.send(again, peer.port, peer.address);
      return;
    }
    this.replies.set(req.id, { expires: Date.now() + 2 * this.opts.windowMs });
    this.dispatch({ mode: "v1", verb: req.verb, device: req.device, filename: req.filename, spec: req.spec, id: req.id, keyIndex: r.keyIndex, peer, received });
  }

  private noteReject(peer: RemoteInfo, code: string): void {
    // Dropped silently (never an oracle or amplifier); logged in aggregate by the tick.
    this.counters.rejected++;
    const k = `${code} from ${formatEndpoint(peer.address, peer.port)}`;
    const n = this.rejectLog.get(k);
    if (n !== undefined || this.rejectLog.size < MAX_DROP_KEYS) this.rejectLog.set(k, (n ?? 0) + 1);
    else this.overflow(code, formatEndpoint(peer.address, peer.port), 1);
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
      d.lastRequest = cmd.verb;
      d.lastResponse = `${code}`;
      // A final answer promises a state (a capture running as pid N, files renamed): write it
      // before the answer leaves, so an agent killed right after answering restarts knowing it.
      // A CAPTURE's 200 promises a running tcpdump, and its pid was written when it was spawned
      // (before it could even say "listening"): that is all a restarted agent needs to adopt it,
      // so the answer does not wait for another write (the file catches up on the next one).
      durable = cmd.verb === "STOP" || cmd.verb === "REGISTER" || (cmd.verb === "CAPTURE" && code !== 200);
    }
    const out = () => {
      // A retry gets the final answer only once it may leave.
      if (entry && code !== 100) entry.final = buf;
      if (!this.closed || code !== 100) this.socket.send(buf, cmd.peer.port, cmd.peer.address, () => undefined);
    };
    // Durable answers share one write of the state file per event-loop turn (a fleet's burst of
    // answers would otherwise write the whole file once per answer).
    if (durable) this.store.afterFlush(out);
    else if (this.batch) this.batch.out.push(out);
    else out();
    if (log && code !== 100) {
      const extra = Object.entries(details)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
      this.opts.log.info(
        `peer=${formatEndpoint(cmd.peer.address, cmd.peer.port)} mode=${cmd.mode} verb=${cmd.verb} device=${cmd.device ?? "-"}` +
          ` code=${code} latency=${Date.now() - cmd.received}ms${cmd.id ? ` id=${cmd.id}` : ""}${extra ? ` ${extra}` : ""}`,
      );
    }
  }

  private dispatch(cmd: Cmd): void {
    this.counters.commands++;
    if (cmd.device && (cmd.verb === "REGISTER" || cmd.verb === "CAPTURE" || cmd.verb === "STOP")) this.activity.set(cmd.device, Date.now());
    const work = async (): Promise<[Code, Details]> => {
      switch (cmd.verb) {
        case "PING":
          return [200, { agent: "server-capture", sessions: String(this.activeCount()) }];
        case "STATUS":
          return [200, this.statusDetails()];
        case "REGISTER":
          // PROTOCOL.md: 100 first (the management server's REST calls take a while); the original never sent one.
          if (cmd.mode === "v1") this.send(cmd, 100);
          return this.tracked(this.register(cmd));
        case "CAPTURE":
          this.send(cmd, 100);
          return this.capture(cmd);
        case "VERIFY":
          this.send(cmd, 100);
          return this.verify(cmd);
        case "STOP":
          // Like the original: an unknown device gets 404 at once, without a 100 Trying first.
          if (!this.store.get(cmd.device!)?.session) return [404, { reason: "no-session", msg: `no capture for ${cmd.device!}` }];
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
  private async register(cmd: Cmd): Promise<[Code, Details]> {
    const device = cmd.device!;
    const r = await (this.opts.registrar ?? noopRegistrar).register(device, { address: cmd.peer.address, port: cmd.peer.port });
    const d = this.store.upsert(device);
    if (!r.ok) {
      this.store.task(device, "register", "failed", r.message);
      return [503, { reason: r.reason, msg: r.message }];
    }
    d.registration = "active";
    d.orchestrator = formatEndpoint(cmd.peer.address, cmd.peer.port);
    this.store.task(device, "register", "ok", d.orchestrator);
    return [200, {}];
  }

  private activeCount(): number {
    return this.store.all().filter((d) => d.session && ["starting", "capturing", "stopping"].includes(d.session.state)).length;
  }

  /**
   * The tcpdump filter for a CAPTURE: `host <device>` without a spec (the original's filter), else the
   * spec compiled to BPF words, still scoped to the device. A spec tcpdump cannot express is a 400.
   */
  private captureProgram(cmd: Cmd): { ok: true; program: BpfProgram; spec?: string } | { ok: false; details: Details } {
    const device = cmd.device!;
    if (cmd.spec === undefined) return { ok: true, program: { expression: ["host", device], text: `host ${device}` } };
    const decoded = decodeSpecWire(cmd.spec);
    if (!decoded.ok) return { ok: false, details: { reason: "bad-spec", field: decoded.field, msg: `${decoded.field || "spec"}: ${decoded.message}` } };
    const compiled = compileBpf(decoded.spec, { host: device });
    if (!compiled.ok) return { ok: false, details: { reason: "spec-unsupported", field: compiled.field, msg: `${compiled.field}: ${compiled.message}` } };
    return { ok: true, program: compiled.program, spec: canonicalSpecJson(decoded.spec) };
  }

  private async capture(cmd: Cmd): Promise<[Code, Details]> {
    const device = cmd.device!;
    const compiled = this.captureProgram(cmd);
    if (!compiled.ok) return [400, compiled.details];
    const { program } = compiled;
    const d = this.store.upsert(device);
    const l = this.live.get(device);
    if (l?.starting) await l.starting.catch(() => undefined);
    const cur = d.session;
    if (cur && (cur.state === "capturing" || cur.state === "starting")) {
      // Idempotent: the running capture is the answer; never a second tcpdump, never a restart —
      // and never silently the wrong filter: a different spec for a running capture is a conflict.
      if ((cur.spec ?? undefined) !== compiled.spec) {
        return [409, { reason: "spec-conflict", msg: `a capture for ${device} is running with filter '${cur.filter.join(" ")}'`, file: cur.tmpName }];
      }
      return [200, { file: cur.tmpName, existing: "1" }];
    }
    if (this.diskLow) return [503, { reason: "disk-low", msg: `less than ${this.opts.minFreeMb} MB free in the capture dir` }];
    if (this.activeCount() >= this.opts.maxSessions) return [503, { reason: "max-sessions", msg: `${this.opts.maxSessions} captures already running` }];

    // A spec's ring replaces the agent's default ring; its other limits the agent enforces itself.
    const ring = program.ring ?? (this.opts.ringSizeMb && this.opts.ringFiles ? { fileMb: this.opts.ringSizeMb, files: this.opts.ringFiles } : undefined);
    const s: SessionRecord = {
      device,
      state: "starting",
      tmpName: tempName(device),
      ring: Boolean(ring),
      iface: this.opts.iface,
      filter: program.expression,
      startedAt: new Date().toISOString(),
    };
    if (compiled.spec !== undefined) {
      s.spec = compiled.spec;
      const limits: NonNullable<SessionRecord["limits"]> = {};
      if (program.durationMs !== undefined) limits.durationMs = program.durationMs;
      if (program.maxBytes !== undefined) limits.maxBytes = program.maxBytes;
      if (program.packets !== undefined) limits.packets = program.packets;
      if (Object.keys(limits).length > 0) s.limits = limits;
    }
    d.session = s;
    if (d.registration !== "active") d.orchestrator = formatEndpoint(cmd.peer.address, cmd.peer.port);
    const entry: Live = {};
    this.live.set(device, entry);
    let failure: string | undefined;
    entry.starting = (async () => {
      try {
        const proc = await TcpdumpProcess.start({
          ...(this.opts.tcpdumpBinary ? { binary: this.opts.tcpdumpBinary } : {}),
          iface: s.iface,
          outFile: join(this.incoming, s.tmpName),
          filter: s.filter,
          ...(ring ? { ringSizeMb: ring.fileMb, ringFiles: ring.files } : {}),
          ...(program.snaplen !== undefined ? { snaplen: program.snaplen } : {}),
          ...(program.packets !== undefined ? { packets: program.packets } : {}),
          ...(program.bufferKiB !== undefined ? { bufferKiB: program.bufferKiB } : {}),
          ...(program.direction ? { direction: program.direction } : {}),
          // Debian's tcpdump drops to "tcpdump" even without -Z; say "root" explicitly when it must not
          // (as root; without root -Z cannot work and there is nothing to drop).
          ...(this.dropTo ? { user: this.dropTo } : isRoot() ? { user: "root" } : {}),
          // On disk before anything else happens: an agent killed from here on (SIGKILL, OOM) finds
          // this tcpdump in its state file on restart and adopts or stops it, never an orphan.
          onSpawn: (pid) => {
            s.pid = pid;
            if (this.batch) this.batch.pids = true;
            else this.store.flush();
          },
        });
        entry.proc = proc;
        s.pid = proc.pid;
        s.state = "capturing";
        proc.onExit(() => {
          // tcpdump died on its own (interface gone, disk error): keep what it wrote.
          if (s.state === "capturing" && !entry.stopping) {
            // `-c <packets>` ends tcpdump normally: that is the spec's limit, not a failure.
            const done = s.limits?.packets !== undefined && proc.child.exitCode === 0;
            if (done) {
              const r = parseSummary(proc.stderrText);
              if (r.packets !== undefined) s.packets = r.packets;
              this.finishSession(s, "spec-limit");
              return;
            }
            this.finishSession(s, "tcpdump-exited", proc.stderrText);
            this.opts.log.warn(`tcpdump for ${device} exited on its own: ${proc.stderrText.trim().slice(-200)}`);
          }
        });
      } catch (e) {
        failure = (e as Error).message;
        s.state = "failed";
        s.error = failure;
        this.finishSession(s, "tcpdump-exited");
      }
    })();
    await entry.starting;
    entry.starting = undefined;
    if (failure) {
      this.store.task(device, "capture", "failed", failure);
      return [503, { reason: "tcpdump-failed", msg: failure }];
    }
    this.store.task(device, "capture", "ok", compiled.spec ? `${s.tmpName} filter=${program.text}` : s.tmpName);
    return [200, { file: s.tmpName, pid: String(s.pid), ...(compiled.spec ? { filter: program.text } : {}) }];
  }

  private async verify(cmd: Cmd): Promise<[Code, Details]> {
    const r = await verifyPath(cmd.device!, this.opts.verify);
    this.store.task(cmd.device!, "verify", r.ok ? "ok" : "failed", JSON.stringify(r));
    const details = { tcp: `${r.tcpAnswered}/${r.tcpTries}`, snmp: `${r.udpAnswers}/${r.udpSent}` };
    return [r.ok ? 200 : 430, r.ok ? details : { ...details, reason: "no-answer", msg: "no TCP/443 or SNMP answer from the device" }];
  }

  private async stop(cmd: Cmd): Promise<[Code, Details]> {
    const device = cmd.device!;
    const filename = cmd.filename!;
    const d = this.store.get(device);
    const l = this.live.get(device);
    if (l?.starting) await l.starting.catch(() => undefined);
    const s = d?.session;
    if (!d || !s) return [404, { reason: "no-session", msg: `no capture for ${device}` }];
    if (s.state === "collected") {
      if (s.forFile === filename) return [200, this.fileDetails(s)];
      return [409, { reason: "already-stopped", msg: `capture already renamed for ${s.forFile ?? "?"}`, ...this.fileDetails(s) }];
    }
    if (s.state === "failed" && !s.files?.length && !this.tempFiles(s, this.opts.dir).length) {
      return [404, { reason: "no-session", msg: `capture for ${device} failed to start: ${s.error ?? ""}` }];
    }
    await this.stopSession(device, "request");
    const files = this.claim(s, filename);
    this.store.task(device, "stop", "ok", files.map((f) => f.name).join(","));
    // The device's capture is over: its forwarding rule goes too (after the answer, never delaying it).
    setImmediate(() => void this.unregister(device, "capture stopped"));
    return [200, this.fileDetails(s)];
  }

  private fileDetails(s: SessionRecord): Details {
    const files = s.files ?? [];
    return {
      file: files[0]?.name ?? "",
      files: files.map((f) => f.name).join(","),
      bytes: String(files.reduce((n, f) => n + f.bytes, 0)),
      ...(s.packets !== undefined ? { packets: String(s.packets) } : {}),
      ...(s.stopReason && s.stopReason !== "request" ? { stopped: s.stopReason } : {}),
    };
  }

  // --- session lifecycle -------------------------------------------------------------------------
  /** Stop tcpdump (if running) and move its files into the capture dir under their temp names. */
  private async stopSession(device: string, reason: StopReason): Promise<void> {
    const d = this.store.get(device);
    const s = d?.session;
    const l = this.live.get(device);
    if (!s || !l) return;
    if (l.stopping) return l.stopping;
    if (s.state !== "capturing") return;
    s.state = "stopping";
    l.stopping = (async () => {
      if (l.proc) {
        const d = await l.proc.drain();
        if (!d.drained) this.opts.log.warn(`tcpdump for ${device} had not caught up before the stop (captured ${d.captured ?? "?"} of ${d.received ?? "?"} received)`);
        const r = await l.proc.stop();
        if (r.packets !== undefined) s.packets = r.packets;
        if (r.escalated) this.opts.log.warn(`tcpdump for ${device} ignored SIGINT; escalated`);
        // The kernel ring overflowed while tcpdump was descheduled: those packets are in no file.
        if (r.droppedByKernel) this.opts.log.warn(`tcpdump for ${device}: ${r.droppedByKernel} packet(s) dropped by kernel (raise the capture buffer: limits.buffer)`);
      } else if (l.adoptedPid) {
        await stopPid(l.adoptedPid);
      }
      this.finishSession(s, reason);
    })();
    return l.stopping;
  }

  private finishSession(s: SessionRecord, reason: StopReason, _stderr?: string): void {
    if (s.state !== "failed") s.state = "stopped";
    s.stopReason ??= reason;
    s.stoppedAt = new Date().toISOString();
    delete s.pid;
    for (const f of this.tempFiles(s, this.incoming)) {
      renameSync(join(this.incoming, f), join(this.opts.dir, unusedName(this.opts.dir, f)));
    }
    this.store.save();
  }

  /** Bytes the session's temp files hold so far. */
  private tempBytes(s: SessionRecord): number {
    let n = 0;
    for (const f of this.tempFiles(s, this.incoming)) {
      try {
        n += statSync(join(this.incoming, f)).size;
      } catch {
        /* rotated away meanwhile */
      }
    }
    return n;
  }

  /** Temp files of a session in `dir`: the file itself, or ring parts name0, name1, ... */
  private tempFiles(s: SessionRecord, dir: string): string[] {
    // Without a ring tcpdump writes exactly the one name: no listing of a dir that holds every
    // capture so far (a listing per stop made a 1000-device stop O(n²)).
    if (s.ring === false) return existsSync(join(dir, s.tmpName)) ? [s.tmpName] : [];
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f === s.tmpName || (f.startsWith(s.tmpName) && /^\d+$/.test(f.slice(s.tmpName.length))))
      .sort((a, b) => ringIndex(a, s.tmpName) - ringIndex(b, s.tmpName));
  }

  /** Rename a stopped session's files to names derived from the device file name. */
  private claim(s: SessionRecord, forFile: string): FileInfo[] {
    const out: FileInfo[] = [];
    const taken = new Set<string>();
    for (const f of this.tempFiles(s, this.opts.dir)) {
      const name = unusedName(this.opts.dir, finalName(forFile, ringIndex(f, s.tmpName)), taken);
      taken.add(name);
      renameSync(join(this.opts.dir, f), join(this.opts.dir, name));
      out.push({ name, bytes: statSync(join(this.opts.dir, name)).size });
    }
    s.files = out;
    s.forFile = forFile;
    s.state = "collected";
    this.live.delete(s.device);
    this.store.save();
    return out;
  }

  private statusDetails(): Details {
    const out: Details = {};
    const active = this.store.all().filter((d) => d.session);
    out.sessions = String(active.length);
    let size = 120;
    active.forEach((d, i) => {
      const s = d.session!;
      const v = `${d.device},${s.state},${Math.round((Date.now() - Date.parse(s.startedAt)) / 1000)}`;
      size += v.length + 12;
      if (size < 1000) out[`s${i}`] = v;
    });
    return out;
  }

  // --- watchdog ----------------------------------------------------------------------------------
  private onTick(): void {
    const now = Date.now();
    for (const [id, e] of this.replies) if (e.expires < now) this.replies.delete(id);
    this.expireRegistrations(now);
    for (const d of this.store.all()) {
      const s = d.session;
      if (s?.state === "capturing" && now - Date.parse(s.startedAt) > this.opts.maxDurationMs) {
        this.opts.log.warn(`capture for ${d.device} reached max duration; stopping it (files kept)`);
        this.store.task(d.device, "watchdog", "stopped", "max-duration");
        void this.stopSession(d.device, "max-duration");
      } else if (s?.state === "capturing" && s.limits) {
        const over =
          s.limits.durationMs !== undefined && now - Date.parse(s.startedAt) >= s.limits.durationMs
            ? "duration"
            : s.limits.maxBytes !== undefined && this.tempBytes(s) >= s.limits.maxBytes
              ? "size"
              : undefined;
        if (over) {
          this.opts.log.info(`capture for ${d.device} reached its spec's ${over} limit; stopping it (files kept)`);
          this.store.task(d.device, "watchdog", "stopped", `spec-${over}`);
          void this.stopSession(d.device, "spec-limit");
        }
      }
    }
    let free = Infinity;
    try {
      free = freeMegabytes(this.opts.dir);
    } catch {
      /* dir vanished: the next write will say so */
    }
    const low = free < this.opts.minFreeMb;
    if (low && !this.diskLow) {
      this.opts.log.error(`free disk ${free.toFixed(1)} MB < ${this.opts.minFreeMb} MB: stopping all captures, refusing new ones`);
      for (const d of this.store.all()) if (d.session?.state === "capturing") void this.stopSession(d.device, "disk-low");
    } else if (!low && this.diskLow) {
      this.opts.log.info(`free disk back to ${free.toFixed(1)} MB; accepting captures again`);
    }
    this.diskLow = low;
    this.logDrops();
  }

  private overflow(code: string, sender: string, n: number): void {
    const o = this.rejectOverflow;
    o.datagrams += n;
    if (o.senders.size < MAX_DROP_KEYS) o.senders.add(sender);
    o.codes.set(code, (o.codes.get(code) ?? 0) + n);
  }

  /** What the intake refused since the last tick, in a bounded number of lines. */
  private logDrops(): void {
    const log = this.opts.log;
    if (this.rejectLog.size) {
      const byCount = [...this.rejectLog].sort((a, b) => b[1] - a[1]);
      for (const [k, n] of byCount.slice(0, MAX_DROP_LINES)) log.warn(`dropped ${n} datagram(s): ${k}`);
      for (const [k, n] of byCount.slice(MAX_DROP_LINES)) this.overflow(k.slice(0, k.indexOf(" from ")), k.slice(k.indexOf(" from ") + 6), n);
      this.rejectLog.clear();
    }
    const o = this.rejectOverflow;
    if (o.datagrams) {
      const codes = [...o.codes].map(([c, n]) => `${c} ${n}`).join(", ");
      log.warn(`dropped ${o.datagrams} more datagram(s) from ${o.senders.size}${o.senders.size >= MAX_DROP_KEYS ? "+" : ""} other sender(s): ${codes}`);
      this.rejectOverflow = { datagrams: 0, senders: new Set(), codes: new Map() };
    }
    for (const [addr, st] of this.staleLog) {
      log.warn(`stale: ${st.requests} request(s) from ${addr} outside the ${this.opts.windowMs} ms window (skew ${st.skewMs} ms), ${st.answered} answered; check the clocks (NTP)`);
    }
    this.staleLog.clear();
    for (const [addr, n] of this.repeatsLimited) log.warn(`not re-answered: ${n} repeat(s) of answered request ids from ${addr} (more often than every ${RESEND_MIN_MS} ms: a replay?)`);
    this.repeatsLimited.clear();
    const queueDrops = this.counters.queueDrops - this.queueDropsLogged;
    if (queueDrops) {
      log.warn(`intake queue full: ${queueDrops} datagram(s) dropped (${this.counters.queueDrops} so far)`);
      this.queueDropsLogged = this.counters.queueDrops;
    }
  }

  // --- management-server registration ------------------------------------------------------------
  /** Undo REGISTER's side effect (the forwarding rule). A failure keeps the registration for a later try. */
  private unregister(device: string, why: string): Promise<void> {
    const busy = this.unregistering.get(device);
    if (busy) return busy;
    const d = this.store.get(device);
    if (!d || d.registration !== "active") return Promise.resolve();
    const p = (this.opts.registrar ?? noopRegistrar)
      .unregister(device)
      .then(
        () => {
          d.registration = "not active";
          this.store.task(device, "unregister", "ok", why);
          this.opts.log.info(`unregistered ${device} (${why})`);
        },
        (e: Error) => {
          // Retried after another idle period, or at shutdown.
          this.activity.set(device, Date.now());
          this.store.task(device, "unregister", "failed", e.message);
          this.opts.log.warn(`unregister ${device} (${why}) failed: ${e.message}`);
        },
      )
      .finally(() => {
        this.unregistering.delete(device);
        this.store.save();
      });
    this.unregistering.set(device, p);
    return p;
  }

  /** Registrations idle (no REGISTER/CAPTURE/STOP, no capture running) for registerIdleMs are undone. */
  private expireRegistrations(now: number): void {
    const idleMs = this.opts.registerIdleMs ?? 86_400_000;
    for (const d of this.store.all()) {
      if (d.registration !== "active" || (d.session && ["starting", "capturing", "stopping"].includes(d.session.state))) continue;
      // A registration read back from the state file counts from this start.
      const last = this.activity.get(d.device) ?? (this.activity.set(d.device, now), now);
      if (now - last >= idleMs) void this.unregister(d.device, `idle for ${Math.round(idleMs / 1000)} s`);
    }
  }

  private tracked<T>(p: Promise<T>): Promise<T> {
    this.registering.add(p);
    const done = () => void this.registering.delete(p);
    p.then(done, done);
    return p;
  }

  /** At shutdown: every registration goes, bounded so an unreachable management server cannot hold the exit. */
  private async unregisterAll(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => (timer = setTimeout(r, 15_000)));
    const all = (async () => {
      await Promise.allSettled([...this.registering]);
      const active = this.store.all().filter((d) => d.registration === "active" || this.unregistering.has(d.device));
      await Promise.all(active.map((d) => this.unregister(d.device, "agent shutdown")));
    })();
    await Promise.race([all, bound]);
    clearTimeout(timer);
  }

  /** Stop every tcpdump cleanly, keep their files, write the state file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.tick);
    const waits = [...this.live.values()].map((l) => l.starting?.catch(() => undefined));
    await Promise.all(waits);
    await Promise.all(this.store.all().map((d) => this.stopSession(d.device, "shutdown")));
    await this.unregisterAll();
    this.store.flush();
    await new Promise<void>((r) => this.socket.close(() => r()));
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function searchableBy(dir: string, uid: number, gid: number): boolean {
  for (let d = dir; ; d = dirname(d)) {
    const st = statSync(d);
    const ok = st.uid === uid ? st.mode & 0o100 : st.gid === gid ? st.mode & 0o010 : st.mode & 0o001;
    if (!ok) return false;
    if (dirname(d) === d) return true;
  }
}

function ringIndex(file: string, tmpName: string): number {
  const tail = file.slice(tmpName.length);
  return /^\d+$/.test(tail) ? Number(tail) : 0;
}

function addCidr(list: BlockList, cidr: string): void {
  const [net, bits] = cidr.split("/");
  const type = isIPv6(net ?? "") ? "ipv6" : "ipv4";
  if (bits === undefined) list.addAddress(net!, type);
  else list.addSubnet(net!, Number(bits), type);
}

export function isValidCidr(cidr: string): boolean {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(cidr);
  if (!m) return false;
  const v6 = isIPv6(m[1]!);
  const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(m[1]!);
  if (!v4 && !v6) return false;
  return m[2] === undefined || Number(m[2]) <= (v6 ? 128 : 32);
}

/** Is `pid` a tcpdump writing `tmpName`? Guards against pid reuse before adopting it. */
function pidRunsFile(pid: number, tmpName: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return argv.some((a) => a.endsWith(tmpName)) && argv.some((a) => a.endsWith("tcpdump"));
  } catch {
    return false;
  }
}
