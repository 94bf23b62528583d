// Upload a run folder: the client for the config's store, then the resumable uploader.
import { basename, resolve } from "node:path";
import type { StorageConfig } from "./config.js";
import { makeS3Client } from "./s3.js";
import { Uploader, type UploadProgress, type UploadResult } from "./upload.js";

export { StorageError } from "./s3.js";
export { uploadFinished, type UploadResult } from "./upload.js";

export interface UploadRunOptions {
  runId?: string;
  log?: (level: "info" | "warn" | "error", message: string) => void;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onProgress?: (p: UploadProgress) => void;
  /** Secret values resolved for the store, for the caller's redaction. */
  onSecrets?: (values: string[]) => void;
}

export async function uploadRunFolder(dir: string, storage: StorageConfig, o: UploadRunOptions = {}): Promise<UploadResult> {
  const abs = resolve(dir);
  const { client, secrets } = await makeS3Client(storage, o.env ? { env: o.env } : {});
  o.onSecrets?.(secrets);
  try {
    return await new Uploader({
      dir: abs,
      runId: o.runId ?? basename(abs),
      storage,
      client,
      ...(o.log ? { log: o.log } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    }).run();
  } finally {
    client.destroy();
  }
}
