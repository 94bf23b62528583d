// Process-table checks: which tcpdumps run, with which arguments.
import { readdirSync, readFileSync } from "node:fs";

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
