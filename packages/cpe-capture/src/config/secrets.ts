// Turns password references ({ env } / { file }) into values at run time, just before use.
// Error and warning texts name the reference (variable, file), never the value.

import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { ConfigFileError, type ConfigIssue } from "./loader.js";
import type { SecretRef } from "./credentials.js";
import { formatPath } from "./issues.js";
import type { RunConfig } from "./run-config.js";

export interface ResolvedSecret {
  value: string;
  /** e.g. the file is readable by group/others. */
  warnings: string[];
}

export interface ResolveOptions {
  /** Defaults to process.env; tests pass their own. */
  env?: NodeJS.ProcessEnv;
}

/** A password file is one short line; anything larger is the wrong file. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * Resolve one reference. `label` names it in messages, e.g. "devices[0].password".
 * @throws ConfigFileError, e.g. "devices[0].password: environment variable ROUTER1_PASSWORD is not set"
 */
export async function resolveSecret(ref: SecretRef, label: string, opts: ResolveOptions = {}): Promise<ResolvedSecret> {
  const r = await tryResolve(ref, opts);
  if (!r.ok) throw new ConfigFileError([{ file: undefined, line: 0, path: label, message: r.message }]);
  return { value: r.value, warnings: r.warnings.map((w) => `${label}: ${w}`) };
}

export interface ResolvedDeviceSecrets {
  /** Index-aligned with config.devices. */
  passwords: string[];
  /** Every resolved value, for redact() in logs and manifests. */
  secrets: string[];
  warnings: string[];
}

/**
 * Resolve every device password; all failures are reported together, one per line.
 * @throws ConfigFileError
 */
export async function resolveDeviceSecrets(config: RunConfig, opts: ResolveOptions = {}): Promise<ResolvedDeviceSecrets> {
  const results = await Promise.all(config.devices.map((d) => tryResolve(d.password, opts)));
  const issues: ConfigIssue[] = [];
  const warnings: string[] = [];
  const passwords: string[] = [];
  results.forEach((r, i) => {
    const path = formatPath(["devices", i, "password"]);
    if (!r.ok) issues.push({ file: undefined, line: 0, path, message: r.message });
    else {
      passwords.push(r.value);
      warnings.push(...r.warnings.map((w) => `${path}: ${w}`));
    }
  });
  if (issues.length > 0) throw new ConfigFileError(issues);
  return { passwords, secrets: [...new Set(passwords)], warnings };
}

type Attempt = { ok: true; value: string; warnings: string[] } | { ok: false; message: string };

async function tryResolve(ref: SecretRef, opts: ResolveOptions): Promise<Attempt> {
  switch (ref.kind) {
    case "plain":
      return { ok: true, value: ref.value, warnings: [] };
    case "env": {
      const value = (opts.env ?? process.env)[ref.env];
      if (value === undefined) return { ok: false, message: `environment variable ${ref.env} is not set` };
      if (value === "") return { ok: false, message: `environment variable ${ref.env} is empty` };
      return { ok: true, value, warnings: [] };
    }
    case "file":
      return readSecretFile(ref.file);
  }
}

async function readSecretFile(file: string): Promise<Attempt> {
  let handle;
  try {
    // O_NONBLOCK: a FIFO given by mistake must fail the isFile() check below, not hang the run.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { ok: false, message: `file ${file} does not exist` };
    if (code === "EACCES") return { ok: false, message: `file ${file} is not readable (permission denied)` };
    return { ok: false, message: `file ${file} cannot be opened (${code ?? "error"})` };
  }
  try {
    // One handle for stat and read, so the mode we check is the mode of the file we read.
    const st = await handle.stat();
    if (!st.isFile()) return { ok: false, message: `${file} is not a regular file` };
    if (st.size > MAX_SECRET_FILE_BYTES) return { ok: false, message: `file ${file} is too large for a password (${st.size} bytes)` };
    const value = (await handle.readFile({ encoding: "utf8" })).trim();
    if (value === "") return { ok: false, message: `file ${file} is empty` };
    if (/[\r\n]/.test(value)) return { ok: false, message: `file ${file} has more than one line; it must hold only the password` };
    const warnings: string[] = [];
    const mode = st.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      warnings.push(`file ${file} is accessible by group/others (mode ${mode.toString(8).padStart(4, "0")}); chmod 600 it`);
    }
    return { ok: true, value, warnings };
  } catch (e) {
    return { ok: false, message: `file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"})` };
  } finally {
    await handle.close();
  }
}
