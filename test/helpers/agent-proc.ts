// Start the real server-capture binary for a test and talk CSYNC/1 or legacy to it over UDP.
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { formatRequest, newRequestId, parseAnswer, type V1Answer, type V1Request } from "@capsync/protocol";

export const ROOT = resolve(import.meta.dirname, "../..");
export const AGENT_CLI = join(ROOT, "packages/server-capture/dist/cli.js");
export const TEST_KEY = "capsync-test-key-0123456789abcdef-XYZ";

export function tempDir(prefix = "capsync-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeKey(dir: string, key = TEST_KEY, mode = 0o600): string {
  const p = join(dir, "agent.key");
  writeFileSync(p, key + "\n");
  chmodSync(p, mode);
  return p;
}

export interface AgentProc {
  child: ChildProcess;
  port: number;
  /** SFTP port from the "server-capture sftp" line; only with --sftp-listen. */
  sftpPort?: number;
  dir: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `netns`: run the agent inside that network namespace (`ip netns exec`, which execs: the pid is the agent's); `listen` replaces 127.0.0.1:0.
 * `command`: what runs the agent instead of node + dist/cli.js (a one-file executable, with its wrapper); it must exec, like netns.
 */
export async function startAgent(args: string[], opts: { dir?: string; timeoutMs?: number; netns?: string; listen?: string; command?: string[] } = {}): Promise<AgentProc> {
  const dir = opts.dir ?? tempDir("capsync-agent-");
  const [program, ...pre] = opts.command ?? [process.execPath, AGENT_CLI];
  // Tests read the agent's log next to its captures (the default, /var/log/capsync, is shared by every test).
  const logFile = args.includes("--log-file") ? [] : ["--log-file", join(dir, "server-capture.log")];
  const argv = [...pre, "--listen", opts.listen ?? "127.0.0.1:0", "--dir", dir, ...logFile, ...args];
  const child = opts.netns
    ? spawn("ip", ["netns", "exec", opts.netns, program!, ...argv], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(program!, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const wantSftp = args.includes("--sftp-listen");
  let sftpPort: number | undefined;
  const port = await new Promise<number>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`agent did not start: ${err}`)), opts.timeoutMs ?? 10_000);
    const check = () => {
      const m = /server-capture ready \S+ (\d+)/.exec(out);
      const s = /server-capture sftp \S+ (\d+)/.exec(out);
      if (m && (s || !wantSftp)) {
        clearTimeout(t);
        if (s) sftpPort = Number(s[1]);
        res(Number(m[1]));
      }
    };
    child.stdout!.on("data", check);
    void exited.then((c) => {
      clearTimeout(t);
      rej(new Error(`agent exited with ${c}: ${err}`));
    });
  });
  return {
    child,
    port,
    ...(sftpPort !== undefined ? { sftpPort } : {}),
    dir,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A bare UDP peer for tests: send datagrams, collect everything that comes back. */
export class TestPeer {
  readonly socket: Socket;
  readonly received: Buffer[] = [];
  private waiters: (() => void)[] = [];
  private constructor(s: Socket) {
    this.socket = s;
    s.on("message", (m) => {
      this.received.push(m);
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  static async open(address = "127.0.0.1"): Promise<TestPeer> {
    const s = createSocket(address.includes(":") ? "udp6" : "udp4");
    await new Promise<void>((r) => s.bind(0, address, () => r()));
    return new TestPeer(s);
  }
  send(buf: Buffer | string, port: number, host = "127.0.0.1"): void {
    this.socket.send(typeof buf === "string" ? Buffer.from(buf) : buf, port, host);
  }
  /** Wait until `pred` holds over everything received so far. */
  async waitFor<T>(pred: (all: Buffer[]) => T | undefined, timeoutMs = 8000): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = pred(this.received);
      if (v !== undefined) return v;
      const left = until - Date.now();
      if (left <= 0) throw new Error(`timed out; received: ${this.received.map((b) => b.toString()).join(" | ")}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  /** v1: send a request and wait for its final answer (resending once a second like a client would not: tests want exact counts). */
  async request(port: number, req: Omit<V1Request, "id" | "ts"> & { id?: string; ts?: number }, key = Buffer.from(TEST_KEY), timeoutMs = 10_000): Promise<{ final: V1Answer; all: V1Answer[]; sent: Buffer }> {
    const full: V1Request = { ...req, id: req.id ?? newRequestId(), ts: req.ts ?? Date.now() };
    const sent = formatRequest(full, key);
    this.send(sent, port);
    const answers = () => this.received.map((b) => parseAnswer(b, [key])).flatMap((r) => (r.ok && r.value.id === full.id ? [r.value] : []));
    const final = await this.waitFor(() => answers().find((a) => a.code !== 100), timeoutMs);
    return { final, all: answers(), sent };
  }
  close(): void {
    this.socket.close();
  }
}

/** Send `count` UDP datagrams from 127.0.0.1 to target:port, each with its sequence number. */
export async function sendTraffic(target: string, port: number, count: number, gapMs = 2): Promise<void> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  for (let i = 0; i < count; i++) {
    await new Promise<void>((r) => s.send(Buffer.from(`capsync-test-${i}`), port, target, () => r()));
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  s.close();
}

/** A UDP sink on `address` so test traffic is not answered with ICMP port-unreachable. */
export async function udpSink(address: string, port = 0): Promise<{ port: number; count: () => number; close: () => void }> {
  const s = createSocket("udp4");
  let n = 0;
  s.on("message", () => n++);
  await new Promise<void>((r) => s.bind(port, address, () => r()));
  return { port: s.address().port, count: () => n, close: () => s.close() };
}
