// The Webex bot of `cpe-capture serve`: Webex POSTs a webhook for each message to the bot; the
// X-Spark-Signature (HMAC-SHA1 of the raw body with the webhook secret) is its only authentication.
// The message text is read through the Webex API, understood as pcap-sparkbot's commands, a capture
// becomes the same job a /pcap_json request makes, and the bot's texts are posted back to the room,
// the last one when the job ends.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { resolveSecret } from "../config/secrets.js";
import type { Job, JobStore } from "./jobs.js";
import { commandText, parseWebexCommand, REPLY } from "./webex-commands.js";
import type { WebexConfig } from "./webex-config.js";
import { statusJsonBody } from "./xepacketcap.js";

const MAX_WEBHOOK_BODY = 256 * 1024;
const API_TIMEOUT_MS = 10_000;
/** How many delivered message ids are remembered, so a repeated delivery starts nothing twice. */
const SEEN_IDS = 1000;

export interface WebexBotOptions {
  store: JobStore;
  log: (level: "info" | "warn" | "error", msg: string) => void;
  env?: NodeJS.ProcessEnv;
  /** How often a job is looked at until it ends; the bot polled every 2 s. */
  pollMs?: number;
}

/** What serve's router calls: `startPcapJob` validates and submits a /pcap_json body (throws with `issues`). */
export interface WebexBot {
  readonly path: string;
  accepts(req: IncomingMessage): boolean;
  handle(req: IncomingMessage, res: ServerResponse, startPcapJob: (body: unknown) => Job): Promise<void>;
  /**
   * Where serve itself serves a job's capture file when the job has no storage (the xepacketcap
   * listener when there is one: its allow list needs no token), e.g. "http://10.0.0.5:5000".
   */
  setCaptureBase(base: string): void;
  close(): void;
}

interface Identity {
  id: string;
  emails: string[];
  displayName?: string;
}

class WebexApiError extends Error {}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + "\n";
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
  res.end(text);
}

async function readRaw(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_WEBHOOK_BODY) return undefined;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Whether `header` is the hex HMAC-SHA1 of `raw` under `secret`, compared in constant time. */
export function validSparkSignature(raw: Buffer, header: unknown, secret: string): boolean {
  if (typeof header !== "string" || !/^[0-9a-f]{40}$/i.test(header.trim())) return false;
  const want = createHmac("sha1", secret).update(raw).digest();
  return timingSafeEqual(Buffer.from(header.trim(), "hex"), want);
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

export async function createWebexBot(c: WebexConfig, o: WebexBotOptions): Promise<WebexBot> {
  const opts = o.env ? { env: o.env } : {};
  const token = (await resolveSecret(c.token, "webex.token", opts)).value;
  const secret = (await resolveSecret(c.secret, "webex.secret", opts)).value;
  const pollMs = o.pollMs ?? 2000;
  o.log("info", `webex: bot webhook on ${c.path} (Webex API ${c.apiUrl}${c.allowedRooms.length ? `, ${c.allowedRooms.length} allowed rooms` : ""}${c.allowedPersons.length ? `, ${c.allowedPersons.length} allowed persons` : ""})`);
  const watchers = new Set<NodeJS.Timeout>();
  const seen: string[] = [];
  let me: Identity | undefined;
  let captureBase = "";

  const api = async (method: "GET" | "POST", path: string, body?: unknown): Promise<Record<string, unknown>> => {
    let res: Response;
    try {
      res = await fetch(`${c.apiUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: "application/json", ...(body ? { "content-type": "application/json" } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(API_TIMEOUT_MS),
      });
    } catch (e) {
      throw new WebexApiError(`Webex API ${method} ${path.split("/").slice(0, 2).join("/")}: ${(e as Error).message}`);
    }
    const text = await res.text();
    // Only the status and Webex's own message: never a header (the token) or the request.
    if (!res.ok) {
      let why = "";
      try {
        why = String((JSON.parse(text) as { message?: unknown }).message ?? "");
      } catch {
        why = "";
      }
      throw new WebexApiError(`Webex API ${method} ${path.split("/").slice(0, 2).join("/")}: HTTP ${res.status}${why ? ` (${why.slice(0, 200)})` : ""}`);
    }
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new WebexApiError(`Webex API ${method} ${path}: not JSON`);
    }
  };

  const identity = async (): Promise<Identity> => {
    if (!me) {
      const p = await api("GET", "/people/me");
      const id = str(p.id);
      if (!id) throw new WebexApiError("Webex API GET /people/me: no id in the answer");
      me = { id, emails: Array.isArray(p.emails) ? p.emails.filter((e): e is string => typeof e === "string").map((e) => e.toLowerCase()) : [], ...(str(p.displayName) ? { displayName: str(p.displayName)! } : {}) };
    }
    return me;
  };

  const reply = async (roomId: string, markdown: string): Promise<void> => {
    try {
      await api("POST", "/messages", { roomId, markdown });
    } catch (e) {
      o.log("warn", `webex: cannot reply in room ${roomId}: ${(e as Error).message}`);
    }
  };

  /** The bot's last word on a job: success with the capture's URL, or failure. */
  const watch = (jobId: string, roomId: string): void => {
    const timer = setInterval(() => {
      const j = o.store.get(jobId);
      const ended = !j || j.status === "UPLOADED" || j.status === "ERROR" || (j.status === "STOPPED" && j.endedAt !== undefined);
      if (!ended) return;
      clearInterval(timer);
      watchers.delete(timer);
      // The uploaded object's link, or the file serve keeps: the same url /status_json gives.
      const url = j && j.status !== "ERROR" ? statusJsonBody(j, captureBase).url : null;
      void reply(roomId, typeof url === "string" && url ? REPLY.completed(jobId, url) : REPLY.failed(jobId));
    }, pollMs);
    timer.unref();
    watchers.add(timer);
  };

  const allowed = (roomId: string, personId: string | undefined, email: string | undefined): boolean =>
    (!c.allowedRooms.length || c.allowedRooms.includes(roomId)) &&
    (!c.allowedPersons.length || (personId !== undefined && c.allowedPersons.includes(personId)) || (email !== undefined && c.allowedPersons.includes(email.toLowerCase())));

  const handle = async (req: IncomingMessage, res: ServerResponse, startPcapJob: (body: unknown) => Job): Promise<void> => {
    if (req.method !== "POST") {
      req.resume();
      return send(res, 405, { error: `${req.method} not allowed here; Webex POSTs its webhooks` });
    }
    const raw = await readRaw(req);
    if (!raw) return send(res, 413, { error: `webhook body over ${MAX_WEBHOOK_BODY} bytes` });
    if (!validSparkSignature(raw, req.headers["x-spark-signature"], secret)) {
      o.log("warn", `webex: webhook from ${req.socket.remoteAddress ?? "?"} refused: missing or wrong X-Spark-Signature`);
      return send(res, 401, { error: "missing or wrong X-Spark-Signature (HMAC-SHA1 of the body with the webhook secret)" });
    }
    let hook: Record<string, unknown>;
    try {
      hook = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    } catch (e) {
      return send(res, 400, { error: "invalid JSON", issues: [`body: ${(e as Error).message}`] });
    }
    if (typeof hook !== "object" || hook === null) return send(res, 400, { error: "invalid webhook", issues: ["body: expected a JSON object"] });
    if (hook.resource !== "messages" || hook.event !== "created") return send(res, 200, { ignored: `resource ${String(hook.resource)} event ${String(hook.event)}: the bot reads new messages only` });
    const data = (typeof hook.data === "object" && hook.data !== null ? hook.data : {}) as Record<string, unknown>;
    const messageId = str(data.id);
    const roomId = str(data.roomId);
    if (!messageId || !roomId) return send(res, 400, { error: "invalid webhook", issues: [`data.${messageId ? "roomId" : "id"}: required`] });
    const personId = str(data.personId);
    const email = str(data.personEmail);
    let bot: Identity;
    try {
      bot = await identity();
    } catch (e) {
      o.log("warn", `webex: ${(e as Error).message}`);
      return send(res, 502, { error: (e as Error).message });
    }
    if (personId === bot.id || (email !== undefined && bot.emails.includes(email.toLowerCase()))) return send(res, 200, { ignored: "the bot's own message" });
    if (seen.includes(messageId)) return send(res, 200, { ignored: `message ${messageId} was already handled` });
    seen.push(messageId);
    if (seen.length > SEEN_IDS) seen.shift();
    if (!allowed(roomId, personId, email)) {
      o.log("warn", `webex: message from ${email ?? personId ?? "?"} in room ${roomId} ignored: not in webex.allowedRooms/allowedPersons`);
      return send(res, 200, { ignored: "room or person not allowed" });
    }
    let msg: Record<string, unknown>;
    try {
      msg = await api("GET", `/messages/${encodeURIComponent(messageId)}`);
    } catch (e) {
      // Unread, so not handled: a repeated delivery may try again.
      if (seen.includes(messageId)) seen.splice(seen.indexOf(messageId), 1);
      o.log("warn", `webex: ${(e as Error).message}`);
      return send(res, 502, { error: (e as Error).message });
    }
    const cmd = parseWebexCommand(commandText({ ...(str(msg.text) ? { text: str(msg.text)! } : {}), ...(str(msg.html) ? { html: str(msg.html)! } : {}) }, bot));
    o.log("info", `webex: ${cmd.kind} from ${email ?? personId ?? "?"} in room ${roomId}`);
    if (cmd.kind === "help") {
      await reply(roomId, REPLY.help);
      return send(res, 200, { command: "help" });
    }
    if (cmd.kind === "unknown") {
      await reply(roomId, REPLY.unknown);
      return send(res, 200, { command: "unknown" });
    }
    await reply(roomId, REPLY.connecting(cmd.device));
    let job: Job;
    try {
      job = startPcapJob({ iface: cmd.iface, proto: cmd.proto, src: cmd.src, dst: cmd.dst, duration: cmd.duration, device: cmd.device, ...(c.bucket ? { bucket: c.bucket } : {}) });
    } catch (e) {
      const issues = (e as { issues?: unknown }).issues;
      const why = Array.isArray(issues) && issues.length ? issues.join("; ") : (e as Error).message;
      await reply(roomId, REPLY.startError(cmd.device, why));
      return send(res, 200, { command: "capture", error: why });
    }
    await reply(roomId, REPLY.started(job.id, cmd.device));
    watch(job.id, roomId);
    return send(res, 200, { command: "capture", job_id: job.id });
  };

  return {
    path: c.path,
    accepts: (req) => (req.url ?? "").split("?")[0]!.replace(/\/+$/, "") === c.path,
    handle,
    setCaptureBase: (base) => {
      captureBase = base.replace(/\/+$/, "");
    },
    close: () => {
      for (const t of watchers) clearInterval(t);
      watchers.clear();
    },
  };
}
