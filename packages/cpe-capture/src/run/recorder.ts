// What a run writes down as it goes: events.csv rows (and the --json stream), journal lines,
// manifest writes (devices_info.json with each) and log lines, every free text redacted. Device
// records change through here.
import { describeSkew, redact } from "@capsync/protocol";
import type { Logger } from "@capsync/common";
import type { AgentAnswer } from "../agents/index.js";
import type { DriverTask } from "../drivers/driver.js";
import { EventsCsv, type EventRow } from "../artifacts/events.js";
import { Journal } from "../artifacts/journal.js";
import { devicesInfoCompanion } from "../artifacts/devices-info.js";
import type { RunFolder } from "../artifacts/run-folder.js";
import { ManifestWriter } from "./manifest-writer.js";
import type { DeviceRun } from "./device-run.js";
import type { AgentSide, DeviceRecord, Manifest } from "./model.js";

/** The `device` column of the flow's rows in events.csv and the --json stream. */
export const FLOW_EVENT_DEVICE = "flow";

export interface RecorderHooks {
  /** Called whenever a device's record changes (status table). */
  onChange?: (dev: DeviceRecord) => void;
  /** Every event row as it is written (for --json). */
  onEvent?: (row: EventRow) => void;
}

/** An agent clock this far off (ms) is worth a warning before it reaches the agent's 30 s window. */
const SKEW_WARN_MS = 10_000;

export class RunRecorder {
  readonly writer: ManifestWriter;
  readonly events: EventsCsv;
  readonly journal: Journal;
  /** Mirrors a device's record into the flow's path records, once the run has a flow. */
  syncFlow?: (rec: DeviceRecord) => void;
  /** Agents whose clock skew was warned about (once per agent and run, however many devices). */
  private readonly skewWarned = new Set<string>();

  constructor(
    folder: RunFolder,
    manifest: Manifest,
    /** Every secret value; callers may add to it while the run goes on. */
    private readonly secrets: string[],
    private readonly log: Logger,
    private readonly hooks: RecorderHooks,
  ) {
    this.writer = new ManifestWriter(folder, manifest, () => this.secrets, devicesInfoCompanion);
    this.events = new EventsCsv(folder.path("events.csv"));
    this.journal = new Journal(folder.path("journal.jsonl"), { groupCommit: true });
  }

  get manifest(): Manifest {
    return this.writer.manifest;
  }

  /** End of the run: events.csv written out, the journal synced; their files are closed. */
  close(): void {
    this.events.close();
    this.journal.close();
  }

  redact(s: string): string {
    return redact(s, this.secrets);
  }

  private row(device: string, source: EventRow["source"], event: string, status: string, detail: string | undefined, httpStatus: number | undefined): void {
    const row: EventRow = { timestamp: new Date().toISOString(), device, source, event, status, httpStatus, detail: detail === undefined ? undefined : this.redact(detail) };
    this.events.add(row);
    this.hooks.onEvent?.(row);
  }

  /** A row for a device, or for the run as a whole (`rec` null). */
  event(rec: DeviceRecord | null, source: EventRow["source"], event: string, status: string, detail?: string, httpStatus?: number): void {
    this.row(rec?.device ?? "", source, event, status, detail, httpStatus);
  }

  flowEvent(source: EventRow["source"], event: string, status: string, detail?: string): void {
    this.row(FLOW_EVENT_DEVICE, source, event, status, detail, undefined);
  }

  /** The manifest changed outside a device record (the flow's records). */
  touch(): void {
    this.writer.touch();
  }

  changed(rec: DeviceRecord): void {
    this.syncFlow?.(rec);
    this.writer.deviceChanged(rec);
    this.hooks.onChange?.(rec);
  }

  /** A field of the record changed that the status view does not show: only the manifest is written again. */
  dirty(rec: DeviceRecord): void {
    this.writer.deviceChanged(rec);
  }

  setState(run: DeviceRun, state: DeviceRecord["state"], description?: string): void {
    run.rec.state = state;
    if (description !== undefined) run.rec.description = this.redact(description);
    this.journal.append("device-state", { device: run.rec.device, state, ...(run.rec.captureName ? { captureName: run.rec.captureName } : {}) });
    this.log.info(`${run.rec.device} ${state}${description ? `: ${this.redact(description)}` : ""}`);
    this.event(run.rec, "run", "state", state, description);
    this.changed(run.rec);
  }

  driverTask(rec: DeviceRecord, t: DriverTask): void {
    const output = t.output === undefined ? undefined : this.redact(t.output).slice(0, 4000);
    rec.tasks.push({ name: t.name, timestamp: t.timestamp, status: t.status, ...(t.httpStatus !== undefined ? { httpStatus: t.httpStatus } : {}), ...(output !== undefined ? { output } : {}), durationMs: t.durationMs });
    rec.lastRequest = t.name;
    rec.lastResponse = t.httpStatus !== undefined ? String(t.httpStatus) : t.status;
    this.event(rec, "device", t.name, t.status, output, t.httpStatus);
    this.log.info(`${rec.device} task ${t.name} ${t.status}${t.httpStatus ? ` HTTP ${t.httpStatus}` : ""} ${t.durationMs}ms${t.status === "failed" && output ? `: ${output.slice(0, 300)}` : ""}`);
    // The script sent and the device's answer, in full, as the original logged every CLI script
    // and REST response (cpe_capture_app.py 448, 488-498). Drivers scrub both; redacted again here.
    if (t.request !== undefined) this.log.info(`${rec.device} task ${t.name} attempt ${t.attempt} CLI script:\n${indent(this.redact(t.request))}`);
    if (t.request !== undefined && output !== undefined) this.log.info(`${rec.device} task ${t.name} attempt ${t.attempt} answer${t.httpStatus ? ` (HTTP ${t.httpStatus})` : ""}:\n${indent(output)}`);
    this.changed(rec);
  }

  agentAnswer(rec: DeviceRecord, side: AgentSide, a: AgentAnswer): void {
    side.answers.push({ verb: a.verb, code: a.code, details: a.details, tries: a.tries, elapsedMs: Math.round(a.elapsedMs), at: new Date().toISOString() });
    side.lastRequest = a.verb;
    side.lastResponse = String(a.code);
    if (a.skew) side.clock = { skewMs: Math.round(a.skew.skewMs), uncertaintyMs: Math.round(a.skew.uncertaintyMs), at: new Date().toISOString() };
    // Still accepted, but a few more seconds of drift and every command is refused as stale.
    if (a.skew && Math.abs(a.skew.skewMs) - a.skew.uncertaintyMs > SKEW_WARN_MS && !this.skewWarned.has(side.agent)) {
      this.skewWarned.add(side.agent);
      this.log.warn(`agent ${side.agent}: ${describeSkew(a.skew.skewMs, "its", "this host's")}; beyond its --window (default 30 s) it refuses commands as stale: check NTP`);
    }
    const detail = Object.entries(a.details).map(([k, v]) => `${k}=${v}`).join(" ");
    this.event(rec, "agent", `${side.agent} ${a.verb}`, String(a.code), detail);
    this.log.info(`${rec.device} agent ${side.agent} ${a.verb} → ${a.code} (${a.tries} tries, ${a.elapsedMs.toFixed(1)} ms)${detail ? ` ${detail}` : ""}`);
  }
}

/** Multi-line text under its log line, each line indented, so a script never looks like log lines. */
function indent(text: string): string {
  return text.replace(/\n+$/, "").replace(/^/gm, "    ");
}
