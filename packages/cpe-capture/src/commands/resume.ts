// `cpe-capture resume <run folder>` and `cpe-capture stop <run folder>`: pick up a run whose
// orchestrator died (or stop one that is still running, through its pid file).
import { existsSync, readFileSync } from "node:fs";
import { RunFolder } from "../artifacts/run-folder.js";
import { recoverRun } from "../run/recover.js";
import { runConfig, type Io } from "./run.js";
import { uploadFinished } from "../storage/index.js";
import { uploadCommand } from "../storage/command.js";

function livePid(folder: RunFolder): number | undefined {
  const p = folder.path("orchestrator.pid");
  if (!existsSync(p)) return undefined;
  const pid = Number(readFileSync(p, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    // Guard against pid reuse: it must be a cpe-capture process.
    return /cpe-capture/.test(argv) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function resumeCommand(dir: string, mode: "continue" | "stop", opts: { json?: boolean }, io: Io): Promise<number> {
  const folder = RunFolder.open(dir);
  const pid = livePid(folder);
  if (pid !== undefined) {
    if (mode === "continue") {
      io.stderr.write(`run ${folder.runId} is still running (pid ${pid}); nothing to resume\n`);
      return 2;
    }
    // A live orchestrator: SIGTERM makes it stop every capture and collect, as Ctrl-C would.
    process.kill(pid, "SIGTERM");
    io.stderr.write(`asked the running orchestrator (pid ${pid}) to stop and collect\n`);
    for (let i = 0; i < 600 && livePid(folder) !== undefined; i++) await new Promise((r) => setTimeout(r, 500));
    return livePid(folder) === undefined ? 0 : 1;
  }
  const rec = await recoverRun(folder);
  if (rec.finished) {
    // A run that ended but whose upload did not finish: finish the upload (journal-resumed).
    if (rec.config.storage && !uploadFinished(folder.dir, rec.config.storage)) return uploadCommand(folder.dir, { json: opts.json ?? false }, io);
    io.stderr.write(`run ${folder.runId} already finished (${rec.manifest.status}); nothing to do\n`);
    return rec.manifest.status === "done" ? 0 : 1;
  }
  const summary = await runConfig(rec.config, io, { json: opts.json ?? false, resume: { folder, manifest: rec.manifest, handles: rec.handles, mode } });
  return summary.exitCode;
}
