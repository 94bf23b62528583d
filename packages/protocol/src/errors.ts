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

export class ConfigError extends CapsyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("config", message, options);
  }
}
export class DeviceAuthError extends CapsyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("device-auth", message, options);
  }
}
export class DeviceUnreachableError extends CapsyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("device-unreachable", message, options);
  }
}
export class DeviceTimeoutError extends CapsyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("device-timeout", message, options);
  }
}
/** The device answered, but not what the contract expects (4xx/5xx with description, bad body, busy). */
export class DeviceProtocolError extends CapsyncError {
  readonly httpStatus: number | undefined;
  constructor(message: string, options?: { cause?: unknown; httpStatus?: number; code?: string }) {
    super(options?.code ?? "device-protocol", message, options);
    this.httpStatus = options?.httpStatus;
  }
}
export class AgentError extends CapsyncError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Replace every occurrence of each secret in `text` with `***` (longest first, so overlaps stay hidden). */
export function redact(text: string, secrets: Iterable<string>): string {
  const list = [...secrets].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of list) out = out.split(s).join("***");
  return out;
}
