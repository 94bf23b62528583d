// The run config's optional `storage:` section (S3 or an S3-compatible store) and `notify:` section
// (webhooks). Pure parsers in schema.ts's style: never throw, return issues with paths relative to
// the section; schema.ts mounts them at `storage` / `notify` and the loader adds file:line.
import { parseDuration } from "../config/duration.js";
import { describeValue, suggest, type PathIssue, type SecretRef } from "../config/schema.js";

export type Parsed<T> = { ok: true; value: T } | { ok: false; issues: PathIssue[] };

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

export const NOTIFY_EVENTS = ["started", "alarm", "collected", "failed"] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
export const WEBHOOK_KINDS = ["webex", "slack", "json"] as const;
export type WebhookKind = (typeof WEBHOOK_KINDS)[number];

export type UrlRef = { kind: "url"; url: string } | SecretRef;

export interface WebhookConfig {
  kind: WebhookKind;
  /** Plain, or by reference (Slack and Webex incoming-webhook URLs are secrets themselves). */
  url: UrlRef;
  /** Sent as `Authorization: Bearer <token>` (a Webex bot token; any receiver's token). */
  token: SecretRef | undefined;
  /** Webex messages API: the room to post into. */
  roomId: string | undefined;
  events: NotifyEvent[];
}

export interface NotifyConfig {
  webhooks: WebhookConfig[];
  timeoutMs: number;
  retries: number;
}

export const WEBEX_MESSAGES_URL = "https://webexapis.com/v1/messages";

// ---------------------------------------------------------------------------------------------

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = (message: string, path: (string | number)[] = []): { ok: false; issues: PathIssue[] } => ({ ok: false, issues: [{ path, message }] });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function unknownKeys(v: Record<string, unknown>, allowed: readonly string[], issues: PathIssue[], base: (string | number)[] = []): void {
  for (const k of Object.keys(v)) {
    if (allowed.includes(k)) continue;
    const hint = suggest(k, allowed);
    issues.push({ path: [...base, k], message: `unknown key ${describeValue(k)}${hint ? ` (did you mean '${hint}'?)` : ""}` });
  }
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `{ env: NAME }` or `{ file: PATH }`; plain strings are refused: these are keys and tokens. */
export function parseSecretRef(v: unknown, path: (string | number)[], issues: PathIssue[]): SecretRef | undefined {
  const shape = "expected { env: NAME } or { file: PATH } (never the secret itself)";
  if (!isObject(v)) {
    issues.push({ path, message: `${shape}, got ${typeof v === "string" ? "a string" : describeValue(v)}` });
    return undefined;
  }
  const keys = Object.keys(v);
  if (keys.length !== 1 || !["env", "file"].includes(keys[0]!)) {
    issues.push({ path, message: shape });
    return undefined;
  }
  if ("env" in v) {
    if (typeof v.env === "string" && ENV_NAME.test(v.env)) return { kind: "env", env: v.env };
    issues.push({ path: [...path, "env"], message: `expected an environment variable name, got ${describeValue(v.env)}` });
    return undefined;
  }
  if (typeof v.file === "string" && v.file.trim() !== "" && !v.file.includes("\0")) return { kind: "file", file: v.file };
  issues.push({ path: [...path, "file"], message: `expected a file path, got ${describeValue(v.file)}` });
  return undefined;
}

function parseInt(v: unknown, min: number, max: number, path: (string | number)[], issues: PathIssue[]): number | undefined {
  if (typeof v === "number" && Number.isInteger(v) && v >= min && v <= max) return v;
  issues.push({ path, message: `expected an integer ${min}..${max}, got ${describeValue(v)}` });
  return undefined;
}

function parseBool(v: unknown, path: (string | number)[], issues: PathIssue[]): boolean | undefined {
  if (typeof v === "boolean") return v;
  issues.push({ path, message: `expected true or false, got ${describeValue(v)}` });
  return undefined;
}

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
  unknownKeys(v, STORAGE_KEYS, issues);
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
  const forcePathStyle = v.forcePathStyle === undefined ? endpoint !== undefined : parseBool(v.forcePathStyle, ["forcePathStyle"], issues) ?? false;
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
      unknownKeys(c, ["accessKeyId", "secretAccessKey", "sessionToken"], issues, ["credentials"]);
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
  const concurrency = v.concurrency === undefined ? STORAGE_DEFAULTS.concurrency : parseInt(v.concurrency, 1, 64, ["concurrency"], issues) ?? 1;
  const retries = v.retries === undefined ? STORAGE_DEFAULTS.retries : parseInt(v.retries, 0, 20, ["retries"], issues) ?? 0;
  let presignExpiresMs: number = STORAGE_DEFAULTS.presignExpiresMs;
  if (v.presignExpires !== undefined) {
    const d = parseDuration(v.presignExpires);
    if (!d.ok) issues.push({ path: ["presignExpires"], message: d.message });
    else if (d.ms < 1000 || d.ms > MAX_PRESIGN_MS) issues.push({ path: ["presignExpires"], message: `presigned links live 1s..7d (the S3 limit), got ${describeValue(v.presignExpires)}` });
    else presignExpiresMs = d.ms;
  }
  const deleteLocal = v.deleteLocal === undefined ? false : parseBool(v.deleteLocal, ["deleteLocal"], issues) ?? false;
  const required = v.required === undefined ? true : parseBool(v.required, ["required"], issues) ?? true;
  if (issues.length) return { ok: false, issues };
  return ok({ bucket, prefix, region, endpoint, forcePathStyle, profile, credentials, partSizeBytes, concurrency, retries, presignExpiresMs, deleteLocal, required });
}

function parseUrlRef(v: unknown, path: (string | number)[], issues: PathIssue[]): UrlRef | undefined {
  if (typeof v === "string") {
    let u: URL | undefined;
    try {
      u = new URL(v);
    } catch {
      u = undefined;
    }
    // Shown without its path: a webhook URL often is the secret.
    if (!u || !["http:", "https:"].includes(u.protocol)) {
      issues.push({ path, message: `expected an http(s) URL or { env: NAME } / { file: PATH }, got ${u ? `a ${u.protocol} URL` : "something else"}` });
      return undefined;
    }
    return { kind: "url", url: v };
  }
  return parseSecretRef(v, path, issues);
}

function parseWebhook(v: unknown, i: number, issues: PathIssue[]): WebhookConfig | undefined {
  const at = (...p: (string | number)[]) => ["webhooks", i, ...p];
  if (!isObject(v)) {
    issues.push({ path: at(), message: `expected { kind: webex|slack|json, url: ..., events: [...] }, got ${describeValue(v)}` });
    return undefined;
  }
  const before = issues.length;
  unknownKeys(v, ["kind", "url", "token", "roomId", "events"], issues, at());
  const kind = v.kind === undefined ? "json" : v.kind;
  if (!(WEBHOOK_KINDS as readonly unknown[]).includes(kind)) issues.push({ path: at("kind"), message: `expected ${WEBHOOK_KINDS.join("|")}, got ${describeValue(v.kind)}` });
  let url: UrlRef | undefined;
  if (v.url === undefined) {
    if (kind === "webex") url = { kind: "url", url: WEBEX_MESSAGES_URL };
    else issues.push({ path: at("url"), message: "required" });
  } else url = parseUrlRef(v.url, at("url"), issues);
  const token = v.token === undefined ? undefined : parseSecretRef(v.token, at("token"), issues);
  let roomId: string | undefined;
  if (v.roomId !== undefined) {
    if (typeof v.roomId === "string" && /^[A-Za-z0-9_=-]{1,256}$/.test(v.roomId)) roomId = v.roomId;
    else issues.push({ path: at("roomId"), message: `expected a Webex room id, got ${describeValue(v.roomId)}` });
  }
  if (kind === "webex" && url?.kind === "url" && url.url === WEBEX_MESSAGES_URL && (!token || !roomId)) {
    issues.push({ path: at(), message: "the Webex messages API needs token (the bot's, by reference) and roomId; or give an incoming-webhook url" });
  }
  let events: NotifyEvent[] = [...NOTIFY_EVENTS];
  if (v.events !== undefined) {
    const list = Array.isArray(v.events) ? v.events : [v.events];
    const bad = list.findIndex((e) => !(NOTIFY_EVENTS as readonly unknown[]).includes(e));
    if (bad >= 0 || list.length === 0) issues.push({ path: at("events", ...(bad >= 0 && Array.isArray(v.events) ? [bad] : [])), message: `expected some of ${NOTIFY_EVENTS.join(", ")}, got ${describeValue(bad >= 0 ? list[bad] : v.events)}` });
    else events = [...new Set(list as NotifyEvent[])];
  }
  if (issues.length > before || !url) return undefined;
  return { kind: kind as WebhookKind, url, token, roomId, events };
}

export function parseNotify(v: unknown): Parsed<NotifyConfig> {
  if (!isObject(v)) return fail(`expected a mapping with webhooks, timeout, retries, got ${describeValue(v)}`);
  const issues: PathIssue[] = [];
  unknownKeys(v, ["webhooks", "timeout", "retries"], issues);
  const list = v.webhooks === undefined ? [] : Array.isArray(v.webhooks) ? v.webhooks : [v.webhooks];
  if (v.webhooks === undefined) issues.push({ path: ["webhooks"], message: "required: a list of { kind, url, events }" });
  const webhooks = list.map((w, i) => parseWebhook(w, i, issues)).filter((w): w is WebhookConfig => w !== undefined);
  let timeoutMs = 5000;
  if (v.timeout !== undefined) {
    const d = parseDuration(v.timeout);
    if (!d.ok || d.ms < 100 || d.ms > 120_000) issues.push({ path: ["timeout"], message: d.ok ? `expected 100ms..2m, got ${describeValue(v.timeout)}` : d.message });
    else timeoutMs = d.ms;
  }
  const retries = v.retries === undefined ? 2 : parseInt(v.retries, 0, 10, ["retries"], issues) ?? 0;
  return issues.length ? { ok: false, issues } : ok({ webhooks, timeoutMs, retries });
}

/** `{ file }` references relative to the config file's folder, as the device passwords are. */
export function absoluteStorage(s: StorageConfig, abs: (p: string) => string): StorageConfig {
  const fix = (r: SecretRef): SecretRef => (r.kind === "file" ? { kind: "file", file: abs(r.file) } : r);
  if (!s.credentials) return s;
  const c = s.credentials;
  return { ...s, credentials: { accessKeyId: fix(c.accessKeyId), secretAccessKey: fix(c.secretAccessKey), ...(c.sessionToken ? { sessionToken: fix(c.sessionToken) } : {}) } };
}

export function absoluteNotify(n: NotifyConfig, abs: (p: string) => string): NotifyConfig {
  const fix = <T extends UrlRef>(r: T): T => (r.kind === "file" ? { ...r, file: abs(r.file) } : r);
  return { ...n, webhooks: n.webhooks.map((w) => ({ ...w, url: fix(w.url), ...(w.token ? { token: fix(w.token) } : {}) })) };
}

// --- display (validate) ------------------------------------------------------------------------

const ref = (r: SecretRef) => (r.kind === "env" ? { env: r.env } : r.kind === "file" ? { file: r.file } : "***");

export function displayStorage(s: StorageConfig, fmt: (ms: number) => string): Record<string, unknown> {
  return {
    bucket: s.bucket,
    prefix: s.prefix,
    ...(s.region ? { region: s.region } : {}),
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    forcePathStyle: s.forcePathStyle,
    ...(s.profile ? { profile: s.profile } : {}),
    ...(s.credentials
      ? { credentials: { accessKeyId: ref(s.credentials.accessKeyId), secretAccessKey: ref(s.credentials.secretAccessKey), ...(s.credentials.sessionToken ? { sessionToken: ref(s.credentials.sessionToken) } : {}) } }
      : {}),
    partSize: s.partSizeBytes % (1024 * 1024) === 0 ? `${s.partSizeBytes / (1024 * 1024)}MB` : s.partSizeBytes,
    concurrency: s.concurrency,
    retries: s.retries,
    presignExpires: fmt(s.presignExpiresMs),
    deleteLocal: s.deleteLocal,
    required: s.required,
  };
}

/** Plain webhook URLs are shown as scheme://host/*** : their path is often the secret. */
export function displayNotify(n: NotifyConfig, fmt: (ms: number) => string): Record<string, unknown> {
  return {
    timeout: fmt(n.timeoutMs),
    retries: n.retries,
    webhooks: n.webhooks.map((w) => ({
      kind: w.kind,
      url: w.url.kind === "url" ? (w.url.url === WEBEX_MESSAGES_URL ? w.url.url : maskUrl(w.url.url)) : ref(w.url),
      ...(w.token ? { token: ref(w.token) } : {}),
      ...(w.roomId ? { roomId: w.roomId } : {}),
      events: [...w.events],
    })),
  };
}

export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname === "/" && !u.search ? `${u.protocol}//${u.host}/` : `${u.protocol}//${u.host}/***`;
  } catch {
    return "***";
  }
}
