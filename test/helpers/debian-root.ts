// A throwaway Debian 12 root for package lifecycle tests: debootstrap --variant=minbase once a day
// (cached as a tar in os.tmpdir(), keyed by date and package list; older ones are deleted), then a
// fresh copy per test run that the caller removes. Commands run in it with chroot inside a private
// mount namespace with its own /proc, so nothing stays mounted when the process ends.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const MIRROR = "http://deb.debian.org/debian";

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Exit code, stdout and stderr of a command, without throwing on a non-zero exit. */
export async function outcome(cmd: string, args: string[], opts: { timeout?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Outcome> {
  return run(cmd, args, { timeout: opts.timeout ?? 60_000, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...(opts.env ? { env: opts.env } : {}) }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number | string; stdout?: string; stderr?: string; message: string }) => ({ code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? e.message }),
  );
}

async function must(cmd: string, args: string[], timeout = 300_000): Promise<string> {
  const r = await outcome(cmd, args, { timeout });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** A new root with `packages` installed; returns its path and how long getting it took (ms, and whether debootstrap ran). */
export async function debianRoot(packages: string[]): Promise<{ root: string; ms: number; bootstrapped: boolean }> {
  const started = Date.now();
  const day = new Date().toISOString().slice(0, 10).replaceAll("-", "");
  const key = `capsync-bookworm-${[...packages].sort().join("+")}`;
  const cache = join(tmpdir(), `${key}-${day}.tar`);
  // Yesterday's roots lack today's security updates; one cached root per package list is enough.
  for (const f of readdirSync(tmpdir())) if (f.startsWith(`${key}-`) && f.endsWith(".tar") && join(tmpdir(), f) !== cache) rmSync(join(tmpdir(), f), { force: true });
  let bootstrapped = false;
  if (!existsSync(cache)) {
    const build = mkdtempSync(join(tmpdir(), "capsync-debootstrap-"));
    try {
      await must("debootstrap", ["--variant=minbase", `--include=${packages.join(",")}`, "bookworm", build, MIRROR]);
      // mkdtemp made it 0700; as "/" it must let the system users (capsync, man) through.
      chmodSync(build, 0o755);
      await must("tar", ["-C", build, "-cf", `${cache}.part`, "."]);
      renameSync(`${cache}.part`, cache);
      bootstrapped = true;
    } finally {
      rmSync(build, { recursive: true, force: true });
      rmSync(`${cache}.part`, { force: true });
    }
  }
  const root = mkdtempSync(join(tmpdir(), "capsync-debroot-"));
  await must("tar", ["-C", root, "-xf", cache]);
  chmodSync(root, 0o755);
  return { root, ms: Date.now() - started, bootstrapped };
}

/** `argv` run inside `root` (chroot, private mount namespace with its own /proc), as root. */
export function inRoot(root: string, argv: string[], timeout = 60_000): Promise<Outcome> {
  return outcome("unshare", ["--mount", "--propagation", "private", "--fork", `--mount-proc=${join(root, "proc")}`, "chroot", root, ...argv], {
    timeout,
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", DEBIAN_FRONTEND: "noninteractive" },
  });
}

/** A long-running `argv` inside `root` (as inRoot); stop it with stopInRoot (--kill-child also ends it if unshare dies). */
export function spawnInRoot(root: string, argv: string[]): ChildProcess {
  return spawn("unshare", ["--mount", "--propagation", "private", "--fork", "--kill-child=SIGTERM", `--mount-proc=${join(root, "proc")}`, "chroot", root, ...argv], {
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** SIGTERM to what spawnInRoot started: unshare --fork ignores SIGTERM itself, so it goes to unshare's child. */
export function stopInRoot(p: ChildProcess): void {
  if (p.exitCode !== null || p.signalCode !== null) return;
  let children: string[];
  try {
    children = readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  } catch {
    return; // already gone
  }
  for (const pid of children) process.kill(Number(pid), "SIGTERM");
}
