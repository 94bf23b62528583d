// The run's flow (config `flow:`, config/flow.ts): the agent hops' captures, started with the
// devices and stopped all together — with every device hop, at the same trigger time — on the
// first trigger of any device on the path, the run's duration or a signal. Device hops are the
// orchestrator's ordinary device runs (capturing the flow spec); this class owns the agent hops,
// the flow and path records of the manifest, and the hop file names.
import { performance } from "node:perf_hooks";
import { captureTimestamp } from "@capsync/protocol";
import { type AgentAnswer, refusalText } from "../agents/index.js";
import type { RunConfig } from "../config/schema.js";
import { hopFileName, type FlowConfig, type FlowHop } from "../config/flow.js";
import { agentWireSpec } from "../spec/index.js";
import { downloadAgentFiles } from "../artifacts/collect.js";
import type { RunFolder } from "../artifacts/run-folder.js";
import type { Limiter } from "./limiter.js";
import type { AgentLink } from "./agent-link.js";
import type { RunRecorder } from "./recorder.js";
import type { DeviceRecord, FlowRecord, Manifest, PathHopRecord, StopReason } from "./model.js";

type ServerHop = Extract<FlowHop, { kind: "server" }>;

/** What the flow needs from the orchestrator. */
export interface FlowHost {
  config: RunConfig;
  folder: RunFolder;
  recorder: RunRecorder;
  link: AgentLink;
  collectLimit: Limiter;
  log: { info(m: string): void; warn(m: string): void; error(m: string): void };
  /** Stop one device hop (the orchestrator's requestStop; a no-op when it is stopping already). */
  stopDevice(address: string, reason: StopReason, detail: string, at: number): void;
  /** The first STOP to an agent hop left, `ms` after the trigger. */
  stopSent(ms: number): void;
  /** The flow is done: the run may be. */
  finished(): void;
}

/** A flow stamp (local time, as captureTimestamp writes it) back to its Date. */
export function stampDate(stamp: string): Date | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d)\.(\d\d)\.(\d\d)\.(\d{6})$/.exec(stamp);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s, us] = m.slice(1).map(Number) as [number, number, number, number, number, number, number];
  return new Date(y, mo - 1, d, h, mi, s, Math.floor(us / 1000));
}

export class FlowRun {
  readonly rec: FlowRecord;
  readonly hops: PathHopRecord[];
  /** Set once a stop is requested: device hops name their capture with this time (the hop files share one timestamp). */
  stopDate?: Date;
  private stopRequested = false;
  private triggerAt?: number;
  private serversDone = false;
  private readonly starts = new Map<number, Promise<void>>();

  constructor(
    private readonly h: FlowHost,
    readonly flow: FlowConfig,
    manifest: Manifest,
  ) {
    manifest.flow ??= {
      filter: { ...flow.filter },
      ...(flow.vrf !== undefined ? { vrf: flow.vrf } : {}),
      ...(flow.agentHost !== undefined ? { agentHost: flow.agentHost } : {}),
      state: "idle",
      times: {},
    };
    manifest.path ??= flow.path.map(
      (hp): PathHopRecord =>
        hp.kind === "device"
          ? { hop: hp.hop, kind: "device", name: hp.name, device: hp.address, capture: "pending", files: [] }
          : { hop: hp.hop, kind: "server", name: hp.name, agent: hp.name, capture: "pending", answers: [], files: [] },
    );
    this.rec = manifest.flow;
    this.hops = manifest.path;
    if (this.rec.stamp) this.stopDate = stampDate(this.rec.stamp);
  }

  get done(): boolean {
    return this.rec.state === "done";
  }

  private setState(state: FlowRecord["state"], detail?: string): void {
    this.rec.state = state;
    this.h.recorder.journal.append("flow-state", { state });
    this.h.recorder.flowEvent("run", "state", state, detail);
    this.h.log.info(`flow ${state}${detail ? `: ${detail}` : ""}`);
    this.h.recorder.touch();
  }

  private answer(r: PathHopRecord, a: AgentAnswer): void {
    (r.answers ??= []).push({ verb: a.verb, code: a.code, details: a.details, tries: a.tries, elapsedMs: Math.round(a.elapsedMs), at: new Date().toISOString() });
    const detail = Object.entries(a.details).map(([k, v]) => `${k}=${v}`).join(" ");
    this.h.recorder.flowEvent("agent", `hop${r.hop} ${r.agent} ${a.verb}`, String(a.code), detail);
    this.h.log.info(`flow hop ${r.hop} agent ${r.agent} ${a.verb} → ${a.code} (${a.tries} tries, ${a.elapsedMs.toFixed(1)} ms)${detail ? ` ${detail}` : ""}`);
  }

  private fail(r: PathHopRecord, error: string): void {
    r.capture = "failed";
    r.error = this.h.recorder.redact(error);
    this.h.log.error(`flow hop ${r.hop} ${r.name}: ${r.error}`);
    this.h.recorder.flowEvent("agent", `hop${r.hop} ${r.name} error`, "failed", r.error);
  }

  /** CAPTURE on every agent hop (no REGISTER: the scope host is not a managed device). Device hops start with the devices. */
  start(): void {
    this.rec.times.started ??= new Date().toISOString();
    this.setState("starting", `${this.hops.length} hops: ${this.hops.map((r) => `${r.hop}. ${r.kind === "device" ? r.name : `agent ${r.agent}`}`).join(", ")}`);
    for (const hp of this.flow.path) if (hp.kind === "server") this.starts.set(hp.hop, this.startHop(hp, this.hops[hp.hop - 1]!));
    void Promise.all(this.starts.values()).then(() => {
      if (this.stopRequested) return;
      this.rec.times.capturing = new Date().toISOString();
      const servers = this.hops.filter((r) => r.kind === "server");
      this.setState("capturing", `server hops capturing ${servers.filter((r) => r.capture === "capturing").length}/${servers.length}`);
    });
  }

  private async startHop(hp: ServerHop, r: PathHopRecord): Promise<void> {
    const spec = agentWireSpec(this.flow.agentSpec ?? {});
    r.capture = "starting";
    this.h.recorder.touch();
    try {
      const a = await this.h.link.client!.request(hp.agent, { verb: "CAPTURE", device: this.flow.agentHost!, ...(spec ? { spec } : {}) });
      this.answer(r, a);
      if (a.code === 200) {
        r.capture = "capturing";
        this.h.recorder.journal.append("flow-capture", { hop: r.hop, agent: r.agent, file: a.details.file });
      } else this.fail(r, refusalText(a, "CAPTURE answered "));
    } catch (e) {
      this.fail(r, (e as Error).message);
    }
    this.h.recorder.touch();
  }

  /**
   * Stop every hop now, at one trigger time: STOP to the agent hops first (one datagram each),
   * then the device hops through the orchestrator. `by` is the device whose trigger it was. Idempotent.
   */
  requestStop(reason: StopReason, detail: string, at = performance.now(), by?: string): void {
    if (this.stopRequested || this.done) return;
    this.stopRequested = true;
    this.triggerAt = at;
    if (!this.rec.stamp) {
      this.stopDate = new Date();
      this.rec.stamp = captureTimestamp(this.stopDate);
    }
    this.rec.stopReason ??= reason;
    this.rec.stopDetail ??= this.h.recorder.redact(detail);
    if (by !== undefined) this.rec.triggeredBy ??= by;
    this.rec.times.triggered ??= new Date().toISOString();
    this.h.recorder.journal.append("flow-stop", { reason, detail: this.h.recorder.redact(detail), stamp: this.rec.stamp, ...(by !== undefined ? { by } : {}) });
    this.setState("stopping", `${reason}${by !== undefined ? ` of ${by}` : ""}: ${detail}; every hop stops`);
    void this.stopServers();
    for (const hp of this.flow.path) if (hp.kind === "device" && hp.address !== by) this.h.stopDevice(hp.address, reason, `flow stop (${reason}${by !== undefined ? ` of ${by}` : ""}): ${detail}`, at);
  }

  private async stopServers(): Promise<void> {
    await Promise.all(
      this.flow.path.map(async (hp) => {
        if (hp.kind !== "server") return;
        const r = this.hops[hp.hop - 1]!;
        await this.starts.get(hp.hop); // a CAPTURE in flight is answered first
        if (r.capture === "capturing") await this.stopHop(hp, r);
        else if (r.capture === "pending" || r.capture === "starting") this.fail(r, "stopped before it started");
      }),
    );
    this.serversDone = true;
    this.maybeDone();
  }

  private async stopHop(hp: ServerHop, r: PathHopRecord): Promise<void> {
    const stamp = this.rec.stamp!;
    r.capture = "stopping";
    this.h.recorder.touch();
    try {
      // The agent renames its file after this name (…_server-<n>.pcap); the run folder gets hop<N>_… names.
      const a = await this.h.link.client!.request(hp.agent, { verb: "STOP", device: this.flow.agentHost!, filename: hopFileName(hp, undefined, stamp) }, {
        onSend: (s) => {
          if (s.attempt !== 1 || this.triggerAt === undefined) return;
          this.h.stopSent(s.at - this.triggerAt);
          this.rec.times.agentsStopSent ??= new Date().toISOString();
        },
      });
      this.answer(r, a);
      if (a.code !== 200) return this.fail(r, refusalText(a, "STOP answered "));
      const names = (a.details.files ?? "").split(",").filter(Boolean);
      const key = this.h.link.sshKey;
      if (!key || names.length === 0) {
        r.capture = "remote";
        r.files = names.map((n) => ({ name: n, bytes: 0, remote: `${r.agent}:<capture dir>/${n}` }));
        return;
      }
      r.capture = "collecting";
      this.h.recorder.touch();
      const local = names.map((_, i) => hopFileName(hp, undefined, stamp, names.length > 1 ? i : undefined));
      const c = this.h.config;
      r.files = await this.h.collectLimit.run(() =>
        downloadAgentFiles({ host: hp.agent.host, port: c.agents.sftpPort, privateKey: key, timeoutMs: c.timeouts.sftpMs }, names, this.h.folder, local),
      );
      r.capture = "collected";
      this.h.recorder.journal.append("flow-collected", { hop: r.hop, agent: r.agent, files: r.files.map((f) => f.name) });
      this.h.recorder.flowEvent("collect", `hop${r.hop} ${r.agent} files`, "ok", r.files.map((f) => `${f.name} (${f.bytes} B)`).join("; "));
    } catch (e) {
      this.fail(r, (e as Error).message);
    } finally {
      this.h.recorder.touch();
    }
  }

  /** Mirror a device hop's record into the path (called on every change of a device). */
  syncDevice(d: DeviceRecord): void {
    const i = this.hops.findIndex((r) => r.kind === "device" && r.device === d.device);
    if (i < 0) return;
    const r = this.hops[i]!;
    if (d.deviceFile) {
      r.capture = "collected";
      r.files = [{ ...d.deviceFile }];
    } else if (d.state === "done" || d.state === "failed") {
      r.capture = "failed";
      r.error = d.description;
    } else if (d.state === "capturing") r.capture = "capturing";
    else if (d.state === "stopping") r.capture = "stopping";
    else if (d.state === "collecting") r.capture = "collecting";
    else if (d.state === "starting") r.capture = "starting";
    if (d.state === "done" || d.state === "failed") this.maybeDone();
  }

  private deviceHopsFinished(): boolean {
    return this.hops.every((r) => r.kind !== "device" || r.capture === "collected" || r.capture === "failed");
  }

  private maybeDone(): void {
    if (this.done || !this.serversDone || !this.deviceHopsFinished()) return;
    const ok = this.hops.filter((r) => r.capture === "collected" || r.capture === "remote").length;
    this.rec.status = ok === this.hops.length ? "collected" : ok > 0 ? "partial" : "failed";
    this.rec.times.collected = new Date().toISOString();
    this.setState("done", `${this.rec.status}: ${ok}/${this.hops.length} hops; ${this.hops.map((r) => `${r.hop}. ${r.files.map((f) => f.name).join(", ") || r.capture}`).join("; ")}`);
    this.h.finished();
  }

  /**
   * Before an interrupted run's devices are stopped: fix the flow's stop time now when the flow is
   * going to stop, so device hops name their files with it (resume() then stops the agent hops).
   */
  prepareResume(mode: "continue" | "stop"): void {
    if (this.done || this.rec.stamp || (mode === "continue" && this.rec.stopReason === undefined)) return;
    this.stopDate = new Date();
    this.rec.stamp = captureTimestamp(this.stopDate);
  }

  /**
   * An interrupted run (recover.ts read the journal into the records): agent hops not collected
   * are asked to STOP again (idempotent on the agent); "continue" keeps a capturing flow waiting.
   */
  resume(mode: "continue" | "stop"): void {
    if (this.done) return;
    for (const r of this.hops) if (r.kind === "server" && !["collected", "remote", "failed", "pending"].includes(r.capture)) r.capture = "capturing";
    if (mode === "continue" && this.rec.stopReason === undefined) {
      if (this.rec.state === "idle" || this.rec.state === "starting") this.start(); // CAPTURE is idempotent
      return;
    }
    this.requestStop(this.rec.stopReason ?? "manual", mode === "stop" ? "stopped from the run folder after an interruption" : "finishing after an interruption");
  }
}
