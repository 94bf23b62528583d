// `cpe-capture serve` as a real process, driven over HTTP: token checks on every endpoint,
// request validation, an xepacketcap job (/pcap_json → /status_json) through its whole lifecycle
// against the IOS-XE emulator and a real S3 API server, concurrent jobs, the native /api/v1/runs
// (create, list, get, stop, artifacts), and a server killed mid-job that picks the job up again.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { request as httpsRequest } from "node:https";
import { sharedTlsCertificate, startIosXeDevice, type IosXeDevice } from "@capsync/emulators";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CPE_CLI } from "../helpers/cli-proc.js";
import { startS3, S3_KEY, type TestS3 } from "../storage/s3-server.js";

const TOKEN = "serve-test-token-0123456789abcdef";
const work = mkdtempSync(join(tmpdir(), "capsync-serve-"));
let s3: TestS3;
let rtr: IosXeDevice;
let server: { child: ChildProcess; base: string; log: () => string } | undefined;
const env = { ...process.env, T_API_TOKEN: TOKEN, T_RTR_PW: "rtr-pw-71", T_S3_ID: S3_KEY.accessKeyId, T_S3_SECRET: S3_KEY.secretAccessKey };

async function startServer(config = "serve.yaml"): Promise<{ child: ChildProcess; base: string; log: () => string }> {
  const child = spawn(process.execPath, [CPE_CLI, "serve", "--config", join(work, config)], { env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  for (let i = 0; i < 200; i++) {
    const m = /listening on (https?:\/\/127\.0\.0\.1:\d+)/.exec(log);
    if (m) return { child, base: m[1]!, log: () => log };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`serve did not start: ${log}`);
}

async function api(path: string, o: { method?: string; body?: unknown; token?: string | null; type?: string; raw?: string } = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (o.token !== null) headers.authorization = `Bearer ${o.token ?? TOKEN}`;
  if (o.body !== undefined || o.raw !== undefined) headers["content-type"] = o.type ?? "application/json";
  const res = await fetch(`${server!.base}${path}`, { method: o.method ?? (o.body !== undefined || o.raw !== undefined ? "POST" : "GET"), headers, ...(o.raw !== undefined ? { body: o.raw } : o.body !== undefined ? { body: JSON.stringify(o.body) } : {}) });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body, headers: res.headers };
}

async function waitFor(id: string, pred: (j: Record<string, unknown>) => boolean, timeoutMs = 30_000, seen?: Set<string>): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await api("/status_json", { body: { job_id: id } });
    seen?.add(String(r.body.status));
    if (pred(r.body)) return r.body;
    if (Date.now() > until) throw new Error(`job ${id} stuck at ${JSON.stringify(r.body)}\n${server?.log().slice(-3000)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

beforeAll(async () => {
  s3 = await startS3(["capsync-serve", "capsync-other"]);
  rtr = await startIosXeDevice({ address: "127.0.0.71", username: "admin", password: "rtr-pw-71", packetsPerSecond: 200 });
  writeFileSync(
    join(work, "serve.yaml"),
    `listen: 127.0.0.1:0
tokens: [{ env: T_API_TOKEN }]
dataDir: ./data
maxConcurrentJobs: 4
run:
  retries: 1
  verify: false
  timeouts: { rest: 5s, sftp: 10s }
  storage:
    bucket: capsync-serve
    prefix: api/
    endpoint: ${s3.endpoint}
    region: us-east-1
    credentials: { accessKeyId: { env: T_S3_ID }, secretAccessKey: { env: T_S3_SECRET } }
  devices:
    - name: rtr1
      address: ${rtr.address}
      type: iosxe
      interfaces: [GigabitEthernet1]
      username: admin
      password: { env: T_RTR_PW }
      tls: insecure
      restPort: ${rtr.restPort}
      sshPort: ${rtr.sshPort}
pcapJson:
  devices: [rtr1]
`,
  );
  server = await startServer();
});

afterAll(async () => {
  server?.child.kill("SIGKILL");
  await rtr?.close();
  await s3?.close();
  rmSync(work, { recursive: true, force: true });
});

describe("cpe-capture serve", () => {
  test("every endpoint wants the token; requests are validated with clear 400s", async () => {
    for (const [path, method] of [["/pcap_json", "POST"], ["/status_json", "POST"], ["/api/v1/runs", "GET"], ["/api/v1/openapi.json", "GET"], ["/nope", "GET"]] as const) {
      const none = await api(path, { method, token: null });
      expect(none.status).toBe(401);
      expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect((await api(path, { method, token: "wrong-token-wrong-token" })).status).toBe(401);
    }
    const viaHeader = await fetch(`${server!.base}/api/v1/openapi.json`, { headers: { "x-auth-token": TOKEN } });
    expect(viaHeader.status).toBe(200);
    expect(((await viaHeader.json()) as { openapi: string }).openapi).toBe("3.1.0");

    expect(await api("/pcap_json", { raw: "{not json" })).toMatchObject({ status: 400, body: { error: "invalid JSON" } });
    const bad = await api("/pcap_json", { body: { iface: "Gi 1", proto: "sctp", src: "10.0.0.0/8", dst: "any", duration: 0, bucket: "Bad_Bucket", colour: 1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.issues).toEqual([
      "colour: unknown field; expected iface, proto, src, dst, duration, bucket, device",
      'iface: expected an interface name like GigabitEthernet1, got "Gi 1"',
      'proto: expected ip, tcp or udp, got "sctp"',
      'src: expected "any" or one IPv4/IPv6 address, got "10.0.0.0/8"',
      "duration: expected whole seconds 1..86400, got 0",
      'bucket: expected an S3 bucket name, got "Bad_Bucket"',
    ]);
    const unknownDevice = await api("/pcap_json", { body: { iface: "GigabitEthernet1", proto: "ip", src: "any", dst: "any", duration: 5, device: "rtr9" } });
    expect(unknownDevice).toMatchObject({ status: 400 });
    expect((unknownDevice.body.issues as string[])[0]).toMatch(/^device: "rtr9" is not a router of this server \(rtr1\)/);
    expect((await api("/status_json", { body: { job_id: "000000" } })).status).toBe(404);
    expect((await api("/status_json", { body: {} })).status).toBe(400);
    const runBad = await api("/api/v1/runs", { raw: "devices:\n  - address: 192.0.2.1\n    type: msb\n", type: "application/yaml" });
    expect(runBad.status).toBe(400);
    expect(runBad.body.issues).toEqual(expect.arrayContaining([expect.stringMatching(/devices\[0\]\.type: expected msbr\|gwsbc\|iosxe\|nxos, got 'msb'/)]));
    const plain = await api("/api/v1/runs", { body: { devices: [{ address: "192.0.2.1", type: "gwsbc", username: "a", password: "hunter2", allowPlain: true }] } });
    expect(plain.status).toBe(400);
    expect(JSON.stringify(plain.body)).not.toContain("hunter2");
    expect((await api("/api/v1/runs", { method: "DELETE" })).status).toBe(405);
  });

  test("/pcap_json → /status_json: WAITING/STARTED → UPLOADED with a working link; two jobs at once", async () => {
    const req = { iface: "GigabitEthernet1", proto: "udp", src: "any", dst: "any", bucket: "capsync-serve", duration: 3 };
    const a = await api("/pcap_json", { body: req });
    const b = await api("/pcap_json", { body: { ...req, proto: "ip", bucket: "capsync-other", duration: "3" } });
    expect(a.status).toBe(200);
    expect(a.body.job_id).toMatch(/^\d{6}$/);
    const seen = new Set<string>();
    const started = await waitFor(String(a.body.job_id), (j) => j.status === "STARTED", 15_000, seen);
    // xepacketcap's status answer: job_id a number (it was a string in /pcap_json's), url null until uploaded.
    expect(started).toMatchObject({ job_id: Number(a.body.job_id), iface: "GigabitEthernet1", proto: "udp", src: "any", dst: "any", duration: 3, url: null });
    // Concurrent: the second job captures while the first does.
    const bNow = await api("/status_json", { body: { job_id: b.body.job_id } });
    expect(["WAITING", "STARTED"]).toContain(bNow.body.status);
    const done = await waitFor(String(a.body.job_id), (j) => j.status === "UPLOADED" || j.status === "ERROR", 30_000, seen);
    expect(done.status).toBe("UPLOADED");
    expect([...seen]).toEqual(expect.arrayContaining(["STARTED", "UPLOADED"]));
    // url is the capture file itself: one object <epoch ms>.pcap at the top of the job's bucket.
    expect(String(done.url)).toMatch(/\/capsync-serve\/\d{13}\.pcap\?/);
    const link = await fetch(String(done.url));
    expect(link.status).toBe(200);
    expect(Buffer.from(await link.arrayBuffer()).readUInt32LE(0)).toBe(0xa1b2c3d4);
    const other = await waitFor(String(b.body.job_id), (j) => j.status === "UPLOADED" || j.status === "ERROR");
    expect(other.status).toBe("UPLOADED");
    expect(String(other.url)).toMatch(/\/capsync-other\/\d{13}\.pcap\?/);
    const list = await s3.client().send(new ListObjectsV2Command({ Bucket: "capsync-serve", Prefix: "api/" }));
    expect((list.Contents ?? []).some((o) => /CPE_device_127\.0\.0\.71_.*\.pcap$/.test(o.Key!))).toBe(true);
    // The native view of the same job.
    const native = await api(`/api/v1/runs/${String(a.body.job_id)}`);
    expect(native.body).toMatchObject({ id: a.body.job_id, kind: "pcap_json", status: "UPLOADED", runStatus: "done" });
    expect(native.body).not.toHaveProperty("config");
  }, 60_000);

  test("/api/v1/runs: create from YAML, list, get, stop, artifacts; API latency", async () => {
    const yaml = `stop: { duration: 10m }
devices:
  - name: rtr1-native
    address: ${rtr.address}
    type: iosxe
    interfaces: [GigabitEthernet2]
    username: admin
    password: { env: T_RTR_PW }
    tls: insecure
    restPort: ${rtr.restPort}
    sshPort: ${rtr.sshPort}
`;
    const created = await api("/api/v1/runs", { raw: yaml, type: "application/yaml" });
    expect(created.status).toBe(201);
    expect(created.headers.get("location")).toBe(`/api/v1/runs/${String(created.body.id)}`);
    const id = String(created.body.id);
    await waitFor(id, (j) => j.status === "STARTED", 15_000);
    const list = await api("/api/v1/runs");
    expect((list.body.runs as { id: string }[]).map((r) => r.id)).toContain(id);

    // Latency of the API itself while jobs exist (loopback, sequential requests).
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await api(i % 2 ? `/api/v1/runs/${id}` : "/status_json", i % 2 ? {} : { body: { job_id: id } });
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(2);
    console.log(`serve API latency (200 sequential GET /api/v1/runs/{id} + POST /status_json, loopback): p50 ${p(0.5)} ms, p90 ${p(0.9)} ms, p99 ${p(0.99)} ms, max ${times.at(-1)!.toFixed(2)} ms`);
    expect(Number(p(0.5))).toBeLessThan(50);

    const stop = await api(`/api/v1/runs/${id}/stop`, { method: "POST" });
    expect(stop.status).toBe(202);
    const done = await waitFor(id, (j) => j.status === "UPLOADED" || j.status === "ERROR", 30_000);
    expect(done.status).toBe("UPLOADED");
    const got = await api(`/api/v1/runs/${id}`);
    expect(got.body).toMatchObject({ status: "UPLOADED", stopRequested: true, runStatus: "done" });
    expect((got.body.devices as { stopReason: string }[])[0]!.stopReason).toBe("manual");
    const arts = await api(`/api/v1/runs/${id}/artifacts`);
    const names = (arts.body.artifacts as { name: string; bytes: number }[]).map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(["manifest.json", "journal.jsonl", "storage.json", "index.html"]));
    const pcap = names.find((n) => /^CPE_device_.*\.pcap$/.test(n))!;
    const file = await fetch(`${server!.base}/api/v1/runs/${id}/artifacts/${encodeURIComponent(pcap)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(file.status).toBe(200);
    const bytes = Buffer.from(await file.arrayBuffer());
    expect(bytes.readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect((await api(`/api/v1/runs/${id}/artifacts/..%2Fjobs.json`)).status).toBe(404);
  }, 60_000);

  test("a server killed in the middle of a job picks it up after the restart", async () => {
    const r = await api("/pcap_json", { body: { iface: "GigabitEthernet1", proto: "udp", src: "any", dst: "any", bucket: "capsync-serve", duration: 6 } });
    const id = String(r.body.job_id);
    await waitFor(id, (j) => j.status === "STARTED", 15_000);
    // Killed while the router captures (GET /api/v1/runs/{id} shows the devices live).
    for (let i = 0; i < 150; i++) {
      const live = await api(`/api/v1/runs/${id}`);
      if ((live.body.devices as { state?: string }[] | undefined)?.[0]?.state === "capturing") break;
      await new Promise((res) => setTimeout(res, 100));
    }
    server!.child.kill("SIGKILL");
    await new Promise((res) => server!.child.once("exit", res));
    const jobs = JSON.parse(readFileSync(join(work, "data", "jobs.json"), "utf8")) as { jobs: { id: string; status: string }[] };
    expect(jobs.jobs.find((j) => j.id === id)!.status).toBe("STARTED");
    server = await startServer();
    const done = await waitFor(id, (j) => j.status === "UPLOADED" || j.status === "ERROR", 40_000);
    if (done.status !== "UPLOADED") console.log(JSON.stringify(done), server.log().slice(-4000));
    expect(done.status).toBe("UPLOADED");
    const native = await api(`/api/v1/runs/${id}`);
    expect(native.body).toMatchObject({ resumed: 1, runStatus: "done" });
    expect(server.log()).toMatch(new RegExp(`job ${id}: resuming run run-`));
    expect((await fetch(String(done.url))).status).toBe(200);
  }, 90_000);

  test("TLS: https with the configured certificate, the same token rules; a bad serve config is exit 2", async () => {
    const tls = await sharedTlsCertificate();
    writeFileSync(join(work, "tls.key"), tls.key, { mode: 0o600 });
    writeFileSync(join(work, "tls.crt"), tls.cert);
    writeFileSync(join(work, "serve-tls.yaml"), `listen: 127.0.0.1:0\ntls: { cert: tls.crt, key: tls.key }\ntokens: [{ env: T_API_TOKEN }]\ndataDir: ./data-tls\n`);
    const secure = await startServer("serve-tls.yaml");
    try {
      expect(secure.base).toMatch(/^https:/);
      const get = (token?: string) =>
        new Promise<number>((resolve, reject) => {
          const req = httpsRequest(`${secure.base}/api/v1/runs`, { ca: tls.cert, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on("error", reject);
          req.end();
        });
      expect(await get(TOKEN)).toBe(200);
      expect(await get()).toBe(401);
    } finally {
      secure.child.kill("SIGTERM");
      await new Promise((res) => secure.child.once("exit", res));
    }
    expect(secure.child.exitCode).toBe(0);
    writeFileSync(join(work, "serve-bad.yaml"), "listen: 127.0.0.1:99999\ntokens: T_API_TOKEN\ncolour: blue\n");
    const bad = spawn(process.execPath, [CPE_CLI, "serve", "--config", join(work, "serve-bad.yaml")], { env, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    bad.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((res) => bad.once("exit", res));
    expect(code).toBe(2);
    expect(err).toContain("colour: unknown key 'colour'");
    expect(err).toContain("listen: port must be 0..65535, got 99999");
    expect(err).toContain("tokens: expected { env: NAME } or { file: PATH } (never the secret itself), got a string");
  });
});
