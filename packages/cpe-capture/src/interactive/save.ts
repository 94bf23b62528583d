// Writes the config file the interactive answers describe (and, only on request, the password
// files it names). The config never holds a password: `{ env }` or `{ file }` references only.

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { parseConfigText } from "../config/loader.js";
import { passwordEnvName, renderConfigFile, toRawConfig, writeFileAtomic, type Answers, type PasswordRef } from "./answers.js";
import type { SavePlan } from "./prompts.js";

/**
 * Write `save.path` (atomically) and, when asked, the password files (mode 0600).
 * @returns what to tell the user, one line each.
 * @throws ConfigFileError only on a bug (the text is loaded back before it is written).
 */
export function saveConfigFile(a: Answers, passwords: readonly string[], save: SavePlan, now = new Date()): { text: string; notes: string[] } {
  const ref = (i: number): PasswordRef => (save.storage === "env" ? { env: passwordEnvName(i) } : { file: save.files[i]! });
  const header = [
    `capsync run config, written by \`cpe-capture interactive\` on ${now.toISOString()}.`,
    "The passwords are not in this file.",
    ...(save.storage === "env"
      ? [
          "Set them in the environment before running, e.g.:",
          ...a.devices.map((d, i) => `  read -rs ${passwordEnvName(i)} && export ${passwordEnvName(i)}    # ${d.username}@${d.address}`),
        ]
      : ["Each device's password is read from its file (one line, mode 0600)."]),
    `Run: cpe-capture run --config ${save.path}`,
  ];
  const text = renderConfigFile(toRawConfig(a, ref), save.path, header);
  // Load it back as `run --config` will: a file written here is a file `run` accepts.
  parseConfigText(text, { file: save.path, baseDir: dirname(save.path) });

  const notes = [`Saved ${save.path}.`];
  if (save.storage === "file" && save.writeFiles) {
    save.files.forEach((file, i) => {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      writeFileAtomic(file, `${passwords[i]!}\n`, 0o600);
    });
  }
  mkdirSync(dirname(save.path), { recursive: true });
  writeFileAtomic(save.path, text, 0o644);

  if (save.storage === "env") {
    const names = a.devices.map((_, i) => passwordEnvName(i)).join(", ");
    notes.push(`Before \`cpe-capture run --config ${save.path}\`, set ${names} (see the comment at the top of the file).`);
  } else if (save.writeFiles) {
    notes.push(`Wrote the password files (mode 0600): ${save.files.join(", ")}`);
  } else {
    notes.push(`Put each password in its file (one line, chmod 600): ${save.files.join(", ")}`);
  }
  return { text, notes };
}
