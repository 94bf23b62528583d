import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { messageCreatedWebhook, sendWebhook, sparkSignature, startWebexApi, type WebexApi } from "./index.js";

const TOKEN = "emu-bot-token-0123456789";
let api: WebexApi;

beforeAll(async () => {
  api = await startWebexApi({ token: TOKEN, bot: { displayName: "capbot" } });
});
afterAll(async () => {
  await api?.close();
});

const call = async (path: string, o: { method?: string; token?: string | null; body?: unknown } = {}) => {
  const res = await fetch(`${api.apiUrl}${path}`, {
    method: o.method ?? (o.body ? "POST" : "GET"),
    headers: { ...(o.token === null ? {} : { authorization: `Bearer ${o.token ?? TOKEN}` }), ...(o.body ? { "content-type": "application/json" } : {}) },
    ...(o.body ? { body: JSON.stringify(o.body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe("Webex API emulator", () => {
  test("bearer token on every endpoint: none or wrong → 401 with Webex's message", async () => {
    for (const token of [null, "wrong-token-0123456789", `${TOKEN}x`]) {
      const r = await call("/people/me", { token });
      expect(r.status).toBe(401);
      expect(r.body.message).toBe("The request requires a valid access token set in the Authorization request header.");
    }
    expect((await call("/messages", { token: null, body: { roomId: "r", text: "x" } })).status).toBe(401);
    expect(api.unauthorised).toBe(4);
    expect(api.posted).toHaveLength(0);
  });

  test("people/me, a person's message by id, the bot's POSTs recorded", async () => {
    expect((await call("/people/me")).body).toMatchObject({ id: api.bot.id, displayName: "capbot", emails: ["capsync@webex.bot"], type: "bot" });
    const m = api.addMessage({ roomId: "ROOM1", personId: "P1", personEmail: "neteng@example.com", text: "help" });
    expect((await call(`/messages/${m.id}`)).body).toMatchObject({ id: m.id, roomId: "ROOM1", personEmail: "neteng@example.com", text: "help" });
    expect((await call("/messages/nope")).status).toBe(404);
    expect((await call("/messages", { body: { text: "no room" } })).status).toBe(400);
    expect((await call("/messages", { body: { roomId: "ROOM1" } })).status).toBe(400);
    const p = await call("/messages", { body: { roomId: "ROOM1", markdown: "**Job 1** done" } });
    expect(p.status).toBe(200);
    expect(api.posted).toHaveLength(1);
    expect(api.posted[0]).toMatchObject({ roomId: "ROOM1", markdown: "**Job 1** done", text: "Job 1 done", personId: api.bot.id });
    expect((await api.waitForPosted((x) => x.markdown === "**Job 1** done")).id).toBe(p.body.id);
    // The bot's own message is readable too (a webhook for it arrives like any other).
    expect((await call(`/messages/${String(p.body.id)}`)).body.personId).toBe(api.bot.id);
  });

  test("sendWebhook signs the exact body bytes with HMAC-SHA1 (hex), or sends a wrong or no signature", async () => {
    // Golden: `printf '%s' '{"resource":"messages","event":"created"}' | openssl dgst -sha1 -hmac somesupersecretphrase`
    expect(sparkSignature('{"resource":"messages","event":"created"}', "somesupersecretphrase")).toBe("220f639ec8b97ef3a15353fde15b66c6f8d4faaa");
    const got: { sig: string | undefined; body: string }[] = [];
    const sink = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        got.push({ sig: req.headers["x-spark-signature"] as string | undefined, body });
        res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/hook`;
    const msg = api.addMessage({ roomId: "ROOM2", personId: "P2", personEmail: "b@example.com", text: "x" });
    const hook = messageCreatedWebhook(msg);
    expect(hook).toMatchObject({ resource: "messages", event: "created", data: { id: msg.id, roomId: "ROOM2", personId: "P2", personEmail: "b@example.com" } });
    expect(hook.data).not.toHaveProperty("text");
    expect(await sendWebhook(url, hook, "s3cret")).toEqual({ status: 200, body: { ok: true } });
    await sendWebhook(url, hook, "s3cret", { signature: "0".repeat(40) });
    await sendWebhook(url, hook, "s3cret", { signature: null });
    sink.close();
    expect(got[0]!.body).toBe(JSON.stringify(hook));
    expect(got[0]!.sig).toBe(sparkSignature(got[0]!.body, "s3cret"));
    expect(got[1]!.sig).toBe("0".repeat(40));
    expect(got[2]!.sig).toBeUndefined();
  });
});
