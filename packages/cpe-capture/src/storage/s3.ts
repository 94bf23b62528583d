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
  // The SDK is pinned to its last Node-20 releases on purpose (package.json); its per-process
  // "Node 20 will not be supported" warning would otherwise land in every run's stderr.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
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
  // Bodies are sent with UNSIGNED-PAYLOAD, as the AWS CLI does over HTTPS: SigV4 would otherwise
  // hash every byte once more (measured: bench/upload.mjs). Integrity does not depend on it: every
  // PUT carries Content-MD5, and every object is checked after upload (upload.ts).
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const req = args.request as { headers?: Record<string, string> };
      if (req.headers && (context.commandName === "PutObjectCommand" || context.commandName === "UploadPartCommand")) req.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
      return next(args);
    },
    { step: "build", name: "capsyncUnsignedPayload", priority: "low" },
  );
  return { client, secrets };
}
