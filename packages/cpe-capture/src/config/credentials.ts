// Secrets and TLS trust in the run config: password references ({ env } / { file }, a plain
// string only where allowed), the stricter references for keys and tokens, a device's TLS
// setting, and how references are shown and made absolute. Values are read later (secrets.ts).
import type { HttpsTrust } from "@capsync/common";
import { PASSWORD_ENV_EXAMPLE } from "./devices.js";
import { parseFilePath } from "./fields.js";
import { describeValue, fail, isObject, isPlainObject, kindOf, ok, prefix, suggest, unknownKeys, type Parsed, type PathIssue } from "./issues.js";

/** A password by reference; `plain` only exists when the config allows it (allowPlain: true). */
export type SecretRef =
  | { kind: "env"; env: string }
  | { kind: "file"; file: string }
  | { kind: "plain"; value: string };

/** A device's TLS trust: the HTTPS clients' own type. */
export type TlsConfig = HttpsTrust;

/** What `validate` shows for a plain-text secret. */
export const SECRET_MASK = "***";

export type DisplaySecret = { env: string } | { file: string } | typeof SECRET_MASK;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_SHAPE = "expected { env: NAME } or { file: PATH } (a plain string only with allowPlain: true)";

/**
 * A password: `{ env: NAME }`, `{ file: PATH }` or a plain string (refused later unless allowed).
 * Messages never contain the value, and not even unknown key names: a user who writes the
 * password as a key (`password: { hunter2: }`) must not see it echoed in a log.
 */
export function parseSecret(v: unknown): Parsed<SecretRef> {
  if (typeof v === "string") return v === "" ? fail("must not be empty") : ok({ kind: "plain", value: v });
  if (!isPlainObject(v)) return fail(`${SECRET_SHAPE}, got ${kindOf(v)}`);
  const keys = Object.keys(v);
  const others = keys.filter((k) => k !== "env" && k !== "file");
  if (others.length > 0) {
    const hint = others.map((k) => suggest(k, ["env", "file"])).find((h) => h !== undefined);
    return fail(`${SECRET_SHAPE}; found another key${hint ? ` (did you mean '${hint}'?)` : ""}`);
  }
  if (keys.length !== 1) return fail(keys.length === 0 ? SECRET_SHAPE : "use either env or file, not both");
  if ("env" in v) {
    return typeof v.env === "string" && ENV_NAME.test(v.env)
      ? ok({ kind: "env", env: v.env })
      : fail(`expected an environment variable name like ${PASSWORD_ENV_EXAMPLE}, got ${describeValue(v.env)}`, ["env"]);
  }
  const file = parseFilePath(v.file);
  return file.ok ? ok({ kind: "file", file: file.value }) : { ok: false, issues: prefix(["file"], file.issues) };
}

/** `{ env: NAME }` or `{ file: PATH }`; plain strings are refused: these are keys and tokens. */
export function parseSecretRef(v: unknown, path: (string | number)[], issues: PathIssue[]): SecretRef | undefined {
  const shape = "expected { env: NAME } or { file: PATH } (never the secret itself)";
  if (!isObject(v)) {
    issues.push({ path, message: `${shape}, got ${typeof v === "string" ? "a string" : describeValue(v)}` });
    return undefined;
  }
  const keys = Object.keys(v);
  if (keys.length !== 1 || !["env", "file"].includes(keys[0]!)) {
    issues.push({ path, message: shape });
    return undefined;
  }
  if ("env" in v) {
    if (typeof v.env === "string" && ENV_NAME.test(v.env)) return { kind: "env", env: v.env };
    issues.push({ path: [...path, "env"], message: `expected an environment variable name, got ${describeValue(v.env)}` });
    return undefined;
  }
  if (typeof v.file === "string" && v.file.trim() !== "" && !v.file.includes("\0")) return { kind: "file", file: v.file };
  issues.push({ path: [...path, "file"], message: `expected a file path, got ${describeValue(v.file)}` });
  return undefined;
}

export function parseTls(v: unknown): Parsed<TlsConfig> {
  if (v === "verify" || v === "insecure") return ok({ mode: v });
  if (isPlainObject(v)) {
    const issues = unknownKeys(v, ["ca"]);
    const ca = parseFilePath(v.ca);
    if (v.ca === undefined) issues.push({ path: ["ca"], message: "required" });
    else if (!ca.ok) issues.push(...prefix(["ca"], ca.issues));
    return issues.length === 0 && ca.ok ? ok({ mode: "ca", ca: ca.value }) : { ok: false, issues };
  }
  return fail(`expected verify|insecure or { ca: PATH }, got ${describeValue(v)}`);
}

/** A `{ file }` reference made absolute (relative to the config file's folder); others unchanged. */
export function absoluteSecretRef<T extends { kind: string }>(r: T, abs: (p: string) => string): T {
  return r.kind === "file" ? { ...r, file: abs((r as unknown as { file: string }).file) } : r;
}

/** A reference as written (a variable or file name is not the secret); a plain value masked. */
export function displaySecretRef(r: SecretRef): DisplaySecret {
  switch (r.kind) {
    case "env":
      return { env: r.env };
    case "file":
      return { file: r.file };
    case "plain":
      return SECRET_MASK;
  }
}
