// An emulated Webex messages API on loopback, for the bot of `cpe-capture serve`: GET /v1/people/me
// (the bot), GET /v1/messages/{id} (the text a webhook does not carry), POST /v1/messages (recorded:
// what the bot said, to which room), each wanting the bot's bearer token (401 otherwise, with
// Webex's error body); and the other direction: a webhook POSTed to a URL and signed the way Webex
// signs it (X-Spark-Signature: hex HMAC-SHA1 of the body with the webhook secret).
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface WebexPerson {
  id: string;
  emails: string[];
  displayName: string;
}

export interface WebexMessage {
  id: string;
  roomId: string;
  roomType: "direct" | "group";
  personId: string;
  personEmail: string;
  text?: string;
  markdown?: string;
  html?: string;
  created: string;
}

export interface WebexApiOptions {
  /** The bot's access token: every request must carry `Authorization: Bearer <token>`. */
  token: string;
  bot?: Partial<WebexPerson>;
  host?: string;
  port?: number;
}

export interface WebexApi {
  /** e.g. http://127.0.0.1:40123/v1 (serve.yaml's webex.apiUrl). */
  apiUrl: string;
  bot: WebexPerson;
  /** Every message the bot POSTed, in order. */
  posted: WebexMessage[];
  /** Requests refused for a missing or wrong token. */
  unauthorised: number;
  /** A message a person wrote (readable through GET /v1/messages/{id}); returns it with its id. */
  addMessage(m: { roomId: string; personId: string; personEmail: string; text: string; html?: string; roomType?: "direct" | "group" }): WebexMessage;
  /** Waits until the bot has posted a message matching `pred` (polls the record). */
  waitForPosted(pred: (m: WebexMessage) => boolean, timeoutMs?: number): Promise<WebexMessage>;
  close(): Promise<void>;
}

const id = (kind: string) => Buffer.from(`ciscospark://us/${kind}/${randomBytes(12).toString("hex")}`).toString("base64").replace(/=+$/, "");

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json;charset=UTF-8", "content-length": Buffer.byteLength(text), trackingid: `EMU_${randomBytes(6).toString("hex")}` });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  let s = "";
  for await (const c of req) {
    s += (c as Buffer).toString("utf8");
    if (s.length > 1 << 20) throw new Error("body too large");
  }
  return s;
}

export async function startWebexApi(o: WebexApiOptions): Promise<WebexApi> {
  const bot: WebexPerson = { id: o.bot?.id ?? id("PEOPLE"), emails: o.bot?.emails ?? ["capsync@webex.bot"], displayName: o.bot?.displayName ?? "capsync" };
  const messages = new Map<string, WebexMessage>();
  const posted: WebexMessage[] = [];
  const want = Buffer.from(`Bearer ${o.token}`);
  const state = { unauthorised: 0 };
  const authorised = (req: IncomingMessage) => {
    const got = Buffer.from(req.headers.authorization ?? "");
    return got.length === want.length && timingSafeEqual(got, want);
  };
  const error = (res: ServerResponse, status: number, message: string) => sendJson(res, status, { message, errors: [{ description: message }], trackingId: `EMU_${randomBytes(6).toString("hex")}` });

  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? "/").split("?")[0]!;
      if (!authorised(req)) {
        req.resume();
        state.unauthorised++;
        return error(res, 401, "The request requires a valid access token set in the Authorization request header.");
      }
      if (path === "/v1/people/me" && req.method === "GET") return sendJson(res, 200, { ...bot, type: "bot", created: "2026-01-01T00:00:00.000Z" });
      const m = /^\/v1\/messages\/([^/]+)$/.exec(path);
      if (m && req.method === "GET") {
        const msg = messages.get(decodeURIComponent(m[1]!));
        return msg ? sendJson(res, 200, msg) : error(res, 404, "The requested resource could not be found.");
      }
      if (path === "/v1/messages" && req.method === "POST") {
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(await readBody(req)) as Record<string, unknown>;
        } catch {
          return error(res, 400, "Unable to parse the request body as JSON.");
        }
        if (typeof body.roomId !== "string" || !body.roomId) return error(res, 400, "roomId, toPersonId or toPersonEmail is required.");
        if (typeof body.text !== "string" && typeof body.markdown !== "string") return error(res, 400, "text, markdown, files or attachments is required.");
        const msg: WebexMessage = {
          id: id("MESSAGE"),
          roomId: body.roomId,
          roomType: "group",
          personId: bot.id,
          personEmail: bot.emails[0]!,
          ...(typeof body.text === "string" ? { text: body.text } : { text: String(body.markdown).replace(/\*\*/g, "") }),
          ...(typeof body.markdown === "string" ? { markdown: body.markdown } : {}),
          created: new Date().toISOString(),
        };
        messages.set(msg.id, msg);
        posted.push(msg);
        return sendJson(res, 200, msg);
      }
      req.resume();
      return error(res, 404, "The requested resource could not be found.");
    })().catch(() => error(res, 500, "emulator error"));
  });
  server.listen(o.port ?? 0, o.host ?? "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const a = server.address() as AddressInfo;
  return {
    apiUrl: `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}/v1`,
    bot,
    posted,
    get unauthorised() {
      return state.unauthorised;
    },
    addMessage(m) {
      const msg: WebexMessage = { id: id("MESSAGE"), roomType: m.roomType ?? "group", roomId: m.roomId, personId: m.personId, personEmail: m.personEmail, text: m.text, ...(m.html ? { html: m.html } : {}), created: new Date().toISOString() };
      messages.set(msg.id, msg);
      return msg;
    },
    async waitForPosted(pred, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = posted.find(pred);
        if (hit) return hit;
        if (Date.now() > until) throw new Error(`the bot posted nothing matching within ${timeoutMs} ms; posted: ${JSON.stringify(posted.map((p) => p.markdown ?? p.text))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The body Webex POSTs to a webhook's targetUrl when a message is created (it carries no text). */
export function messageCreatedWebhook(msg: Pick<WebexMessage, "id" | "roomId" | "roomType" | "personId" | "personEmail" | "created">, hook: { id?: string; name?: string } = {}): Record<string, unknown> {
  return {
    id: hook.id ?? id("WEBHOOK"),
    name: hook.name ?? "capsync bot messages",
    targetUrl: "https://example.invalid/webex/webhook",
    resource: "messages",
    event: "created",
    orgId: id("ORGANIZATION"),
    createdBy: msg.personId,
    appId: id("APPLICATION"),
    ownedBy: "creator",
    status: "active",
    created: msg.created,
    actorId: msg.personId,
    data: { id: msg.id, roomId: msg.roomId, roomType: msg.roomType, personId: msg.personId, personEmail: msg.personEmail, created: msg.created },
  };
}

/** Webex's X-Spark-Signature of a raw body: hex HMAC-SHA1 with the webhook secret. */
export function sparkSignature(raw: string | Buffer, secret: string): string {
  return createHmac("sha1", secret).update(raw).digest("hex");
}

/**
 * POSTs `body` to a webhook URL as Webex does: JSON, signed with `secret`. `signature` replaces the
 * header (a wrong one), `null` leaves it out.
 */
export async function sendWebhook(url: string, body: unknown, secret: string, o: { signature?: string | null } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const raw = JSON.stringify(body);
  const sig = o.signature === undefined ? sparkSignature(raw, secret) : o.signature;
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", "user-agent": "Webex-Webhooks", ...(sig !== null ? { "x-spark-signature": sig } : {}) }, body: raw });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed };
}
