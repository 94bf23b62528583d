// Process-table checks: which tcpdumps run, with which arguments.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export function processesMatching(pred: (argv: string[]) => boolean): { pid: number; argv: string[] }[] {
  const out: { pid: number; argv: string[] }[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").filter(Boolean);
      if (argv.length && pred(argv)) out.push({ pid: Number(p), argv });
    } catch {
      /* exited */
    }
  }
  return out;
}

/** tcpdump processes capturing `host <device>`. */
export function tcpdumpsFor(device: string): { pid: number; argv: string[] }[] {
  return processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && a.at(-1) === device && a.at(-2) === "host");
}

/**
 * tcpdumps for `device` writing under `dir` (one test's own, when the same test may run elsewhere
 * on the machine): the agent starts tcpdump in its capture dir's .incoming with a relative -w name,
 * so the dir is tcpdump's working directory rather than a path in its arguments.
 */
export function tcpdumpsUnder(device: string, dir: string): { pid: number; argv: string[] }[] {
  const under = (p: string) => p.startsWith(`${dir}/`);
  return tcpdumpsFor(device).filter((t) => {
    if (t.argv.some(under)) return true;
    try {
      return under(readlinkSync(`/proc/${t.pid}/cwd`));
    } catch {
      return false;
    }
  });
}

/**
 * A logged spawn of tcpdump: the agent runs it directly, or (to give an orphan its own time bound)
 * as `perl -e <alarm; exec> <secs> tcpdump <args…>`, which keeps tcpdump's pid.
 */
export function isTcpdumpSpawn(e: { file: string; args: string[] }): boolean {
  return /tcpdump$/.test(e.file) || (/perl$/.test(e.file) && /tcpdump$/.test(e.args[3] ?? ""));
}

/** The spawn with tcpdump's own argv in `args`, whichever way it was started. */
export function tcpdumpArgv<T extends { file: string; args: string[] }>(e: T): T {
  return /perl$/.test(e.file) ? { ...e, file: e.args[3]!, args: e.args.slice(4) } : e;
}
