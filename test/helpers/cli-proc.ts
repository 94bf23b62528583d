// Run the real cpe-capture binary with a config file and follow its --json event stream.
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import { ROOT } from "./agent-proc.js";

/** CAPSYNC_TEST_CPE_CLI: a deliberately broken copy of the build, to check that a test can fail. */
export const CPE_CLI = process.env.CAPSYNC_TEST_CPE_CLI ?? join(ROOT, "packages/cpe-capture/dist/index.js");

export interface EventLine {
  timestamp?: string;
  device?: string;
  source?: string;
  event?: string;
  status?: string;
  detail?: string;
  done?: boolean;
  folder?: string;
  exitCode?: number;
}

export interface CliRun {
  child: ChildProcess;
  lines: EventLine[];
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  waitFor(pred: (l: EventLine) => boolean, timeoutMs?: number): Promise<EventLine>;
}

/** `command`: what runs cpe-capture instead of node + dist/index.js (a one-file executable, with its wrapper). */
export function runCli(args: string[], env: Record<string, string> = {}, command: string[] = [process.execPath, CPE_CLI]): CliRun {
  const [program, ...pre] = command;
  const child = spawn(program!, [...pre, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "";
  let err = "";
  const lines: EventLine[] = [];
  const waiters: (() => void)[] = [];
  let partial = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    partial += d.toString();
    const parts = partial.split("\n");
    partial = parts.pop()!;
    for (const p of parts) {
      try {
        lines.push(JSON.parse(p) as EventLine);
      } catch {
        /* not JSON */
      }
    }
    waiters.splice(0).forEach((w) => w());
  });
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  return {
    child,
    lines,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitFor(pred, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = lines.find(pred);
        if (hit) return hit;
        if (child.exitCode !== null) throw new Error(`cpe-capture exited ${child.exitCode} before the event; stderr: ${err}`);
        const left = until - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for an event; stderr: ${err}\nstdout: ${out.slice(-3000)}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, Math.min(left, 200));
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
  };
}

/** A free UDP port on 127.0.0.1 (bound, read, released). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}
