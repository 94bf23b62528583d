// `cpe-capture interactive` (also plain `cpe-capture` on a terminal): ask for the devices and
// settings, optionally save them as a config file for `run --config`, then run with the live
// status table. Passwords are typed, kept in memory and handed to the run; never saved.

import { loadKeyFile } from "@capsync/common";
import { configFromObject } from "../config/loader.js";
import {
  answersFile,
  flowAgents,
  loadAnswers,
  passwordEnvName,
  saveAnswers,
  toRawConfig,
  type Answers,
} from "../interactive/answers.js";
import { askPlan, type Plan } from "../interactive/prompts.js";
import { saveConfigFile } from "../interactive/save.js";
import { runConfig, type Io } from "./run.js";

/** Ctrl-C at a question: the shell convention for "interrupted"; nothing was written or started. */
export const EXIT_CANCELLED = 130;

export const NOT_A_TERMINAL =
  "cpe-capture: stdin is not a terminal, so there is no one to ask; give a config file instead: cpe-capture run --config <file>";
const STDOUT_NOT_A_TERMINAL =
  "cpe-capture: stdout is not a terminal, so the questions cannot be shown; give a config file instead: cpe-capture run --config <file>";

export interface InteractiveIo extends Io {
  /** Defaults to process.stdin. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

export async function interactiveCommand(io: InteractiveIo): Promise<number> {
  const stdin = io.stdin ?? process.stdin;
  if (!stdin.isTTY) {
    io.stderr.write(`${NOT_A_TERMINAL}\n`);
    return 2;
  }
  if (!io.stdout.isTTY) {
    io.stderr.write(`${STDOUT_NOT_A_TERMINAL}\n`);
    return 2;
  }
  const cwd = process.cwd();
  const remembered = answersFile();
  const { answers: previous, notes } = loadAnswers(remembered, cwd);
  for (const n of notes) io.stderr.write(`note: ${n}\n`);
  io.stdout.write(`cpe-capture interactive: your answers (never passwords) are remembered in ${remembered}. Ctrl-C quits without saving anything.\n`);

  let plan: Plan;
  try {
    plan = await askPlan(previous, { input: stdin, output: io.stdout, cwd, runBlocker });
  } catch (e) {
    if (e instanceof Error && (e.name === "ExitPromptError" || e.name === "AbortPromptError")) {
      io.stderr.write("\ncancelled: nothing was saved or started\n");
      return EXIT_CANCELLED;
    }
    throw e;
  }

  if (plan.save) {
    const saved = saveConfigFile(plan.answers, plan.passwords, plan.save);
    io.stdout.write(`\n${saved.notes.join("\n")}\n`);
  }
  try {
    saveAnswers(remembered, plan.answers);
  } catch (e) {
    // Losing the defaults for next time is no reason to stop the user's run.
    io.stderr.write(`warning: could not remember the answers in ${remembered}: ${(e as Error).message}\n`);
  }
  if (plan.action === "save") return 0;

  // The run gets the same config with environment references, resolved from a private map:
  // the typed passwords never enter process.env, where child processes would inherit them.
  const env = Object.fromEntries(plan.passwords.map((p, i) => [passwordEnvName(i), p]));
  const { config } = configFromObject(toRawConfig(plan.answers, (i) => ({ env: passwordEnvName(i) })), { baseDir: cwd });
  io.stdout.write("\nStarting. Ctrl-C stops every capture and collects the files (a second Ctrl-C quits at once).\n");
  const summary = await runConfig(config, io, { json: false, env });
  return summary.exitCode;
}

function runBlocker(a: Answers): string | undefined {
  if (a.devices.some((d) => d.agents.length > 0) || flowAgents(a.flow).length > 0) {
    if (a.keyFile === undefined) return "the agents need a key file";
    try {
      loadKeyFile(a.keyFile);
    } catch (e) {
      return (e as Error).message;
    }
  }
  return undefined;
}
