// Spawning and stopping tcpdump (4.99, libpcap 1.10). Argument arrays only, never a shell.
// Always --immediate-mode and -U: without them tcpdump holds up to ~1 s of packets in the kernel
// ring and a SIGINT in that window drops them — the packets just before the alarm.
// Every tcpdump outlives the agent that started it: its own session (a signal to the agent's
// process group does not reach it), stdin /dev/null, stderr to a file (stderr-file.ts), and its own
// bound on time (an alarm armed before exec) next to the ring's bound on disk.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { StderrFollower, openForChild, readStderrFile, removeStderrFile, stderrPathFor } from "./stderr-file.js";

export interface TcpdumpOptions {
  binary?: string;
  iface: string;
  /** The output file (tcpdump appends 0,1,2... to it in ring mode); relative to `cwd` when given. */
  outFile: string;
  /**
   * tcpdump's working directory. Ring files are opened after the -Z drop: named relative to their
   * own dir, only that dir must be open to the user, not every parent of it.
   */
  cwd?: string;
  filter: string[];
  ringSizeMb?: number;
  ringFiles?: number;
  snaplen?: number;
  /** Exit after this many packets (-c). */
  packets?: number;
  /** Kernel capture buffer in KiB (-B). */
  bufferKiB?: number;
  /**
   * Only received or only sent packets (-Q), as seen by the capture interface; default both. Works
   * with `-i any` too (libpcap 1.10: the cooked header carries each packet's direction); on `lo`
   * every packet counts as received.
   */
  direction?: "in" | "out";
  /** Drop privileges to this user after opening the device (-Z). */
  user?: string;
  startTimeoutMs?: number;
  /** tcpdump's stderr; default `<outFile>.stderr` in `cwd`. Removed once the process has exited and been read. */
  stderrFile?: string;
  /**
   * tcpdump ends itself after this long (SIGALRM, armed before exec; -U has flushed every packet
   * already), so an orphan no agent ever adopts still stops. Undefined: no bound.
   */
  lifetimeMs?: number;
  /** Called right after the process exists (before it is listening), so its pid can be recorded at once. */
  onSpawn?: (pid: number) => void;
}

export interface StopResult {
  /** From tcpdump's own summary line; undefined when it was killed before printing one. */
  packets?: number;
  droppedByKernel?: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  escalated: boolean;
}

const IFACE = /^[A-Za-z0-9_.:@-]{1,15}$/;
export function isValidInterface(name: string): boolean {
  return name === "any" || (IFACE.test(name) && name !== "." && name !== "..");
}

export function tcpdumpArgs(o: TcpdumpOptions): string[] {
  const args = ["-i", o.iface, "-U", "--immediate-mode", "-n", "-w", o.outFile];
  if (o.user) args.push("-Z", o.user);
  if (o.snaplen) args.push("-s", String(o.snaplen));
  if (o.direction) args.push("-Q", o.direction);
  if (o.packets) args.push("-c", String(o.packets));
  if (o.bufferKiB) args.push("-B", String(o.bufferKiB));
  if (o.ringSizeMb && o.ringFiles) args.push("-C", String(o.ringSizeMb), "-W", String(o.ringFiles));
  return [...args, ...o.filter];
}

/** The last meaningful stderr lines, trimmed, for a failure answer. */
function tcpdumpError(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !/^(\d+ packets? (captured|received by filter|dropped by kernel))/.test(l) && !/^listening on/.test(l.replace(/^tcpdump: /, "")));
  return (lines.slice(-2).join("; ") || "tcpdump exited without an error message").slice(0, 300);
}

export function parseSummary(stderr: string): { packets?: number; droppedByKernel?: number } {
  // The last counts: SIGUSR1 answers (drain) come before the summary at exit.
  const cap = [...stderr.matchAll(/(\d+) packets? captured/g)].at(-1);
  const drop = [...stderr.matchAll(/(\d+) packets? dropped by kernel/g)].at(-1);
  return {
    ...(cap ? { packets: Number(cap[1]) } : {}),
    ...(drop ? { droppedByKernel: Number(drop[1]) } : {}),
  };
}

/**
 * `alarm N; exec tcpdump ...`: perl is the one common tool that can arm an alarm and exec in the same
 * process, so the pid the agent records, signals and adopts is tcpdump's own (timeout(1) would put a
 * second process in between). SIGALRM is not handled by tcpdump without -v: it ends it.
 */
const ALARM_EXEC = 'alarm shift; exec { $ARGV[0] } @ARGV or die "cannot run $ARGV[0]: $!\\n"';
const PERL = ["/usr/bin/perl", "/bin/perl"].find((p) => existsSync(p));

/** Whether a tcpdump can bound its own lifetime here (perl present); the agent says so at startup otherwise. */
export function canBoundLifetime(): boolean {
  return PERL !== undefined;
}

/**
 * The self-imposed lifetime for a capture limited to `limitMs`: later than the agent's own watchdog
 * (which stops it cleanly, with its summary), so the alarm only ever ends an orphan.
 */
export function lifetimeFor(limitMs: number | undefined): number | undefined {
  if (limitMs === undefined || !Number.isFinite(limitMs)) return undefined;
  // At least 5 s: a restarted agent on a loaded host needs seconds before it can adopt.
  const grace = Math.min(60_000, Math.max(5_000, Math.ceil(limitMs / 10)));
  return limitMs + grace;
}

export class TcpdumpProcess {
  readonly child: ChildProcess;
  private readonly err: StderrFollower;
  /** How many statistics blocks tcpdump has printed (SIGUSR1 answers, and the final one). */
  private statsLines = 0;
  /** drain() calls waiting for the next statistics block. */
  private readonly statsWaiters = new Set<() => void>();
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly startedAt = Date.now();
  private constructor(child: ChildProcess, stderrPath: string) {
    this.child = child;
    this.err = new StderrFollower(stderrPath);
    this.err.listen((d) => {
      const blocks = (d.match(/packets? received by filter/g) ?? []).length;
      this.statsLines += blocks;
      if (blocks) for (const w of [...this.statsWaiters]) w();
    }, false);
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        // Everything it wrote is in the file now: read it, then the file has served its purpose.
        this.err.close();
        removeStderrFile(stderrPath);
        resolve({ code, signal });
      }),
    );
  }

  private get stderr(): string {
    return this.err.text;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }
  get stderrText(): string {
    return this.stderr;
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  onExit(cb: () => void): void {
    void this.exited.then(cb);
  }

  /** Start tcpdump and resolve once it says "listening on"; reject with its own error otherwise. */
  static async start(o: TcpdumpOptions): Promise<TcpdumpProcess> {
    // A minimal environment: the agent's may hold secrets (CAPSYNC_OVOC_PASSWORD), and tcpdump needs none.
    const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
    const stderrPath = o.stderrFile ?? stderrPathFor(resolve(o.cwd ?? ".", o.outFile));
    const fd = openForChild(stderrPath);
    const binary = o.binary ?? "tcpdump";
    const args = tcpdumpArgs(o);
    const secs = o.lifetimeMs !== undefined && PERL ? Math.ceil(o.lifetimeMs / 1000) : undefined;
    let child: ChildProcess;
    try {
      // detached: its own session, so a SIGINT/SIGHUP to the agent's group (a terminal, a service
      // manager signalling the group) leaves it running; the agent stops it by pid.
      child = spawn(secs ? PERL! : binary, secs ? ["-e", ALARM_EXEC, String(secs), binary, ...args] : args, {
        stdio: ["ignore", "ignore", fd],
        detached: true,
        env,
        ...(o.cwd ? { cwd: o.cwd } : {}),
      });
    } finally {
      closeSync(fd);
    }
    const p = new TcpdumpProcess(child, stderrPath);
    if (child.pid !== undefined) o.onSpawn?.(child.pid);
    const timeoutMs = o.startTimeoutMs ?? 5000;
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unlisten();
        if (err) reject(err);
        else resolve();
      };
      const onData = () => {
        if (p.stderr.includes("listening on")) finish();
      };
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        finish(new Error(`tcpdump did not report listening within ${timeoutMs} ms${p.stderr ? `: ${tcpdumpError(p.stderr)}` : ""}`));
      }, timeoutMs);
      const unlisten = p.err.listen(onData);
      child.once("error", (e) => finish(new Error(`cannot run tcpdump: ${e.message}`)));
      void p.exited.then(() => {
        // Give the last stderr chunk a tick to arrive before reading it.
        setImmediate(() => finish(new Error(tcpdumpError(p.stderr))));
      });
    });
    return p;
  }

  /**
   * Wait until tcpdump has written every packet the kernel already queued for it. A SIGINT makes
   * tcpdump leave its loop at once, dropping what is still in the ring buffer — on a busy machine
   * that is exactly the last packets before the alarm. SIGUSR1 makes tcpdump print its counters
   * without stopping: drained when "captured" has caught up with "received by filter". With -Q the
   * other direction is received and never captured, and on loopback (lo, or "any" seeing lo) the
   * kernel counts each packet twice while tcpdump keeps one: drained there when three blocks in a
   * row show the same counts (nothing new queued, nothing more written).
   */
  async drain(maxMs = 1000): Promise<{ drained: boolean; captured?: number; received?: number }> {
    const until = performance.now() + maxMs;
    let last: { captured?: number; received?: number } = {};
    let same = 0;
    while (this.running && performance.now() < until) {
      const mark = this.statsLines;
      this.child.kill("SIGUSR1");
      await this.nextStats(mark, until);
      if (this.statsLines === mark) break;
      // SIGUSR1 answers on one line ("N packets captured, M packets received by filter, ..."),
      // the summary at exit one count per line: both count.
      const all = [...this.stderr.matchAll(/(\d+) packets? captured(?:, |\n)(\d+) packets? received by filter/g)];
      const m = all.at(-1);
      if (!m) break;
      const prev = last;
      last = { captured: Number(m[1]), received: Number(m[2]) };
      if (last.captured! >= last.received!) return { drained: true, ...last };
      same = prev.captured === last.captured && prev.received === last.received ? same + 1 : 0;
      if (same >= 2) return { drained: true, ...last };
      await sleep(10);
    }
    return { drained: false, ...last };
  }

  /**
   * Until tcpdump has printed a statistics block after `mark`, exited, or `until` (epoch ms).
   * Event-driven (the stderr file's change events), not a 5 ms poll: a fleet stop drains a thousand
   * tcpdumps at once, and a thousand fast polling timers would make every event-loop turn of the
   * agent long enough to delay its answers by seconds; the follower's 100 ms backstop runs meanwhile.
   */
  private nextStats(mark: number, until: number): Promise<void> {
    if (this.statsLines !== mark || !this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const unwait = this.err.listen(() => undefined);
      const done = () => {
        clearTimeout(timer);
        unwait();
        this.statsWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, until - performance.now()));
      this.statsWaiters.add(done);
      void this.exited.then(done);
    });
  }

  /** SIGINT (tcpdump flushes and writes its summary), escalating to SIGTERM then SIGKILL. */
  async stop(graceMs = 5000): Promise<StopResult> {
    let escalated = false;
    if (this.running) {
      this.child.kill("SIGINT");
      const r = await Promise.race([this.exited, sleep(graceMs)]);
      if (!r) {
        escalated = true;
        this.child.kill("SIGTERM");
        if (!(await Promise.race([this.exited, sleep(2000)]))) this.child.kill("SIGKILL");
      }
    }
    const { code, signal } = await this.exited;
    return { ...parseSummary(this.stderr), exitCode: code, signal, escalated };
  }
}

export function sleep(ms: number): Promise<undefined> {
  return new Promise((r) => setTimeout(() => r(undefined), ms));
}

/**
 * Whether `pid` runs. An adopted tcpdump is not our child: once it exits it stays a zombie until
 * init reaps it — measured here up to ~1.6 s, and never in containers without a reaping init.
 * Exited is exited.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat[stat.lastIndexOf(")") + 2];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Stop a tcpdump we did not spawn (adopted after an agent restart): signal by pid and poll. */
export async function stopPid(pid: number, graceMs = 5000): Promise<boolean> {
  const alive = () => isRunning(pid);
  if (!alive()) return true;
  process.kill(pid, "SIGINT");
  for (const [sig, wait] of [["SIGTERM", graceMs], ["SIGKILL", 2000], [null, 2000]] as const) {
    const until = performance.now() + wait;
    while (performance.now() < until) {
      if (!alive()) return true;
      await sleep(50);
    }
    if (sig) {
      try {
        process.kill(pid, sig);
      } catch {
        return true;
      }
    }
  }
  return !alive();
}

/**
 * Stop a tcpdump adopted after a restart and read its summary from the stderr file it has written
 * to since it was started (removed afterwards). No summary when it had to be killed.
 */
export async function stopAdopted(pid: number, stderrFile: string, graceMs = 5000): Promise<{ stopped: boolean; packets?: number; droppedByKernel?: number }> {
  const stopped = await stopPid(pid, graceMs);
  const summary = parseSummary(readStderrFile(stderrFile));
  removeStderrFile(stderrFile);
  return { stopped, ...summary };
}
