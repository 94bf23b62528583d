// Run assembly: the manifest a run starts from (a new one, or an interrupted run's read back from
// its folder) and one DeviceRun per configured device, with its record and its driver.
import { formatEndpoint } from "@capsync/protocol";
import type { DeviceConfig, RunConfig } from "../config/schema.js";
import { normalisedForDisplay } from "../config/display.js";
import type { CaptureDriver, CaptureHandle } from "../drivers/driver.js";
import type { RunFolder } from "../artifacts/run-folder.js";
import { VERSION } from "../version.js";
import type { DeviceRun } from "./device-run.js";
import type { DeviceRecord, Manifest } from "./model.js";

export interface Resumed {
  manifest: Manifest;
  handles: Record<string, CaptureHandle>;
}

/** A new run's manifest, or the interrupted run's, running again. */
export function runManifest(config: RunConfig, folder: RunFolder, resume?: Resumed): Manifest {
  if (resume) {
    resume.manifest.status = "running";
    delete resume.manifest.endedAt;
    return resume.manifest;
  }
  return {
    tool: "capsync",
    version: VERSION,
    runId: folder.runId,
    folder: folder.dir,
    startedAt: new Date().toISOString(),
    status: "running",
    mode: config.agents.legacy ? "legacy" : "v1",
    config: normalisedForDisplay(config),
    devices: [],
  };
}

function newRecord(cfg: DeviceConfig): DeviceRecord {
  return {
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
}

/**
 * One run per device, keyed by address, in config order: a resumed device keeps its record and
 * its journaled capture handle; a new one gets a fresh record, added to the manifest.
 */
export function deviceRuns(config: RunConfig, manifest: Manifest, resume: Resumed | undefined, driver: (cfg: DeviceConfig, index: number, rec: DeviceRecord) => CaptureDriver): Map<string, DeviceRun> {
  const runs = new Map<string, DeviceRun>();
  config.devices.forEach((cfg, i) => {
    const previous = resume?.manifest.devices.find((d) => d.device === cfg.address);
    const rec = previous ?? newRecord(cfg);
    if (!previous) manifest.devices.push(rec);
    const handle = resume?.handles[cfg.address];
    // After a filter change (segments.ts) the device captures its last segment's spec.
    const last = rec.segments?.[rec.segments.length - 1];
    const run: DeviceRun = { cfg: last ? { ...cfg, spec: last.spec as DeviceConfig["spec"] } : cfg, rec, driver: driver(cfg, i, rec), ...(handle ? { handle } : {}), ...(last ? { segment: last.segment } : {}) };
    runs.set(cfg.address, run);
  });
  return runs;
}
