// Child processes of the demo lab (device emulators, agent, management server, the orchestrator):
// spawned without a shell, inside a namespace via `ip netns exec` (which execs, so the pid is the
// program's own), each in its own process group so a terminal's Ctrl-C reaches only the demo,
// which then stops them in order (orchestrator first, so it can still collect).
// Their stdout/stderr go to files in the lab dir, which this side tails: a pipe would close when
// the demo exits and take a kept lab (--keep) down with EPIPE; a file never does.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readSync } from "node:fs";
import { LabError } from "./netns.js";

export interface LabProcessOptions {
  name: string;
  /** Namespace to run in; omitted: the current one. */
  ns?: string;
  argv: string[];
  env?: NodeJS.ProcessEnv;
  /** `<logBase>.out` and `<logBase>.err` receive the streams (kept with --keep, for post-mortems). */
  logBase: string;
}

const MAX_LINES = 5000;
const POLL_MS = 25;

interface Tail {
  stream: "out" | "err";
  fd: number;
  pos: number;
  partial: string;
}

export class LabProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly lines: { stream: "out" | "err"; text: string }[] = [];
  private readonly listeners = new Set<(line: string, stream: "out" | "err") => void>();
  private readonly tails: Tail[];
  private readonly timer: NodeJS.Timeout;

  constructor(o: LabProcessOptions) {
    this.name = o.name;
    const [cmd, args] = o.ns ? ["ip", ["netns", "exec", o.ns, ...o.argv]] : [o.argv[0]!, o.argv.slice(1)];
    const files = { out: `${o.logBase}.out`, err: `${o.logBase}.err` };
    const out = openSync(files.out, "a", 0o600);
    const err = openSync(files.err, "a", 0o600);
    try {
      this.child = spawn(cmd, args, { stdio: ["ignore", out, err], detached: true, env: o.env ?? process.env });
    } finally {
      closeSync(out);
      closeSync(err);
    }
    this.tails = (["out", "err"] as const).map((stream) => ({ stream, fd: openSync(files[stream], "r"), pos: 0, partial: "" }));
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.exited = new Promise((resolve) => {
      this.child.once("error", (e) => {
        this.push("err", `spawn failed: ${e.message}`);
        resolve({ code: null, signal: null });
      });
      this.child.once("exit", (code, signal) => resolve({ code, signal }));
    });
    // After the exit: read what is left, then stop tailing.
    void this.exited.then(() => this.closeTails());
  }

  private poll(): void {
    const buf = Buffer.alloc(64 * 1024);
    for (const t of this.tails) {
      // At most 1 MiB per stream and tick; the next tick continues.
      for (let i = 0; i < 16; i++) {
        const n = readSync(t.fd, buf, 0, buf.length, t.pos);
        if (n === 0) break;
        t.pos += n;
        t.partial += buf.subarray(0, n).toString("utf8");
        const parts = t.partial.split("\n");
        t.partial = parts.pop()!;
        for (const p of parts) this.push(t.stream, p);
      }
    }
  }

  private closeTails(): void {
    if (!this.tails.length) return;
    clearInterval(this.timer);
    this.poll();
    for (const t of this.tails.splice(0)) {
      if (t.partial) this.push(t.stream, t.partial);
      closeSync(t.fd);
    }
  }

  /** Stop following it and let it outlive this process (--keep). */
  detach(): void {
    this.closeTails();
    this.child.unref();
  }

  private push(stream: "out" | "err", text: string): void {
    this.lines.push({ stream, text });
    if (this.lines.length > MAX_LINES) this.lines.shift();
    for (const l of this.listeners) l(text, stream);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  onLine(cb: (line: string, stream: "out" | "err") => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** The last `n` lines of output (both streams), for error messages. */
  tail(n = 8): string {
    return this.lines
      .slice(-n)
      .map((l) => l.text)
      .join("\n");
  }

  /** Resolves with the first stdout line (seen or to come) matching `re`; rejects on exit, timeout or abort. */
  waitForLine(re: RegExp, timeoutMs: number, signal?: AbortSignal): Promise<RegExpExecArray> {
    const seen = this.lines.find((l) => l.stream === "out" && re.test(l.text));
    if (seen) return Promise.resolve(re.exec(seen.text)!);
    return new Promise((resolve, reject) => {
      const done = (fn: () => void) => {
        clearTimeout(timer);
        off();
        signal?.removeEventListener("abort", onAbort);
        fn();
      };
      const off = this.onLine((line, stream) => {
        const m = stream === "out" ? re.exec(line) : null;
        if (m) done(() => resolve(m));
      });
      const timer = setTimeout(() => done(() => reject(new LabError(`${this.name} did not get ready within ${timeoutMs / 1000}s; last output:\n${this.tail()}`))), timeoutMs);
      const onAbort = () => done(() => reject(new LabError(`${this.name}: interrupted`)));
      signal?.addEventListener("abort", onAbort, { once: true });
      void this.exited.then(({ code, signal: sig }) => done(() => reject(new LabError(`${this.name} exited (${sig ?? code}) before it was ready; last output:\n${this.tail()}`))));
    });
  }

  /**
   * Ask it to stop (`sig` to the process itself, which stops its own children cleanly), then
   * SIGKILL its whole process group after `graceMs`. Bounded; safe to call twice.
   */
  async stop(sig: NodeJS.Signals = "SIGTERM", graceMs = 5000): Promise<void> {
    if (!this.running || this.child.pid === undefined) return void (await this.exited);
    const pid = this.child.pid;
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((r) => {
      timer = setTimeout(() => {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          /* gone */
        }
        r();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    // After a SIGKILL the close event still follows; bounded so a stuck pipe cannot hang teardown.
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2000))]);
  }
}
