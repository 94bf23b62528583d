// Reads an interrupted run back from its folder: the run's config (run-config.json, secrets only
// by reference), the manifest, and the append-only journal, which is ahead of the manifest (the
// manifest is written coalesced; journal lines are written before the work they describe ends).
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { CapsyncError } from "@capsync/protocol";
import type { RunConfig } from "../config/schema.js";
import type { CaptureHandle } from "../drivers/driver.js";
import { Journal } from "../artifacts/journal.js";
import type { RunFolder } from "../artifacts/run-folder.js";
import { sha256File } from "../artifacts/collect.js";
import { settledStatus, type FileRecord, type Manifest } from "./model.js";

export const RUN_CONFIG_FILE = "run-config.json";

/** The config as stored in the run folder: plain-text passwords never are; they become env references. */
export function storableConfig(config: RunConfig): RunConfig {
  return {
    ...config,
    devices: config.devices.map((d, i) => (d.password.kind === "plain" ? { ...d, password: { kind: "env", env: `CAPSYNC_RESUME_PASSWORD_${i}` } } : d)),
  };
}

export interface Recovered {
  config: RunConfig;
  manifest: Manifest;
  handles: Record<string, CaptureHandle>;
  finished: boolean;
}

export async function recoverRun(folder: RunFolder): Promise<Recovered> {
  const cfgPath = folder.path(RUN_CONFIG_FILE);
  if (!existsSync(cfgPath)) throw new CapsyncError("run-folder", `${folder.dir} has no ${RUN_CONFIG_FILE}; it was not written by this version of cpe-capture`);
  const config = JSON.parse(readFileSync(cfgPath, "utf8")) as RunConfig;
  const manifest = JSON.parse(readFileSync(folder.path("manifest.json"), "utf8")) as Manifest;
  const handles: Record<string, CaptureHandle> = {};
  let finished = false;
  for (const e of new Journal(folder.path("journal.jsonl")).read()) {
    const rec = typeof e.device === "string" ? manifest.devices.find((d) => d.device === e.device) : undefined;
    switch (e.kind) {
      case "device-capture":
        if (e.device) handles[e.device] = e.handle as CaptureHandle;
        break;
      case "capture-name":
        if (rec) rec.captureName = e.captureName as string;
        break;
      // A filter change opened a new file segment: the earlier ones are in `segments`, the
      // record's own names and files are the new segment's (none yet).
      case "segment-start":
        if (rec) {
          rec.segments = e.segments as Manifest["devices"][number]["segments"];
          delete rec.captureName;
          delete rec.deviceFile;
          delete rec.deviceCapture;
          for (const side of rec.agents) {
            side.capture = "capturing";
            side.files = [];
          }
        }
        break;
      case "device-state":
        if (rec) rec.state = e.state as Manifest["devices"][number]["state"];
        break;
      case "stop-requested":
        if (rec) rec.stopReason ??= e.reason as Manifest["devices"][number]["stopReason"];
        break;
      case "device-collected":
        if (rec && !rec.deviceFile) {
          const name = e.file as string;
          const p = folder.path(name);
          if (existsSync(p)) rec.deviceFile = { name, bytes: statSync(p).size, sha256: await sha256File(p) };
          rec.deviceCapture = "collected";
        }
        break;
      case "agent-collected": {
        const side = rec?.agents.find((a) => a.agent === e.agent);
        if (side && side.capture !== "collected") {
          side.capture = "collected";
          side.files = await filesInFolder(folder, e.files as string[]);
        }
        break;
      }
      // The flow (run/flow.ts): hop states, the stop's one timestamp, collected hop files.
      case "flow-state":
        if (manifest.flow) manifest.flow.state = e.state as NonNullable<Manifest["flow"]>["state"];
        break;
      case "flow-capture": {
        const hop = manifest.path?.find((h) => h.hop === e.hop);
        if (hop && hop.capture !== "collected") hop.capture = "capturing";
        break;
      }
      case "flow-stop":
        if (manifest.flow) {
          manifest.flow.stamp ??= e.stamp as string;
          manifest.flow.stopReason ??= e.reason as NonNullable<Manifest["flow"]>["stopReason"];
        }
        break;
      case "flow-collected": {
        const hop = manifest.path?.find((h) => h.hop === e.hop);
        if (hop && hop.capture !== "collected") {
          hop.capture = "collected";
          hop.files = await filesInFolder(folder, e.files as string[]);
        }
        break;
      }
      case "run-end":
        finished = true;
        break;
      case "run-resume":
        finished = false;
        break;
    }
  }
  // The manifest on disk may predate a device's end (it is written coalesced, the journal is
  // ahead): one the journal says is done or failed must not stay "running" — resume skips it, and
  // the run would end "partial" with everything collected. Settled as a stop settles it.
  for (const rec of manifest.devices) {
    if ((rec.state !== "done" && rec.state !== "failed") || rec.status !== "running") continue;
    rec.status = settledStatus(rec, rec.deviceCapture === "collected");
    rec.description = `${rec.state} (state recovered from the journal)`;
  }
  removeDeadTempFiles(folder.dir);
  return { config, manifest, handles, finished };
}

/** The journal's collected files as they are in the folder now (a file gone since counts 0 bytes). */
function filesInFolder(folder: RunFolder, names: string[]): Promise<FileRecord[]> {
  return Promise.all(
    names.map(async (name) => {
      const p = folder.path(name);
      return existsSync(p) ? { name, bytes: statSync(p).size, sha256: await sha256File(p) } : { name, bytes: 0 };
    }),
  );
}

/**
 * RunFolder.writeAtomic's `<name>.<pid>.tmp` of a process that is gone (the SIGKILL that made this
 * a resume may have landed mid-write). A live orchestrator's are left alone.
 */
function removeDeadTempFiles(dir: string): void {
  for (const f of readdirSync(dir)) {
    const m = /\.(\d+)\.tmp$/.exec(f);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EPERM") continue;
    }
    rmSync(join(dir, f), { force: true });
  }
}
