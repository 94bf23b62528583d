// The capture session table: one tcpdump per device, from CAPTURE (spawn, or the running one again)
// to STOP (tcpdump stopped, its files renamed for the device's capture), kept in the state file so a
// restarted agent adopts what still runs and keeps the files of what does not. Never deletes data.
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { type BpfProgram, type Code, canonicalSpecJson, compileBpf, decodeSpecWire } from "@capsync/protocol";
import { type Logger, monotonicMs } from "@capsync/common";
import { finalName, tempName, unusedName } from "./naming.js";
import type { DeviceRecord, FileInfo, SessionRecord, StateStore, StopReason } from "./state.js";
import { lookupUser } from "./system.js";
import { ringOrder } from "./ring.js";
import { TcpdumpProcess, lifetimeFor, parseSummary, stopAdopted } from "./tcpdump.js";
import { foundRecord, keepStrayFiles, ownTcpdumps, sessionStderr } from "./recovery.js";
import { removeStderrFile } from "./stderr-file.js";
import { monotonicStart, sessionAgeMs } from "./clock.js";
import { type Owner, ownedBy, sameOwner } from "./owners.js";
import { type SharedHandle, type SharedSession, SharedCaptures } from "./shared-capture.js";
import { type FoundSpool, findSharedSpools, reapSharedSpools } from "./shared-recovery.js";

/** An answer's details (key=value pairs on the wire). */
export type Details = Record<string, string>;
/** A verb's final answer: code and details. */
export type Outcome = [Code, Details];

export interface SessionOptions {
  dir: string;
  iface: string;
  ringSizeMb?: number;
  ringFiles?: number;
  /** tcpdump drops to this user after opening the device (-Z); undefined keeps root. */
  tcpdumpUser?: string;
  tcpdumpBinary?: string;
  /** --max-duration: also each tcpdump's own bound (lifetimeFor), for when no agent is left to stop it. */
  maxDurationMs?: number;
  /** Monotonic ms (the agent's clock): a session's age. */
  now?: () => number;
  /** shared: one tcpdump per interface demultiplexed into the devices' files (shared-capture.ts). */
  captureMode?: "shared" | "per-device";
  log: Logger;
}

/** What CAPTURE asks for: the tcpdump program and, with a spec, its canonical JSON. */
export type CaptureProgram = { ok: true; program: BpfProgram; spec?: string } | { ok: false; details: Details };

interface Live {
  proc?: TcpdumpProcess;
  shared?: SharedHandle;
  adoptedPid?: number;
  starting?: Promise<void>;
  stopping?: Promise<void>;
}

const INCOMING = ".incoming";

/** A session whose tcpdump is, or may be, running. */
export function isActive(d: DeviceRecord): boolean {
  return d.session !== undefined && ACTIVE_STATES.has(d.session.state);
}
/** A Set made once: isActive runs over every device per CAPTURE (the --max-sessions count). */
const ACTIVE_STATES: ReadonlySet<string> = new Set(["starting", "capturing", "stopping"]);

/**
 * The tcpdump filter for a CAPTURE: `host <device>` without a spec (the original's filter), else the
 * spec compiled to BPF words, still scoped to the device. A spec tcpdump cannot express is a 400.
 */
export function captureProgram(device: string, spec: string | undefined): CaptureProgram {
  if (spec === undefined) return { ok: true, program: { expression: ["host", device], text: `host ${device}` } };
  const decoded = decodeSpecWire(spec);
  if (!decoded.ok) return { ok: false, details: { reason: "bad-spec", field: decoded.field, msg: `${decoded.field || "spec"}: ${decoded.message}` } };
  const compiled = compileBpf(decoded.spec, { host: device });
  if (!compiled.ok) return { ok: false, details: { reason: "spec-unsupported", field: compiled.field, msg: `${compiled.field}: ${compiled.message}` } };
  return { ok: true, program: compiled.program, spec: canonicalSpecJson(decoded.spec) };
}

export class Sessions {
  private readonly incoming: string;
  private readonly live = new Map<string, Live>();
  /** User tcpdump drops to (-Z), when that works for this capture dir. */
  private dropTo: string | undefined;
  private shared: SharedCaptures | undefined;

  /** `pidSpawned` makes a new tcpdump's pid durable (the agent group-commits those writes). */
  constructor(
    private readonly store: StateStore,
    private readonly opts: SessionOptions,
    private readonly pidSpawned: (device: string) => void,
  ) {
    this.incoming = join(opts.dir, INCOMING);
  }

  prepareDirs(): void {
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
    // Ring files are opened after tcpdump drops privileges; it runs in this dir and names them
    // relative to it, so the dir's owner is all it needs, whatever the modes of its parents.
    this.dropTo = user;
  }

  /** The shared captures (--capture-mode shared), made once the dirs and the -Z user are known. */
  private sharedCaptures(): SharedCaptures | undefined {
    if (this.opts.captureMode !== "shared") return undefined;
    return (this.shared ??= new SharedCaptures({
      incoming: this.incoming,
      iface: this.opts.iface,
      log: this.opts.log,
      ...(this.opts.tcpdumpBinary ? { binary: this.opts.tcpdumpBinary } : {}),
      ...(this.dropTo ? { user: this.dropTo } : isRoot() ? { user: "root" } : {}),
    }));
  }

  /** After a restart: adopt tcpdumps that are still running, keep the files of the rest. */
  recover(): void {
    const spools = findSharedSpools(this.incoming);
    const adopting = new Map<FoundSpool, DeviceRecord[]>();
    const loaded = this.store.load();
    const bad = this.store.loadProblem;
    if (bad) {
      this.opts.log.error(
        `state file ${this.store.path} is ${bad.problem}${bad.keptAs ? `; kept as ${bad.keptAs}` : ""}: recovering captures from the process table (tcpdumps running in ${this.incoming})`,
      );
    }
    for (const d of loaded) {
      const s = d.session;
      if (!s || !isActive(d)) continue;
      const spool = s.pid && this.opts.captureMode === "shared" ? spools.find((f) => f.pid === s.pid) : undefined;
      if (spool) {
        adopting.set(spool, [...(adopting.get(spool) ?? []), d]);
      } else if (s.pid && pidRunsFile(s.pid, s.tmpName)) {
        s.state = "capturing";
        this.live.set(d.device, { adoptedPid: s.pid });
        this.store.task(d.device, "adopt", "ok", `tcpdump pid ${s.pid} still running`);
        this.opts.log.warn(`adopted running tcpdump pid ${s.pid} for ${d.device} after restart`);
      } else {
        this.finishSession(s, "agent-restart");
        this.store.task(d.device, "recover", "ok", "tcpdump was gone; files kept");
      }
    }
    reapSharedSpools(this.incoming, spools, new Set([...adopting.keys()].map((f) => f.base)), this.opts.log);
    for (const [spool, ds] of adopting) this.adoptShared(spool, ds);
    // tcpdumps no record names (a torn or lost state file): found by their marker, adopted.
    const running = ownTcpdumps(this.incoming);
    for (const f of running) {
      const d = this.store.upsert(f.device);
      if (d.session && isActive(d)) continue;
      d.session = foundRecord(f);
      this.live.set(f.device, { adoptedPid: f.pid });
      this.store.task(f.device, "adopt", "ok", `tcpdump pid ${f.pid} found running (${f.tmpName}); no state record`);
      this.opts.log.warn(`adopted running tcpdump pid ${f.pid} for ${f.device} after restart (found in the process table by its output ${f.tmpName}; the state file did not name it)`);
    }
    const known = new Set([...running.map((f) => f.tmpName), ...this.store.all().flatMap((d) => (d.session && isActive(d) ? [d.session.tmpName] : []))]);
    keepStrayFiles(this.opts.dir, this.incoming, known, this.opts.log);
    this.store.flush();
  }

  /** Sessions of a shared tcpdump an earlier agent ran: its spool read on into their files (shared-capture.ts). */
  private adoptShared(spool: FoundSpool, ds: DeviceRecord[]): void {
    const parts = ds.map((d) => {
      const s = d.session!;
      s.state = "starting";
      // The spec's own ring if it had one (the record keeps its canonical JSON), else the agent's.
      const compiled = s.spec === undefined ? undefined : captureProgram(d.device, Buffer.from(s.spec).toString("base64url"));
      const ring = (compiled?.ok ? compiled.program.ring : undefined) ?? (s.ring && this.opts.ringSizeMb && this.opts.ringFiles ? { fileMb: this.opts.ringSizeMb, files: this.opts.ringFiles } : undefined);
      const entry: Live = {};
      this.live.set(d.device, entry);
      const session: SharedSession = {
        device: d.device,
        tmpName: s.tmpName,
        expression: s.filter,
        ...(ring ? { ring } : {}),
        ...(s.limits?.packets !== undefined ? { packets: s.limits.packets } : {}),
        onEnd: (reason, packets) => {
          if (s.state !== "capturing" || entry.stopping) return;
          s.packets = packets;
          this.finishSession(s, reason);
        },
      };
      return { s, entry, session };
    });
    const adopted = this.sharedCaptures()!.adopt(spool, parts.map((p) => p.session));
    for (const { s, entry } of parts) {
      entry.starting = adopted
        .then(
          (handles) => {
            const h = handles.get(s.device);
            if (!h) return this.finishSession(s, "agent-restart");
            entry.shared = h;
            s.state = "capturing";
            this.store.task(s.device, "adopt", "ok", `shared tcpdump pid ${spool.pid} still running`);
          },
          () => this.finishSession(s, "agent-restart"),
        )
        .finally(() => {
          entry.starting = undefined;
        });
    }
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : monotonicMs();
  }

  activeCount(): number {
    // Per CAPTURE (--max-sessions): a walk without copying the table.
    let n = 0;
    for (const d of this.store.values()) if (isActive(d)) n++;
    return n;
  }

  /**
   * CAPTURE with a compiled program: the running capture again (same spec), or a new tcpdump once
   * `refuse` (the guards, asked only then) has no objection. `orchestrator` is the requester's endpoint.
   */
  async capture(device: string, compiled: CaptureProgram & { ok: true }, orchestrator: string, refuse: () => Outcome | undefined, owner?: Owner): Promise<Outcome> {
    const { program } = compiled;
    const d = this.store.upsert(device);
    const l = this.live.get(device);
    if (l?.starting) await l.starting.catch(() => undefined);
    const cur = d.session;
    if (cur && (cur.state === "capturing" || cur.state === "starting")) {
      // Another orchestrator's capture is not this one's to share, nor to stop later (owners.ts).
      if (cur.owner && owner && !sameOwner(cur.owner, owner)) return [409, ownedBy(cur, device)];
      // Idempotent: the running capture is the answer; never a second tcpdump, never a restart —
      // and never silently the wrong filter: a different spec for a running capture is a conflict.
      if ((cur.spec ?? undefined) !== compiled.spec) {
        return [409, { reason: "spec-conflict", msg: `a capture for ${device} is running with filter '${cur.filter.join(" ")}'`, file: cur.tmpName }];
      }
      return [200, { file: cur.tmpName, existing: "1" }];
    }
    const refused = refuse();
    if (refused) return refused;

    // A spec's ring replaces the agent's default ring; its other limits the agent enforces itself.
    const ring = program.ring ?? (this.opts.ringSizeMb && this.opts.ringFiles ? { fileMb: this.opts.ringSizeMb, files: this.opts.ringFiles } : undefined);
    const s: SessionRecord = {
      device,
      state: "starting",
      tmpName: tempName(device),
      ring: Boolean(ring),
      ...(ring ? { ringMb: ring.fileMb * ring.files } : {}),
      iface: this.opts.iface,
      filter: program.expression,
      startedAt: new Date().toISOString(),
      ...monotonicStart(this.now()),
      ...(owner ? { owner } : {}),
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
    if (d.registration !== "active") d.orchestrator = orchestrator;
    const entry: Live = {};
    this.live.set(device, entry);
    let failure: string | undefined;
    entry.starting = (async () => {
      try {
        // Per-device mode must not await here: the tcpdump is spawned (and its pid made durable) in the
        // same turn as the CAPTURE, before its 100 Trying leaves.
        const sharedCaps = this.sharedCaptures();
        const shared = sharedCaps && (await sharedCaps.attachProgram(s, program, ring, (reason, packets) => {
          if (s.state !== "capturing" || entry.stopping) return;
          s.packets = packets;
          this.finishSession(s, reason);
        }));
        if (shared) {
          entry.shared = shared;
          s.pid = shared.pid;
          s.state = "capturing";
          // The coalesced write, not one write of the whole file per CAPTURE (a fleet's start would be
          // quadratic): a restarted agent adopts the session by the shared tcpdump's pid once it is
          // written; one killed before that ends the session as agent-restart, its files kept.
          this.store.save(device);
          return;
        }
        const proc = await TcpdumpProcess.start({
          ...(this.opts.tcpdumpBinary ? { binary: this.opts.tcpdumpBinary } : {}),
          iface: s.iface,
          outFile: s.tmpName,
          cwd: this.incoming,
          filter: s.filter,
          ...(ring ? { ringSizeMb: ring.fileMb, ringFiles: ring.files } : {}),
          ...(program.snaplen !== undefined ? { snaplen: program.snaplen } : {}),
          ...(program.packets !== undefined ? { packets: program.packets } : {}),
          ...(program.bufferKiB !== undefined ? { bufferKiB: program.bufferKiB } : {}),
          ...(program.direction ? { direction: program.direction } : {}),
          ...optional("lifetimeMs", lifetimeFor(Math.min(this.opts.maxDurationMs ?? Infinity, program.durationMs ?? Infinity))),
          // Debian's tcpdump drops to "tcpdump" even without -Z; say "root" explicitly when it must not
          // (as root; without root -Z cannot work and there is nothing to drop).
          ...(this.dropTo ? { user: this.dropTo } : isRoot() ? { user: "root" } : {}),
          // On disk before anything else happens: an agent killed from here on (SIGKILL, OOM) finds
          // this tcpdump in its state file on restart and adopts or stops it, never an orphan.
          onSpawn: (pid) => {
            s.pid = pid;
            this.pidSpawned(device);
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
            this.finishSession(s, "tcpdump-exited");
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

  /** STOP: tcpdump stopped and its files renamed for `filename`; `collected` runs once they are. */
  async stop(device: string, filename: string, collected: () => void, owner?: Owner): Promise<Outcome> {
    const d = this.store.get(device);
    const l = this.live.get(device);
    if (l?.starting) await l.starting.catch(() => undefined);
    const s = d?.session;
    if (!d || !s) return [404, { reason: "no-session", msg: `no capture for ${device}` }];
    if (s.owner && owner && !sameOwner(s.owner, owner)) return [409, ownedBy(s, device)];
    if (s.state === "collected") {
      if (s.forFile === filename) return [200, fileDetails(s)];
      return [409, { reason: "already-stopped", msg: `capture already renamed for ${s.forFile ?? "?"}`, ...fileDetails(s) }];
    }
    if (s.state === "failed" && !s.files?.length && !this.tempFiles(s, this.opts.dir).length) {
      return [404, { reason: "no-session", msg: `capture for ${device} failed to start: ${s.error ?? ""}` }];
    }
    await this.stopSession(device, "request");
    const files = this.claim(s, filename);
    this.store.task(device, "stop", "ok", files.map((f) => f.name).join(","));
    collected();
    return [200, fileDetails(s)];
  }

  /** Stop tcpdump (if running) and move its files into the capture dir under their temp names. */
  async stopSession(device: string, reason: StopReason): Promise<void> {
    const d = this.store.get(device);
    const s = d?.session;
    const l = this.live.get(device);
    if (!s || !l) return;
    if (l.stopping) return l.stopping;
    if (s.state !== "capturing") return;
    s.state = "stopping";
    l.stopping = (async () => {
      if (l.shared) {
        s.packets = (await l.shared.stop()).packets;
      } else if (l.proc) {
        // Disk low: every byte more is the problem, the last queued packets are not worth it.
        const d = reason === "disk-low" ? { drained: true } : await l.proc.drain();
        if (!d.drained) this.opts.log.warn(`tcpdump for ${device} had not caught up before the stop (captured ${d.captured ?? "?"} of ${d.received ?? "?"} received)`);
        const r = await l.proc.stop();
        if (r.packets !== undefined) s.packets = r.packets;
        if (r.escalated) this.opts.log.warn(`tcpdump for ${device} ignored SIGINT; escalated`);
        // The kernel ring overflowed while tcpdump was descheduled: those packets are in no file.
        if (r.droppedByKernel) this.opts.log.warn(`tcpdump for ${device}: ${r.droppedByKernel} packet(s) dropped by kernel (raise the capture buffer: limits.buffer)`);
      } else if (l.adoptedPid) {
        const r = await stopAdopted(l.adoptedPid, sessionStderr(this.incoming, s.tmpName));
        if (r.packets !== undefined) s.packets = r.packets;
      }
      this.finishSession(s, reason);
    })();
    return l.stopping;
  }

  /** At shutdown: wait for tcpdumps still starting, then stop every one (files kept). */
  async stopAll(): Promise<void> {
    const waits = [...this.live.values()].map((l) => l.starting?.catch(() => undefined));
    await Promise.all(waits);
    await Promise.all(this.store.all().map((d) => this.stopSession(d.device, "shutdown")));
  }

  /** Bytes the session's temp files hold so far. */
  tempBytes(s: SessionRecord): number {
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

  /** STATUS: each session as `device,state,seconds`, as many as fit in one datagram. */
  statusDetails(): Details {
    const out: Details = {};
    const active = [...this.store.values()].filter((d) => d.session);
    out.sessions = String(active.length);
    let size = 120;
    active.forEach((d, i) => {
      const s = d.session!;
      const v = `${d.device},${s.state},${Math.round(sessionAgeMs(s, this.now()) / 1000)}`;
      size += v.length + 12;
      if (size < 1000) out[`s${i}`] = v;
    });
    return out;
  }

  private finishSession(s: SessionRecord, reason: StopReason): void {
    if (s.state !== "failed") s.state = "stopped";
    s.stopReason ??= reason;
    s.stoppedAt = new Date().toISOString();
    delete s.pid;
    removeStderrFile(sessionStderr(this.incoming, s.tmpName));
    for (const f of this.tempFiles(s, this.incoming)) {
      renameSync(join(this.incoming, f), join(this.opts.dir, unusedName(this.opts.dir, f)));
    }
    this.store.save(s.device);
  }

  /** Temp files of a session in `dir`: the file itself, or ring parts name0, name1, ... oldest first (ring.ts). */
  private tempFiles(s: SessionRecord, dir: string): string[] {
    // Without a ring tcpdump writes exactly the one name: no listing of a dir that holds every
    // capture so far (a listing per stop would make a fleet's stop quadratic).
    if (s.ring === false) return existsSync(join(dir, s.tmpName)) ? [s.tmpName] : [];
    // A ring has at most 10 slots (--ring-files and a spec's ringFiles: 2..10), which tcpdump names
    // with one digit: ten probes, not a listing of a dir that holds a whole fleet's files.
    // tcpdump fills the slots in order (0, 1, ...) before it wraps: the first missing slot ends them.
    const parts = existsSync(join(dir, s.tmpName)) ? [s.tmpName] : [];
    for (let i = 0; i < 10 && existsSync(join(dir, `${s.tmpName}${i}`)); i++) parts.push(`${s.tmpName}${i}`);
    return ringOrder(dir, parts);
  }

  /** Rename a stopped session's files to names derived from the device file name. */
  private claim(s: SessionRecord, forFile: string): FileInfo[] {
    const out: FileInfo[] = [];
    const taken = new Set<string>();
    // Numbered in time order (-0 the oldest), whatever ring slot tcpdump wrote each into.
    for (const [i, f] of this.tempFiles(s, this.opts.dir).entries()) {
      const name = unusedName(this.opts.dir, finalName(forFile, i), taken);
      taken.add(name);
      renameSync(join(this.opts.dir, f), join(this.opts.dir, name));
      out.push({ name, bytes: statSync(join(this.opts.dir, name)).size });
    }
    s.files = out;
    s.forFile = forFile;
    s.state = "collected";
    this.live.delete(s.device);
    this.store.save(s.device);
    return out;
  }
}

function fileDetails(s: SessionRecord): Details {
  const files = s.files ?? [];
  return {
    file: files[0]?.name ?? "",
    files: files.map((f) => f.name).join(","),
    bytes: String(files.reduce((n, f) => n + f.bytes, 0)),
    ...(s.packets !== undefined ? { packets: String(s.packets) } : {}),
    ...(s.stopReason && s.stopReason !== "request" ? { stopped: s.stopReason } : {}),
  };
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
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

/** `{ [key]: value }`, or nothing when the value is undefined (exactOptionalPropertyTypes). */
function optional<K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [k in K]?: V });
}
