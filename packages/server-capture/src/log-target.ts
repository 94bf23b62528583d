// Where the agent logs: never into the capture directory (the capture disk fills for other
// reasons, and SFTP serves that directory). Under systemd stderr is the journal, which rotates
// itself; otherwise a size-bounded file under /var/log/capsync, reopened on SIGHUP for logrotate.
import { fstatSync } from "node:fs";
import { type Logger, createLogger } from "@capsync/common";

export const DEFAULT_LOG_FILE = "/var/log/capsync/server-capture.log";
export const DEFAULT_LOG_MAX_MB = 50;
export const DEFAULT_LOG_FILES = 5;

export interface LogTargetOptions {
  /** A path, "-" (stderr only), or undefined (the default above). */
  logFile?: string;
  logMaxSize: number;
  logFiles: number;
  logLevel: string;
  secrets: () => Iterable<string>;
}

/**
 * systemd sets JOURNAL_STREAM to the device:inode of the stream it connected to the journal; it
 * only counts while stderr still is that stream (a child of the unit may have redirected it).
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? "");
  if (!m) return false;
  try {
    const st = fstatSync(2, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

/** The agent's logger and where it writes; `error` only for an explicit --log-file that cannot be opened. */
export function agentLogger(o: LogTargetOptions): { log: Logger; target: string; warning?: string } | { error: string } {
  const make = (file?: string) =>
    createLogger({ ...(file ? { file, fileMaxBytes: o.logMaxSize * 1024 * 1024, fileMaxFiles: o.logFiles } : {}), level: o.logLevel, secrets: o.secrets });
  if (o.logFile === "-") return { log: make(), target: "stderr" };
  if (o.logFile !== undefined) {
    try {
      return { log: make(o.logFile), target: o.logFile };
    } catch (e) {
      return { error: `--log-file ${o.logFile}: cannot open (${(e as Error).message})` };
    }
  }
  if (stderrIsJournal()) return { log: make(), target: "the journal (stderr)" };
  try {
    return { log: make(DEFAULT_LOG_FILE), target: DEFAULT_LOG_FILE };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return { log: make(), target: "stderr", warning: `cannot open ${DEFAULT_LOG_FILE} (${code}): logging to stderr only; give --log-file <path> or --log-file -` };
  }
}
