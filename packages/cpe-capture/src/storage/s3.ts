// The S3 client for a `storage:` section: AWS or any S3-compatible store (endpoint + path style),
// credentials from a profile, from references, or the SDK's standard chain (env, ~/.aws, SSO,
// IMDS/ECS). Retries are ours (upload.ts), so the SDK's own are off: one retry budget, journaled.
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { CapsyncError } from "@capsync/protocol";
import { resolveSecret } from "../config/secrets.js";
import type { StorageConfig } from "./config.js";

export class StorageError extends CapsyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("storage", message, options);
  }
}

export interface S3Handle {
  client: S3Client;
  /** Resolved secret values, for redaction. */
  secrets: string[];
}

export async function makeS3Client(s: StorageConfig, opts: { env?: NodeJS.ProcessEnv } = {}): Promise<S3Handle> {
  const secrets: string[] = [];
  let credentials: S3ClientConfig["credentials"];
  if (s.credentials) {
    const ro = opts.env ? { env: opts.env } : {};
    const id = (await resolveSecret(s.credentials.accessKeyId, "storage.credentials.accessKeyId", ro)).value;
    const key = (await resolveSecret(s.credentials.secretAccessKey, "storage.credentials.secretAccessKey", ro)).value;
    const token = s.credentials.sessionToken ? (await resolveSecret(s.credentials.sessionToken, "storage.credentials.sessionToken", ro)).value : undefined;
    secrets.push(key, ...(token ? [token] : []));
    credentials = { accessKeyId: id, secretAccessKey: key, ...(token ? { sessionToken: token } : {}) };
  }
  const region = s.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? (s.endpoint ? "us-east-1" : undefined);
  const client = new S3Client({
    ...(region ? { region } : {}),
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    forcePathStyle: s.forcePathStyle,
    ...(s.profile ? { profile: s.profile } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts: 1,
    // Integrity is Content-MD5 on every request (checked by S3 and by compatible stores) plus our
    // own verification after each file; the SDK's default CRC trailers (aws-chunked) are refused
    // by several S3-compatible stores, so they are sent only where an operation requires them.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  return { client, secrets };
}
