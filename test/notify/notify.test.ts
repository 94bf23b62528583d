// Webhooks against a local HTTP receiver started by the test: Webex, Slack-compatible and generic
// JSON payloads, retries, timeouts and dead receivers (never a failed run), and a whole run
// (AudioCodes emulator, syslog alarm, S3 upload) sending started / alarm / collected with the
// device, the stop reason, the loss summary and the storage link.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startAudioCodesDevice, SyslogSender, ovocConnectionLostAlarm } from "@capsync/emulators";
import { parseNotify, type NotifyConfig } from "../../packages/cpe-capture/src/notify/config.js";
import { Notifier, type NotifyDelivery } from "../../packages/cpe-capture/src/notify/notifier.js";
import { configFromObject } from "../../packages/cpe-capture/src/config/loader.js";
import { runConfig } from "../../packages/cpe-capture/src/commands/run.js";
import type { Orchestrator } from "../../packages/cpe-capture/src/run/orchestrator.js";
import { startS3, S3_KEY, type TestS3 } from "../storage/s3-server.js";

interface Hit {
  path: string;
  headers: IncomingMessage["headers"];
  body: Record<string, unknown>;
  at: number;
}

interface Receiver {
  url: string;
  hits: Hit[];
  /** Status to answer, by path (default 200); "hang" never answers. */
  answer: Map<string, (number | "hang")[]>;
  close(): Promise<void>;
}

async function receiver(): Promise<Receiver> {
  const hits: Hit[] = [];
  const answer = new Map<string, (number | "hang")[]>();
  const server: Server = createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString()));
    req.on("end", () => {
      hits.push({ path: req.url ?? "", headers: req.headers, body: JSON.parse(text || "{}") as Record<string, unknown>, at: Date.now() });
      const a = answer.get(req.url ?? "")?.shift() ?? 200;
      if (a === "hang") return;
      res.writeHead(a, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  server.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    answer,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function notifyConfig(raw: unknown): NotifyConfig {
  const r = parseNotify(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.value;
}

let rx: Receiver;
beforeAll(async () => {
  rx = await receiver();
});
afterAll(async () => {
  await rx?.close();
});

describe("Notifier", () => {
  test("Webex, Slack and JSON payloads; bearer token; event filter", async () => {
    const cfg = notifyConfig({
      webhooks: [
        { kind: "webex", url: `${rx.url}/webex`, token: { env: "T_WEBEX" }, roomId: "ROOM1", events: ["alarm"] },
        { kind: "slack", url: { env: "T_SLACK_URL" } },
        { kind: "json", url: `${rx.url}/json`, token: { env: "T_JSON" } },
      ],
    });
    const deliveries: NotifyDelivery[] = [];
    const n = await Notifier.create(cfg, { env: { T_WEBEX: "webex-bot-token", T_SLACK_URL: `${rx.url}/slack/T0/B0/secret`, T_JSON: "json-token" }, onDelivery: (d) => deliveries.push(d) });
    expect(n.secrets).toEqual(expect.arrayContaining(["webex-bot-token", `${rx.url}/slack/T0/B0/secret`, "json-token"]));
    const before = rx.hits.length;
    n.send({ event: "started", runId: "run-1", at: "2026-11-23T10:00:00Z", devices: [{ device: "192.0.2.10", name: "branch-12", type: "msbr" }] });
    n.send({ event: "alarm", runId: "run-1", at: "2026-11-23T10:05:00Z", device: "192.0.2.10", deviceName: "branch-12", stopReason: "alarm", alarm: "New Alarm - Connection Alarm, Description: Connection Lost" });
    await n.flush();
    const hits = rx.hits.slice(before);
    // started: slack + json (webex only wants alarms); alarm: all three.
    expect(hits.map((h) => h.path).sort()).toEqual(["/json", "/json", "/slack/T0/B0/secret", "/slack/T0/B0/secret", "/webex"]);
    const webex = hits.find((h) => h.path === "/webex")!;
    expect(webex.headers.authorization).toBe("Bearer webex-bot-token");
    expect(webex.body.roomId).toBe("ROOM1");
    expect(webex.body.markdown).toContain("**capsync run run-1: alarm for device branch-12 (192.0.2.10)**");
    const slack = hits.filter((h) => h.path.startsWith("/slack")).map((h) => h.body.text as string);
    expect(slack[0]).toMatch(/^\*capsync run run-1 started\*: 1 device\(s\): branch-12 \(192\.0\.2\.10\) msbr$/);
    expect(slack[1]).toContain("alarm: New Alarm - Connection Alarm");
    const json = hits.filter((h) => h.path === "/json");
    expect(json[1]!.headers.authorization).toBe("Bearer json-token");
    expect(json[1]!.body).toMatchObject({ event: "alarm", runId: "run-1", device: "192.0.2.10", stopReason: "alarm" });
    expect(deliveries.every((d) => d.ok && d.attempts === 1)).toBe(true);
  });

  test("5xx is retried; 4xx is not; a hanging or dead receiver times out; send never throws", async () => {
    const cfg = notifyConfig({
      timeout: "300ms",
      retries: 2,
      webhooks: [
        { kind: "json", url: `${rx.url}/flaky` },
        { kind: "json", url: `${rx.url}/denied` },
        { kind: "json", url: `${rx.url}/hang` },
        { kind: "json", url: "http://127.0.0.1:9/dead" },
      ],
    });
    rx.answer.set("/flaky", [503, 500]);
    rx.answer.set("/denied", [401]);
    rx.answer.set("/hang", ["hang", "hang", "hang"]);
    const logs: string[] = [];
    const deliveries: NotifyDelivery[] = [];
    const n = await Notifier.create(cfg, { log: (_l, m) => logs.push(m), onDelivery: (d) => deliveries.push(d) });
    const t0 = Date.now();
    expect(() => n.send({ event: "failed", runId: "run-2", at: new Date().toISOString(), status: "failed" })).not.toThrow();
    await n.flush(10_000);
    expect(Date.now() - t0).toBeLessThan(5000);
    const byPath = (p: string) => rx.hits.filter((h) => h.path === p).length;
    expect(byPath("/flaky")).toBe(3);
    expect(byPath("/denied")).toBe(1);
    expect(byPath("/hang")).toBe(3);
    expect(deliveries.map((d) => [d.ok, d.attempts, d.status ?? d.error?.slice(0, 9)])).toEqual(
      expect.arrayContaining([
        [true, 3, 200],
        [false, 1, 401],
        [false, 3, "timed out"],
      ]),
    );
    expect(deliveries).toHaveLength(4);
    expect(logs.some((l) => /not delivered after 3 attempt\(s\)/.test(l) && l.includes("http://127.0.0.1:9") && !l.includes("/dead"))).toBe(true);
  });

  test("a reference that cannot be resolved disables that webhook only", async () => {
    const cfg = notifyConfig({ webhooks: [{ kind: "slack", url: { env: "T_NOT_SET_ANYWHERE" } }, { kind: "json", url: `${rx.url}/ok` }] });
    const logs: string[] = [];
    const n = await Notifier.create(cfg, { env: {}, log: (_l, m) => logs.push(m) });
    expect(n.size).toBe(1);
    expect(logs[0]).toMatch(/webhook 0 \(slack\) disabled: .*T_NOT_SET_ANYWHERE is not set/);
  });
});

describe("a run with notify: and storage:", () => {
  let s3: TestS3;
  const work = mkdtempSync(join(tmpdir(), "capsync-notify-run-"));
  beforeAll(async () => {
    s3 = await startS3(["capsync-runs"]);
  });
  afterAll(async () => {
    await s3?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test("started, alarm for the device, collected with stop reason, loss summary and the storage link; a dead webhook changes nothing", async () => {
    const device = await startAudioCodesDevice({ type: "msbr", address: "127.0.0.61", username: "Admin", password: "notify-pw-61", capture: { kind: "synthetic", packetsPerSecond: 100 } });
    const env = { ...process.env, T_DEV_PW: "notify-pw-61", T_S3_ID: S3_KEY.accessKeyId, T_S3_SECRET: S3_KEY.secretAccessKey };
    try {
      const { config } = configFromObject(
        {
          output: join(work, "runs"),
          retries: 1,
          verify: false,
          timeouts: { rest: "5s", sftp: "10s" },
          syslog: { listen: "127.0.0.1:0" },
          stop: { duration: "60s" },
          storage: { bucket: "capsync-runs", prefix: "notify/", endpoint: s3.endpoint, region: "us-east-1", credentials: { accessKeyId: { env: "T_S3_ID" }, secretAccessKey: { env: "T_S3_SECRET" } } },
          notify: {
            timeout: "500ms",
            retries: 0,
            webhooks: [
              { kind: "json", url: `${rx.url}/run-json` },
              { kind: "webex", url: `${rx.url}/run-webex` },
              { kind: "slack", url: "http://127.0.0.1:9/nobody-listens" },
            ],
          },
          devices: [{ address: device.address, name: "branch-61", type: "msbr", interfaces: ["eth-wan"], username: "Admin", password: { env: "T_DEV_PW" }, tls: "insecure", restPort: device.restPort, sshPort: device.sshPort }],
        },
        { baseDir: work },
      );
      let orch: Orchestrator | undefined;
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      const run = runConfig(config, { stdout: sink, stderr: sink }, { json: true, env, onStarted: (o) => (orch = o) });
      for (let i = 0; i < 100 && !rx.hits.some((h) => h.path === "/run-json" && h.body.event === "started"); i++) await new Promise((r) => setTimeout(r, 100));
      for (let i = 0; i < 100 && orch?.manifest.devices[0]?.state !== "capturing"; i++) await new Promise((r) => setTimeout(r, 100));
      const udp = orch!.listening.udp!;
      const sender = await SyslogSender.open({ host: udp.address, port: udp.port });
      await sender.send(ovocConnectionLostAlarm({ deviceIp: device.address, deviceName: "branch-61", deviceType: "MSBR" }));
      await sender.close();
      const summary = await run;
      expect(summary.exitCode).toBe(0);
      expect(summary.storageLink).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/capsync-runs\/notify\/run-.*\/index\.html\?X-Amz-/);

      const json = rx.hits.filter((h) => h.path === "/run-json").map((h) => h.body);
      expect(json.map((b) => b.event)).toEqual(["started", "alarm", "collected"]);
      expect(json[1]).toMatchObject({ device: device.address, deviceName: "branch-61", stopReason: "alarm" });
      expect(json[2]).toMatchObject({ status: "done", device: device.address, stopReason: "alarm", storageLink: summary.storageLink });
      expect((json[2]!.devices as { status: string }[])[0]!.status).toBe("collected");
      if (summary.reportLine) expect(json[2]!.loss).toBe(summary.reportLine);
      const webex = rx.hits.filter((h) => h.path === "/run-webex").map((h) => h.body.markdown as string);
      expect(webex[1]).toContain(`alarm for device branch-61 (${device.address})`);
      expect(webex[2]).toContain(`[all captures and reports](${summary.storageLink})`);
      // The storage link works.
      expect((await fetch(summary.storageLink!)).status).toBe(200);
    } finally {
      await device.close();
    }
  });

  test("a requested upload that fails makes the run exit 1 with a clear message, and the notification says failed", async () => {
    const device = await startAudioCodesDevice({ type: "gwsbc", address: "127.0.0.62", username: "Admin", password: "notify-pw-62", capture: { kind: "synthetic", packetsPerSecond: 50 } });
    const env = { ...process.env, T_DEV_PW: "notify-pw-62", T_S3_ID: S3_KEY.accessKeyId, T_S3_SECRET: S3_KEY.secretAccessKey };
    try {
      const { config } = configFromObject(
        {
          output: join(work, "runs"),
          retries: 1,
          verify: false,
          syslog: { listen: "127.0.0.1:0" },
          stop: { duration: "2s" },
          storage: { bucket: "capsync-missing", endpoint: s3.endpoint, region: "us-east-1", retries: 0, credentials: { accessKeyId: { env: "T_S3_ID" }, secretAccessKey: { env: "T_S3_SECRET" } } },
          notify: { webhooks: [{ kind: "json", url: `${rx.url}/run-failed`, events: ["failed", "collected"] }] },
          devices: [{ address: device.address, type: "gwsbc", username: "Admin", password: { env: "T_DEV_PW" }, tls: "insecure", restPort: device.restPort, sshPort: device.sshPort }],
        },
        { baseDir: work },
      );
      let err = "";
      const out = new Writable({ write: (_c, _e, cb) => cb() });
      const errs = new Writable({ write: (c: Buffer, _e, cb) => ((err += c.toString()), cb()) });
      const summary = await runConfig(config, { stdout: out, stderr: errs }, { json: false, quiet: true, env });
      expect(summary.manifest.status).toBe("done");
      expect(summary.exitCode).toBe(1);
      expect(err).toMatch(/cpe-capture: upload failed: .*NoSuchBucket.*; run `cpe-capture upload .*run-.*` to resume it/);
      const hit = rx.hits.filter((h) => h.path === "/run-failed").map((h) => h.body);
      expect(hit).toHaveLength(1);
      expect(hit[0]).toMatchObject({ event: "failed", status: "done", stopReason: "run-duration" });
      expect(String(hit[0]!.storageError)).toContain("NoSuchBucket");
    } finally {
      await device.close();
    }
  });
});
