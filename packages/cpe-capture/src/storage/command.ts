// `cpe-capture upload <run folder>`: upload (or finish uploading) a run folder to the store of
// its run config (run-config.json in the folder) or of `--config`. Rerunning it after a crash or a
// failure sends only what the journal does not record as uploaded and verified.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@capsync/protocol";
import type { Io } from "../commands/run.js";
import { loadConfig } from "../config/loader.js";
import type { RunConfig } from "../config/schema.js";
import { RunFolder } from "../artifacts/run-folder.js";
import { RUN_CONFIG_FILE } from "../run/recover.js";
import { uploadRunFolder } from "./index.js";

export async function uploadCommand(dir: string, o: { config?: string; json?: boolean }, io: Io): Promise<number> {
  const folder = RunFolder.open(dir);
  let storage: RunConfig["storage"];
  if (o.config) storage = (await loadConfig(o.config)).config.storage;
  else if (existsSync(join(folder.dir, RUN_CONFIG_FILE))) storage = (JSON.parse(readFileSync(join(folder.dir, RUN_CONFIG_FILE), "utf8")) as RunConfig).storage;
  if (!storage) throw new ConfigError(`no storage: section in ${o.config ?? join(folder.dir, RUN_CONFIG_FILE)}; add one or pass --config <file with storage:>`);
  try {
    const r = await uploadRunFolder(folder.dir, storage, {
      runId: folder.runId,
      log: (level, msg) => {
        if (!o.json || level !== "info") io.stderr.write(`${msg}\n`);
      },
    });
    if (o.json) io.stdout.write(JSON.stringify({ done: true, exitCode: 0, bucket: r.bucket, prefix: r.prefix, link: r.link, expiresAt: r.expiresAt, files: r.files.length, bytesSent: r.bytesSent, skippedFiles: r.skippedFiles, skippedParts: r.skippedParts, deleted: r.deleted }) + "\n");
    else io.stdout.write(`uploaded ${r.files.length} file(s) to s3://${r.bucket}/${r.prefix}\n${r.link}\n`);
    return 0;
  } catch (e) {
    const msg = `upload failed: ${(e as Error).message}; run the same command again to resume`;
    if (o.json) io.stdout.write(JSON.stringify({ done: true, exitCode: 1, error: msg }) + "\n");
    io.stderr.write(`cpe-capture: ${msg}\n`);
    return 1;
  }
}
