// The log both the agent and the orchestrator write: winston to the console and an optional file,
// every line passed through redaction first.
import winston from "winston";
import { redact } from "@capsync/protocol";

export type Logger = winston.Logger;

export function createLogger(opts: { file?: string; level?: string; secrets?: () => Iterable<string>; console?: boolean }): Logger {
  const secrets = opts.secrets ?? (() => []);
  const scrub = winston.format((info) => {
    info.message = redact(String(info.message), secrets());
    return info;
  });
  const line = winston.format.printf((i) => `${i.timestamp as string} ${i.level.toUpperCase().padEnd(5)} ${i.message as string}`);
  const transports: winston.transport[] = [];
  if (opts.console !== false) transports.push(new winston.transports.Console({ stderrLevels: ["error", "warn", "info", "debug"] }));
  if (opts.file) transports.push(new winston.transports.File({ filename: opts.file }));
  return winston.createLogger({
    level: opts.level ?? "info",
    format: winston.format.combine(scrub(), winston.format.timestamp(), line),
    transports,
  });
}
