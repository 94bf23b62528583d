// Live filter changes (`cpe-capture filter`, POST /api/v1/runs/:id/filter): the request is checked
// for every selected device and its agents exactly as a config's capture section is, and refused
// as a whole before anything restarts; then per device the running file segment is closed (device
// and agents stopped and collected, never lost) and the next one starts with the new spec.
import type { Logger } from "@capsync/common";
import { mergeCaptureSpecs, type CaptureSpec } from "@capsync/protocol";
import { checkDeviceSpec, specFromConfig } from "../config/capture.js";
import { describeValue, formatPath, isPlainObject, type PathIssue } from "../config/issues.js";
import type { RunConfig } from "../config/schema.js";
import { compileFor } from "../spec/index.js";
import type { AgentSides } from "./agent-sides.js";
import type { DeviceCollector } from "./device-collect.js";
import type { DeviceRun } from "./device-run.js";
import type { RunRecorder } from "./recorder.js";
import type { CaptureSegment, DeviceRecord } from "./model.js";

/** The capture-section keys a filter change sets; the others stay as the run started them. */
export const CHANGEABLE = ["filter", "direction", "snaplen"] as const;

/** A transport-neutral answer: the control socket and the HTTP API send it as they are. */
export interface FilterAnswer {
  status: 200 | 400 | 409 | 502;
  body: { error?: string; issues?: string[]; devices?: DeviceOutcome[]; skipped?: string[] };
}

export interface DeviceOutcome {
  device: string;
  name: string;
  ok: boolean;
  /** The segment capturing now (ok), or the last one kept (not ok). */
  segment: number;
  filter: CaptureSegment["filter"];
  /** The segment closed by this change, with its files in the run folder. */
  kept: { segment: number; files: string[] };
  error?: string;
}

/** What the change needs from the orchestrator. */
export interface SegmentHost {
  config: RunConfig;
  runs: ReadonlyMap<string, DeviceRun>;
  recorder: RunRecorder;
  agents: AgentSides;
  devices: DeviceCollector;
  log: Logger;
  /** The file name of the segment being closed (reserved, journaled; `-seg<N>` after the first). */
  captureName(run: DeviceRun): string;
  /** The orchestrator's stop and settle of a device; `failure` replaces its description's cause. */
  stop(run: DeviceRun, opts?: { failure?: string; deviceIdle?: boolean }): Promise<void>;
}

/** `-seg<N>` before the extension from the second segment on; the first keeps the original's name. */
export function segmentFileName(name: string, segment: number): string {
  if (segment <= 1) return name;
  const dot = name.lastIndexOf(".");
  return dot > 0 ? `${name.slice(0, dot)}-seg${segment}${name.slice(dot)}` : `${name}-seg${segment}`;
}

type Parsed = { ok: true; change: CaptureSpec; devices?: string[] } | { ok: false; issues: string[] };

/** The request body: a capture section limited to CHANGEABLE, plus optional `devices` (names or addresses). */
export function parseFilterRequest(body: unknown): Parsed {
  if (!isPlainObject(body)) return { ok: false, issues: [`(top level): expected an object with ${CHANGEABLE.join(", ")} and optionally devices, got ${describeValue(body)}`] };
  const { devices, ...capture } = body;
  const issues: PathIssue[] = [];
  let list: string[] | undefined;
  if (devices !== undefined) {
    const raw = Array.isArray(devices) ? devices : [devices];
    if (raw.length === 0 || raw.some((d) => typeof d !== "string" || d.trim() === "")) issues.push({ path: ["devices"], message: `expected device names or addresses, got ${describeValue(devices)}` });
    else list = raw.map((d) => (d as string).trim());
  }
  const spec = specFromConfig(capture, [], issues);
  for (const k of Object.keys(capture)) {
    if ((CHANGEABLE as readonly string[]).includes(k) || !["interfaces", "vrf", "limits"].includes(k)) continue;
    issues.push({ path: [k], message: `not changed on a running capture (a filter change sets ${CHANGEABLE.join(", ")}); start a new run to change ${k}` });
  }
  if (!CHANGEABLE.some((k) => capture[k] !== undefined) && issues.length === 0) issues.push({ path: [], message: `nothing to change: give ${CHANGEABLE.join(", ")}` });
  if (issues.length || !spec) return { ok: false, issues: issues.map((i) => `${formatPath(i.path)}: ${i.message}`) };
  return { ok: true, change: spec, ...(list ? { devices: list } : {}) };
}

/** The device's spec after the change: given fields replace the running ones; an empty filter clears it. */
export function changedSpec(current: CaptureSpec, change: CaptureSpec): CaptureSpec {
  const out = mergeCaptureSpecs(current, change);
  if (out.filter && Object.keys(out.filter).length === 0) delete out.filter;
  return out;
}

const label = (run: DeviceRun) => (run.cfg.name === run.cfg.address ? run.cfg.address : `${run.cfg.name} (${run.cfg.address})`);

function filterTexts(run: DeviceRun, spec: CaptureSpec): CaptureSegment["filter"] {
  const dev = compileFor(run.cfg.type as Parameters<typeof compileFor>[0], spec, { device: run.cfg.address });
  const ag = run.cfg.agents.length ? compileFor("agent", spec, { device: run.cfg.address }) : undefined;
  return { device: dev.ok ? dev.text : "", ...(ag?.ok ? { agents: ag.text } : {}) };
}

function sidesOf(rec: DeviceRecord): CaptureSegment["agents"] {
  return rec.agents.map((a) => ({ agent: a.agent, capture: a.capture, files: a.files.map((f) => ({ ...f })), ...(a.error ? { error: a.error } : {}) }));
}

/** The last segment mirrors the record's own files (called whenever a segment ends). */
export function syncLastSegment(rec: DeviceRecord, endedBy?: CaptureSegment["endedBy"]): void {
  const last = rec.segments?.[rec.segments.length - 1];
  if (!last) return;
  if (rec.captureName) last.captureName = rec.captureName;
  if (rec.deviceFile) last.deviceFile = { ...rec.deviceFile };
  else delete last.deviceFile;
  last.agents = sidesOf(rec);
  last.stoppedAt ??= rec.times.stopped ?? new Date().toISOString();
  if (endedBy) last.endedBy ??= endedBy;
}

/** The record's own fields back from a closed segment (the next one never started). */
function restoreSegment(rec: DeviceRecord, seg: CaptureSegment): void {
  if (seg.captureName) rec.captureName = seg.captureName;
  if (seg.deviceFile) {
    rec.deviceFile = { ...seg.deviceFile };
    rec.deviceCapture = "collected";
  }
  if (seg.stoppedAt) rec.times.stopped = seg.stoppedAt;
  for (const side of rec.agents) {
    const was = seg.agents.find((a) => a.agent === side.agent);
    if (!was) continue;
    side.capture = was.capture;
    side.files = was.files.map((f) => ({ ...f }));
    if (was.error) side.error = was.error;
  }
}

/** A segment stopped before the device restarted: agents that never started in it miss nothing. */
export function idleSegmentStatus(rec: DeviceRecord): DeviceRecord["status"] {
  const ok = (c: string) => c === "collected" || c === "remote" || c === "pending";
  return rec.agents.every((a) => ok(a.capture)) && !earlierSegmentsMissing(rec) ? "collected" : "partial";
}

/** Earlier segments not fully collected make a collected device partial. */
export function earlierSegmentsMissing(rec: DeviceRecord): boolean {
  return (rec.segments ?? []).slice(0, -1).some((s) => !s.deviceFile || s.agents.some((a) => a.capture !== "collected" && a.capture !== "remote"));
}

export class FilterChanges {
  constructor(private readonly h: SegmentHost) {}

  /** Validate, then change every selected device; resolves once each runs its new segment (or failed). */
  async request(body: unknown): Promise<FilterAnswer> {
    const p = parseFilterRequest(body);
    if (!p.ok) return { status: 400, body: { error: "invalid filter", issues: p.issues } };
    const runs = [...this.h.runs.values()];
    const skipped: string[] = [];
    let chosen: DeviceRun[];
    if (p.devices) {
      const issues: string[] = [];
      chosen = [];
      for (const want of p.devices) {
        const run = runs.find((r) => r.cfg.address === want || r.cfg.name.toLowerCase() === want.toLowerCase());
        if (!run) issues.push(`devices: ${describeValue(want)} is not a device of this run (${runs.map(label).join(", ")})`);
        else if (run.cfg.flowHop) issues.push(`devices: ${label(run)} is hop ${run.cfg.flowHop.hop} of the run's flow and captures the flow's filter; it cannot be changed alone`);
        else if (!chosen.includes(run)) chosen.push(run);
      }
      if (issues.length) return { status: 400, body: { error: "invalid filter", issues } };
      const busy = chosen.map((r) => this.busy(r)).filter((b): b is string => b !== undefined);
      if (busy.length) return { status: 409, body: { error: "not capturing", issues: busy } };
    } else {
      chosen = runs.filter((r) => !r.cfg.flowHop && this.busy(r) === undefined);
      for (const r of runs) if (!chosen.includes(r)) skipped.push(`${label(r)}: ${r.cfg.flowHop ? "a flow hop" : this.busy(r)}`);
      if (chosen.length === 0) return { status: 409, body: { error: "not capturing", issues: ["no device of this run is capturing (name one with devices)"], skipped } };
    }
    // Every target is checked before anything restarts: one refusal refuses the whole change.
    const issues: PathIssue[] = [];
    const plans = chosen.map((run) => {
      const i = this.h.config.devices.findIndex((d) => d.address === run.cfg.address);
      const spec = changedSpec(run.cfg.spec, p.change);
      checkDeviceSpec({ runSpec: undefined, deviceSpec: spec, interfaces: undefined, type: run.cfg.type, address: run.cfg.address, hasAgents: run.cfg.agents.length > 0, legacy: this.h.config.agents.legacy, path: ["devices", i], issues });
      return { run, spec };
    });
    if (issues.length) return { status: 400, body: { error: "invalid filter", issues: issues.map((x) => `${formatPath(x.path)}: ${x.message}`) } };
    const outcomes = await Promise.all(plans.map(({ run, spec }) => {
      const p2 = this.change(run, spec);
      run.changing = p2;
      return p2.finally(() => delete run.changing);
    }));
    return { status: outcomes.every((o) => o.ok) ? 200 : 502, body: { devices: outcomes, ...(skipped.length ? { skipped } : {}) } };
  }

  /** Why the device's filter cannot be changed now, or undefined. */
  private busy(run: DeviceRun): string | undefined {
    if (run.changing) return `${label(run)} is changing its filter already (segment ${run.segment ?? 1})`;
    if (run.stopRequested || run.rec.state !== "capturing" || !run.handle) return `${label(run)} is ${run.stopRequested && run.rec.state === "capturing" ? "stopping" : run.rec.state}, not capturing: its filter cannot be changed now`;
    return undefined;
  }

  private async change(run: DeviceRun, spec: CaptureSpec): Promise<DeviceOutcome> {
    const { rec } = run;
    const { recorder, log } = this.h;
    const n = run.segment ?? 1;
    // Read afresh after every await: a trigger may set it meanwhile (TypeScript narrows it otherwise).
    const stop = (): DeviceRun["stopRequested"] => run.stopRequested;
    const filter = filterTexts(run, spec);
    rec.segments ??= [{ segment: 1, spec: run.cfg.spec, filter: filterTexts(run, run.cfg.spec), ...(rec.times.capturing ? { startedAt: rec.times.capturing } : {}), agents: [] }];
    recorder.event(rec, "run", "filter-change", "start", `segment ${n} → ${n + 1}: device '${filter.device}'${filter.agents !== undefined ? `, agents '${filter.agents}'` : ""}`);
    recorder.journal.append("filter-change", { device: rec.device, segment: n + 1, spec });
    log.info(`${rec.device} filter change: closing segment ${n}, then segment ${n + 1} with ${JSON.stringify(spec)}`);

    // Close segment n: both sides stopped and collected under this segment's name.
    recorder.setState(run, "stopping", `filter change: closing segment ${n}`);
    const name = this.h.captureName(run);
    const agents = this.h.agents.stop(run, name);
    const deviceOk = await this.h.devices.stopAndFetch(run, name);
    await agents;
    const kept = () => ({ segment: n, files: [...(rec.deviceFile ? [rec.deviceFile.name] : []), ...rec.agents.flatMap((a) => a.files.map((f) => f.name))] });
    let keptFiles = kept();
    const result = (ok: boolean, error?: string): DeviceOutcome => ({ device: rec.device, name: rec.name, ok, segment: ok ? n + 1 : n, filter, kept: keptFiles, ...(error ? { error } : {}) });
    syncLastSegment(rec, "filter-change");
    recorder.event(rec, "collect", `segment ${n}`, deviceOk ? "ok" : "failed", keptFiles.files.join("; "));
    if (!deviceOk) {
      // The device's side of segment n is lost or still on the device: never restart over it.
      const error = `filter change: segment ${n} not collected from the device (${rec.description}); not restarted`;
      run.handle = undefined;
      run.stopRequested ??= { reason: "start-failed", detail: error };
      await this.h.stop(run, { failure: error });
      return result(false, error);
    }
    run.handle = undefined;
    // A stop (the alarm) during the close: segment n is the last one, nothing restarts.
    if (stop()) {
      await this.h.stop(run);
      return result(false, `stopped (${stop()!.reason}) during the filter change; segment ${n} is the last`);
    }

    // Segment n+1: the record's own fields describe it from here on.
    run.segment = n + 1;
    run.cfg = { ...run.cfg, spec };
    rec.segments.push({ segment: n + 1, spec, filter, startedAt: new Date().toISOString(), agents: [] });
    delete rec.captureName;
    delete rec.deviceFile;
    delete rec.deviceCapture;
    delete rec.times.stopped;
    for (const side of rec.agents) {
      side.capture = "pending";
      side.files = [];
      delete side.error;
    }
    recorder.journal.append("segment-start", { device: rec.device, segment: n + 1, segments: rec.segments });
    recorder.setState(run, "starting", `filter change: starting segment ${n + 1}`);
    await this.h.agents.start(run);
    if (stop()) {
      if (rec.agents.every((a) => a.capture === "pending")) {
        // Nothing of segment n+1 ever ran: segment n stays the last one.
        rec.segments.pop();
        run.segment = n;
        restoreSegment(rec, rec.segments[rec.segments.length - 1]!);
        await this.h.stop(run);
        return result(false, `stopped (${stop()!.reason}) during the filter change; segment ${n} is the last`);
      }
      // Stopped before the device restarted: its side of segment n+1 never existed, nothing is missing.
      await this.h.stop(run, { deviceIdle: true });
      keptFiles = kept();
      return result(false, `stopped (${stop()!.reason}) during the filter change; segment ${n + 1} has only the agents' files`);
    }
    try {
      run.handle = await run.driver.startCapture(spec);
      recorder.journal.append("device-capture", { device: rec.device, handle: run.handle });
    } catch (e) {
      const msg = recorder.redact((e as Error).message);
      rec.severity = "error";
      const error = `filter change: device capture did not restart: ${msg}`;
      log.error(`${rec.device} ${error}`);
      run.stopRequested ??= { reason: "start-failed", detail: error };
      await this.h.stop(run, { failure: `${error}; segment ${n} kept` });
      return result(false, error);
    }
    rec.deviceCapture = "capturing";
    const up = rec.agents.filter((a) => a.capture === "capturing").length;
    recorder.setState(run, "capturing", `filter changed: segment ${n + 1} capturing; server captures ${up}/${rec.agents.length}`);
    recorder.event(rec, "run", "filter-change", "ok", `segment ${n + 1} capturing: device '${filter.device}'${filter.agents !== undefined ? `, agents '${filter.agents}'` : ""}`);
    if (stop()) await this.h.stop(run);
    const agentsDown = rec.agents.filter((a) => a.capture !== "capturing");
    return result(agentsDown.length === 0 || Boolean(stop()), agentsDown.length ? `server captures not restarted: ${agentsDown.map((a) => `${a.agent} ${a.error ?? a.capture}`).join("; ")}` : undefined);
  }
}
