// Jobs of `cpe-capture serve`: each is one run (runConfig in this process), several at once, kept
// in <dataDir>/jobs.json (replaced atomically on every change) next to the run folders, whose
// journals hold everything else. After a restart a job that was capturing is resumed from its
// run folder like `cpe-capture resume` does, and an unfinished upload is finished.
// Statuses are xepacketcap's: WAITING → STARTED → STOPPED → UPLOADING → UPLOADED, or ERROR; a
// /pcap_json job always ends UPLOADED (its capture file in the bucket, or served by `serve`) or
// ERROR with a message — never STOPPED, which its clients would poll forever.
import { EventEmitter } from "node:events";
import { randomInt } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { RunFolder } from "../artifacts/run-folder.js";
import { runConfig } from "../commands/run.js";
import type { RunConfig } from "../config/schema.js";
import type { Orchestrator } from "../run/orchestrator.js";
import { recoverRun } from "../run/recover.js";
import { deviceSummaries } from "../storage/after-run.js";
import { uploadFinished, uploadRunFolder } from "../storage/index.js";
import type { DeviceSummary } from "../notify/notifier.js";
import { devicePcaps, noCaptureReason, uploadCaptureObject } from "./xepacketcap.js";

export const JOB_STATUSES = ["WAITING", "STARTED", "STOPPED", "UPLOADING", "UPLOADED", "ERROR"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface XePacketCapRequest {
  iface: string;
  proto: "ip" | "tcp" | "udp";
  src: string;
  dst: string;
  duration: number;
  bucket?: string;
  device?: string;
}

export interface Job {
  id: string;
  kind: "pcap_json" | "run";
  status: JobStatus;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  endedAt?: string;
  /** The xepacketcap request, as accepted. */
  request?: XePacketCapRequest;
  /** The run config this job runs (passwords only by reference). */
  config: RunConfig;
  runId?: string;
  folder?: string;
  /** The presigned link once UPLOADED. */
  url?: string;
  /** A /pcap_json job's capture file name, xepacketcap's `<epoch ms>.pcap`. */
  captureFile?: string;
  /** Its object key once uploaded to the job's bucket (without one, `serve` serves the file). */
  captureKey?: string;
  error?: string;
  exitCode?: number;
  runStatus?: string;
  report?: string;
  devices?: DeviceSummary[];
  /** A stop was asked for through the API. */
  stopRequested?: boolean;
  /** How often the server was restarted under it. */
  resumed?: number;
}

const TERMINAL: JobStatus[] = ["UPLOADED", "ERROR"];

/** What a /pcap_json job's end reads of its run's manifest. */
type PcapJobManifest = Parameters<typeof noCaptureReason>[0] & Parameters<typeof deviceSummaries>[0];

export class JobStore {
  readonly path: string;
  private readonly jobs = new Map<string, Job>();
  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o750 });
    this.path = join(dataDir, "jobs.json");
    if (existsSync(this.path)) {
      const saved = JSON.parse(readFileSync(this.path, "utf8")) as { jobs: Job[] };
      for (const j of saved.jobs) this.jobs.set(j.id, j);
    }
  }
  newId(): string {
    // Six digits, as xepacketcap's job ids (clients may treat them as numbers).
    for (;;) {
      const id = String(randomInt(100000, 1000000));
      if (!this.jobs.has(id)) return id;
    }
  }
  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }
  list(): Job[] {
    return [...this.jobs.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }
  put(j: Job): void {
    j.updatedAt = new Date().toISOString();
    this.jobs.set(j.id, j);
    this.save();
  }
  private save(): void {
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: 1, jobs: this.list() }, null, 2) + "\n", { mode: 0o640 });
    renameSync(tmp, this.path);
  }
}

const nullIo = () => {
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  return { stdout: sink, stderr: sink };
};

export interface RunnerOptions {
  store: JobStore;
  maxConcurrent: number;
  log: (level: "info" | "warn" | "error", msg: string) => void;
  env?: NodeJS.ProcessEnv;
}

export class JobRunner {
  private readonly o: RunnerOptions;
  private readonly running = new Map<string, { orch?: Orchestrator; done: Promise<void> }>();
  private readonly queue: string[] = [];
  /** Stop signals for the runs: serve never forwards the process's own (a restart resumes instead). */
  private readonly signals = new EventEmitter();
  private closed = false;

  constructor(o: RunnerOptions) {
    this.o = o;
  }

  private set(j: Job, patch: Partial<Job>): void {
    Object.assign(j, patch);
    this.o.store.put(j);
    if (patch.status) this.o.log("info", `job ${j.id}: ${patch.status}${patch.error ? ` (${patch.error})` : ""}`);
  }

  submit(j: Job): Job {
    this.o.store.put(j);
    this.queue.push(j.id);
    this.pump();
    return j;
  }

  /** After a restart: finish what was under way, requeue what was waiting. */
  recover(): void {
    for (const j of this.o.store.list()) {
      if (j.status === "WAITING") this.queue.push(j.id);
      else if (!TERMINAL.includes(j.status) && !(j.status === "STOPPED" && j.endedAt)) {
        j.resumed = (j.resumed ?? 0) + 1;
        this.queue.unshift(j.id);
      }
    }
    this.pump();
  }

  stop(id: string): Job | undefined {
    const j = this.o.store.get(id);
    if (!j) return undefined;
    if (j.status === "WAITING") {
      const i = this.queue.indexOf(id);
      if (i >= 0) this.queue.splice(i, 1);
      this.set(j, { status: j.kind === "pcap_json" ? "ERROR" : "STOPPED", stopRequested: true, endedAt: new Date().toISOString(), error: "cancelled before it started" });
      return j;
    }
    this.set(j, { stopRequested: true });
    this.running.get(id)?.orch?.stopAll("manual", "stopped through the API");
    return j;
  }

  /** Stop taking jobs; running ones keep going until the process exits (they resume at the next start). */
  close(): void {
    this.closed = true;
  }

  /** A running job's orchestrator (POST /api/v1/runs/:id/filter changes its filter). */
  orchestrator(id: string): Orchestrator | undefined {
    return this.running.get(id)?.orch;
  }

  /** A running job's devices as they are now (state, description), from its orchestrator. */
  live(id: string): DeviceSummary[] | undefined {
    const orch = this.running.get(id)?.orch;
    return orch ? deviceSummaries(orch.manifest) : undefined;
  }

  /** Tests and the closing measurements: wait for every running job. */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.race([...this.running.values()].map((r) => r.done));
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.o.maxConcurrent && this.queue.length) {
      const id = this.queue.shift()!;
      const j = this.o.store.get(id);
      if (!j) continue;
      const slot: { orch?: Orchestrator; done: Promise<void> } = { done: Promise.resolve() };
      this.running.set(id, slot);
      slot.done = this.execute(j, slot)
        .catch((e: Error) => this.set(j, { status: "ERROR", error: e.message, endedAt: new Date().toISOString() }))
        .finally(() => {
          this.running.delete(id);
          this.pump();
        });
    }
  }

  private async execute(j: Job, slot: { orch?: Orchestrator }): Promise<void> {
    const onStarted = (orch: Orchestrator) => {
      slot.orch = orch;
      const folder = orch.manifest.folder;
      this.set(j, { status: "STARTED", startedAt: j.startedAt ?? new Date().toISOString(), folder, runId: orch.manifest.runId });
      if (j.stopRequested) orch.stopAll("manual", "stopped through the API");
    };
    const common = {
      json: true,
      quiet: true,
      onStarted,
      signalSource: this.signals,
      onUploadStart: () => this.set(j, { status: "UPLOADING" }),
      ...(this.o.env ? { env: this.o.env } : {}),
    };
    let summary: Awaited<ReturnType<typeof runConfig>> | undefined;
    if (j.folder && existsSync(join(j.folder, "manifest.json"))) {
      // A restart: the run folder's journal says where the job was.
      const folder = RunFolder.open(j.folder);
      const rec = await recoverRun(folder);
      if (rec.finished) {
        await this.finishUpload(j, rec.config, rec.manifest.status);
        return;
      }
      this.o.log("info", `job ${j.id}: resuming run ${folder.runId} after a restart`);
      summary = await runConfig(rec.config, nullIo(), { ...common, resume: { folder, manifest: rec.manifest, handles: rec.handles, mode: j.stopRequested ? "stop" : "continue" } });
    } else if (j.status !== "WAITING" && j.status !== "STARTED") {
      throw new Error(`interrupted in ${j.status} before its run folder was recorded`);
    } else {
      summary = await runConfig(j.config, nullIo(), common);
    }
    const failed = summary.manifest.status === "failed";
    if (j.kind === "pcap_json" && !summary.storageError) return this.finishPcapJob(j, summary.manifest);
    this.set(j, {
      status: summary.storageError || failed ? "ERROR" : summary.storageLink ? "UPLOADED" : "STOPPED",
      endedAt: new Date().toISOString(),
      exitCode: summary.exitCode,
      runStatus: summary.manifest.status,
      devices: deviceSummaries(summary.manifest),
      ...(summary.reportLine ? { report: summary.reportLine } : {}),
      ...(summary.storageLink ? { url: summary.storageLink } : {}),
      ...(summary.storageError ? { error: `upload failed: ${summary.storageError}` } : failed ? { error: summary.failed.map((d) => `${d.device}: ${d.description}`).join("; ") } : {}),
    });
  }

  /** A run that ended before the restart: its upload, if any, is finished from the journal. */
  private async finishUpload(j: Job, config: RunConfig, runStatus: string): Promise<void> {
    const manifest = JSON.parse(readFileSync(join(j.folder!, "manifest.json"), "utf8")) as PcapJobManifest;
    const base = { runStatus, devices: deviceSummaries(manifest), endedAt: new Date().toISOString() };
    if (j.kind === "pcap_json" && (!config.storage || uploadFinished(j.folder!, config.storage))) return this.finishPcapJob(j, manifest);
    if (!config.storage) return this.set(j, { ...base, status: runStatus === "failed" ? "ERROR" : "STOPPED" });
    const done = uploadFinished(j.folder!, config.storage);
    if (done) return this.set(j, { ...base, status: "UPLOADED", url: done.link });
    this.set(j, { status: "UPLOADING" });
    try {
      const r = await uploadRunFolder(j.folder!, config.storage, { log: this.o.log, ...(this.o.env ? { env: this.o.env } : {}) });
      if (j.kind === "pcap_json") return await this.finishPcapJob(j, manifest);
      this.set(j, { ...base, status: "UPLOADED", url: r.link });
    } catch (e) {
      this.set(j, { ...base, status: "ERROR", error: `upload failed: ${(e as Error).message}` });
    }
  }

  /**
   * A /pcap_json job's end, as xepacketcap ends it: the router's pcap uploaded to the job's bucket
   * as the one object <epoch ms>.pcap and `url` its presigned link; without storage the file stays
   * in the run folder and `url` is served by `serve` (/captures/<job>/<file>). No pcap: ERROR.
   */
  private async finishPcapJob(j: Job, manifest: PcapJobManifest): Promise<void> {
    const base = { endedAt: new Date().toISOString(), runStatus: (manifest as { status?: string }).status ?? "done", devices: deviceSummaries(manifest) };
    const file = j.captureFile ?? `${j.id}.pcap`;
    const pcap = j.folder ? devicePcaps(j.folder, manifest)[0] : undefined;
    if (!pcap) return this.set(j, { ...base, status: "ERROR", error: noCaptureReason(manifest) });
    const storage = j.config.storage;
    if (!storage) return this.set(j, { ...base, status: "UPLOADED", captureFile: file });
    if (j.status !== "UPLOADING") this.set(j, { status: "UPLOADING" });
    try {
      const url = await uploadCaptureObject(join(j.folder!, pcap), file, storage, this.o.env);
      this.set(j, { ...base, status: "UPLOADED", captureFile: file, captureKey: file, url });
    } catch (e) {
      this.set(j, { ...base, status: "ERROR", error: `upload of ${file} to bucket ${storage.bucket} failed: ${(e as Error).message}` });
    }
  }
}
