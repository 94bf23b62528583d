// Shared captures across an agent restart: the shared tcpdumps an earlier agent left running (found
// in the process table by working directory = this agent's incoming dir and `-w spool-...`), for
// adoption (shared-capture.ts reads their spool on from where the dead agent stopped), and the
// removal of those nothing will adopt.
import { existsSync, readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@capsync/common";
import { processesWorkingIn } from "./recovery.js";

/** Every shared tcpdump writes `spool-...` in the incoming dir: never a device's tmp_device_ name. */
export const SPOOL_PREFIX = "spool-";

/** A running shared tcpdump, read back from its command line. */
export interface FoundSpool {
  pid: number;
  /** Its -w name (the spool's base). */
  base: string;
  direction?: "in" | "out";
  snaplen?: number;
  spool: { fileMb: number; files: number };
}

/** Shared tcpdumps running in `incoming`. */
export function findSharedSpools(incoming: string): FoundSpool[] {
  const out: FoundSpool[] = [];
  for (const { pid, argv } of processesWorkingIn(incoming)) {
    const opt = (o: string) => {
      const i = argv.indexOf(o);
      return i < 0 ? undefined : argv[i + 1];
    };
    const base = opt("-w");
    if (!/(^|\/)tcpdump$/.test(argv[0] ?? "") || !base?.startsWith(SPOOL_PREFIX)) continue;
    const q = opt("-Q");
    const s = opt("-s");
    out.push({
      pid,
      base,
      ...(q === "in" || q === "out" ? { direction: q } : {}),
      ...(s ? { snaplen: Number(s) } : {}),
      spool: { fileMb: Number(opt("-C") ?? 0), files: Number(opt("-W") ?? 0) },
    });
  }
  return out.filter((f) => f.spool.fileMb > 0 && f.spool.files > 0);
}

/**
 * Shared tcpdumps no session is left for are killed and their spool files removed (all spool files
 * but those of `keep`, by base). SIGKILL, synchronously: once delivered the process writes nothing
 * more, so the removal is final.
 */
export function reapSharedSpools(incoming: string, found: readonly FoundSpool[], keep: ReadonlySet<string>, log: Logger): void {
  for (const f of found) {
    if (keep.has(f.base)) continue;
    log.warn(`killing shared tcpdump pid ${f.pid} left by an earlier agent (${f.base}): no capture left to adopt it for`);
    try {
      process.kill(f.pid, "SIGKILL");
    } catch {
      /* gone meanwhile */
    }
  }
  if (!existsSync(incoming)) return;
  for (const f of readdirSync(incoming)) {
    if (!f.startsWith(SPOOL_PREFIX) || [...keep].some((b) => f.startsWith(b))) continue;
    try {
      unlinkSync(join(incoming, f));
    } catch {
      /* gone */
    }
  }
}
