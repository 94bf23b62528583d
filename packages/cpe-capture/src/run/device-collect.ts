// The device side of a stop: stop the device capture and download it into the run folder. An
// alarm ("Connection Lost") usually means the device is unreachable right now, so both are retried
// with backoff for stop.deviceRetry while the agents' side is collected; the manifest shows the
// device capture as pending meanwhile.
import { performance } from "node:perf_hooks";
import { existsSync, statSync } from "node:fs";
import type { Logger } from "@capsync/common";
import type { RunConfig } from "../config/schema.js";
import type { LocalFile, RemoteFile } from "../drivers/driver.js";
import type { RunFolder } from "../artifacts/run-folder.js";
import { sha256File } from "../artifacts/collect.js";
import type { Limiter } from "./limiter.js";
import type { RunRecorder } from "./recorder.js";
import type { DeviceRun } from "./device-run.js";

/** alarm/trigger → the device's stop request starting (its first try, past the stop limiter), in ms; `at` in epoch ms. */
export type DeviceStopLatency = { device: string; ms: number; at: number };

export class DeviceCollector {
  constructor(
    private readonly config: RunConfig,
    private readonly folder: RunFolder,
    private readonly log: Logger,
    private readonly recorder: RunRecorder,
    /** Device stop requests: apart from the starts (a stop never waits behind a slow start), but bounded too. */
    private readonly stopLimit: Limiter,
    private readonly collectLimit: Limiter,
    private readonly latencies: DeviceStopLatency[],
  ) {}

  /** True once the device capture is in the run folder as `name`; false when it was given up on. */
  async stopAndFetch(run: DeviceRun, name: string): Promise<boolean> {
    const { rec } = run;
    // Monotonic: a wall-clock step neither ends the retries early nor stretches them.
    const until = performance.now() + this.config.stop.deviceRetryMs;
    let remote: RemoteFile | undefined;
    for (let attempt = 1, delay = 1000; ; attempt++, delay = Math.min(delay * 2, 30_000)) {
      try {
        if (!remote) {
          // Bounded: a whole fleet stopping at once would fire every REST stop (and its TLS
          // handshake) together; they would time out, retry, and starve the agents' STOP answers.
          remote = await this.stopLimit.run(() => {
            const now = performance.now();
            if (attempt === 1 && run.triggerAt !== undefined) this.latencies.push({ device: rec.device, ms: now - run.triggerAt, at: performance.timeOrigin + now });
            return run.driver.stopCapture(run.handle!);
          });
          rec.times.stopped = new Date().toISOString();
        }
        this.recorder.setState(run, "collecting", "downloading device capture");
        const local = await this.collectLimit.run(() => this.fetchOnce(run, remote!, name));
        rec.deviceFile = { name: local.fileName, bytes: local.bytes, sha256: local.sha256 };
        rec.deviceCapture = "collected";
        this.recorder.journal.append("device-collected", { device: rec.device, file: local.fileName });
        this.recorder.event(rec, "collect", "device file", "ok", `${local.fileName} (${local.bytes} B)${attempt > 1 ? ` after ${attempt} attempts` : ""}`);
        return true;
      } catch (e) {
        const msg = this.recorder.redact((e as Error).message);
        const code = (e as { code?: string }).code ?? "";
        // Wrong credentials or a config problem will not fix themselves by waiting.
        const hopeless = code === "device-auth" || code === "config" || code === "file-exists";
        if (hopeless || performance.now() + delay > until) {
          rec.deviceCapture = "failed";
          rec.severity = "error";
          rec.description = `device capture not collected: ${msg}${attempt > 1 ? ` (gave up after ${attempt} attempts)` : ""}`;
          this.log.error(`${rec.device} ${rec.description}`);
          return false;
        }
        rec.deviceCapture = "pending";
        this.recorder.journal.append("device-pending", { device: rec.device, attempt, error: msg });
        this.recorder.setState(run, "collecting", `device capture pending (attempt ${attempt} failed: ${msg}); retrying in ${Math.round(delay / 1000)} s until ${new Date(Date.now() + until - performance.now()).toISOString()}`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Download unless a previous (interrupted) run already did: never twice, never overwritten. */
  private async fetchOnce(run: DeviceRun, remote: RemoteFile, name: string): Promise<LocalFile> {
    const path = this.folder.path(name);
    if (existsSync(path)) {
      const bytes = statSync(path).size;
      return { path, fileName: name, bytes, sha256: await sha256File(path) };
    }
    return run.driver.fetchCapture(remote, this.folder.dir, { fileName: name });
  }
}
