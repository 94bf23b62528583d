// Shared captures (--capture-mode shared): ONE tcpdump per (interface, direction, snaplen), without
// a filter, started when the first device session needs it and stopped when the last one leaves. It
// writes a bounded spool ring in the incoming dir (spool.ts); the agent tails it every POLL_MS and
// hands each packet to the devices whose own program (tcpdump's BPF for the device's expression,
// bpf-compile.ts) accepts it (demux.ts), each into its own files named and rotated as its own
// tcpdump would (pcap-writer.ts). A device costs a few kB of agent memory and one open file instead
// of a process and a kernel ring.
//
// A STOP at time T ends one device only: the agent keeps reading until it has read a packet stamped
// T or later, or every packet tcpdump had written when asked after T (SIGUSR1 counts, as the
// per-device drain), at most STOP_SETTLE_MAX_MS; then it closes that device's file. Others go on.
//
// The tcpdump outlives the agent (its spool is a file). A restarted agent adopts it (adopt()): it
// reads the spool again from the oldest slot left (the one the dead agent was in) and appends to
// each device's files what follows the last record already there, so the restart loses nothing the
// spool still holds (SPOOL_FILES x SPOOL_FILE_MB of traffic while no agent ran).
import { join } from "node:path";
import type { Logger } from "@capsync/common";
import type { BpfProgram } from "@capsync/protocol";
import { BpfParseError } from "./bpf.js";
import { FilterCompiler, addressWords } from "./bpf-compile.js";
import { Demux, type Subscriber } from "./demux.js";
import { DeviceRing } from "./pcap-writer.js";
import { SpoolReader, type SpoolHeader } from "./spool.js";
import { TcpdumpProcess, isRunning, parseSummary, sleep, stopAdopted } from "./tcpdump.js";
import { type FoundSpool, SPOOL_PREFIX } from "./shared-recovery.js";
import { readStderrFile, stderrPathFor } from "./stderr-file.js";

/** The spool: SPOOL_FILES x SPOOL_FILE_MB on disk at most, per shared capture. */
export const SPOOL_FILE_MB = 32;
export const SPOOL_FILES = 8;
/**
 * The shared tcpdump's kernel buffer (-B, KiB). In immediate mode libpcap uses fixed frames of the
 * snaplen (256 KiB by default; MTU-sized only on Ethernet without offloads), so 128 MiB is 512
 * frames: a burst of 512 packets while tcpdump is descheduled, for every device together. One ring
 * for the whole fleet, where per-device tcpdumps hold 8 frames each (2 MiB).
 */
export const SHARED_BUFFER_KIB = 131_072;
/** How often the spool is read when there was nothing more to read. */
export const POLL_MS = 20;
/** A STOP waits at most this long for the spool to catch up with its time. */
export const STOP_SETTLE_MAX_MS = 3_000;
/** An adopted tcpdump cannot be asked for its counts: a STOP waits for the spool to stay quiet this long. */
const ADOPTED_QUIET_MS = 100;
/** Bytes read per pass: a pass blocks the event loop (commands wait), so it is bounded. */
const PASS_BYTES = 8 << 20;

export interface SharedOptions {
  incoming: string;
  iface: string;
  binary?: string;
  /** tcpdump -Z (the agent passes "root" as root when it must not drop). */
  user?: string;
  log: Logger;
  spool?: { fileMb: number; files: number };
  bufferKiB?: number;
  pollMs?: number;
}

/** What one device session asks of a shared capture. */
export interface SharedSession {
  device: string;
  /** Base name of its files in the incoming dir (the session's tmpName). */
  tmpName: string;
  /** The expression its own tcpdump would get (captureProgram). */
  expression: string[];
  direction?: "in" | "out";
  snaplen?: number;
  ring?: { fileMb: number; files: number };
  /** tcpdump -c: ends after this many packets. */
  packets?: number;
  /** The session ended on its own: its -c count reached, or the shared tcpdump died. Files are closed. */
  onEnd: (reason: "spec-limit" | "tcpdump-exited", packets: number) => void;
}

export interface SharedHandle {
  /** The shared tcpdump's pid (the state file's record of what captures for the device). */
  readonly pid: number;
  /** STOP: everything up to now in the device's files, then they are closed. */
  stop(): Promise<{ packets: number }>;
}

interface Sub extends Subscriber {
  session: SharedSession;
  ended?: boolean;
}

interface Waiter {
  atUs: number;
  /** performance.now() when the STOP came. */
  created: number;
  /** Records read that cover everything tcpdump had written when counted after `atUs`. */
  target?: number;
  resolve: () => void;
}

/** The shared captures of one agent, by (direction, snaplen) on its interface. */
export class SharedCaptures {
  private readonly captures = new Map<string, SharedCapture>();
  private seq = 0;

  constructor(private readonly o: SharedOptions) {}

  /** Join (starting it if need be) the shared capture for this session's direction and snaplen. */
  attach(s: SharedSession): Promise<SharedHandle> {
    const key = keyOf(s);
    let c = this.captures.get(key);
    if (!c || c.closing) {
      const base = `${SPOOL_PREFIX}${this.o.iface}-${key}-${Date.now().toString(36)}${(this.seq++).toString(36)}.pcap`;
      c = this.add(key, new SharedCapture(this.o, base, s));
    }
    return c.attach(s);
  }

  /**
   * After a restart: the running shared tcpdump `found` and the sessions it fed, read on from where
   * the dead agent stopped. Handles by device; a session whose program no longer compiles is left out.
   */
  adopt(found: FoundSpool, sessions: SharedSession[]): Promise<Map<string, SharedHandle>> {
    const c = this.add(keyOf(found), new SharedCapture(this.o, found.base, found, found));
    return c.adopt(sessions);
  }

  private add(key: string, c: SharedCapture): SharedCapture {
    c.closed = () => {
      if (this.captures.get(key) === c) this.captures.delete(key);
    };
    this.captures.set(key, c);
    return c;
  }

  /**
   * A device session's capture through the shared tcpdump, or undefined when its program uses what
   * the interpreter does not run (Linux ancillary loads): that session gets its own tcpdump instead.
   */
  async attachProgram(s: { device: string; tmpName: string }, program: BpfProgram, ring: SharedSession["ring"], onEnd: SharedSession["onEnd"]): Promise<SharedHandle | undefined> {
    try {
      return await this.attach({
        device: s.device,
        tmpName: s.tmpName,
        expression: program.expression,
        ...(program.direction ? { direction: program.direction } : {}),
        ...(program.snaplen !== undefined ? { snaplen: program.snaplen } : {}),
        ...(ring ? { ring } : {}),
        ...(program.packets !== undefined ? { packets: program.packets } : {}),
        onEnd,
      });
    } catch (e) {
      if (!(e instanceof BpfParseError)) throw e;
      this.o.log.info(`${s.device}: filter '${program.text}' needs the kernel's BPF extensions (${e.message}); it gets its own tcpdump`);
      return undefined;
    }
  }

  /** One line per running shared capture: pid, sessions, packets read, spool overruns, compiles. */
  describe(): string[] {
    return [...this.captures.values()].map((c) => c.describe());
  }
}

function keyOf(s: { direction?: "in" | "out"; snaplen?: number }): string {
  return `${s.direction ?? "inout"}-${s.snaplen ?? "default"}`;
}

class SharedCapture {
  closing = false;
  closed: () => void = () => undefined;
  private proc: TcpdumpProcess | undefined;
  /** An adopted tcpdump's pid (not our child: no TcpdumpProcess, no SIGUSR1 counts). */
  private adoptedPid: number | undefined;
  private lastAliveCheck = 0;
  private started: Promise<void> | undefined;
  private readonly reader: SpoolReader;
  private demux: Demux | undefined;
  private compiler: FilterCompiler | undefined;
  private readonly subs = new Set<Sub>();
  /** attach() calls in progress: the capture stays up for them even with no session yet. */
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<Waiter>();
  private draining = false;
  private lastTsUs = 0;
  private writeErrors = 0;
  private readonly spool: { fileMb: number; files: number };

  constructor(
    private readonly o: SharedOptions,
    readonly base: string,
    private readonly first: { direction?: "in" | "out"; snaplen?: number },
    adopted?: FoundSpool,
  ) {
    this.spool = adopted?.spool ?? o.spool ?? { fileMb: SPOOL_FILE_MB, files: SPOOL_FILES };
    this.reader = new SpoolReader(o.incoming, base, this.spool);
    if (adopted) {
      this.adoptedPid = adopted.pid;
      this.reader.startAtOldest();
    }
  }

  private get pid(): number | undefined {
    return this.proc?.pid ?? this.adoptedPid;
  }

  describe(): string {
    return `${this.base} pid=${this.pid ?? "-"} sessions=${this.subs.size} packets=${this.reader.records} overruns=${this.reader.overruns} compiles=${this.compiler?.compiles ?? 0}`;
  }

  async attach(s: SharedSession): Promise<SharedHandle> {
    this.pending++;
    try {
      this.started ??= this.start();
      await this.started;
      const prog = await this.compiler!.program(s.expression, s.device);
      if (this.closing || !this.pid) throw new Error("the shared tcpdump exited");
      const ring = DeviceRing.create({ dir: this.o.incoming, name: s.tmpName, header: this.header!.raw, ...(s.ring ? { ring: s.ring } : {}) });
      // What tcpdump wrote before this session began belongs to the sessions running then: read
      // it first. Caught up, the session takes every record from here on, whatever the packets'
      // timestamps say (a wall-clock step); far behind, it takes those stamped from now on.
      const caughtUp = this.pass(64 << 20);
      const sub = this.subscribe(s, prog, ring, caughtUp ? 0 : Date.now() * 1000);
      this.loop();
      return { pid: this.pid!, stop: () => this.detach(sub) };
    } finally {
      this.pending--;
      this.maybeClose();
    }
  }

  async adopt(sessions: SharedSession[]): Promise<Map<string, SharedHandle>> {
    const out = new Map<string, SharedHandle>();
    this.pending++;
    try {
      this.started ??= this.start();
      await this.started;
      const h = this.header!;
      // Every session back before the first record is read: each one's own records are its to skip or take.
      for (const s of sessions) {
        try {
          const prog = await this.compiler!.program(s.expression, s.device);
          const ring = DeviceRing.resume({ dir: this.o.incoming, name: s.tmpName, header: h.raw, ...(s.ring ? { ring: s.ring } : {}) });
          const sub = this.subscribe(s, prog, ring, 0);
          if (ring.last) sub.skip = { tsUs: recordUs(ring.last, h), raw: ring.last };
          out.set(s.device, { pid: this.pid!, stop: () => this.detach(sub) });
        } catch (e) {
          this.o.log.error(`${s.device}: cannot resume its shared capture: ${(e as Error).message}`);
        }
      }
      this.o.log.warn(`adopted shared tcpdump pid ${this.pid} (${this.base}) after restart for ${out.size} capture(s); reading its spool on`);
      this.loop();
      return out;
    } finally {
      this.pending--;
      this.maybeClose();
    }
  }

  private subscribe(s: SharedSession, prog: Sub["prog"], ring: DeviceRing, fromUs: number): Sub {
    const sub: Sub = { device: s.device, prog, fromUs, ring, session: s };
    const word = indexWord(s);
    if (word !== undefined) sub.word = word;
    if (s.packets !== undefined) {
      sub.limit = s.packets;
      // Called from inside a pass (demux.offer): finish after it.
      sub.onLimit = () => setImmediate(() => this.end(sub, "spec-limit"));
    }
    this.demux!.add(sub);
    this.subs.add(sub);
    return sub;
  }

  private header: SpoolHeader | undefined;

  private async start(): Promise<void> {
    const o = this.o;
    if (this.adoptedPid === undefined) {
      const proc = await TcpdumpProcess.start({
        ...(o.binary ? { binary: o.binary } : {}),
        iface: o.iface,
        outFile: this.base,
        cwd: o.incoming,
        filter: [],
        ringSizeMb: this.spool.fileMb,
        ringFiles: this.spool.files,
        bufferKiB: o.bufferKiB ?? SHARED_BUFFER_KIB,
        ...(this.first.snaplen !== undefined ? { snaplen: this.first.snaplen } : {}),
        ...(this.first.direction ? { direction: this.first.direction } : {}),
        ...(o.user ? { user: o.user } : {}),
      });
      this.proc = proc;
      proc.onExit(() => this.exited());
    }
    // tcpdump flushes the file header as it opens the file, before it says "listening".
    for (let i = 0; i < 200 && !this.header; i++) {
      this.header = this.reader.peekHeader();
      if (!this.header) await sleep(10);
    }
    const h = this.header;
    if (!h) {
      await this.proc?.stop();
      throw new Error(`shared tcpdump wrote no pcap header to ${this.base}`);
    }
    this.demux = new Demux(h.linktype);
    this.compiler = new FilterCompiler(o.iface, h.linktype, o.binary);
    o.log.info(`shared capture on ${o.iface}${this.first.direction ? ` (${this.first.direction})` : ""}: tcpdump pid ${this.pid}, link type ${h.linktype}, snaplen ${h.snaplen}, spool ${this.spool.files} x ${this.spool.fileMb} MB`);
  }

  /** One pass over what the spool has now; true when it reached the end of what is written. */
  private pass(maxBytes = PASS_BYTES): boolean {
    let atEnd = true;
    const demux = this.demux;
    if (demux) {
      try {
        atEnd = this.reader.read((r) => {
          this.lastTsUs = r.tsUs;
          demux.dispatch(r);
        }, maxBytes);
      } catch (e) {
        this.o.log.error(`shared capture ${this.base}: ${(e as Error).message}`);
      }
      try {
        demux.flush();
      } catch (e) {
        // Disk full or the like: the disk guard stops the captures; say so once per capture, not per pass.
        if (this.writeErrors++ === 0) this.o.log.error(`shared capture ${this.base}: writing device files failed: ${(e as Error).message}`);
      }
    }
    const now = performance.now();
    for (const w of this.waiters) {
      const quiet = this.adoptedPid !== undefined && atEnd && now - w.created >= ADOPTED_QUIET_MS;
      if (this.lastTsUs >= w.atUs || (w.target !== undefined && this.reader.records >= w.target) || quiet || !this.pid) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
    return atEnd;
  }

  /** Start reading (once); then every POLL_MS, or at once while there is more to read. */
  private loop(): void {
    if (this.timer || this.closing) return;
    const run = () => {
      this.timer = undefined;
      if (this.closing) return;
      const atEnd = this.pass();
      const adopted = this.adoptedPid;
      if (adopted !== undefined && performance.now() - this.lastAliveCheck > 500) {
        this.lastAliveCheck = performance.now();
        if (!isRunning(adopted)) return this.exited();
      }
      this.timer = setTimeout(run, atEnd ? (this.o.pollMs ?? POLL_MS) : 0);
    };
    this.timer = setTimeout(run, 0);
  }

  /** Until the spool has been read up to now (see the file comment), bounded. */
  private settle(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        resolve();
      }, STOP_SETTLE_MAX_MS);
      const w: Waiter = {
        atUs: Date.now() * 1000,
        created: performance.now(),
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.add(w);
      this.countWritten();
    });
  }

  /** Ask tcpdump how many packets it has written (one SIGUSR1 round for every STOP waiting now). */
  private countWritten(): void {
    const proc = this.proc;
    if (this.draining || !proc) return;
    const batch = [...this.waiters].filter((w) => w.target === undefined);
    if (!batch.length) return;
    this.draining = true;
    void proc.drain().then(
      (d) => {
        // Unknown (tcpdump exiting): what the next pass finds is all there is.
        for (const w of batch) w.target = d.captured ?? 0;
        this.draining = false;
        this.pass();
        this.countWritten();
      },
      () => {
        for (const w of batch) w.target = 0;
        this.draining = false;
      },
    );
  }

  private async detach(sub: Sub): Promise<{ packets: number }> {
    if (!sub.ended) {
      await this.settle();
      this.pass();
      if (!sub.ended) {
        sub.ended = true;
        this.demux?.remove(sub);
        this.subs.delete(sub);
        sub.ring.close();
      }
    }
    this.maybeClose();
    return { packets: sub.ring.packets };
  }

  /** A session that ended on its own (its -c count, or the tcpdump's exit). */
  private end(sub: Sub, reason: "spec-limit" | "tcpdump-exited"): void {
    if (sub.ended) return;
    sub.ended = true;
    this.demux?.remove(sub);
    this.subs.delete(sub);
    try {
      sub.ring.close();
    } catch (e) {
      this.o.log.error(`${sub.device}: closing its capture file failed: ${(e as Error).message}`);
    }
    sub.session.onEnd(reason, sub.ring.packets);
    this.maybeClose();
  }

  private maybeClose(): void {
    if (this.closing || this.subs.size || this.pending) return;
    this.closing = true;
    this.closed();
    if (this.timer) clearTimeout(this.timer);
    const proc = this.proc;
    const adopted = this.adoptedPid;
    this.proc = undefined;
    this.adoptedPid = undefined;
    void (async () => {
      if (proc || adopted !== undefined) {
        const r = proc ? await proc.stop() : await stopAdopted(adopted!, this.stderrPath());
        const drops = r.droppedByKernel ?? 0;
        const line = `shared capture ${this.base} stopped: ${r.packets ?? this.reader.records} packet(s) captured, ${drops} dropped by kernel, ${this.reader.overruns} spool overrun(s)`;
        if (drops || this.reader.overruns) this.o.log.warn(line);
        else this.o.log.info(line);
      }
      this.reader.removeAll();
    })().catch((e: Error) => this.o.log.error(`shared capture ${this.base}: stopping failed: ${e.message}`));
  }

  private stderrPath(): string {
    return stderrPathFor(join(this.o.incoming, this.base));
  }

  /** The tcpdump exited: on our stop (closing), or on its own (every session ends, files kept). */
  private exited(): void {
    if (this.closing) return;
    const text = this.proc?.stderrText ?? readStderrFile(this.stderrPath());
    const why = parseSummary(text);
    this.o.log.warn(`shared tcpdump for ${this.o.iface} exited on its own (${text.trim().split("\n").at(-1) ?? ""}); ending its ${this.subs.size} session(s), files kept${why.droppedByKernel ? `; ${why.droppedByKernel} dropped by kernel` : ""}`);
    this.pass(Number.MAX_SAFE_INTEGER);
    this.proc = undefined;
    this.adoptedPid = undefined;
    for (const w of this.waiters) w.resolve();
    this.waiters.clear();
    for (const sub of [...this.subs]) this.end(sub, "tcpdump-exited");
    this.maybeClose();
  }
}

/** The address word a session is indexed under (demux.ts), when its expression is `host <device>` and terms ANDed to it. */
function indexWord(s: SharedSession): number | undefined {
  const e = s.expression;
  if (e[0] !== "host" || e[1] !== s.device) return undefined;
  const rest = e.slice(2);
  if (rest.length && rest[0] !== "and") return undefined;
  if (rest.some((w) => w === "or" || w === "||" || w.includes("(") || w.includes(")") || w === "not" || w === "!")) return undefined;
  return addressWords(s.device).at(-1);
}

/** A record's timestamp in µs (the spool's byte order and resolution). */
function recordUs(raw: Buffer, h: SpoolHeader): number {
  const sec = h.le ? raw.readUInt32LE(0) : raw.readUInt32BE(0);
  const frac = h.le ? raw.readUInt32LE(4) : raw.readUInt32BE(4);
  return sec * 1e6 + (h.nano ? Math.floor(frac / 1000) : frac);
}
