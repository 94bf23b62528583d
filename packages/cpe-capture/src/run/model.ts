// What the run records about each device and its agents: the manifest's shape (the original's
// devices_info, grown: both sides, every task, no secrets).

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
}

export type StopReason = "alarm" | "duration" | "run-duration" | "signal" | "manual" | "start-failed";

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
    agents: { agent: string; code: number; details: Record<string, string> }[];
    orchestrator: { ok: boolean; tcp: string; snmp: string };
  };
  times: { started?: string; capturing?: string; triggered?: string; agentsStopSent?: string; stopped?: string; collected?: string };
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
}
