// Recovery at start-up without a usable state file (torn by a power cut, emptied, deleted): the
// agent's own tcpdumps are found in the process table by their marker — working directory the
// agent's incoming dir, `-w tmp_device_<device>_<time>.pcap` — and adopted; files of captures that
// no process and no record explain are kept in the capture dir, never deleted.
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@capsync/common";
import { unusedName } from "./naming.js";
import type { SessionRecord } from "./state.js";
import { readStderrFile, removeStderrFile, stderrPathFor } from "./stderr-file.js";

/** A tcpdump of this agent's, read back from its command line. */
export interface FoundTcpdump {
  pid: number;
  tmpName: string;
  device: string;
  iface: string;
  filter: string[];
  ring: boolean;
  /** -C x -W in MB, when it writes a ring. */
  ringMb?: number;
  startedAt: string;
}

const TMP_NAME = /^tmp_device_(.+)_([^_]+)\.pcap$/;
/** tcpdumpArgs' options and how many values each takes; the filter follows them. */
const ARITY: Record<string, number> = { "-i": 1, "-w": 1, "-Z": 1, "-s": 1, "-Q": 1, "-c": 1, "-B": 1, "-C": 1, "-W": 1, "-U": 0, "--immediate-mode": 0, "-n": 0 };

/** Parse a tcpdump argv the agent built (tcpdumpArgs); undefined when it is not one. */
export function parseOwnArgv(argv: readonly string[]): Omit<FoundTcpdump, "pid" | "startedAt"> | undefined {
  if (!/(^|\/)tcpdump$/.test(argv[0] ?? "")) return undefined;
  const opts = new Map<string, string>();
  let i = 1;
  while (i < argv.length && argv[i]! in ARITY) {
    const n = ARITY[argv[i]!]!;
    opts.set(argv[i]!, argv[i + 1] ?? "");
    i += 1 + n;
  }
  const out = opts.get("-w");
  const m = out ? TMP_NAME.exec(out) : null;
  if (!out || !m) return undefined;
  const ring = opts.has("-C") && opts.has("-W");
  return {
    tmpName: out,
    // addressToken wrote an IPv6 address's colons as dashes.
    device: m[1]!.replace(/-/g, ":"),
    iface: opts.get("-i") ?? "any",
    filter: argv.slice(i),
    ring,
    ...(ring ? { ringMb: Number(opts.get("-C")) * Number(opts.get("-W")) } : {}),
  };
}

/** Boot time in epoch ms (/proc/stat btime), for process start times. */
function bootMs(): number {
  const m = /^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"));
  return m ? Number(m[1]) * 1000 : 0;
}

/** tcpdumps running in `incoming` (this agent's), with what their command lines say. */
export function ownTcpdumps(incoming: string): FoundTcpdump[] {
  return scan(incoming).own;
}

/** The -w names of every process (a device's tcpdump, a shared one) running in `incoming`. */
function outputsRunningIn(incoming: string): Set<string> {
  return scan(incoming).outputs;
}

/** A live process (not a zombie) whose working directory is `dir`: its argv and /proc stat fields after the name. */
export interface ProcessIn {
  pid: number;
  argv: string[];
  stat: string[];
}

/**
 * Every live process working in `incoming` (the agent starts each tcpdump there, per-device and
 * shared alike, so that is how an agent finds the ones an earlier agent left).
 */
export function processesWorkingIn(incoming: string): ProcessIn[] {
  let dir: string;
  try {
    dir = realpathSync(incoming);
  } catch {
    return [];
  }
  const out: ProcessIn[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readlinkSync(`/proc/${p}/cwd`) !== dir) continue;
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").filter(Boolean);
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z" || fields[0] === "X") continue;
      out.push({ pid: Number(p), argv, stat: fields });
    } catch {
      /* exited, or not ours to read */
    }
  }
  return out;
}

function scan(incoming: string): { own: FoundTcpdump[]; outputs: Set<string> } {
  const own: FoundTcpdump[] = [];
  const outputs = new Set<string>();
  let boot: number | undefined;
  for (const { pid, argv, stat } of processesWorkingIn(incoming)) {
    const w = argv.indexOf("-w");
    if (w >= 0 && argv[w + 1]) outputs.add(argv[w + 1]!);
    const parsed = parseOwnArgv(argv);
    if (!parsed) continue;
    // Field 22 (starttime, in clock ticks since boot; USER_HZ is 100 on Linux).
    boot ??= bootMs();
    const started = boot + Number(stat[19]) * 10;
    own.push({ pid, ...parsed, startedAt: new Date(started).toISOString() });
  }
  return { own, outputs };
}

/** A session record for a tcpdump found running (its spec, if it had one, is not in its argv). */
export function foundRecord(f: FoundTcpdump): SessionRecord {
  return {
    device: f.device,
    state: "capturing",
    tmpName: f.tmpName,
    ring: f.ring,
    ...(f.ringMb ? { ringMb: f.ringMb } : {}),
    iface: f.iface,
    filter: f.filter,
    pid: f.pid,
    startedAt: f.startedAt,
  };
}

/**
 * Files in `incoming` that belong to no capture in `known` (tmp names): the output of a tcpdump that
 * ended while no agent knew it. Moved into `dir` under their own names (kept for the operator),
 * their stderr files read for the log and removed. Returns the kept names.
 */
export function keepStrayFiles(dir: string, incoming: string, known: ReadonlySet<string>, log: Logger): string[] {
  if (!existsSync(incoming)) return [];
  const kept: string[] = [];
  /** Asked only when a stderr file names no known capture: a process may still write it (a shared tcpdump being adopted). */
  let live: Set<string> | undefined;
  for (const f of readdirSync(incoming).sort()) {
    const stderr = f.startsWith(".") && f.endsWith(".stderr");
    const base = stderr ? f.slice(1, -".stderr".length) : f.replace(/\d+$/, "");
    if (known.has(base)) continue;
    const path = join(incoming, f);
    // Any tcpdump's stderr file whose process is gone (a shared spool's too): said, then removed.
    if (stderr) {
      if ((live ??= outputsRunningIn(incoming)).has(base)) continue;
      const last = readStderrFile(path).trim().split("\n").slice(-2).join("; ");
      if (last && TMP_NAME.test(base)) log.warn(`tcpdump writing ${base} ended while no agent knew it; its last words: ${last.slice(0, 300)}`);
      removeStderrFile(path);
      continue;
    }
    if (!TMP_NAME.test(base)) continue;
    try {
      if (!statSync(path).isFile()) continue;
      const name = unusedName(dir, f);
      renameSync(path, join(dir, name));
      kept.push(name);
    } catch {
      /* raced with something else: left where it is */
    }
  }
  if (kept.length) log.warn(`kept ${kept.length} capture file(s) no state record named, in ${dir}: ${kept.join(", ").slice(0, 400)}`);
  return kept;
}

/** The stderr file of a session's tcpdump. */
export function sessionStderr(incoming: string, tmpName: string): string {
  return stderrPathFor(join(incoming, tmpName));
}
