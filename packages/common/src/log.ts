// The log both the agent and the orchestrator write: winston to the console and an optional file
// (log-file.ts: size-bounded, reopened on SIGHUP), every line passed through redaction first.
import winston from "winston";
import { redact } from "@capsync/protocol";
import { LogFileTransport } from "./log-file.js";

export type Logger = winston.Logger;

export interface LoggerOptions {
  file?: string;
  /** With `file`: a service log (log-file.ts) rotated at this size (0 = never, logrotate's job), keeping this many old files (default 5). */
  fileMaxBytes?: number;
  fileMaxFiles?: number;
  level?: string;
  secrets?: () => Iterable<string>;
  console?: boolean;
}

export function createLogger(opts: LoggerOptions): Logger {
  const secrets = opts.secrets ?? (() => []);
  const scrub = winston.format((info) => {
    info.message = redact(String(info.message), secrets());
    return info;
  });
  const line = winston.format.printf((i) => `${i.timestamp as string} ${i.level.toUpperCase().padEnd(5)} ${i.message as string}`);
  const transports: winston.transport[] = [];
  if (opts.console !== false) transports.push(new winston.transports.Console({ stderrLevels: ["error", "warn", "info", "debug"] }));
  // A service's log (the agent's: fileMaxBytes given) is bounded and reopenable; a run's log in its
  // run folder (the orchestrator's) stays winston's buffered file, one file per run.
  if (opts.file && opts.fileMaxBytes !== undefined) transports.push(new LogFileTransport({ path: opts.file, maxBytes: opts.fileMaxBytes, maxFiles: opts.fileMaxFiles ?? 5 }));
  else if (opts.file) transports.push(new winston.transports.File({ filename: opts.file }));
  return winston.createLogger({
    level: opts.level ?? "info",
    format: winston.format.combine(scrub(), winston.format.timestamp(), line),
    transports,
  });
}

/** Reopen the logger's files (SIGHUP after logrotate); the paths it reopened. */
export function reopenLogFiles(log: Logger): string[] {
  const files = log.transports.filter((t): t is LogFileTransport => t instanceof LogFileTransport);
  for (const f of files) f.reopen();
  return files.map((f) => f.path);
}
