// The run: starts agents then devices (bounded concurrency), waits for triggers, and on a trigger
// stops the agents at once (STOP carries the device file name, known before the device is even
// asked) while the device capture is stopped and downloaded, then collects the agents' files.
// One device's failure never stops the others. This class holds each device's life cycle; the
// jobs along it are collaborators: assemble.ts and driver-wiring.ts build the run, recorder.ts
// writes it down, syslog-intake.ts and agent-link.ts are its sockets, agent-sides.ts,
// verify.ts and device-collect.ts do a device's two sides, flow.ts the flow's hops, segments.ts a
// live filter change (reached through control.ts's socket in the run folder, or serve's API).
import { performance } from "node:perf_hooks";
import { formatDuration, formatEndpoint } from "@capsync/protocol";
import type { Logger, VerifyOptions } from "@capsync/common";
import type { RunConfig } from "../config/schema.js";
import { cpeCaptureFileName, type CaptureHandle } from "../drivers/driver.js";
import type { ListeningAddresses } from "../triggers/listener.js";
import type { StopEvent, SyslogEvent } from "../triggers/matchers.js";
import { DurationTriggers, type SchedulerClock } from "../triggers/timers.js";
import type { RunFolder } from "../artifacts/run-folder.js";
import { Journal } from "../artifacts/journal.js";
import type { EventRow } from "../artifacts/events.js";
import { hopFileName } from "../config/flow.js";
import { FlowRun } from "./flow.js";
import { Limiter } from "./limiter.js";
import { deviceRuns, runManifest } from "./assemble.js";
import { driverFactories, wireDriver, type DriverFactories } from "./driver-wiring.js";
import { FLOW_EVENT_DEVICE, RunRecorder } from "./recorder.js";
import { SyslogIntake } from "./syslog-intake.js";
import { AgentLink } from "./agent-link.js";
import { AgentSides, type StopLatency } from "./agent-sides.js";
import { AlarmStops } from "./alarm-stops.js";
import { VERIFY_WINDOW_MS, verifyDevice } from "./verify.js";
import { DeviceCollector, type DeviceStopLatency } from "./device-collect.js";
import type { DeviceRun } from "./device-run.js";
import { FilterChanges, earlierSegmentsMissing, idleSegmentStatus, segmentFileName, syncLastSegment, type FilterAnswer } from "./segments.js";
import { ControlServer } from "./control.js";
import { settledStatus, type DeviceRecord, type Manifest, type StopReason } from "./model.js";

export interface OrchestratorOptions {
  config: RunConfig;
  /** Index-aligned with config.devices. */
  passwords: string[];
  /** Every secret value, for redaction. */
  secrets: string[];
  /** v1 key (required unless config.agents.legacy). */
  agentKey?: Buffer;
  folder: RunFolder;
  log: Logger;
  drivers?: DriverFactories;
  /** Called whenever a device's record changes (status table). */
  onChange?: (dev: DeviceRecord) => void;
  /** Every event row as it is written (for --json). */
  onEvent?: (row: EventRow) => void;
  /**
   * Pick up an interrupted run from its folder (see recover.ts): "continue" keeps capturing devices
   * waiting for their triggers and finishes everything in between; "stop" stops and collects all now.
   */
  resume?: { manifest: Manifest; handles: Record<string, CaptureHandle>; mode: "continue" | "stop" };
  /** The duration limits' monotonic clock (tests cross days of run time with a fake one). */
  durationClock?: SchedulerClock;
  /** VERIFY's ICMP and SNMPv3 settings, keys resolved (config/verify-secrets.ts); default: ICMP only. */
  verifyProbes?: Pick<VerifyOptions, "icmp" | "snmpv3" | "snmpv3Port">;
}

export interface RunSummary {
  exitCode: 0 | 1;
  manifest: Manifest;
  failed: DeviceRecord[];
}

export class Orchestrator {
  private readonly o: OrchestratorOptions;
  private readonly runs: Map<string, DeviceRun>;
  private readonly recorder: RunRecorder;
  private readonly startLimit: Limiter;
  private readonly syslog: SyslogIntake;
  private readonly link: AgentLink;
  private readonly agents: AgentSides;
  private readonly devices: DeviceCollector;
  private readonly filters: FilterChanges;
  /** Alarms' STOP datagrams behind their journal lines, one write(2) per stretch of alarms. */
  private readonly alarmStops: AlarmStops;
  private control?: ControlServer;
  private durations!: DurationTriggers;
  /** The run's flow (config `flow:`): its agent hops, path records and the stop of every hop together. */
  private flow?: FlowRun;
  private finished!: Promise<void>;
  private resolveFinished!: () => void;
  /** alarm/trigger → first STOP datagram leaving, per device (ms), for the closing measurements. */
  readonly stopLatencies: StopLatency[] = [];
  /** alarm/trigger → the device's stop request starting (its first try, past the stop limiter), per device (ms). */
  readonly deviceStopLatencies: DeviceStopLatency[] = [];
  listening: ListeningAddresses = {};

  constructor(o: OrchestratorOptions) {
    this.o = o;
    const { config, folder, log } = o;
    const manifest = runManifest(config, folder, o.resume);
    this.recorder = new RunRecorder(folder, manifest, o.secrets, log, o);
    this.startLimit = new Limiter(config.concurrency);
    const collectLimit = new Limiter(Math.max(4, Math.min(32, config.concurrency)));
    this.finished = new Promise((r) => (this.resolveFinished = r));
    const factories = driverFactories(o.drivers);
    this.runs = deviceRuns(config, manifest, o.resume, (cfg, i, rec) => wireDriver(factories, cfg, o.passwords[i]!, config, (t) => this.recorder.driverTask(rec, t)));
    this.syslog = new SyslogIntake(config, log, this.recorder, (e) => this.onSyslog(e));
    this.link = new AgentLink(config);
    this.agents = new AgentSides(config, folder, log, this.recorder, this.link, collectLimit, this.stopLatencies, this.syslog);
    this.recorder.writer.holdWhile = () => this.syslog.alarmsArriving();
    this.alarmStops = new AlarmStops(this.recorder.journal, (e) => log.error(`stopping after an alarm: ${e.message}`));
    this.devices = new DeviceCollector(config, folder, log, this.recorder, new Limiter(config.concurrency), collectLimit, this.deviceStopLatencies);
    this.filters = new FilterChanges({
      config,
      runs: this.runs,
      recorder: this.recorder,
      agents: this.agents,
      devices: this.devices,
      log,
      captureName: (run) => this.ensureCaptureName(run, false),
      stop: (run, opts) => this.doStop(run, opts),
    });
    if (config.flow) {
      const flow = new FlowRun(
        {
          config,
          folder,
          recorder: this.recorder,
          link: this.link,
          collectLimit,
          log,
          stopDevice: (address, reason, detail, at) => this.requestStop(address, reason, detail, undefined, at),
          stopSent: (ms) => this.stopLatencies.push({ device: FLOW_EVENT_DEVICE, ms }),
          finished: () => this.checkFinished(),
        },
        config.flow,
        manifest,
      );
      this.flow = flow;
      this.recorder.syncFlow = (rec) => flow.syncDevice(rec);
    }
  }

  get manifest(): Manifest {
    return this.recorder.manifest;
  }

  /** A live filter change (body: a capture section's filter/direction/snaplen, optionally devices). */
  changeFilter(body: unknown): Promise<FilterAnswer> {
    return this.filters.request(body);
  }

  // --- lifecycle ---------------------------------------------------------------------------------
  async start(): Promise<void> {
    const c = this.o.config;
    this.link.loadSshKey();
    this.listening = await this.syslog.listen();
    // `cpe-capture filter <run folder>` reaches this run through it (serve runs too).
    this.control = await ControlServer.open(this.o.folder.dir, (body) => this.changeFilter(body), this.o.log).catch((e: Error) => {
      this.o.log.warn(`no control socket (cpe-capture filter will not reach this run): ${e.message}`);
      return undefined;
    });
    await this.link.open(this.o.agentKey, this.o.log, this.syslog);
    if (c.syslog.sharePortWithAgents && this.link.client) {
      const a = this.link.client.localAddress(4);
      if (a) this.listening.udp = a;
    }
    this.manifest.syslog = {
      ...(this.listening.udp ? { udp: formatEndpoint(this.listening.udp.address, this.listening.udp.port) } : {}),
      ...(this.listening.tcp ? { tcp: formatEndpoint(this.listening.tcp.address, this.listening.tcp.port) } : {}),
    };
    this.durations = new DurationTriggers((e) => {
      if (e.scope === "run") this.stopAll("run-duration", `run duration ${formatDuration(e.limitMs)} reached`);
      else if (e.device) this.requestStop(e.device, "duration", `device duration ${formatDuration(e.limitMs)} reached`);
    }, this.o.durationClock);
    // No stop.duration (the default): no run-wide limit, the run waits for its alarms.
    if (c.stop.durationMs !== undefined) this.durations.setRunLimit(c.stop.durationMs);
    if (this.o.resume) return this.resumeDevices(this.o.resume.mode);
    this.recorder.journal.append("run-start", { runId: this.o.folder.runId, devices: c.devices.map((d) => d.address) });
    this.recorder.event(null, "run", "start", "ok", `${c.devices.length} device(s)`);
    this.recorder.writer.flush();
    this.flow?.start();
    for (const run of this.runs.values()) {
      run.starting = this.startLimit.run(() => this.startDevice(run)).catch((e: Error) => {
        this.o.log.error(`${run.rec.device} start crashed: ${e.stack ?? e.message}`);
      });
    }
  }

  /**
   * An interrupted run, picked up from its journal. Agents are idempotent (a STOP for a capture
   * already renamed for the same file returns the same files) and downloads skip what the folder
   * already holds, so nothing is collected twice and nothing is lost.
   */
  private resumeDevices(mode: "continue" | "stop"): void {
    this.recorder.journal.append("run-resume", { mode });
    this.recorder.event(null, "run", "resume", "ok", mode);
    this.flow?.prepareResume(mode);
    for (const run of this.runs.values()) {
      const { rec } = run;
      if (rec.state === "done" || rec.state === "failed") continue;
      if (rec.state === "idle") {
        if (mode === "stop") void this.finalizeUnstarted(run, "manual");
        else run.starting = this.startLimit.run(() => this.startDevice(run)).catch((e: Error) => {
          this.o.log.error(`${rec.device} start crashed: ${e.message}`);
        });
        continue;
      }
      // Whatever was under way on the agents: ask them to stop (a no-op answer if they never captured).
      for (const side of rec.agents) if (!["collected", "remote", "failed", "pending"].includes(side.capture)) side.capture = "capturing";
      // The device may be capturing even if the start was not journaled yet: stop it anyway.
      run.handle ??= { device: rec.device, type: run.cfg.type, interfaces: run.cfg.interfaces, startedAt: rec.times.started ?? new Date().toISOString() };
      if (mode === "continue" && rec.state === "capturing") {
        const elapsed = rec.times.capturing ? Date.now() - Date.parse(rec.times.capturing) : 0;
        const left = run.cfg.durationMs === undefined ? undefined : Math.max(1, run.cfg.durationMs - elapsed);
        if (left !== undefined && left < (this.o.config.stop.durationMs ?? Infinity)) this.durations.setDeviceLimit(rec.device, left);
        this.o.log.info(`${rec.device} resumed: still capturing, waiting for its triggers`);
        this.recorder.changed(rec);
        continue;
      }
      const why = rec.stopReason ?? "manual";
      run.stopRequested = { reason: why, detail: mode === "stop" ? "stopped from the run folder after an interruption" : "finishing after an interruption" };
      void this.doStop(run);
    }
    this.flow?.resume(mode);
    this.recorder.writer.flush();
    this.checkFinished();
  }

  /** Resolves when every device is done or failed. */
  async wait(): Promise<RunSummary> {
    await this.finished;
    return this.finish();
  }

  private checkFinished(): void {
    if ([...this.runs.values()].every((r) => r.rec.state === "done" || r.rec.state === "failed") && (this.flow?.done ?? true)) this.resolveFinished();
  }

  private async finish(): Promise<RunSummary> {
    this.durations.close();
    await this.control?.close();
    await this.syslog.close();
    this.link.close();
    await Promise.all([...this.runs.values()].map((r) => r.driver.cleanup().catch(() => undefined)));
    const m = this.manifest;
    const failed = m.devices.filter((d) => d.status !== "collected");
    // The flow counts as one more unit: a hop not collected is a partial run.
    const flowBad = m.flow && m.flow.status !== "collected" ? 1 : 0;
    const bad = failed.length + flowBad;
    m.endedAt = new Date().toISOString();
    m.status = bad === 0 ? "done" : bad === m.devices.length + (m.flow ? 1 : 0) ? "failed" : "partial";
    this.recorder.journal.append("run-end", { status: m.status });
    this.recorder.event(null, "run", "end", m.status, failed.length ? `not fully collected: ${failed.map((d) => d.device).join(", ")}` : undefined);
    this.recorder.close();
    this.recorder.writer.flush();
    return { exitCode: bad ? 1 : 0, manifest: m, failed };
  }

  // --- start ---------------------------------------------------------------------------------------
  private async startDevice(run: DeviceRun): Promise<void> {
    const { rec, cfg } = run;
    if (run.stopRequested) return this.finalizeUnstarted(run);
    rec.times.started = new Date().toISOString();
    this.recorder.setState(run, "starting", "starting server captures");
    // Agents first, so the server side is already capturing when the device starts.
    await this.agents.start(run);
    if (run.stopRequested) {
      await this.doStop(run);
      return;
    }
    try {
      this.recorder.setState(run, "starting", "probing device");
      const facts = await run.driver.probe();
      rec.facts = { vendor: facts.vendor, model: facts.model, version: facts.version, serial: facts.serial };
      for (const w of facts.warnings) this.o.log.warn(`${rec.device}: ${w}`);
      this.recorder.setState(run, "starting", "starting device capture");
      run.handle = await run.driver.startCapture(cfg.flowHop?.spec ?? cfg.spec);
      this.recorder.journal.append("device-capture", { device: rec.device, handle: run.handle });
    } catch (e) {
      const msg = this.recorder.redact((e as Error).message);
      rec.severity = "error";
      this.o.log.error(`${rec.device} device capture failed to start: ${msg}`);
      // Keep whatever the agents captured: stop them with the name this device would have had.
      run.stopRequested ??= { reason: "start-failed", detail: msg };
      rec.description = `device capture failed to start: ${msg}`;
      await this.doStop(run, { failure: `device capture failed to start: ${msg}` });
      return;
    }
    rec.times.capturing = new Date().toISOString();
    rec.deviceCapture = "capturing";
    const up = rec.agents.filter((a) => a.capture === "capturing").length;
    this.recorder.setState(run, "capturing", `device capturing; server captures ${up}/${rec.agents.length}`);
    if (cfg.durationMs !== undefined && cfg.durationMs < (this.o.config.stop.durationMs ?? Infinity)) this.durations.setDeviceLimit(rec.device, cfg.durationMs);
    if (run.stopRequested) await this.doStop(run);
  }

  // --- triggers ------------------------------------------------------------------------------------
  private onSyslog(e: SyslogEvent): void {
    if (e.kind === "log") {
      const run = e.device ? this.runs.get(e.device) : undefined;
      if (run && e.count !== null) {
        run.rec.events = e.count;
        this.recorder.changed(run.rec);
      }
      this.syslog.logged(e, run?.rec ?? null);
      return;
    }
    const run = this.runs.get(e.device);
    if (!run) return;
    // The record and the event row follow the STOP (requestStop), in arrival order: syslog-intake.ts.
    this.syslog.afterAlarms(() => this.recordAlarm(run, e));
    // The datagram's arrival on the performance.now() axis, so alarm→STOP counts queueing too.
    const ageMs = Number(process.hrtime.bigint() / 1000n) / 1000 - e.receivedAt.monotonicMs;
    this.requestStop(e.device, "alarm", e.reason, e, performance.now() - ageMs);
  }

  private recordAlarm(run: DeviceRun, e: StopEvent): void {
    run.rec.events = e.count;
    run.rec.stopEvent = { reason: e.reason, matcher: e.matcher, message: e.message.slice(0, 1000), from: formatEndpoint(e.from.address, e.from.port), receivedAt: e.receivedAt.iso };
    this.recorder.dirty(run.rec);
    this.recorder.event(run.rec, "trigger", `syslog ${e.matcher}`, "stop", e.message.slice(0, 300));
  }

  /** Stop one device's captures (both sides) and collect them; idempotent. */
  requestStop(device: string, reason: StopReason, detail: string, event?: SyslogEvent, at = performance.now()): void {
    const run = this.runs.get(device);
    if (!run || run.stopRequested || run.rec.state === "done" || run.rec.state === "failed") return;
    // Spelled out: an object spread takes V8's slow clone path, once per alarm of a burst.
    run.stopRequested = event ? { reason, detail, event } : { reason, detail };
    // A trigger of any device on the flow's path stops every hop, at this trigger's time.
    if (run.cfg.flowHop) this.flow?.requestStop(reason, detail, at, device);
    run.triggerAt = at;
    this.durations?.clearDeviceLimit(device);
    const stopLine = Journal.line("stop-requested", { device, reason, detail });
    // Not through the start limiter: a stop must never wait behind other devices' slow starts.
    // An alarm's STOP datagrams leave now, behind nothing but their journal lines (written once for
    // the alarms of this stretch: alarm-stops.ts); its log line, state and device stop once the
    // alarms already read have sent theirs (unless VERIFY must probe before the STOP).
    if (run.rec.state === "capturing" && event && !this.o.config.verify) {
      const nameLine = this.nameCapture(run);
      this.alarmStops.add(stopLine + nameLine, run, this.sendAlarmStop);
      this.syslog.afterAlarms(() => {
        this.logStopRequested(device, reason, detail);
        void this.doStop(run);
      });
      return;
    }
    this.recorder.journal.appendLines(stopLine);
    this.logStopRequested(device, reason, detail);
    if (run.rec.state === "capturing") void this.doStop(run);
    else if (run.rec.state === "starting") {
      // Stop agents that are already capturing right away; the start path finishes the rest.
      this.stopAgents(run);
    }
  }

  private logStopRequested(device: string, reason: StopReason, detail: string): void {
    this.o.log.info(`${device} stop requested (${reason}): ${detail}`);
  }

  /** One bound function for every alarm's STOP (alarm-stops.ts): no closure per alarm. */
  private readonly sendAlarmStop = (run: DeviceRun): void => {
    void this.agents.stop(run, run.rec.captureName!);
  };

  stopAll(reason: StopReason, detail: string): void {
    this.flow?.requestStop(reason, detail);
    for (const d of this.runs.keys()) this.requestStop(d, reason, detail);
    for (const run of this.runs.values()) if (run.rec.state === "idle") void this.finalizeUnstarted(run);
  }

  private async finalizeUnstarted(run: DeviceRun, reason?: StopReason): Promise<void> {
    if (run.rec.state !== "idle") return;
    run.rec.stopReason = reason ?? run.stopRequested?.reason ?? "manual";
    run.rec.status = "failed";
    run.rec.severity = "warning";
    this.recorder.setState(run, "failed", "stopped before it started");
    this.checkFinished();
  }

  // --- stop and collect -----------------------------------------------------------------------------
  private ensureCaptureName(run: DeviceRun, trigger = true): string {
    const line = this.nameCapture(run, trigger);
    if (line) this.recorder.journal.appendLines(line);
    return run.rec.captureName!;
  }

  /** Name the device's capture unless it has its name; returns the journal line to write before the name is used ("" if none). */
  private nameCapture(run: DeviceRun, trigger = true): string {
    // On resume the name comes from the journal: agents rename to it, and it must not change.
    if (run.rec.captureName) return "";
    const now = new Date();
    // Flow hops share the flow's stop time, so every hop file carries one timestamp.
    const when = (run.cfg.flowHop && this.flow?.stopDate) || now;
    run.rec.captureName = this.o.folder.reserve(segmentFileName(cpeCaptureFileName(run.rec.device, when), run.segment ?? 1));
    if (trigger) run.rec.times.triggered = now.toISOString();
    return Journal.line("capture-name", { device: run.rec.device, captureName: run.rec.captureName });
  }

  /** Send STOP to every capturing agent of the device, now; downloads follow in the background. */
  private stopAgents(run: DeviceRun): Promise<void> {
    // An alarm's STOP for this device may still wait for its journal lines: they go first.
    this.alarmStops.flush();
    return this.agents.stop(run, this.ensureCaptureName(run));
  }

  /** `failure` replaces the description's cause; `deviceIdle`: the device has no capture in this segment by design (a filter change stopped before it restarted). */
  private doStop(run: DeviceRun, opts: { failure?: string; deviceIdle?: boolean } = {}): Promise<void> {
    if (run.stopping) return run.stopping;
    run.stopping = (async () => {
      const { rec } = run;
      const req = run.stopRequested ?? { reason: "manual" as const, detail: "stopped" };
      rec.stopReason = req.reason;
      // VERIFY's first probes leave at once; give them VERIFY_WINDOW_MS to be captured on both
      // sides, then stop without waiting for the probes' timeouts (a broken path would cost seconds).
      // Not on a flow's hops: every hop stops at once, none captures VERIFY_WINDOW_MS longer than the others.
      const verifying = req.reason === "alarm" && this.o.config.verify && run.handle && !run.cfg.flowHop ? verifyDevice(run, this.link.client, this.recorder, this.o.verifyProbes) : undefined;
      if (verifying) await Promise.race([verifying, new Promise((r) => setTimeout(r, VERIFY_WINDOW_MS))]);
      this.recorder.setState(run, "stopping", `stopping (${req.reason}): ${req.detail}`);
      const agents = this.stopAgents(run);
      // A flow hop's device file is hop<N>_<the name its agents rename to>.
      const hop = run.cfg.flowHop && this.flow?.flow.path[run.cfg.flowHop.hop - 1];
      const name = hop ? hopFileName(hop, rec.captureName!, "") : rec.captureName!;
      let deviceOk = Boolean(rec.deviceFile);
      if (run.handle && !deviceOk) deviceOk = await this.devices.stopAndFetch(run, name);
      await agents;
      rec.times.collected = new Date().toISOString();
      // The VERIFY results (probes may still be timing out on a broken path) go into the manifest.
      await verifying;
      syncLastSegment(rec, req.reason);
      rec.status = opts.deviceIdle && rec.segments ? idleSegmentStatus(rec) : settledStatus(rec, deviceOk);
      // A restart that failed half way is a failed device, whatever its earlier segments hold.
      if (rec.status === "collected" && (earlierSegmentsMissing(rec) || (opts.failure && rec.segments))) rec.status = "partial";
      if (rec.status !== "collected" && rec.severity === "info") rec.severity = "warning";
      const sides = `device ${deviceOk ? "collected" : opts.deviceIdle ? "not restarted" : "missing"}, servers ${rec.agents.filter((a) => a.capture === "collected" || a.capture === "remote").length}/${rec.agents.length}`;
      const ok = (deviceOk || opts.deviceIdle) && !(opts.failure && rec.segments);
      this.recorder.setState(run, ok ? "done" : "failed", opts.failure ? `${opts.failure}; ${sides}` : `${req.reason}: ${sides}${rec.segments ? `; ${rec.segments.length} segments` : ""}`);
      this.checkFinished();
    })();
    return run.stopping;
  }
}
