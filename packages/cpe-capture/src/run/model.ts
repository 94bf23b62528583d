// What the run records about each device and its agents: the manifest's shape (the original's
// devices_info, grown: both sides, every task, no secrets).

import type { IcmpResult, Snmpv3Result } from "@capsync/common";

export type DeviceState = "idle" | "starting" | "capturing" | "stopping" | "collecting" | "done" | "failed";
export type AgentCaptureState = "pending" | "registering" | "starting" | "capturing" | "stopping" | "collecting" | "collected" | "remote" | "failed";

export interface TaskRecord {
  name: string;
  timestamp: string;
  status: "ok" | "failed";
  httpStatus?: number;
  output?: string;
  durationMs?: number;
}

export interface FileRecord {
  name: string;
  bytes: number;
  sha256?: string;
  /** Where it is when it was not downloaded (agent without SFTP), e.g. "198.51.100.5:/var/lib/capsync/captures/x.pcap". */
  remote?: string;
}

export interface AgentAnswerRecord {
  verb: string;
  code: number;
  details: Record<string, string>;
  tries: number;
  elapsedMs: number;
  at: string;
}

export interface AgentSide {
  agent: string;
  registration: "pending" | "active" | "failed";
  capture: AgentCaptureState;
  lastRequest?: string;
  lastResponse?: string;
  error?: string;
  answers: AgentAnswerRecord[];
  files: FileRecord[];
  /** CSYNC/1: the agent's clock minus this host's (ms, ± uncertaintyMs), from its latest answer. */
  clock?: { skewMs: number; uncertaintyMs: number; at: string };
}

export type StopReason = "alarm" | "duration" | "run-duration" | "signal" | "manual" | "start-failed";

/**
 * One file segment of a device's capture: the capture between two filter changes (cpe-capture
 * filter), on the device and on its agents. Segment 1 keeps the original's file names; later
 * ones end in `-seg<N>` (CPE_device_<ip>_<ts>-seg2.pcap, agents OVOC_device_<ip>_<ts>-seg2-0.pcap).
 */
export interface CaptureSegment {
  segment: number;
  /** The device's capture spec in this segment (its agents capture agentSpec of it). */
  spec: unknown;
  /** What each side ran: the device's plan text and the agents' tcpdump filter. */
  filter: { device: string; agents?: string };
  startedAt?: string;
  stoppedAt?: string;
  /** "filter-change", or the device's stop reason for the last segment. */
  endedBy?: StopReason | "filter-change";
  captureName?: string;
  deviceFile?: FileRecord;
  agents: { agent: string; capture: AgentCaptureState; files: FileRecord[]; error?: string }[];
}

export interface DeviceRecord {
  device: string;
  name: string;
  type: string;
  state: DeviceState;
  status: "running" | "collected" | "partial" | "failed";
  severity: "info" | "warning" | "error";
  description: string;
  facts?: Record<string, string>;
  interfaces: string[];
  /** Alarms matched for this device. */
  events: number;
  stopReason?: StopReason;
  stopEvent?: { reason: string; matcher?: string; message?: string; from?: string; receivedAt: string };
  lastRequest?: string;
  lastResponse?: string;
  /** The device side alone: "pending" while an unreachable device is retried after the stop. */
  deviceCapture?: "capturing" | "pending" | "collected" | "failed";
  /** The device capture's name in the run folder, also sent to agents in STOP. */
  captureName?: string;
  deviceFile?: FileRecord;
  tasks: TaskRecord[];
  agents: AgentSide[];
  /** VERIFY on the alarm: the same bounded test traffic from every agent and from the orchestrator. */
  verify?: {
    at: string;
    /** icmp/snmpv3: the agent's results, read from its answer's details (agent/verify-details in @capsync/common). */
    agents: { agent: string; code: number; details: Record<string, string>; icmp?: IcmpResult; snmpv3?: Snmpv3Result }[];
    /** tcp/snmp: answered/sent of TCP/443 and SNMPv2c; icmp absent when off, snmpv3 without credentials. */
    orchestrator: { ok: boolean; tcp: string; snmp: string; icmp?: IcmpResult; snmpv3?: Snmpv3Result };
  };
  times: { started?: string; capturing?: string; triggered?: string; agentsStopSent?: string; stopped?: string; collected?: string };
  /**
   * Present once the filter was changed while capturing: every segment in order. The last one is
   * the record's own captureName, deviceFile and agents' files; the report merges them all.
   */
  segments?: CaptureSegment[];
}

/**
 * A stopped device's outcome from its two sides: "collected" when the device file and every
 * agent's files are (or stay, "remote") on hand, "partial" when some capture was collected.
 */
export function settledStatus(rec: DeviceRecord, deviceOk: boolean): DeviceRecord["status"] {
  const agentsOk = rec.agents.every((a) => a.capture === "collected" || a.capture === "remote");
  return deviceOk && agentsOk ? "collected" : deviceOk || rec.agents.some((a) => a.capture === "collected") ? "partial" : "failed";
}

/** One hop of the run's flow path, in path order (config `flow.path`). */
export interface PathHopRecord {
  hop: number;
  kind: "device" | "server";
  /** The device's name, or the agent's ip:port. */
  name: string;
  /** Device hops: the device's address; its record in `devices` holds the tasks and states. */
  device?: string;
  /** Server hops: the agent (ip:port); its capture is scoped to the flow's agentHost. */
  agent?: string;
  capture: AgentCaptureState;
  error?: string;
  answers?: AgentAnswerRecord[];
  /** Named hop<N>_…, in the run folder unless `remote` says otherwise. */
  files: FileRecord[];
}

/** The run's flow: one 5-tuple captured at every hop of `Manifest.path`, all stopped together. */
export interface FlowRecord {
  filter: { src?: string; dst?: string; protocol?: string | number; sport?: number; dport?: number };
  vrf?: string;
  /** The host agent hops scope their capture to (CAPTURE/STOP <agentHost>). */
  agentHost?: string;
  state: "idle" | "starting" | "capturing" | "stopping" | "done";
  status?: "collected" | "partial" | "failed";
  stopReason?: StopReason;
  stopDetail?: string;
  /** The device whose trigger stopped every hop, when it was a device's trigger. */
  triggeredBy?: string;
  /** The timestamp every hop file's name carries (the stop's), YYYY-mm-ddTHH.MM.SS.ffffff. */
  stamp?: string;
  times: { started?: string; capturing?: string; triggered?: string; agentsStopSent?: string; collected?: string };
}

export interface Manifest {
  tool: "capsync";
  version: string;
  runId: string;
  folder: string;
  startedAt: string;
  endedAt?: string;
  status: "running" | "done" | "partial" | "failed";
  mode: "v1" | "legacy";
  syslog?: { udp?: string; tcp?: string };
  config: unknown;
  devices: DeviceRecord[];
  flow?: FlowRecord;
  /** The flow's hops in order; the report pairs hop i with hop i+1. */
  path?: PathHopRecord[];
}
