#!/usr/bin/env node
// Entry point and error boundary: the only place that calls process.exit, with documented codes
// (0 all collected, 1 some devices failed or a runtime error, 2 bad input).
import { CapsyncError, ConfigError } from "@capsync/protocol";
import { buildProgram } from "./cli.js";
import type { Io } from "./commands/run.js";

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_BAD_INPUT = 2;

export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let pending: Promise<number> | undefined;
  const program = buildProgram(io, (p) => (pending = p));
  try {
    // No arguments at all: the interactive mode, which itself refuses (exit 2, pointing to
    // `run --config`) when stdin is not a terminal.
    await program.parseAsync(argv.length === 0 ? ["interactive"] : argv, { from: "user" });
    if (!pending) {
      io.stderr.write(program.helpInformation());
      return EXIT_BAD_INPUT;
    }
    return await pending;
  } catch (e) {
    return handleError(e, io);
  }
}

function handleError(e: unknown, io: Io): number {
  const ce = e as { code?: string; exitCode?: number };
  if (typeof ce.code === "string" && ce.code.startsWith("commander.")) {
    // commander already printed its message (or the help/version text).
    return ce.exitCode === 0 ? EXIT_OK : EXIT_BAD_INPUT;
  }
  if (e instanceof ConfigError || (e instanceof CapsyncError && e.code === "key-file")) {
    io.stderr.write(`${e.message}\n`);
    return EXIT_BAD_INPUT;
  }
  if (e instanceof CapsyncError) {
    io.stderr.write(`cpe-capture: ${e.message}\n`);
    return EXIT_FAILED;
  }
  io.stderr.write(`cpe-capture: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
  return EXIT_FAILED;
}

// Run when executed directly (not when imported by tests).
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("/cpe-capture")) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`cpe-capture: ${e.message}\n`);
      process.exit(EXIT_FAILED);
    },
  );
}
