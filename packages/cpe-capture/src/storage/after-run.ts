// The end of a run, after its report: the upload (when `storage:` is set) and the final
// notification (collected / failed, with the loss summary and the storage link). Notification
// problems are logged only; a requested upload that fails makes the run exit 1.
import type { Logger } from "@capsync/common";
import type { RunConfig } from "../config/schema.js";
import type { Manifest } from "../run/model.js";
import type { DeviceSummary, Notifier } from "../notify/notifier.js";
import type { UploadResult } from "./index.js";

export interface AfterRun {
  upload?: UploadResult;
  /** Set when a requested upload failed. */
  storageError?: string;
  /** 1 when a required upload failed, else the run's own code. */
  exitCode: number;
}

export function deviceSummaries(m: Manifest): DeviceSummary[] {
  return m.devices.map((d) => ({
    device: d.device,
    ...(d.name && d.name !== d.device ? { name: d.name } : {}),
    type: d.type,
    status: d.status,
    state: d.state,
    ...(d.stopReason ? { stopReason: d.stopReason } : {}),
    description: d.description,
  }));
}

export function logTo(log: Logger): (level: "info" | "warn" | "error", msg: string) => void {
  return (level, msg) => log[level](msg);
}

export async function afterRun(o: {
  config: RunConfig;
  dir: string;
  runId: string;
  manifest: Manifest;
  exitCode: number;
  reportLine: string | undefined;
  log: Logger;
  notifier: Notifier | undefined;
  env?: NodeJS.ProcessEnv;
  /** Secrets resolved for the store, for the log's redaction. */
  addSecrets?: (values: string[]) => void;
  onUploadStart?: () => void;
}): Promise<AfterRun> {
  const out: AfterRun = { exitCode: o.exitCode };
  if (o.config.storage) {
    o.onUploadStart?.();
    try {
      // Loaded only for an upload: the S3 client is ~6 MB of heap every other run would carry.
      const { uploadRunFolder } = await import("./index.js");
      out.upload = await uploadRunFolder(o.dir, o.config.storage, {
        runId: o.runId,
        log: logTo(o.log),
        ...(o.env ? { env: o.env } : {}),
        ...(o.addSecrets ? { onSecrets: o.addSecrets } : {}),
      });
    } catch (e) {
      out.storageError = `${(e as Error).message}; run \`cpe-capture upload ${o.dir}\` to resume it`;
      o.log.error(`storage: upload failed: ${out.storageError}`);
      if (o.config.storage.required) out.exitCode = 1;
    }
  }
  if (o.notifier) {
    const ok = o.manifest.status === "done" && !out.storageError;
    o.notifier.send({
      event: ok ? "collected" : "failed",
      runId: o.runId,
      at: new Date().toISOString(),
      status: o.manifest.status,
      devices: deviceSummaries(o.manifest),
      ...(o.manifest.devices.length === 1 ? { device: o.manifest.devices[0]!.device, ...(o.manifest.devices[0]!.stopReason ? { stopReason: o.manifest.devices[0]!.stopReason } : {}) } : {}),
      ...(o.reportLine ? { loss: o.reportLine } : {}),
      ...(out.upload ? { storageLink: out.upload.link } : {}),
      ...(out.storageError ? { storageError: out.storageError } : {}),
      folder: o.dir,
    });
    await o.notifier.flush();
  }
  return out;
}
