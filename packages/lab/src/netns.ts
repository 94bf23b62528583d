// Network namespaces for the demo lab: `ip`, `sysctl` and `nft` run with argument arrays (never a
// shell), and everything the lab creates carries the `cslab-` prefix so a crashed run's leftovers
// can be found and removed by name alone.
import { execFileSync } from "node:child_process";
import { lstatSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CapsyncError } from "@capsync/protocol";

/** Prefix of every namespace (and nothing else) the lab creates. */
export const LAB_PREFIX = "cslab-";
/** Prefix of the lab's temp directory: `<tmpdir>/capsync-demolab-XXXXXX`. */
export const LAB_DIR_PREFIX = "capsync-demolab-";
/** Written first into every lab dir: a dir without it is not ours, whatever its name. */
export const LAB_PID_FILE = "demo.pid";

export class LabError extends CapsyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("lab", message, options);
  }
}

function run(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"], timeout: 15_000, ...(input !== undefined ? { input } : {}) });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    const why = err.code === "ENOENT" ? `${cmd}: command not found` : (err.stderr?.trim() || err.message).split("\n").slice(-3).join("; ");
    throw new LabError(`${cmd} ${args.join(" ")}: ${why}`, { cause: e });
  }
}

export function ip(...args: string[]): string {
  return run("ip", args);
}

/** Run a program inside a namespace (`ip netns exec`), stdin from `input`. */
export function nsExec(ns: string, argv: string[], input?: string): string {
  return run("ip", ["netns", "exec", ns, ...argv], input);
}

export type Availability = { ok: true } | { ok: false; reason: string };

/** Root and a working `ip netns` (iproute2); nothing is created. */
export function netnsAvailable(): Availability {
  if (process.getuid?.() !== 0) return { ok: false, reason: "not running as root" };
  try {
    execFileSync("ip", ["netns", "list"], { stdio: ["ignore", "pipe", "pipe"], timeout: 5000 });
    return { ok: true };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    return { ok: false, reason: err.code === "ENOENT" ? "`ip` (iproute2) is not installed" : `\`ip netns list\` failed: ${err.stderr?.toString().trim() || err.message}` };
  }
}

/** A program the lab needs, found on PATH (checked with `<cmd> --version`, no shell). */
export function haveCommand(cmd: string, versionArg = "--version"): boolean {
  try {
    execFileSync(cmd, [versionArg], { stdio: "ignore", timeout: 5000 });
    return true;
  } catch (e) {
    // Some tools exit non-zero for --version; only "not found" means missing.
    return (e as NodeJS.ErrnoException).code !== "ENOENT";
  }
}

export function listNamespaces(): string[] {
  return ip("netns", "list")
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter(Boolean);
}

export function labNamespaces(): string[] {
  return listNamespaces().filter((n) => n.startsWith(LAB_PREFIX));
}

/** Processes inside a namespace (`ip netns pids`); [] when it is gone. */
export function namespacePids(ns: string): number[] {
  try {
    return ip("netns", "pids", ns)
      .split(/\s+/)
      .filter((p) => /^\d+$/.test(p))
      .map(Number);
  } catch {
    return [];
  }
}

export function addNamespace(ns: string): void {
  ip("netns", "add", ns);
}

export function deleteNamespace(ns: string): void {
  try {
    ip("netns", "del", ns);
  } catch {
    // already gone
  }
}

export function sysctl(ns: string, ...settings: string[]): void {
  nsExec(ns, ["sysctl", "-q", "-w", ...settings]);
}

/** Load an nftables ruleset (nft -f -) inside a namespace; atomic. */
export function nft(ns: string, ruleset: string): void {
  nsExec(ns, ["nft", "-f", "-"], ruleset);
}

/** Root-namespace links whose name starts with the lab prefix (there should never be any). */
export function labLinksInRoot(): string[] {
  return ip("-o", "link", "show")
    .split("\n")
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? "")
    .filter((n) => n.startsWith(LAB_PREFIX));
}

export function processArgv(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return undefined;
  }
}

/** Live processes (not this one) whose command line mentions `needle`. */
export function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    const argv = processArgv(Number(p));
    if (argv?.some((a) => a.includes(needle))) out.push(Number(p));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill 0 but is gone for our purposes.
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** SIGTERM, wait up to graceMs, then SIGKILL and wait (bounded) for them to go. */
export async function terminate(pids: number[], graceMs = 3000): Promise<void> {
  const targets = [...new Set(pids)].filter((p) => p !== process.pid && p > 1);
  for (const p of targets) {
    try {
      process.kill(p, "SIGTERM");
    } catch {
      /* gone */
    }
  }
  for (let waited = 0; waited < graceMs && targets.some(alive); waited += 50) await sleep(50);
  for (const p of targets.filter(alive)) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  for (let waited = 0; waited < 2000 && targets.some(alive); waited += 50) await sleep(50);
}

export interface LeftoverReport {
  namespaces: string[];
  processes: number[];
  dirs: string[];
  links: string[];
}

/**
 * Remove what a previous (crashed, killed or --keep) lab left behind: processes in `cslab-*`
 * namespaces or mentioning a lab dir, the namespaces, any `cslab-*` link, and the lab dirs.
 * Lab dirs are only touched when they are real directories owned by us (no symlink games in /tmp)
 * holding the lab's pid file, so another tool's temp dir with a similar name is never matched.
 */
export async function removeLabLeftovers(tmpRoot: string, exceptDir?: string): Promise<LeftoverReport> {
  const namespaces = labNamespaces();
  const dirs = readdirSync(tmpRoot)
    .filter((n) => n.startsWith(LAB_DIR_PREFIX))
    .map((n) => join(tmpRoot, n))
    .filter((d) => d !== exceptDir)
    .filter((d) => {
      try {
        const st = lstatSync(d);
        return st.isDirectory() && st.uid === process.getuid?.() && lstatSync(join(d, LAB_PID_FILE)).isFile();
      } catch {
        return false;
      }
    });
  const pids = new Set<number>();
  for (const ns of namespaces) for (const p of namespacePids(ns)) pids.add(p);
  for (const d of dirs) for (const p of processesMentioning(d)) pids.add(p);
  pids.delete(process.pid);
  await terminate([...pids]);
  for (const ns of namespaces) deleteNamespace(ns);
  const links = labLinksInRoot();
  for (const l of links) {
    try {
      ip("link", "del", l);
    } catch {
      /* went with its namespace */
    }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  return { namespaces, processes: [...pids], dirs, links };
}

/** A demo still running from another lab dir (its pid file names a live `cpe-capture demo`), if any. */
export function runningLab(tmpRoot: string, exceptDir?: string): { pid: number; dir: string } | undefined {
  for (const n of readdirSync(tmpRoot)) {
    if (!n.startsWith(LAB_DIR_PREFIX)) continue;
    const dir = join(tmpRoot, n);
    if (dir === exceptDir) continue;
    let pid: number;
    try {
      pid = Number(readFileSync(join(dir, LAB_PID_FILE), "utf8").trim());
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || !alive(pid)) continue;
    if (processArgv(pid)?.includes("demo")) return { pid, dir };
  }
  return undefined;
}
