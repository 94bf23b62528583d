// The agent client's defaults (deadlines per verb, resend backoff, requests in flight per agent)
// and the checks of a caller's options, made once when the client opens.
import { isIP } from "node:net";
import { AgentError, ConfigError, isVerb, type Verb } from "@capsync/protocol";
import type { AgentClientOptions, BackoffOptions, VerbTiming } from "./types.js";

// Without a 100 Trying every verb gets the same 8 s. After one, STOP and VERIFY get longer
// (tcpdump finalises its files / test traffic runs), and REGISTER calls the management server's
// REST API.
const afterTrying = (tryingDeadlineMs: number): VerbTiming => ({ deadlineMs: 8_000, tryingDeadlineMs });
export const DEFAULT_TIMING: Readonly<Record<Verb, VerbTiming>> = {
  REGISTER: afterTrying(30_000),
  CAPTURE: afterTrying(30_000),
  VERIFY: afterTrying(60_000),
  STOP: afterTrying(60_000),
  STATUS: afterTrying(8_000),
  PING: afterTrying(8_000),
};

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = {
  initialMs: 250,
  maxMs: 2_000,
  tryingResendMs: 2_000,
  resendWindowMs: 25_000,
};

// Well under the agent's intake queue (1024 datagrams), and wide enough that a fleet's STOPs to
// one agent do not queue behind the agent's round trips.
export const DEFAULT_MAX_IN_FLIGHT_PER_AGENT = 64;

// STOPs (what alarms wait for) go past that cap up to this many unacknowledged requests to one
// agent: an alarm burst of a thousand leaves at once, while a fleet-wide stop of ten thousand
// reaches the agent at the pace it acknowledges them. A quarter of the agent's intake (16,384).
export const DEFAULT_MAX_STOPS_IN_FLIGHT_PER_AGENT = 4_096;

// A request's answer deadline counts from its first send, so a queued request has its own bound:
// long enough for a fleet of thousands to drain through a live agent's acknowledgements.
export const DEFAULT_MAX_QUEUE_MS = 600_000;

/** ConfigError for anything open() cannot work with. */
export function checkOptions(opts: AgentClientOptions): void {
  if (opts.mode !== "v1" && opts.mode !== "legacy") throw new ConfigError(`agent mode must be 'v1' or 'legacy'`);
  if (opts.mode === "v1" && (!opts.key || opts.key.length === 0)) throw new ConfigError("agent mode v1 needs a key (agents.keyFile)");
  const max = opts.maxInFlightPerAgent;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1)) throw new ConfigError(`maxInFlightPerAgent must be an integer >= 1, got ${max}`);
  const stops = opts.maxStopsInFlightPerAgent;
  if (stops !== undefined && !(Number.isInteger(stops) && stops >= 1)) throw new ConfigError(`maxStopsInFlightPerAgent must be an integer >= 1, got ${stops}`);
  if (opts.maxQueueMs !== undefined) checkMs("maxQueueMs", opts.maxQueueMs);
  for (const [name, v] of Object.entries(opts.backoff ?? {})) checkMs(`backoff.${name}`, v);
  for (const [verb, t] of Object.entries(opts.timing ?? {})) {
    if (!isVerb(verb)) throw new ConfigError(`timing: unknown verb '${verb}'`);
    for (const [name, v] of Object.entries(t ?? {})) checkMs(`timing.${verb}.${name}`, v);
  }
  const b = opts.bind;
  if (b?.address !== undefined && isIP(b.address) === 0) throw new ConfigError(`bind address '${b.address}' is not an IP literal`);
  if (b?.port !== undefined && !(Number.isInteger(b.port) && b.port >= 0 && b.port <= 65535)) throw new ConfigError(`bind port ${b.port} is out of range`);
}

/** The defaults with the caller's per-verb overrides. */
export function resolveTiming(overrides: AgentClientOptions["timing"]): Record<Verb, VerbTiming> {
  const timing = {} as Record<Verb, VerbTiming>;
  for (const verb of Object.keys(DEFAULT_TIMING) as Verb[]) {
    timing[verb] = { ...DEFAULT_TIMING[verb], ...overrides?.[verb] };
  }
  return timing;
}

export function checkMs(name: string, v: unknown, E: typeof ConfigError | typeof AgentError = ConfigError): void {
  if (typeof v === "number" && Number.isFinite(v) && v > 0) return;
  const message = `${name} must be a positive number of milliseconds, got ${String(v)}`;
  throw E === AgentError ? new AgentError("agent-bad-request", message) : new ConfigError(message);
}
