// The Webex bot of `cpe-capture serve` as a real process: webhooks signed like Webex signs them,
// sent from the Webex API emulator's helper; the bot reads each message through the emulated API,
// captures on the IOS-XE emulator the way a /pcap_json job does, and its replies (pcap-sparkbot's
// texts) are what the emulator recorded. The capture URL it posts is downloaded and compared with
// the device's pcap of the job's run.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { messageCreatedWebhook, sendWebhook, startIosXeDevice, startWebexApi, type IosXeDevice, type WebexApi, type WebexMessage } from "@capsync/emulators";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CPE_CLI } from "../helpers/cli-proc.js";

const TOKEN = "webex-test-api-token-0123456789ab";
const BOT_TOKEN = "NjM0Y2Webex-bot-token-7f3a9c2e51d04b";
const SECRET = "webhook-secret-5e1d9a77c3";
const RTR = "127.0.0.152";
const ROOM = "Y2lzY29zcGFyazovL3VzL1JPT00vbmV0ZW5n";
const USER = { personId: "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9uZXRlbmc", personEmail: "neteng@example.com" };
const work = mkdtempSync(join(tmpdir(), "capsync-webex-"));
const env = { ...process.env, T_API_TOKEN: TOKEN, T_RTR_PW: "rtr-pw-152", T_WEBEX_TOKEN: BOT_TOKEN, T_WEBEX_SECRET: SECRET };
let webex: WebexApi;
let rtr: IosXeDevice;
let serve: { child: ChildProcess; base: string; compat: string; log: () => string } | undefined;

async function startServe(): Promise<NonNullable<typeof serve>> {
  const child = spawn(process.execPath, [CPE_CLI, "serve", "--config", join(work, "serve.yaml")], { env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  for (let i = 0; i < 200; i++) {
    const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
    const c = /xepacketcap mode on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
    if (m && c) return { child, base: m[1]!, compat: c[1]!, log: () => log };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`serve did not start: ${log}`);
}

/** A person writes `text` in the room; Webex notifies the bot's webhook. */
async function say(text: string, o: { from?: typeof USER; signature?: string | null; html?: string } = {}) {
  const msg = webex.addMessage({ roomId: ROOM, ...(o.from ?? USER), text, ...(o.html ? { html: o.html } : {}) });
  const hook = messageCreatedWebhook(msg);
  return { msg, ...(await sendWebhook(`${serve!.base}/webex/webhook`, hook, SECRET, o.signature === undefined ? {} : { signature: o.signature })) };
}

const jobs = async (): Promise<string[]> => {
  const r = await fetch(`${serve!.base}/api/v1/runs`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return ((await r.json()) as { runs: { id: string }[] }).runs.map((j) => j.id);
};
/** serve's log reaches this process through a pipe, possibly after the HTTP answer. */
async function logged(text: string): Promise<string> {
  for (let i = 0; i < 100 && !serve!.log().includes(text); i++) await new Promise((r) => setTimeout(r, 20));
  return serve!.log();
}
const texts = (from = 0) => webex.posted.slice(from).map((m) => m.markdown ?? m.text);

beforeAll(async () => {
  webex = await startWebexApi({ token: BOT_TOKEN, bot: { displayName: "capbot", emails: ["capbot@webex.bot"] } });
  rtr = await startIosXeDevice({ address: RTR, username: "admin", password: "rtr-pw-152", packetsPerSecond: 200 });
  writeFileSync(
    join(work, "serve.yaml"),
    `listen: 127.0.0.1:0
tokens: [{ env: T_API_TOKEN }]
dataDir: ./data
xepacketcap: { listen: 127.0.0.1:0 }
webex:
  token: { env: T_WEBEX_TOKEN }
  secret: { env: T_WEBEX_SECRET }
  apiUrl: ${webex.apiUrl}
  allowedPersons: [NetEng@example.com]
run:
  retries: 1
  verify: false
  timeouts: { rest: 5s, sftp: 10s }
  devices:
    - name: rtr1
      address: ${RTR}
      type: iosxe
      interfaces: [GigabitEthernet1]
      username: admin
      password: { env: T_RTR_PW }
      tls: insecure
      restPort: ${rtr.restPort}
      sshPort: ${rtr.sshPort}
`,
  );
  serve = await startServe();
});

afterAll(async () => {
  serve?.child.kill("SIGKILL");
  await rtr?.close();
  await webex?.close();
  rmSync(work, { recursive: true, force: true });
});

describe("cpe-capture serve: the Webex bot (pcap-sparkbot's commands)", () => {
  test("a bad or missing X-Spark-Signature → 401, no job, nothing read or posted", async () => {
    const before = await jobs();
    const cmd = `capture device ${RTR} interface Gi1 proto ip src any dst any duration 3`;
    const wrong = await say(cmd, { signature: "0123456789abcdef0123456789abcdef01234567" });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe("missing or wrong X-Spark-Signature (HMAC-SHA1 of the body with the webhook secret)");
    expect((await say(cmd, { signature: null })).status).toBe(401);
    // Signed with another secret: as wrong as none.
    const other = webexHookSignedWith("not-the-secret", cmd);
    expect((await other).status).toBe(401);
    // The webhook needs no API token, and an API token does not replace the signature.
    const withToken = await fetch(`${serve!.base}/webex/webhook`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: "{}" });
    expect(withToken.status).toBe(401);
    expect(await jobs()).toEqual(before);
    expect(webex.posted).toHaveLength(0);
    expect(await logged("webex: webhook from 127.0.0.1 refused")).toContain("webex: webhook from 127.0.0.1 refused: missing or wrong X-Spark-Signature");
  });

  test("capture device … duration 3 → Started capture job N on device X → Job N completed successfully.  Capture is at <url>: the device's pcap", async () => {
    const from = webex.posted.length;
    const r = await say(`capture device ${RTR} interface Gi1 proto ip src any dst any duration 3`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ command: "capture", job_id: expect.stringMatching(/^\d{6}$/) });
    const id = String(r.body.job_id);
    expect(texts(from)).toEqual([`Connecting to device ${RTR}`, `Started capture job ${id} on device ${RTR}`]);
    expect(webex.posted.slice(from).every((m) => m.roomId === ROOM)).toBe(true);
    expect(await jobs()).toContain(id);

    const done: WebexMessage = await webex.waitForPosted((m) => (m.markdown ?? "").startsWith(`Job ${id} `), 45_000);
    const m = /^Job (\d+) completed successfully\. {2}Capture is at (\S+)$/.exec(done.markdown ?? "");
    expect(m, `${done.markdown}\n${serve!.log().slice(-3000)}`).not.toBeNull();
    expect(m![1]).toBe(id);
    const url = m![2]!;
    // No storage configured: serve keeps the file and links it on the xepacketcap listener (no token from loopback).
    expect(url.startsWith(`${serve!.compat}/captures/${id}/`)).toBe(true);
    const got = await fetch(url);
    expect(got.status).toBe(200);
    const pcap = Buffer.from(await got.arrayBuffer());
    expect(pcap.readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect(pcap.length).toBeGreaterThan(24 + 16);
    // The very bytes of the device's capture in the job's run folder.
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
    const arts = (await (await fetch(`${serve!.base}/api/v1/runs/${id}/artifacts`, auth)).json()) as { artifacts: { name: string }[] };
    const devFile = arts.artifacts.map((a) => a.name).find((n) => /^CPE_device_127\.0\.0\.152_.*\.pcap$/.test(n));
    expect(devFile, JSON.stringify(arts)).toBeDefined();
    const dev = Buffer.from(await (await fetch(`${serve!.base}/api/v1/runs/${id}/artifacts/${devFile!}`, auth)).arrayBuffer());
    expect(pcap.equals(dev)).toBe(true);
    expect(texts(from)).toHaveLength(3);
  }, 90_000);

  test("a capture that fails on the router → Started capture job N → Job N failed.", async () => {
    const from = webex.posted.length;
    const r = await say(`capture device rtr1 interface GigabitEthernet9 proto udp src any dst any duration 2`);
    const id = String(r.body.job_id);
    expect(texts(from)).toEqual(["Connecting to device rtr1", `Started capture job ${id} on device rtr1`]);
    await webex.waitForPosted((m) => (m.markdown ?? "").startsWith(`Job ${id} `), 45_000);
    expect(texts(from)[2]).toBe(`Job ${id} failed.`);
    const st = (await (await fetch(`${serve!.compat}/status_json`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ job_id: id }) })).json()) as { status: string };
    expect(st.status).toBe("ERROR");
  }, 60_000);

  test("help → the bot's help text; anything else → its apology; a bad value → its start error, no job", async () => {
    const from = webex.posted.length;
    const before = await jobs();
    expect((await say("help")).body).toEqual({ command: "help" });
    // In a group room the mention of the bot leads the message.
    const bot = webex.bot;
    expect((await say("capbot help", { html: `<p><spark-mention data-object-type="person" data-object-id="${bot.id}">capbot</spark-mention> help</p>` })).body).toEqual({ command: "help" });
    expect((await say("please capture something")).body).toEqual({ command: "unknown" });
    const bad = await say(`capture device ${RTR} interface Gi1 proto sctp src any dst any duration 3`);
    expect(bad.body).toMatchObject({ command: "capture" });
    const unknownRouter = await say("capture device 192.0.2.99 interface Gi1 proto ip src any dst any duration 3");
    expect(unknownRouter.body).toMatchObject({ command: "capture" });
    const got = texts(from);
    expect(got.slice(0, 3)).toEqual([
      expect.stringMatching(/^Hello! {2}I am a bot that can assist with launching packet captures on Cisco IOS-XE devices\. {2}/),
      got[0],
      "I'm sorry, I did not understand your request.  Try asking me for help using the **help** command.",
    ]);
    expect(got[0]).toContain("**capture device** [device] **interface** [interface] **proto** [ip|tcp|udp] **src** [src] **dst** [dst] **duration** [duration]");
    expect(got.slice(3)).toEqual([
      `Connecting to device ${RTR}`,
      `Error starting capture on device ${RTR}: proto: expected ip, tcp or udp, got "sctp"`,
      "Connecting to device 192.0.2.99",
      expect.stringMatching(/^Error starting capture on device 192\.0\.2\.99: device: "192\.0\.2\.99" is not a router of this server \(rtr1\)/),
    ]);
    expect(await jobs()).toEqual(before);
  });

  test("ignored: the bot's own message, a repeated delivery, a person not allowed; secrets never in the log", async () => {
    const before = await jobs();
    const from = webex.posted.length;
    await say("help");
    const own = webex.posted.at(-1)!;
    expect(own.personId).toBe(webex.bot.id);
    const echo = await sendWebhook(`${serve!.base}/webex/webhook`, messageCreatedWebhook(own), SECRET);
    expect(echo).toEqual({ status: 200, body: { ignored: "the bot's own message" } });
    const first = await say("help");
    const again = await sendWebhook(`${serve!.base}/webex/webhook`, messageCreatedWebhook(first.msg), SECRET);
    expect(again.body).toEqual({ ignored: `message ${first.msg.id} was already handled` });
    const stranger = await say(`capture device ${RTR} interface Gi1 proto ip src any dst any duration 3`, { from: { personId: "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9vdGhlcg", personEmail: "intruder@example.org" } });
    expect(stranger.body).toEqual({ ignored: "room or person not allowed" });
    expect(texts(from)).toHaveLength(2);
    expect(await jobs()).toEqual(before);
    expect(webex.unauthorised).toBe(0);
    const log = await logged("webex: message from intruder@example.org in room");
    expect(log).toContain("webex: message from intruder@example.org in room");
    for (const s of [BOT_TOKEN, SECRET, TOKEN]) expect(log).not.toContain(s);
  });
});

/** A webhook for a fresh message, signed with `secret` instead of the bot's. */
async function webexHookSignedWith(secret: string, text: string) {
  const msg = webex.addMessage({ roomId: ROOM, ...USER, text });
  return sendWebhook(`${serve!.base}/webex/webhook`, messageCreatedWebhook(msg), secret);
}
