// The server side of each device: REGISTER and CAPTURE on every agent of a device before the
// device starts, and on a stop one STOP per capturing agent (at once, named after the device
// capture), then the download of the agent's files.
import { performance } from "node:perf_hooks";
import type { Logger } from "@capsync/common";
import type { AgentEndpoint, RunConfig } from "../config/schema.js";
import type { RunFolder } from "../artifacts/run-folder.js";
import { downloadAgentFiles } from "../artifacts/collect.js";
import { agentWireSpec } from "../spec/index.js";
import { refusalText } from "../agents/index.js";
import type { Limiter } from "./limiter.js";
import type { AgentLink } from "./agent-link.js";
import type { RunRecorder } from "./recorder.js";
import type { DeviceRun } from "./device-run.js";
import type { AgentSide } from "./model.js";

/** alarm/trigger → first STOP datagram leaving (ms); `at` in epoch ms, for measurements across processes. */
export type StopLatency = { device: string; ms: number; at?: number };

/**
 * Where a STOP's bookkeeping waits while alarms arrive (SyslogIntake): the STOP datagram leaves at
 * once; its record change and the agent's answer (event row, log line, download) follow the burst.
 */
export interface QuietTurns {
  whenQuiet(fn: () => void): void;
  /** undefined: go on now; else resolves at its turn. */
  quietTurn(): Promise<void> | undefined;
}

export class AgentSides {
  /** One STOP (and download) per device, agent and file segment, however often a stop is asked for. */
  private readonly stops = new Map<string, Promise<void>>();
  /**
   * Sides whose CAPTURE got no final answer: the agent may still have run it (late, under load), so
   * the device's stop sends them a STOP too, or their tcpdump would run to the agent's max duration.
   */
  private readonly unanswered = new Set<AgentSide>();

  constructor(
    private readonly config: RunConfig,
    private readonly folder: RunFolder,
    private readonly log: Logger,
    private readonly recorder: RunRecorder,
    private readonly link: AgentLink,
    private readonly collectLimit: Limiter,
    private readonly stopLatencies: StopLatency[],
    private readonly quiet: QuietTurns,
  ) {}

  /** REGISTER then CAPTURE on every agent of the device; a failure is recorded, never thrown. */
  start(run: DeviceRun): Promise<unknown> {
    return Promise.all(run.cfg.agents.map((a, i) => this.startOne(run, a, run.rec.agents[i]!)));
  }

  private async startOne(run: DeviceRun, ep: AgentEndpoint, side: AgentSide): Promise<void> {
    const device = run.rec.device;
    const client = this.link.client!;
    try {
      side.registration = "pending";
      side.capture = "registering";
      const reg = await client.request(ep, { verb: "REGISTER", device });
      this.recorder.agentAnswer(run.rec, side, reg);
      side.registration = reg.code === 200 ? "active" : "failed";
      if (reg.code !== 200) this.log.warn(`${device}: ${refusalText(reg, `agent ${side.agent} refused REGISTER: `)}; capturing anyway`);
      if (run.stopRequested) {
        side.capture = "pending";
        return;
      }
      side.capture = "starting";
      this.recorder.changed(run.rec);
      const spec = agentWireSpec(run.cfg.spec);
      const cap = await client.request(ep, { verb: "CAPTURE", device, ...(spec ? { spec } : {}) });
      this.recorder.agentAnswer(run.rec, side, cap);
      if (cap.code === 200) {
        side.capture = "capturing";
        this.recorder.journal.append("agent-capture", { device, agent: side.agent, file: cap.details.file });
      } else {
        side.capture = "failed";
        side.error = refusalText(cap);
        this.log.error(`${device}: ${refusalText(cap, `agent ${side.agent} refused CAPTURE: `)}`);
      }
    } catch (e) {
      if (side.capture === "starting") this.unanswered.add(side);
      side.capture = "failed";
      side.error = (e as Error).message;
      this.log.error(`${device}: ${side.error}`);
      this.recorder.event(run.rec, "agent", `${side.agent} error`, "failed", side.error);
    }
    this.recorder.changed(run.rec);
  }

  /** Send STOP to every capturing agent of the device, now; downloads follow in the background. */
  stop(run: DeviceRun, name: string): Promise<void> {
    // A plain loop, and no Promise.all for a device with one agent: this runs once per alarm of a burst.
    const eps = run.cfg.agents;
    if (eps.length === 1) return this.stopSide(run, eps[0]!, 0, name);
    const work: Array<Promise<void>> = [];
    for (let i = 0; i < eps.length; i++) work.push(this.stopSide(run, eps[i]!, i, name));
    return Promise.all(work).then(() => undefined);
  }

  private stopSide(run: DeviceRun, ep: AgentEndpoint, i: number, name: string): Promise<void> {
    const side = run.rec.agents[i]!;
    // Per file segment: after a filter change (segments.ts) the next STOP is a new one.
    const key = `${run.rec.device}|${side.agent}|${run.segment ?? 1}`;
    let p = this.stops.get(key);
    if (side.capture !== "capturing" && side.capture !== "starting" && !this.unanswered.has(side)) return p ?? Promise.resolve();
    if (!p) {
      p = this.stopOne(run, ep, side, name);
      this.stops.set(key, p);
    }
    return p;
  }

  private async stopOne(run: DeviceRun, ep: AgentEndpoint, side: AgentSide, name: string): Promise<void> {
    if (side.capture === "collected") return;
    // A STOP owed to an unanswered CAPTURE: a refusal or silence keeps the CAPTURE's own error.
    const owed = this.unanswered.delete(side) ? side.error : undefined;
    side.capture = "stopping";
    this.quiet.whenQuiet(() => this.recorder.changed(run.rec));
    try {
      const ans = await this.link.client!.request(ep, { verb: "STOP", device: run.rec.device, filename: name }, {
        onSend: (s) => {
          if (s.attempt === 1 && run.triggerAt !== undefined) {
            this.stopLatencies.push({ device: run.rec.device, ms: s.at - run.triggerAt, at: performance.timeOrigin + s.at });
            run.rec.times.agentsStopSent ??= isoNow();
          }
        },
      });
      const turn = this.quiet.quietTurn();
      if (turn) await turn;
      this.recorder.agentAnswer(run.rec, side, ans);
      if (ans.code !== 200) {
        side.capture = "failed";
        side.error = owed ?? refusalText(ans, "STOP answered ");
        return;
      }
      if (owed !== undefined) {
        this.log.warn(`${run.rec.device} agent ${side.agent}: its CAPTURE went unanswered but it was capturing; stopped, its files follow`);
        delete side.error;
      }
      const names = (ans.details.files ?? "").split(",").filter(Boolean);
      if (this.config.agents.legacy || !names.length) {
        // The legacy protocol does not say which files; they stay on the server.
        side.capture = "remote";
        side.files = names.map((n) => ({ name: n, bytes: 0, remote: `${side.agent}:${n}` }));
        return;
      }
      const privateKey = this.link.sshKey;
      if (!privateKey) {
        side.capture = "remote";
        side.files = names.map((n) => ({ name: n, bytes: Number(ans.details.bytes ?? 0) / names.length, remote: `${ep.host}:<capture dir>/${n}` }));
        this.log.info(`${run.rec.device} agent ${side.agent}: no agents.sshKeyFile, files stay on the server: ${names.join(", ")}`);
        return;
      }
      side.capture = "collecting";
      this.recorder.changed(run.rec);
      const c = this.config;
      const files = await this.collectLimit.run(() =>
        downloadAgentFiles({ host: ep.host, port: c.agents.sftpPort, privateKey, timeoutMs: c.timeouts.sftpMs, pool: this.link.sftp }, names, this.folder),
      );
      side.files = files;
      side.capture = "collected";
      this.recorder.journal.append("agent-collected", { device: run.rec.device, agent: side.agent, files: files.map((f) => f.name) });
      this.recorder.event(run.rec, "collect", `${side.agent} files`, "ok", files.map((f) => `${f.name} (${f.bytes} B)`).join("; "));
    } catch (e) {
      side.capture = "failed";
      side.error = owed ?? this.recorder.redact((e as Error).message);
      this.log.error(`${run.rec.device} agent ${side.agent}: ${side.error}`);
      this.recorder.event(run.rec, "agent", `${side.agent} stop`, "failed", side.error);
    } finally {
      this.recorder.changed(run.rec);
    }
  }
}

// A burst's STOPs mostly leave within one wall-clock millisecond: one ISO string for them all.
let isoMs = NaN;
let iso = "";
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    iso = new Date(ms).toISOString();
    isoMs = ms;
  }
  return iso;
}
