// The run config's optional `notify:` section (webhooks on run events): its types and a pure
// parser in config/'s style (never throws; issues with paths relative to the section, mounted at
// `notify` by config/check.ts), plus how `validate` shows it.
import { MAX_DURATION_MS, parseDurationValue } from "@capsync/protocol";
import { absoluteSecretRef, displaySecretRef, parseSecretRef, type SecretRef } from "../config/credentials.js";
import { parseInteger } from "../config/fields.js";
import { describeValue, fail, isObject, ok, prefix, take, unknownKeys, type Parsed, type PathIssue } from "../config/issues.js";

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
  issues.push(...prefix(at(), unknownKeys(v, ["kind", "url", "token", "roomId", "events"])));
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
  issues.push(...unknownKeys(v, ["webhooks", "timeout", "retries"]));
  const list = v.webhooks === undefined ? [] : Array.isArray(v.webhooks) ? v.webhooks : [v.webhooks];
  if (v.webhooks === undefined) issues.push({ path: ["webhooks"], message: "required: a list of { kind, url, events }" });
  const webhooks = list.map((w, i) => parseWebhook(w, i, issues)).filter((w): w is WebhookConfig => w !== undefined);
  let timeoutMs = 5000;
  if (v.timeout !== undefined) {
    const d = parseDurationValue(v.timeout, MAX_DURATION_MS);
    if (!d.ok || d.ms < 100 || d.ms > 120_000) issues.push({ path: ["timeout"], message: d.ok ? `expected 100ms..2m, got ${describeValue(v.timeout)}` : d.message });
    else timeoutMs = d.ms;
  }
  const retries = v.retries === undefined ? 2 : take(parseInteger(0, 10)(v.retries), ["retries"], issues) ?? 0;
  return issues.length ? { ok: false, issues } : ok({ webhooks, timeoutMs, retries });
}

/** `{ file }` references relative to the config file's folder, as the device passwords are. */
export function absoluteNotify(n: NotifyConfig, abs: (p: string) => string): NotifyConfig {
  const fix = <T extends UrlRef>(r: T): T => absoluteSecretRef(r, abs);
  return { ...n, webhooks: n.webhooks.map((w) => ({ ...w, url: fix(w.url), ...(w.token ? { token: fix(w.token) } : {}) })) };
}

// --- display (validate) ------------------------------------------------------------------------

/** Plain webhook URLs are shown as scheme://host/*** : their path is often the secret. */
export function displayNotify(n: NotifyConfig, fmt: (ms: number) => string): Record<string, unknown> {
  return {
    timeout: fmt(n.timeoutMs),
    retries: n.retries,
    webhooks: n.webhooks.map((w) => ({
      kind: w.kind,
      url: w.url.kind === "url" ? (w.url.url === WEBEX_MESSAGES_URL ? w.url.url : maskUrl(w.url.url)) : displaySecretRef(w.url),
      ...(w.token ? { token: displaySecretRef(w.token) } : {}),
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
