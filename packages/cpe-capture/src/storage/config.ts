// The run config's optional `storage:` section (S3 or an S3-compatible store): its types and a
// pure parser in config/'s style (never throws; issues with paths relative to the section, mounted
// at `storage` by config/check.ts), plus how `validate` shows it.
import { MAX_DURATION_MS, parseDurationValue } from "@capsync/protocol";
import { absoluteSecretRef, displaySecretRef, parseSecretRef, type SecretRef } from "../config/credentials.js";
import { parseBoolean, parseInteger } from "../config/fields.js";
import { describeValue, fail, isObject, ok, prefix as under, take, unknownKeys, type Parsed, type PathIssue } from "../config/issues.js";

export interface StorageConfig {
  bucket: string;
  /** Keys are `<prefix><run id>/<file>`; "" or ends with "/". */
  prefix: string;
  /** undefined: the AWS chain's region (AWS_REGION, the profile), else us-east-1. */
  region: string | undefined;
  /** An S3-compatible store (MinIO, Ceph, ...): its base URL. */
  endpoint: string | undefined;
  /** Path-style addressing (`<endpoint>/<bucket>/<key>`); default true with an endpoint. */
  forcePathStyle: boolean;
  /** A named profile of ~/.aws/credentials / ~/.aws/config; undefined: the standard chain. */
  profile: string | undefined;
  /** Static keys by reference (never plain text); undefined: the profile or the standard chain. */
  credentials: { accessKeyId: SecretRef; secretAccessKey: SecretRef; sessionToken?: SecretRef } | undefined;
  /** Multipart part size in bytes (≥ 5 MiB, the S3 minimum); files above it go multipart. */
  partSizeBytes: number;
  /** Parts (and small files) in flight at once. */
  concurrency: number;
  /** Retries of one request (part, small file, verification) after the first attempt. */
  retries: number;
  /** Lifetime of the presigned links (S3 allows at most 7 days). */
  presignExpiresMs: number;
  /** Delete the local capture files after every file was uploaded and verified. */
  deleteLocal: boolean;
  /** The link `cpe-capture run` exits 1 over: a requested upload that failed is a failed run. */
  required: boolean;
}

export const STORAGE_DEFAULTS = {
  prefix: "",
  partSizeBytes: 8 * 1024 * 1024,
  concurrency: 4,
  retries: 5,
  presignExpiresMs: 7 * 24 * 3_600_000,
} as const;

export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** S3's limit for one part and for a presigned URL's lifetime. */
const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;
const MAX_PRESIGN_MS = 7 * 24 * 3_600_000;

// ---------------------------------------------------------------------------------------------

/** "8MB" / "8MiB" / "1GB" (binary units: S3's part limits are in MiB) or a number of bytes. */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isInteger(v) && v > 0) return v;
  if (typeof v !== "string") return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/i.exec(v.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? "B").toLowerCase().replace("i", "");
  const mult = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[unit]!;
  return Math.round(Number(m[1]) * mult);
}

/** S3 bucket naming rules (the DNS-compatible ones every S3-compatible store accepts). */
const BUCKET = /^(?!\d+\.\d+\.\d+\.\d+$)(?!xn--)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function isValidBucket(name: string): boolean {
  return BUCKET.test(name) && !name.includes("..");
}

const STORAGE_KEYS = ["bucket", "prefix", "region", "endpoint", "forcePathStyle", "profile", "credentials", "partSize", "concurrency", "retries", "presignExpires", "deleteLocal", "required"] as const;

export function parseStorage(v: unknown): Parsed<StorageConfig> {
  if (!isObject(v)) return fail(`expected a mapping with bucket, prefix, region, endpoint, ..., got ${describeValue(v)}`);
  const issues: PathIssue[] = [];
  issues.push(...unknownKeys(v, STORAGE_KEYS));
  let bucket = "";
  if (v.bucket === undefined) issues.push({ path: ["bucket"], message: "required" });
  else if (typeof v.bucket !== "string" || !isValidBucket(v.bucket)) issues.push({ path: ["bucket"], message: `expected an S3 bucket name (3-63 of a-z 0-9 . -), got ${describeValue(v.bucket)}` });
  else bucket = v.bucket;

  let prefix: string = STORAGE_DEFAULTS.prefix;
  if (v.prefix !== undefined) {
    if (typeof v.prefix !== "string" || v.prefix.startsWith("/") || v.prefix.includes("..") || /[\u0000-\u001f\\]/.test(v.prefix) || v.prefix.length > 512) {
      issues.push({ path: ["prefix"], message: `expected a key prefix like captures/site-1/ (no leading '/', no '..'), got ${describeValue(v.prefix)}` });
    } else prefix = v.prefix === "" || v.prefix.endsWith("/") ? v.prefix : `${v.prefix}/`;
  }
  let region: string | undefined;
  if (v.region !== undefined) {
    if (typeof v.region === "string" && /^[a-z0-9-]{2,32}$/.test(v.region)) region = v.region;
    else issues.push({ path: ["region"], message: `expected a region like eu-west-1, got ${describeValue(v.region)}` });
  }
  let endpoint: string | undefined;
  if (v.endpoint !== undefined) {
    let u: URL | undefined;
    try {
      u = typeof v.endpoint === "string" ? new URL(v.endpoint) : undefined;
    } catch {
      u = undefined;
    }
    if (!u || !["http:", "https:"].includes(u.protocol) || u.username || u.password) {
      issues.push({ path: ["endpoint"], message: `expected an http(s) URL like https://minio.example.net:9000 (credentials never in the URL), got ${describeValue(v.endpoint)}` });
    } else endpoint = (v.endpoint as string).replace(/\/+$/, "");
  }
  const forcePathStyle = v.forcePathStyle === undefined ? endpoint !== undefined : take(parseBoolean(v.forcePathStyle), ["forcePathStyle"], issues) ?? false;
  let profile: string | undefined;
  if (v.profile !== undefined) {
    if (typeof v.profile === "string" && /^[A-Za-z0-9_.+@-]{1,64}$/.test(v.profile)) profile = v.profile;
    else issues.push({ path: ["profile"], message: `expected a profile name from ~/.aws/credentials, got ${describeValue(v.profile)}` });
  }
  let credentials: StorageConfig["credentials"];
  if (v.credentials !== undefined) {
    if (!isObject(v.credentials)) issues.push({ path: ["credentials"], message: `expected { accessKeyId: { env: NAME }, secretAccessKey: { env: NAME } }, got ${describeValue(v.credentials)}` });
    else {
      const c = v.credentials;
      issues.push(...under(["credentials"], unknownKeys(c, ["accessKeyId", "secretAccessKey", "sessionToken"])));
      const need = (k: "accessKeyId" | "secretAccessKey") => {
        if (c[k] === undefined) {
          issues.push({ path: ["credentials", k], message: "required" });
          return undefined;
        }
        return parseSecretRef(c[k], ["credentials", k], issues);
      };
      const id = need("accessKeyId");
      const secret = need("secretAccessKey");
      const token = c.sessionToken === undefined ? undefined : parseSecretRef(c.sessionToken, ["credentials", "sessionToken"], issues);
      if (id && secret) credentials = { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) };
    }
    if (profile !== undefined) issues.push({ path: ["profile"], message: "use either profile or credentials, not both" });
  }
  let partSizeBytes: number = STORAGE_DEFAULTS.partSizeBytes;
  if (v.partSize !== undefined) {
    const n = parseSize(v.partSize);
    if (n === undefined || n < MIN_PART_BYTES || n > MAX_PART_BYTES) issues.push({ path: ["partSize"], message: `expected a size from 5MB to 5GB (S3's part limits), got ${describeValue(v.partSize)}` });
    else partSizeBytes = n;
  }
  const concurrency = v.concurrency === undefined ? STORAGE_DEFAULTS.concurrency : take(parseInteger(1, 64)(v.concurrency), ["concurrency"], issues) ?? 1;
  const retries = v.retries === undefined ? STORAGE_DEFAULTS.retries : take(parseInteger(0, 20)(v.retries), ["retries"], issues) ?? 0;
  let presignExpiresMs: number = STORAGE_DEFAULTS.presignExpiresMs;
  if (v.presignExpires !== undefined) {
    const d = parseDurationValue(v.presignExpires, MAX_DURATION_MS);
    if (!d.ok) issues.push({ path: ["presignExpires"], message: d.message });
    else if (d.ms < 1000 || d.ms > MAX_PRESIGN_MS) issues.push({ path: ["presignExpires"], message: `presigned links live 1s..7d (the S3 limit), got ${describeValue(v.presignExpires)}` });
    else presignExpiresMs = d.ms;
  }
  const deleteLocal = v.deleteLocal === undefined ? false : take(parseBoolean(v.deleteLocal), ["deleteLocal"], issues) ?? false;
  const required = v.required === undefined ? true : take(parseBoolean(v.required), ["required"], issues) ?? true;
  if (issues.length) return { ok: false, issues };
  return ok({ bucket, prefix, region, endpoint, forcePathStyle, profile, credentials, partSizeBytes, concurrency, retries, presignExpiresMs, deleteLocal, required });
}

/** `{ file }` references relative to the config file's folder, as the device passwords are. */
export function absoluteStorage(s: StorageConfig, abs: (p: string) => string): StorageConfig {
  const fix = (r: SecretRef): SecretRef => absoluteSecretRef(r, abs);
  if (!s.credentials) return s;
  const c = s.credentials;
  return { ...s, credentials: { accessKeyId: fix(c.accessKeyId), secretAccessKey: fix(c.secretAccessKey), ...(c.sessionToken ? { sessionToken: fix(c.sessionToken) } : {}) } };
}

// --- display (validate) ------------------------------------------------------------------------

export function displayStorage(s: StorageConfig, fmt: (ms: number) => string): Record<string, unknown> {
  return {
    bucket: s.bucket,
    prefix: s.prefix,
    ...(s.region ? { region: s.region } : {}),
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    forcePathStyle: s.forcePathStyle,
    ...(s.profile ? { profile: s.profile } : {}),
    ...(s.credentials
      ? { credentials: { accessKeyId: displaySecretRef(s.credentials.accessKeyId), secretAccessKey: displaySecretRef(s.credentials.secretAccessKey), ...(s.credentials.sessionToken ? { sessionToken: displaySecretRef(s.credentials.sessionToken) } : {}) } }
      : {}),
    partSize: s.partSizeBytes % (1024 * 1024) === 0 ? `${s.partSizeBytes / (1024 * 1024)}MB` : s.partSizeBytes,
    concurrency: s.concurrency,
    retries: s.retries,
    presignExpires: fmt(s.presignExpiresMs),
    deleteLocal: s.deleteLocal,
    required: s.required,
  };
}
