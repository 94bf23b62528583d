// xepacketcap compatibility mode of `cpe-capture serve`, driven the way pcap-sparkbot drives
// xepacketcap: POST /pcap_json with {iface, proto, src, dst, bucket: "xepacketcap", duration} (its
// regex captures: all strings) and no credentials, POST /status_json {job_id} every 2 s until
// UPLOADED or ERROR, then `url` downloaded. Real listeners (startServe in this process), the IOS-XE
// emulator (127.0.0.151/152) and s3rver. A client bound to 127.0.0.154 is outside the allow list.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { startIosXeDevice, type IosXeDevice } from "@capsync/emulators";
import { loadServeConfig } from "@capsync/cpe-capture/serve/config";
import { startServe, type ServeHandle } from "@capsync/cpe-capture/serve/start";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startS3, S3_KEY, type TestS3 } from "../storage/s3-server.js";

const TOKEN = "xe-compat-token-0123456789abcdef";
const OUTSIDE = "127.0.0.154";
const work = mkdtempSync(join(tmpdir(), "capsync-xecompat-"));
const env = { ...process.env, XC_TOKEN: TOKEN, XC_RTR_PW: "rtr-pw-151", XC_S3_ID: S3_KEY.accessKeyId, XC_S3_SECRET: S3_KEY.secretAccessKey };
let s3: TestS3;
let rtr: IosXeDevice;
let rtr2: IosXeDevice;
let withS3: ServeHandle;
let local: ServeHandle;
const logs: string[] = [];

interface Answer {
  status: number;
  type: string | undefined;
  text: string;
  body: Record<string, unknown>;
  bytes: Buffer;
}

/** request-promise with `json: true`, as the bot sends; `from` binds the client's source address. */
function http(url: string, o: { body?: unknown; from?: string; token?: string; method?: string } = {}): Promise<Answer> {
  const data = o.body === undefined ? undefined : JSON.stringify(o.body);
  const headers: Record<string, string | number> = { accept: "application/json" };
  if (data !== undefined) Object.assign(headers, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? (data === undefined ? "GET" : "POST"), localAddress: o.from ?? "127.0.0.1", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const bytes = Buffer.concat(chunks);
        const text = bytes.toString("utf8");
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = {};
        }
        resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"], text, body, bytes });
      });
    });
    req.on("error", reject);
    req.end(data);
  });
}

/** pcap-sparkbot's pcap_status: every 2 s until UPLOADED or ERROR; every answer kept. */
async function pollLikeTheBot(base: string, jobId: unknown, timeoutMs = 60_000): Promise<Answer[]> {
  const seen: Answer[] = [];
  const until = Date.now() + timeoutMs;
  for (;;) {
    await new Promise((r) => setTimeout(r, 2000));
    const a = await http(`${base}/status_json`, { body: { job_id: jobId } });
    seen.push(a);
    if (a.status !== 200) throw new Error(`status_json answered ${a.status}: ${a.text}`);
    if (["UPLOADED", "ERROR"].includes(String(a.body.status))) return seen;
    if (Date.now() > until) throw new Error(`job ${String(jobId)} stuck: ${a.text}\n${logs.slice(-30).join("\n")}`);
  }
}

function pcapPackets(b: Buffer): number {
  expect(b.readUInt32LE(0)).toBe(0xa1b2c3d4);
  let n = 0;
  for (let off = 24; off + 16 <= b.length; off += 16 + b.readUInt32LE(off + 8)) n++;
  return n;
}

const device = (r: IosXeDevice, extra = "") => `
    - name: ${r.address === "127.0.0.151" ? "rtr1" : "rtr2"}
      address: ${r.address}
      type: iosxe
      interfaces: [GigabitEthernet1]
      username: admin
      password: { env: XC_RTR_PW }
      tls: insecure
      restPort: ${r.restPort}
      sshPort: ${r.sshPort}${extra}`;

beforeAll(async () => {
  s3 = await startS3(["xepacketcap"]);
  rtr = await startIosXeDevice({ address: "127.0.0.151", username: "admin", password: "rtr-pw-151", packetsPerSecond: 100 });
  rtr2 = await startIosXeDevice({ address: "127.0.0.152", username: "admin", password: "rtr-pw-151", packetsPerSecond: 100 });
  writeFileSync(
    join(work, "s3.yaml"),
    `listen: 127.0.0.1:0
tokens: [{ env: XC_TOKEN }]
dataDir: ./data-s3
xepacketcap:
  listen: 127.0.0.1:0
  allow: [127.0.0.1/32]
run:
  retries: 1
  verify: false
  timeouts: { rest: 5s, sftp: 10s }
  storage:
    bucket: xepacketcap
    prefix: runs/
    endpoint: ${s3.endpoint}
    region: us-east-1
    credentials: { accessKeyId: { env: XC_S3_ID }, secretAccessKey: { env: XC_S3_SECRET } }
  devices:${device(rtr)}
`,
  );
  // No tokens at all: only the default allow list (loopback) reaches the xepacketcap paths.
  writeFileSync(
    join(work, "local.yaml"),
    `listen: 127.0.0.1:0
dataDir: ./data-local
xepacketcap: { listen: 127.0.0.1:0 }
run:
  retries: 1
  verify: false
  timeouts: { rest: 5s, sftp: 10s }
  devices:${device(rtr2, "\n      capture: { limits: { buffer: 5MB } }")}
`,
  );
  const log = (level: string, msg: string) => void logs.push(`${level} ${msg}`);
  withS3 = await startServe(join(work, "s3.yaml"), { env, log });
  local = await startServe(join(work, "local.yaml"), { env, log });
});

afterAll(async () => {
  await withS3?.close();
  await local?.close();
  await rtr?.close();
  await rtr2?.close();
  await s3?.close();
  rmSync(work, { recursive: true, force: true });
});

describe("xepacketcap mode", () => {
  test("the bot flow without a token from 127.0.0.1: g1 → circular EPC buffer → UPLOADED → url is the pcap object <epoch ms>.pcap", async () => {
    const base = withS3.xepacketcap!;
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const t0 = Date.now();
    const start = await http(`${base}/pcap_json`, { body: { iface: "g1", proto: "udp", src: "any", dst: "any", bucket: "xepacketcap", duration: "4" } });
    expect(start.status).toBe(200);
    expect(start.type).toBe("application/json");
    expect(start.text).toMatch(/^\{\n {2}"job_id": "\d{6}"\n\}\n$/);
    const jobId = start.body.job_id as string;
    const answers = await pollLikeTheBot(base, jobId);
    const statuses = answers.map((a) => String(a.body.status));
    expect(statuses.every((s) => ["WAITING", "STARTED", "UPLOADING", "UPLOADED"].includes(s))).toBe(true);
    expect(statuses).toContain("STARTED");
    const done = answers.at(-1)!;
    expect(done.type).toBe("application/json");
    expect(Object.keys(done.body)).toEqual(["dst", "duration", "iface", "job_id", "proto", "src", "status", "url"]);
    expect(done.body).toMatchObject({ job_id: Number(jobId), iface: "g1", proto: "udp", src: "any", dst: "any", duration: 4, status: "UPLOADED" });
    // The object: xepacketcap's name, at the bucket's top, the device's export byte for byte.
    const listed = await s3.client().send(new ListObjectsV2Command({ Bucket: "xepacketcap" }));
    const top = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => !k.startsWith("runs/"));
    expect(top).toHaveLength(1);
    expect(top[0]).toMatch(/^\d{13}\.pcap$/);
    expect(Number(top[0]!.slice(0, 13))).toBeGreaterThanOrEqual(t0);
    const url = String(done.body.url);
    expect(url).toContain(`/xepacketcap/${top[0]}`);
    const file = await http(url);
    expect(file.status).toBe(200);
    expect(file.bytes.equals(rtr.lastExport()!.data)).toBe(true);
    expect(pcapPackets(file.bytes)).toBeGreaterThan(100);
    const stored = await s3.client().send(new GetObjectCommand({ Bucket: "xepacketcap", Key: top[0] }));
    expect(Buffer.from(await stored.Body!.transformToByteArray()).equals(file.bytes)).toBe(true);
    // The router got xepacketcap's buffer: circular, 100 MB, both directions on GigabitEthernet1
    // (over RESTCONF the definition is one monitor RPC, the emulator logs it as one line).
    const cmds = rtr.state().commands.filter((c) => c.startsWith("monitor capture"));
    expect(cmds).toHaveLength(4);
    expect(cmds[0]).toMatch(/^monitor capture (CS\w+) interface GigabitEthernet1 both match ipv4 protocol udp any any buffer circular size 100$/);
    const cp = /^monitor capture (CS\w+)/.exec(cmds[0]!)![1]!;
    expect(cmds.slice(1)).toEqual([`monitor capture ${cp} start`, `monitor capture ${cp} stop`, `monitor capture ${cp} export bootflash:${cp}.pcap`]);
  }, 90_000);

  test("from 127.0.0.154, outside allow: 127.0.0.1/32, every xepacketcap path is 401; a token still works from there", async () => {
    const base = withS3.xepacketcap!;
    const req = { iface: "Gi1", proto: "udp", src: "any", dst: "any", bucket: "xepacketcap", duration: "3" };
    const denied = await http(`${base}/pcap_json`, { body: req, from: OUTSIDE });
    expect(denied.status).toBe(401);
    expect(denied.body).toEqual({ error: "missing or wrong token: send Authorization: Bearer <token>" });
    expect((await http(`${base}/status_json`, { body: { job_id: "123456" }, from: OUTSIDE })).status).toBe(401);
    expect((await http(`${base}/captures/123456/1.pcap`, { from: OUTSIDE })).status).toBe(401);
    // Tokenless clients reach the xepacketcap paths only, never the native API.
    expect((await http(`${base}/api/v1/runs`)).status).toBe(401);
    const unknown = await http(`${base}/status_json`, { body: { job_id: "999999" }, from: OUTSIDE, token: TOKEN });
    expect(unknown).toMatchObject({ status: 404, body: { error: "no job 999999" } });
    const bad = await http(`${base}/pcap_json`, { body: { ...req, iface: "wlan0" } });
    expect(bad.status).toBe(400);
    expect((bad.body.issues as string[])[0]).toMatch(/^iface: .*"wlan0"/);
  });

  test("a job without storage ends UPLOADED with a url served by serve; the bytes are the device's file; the configured buffer size is kept", async () => {
    const base = local.xepacketcap!;
    const start = await http(`${base}/pcap_json`, { body: { iface: "GigabitEthernet1", proto: "ip", src: "any", dst: "any", bucket: "xepacketcap", duration: "3" } });
    expect(start.status).toBe(200);
    const done = (await pollLikeTheBot(base, start.body.job_id)).at(-1)!;
    expect(done.body.status).toBe("UPLOADED");
    const url = String(done.body.url);
    expect(url).toMatch(new RegExp(`^${base}/captures/${String(start.body.job_id)}/\\d{13}\\.pcap$`));
    const file = await http(url);
    expect(file.status).toBe(200);
    expect(file.type).toBe("application/vnd.tcpdump.pcap");
    expect(file.bytes.equals(rtr2.lastExport()!.data)).toBe(true);
    expect(pcapPackets(file.bytes)).toBeGreaterThan(50);
    expect((await http(`${base}/captures/${String(start.body.job_id)}/1.pcap`)).status).toBe(404);
    // 5 MB from the device's capture limits, not xepacketcap's 100: configured settings win.
    const cmds = rtr2.state().commands;
    expect(cmds.filter((c) => /^monitor capture CS\w+ interface GigabitEthernet1 both match ipv4 any any buffer circular size 5$/.test(c))).toHaveLength(1);
    expect(cmds.some((c) => /buffer (circular )?size 100/.test(c))).toBe(false);
    // The main listener has no tokens configured: it refuses everything.
    expect((await http(`${local.api}/status_json`, { body: { job_id: start.body.job_id } })).status).toBe(401);
  }, 60_000);

  test("config: tokens are optional only with an allow list; bad allow entries name the field", () => {
    const cfg = (name: string, text: string) => {
      writeFileSync(join(work, name), text);
      return () => loadServeConfig(join(work, name));
    };
    expect(cfg("none.yaml", "listen: 127.0.0.1:0\n")).toThrow(/tokens: required: .*unless xepacketcap\.allow lists the clients that need none/);
    expect(cfg("empty.yaml", "xepacketcap: { allow: [] }\n")).toThrow(/tokens: required/);
    expect(cfg("bad.yaml", "tokens: [{ env: X }]\nxepacketcap: { allow: [127.0.0.0/33, nope], port: 1 }\n")).toThrow(
      /xepacketcap\.port: unknown key 'port'; expected listen, allow\n.*xepacketcap\.allow\[0\]: prefix length of "127\.0\.0\.0\/33" is 0\.\.32\n.*xepacketcap\.allow\[1\]: expected an address or CIDR like 10\.0\.0\.0\/8 or ::1, got 'nope'$/,
    );
    const ok = cfg("ok.yaml", "xepacketcap: true\n")();
    expect(ok.tokens).toEqual([]);
    expect(ok.xepacketcap!.listen).toEqual({ host: "127.0.0.1", port: 5000 });
    expect(ok.xepacketcap!.allow).toEqual(["127.0.0.0/8", "::1/128"]);
    expect(["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.2"].every((a) => ok.xepacketcap!.allows(a))).toBe(true);
    expect(["10.0.0.1", "::2", "::ffff:10.0.0.1", "garbage"].some((a) => ok.xepacketcap!.allows(a))).toBe(false);
  });
});
