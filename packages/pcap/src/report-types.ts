// The run report's model: what report.json holds and report.txt/report.html render.
import type { DelayStats } from "./histogram.js";
import type { ClockEstimate, DirectionResult, MatchOptions, Timeline } from "./match-types.js";

export type CapturePointRole = "device" | "server" | "hop";

export interface CapturePoint {
  /** Unique name, shown as the interface name in merged.pcapng, e.g. "msbr-192.0.2.10". */
  name: string;
  role: CapturePointRole;
  /** Capture files (absolute, or relative to the run folder), in any order. */
  files: string[];
  /** Addresses on this point's side (device management IP, server IP): helps scoping, optional. */
  addresses?: string[];
  /**
   * Points with the same `clock` are captured on one machine's clock (one agent's captures of many
   * devices): an offset found for one of them holds for all, so one reference covers a fleet.
   */
  clock?: string;
  /**
   * When the capture started/stopped, on the orchestrator's clock (taken as the reference clock),
   * if known; else the point's first/last packet. Without a stop time, packets sent after the
   * receiver's last packet cannot count as lost: they are reported as "after it stopped".
   */
  startedAt?: Date;
  stoppedAt?: Date;
  /**
   * Other sides of this point that captured but whose files are not here (e.g. left on the agent):
   * listed in the report, never matched.
   */
  notCollected?: NotCollected[];
}

export interface NotCollected {
  /** The missing side's role, e.g. "server". */
  role: CapturePointRole;
  /** Who holds it, e.g. the agent "198.51.100.5:4000". */
  name: string;
  /** Why it is not here, e.g. "files stay on the agent". */
  reason: string;
}

export interface ReportOptions {
  points: CapturePoint[];
  /** Alarm time (orchestrator clock, assumed close to the reference point's clock). */
  alarmAt?: Date;
  /** Point pairs to match; default: consecutive points in the order given (device … server). */
  pairs?: [string, string][];
  /**
   * A multi-hop path, point names in order: the path summary ("where packets vanished") follows the
   * pairs between consecutive names only. Default: all pairs, in order.
   */
  path?: string[];
  /** Point whose clock is the report's time axis; default: the first server, else the first point. */
  reference?: string;
  /**
   * report.html shows every pair in full up to this many pairs (default 20); beyond it, one table
   * row per pair and full sections (timelines, failures, flows) for this many pairs with most loss.
   * report.txt and report.json always hold every pair in full.
   */
  htmlDetailPairs?: number;
  match?: MatchOptions;
}

export interface ReportFile {
  path: string;
  packets: number;
  format?: string;
  error?: { code: string; offset: number; message: string };
}

export interface ReportPoint {
  name: string;
  role: CapturePointRole;
  packets: number;
  first?: string;
  last?: string;
  /** This point's clock minus the reference clock; null when no path of matched pairs links them. */
  clockOffset: { nanos: string | null; seconds: number | null; uncertaintyNanos: number | null; driftPpm: number };
  files: ReportFile[];
  notCollected?: NotCollected[];
}

export interface ReportRow {
  at: string;
  summary: string;
  flow: string;
  delayNanos?: number;
}

export interface ReportDirection {
  from: string;
  to: string;
  sent: number;
  delivered: number;
  lost: number;
  lossPercent: number;
  excluded: DirectionResult["excluded"];
  duplicates: number;
  unexpected: number;
  reordered: number;
  delay: DelayStats | null;
  flows: (Omit<DirectionResult["flows"][number], "firstLostNanos"> & { firstLost?: string })[];
  flowsOmitted: number;
  failure: null | {
    kind: "blackout" | "burst";
    at: string;
    /** Failure start minus alarm time, ms (negative: before the alarm). */
    beforeAlarmMs?: number;
    lostInRun: number;
    lastDelivered: ReportRow[];
    firstLost: ReportRow[];
  };
  timeline: Omit<Timeline, "startNanos"> & { start: string };
  decidedEarly: number;
}

export interface ReportPair {
  a: string;
  b: string;
  clock: Omit<ClockEstimate, "offsetNanos" | "refNanos"> & { offsetNanos: string; offsetSeconds: number; at: string };
  sides: { name: string; packets: number; nonIp: number; outOfScope: number }[];
  directions: [ReportDirection, ReportDirection];
  notes: string[];
}

export interface ReportPath {
  direction: string;
  hops: { from: string; to: string; sent: number; lost: number }[];
  /** The hop pair where most packets vanished. */
  vanishedBetween?: [string, string];
}

export interface RunReport {
  version: 1;
  generatedAt: string;
  runFolder?: string;
  reference: string;
  alarm?: { at: string; clock: "orchestrator" };
  /** Span of all packets on the reference axis. */
  span?: { start: string; end: string };
  points: ReportPoint[];
  pairs: ReportPair[];
  paths: ReportPath[];
  merged?: { file: string; packets: number; interfaces: string[] };
  summaryLine: string;
  notes: string[];
}
