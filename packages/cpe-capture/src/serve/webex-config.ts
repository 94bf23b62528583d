// The `webex:` key of serve.yaml: the bot's access token and the webhook secret (by reference only),
// the Webex API base URL, the webhook path on serve, and who may command the bot.
import { isIP } from "node:net";
import { parseSecretRef, type SecretRef } from "../config/credentials.js";
import { describeValue, type PathIssue } from "../config/issues.js";
import { isValidBucket } from "../storage/config.js";

export interface WebexConfig {
  token: SecretRef;
  secret: SecretRef;
  /** Without a trailing slash, e.g. https://webexapis.com/v1. */
  apiUrl: string;
  /** The webhook's path on serve (its targetUrl's path). */
  path: string;
  /** Room ids the bot answers in; empty: every room it is in. */
  allowedRooms: string[];
  /** Person ids or e-mail addresses (lower case) the bot takes commands from; empty: everyone. */
  allowedPersons: string[];
  /** The bucket a capture is uploaded to, as the bot's "bucket" field; default: serve's storage. */
  bucket: string | undefined;
}

export const WEBEX_DEFAULT_API = "https://webexapis.com/v1";
export const WEBEX_DEFAULT_PATH = "/webex/webhook";
const KEYS = ["token", "secret", "apiUrl", "path", "allowedRooms", "allowedPersons", "bucket"];

const isLoopback = (host: string) => host === "localhost" || (isIP(host) === 4 && host.startsWith("127.")) || host === "[::1]";

export function parseWebexConfig(v: unknown, abs: (p: string) => string, issues: PathIssue[]): WebexConfig | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    issues.push({ path: ["webex"], message: `expected a mapping with token, secret (and apiUrl, path, allowedRooms, allowedPersons), got ${describeValue(v)}` });
    return undefined;
  }
  const o = v as Record<string, unknown>;
  const before = issues.length;
  for (const k of Object.keys(o)) if (!KEYS.includes(k)) issues.push({ path: ["webex", k], message: `unknown key; expected ${KEYS.join(", ")}` });
  const ref = (k: "token" | "secret") => {
    if (o[k] === undefined) {
      issues.push({ path: ["webex", k], message: `required: { env: NAME } or { file: PATH } (the ${k === "token" ? "bot's access token" : "webhook secret"})` });
      return undefined;
    }
    const r = parseSecretRef(o[k], ["webex", k], issues);
    return r?.kind === "file" ? { kind: "file" as const, file: abs(r.file) } : r;
  };
  const token = ref("token");
  const secret = ref("secret");
  let apiUrl = WEBEX_DEFAULT_API;
  if (o.apiUrl !== undefined) {
    const u = typeof o.apiUrl === "string" && URL.canParse(o.apiUrl) ? new URL(o.apiUrl) : undefined;
    if (!u || u.username || u.password || !(u.protocol === "https:" || (u.protocol === "http:" && isLoopback(u.hostname)))) {
      issues.push({ path: ["webex", "apiUrl"], message: `expected an https:// URL (http:// only on loopback) like ${WEBEX_DEFAULT_API}, got ${describeValue(o.apiUrl)}` });
    } else apiUrl = u.href.replace(/\/+$/, "");
  }
  let path = WEBEX_DEFAULT_PATH;
  if (o.path !== undefined) {
    if (typeof o.path !== "string" || !/^\/[A-Za-z0-9._~/-]*$/.test(o.path) || /^\/(api|pcap_json|status_json|captures)(\/|$)/.test(o.path)) {
      issues.push({ path: ["webex", "path"], message: `expected a URL path like ${WEBEX_DEFAULT_PATH} outside /api, /pcap_json, /status_json and /captures, got ${describeValue(o.path)}` });
    } else path = o.path.replace(/\/+$/, "") || "/";
  }
  const list = (k: "allowedRooms" | "allowedPersons") => {
    const raw = o[k] === undefined ? [] : Array.isArray(o[k]) ? (o[k] as unknown[]) : [o[k]];
    const out: string[] = [];
    raw.forEach((x, i) => {
      if (typeof x !== "string" || !x.trim()) issues.push({ path: ["webex", k, i], message: `expected a ${k === "allowedRooms" ? "room id" : "person id or e-mail address"}, got ${describeValue(x)}` });
      else out.push(k === "allowedPersons" && x.includes("@") ? x.trim().toLowerCase() : x.trim());
    });
    return out;
  };
  const allowedRooms = list("allowedRooms");
  const allowedPersons = list("allowedPersons");
  let bucket: string | undefined;
  if (o.bucket !== undefined) {
    if (typeof o.bucket !== "string" || !isValidBucket(o.bucket)) issues.push({ path: ["webex", "bucket"], message: `expected an S3 bucket name, got ${describeValue(o.bucket)}` });
    else bucket = o.bucket;
  }
  if (issues.length > before || !token || !secret) return undefined;
  return { token, secret, apiUrl, path, allowedRooms, allowedPersons, bucket };
}
