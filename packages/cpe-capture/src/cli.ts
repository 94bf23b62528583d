// The command table, nothing else (changesets-style): each command is a plain async function.
import { Command } from "commander";
import type { Io } from "./commands/run.js";

export function buildProgram(io: Io, setExit: (p: Promise<number>) => void): Command {
  const program = new Command("cpe-capture")
    .description("capsync orchestrator: capture on devices and their servers at once, stop on the Connection Lost alarm")
    .version("0.1.0")
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride()
    .addHelpText("after", "\nExit codes: 0 all collected, 1 some devices failed (listed), 2 bad input.");

  program
    .command("run")
    .description("start captures from a config file and collect them when the stop triggers fire")
    .requiredOption("-c, --config <file>", "run config (YAML or JSON)")
    .option("-o, --output <dir>", "override the config's output folder")
    .option("--json", "print machine-readable events (JSON lines) instead of the status table")
    .action(async (o: { config: string; output?: string; json?: boolean }) => {
      const { runCommand } = await import("./commands/run.js");
      setExit(runCommand(o, io));
    });

  program
    .command("validate")
    .description("check a config file and print it normalised (secrets as ***)")
    .requiredOption("-c, --config <file>", "run config (YAML or JSON)")
    .option("--json", "print JSON instead of YAML")
    .action(async (o: { config: string; json?: boolean }) => {
      const { validateCommand } = await import("./commands/validate.js");
      setExit(validateCommand(o, io));
    });

  program
    .command("interactive")
    .description("ask for the devices and settings (remembered, passwords never), optionally save them as a config file, then run; the default on a terminal")
    .action(async () => {
      const { interactiveCommand } = await import("./commands/interactive.js");
      setExit(interactiveCommand(io));
    });

  return program;
}
