// The agent client's public shapes: what a request carries, the answer it resolves with, the
// client's options and its counters.
import type dgram from "node:dgram";
import type { ClockSkew, Code, Verb } from "@capsync/protocol";

export type AgentMode = "v1" | "legacy";

export interface AgentRequest {
  verb: Verb;
  /** REGISTER/CAPTURE/VERIFY/STOP. */
  device?: string;
  /** STOP only: the device capture's file name the agent's files are renamed to match. */
  filename?: string;
  /** CAPTURE only, v1 only: base64url of the JSON capture spec. */
  spec?: string;
}

export interface VerbTiming {
  /** Give up this long after request() was called unless a 100 Trying arrived. */
  deadlineMs: number;
  /** Once a 100 Trying arrived, give up this long after request() was called (hard bound). */
  tryingDeadlineMs: number;
}

export interface BackoffOptions {
  /** First resend this long after the first send; each later gap doubles... */
  initialMs: number;
  /** ...up to this cap. */
  maxMs: number;
  /** v1 after a 100 Trying: resend at most this often (the agent re-sends its last answer, so a lost final answer is recovered). */
  tryingResendMs: number;
  /** v1: never resend a datagram older than this (the agent answers 400 stale outside its 30 s window); just wait. */
  resendWindowMs: number;
}

/** winston's Logger satisfies this. */
export interface AgentLogger {
  debug(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

export interface SendInfo {
  /** v1: the wire request id; legacy: a local id (the legacy wire has none). */
  id: string;
  agent: string;
  verb: Verb;
  device: string | null;
  /** 1 for the first datagram, 2.. for resends (byte-identical in v1 and legacy). */
  attempt: number;
  /** performance.now() just before the datagram was handed to the socket. */
  at: number;
  bytes: number;
}

export interface AgentClientOptions {
  mode: AgentMode;
  /** v1 pre-shared key (loadKeyFile). Never logged. */
  key?: Uint8Array;
  /**
   * Local address/port. When given, the socket of that address's family (IPv4 when no address)
   * is bound at open() so it can also receive forwarded syslog (legacy setups used one port for
   * both); the other family's socket binds its wildcard address on the same port when first needed.
   */
  bind?: { address?: string; port?: number };
  /**
   * Requests not yet acknowledged (no 100 Trying or final answer) per agent; more wait in a FIFO
   * queue. A request's deadline counts from its first send, not from the queue. Default 64.
   */
  maxInFlightPerAgent?: number;
  /** STOPs are sent while fewer than this many requests to the agent are unacknowledged (at least maxInFlightPerAgent); more wait in their own FIFO queue, served first. Shrinks while the agent is overloaded (slots.ts). Default 4096. */
  maxStopsInFlightPerAgent?: number;
  /** How long a request may wait in the queue for its first send before it fails 'agent-timeout'. Default 600 000 (10 min). */
  maxQueueMs?: number;
  /** Per-verb deadlines; see DEFAULT_TIMING. */
  timing?: Partial<Record<Verb, Partial<VerbTiming>>>;
  backoff?: Partial<BackoffOptions>;
  /** Datagrams that are not protocol answers (e.g. syslog on a shared port). */
  onForeignDatagram?: (buf: Buffer, rinfo: dgram.RemoteInfo) => void;
  /** Every datagram sent (first and resends), for latency measurements. */
  onSend?: (info: SendInfo) => void;
  log?: AgentLogger;
}

export interface RequestOptions {
  deadlineMs?: number;
  tryingDeadlineMs?: number;
  signal?: AbortSignal;
  /** Called once, on the first 100 Trying. */
  onTrying?: () => void;
  onSend?: (info: SendInfo) => void;
}

export interface AgentAnswer {
  agent: string;
  /** v1: the wire request id; legacy: a local id for logs. */
  id: string;
  code: Code;
  verb: Verb;
  device: string | null;
  /** v1 key=value details (decoded); always {} in legacy mode. */
  details: Record<string, string>;
  tries: number;
  /** A 100 Trying was seen before the final answer. */
  trying: boolean;
  /** performance.now() just before the first datagram was sent. */
  sentAt: number;
  /** performance.now() when the final answer was received. */
  answeredAt: number;
  /** answeredAt - sentAt. */
  elapsedMs: number;
  /** Time spent waiting for a per-agent slot (and a socket) before the first send. */
  queuedMs: number;
  /** v1: the agent's clock minus this host's, from its wire ts against our send/receive midpoint. */
  skew?: ClockSkew;
}

export interface AgentClientStats {
  requests: number;
  datagramsSent: number;
  resends: number;
  sendErrors: number;
  trying: number;
  answers: number;
  timeouts: number;
  aborts: number;
  /** Authentic answers for requests that already finished (duplicates caused by resends). */
  late: number;
  /** `503 reason=overload` answers (the agent's intake was full): resent after the backoff, not final. */
  overloads: number;
  /** `400 reason=stale` answers (the agent read a copy over its window late): resent with a fresh timestamp, not final. */
  staleRetries: number;
  /** Datagrams that are not protocol answers (passed to onForeignDatagram when set). */
  foreign: number;
  dropped: {
    /** v1 answer whose MAC does not match the key. */
    badMac: number;
    /** Looks like our protocol but does not parse (or is the other mode's protocol). */
    malformed: number;
    /** Parses (and authenticates) but matches no pending request: unknown id (v1), unknown device+verb or agent (legacy). */
    unmatched: number;
    /** v1: the id matches but the verb or device does not. */
    mismatch: number;
  };
}
