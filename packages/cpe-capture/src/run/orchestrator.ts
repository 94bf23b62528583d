// The run: starts agents then devices (bounded concurrency), waits for triggers, and on a trigger
// stops the agents at once (STOP carries the device file name, known before the device is even
// asked) while the device capture is stopped and downloaded, then collects the agents' files.
// One device's failure never stops the others.
import { performance } from "node:perf_hooks";
import { existsSync, readFileSync, statSync } from "node:fs";
import { type Logger, formatEndpoint, redact } from "@capsync/protocol";
import { AgentClient, type AgentAnswer } from "../agents/index.js";
import type { DeviceConfig, RunConfig } from "../config/schema.js";
import { normalisedForDisplay } from "../config/display.js";
import { type CaptureDriver, type CaptureHandle, type DriverFactory, type DriverTask, type LocalFile, type RemoteFile, cpeCaptureFileName } from "../drivers/driver.js";
import { drivers as defaultDrivers } from "../drivers/index.js";
import { SyslogListener, looksLikeSyslog, type ListeningAddresses } from "../triggers/listener.js";
import { compileMatchers, type MatcherSpec, type SyslogEvent } from "../triggers/matchers.js";
import { DurationTriggers } from "../triggers/timers.js";
import { type RunFolder } from "../artifacts/run-folder.js";
import { EventsCsv, type EventRow } from "../artifacts/events.js";
import { Journal } from "../artifacts/journal.js";
import { AgentSftpPool, downloadAgentFiles, sha256File } from "../artifacts/collect.js";
import { verifyPath } from "@capsync/server-capture/verify";
import { agentWireSpec } from "../spec/index.js";
import { hopFileName } from "../config/flow.js";
import { FLOW_EVENT_DEVICE, FlowRun } from "./flow.js";
import { Limiter } from "./limiter.js";
import { ManifestWriter } from "./manifest-writer.js";
import type { AgentSide, DeviceRecord, Manifest, StopReason } from "./model.js";

export const VERSION = "0.1.0";
/** How often the syslog drop counters are checked (a line is logged only when they grew). */
const DROP_WATCH_MS = 10_000;
/** Log-only syslog messages written one by one per window; the rest are counted (see logOnlyAllowed). */
const LOG_ONLY_PER_WINDOW = 100;
const LOG_ONLY_WINDOW_MS = 10_000;
/** How long the stop waits for VERIFY's probes to be on the wire before STOP leaves. */
export const VERIFY_WINDOW_MS = 250;

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
  drivers?: Partial<Record<string, DriverFactory>>;
  /** Called whenever a device's record changes (status table). */
  onChange?: (dev: DeviceRecord) => void;
  /** Every event row as it is written (for --json). */
  onEvent?: (row: EventRow) => void;
  /**
   * Pick up an interrupted run from its folder (see recover.ts): "continue" keeps capturing devices
   * waiting for their triggers and finishes everything in between; "stop" stops and collects all now.
   */
  resume?: { manifest: Manifest; handles: Record<string, CaptureHandle>; mode: "continue" | "stop" };
}

interface DeviceRun {
  cfg: DeviceConfig;
  rec: DeviceRecord;
  driver: CaptureDriver;
  handle?: CaptureHandle;
  starting?: Promise<void>;
  stopRequested?: { reason: StopReason; detail: string; event?: SyslogEvent };
  stopping?: Promise<void>;
  /** performance.now() when the trigger arrived, for alarm→STOP latency. */
  triggerAt?: number;
}

export interface RunSummary {
  exitCode: 0 | 1;
  manifest: Manifest;
  failed: DeviceRecord[];
}

export class Orchestrator {
  private readonly o: OrchestratorOptions;
  private readonly runs = new Map<string, DeviceRun>();
  private readonly writer: ManifestWriter;
  private readonly events: EventsCsv;
  private readonly journal: Journal;
  private readonly startLimit: Limiter;
  /** Device stop requests: apart from the starts (a stop never waits behind a slow start), but bounded too. */
  private readonly stopLimit: Limiter;
  private readonly collectLimit: Limiter;
  /** Only when some device has agents (or the legacy shared port needs the socket). */
  private client?: AgentClient;
  private listener?: SyslogListener;
  /** Periodic check of the syslog drop counters, and the total last logged. */
  private dropWatch?: NodeJS.Timeout;
  private dropsLogged = 0;
  /** Log-only syslog lines written in the current window, and how many were not. */
  private readonly logOnly = { since: 0, shown: 0, suppressed: 0 };
  private durations!: DurationTriggers;
  private sshKey?: Buffer;
  /** One SSH connection per agent for its files, shared while downloads are under way. */
  private readonly agentSftp = new AgentSftpPool();
  /** The run's flow (config `flow:`): its agent hops, path records and the stop of every hop together. */
  private flow?: FlowRun;
  private finished!: Promise<void>;
  private resolveFinished!: () => void;
  /** alarm/trigger → first STOP datagram leaving, per device (ms), for the closing measurements. */
  readonly stopLatencies: { device: string; ms: number; at?: number }[] = [];
  /** alarm/trigger → the device's stop request starting (its first try, past the stop limiter), per device (ms). */
  readonly deviceStopLatencies: { device: string; ms: number; at: number }[] = [];
  listening: ListeningAddresses = {};

  constructor(o: OrchestratorOptions) {
    this.o = o;
    const manifest: Manifest = o.resume?.manifest ?? {
      tool: "capsync",
      version: VERSION,
      runId: o.folder.runId,
      folder: o.folder.dir,
      startedAt: new Date().toISOString(),
      status: "running",
      mode: o.config.agents.legacy ? "legacy" : "v1",
      config: normalisedForDisplay(o.config),
      devices: [],
    };
    if (o.resume) {
      manifest.status = "running";
      delete manifest.endedAt;
    }
    this.writer = new ManifestWriter(o.folder, manifest, () => o.secrets);
    this.events = new EventsCsv(o.folder.path("events.csv"));
    this.journal = new Journal(o.folder.path("journal.jsonl"));
    this.startLimit = new Limiter(o.config.concurrency);
    this.stopLimit = new Limiter(o.config.concurrency);
    this.collectLimit = new Limiter(Math.max(4, Math.min(32, o.config.concurrency)));
    this.finished = new Promise((r) => (this.resolveFinished = r));
    const factories = { ...defaultDrivers, ...(o.drivers ?? {}) } as Record<string, DriverFactory | undefined>;
    o.config.devices.forEach((cfg, i) => {
      const previous = o.resume?.manifest.devices.find((d) => d.device === cfg.address);
      const rec: DeviceRecord = previous ?? {
        device: cfg.address,
        name: cfg.name,
        type: cfg.type,
        state: "idle",
        status: "running",
        severity: "info",
        description: "waiting to start",
        interfaces: cfg.interfaces,
        events: 0,
        tasks: [],
        agents: cfg.agents.map((a) => ({ agent: formatEndpoint(a.host, a.port), registration: "pending", capture: "pending", answers: [], files: [] })),
        times: {},
      };
      if (!previous) manifest.devices.push(rec);
      const factory = factories[cfg.type];
      if (!factory) throw new Error(`no driver for device type '${cfg.type}'`);
      const driver = factory({
        address: cfg.address,
        type: cfg.type,
        username: cfg.username,
        password: o.passwords[i]!,
        restPort: cfg.restPort,
        sshPort: cfg.sshPort,
        tls: cfg.tls,
        ...(cfg.transport ? { transport: cfg.transport } : {}),
        ...(cfg.fileTransfer ? { fileTransfer: cfg.fileTransfer } : {}),
        timeouts: { restMs: o.config.timeouts.restMs, sftpMs: o.config.timeouts.sftpMs },
        retries: o.config.retries,
        onTask: (t) => this.onDriverTask(rec, t),
      });
      const handle = o.resume?.handles[cfg.address];
      this.runs.set(cfg.address, { cfg, rec, driver, ...(handle ? { handle } : {}) });
    });
    if (o.config.flow) this.flow = new FlowRun(this.flowHost(), o.config.flow, manifest);
  }

  private flowHost(): ConstructorParameters<typeof FlowRun>[0] {
    return {
      config: this.o.config,
      folder: this.o.folder,
      journal: this.journal,
      collectLimit: this.collectLimit,
      log: this.o.log,
      client: () => this.client,
      sshKey: () => this.sshKey,
      event: (source, event, status, detail) => {
        const row: EventRow = { timestamp: new Date().toISOString(), device: FLOW_EVENT_DEVICE, source, event, status, httpStatus: undefined, detail: detail === undefined ? undefined : this.redact(detail) };
        this.events.add(row);
        this.o.onEvent?.(row);
      },
      changed: () => this.writer.touch(),
      stopDevice: (address, reason, detail, at) => this.requestStop(address, reason, detail, undefined, at),
      stopSent: (ms) => this.stopLatencies.push({ device: FLOW_EVENT_DEVICE, ms }),
      finished: () => this.checkFinished(),
      redact: (t) => this.redact(t),
    };
  }

  get manifest(): Manifest {
    return this.writer.manifest;
  }

  private redact(s: string): string {
    return redact(s, this.o.secrets);
  }

  // --- bookkeeping -------------------------------------------------------------------------------
  private event(rec: DeviceRecord | null, source: EventRow["source"], event: string, status: string, detail?: string, httpStatus?: number): void {
    const row: EventRow = { timestamp: new Date().toISOString(), device: rec?.device ?? "", source, event, status, httpStatus, detail: detail === undefined ? undefined : this.redact(detail) };
    this.events.add(row);
    this.o.onEvent?.(row);
  }

  private changed(rec: DeviceRecord): void {
    this.flow?.syncDevice(rec);
    this.writer.touch();
    this.o.onChange?.(rec);
  }

  private setState(run: DeviceRun, state: DeviceRecord["state"], description?: string): void {
    run.rec.state = state;
    if (description !== undefined) run.rec.description = this.redact(description);
    this.journal.append("device-state", { device: run.rec.device, state, ...(run.rec.captureName ? { captureName: run.rec.captureName } : {}) });
    this.o.log.info(`${run.rec.device} ${state}${description ? `: ${this.redact(description)}` : ""}`);
    this.event(run.rec, "run", "state", state, description);
    this.changed(run.rec);
  }

  private onDriverTask(rec: DeviceRecord, t: DriverTask): void {
    const output = t.output === undefined ? undefined : this.redact(t.output).slice(0, 4000);
    rec.tasks.push({ name: t.name, timestamp: t.timestamp, status: t.status, ...(t.httpStatus !== undefined ? { httpStatus: t.httpStatus } : {}), ...(output !== undefined ? { output } : {}), durationMs: t.durationMs });
    rec.lastRequest = t.name;
    rec.lastResponse = t.httpStatus !== undefined ? String(t.httpStatus) : t.status;
    this.event(rec, "device", t.name, t.status, output, t.httpStatus);
    this.o.log.info(`${rec.device} task ${t.name} ${t.status}${t.httpStatus ? ` HTTP ${t.httpStatus}` : ""} ${t.durationMs}ms${t.status === "failed" && output ? `: ${output.slice(0, 300)}` : ""}`);
    this.changed(rec);
  }

  private recordAnswer(run: DeviceRun, side: AgentSide, a: AgentAnswer): void {
    side.answers.push({ verb: a.verb, code: a.code, details: a.details, tries: a.tries, elapsedMs: Math.round(a.elapsedMs), at: new Date().toISOString() });
    side.lastRequest = a.verb;
    side.lastResponse = String(a.code);
    const detail = Object.entries(a.details).map(([k, v]) => `${k}=${v}`).join(" ");
    this.event(run.rec, "agent", `${side.agent} ${a.verb}`, String(a.code), detail);
    this.o.log.info(`${run.rec.device} agent ${side.agent} ${a.verb} → ${a.code} (${a.tries} tries, ${a.elapsedMs.toFixed(1)} ms)${detail ? ` ${detail}` : ""}`);
  }

  // --- lifecycle ---------------------------------------------------------------------------------
  async start(): Promise<void> {
    const c = this.o.config;
    if (c.agents.sshKeyFile) this.sshKey = readFileSync(c.agents.sshKeyFile);
    const share = c.syslog.sharePortWithAgents;
    this.listener = new SyslogListener({
      onEvent: (e) => this.onSyslog(e),
      onError: (e) => this.o.log.warn(`syslog: ${e.message}`),
      matchers: compileMatchers(c.stop.alarms.map((a): MatcherSpec => (a.kind === "builtin" ? a.name : { pattern: a.pattern, flags: a.flags }))),
      devices: c.devices.map((d) => d.address),
      maxEventsPerDevice: c.stop.maxEventsPerDevice,
      udp: share ? false : { address: c.syslog.listen.host, port: c.syslog.listen.port },
      tcp: c.syslog.tcp ? { address: c.syslog.listen.host, port: c.syslog.listen.port } : false,
    });
    this.listening = await this.listener.listen();
    this.dropWatch = setInterval(() => void this.logListenerStats(false), DROP_WATCH_MS);
    this.dropWatch.unref();
    // No device with agents: no agent socket (and no key) needed.
    const anyAgents = c.devices.some((d) => d.agents.length > 0) || Boolean(c.flow?.path.some((h) => h.kind === "server"));
    if (anyAgents || share) this.client = await AgentClient.open({
      mode: c.agents.legacy ? "legacy" : "v1",
      ...(this.o.agentKey ? { key: this.o.agentKey } : {}),
      ...(share ? { bind: { address: c.syslog.listen.host, port: c.syslog.listen.port } } : c.agents.answerPort ? { bind: { port: c.agents.answerPort } } : {}),
      // REGISTER makes the agent point the management server's alarm forwarding at the address
      // the REGISTER came from (as the original did), i.e. this socket: hand syslog arriving here
      // to the listener too, shared port or not.
      onForeignDatagram: (buf, rinfo) => {
        if (share || looksLikeSyslog(buf)) this.listener!.handleDatagram(buf, rinfo);
      },
      timing: { CAPTURE: { deadlineMs: c.timeouts.agentMs }, REGISTER: { deadlineMs: c.timeouts.agentMs } },
      log: this.o.log,
    });
    if (share && this.client) {
      const a = this.client.localAddress(4);
      if (a) this.listening.udp = a;
    }
    this.manifest.syslog = {
      ...(this.listening.udp ? { udp: formatEndpoint(this.listening.udp.address, this.listening.udp.port) } : {}),
      ...(this.listening.tcp ? { tcp: formatEndpoint(this.listening.tcp.address, this.listening.tcp.port) } : {}),
    };
    this.durations = new DurationTriggers((e) => {
      if (e.scope === "run") this.stopAll("run-duration", `run duration ${e.limitMs / 1000}s reached`);
      else if (e.device) this.requestStop(e.device, "duration", `device duration ${e.limitMs / 1000}s reached`);
    });
    this.durations.setRunLimit(c.stop.durationMs);
    if (this.o.resume) return this.resumeDevices(this.o.resume.mode);
    this.journal.append("run-start", { runId: this.o.folder.runId, devices: c.devices.map((d) => d.address) });
    this.event(null, "run", "start", "ok", `${c.devices.length} device(s)`);
    this.writer.flush();
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
    this.journal.append("run-resume", { mode });
    this.event(null, "run", "resume", "ok", mode);
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
        const left = Math.max(1, run.cfg.durationMs - elapsed);
        if (left < this.o.config.stop.durationMs) this.durations.setDeviceLimit(rec.device, left);
        this.o.log.info(`${rec.device} resumed: still capturing, waiting for its triggers`);
        this.changed(rec);
        continue;
      }
      const why = rec.stopReason ?? "manual";
      run.stopRequested = { reason: why, detail: mode === "stop" ? "stopped from the run folder after an interruption" : "finishing after an interruption" };
      void this.doStop(run);
    }
    this.flow?.resume(mode);
    this.writer.flush();
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
    clearInterval(this.dropWatch);
    await this.logListenerStats(true);
    await this.listener?.close();
    this.client?.close();
    this.agentSftp.close();
    await Promise.all([...this.runs.values()].map((r) => r.driver.cleanup().catch(() => undefined)));
    const m = this.manifest;
    const failed = m.devices.filter((d) => d.status !== "collected");
    // The flow counts as one more unit: a hop not collected is a partial run.
    const flowBad = m.flow && m.flow.status !== "collected" ? 1 : 0;
    const bad = failed.length + flowBad;
    m.endedAt = new Date().toISOString();
    m.status = bad === 0 ? "done" : bad === m.devices.length + (m.flow ? 1 : 0) ? "failed" : "partial";
    this.journal.append("run-end", { status: m.status });
    this.event(null, "run", "end", m.status, failed.length ? `not fully collected: ${failed.map((d) => d.device).join(", ")}` : undefined);
    this.events.flush();
    this.writer.flush();
    return { exitCode: bad ? 1 : 0, manifest: m, failed };
  }

  /**
   * Log-only syslog (other alarms, other devices) is written one by one only up to
   * LOG_ONLY_PER_WINDOW per window; the rest is counted and summed up in one line. A storm of other
   * alarms used to cost a log line, an events.csv row and a JSON line each: at 5,000/s that ate the
   * CPU the socket needed, and the kernel dropped datagrams — the real alarm among them.
   */
  private logOnlyAllowed(now = Date.now()): boolean {
    const w = this.logOnly;
    if (now - w.since >= LOG_ONLY_WINDOW_MS) {
      this.flushLogOnly(now);
      w.since = now;
      w.shown = 0;
    }
    if (w.shown < LOG_ONLY_PER_WINDOW) {
      w.shown++;
      return true;
    }
    w.suppressed++;
    return false;
  }

  private flushLogOnly(now = Date.now()): void {
    const w = this.logOnly;
    if (!w.suppressed) return;
    const detail = `${w.suppressed} more log-only syslog message(s) in ${((now - w.since) / 1000).toFixed(1)} s not written one by one`;
    this.o.log.warn(`syslog: ${detail}`);
    this.event(null, "trigger", "syslog log-only", "suppressed", detail);
    w.suppressed = 0;
  }

  /**
   * The syslog intake's counters: a storm may cost dropped datagrams (queue lanes full, or the
   * kernel's receive buffer), never silently. While running, a line only when drops grew; at the
   * end of the run, always.
   */
  private async logListenerStats(final: boolean): Promise<void> {
    if (!this.listener) return;
    if (final || Date.now() - this.logOnly.since >= LOG_ONLY_WINDOW_MS) this.flushLogOnly();
    const s = this.listener.stats();
    const kernel = await this.listener.kernelDrops().catch(() => null);
    const drops = s.dropped + (kernel ?? 0);
    if (!final && drops === this.dropsLogged) return;
    this.dropsLogged = drops;
    const line =
      `syslog listener${final ? " (end of run)" : ""}: received ${s.received}, ignored ${s.ignored} (unrelated), processed ${s.processed}, ` +
      `dropped ${s.dropped} (queue full; ${s.droppedPriority} from the priority lane), kernel drops ${kernel ?? "unknown"}, ` +
      `peak queue ${s.peakQueued}, stop events ${s.stopEvents}, log events ${s.logEvents}`;
    if (drops > 0) this.o.log.warn(line);
    else this.o.log.info(line);
  }

  // --- start ---------------------------------------------------------------------------------------
  private async startDevice(run: DeviceRun): Promise<void> {
    const { rec, cfg } = run;
    if (run.stopRequested) return this.finalizeUnstarted(run);
    rec.times.started = new Date().toISOString();
    this.setState(run, "starting", "starting server captures");
    // Agents first, so the server side is already capturing when the device starts.
    await Promise.all(cfg.agents.map((a, i) => this.startAgent(run, a, rec.agents[i]!)));
    if (run.stopRequested) {
      await this.doStop(run);
      return;
    }
    try {
      this.setState(run, "starting", "probing device");
      const facts = await run.driver.probe();
      rec.facts = { vendor: facts.vendor, model: facts.model, version: facts.version, serial: facts.serial };
      for (const w of facts.warnings) this.o.log.warn(`${rec.device}: ${w}`);
      this.setState(run, "starting", "starting device capture");
      run.handle = await run.driver.startCapture(cfg.flowHop?.spec ?? cfg.spec);
      this.journal.append("device-capture", { device: rec.device, handle: run.handle });
    } catch (e) {
      const msg = this.redact((e as Error).message);
      rec.severity = "error";
      this.o.log.error(`${rec.device} device capture failed to start: ${msg}`);
      // Keep whatever the agents captured: stop them with the name this device would have had.
      run.stopRequested ??= { reason: "start-failed", detail: msg };
      rec.description = `device capture failed to start: ${msg}`;
      await this.doStop(run, msg);
      return;
    }
    rec.times.capturing = new Date().toISOString();
    rec.deviceCapture = "capturing";
    const up = rec.agents.filter((a) => a.capture === "capturing").length;
    this.setState(run, "capturing", `device capturing; server captures ${up}/${rec.agents.length}`);
    if (cfg.durationMs < this.o.config.stop.durationMs) this.durations.setDeviceLimit(rec.device, cfg.durationMs);
    if (run.stopRequested) await this.doStop(run);
  }

  private async startAgent(run: DeviceRun, ep: { host: string; port: number }, side: AgentSide): Promise<void> {
    const device = run.rec.device;
    try {
      side.registration = "pending";
      side.capture = "registering";
      const reg = await this.client!.request(ep, { verb: "REGISTER", device });
      this.recordAnswer(run, side, reg);
      side.registration = reg.code === 200 ? "active" : "failed";
      if (reg.code !== 200) this.o.log.warn(`${device} agent ${side.agent} refused REGISTER (${reg.code} ${reg.details.reason ?? ""}); capturing anyway`);
      if (run.stopRequested) {
        side.capture = "pending";
        return;
      }
      side.capture = "starting";
      this.changed(run.rec);
      const spec = agentWireSpec(run.cfg.spec);
      const cap = await this.client!.request(ep, { verb: "CAPTURE", device, ...(spec ? { spec } : {}) });
      this.recordAnswer(run, side, cap);
      if (cap.code === 200) {
        side.capture = "capturing";
        this.journal.append("agent-capture", { device, agent: side.agent, file: cap.details.file });
      } else {
        side.capture = "failed";
        side.error = `${cap.code} ${cap.details.reason ?? ""} ${cap.details.msg ?? ""}`.trim();
      }
    } catch (e) {
      side.capture = "failed";
      side.error = (e as Error).message;
      this.o.log.error(`${device}: ${side.error}`);
      this.event(run.rec, "agent", `${side.agent} error`, "failed", side.error);
    }
    this.changed(run.rec);
  }

  // --- triggers ------------------------------------------------------------------------------------
  private onSyslog(e: SyslogEvent): void {
    if (e.kind === "log") {
      const run = e.device ? this.runs.get(e.device) : undefined;
      if (run && e.count !== null) {
        run.rec.events = e.count;
        this.changed(run.rec);
      }
      if (!this.logOnlyAllowed()) return;
      this.o.log.info(`syslog (logged only, ${e.note}) from ${e.from.address}: ${e.message.slice(0, 300)}`);
      this.event(run?.rec ?? null, "trigger", `syslog ${e.matcher}`, e.note, e.message.slice(0, 300));
      return;
    }
    const run = this.runs.get(e.device);
    if (!run) return;
    run.rec.events = e.count;
    run.rec.stopEvent = { reason: e.reason, matcher: e.matcher, message: e.message.slice(0, 1000), from: formatEndpoint(e.from.address, e.from.port), receivedAt: e.receivedAt.iso };
    this.event(run.rec, "trigger", `syslog ${e.matcher}`, "stop", e.message.slice(0, 300));
    // The datagram's arrival on the performance.now() axis, so alarm→STOP counts queueing too.
    const ageMs = Number(process.hrtime.bigint() / 1000n) / 1000 - e.receivedAt.monotonicMs;
    this.requestStop(e.device, "alarm", e.reason, e, performance.now() - ageMs);
  }

  /** Stop one device's captures (both sides) and collect them; idempotent. */
  requestStop(device: string, reason: StopReason, detail: string, event?: SyslogEvent, at = performance.now()): void {
    const run = this.runs.get(device);
    if (!run || run.stopRequested || run.rec.state === "done" || run.rec.state === "failed") return;
    run.stopRequested = { reason, detail, ...(event ? { event } : {}) };
    // A trigger of any device on the flow's path stops every hop, at this trigger's time.
    if (run.cfg.flowHop) this.flow?.requestStop(reason, detail, at, device);
    run.triggerAt = at;
    this.durations?.clearDeviceLimit(device);
    this.journal.append("stop-requested", { device, reason, detail });
    this.o.log.info(`${device} stop requested (${reason}): ${detail}`);
    // Not through the start limiter: a stop must never wait behind other devices' slow starts.
    if (run.rec.state === "capturing") void this.doStop(run);
    else if (run.rec.state === "starting") {
      // Stop agents that are already capturing right away; the start path finishes the rest.
      this.stopAgents(run);
    }
  }

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
    this.setState(run, "failed", "stopped before it started");
    this.checkFinished();
  }

  // --- stop and collect -----------------------------------------------------------------------------
  private ensureCaptureName(run: DeviceRun): string {
    // On resume the name comes from the journal: agents rename to it, and it must not change.
    if (!run.rec.captureName) {
      // Flow hops share the flow's stop time, so every hop file carries one timestamp.
      const when = (run.cfg.flowHop && this.flow?.stopDate) || new Date();
      run.rec.captureName = this.o.folder.reserve(cpeCaptureFileName(run.rec.device, when));
      run.rec.times.triggered = new Date().toISOString();
      this.journal.append("capture-name", { device: run.rec.device, captureName: run.rec.captureName });
    }
    return run.rec.captureName;
  }

  private agentStops = new Map<string, Promise<void>>();

  /** Send STOP to every capturing agent of the device, now; downloads follow in the background. */
  private stopAgents(run: DeviceRun): Promise<void> {
    const name = this.ensureCaptureName(run);
    const work = run.cfg.agents.map((ep, i) => {
      const side = run.rec.agents[i]!;
      const key = `${run.rec.device}|${side.agent}`;
      if (!["capturing", "starting"].includes(side.capture)) return this.agentStops.get(key) ?? Promise.resolve();
      let p = this.agentStops.get(key);
      if (!p) {
        p = this.stopOneAgent(run, ep, side, name);
        this.agentStops.set(key, p);
      }
      return p;
    });
    return Promise.all(work).then(() => undefined);
  }

  private async stopOneAgent(run: DeviceRun, ep: { host: string; port: number }, side: AgentSide, name: string): Promise<void> {
    if (side.capture === "collected") return;
    side.capture = "stopping";
    this.changed(run.rec);
    try {
      const ans = await this.client!.request(ep, { verb: "STOP", device: run.rec.device, filename: name }, {
        onSend: (s) => {
          if (s.attempt === 1 && run.triggerAt !== undefined) {
            // `at`: when, in epoch ms (performance.timeOrigin-based), for measurements across processes.
            this.stopLatencies.push({ device: run.rec.device, ms: s.at - run.triggerAt, at: performance.timeOrigin + s.at });
            run.rec.times.agentsStopSent ??= new Date().toISOString();
          }
        },
      });
      this.recordAnswer(run, side, ans);
      if (ans.code !== 200) {
        side.capture = "failed";
        side.error = `STOP answered ${ans.code} ${ans.details.reason ?? ""} ${ans.details.msg ?? ""}`.trim();
        return;
      }
      const names = (ans.details.files ?? "").split(",").filter(Boolean);
      if (this.o.config.agents.legacy || !names.length) {
        // The legacy protocol does not say which files; they stay on the server.
        side.capture = "remote";
        side.files = names.map((n) => ({ name: n, bytes: 0, remote: `${side.agent}:${n}` }));
        return;
      }
      if (!this.sshKey) {
        side.capture = "remote";
        side.files = names.map((n) => ({ name: n, bytes: Number(ans.details.bytes ?? 0) / names.length, remote: `${ep.host}:<capture dir>/${n}` }));
        this.o.log.info(`${run.rec.device} agent ${side.agent}: no agents.sshKeyFile, files stay on the server: ${names.join(", ")}`);
        return;
      }
      side.capture = "collecting";
      this.changed(run.rec);
      const files = await this.collectLimit.run(() =>
        downloadAgentFiles({ host: ep.host, port: this.o.config.agents.sftpPort, privateKey: this.sshKey!, timeoutMs: this.o.config.timeouts.sftpMs, pool: this.agentSftp }, names, this.o.folder),
      );
      side.files = files;
      side.capture = "collected";
      this.journal.append("agent-collected", { device: run.rec.device, agent: side.agent, files: files.map((f) => f.name) });
      this.event(run.rec, "collect", `${side.agent} files`, "ok", files.map((f) => `${f.name} (${f.bytes} B)`).join("; "));
    } catch (e) {
      side.capture = "failed";
      side.error = this.redact((e as Error).message);
      this.o.log.error(`${run.rec.device} agent ${side.agent}: ${side.error}`);
      this.event(run.rec, "agent", `${side.agent} stop`, "failed", side.error);
    } finally {
      this.changed(run.rec);
    }
  }

  /**
   * On an alarm, before stopping: VERIFY from every capturing agent and the same probes from here,
   * so both captures show whether the path still carries TCP/443 and SNMP. Bounded (3 tries of
   * 500 ms each side); only to the device's own address.
   */
  private async verify(run: DeviceRun): Promise<void> {
    const { rec } = run;
    this.setState(run, "stopping", `verifying the path (VERIFY, ${VERIFY_WINDOW_MS} ms before STOP)`);
    const agents = run.cfg.agents
      .map((ep, i) => ({ ep, side: rec.agents[i]! }))
      .filter(({ side }) => side.capture === "capturing")
      .map(async ({ ep, side }) => {
        try {
          const a = await this.client!.request(ep, { verb: "VERIFY", device: rec.device }, { deadlineMs: 2000, tryingDeadlineMs: 6000 });
          this.recordAnswer(run, side, a);
          return { agent: side.agent, code: a.code, details: a.details };
        } catch (e) {
          return { agent: side.agent, code: 0, details: { error: (e as Error).message } };
        }
      });
    const local = verifyPath(rec.device, { tries: 3, timeoutMs: 500 }).catch(() => ({ ok: false, tcpTries: 0, tcpAnswered: 0, tcpTimeouts: 0, udpSent: 0, udpAnswers: 0 }));
    const [agentResults, mine] = await Promise.all([Promise.all(agents), local]);
    rec.verify = {
      at: new Date().toISOString(),
      agents: agentResults,
      orchestrator: { ok: mine.ok, tcp: `${mine.tcpAnswered}/${mine.tcpTries}`, snmp: `${mine.udpAnswers}/${mine.udpSent}` },
    };
    this.event(rec, "run", "verify", mine.ok ? "ok" : "failed", `orchestrator tcp ${rec.verify.orchestrator.tcp} snmp ${rec.verify.orchestrator.snmp}; ${agentResults.map((a) => `${a.agent} ${a.code}`).join(", ")}`);
  }

  /**
   * Stop the device capture and download it. "Connection Lost" usually means the device is
   * unreachable right now: keep retrying with backoff for stop.deviceRetry (default 30 min) while
   * the agents' side is already collected; the manifest shows the device capture as pending.
   */
  private async stopAndFetchDevice(run: DeviceRun, name: string): Promise<boolean> {
    const { rec } = run;
    const until = Date.now() + this.o.config.stop.deviceRetryMs;
    let remote: RemoteFile | undefined;
    for (let attempt = 1, delay = 1000; ; attempt++, delay = Math.min(delay * 2, 30_000)) {
      try {
        if (!remote) {
          // Bounded: stopping a whole fleet at once fired a thousand REST stops (and TLS handshakes)
          // together; they timed out and retried, and starved the agents' STOP answers on this host.
          remote = await this.stopLimit.run(() => {
            const now = performance.now();
            if (attempt === 1 && run.triggerAt !== undefined) this.deviceStopLatencies.push({ device: rec.device, ms: now - run.triggerAt, at: performance.timeOrigin + now });
            return run.driver.stopCapture(run.handle!);
          });
          rec.times.stopped = new Date().toISOString();
        }
        this.setState(run, "collecting", "downloading device capture");
        const local = await this.collectLimit.run(() => this.fetchOnce(run, remote!, name));
        rec.deviceFile = { name: local.fileName, bytes: local.bytes, sha256: local.sha256 };
        rec.deviceCapture = "collected";
        this.journal.append("device-collected", { device: rec.device, file: local.fileName });
        this.event(rec, "collect", "device file", "ok", `${local.fileName} (${local.bytes} B)${attempt > 1 ? ` after ${attempt} attempts` : ""}`);
        return true;
      } catch (e) {
        const msg = this.redact((e as Error).message);
        const code = (e as { code?: string }).code ?? "";
        // Wrong credentials or a config problem will not fix themselves by waiting.
        const hopeless = code === "device-auth" || code === "config" || code === "file-exists";
        if (hopeless || Date.now() + delay > until) {
          rec.deviceCapture = "failed";
          rec.severity = "error";
          rec.description = `device capture not collected: ${msg}${attempt > 1 ? ` (gave up after ${attempt} attempts)` : ""}`;
          this.o.log.error(`${rec.device} ${rec.description}`);
          return false;
        }
        rec.deviceCapture = "pending";
        this.journal.append("device-pending", { device: rec.device, attempt, error: msg });
        this.setState(run, "collecting", `device capture pending (attempt ${attempt} failed: ${msg}); retrying in ${Math.round(delay / 1000)} s until ${new Date(until).toISOString()}`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Download unless a previous (interrupted) run already did: never twice, never overwritten. */
  private async fetchOnce(run: DeviceRun, remote: RemoteFile, name: string): Promise<LocalFile> {
    const path = this.o.folder.path(name);
    if (existsSync(path)) {
      const bytes = statSync(path).size;
      return { path, fileName: name, bytes, sha256: await sha256File(path) };
    }
    return run.driver.fetchCapture(remote, this.o.folder.dir, { fileName: name });
  }

  private doStop(run: DeviceRun, startError?: string): Promise<void> {
    if (run.stopping) return run.stopping;
    run.stopping = (async () => {
      const { rec } = run;
      const req = run.stopRequested ?? { reason: "manual" as const, detail: "stopped" };
      rec.stopReason = req.reason;
      // VERIFY's first probes leave at once; give them VERIFY_WINDOW_MS to be captured on both
      // sides, then stop without waiting for the probes' timeouts (a broken path would cost seconds).
      // Not on a flow's hops: every hop stops at once, none captures VERIFY_WINDOW_MS longer than the others.
      const verifying = req.reason === "alarm" && this.o.config.verify && run.handle && !run.cfg.flowHop ? this.verify(run) : undefined;
      if (verifying) await Promise.race([verifying, new Promise((r) => setTimeout(r, VERIFY_WINDOW_MS))]);
      this.setState(run, "stopping", `stopping (${req.reason}): ${req.detail}`);
      const agents = this.stopAgents(run);
      // A flow hop's device file is hop<N>_<the name its agents rename to>.
      const hop = run.cfg.flowHop && this.flow?.flow.path[run.cfg.flowHop.hop - 1];
      const name = hop ? hopFileName(hop, rec.captureName!, "") : rec.captureName!;
      let deviceOk = Boolean(rec.deviceFile);
      if (run.handle && !deviceOk) deviceOk = await this.stopAndFetchDevice(run, name);
      await agents;
      rec.times.collected = new Date().toISOString();
      // The VERIFY results (probes may still be timing out on a broken path) go into the manifest.
      await verifying;
      const agentsOk = rec.agents.every((a) => a.capture === "collected" || a.capture === "remote");
      rec.status = deviceOk && agentsOk ? "collected" : deviceOk || rec.agents.some((a) => a.capture === "collected") ? "partial" : "failed";
      if (rec.status !== "collected" && rec.severity === "info") rec.severity = "warning";
      const sides = `device ${deviceOk ? "collected" : "missing"}, servers ${rec.agents.filter((a) => a.capture === "collected" || a.capture === "remote").length}/${rec.agents.length}`;
      this.setState(run, deviceOk ? "done" : "failed", startError ? `device capture failed to start: ${startError}; ${sides}` : `${req.reason}: ${sides}`);
      this.checkFinished();
    })();
    return run.stopping;
  }
}
