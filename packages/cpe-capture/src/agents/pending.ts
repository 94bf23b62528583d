// One request in flight inside the agent client: what it sends, where it is in its life (queued
// for a slot, active, done), its resend schedule and deadline, and how it ends.
import type dgram from "node:dgram";
import type { AgentError, ClockSkew, Verb } from "@capsync/protocol";
import type { AgentAnswer, AgentRequest, RequestOptions } from "./types.js";

export interface Pending {
  readonly id: string;
  readonly agent: string;
  readonly host: string;
  readonly port: number;
  readonly socket: dgram.Socket;
  readonly verb: Verb;
  readonly device: string | null;
  readonly req: AgentRequest;
  /** Legacy correlation key `<VERB> <device>` (canonical address). */
  readonly legacyKey: string;
  readonly t0: number;
  readonly deadlineMs: number;
  readonly tryingDeadlineMs: number;
  datagram: Buffer;
  /** performance.now() when the datagram's ts was taken (v1 resend window). */
  stampedAt: number;
  budgetMs: number;
  /** The deadline is held until then while answers may wait unread (client.ts due()). */
  graceUntil?: number;
  /** The deadline was held because the agent was slow but answering others (client.ts due()). */
  waitedForSlowAgent?: boolean;
  state: "queued" | "active" | "done";
  tries: number;
  sentAt: number;
  lastSentAt: number;
  interval: number;
  /** Where the doubling of `interval` stops: the first interval or STEADY_RESEND_MS, whichever is longer (within maxMs). */
  intervalCap: number;
  nextSendAt: number;
  trying: boolean;
  /** The agent acknowledged (100 Trying): the request no longer counts against maxInFlightPerAgent. */
  slotFreed?: boolean;
  /** Bumped on every (re)schedule: heap entries carrying an older generation are stale. */
  gen: number;
  lastSendError: string | undefined;
  /** v1: the agent's clock against ours, from the first answer (100 or final) to this request. */
  skew?: ClockSkew;
  opts: RequestOptions;
  resolve(a: AgentAnswer): void;
  reject(e: AgentError): void;
  detach: (() => void) | undefined;
}
