// What matching two capture points takes and returns: inputs, options, the clock estimate and the
// per-direction, per-flow results.
import type { Decoded } from "./decode.js";
import type { DelayStats } from "./histogram.js";
import type { IdentityOptions } from "./identity.js";
import type { FileOutcome } from "./ordered.js";

export interface PointInput {
  name: string;
  files: string[];
  /** Addresses on this point's side of the path (e.g. the device's management IP); optional hints. */
  addresses?: string[];
  /** When the capture really started/stopped on this point's clock (else: first/last packet). */
  startNanos?: bigint;
  endNanos?: bigint;
}

export interface MatchOptions extends IdentityOptions {
  /** Longest one-way delay before a packet counts as lost (default 3000 ms). */
  maxDelayMs?: number;
  /** Packets waiting for their outcome per direction (default 100 000); older ones are decided early. */
  maxPending?: number;
  /** Identities kept for the clock estimate (default 100 000). */
  maxSamples?: number;
  /** Known offset (b's clock minus a's clock, ns) instead of estimating it. */
  clockOffsetNanos?: bigint;
  /** Timeline resolution for the report (default 240 bins). */
  timelineBins?: number;
  /** Packets listed before/after the failure (default 5). */
  keep?: number;
  /** Flows reported per direction (default 1000, by packets sent); the rest are summed as "other". */
  maxFlows?: number;
  /** Called for every packet sent between the points once decided, in send order per direction. */
  onOutcome?: (o: PacketOutcome) => void;
}

export interface PacketOutcome {
  /** 0: a→b, 1: b→a. */
  direction: 0 | 1;
  status: "delivered" | "lost" | "excluded";
  /** Send time on a's clock. */
  tsNanos: bigint;
  delayNanos?: number;
  packet: Decoded;
}

export interface ClockEstimate {
  /** b's clock minus a's clock at `refNanos` (a's clock), ns. */
  offsetNanos: bigint;
  refNanos: bigint;
  /** Drift of b's clock against a's, parts per million (0 unless fitted). */
  driftPpm: number;
  /** Half-width of the interval the true offset lies in, ns; null when only one direction matched. */
  uncertaintyNanos: number | null;
  method: "two-way-min-delay" | "one-way-min-delay" | "given" | "none";
  samplesAB: number;
  samplesBA: number;
  /** Sampling rate used in pass 1: 1 in 2^shift identities. */
  samplingShift: number;
  notes: string[];
}

export interface PacketRow {
  /** Send time on a's clock (the pair's axis). */
  tsNanos: bigint;
  summary: string;
  flow: string;
  /** One-way delay for delivered packets, ns. */
  delayNanos?: number;
}

export interface FlowResult {
  flow: string;
  sent: number;
  delivered: number;
  lost: number;
  duplicates: number;
  reordered: number;
  delay: DelayStats | null;
  firstLostNanos?: bigint;
}

export interface Timeline {
  /** Start of bin 0 on a's clock; bins are binNanos wide. */
  startNanos: bigint;
  binNanos: number;
  sent: number[];
  delivered: number[];
  lost: number[];
  delayMinNanos: (number | null)[];
  delayMeanNanos: (number | null)[];
  delayMaxNanos: (number | null)[];
}

export interface FailureResult {
  /** "blackout": every countable packet from `startNanos` on was lost; "burst": the longest loss run. */
  kind: "blackout" | "burst";
  startNanos: bigint;
  lostInRun: number;
  lastDelivered: PacketRow[];
  firstLost: PacketRow[];
}

export interface DirectionResult {
  from: string;
  to: string;
  /** Countable packets the sender put on the path: delivered + lost. */
  sent: number;
  delivered: number;
  lost: number;
  /** Packets the receiver could not have seen, not counted in sent. */
  excluded: { beforeReceiverStart: number; afterReceiverStop: number; inFlightAtStop: number; receivedOutsideSenderCapture: number };
  duplicates: number;
  /** Seen by the receiver but never by the sender, while the sender was capturing. */
  unexpected: number;
  /** Delivered packets that arrived before a packet sent earlier (RFC 4737 style count). */
  reordered: number;
  delay: DelayStats | null;
  flows: FlowResult[];
  flowsOmitted: number;
  failure: FailureResult | null;
  timeline: Timeline;
  /** Packets decided early because the window hit maxPending (0 normally). */
  decidedEarly: number;
}

export interface SideResult {
  name: string;
  packets: number;
  /** Non-IP frames (ARP, LLDP, ...) and undecodable ones. */
  nonIp: number;
  /** IP packets not between the two points (other hosts). */
  outOfScope: number;
  firstNanos?: bigint;
  lastNanos?: bigint;
  files: FileOutcome[];
}

export interface PairResult {
  a: string;
  b: string;
  clock: ClockEstimate;
  sides: [SideResult, SideResult];
  /** [a→b, b→a] */
  directions: [DirectionResult, DirectionResult];
  notes: string[];
}
