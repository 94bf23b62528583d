// The one error tree shared by every capsync package (NAPALM-style: one base, stable codes).
// Expected per-device outcomes are data in the manifest; these are for aborting an operation.

export class CapsyncError extends Error {
  /** Stable, machine-readable code, e.g. "device-auth", "config", "agent-timeout". */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The base of an error class whose code is always `code`; the subclass gives it its name. */
function withCode(code: string): new (message: string, options?: { cause?: unknown }) => CapsyncError {
  return class extends CapsyncError {
    constructor(message: string, options?: { cause?: unknown }) {
      super(code, message, options);
    }
  };
}

export class ConfigError extends withCode("config") {}
export class DeviceAuthError extends withCode("device-auth") {}
export class DeviceUnreachableError extends withCode("device-unreachable") {}
export class DeviceTimeoutError extends withCode("device-timeout") {}
/** The device answered, but not what the contract expects (4xx/5xx with description, bad body, busy). */
export class DeviceProtocolError extends CapsyncError {
  readonly httpStatus: number | undefined;
  constructor(message: string, options?: { cause?: unknown; httpStatus?: number; code?: string }) {
    super(options?.code ?? "device-protocol", message, options);
    this.httpStatus = options?.httpStatus;
  }
}
/** The orchestrator's failures with an agent; `code` names which (e.g. "agent-timeout"). */
export class AgentError extends CapsyncError {}

interface CompiledSecrets {
  /** The caller's array as last seen, to notice pushes and replacements. */
  seen: string[];
  /** Longest first, duplicates and short values dropped. */
  list: string[];
  /** Matches any secret: the cheap "nothing to hide" answer for almost every text. */
  any: RegExp | null;
}
const compiledSecrets = new WeakMap<readonly string[], CompiledSecrets>();

function sortedSecrets(secrets: Iterable<string>): string[] {
  return [...new Set(secrets)].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
}

function compileSecrets(arr: readonly string[]): CompiledSecrets {
  const hit = compiledSecrets.get(arr);
  if (hit && hit.seen.length === arr.length && hit.seen.every((s, i) => s === arr[i])) return hit;
  const list = sortedSecrets(arr);
  const any = list.length ? new RegExp(list.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")) : null;
  const c = { seen: [...arr], list, any };
  compiledSecrets.set(arr, c);
  return c;
}

/**
 * Replace every occurrence of each secret in `text` with `***` (longest first, so overlaps stay hidden).
 * A run redacts every event, task output and log line against the same list (a password per device:
 * a thousand for a fleet), so the list is sorted once per array and one regular expression answers
 * "no secret here" for most texts; only texts that hold a secret take the replacing loop.
 */
export function redact(text: string, secrets: Iterable<string>): string {
  let list: string[];
  if (Array.isArray(secrets)) {
    const c = compileSecrets(secrets as readonly string[]);
    // Only a filter, not a regex replace: /a|b/ takes the leftmost match, so of overlapping secrets
    // "abc" and "bcdef" in "abcdef" it would hide "abc" and leave "def" of the longer one readable.
    if (!c.any?.test(text)) return text;
    list = c.list;
  } else list = sortedSecrets(secrets);
  let out = text;
  for (const s of list) if (out.includes(s)) out = out.split(s).join("***");
  return out;
}
