// Uploading run folders to a real S3 API server (s3rver on loopback, behind a counting and
// fault-injecting proxy): listing and content hashes, multipart, presigned links, retries,
// an interrupted upload resumed from the journal, and local deletion only after verification.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseStorage, type StorageConfig } from "../../packages/cpe-capture/src/storage/config.js";
import { uploadRunFolder } from "../../packages/cpe-capture/src/storage/index.js";
import { Journal } from "../../packages/cpe-capture/src/artifacts/journal.js";
import { startS3, S3_KEY, type TestS3 } from "./s3-server.js";
import { runCli } from "../helpers/cli-proc.js";

const ENV = { ...process.env, T_S3_ID: S3_KEY.accessKeyId, T_S3_SECRET: S3_KEY.secretAccessKey };
const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

let s3: TestS3;
const work = mkdtempSync(join(tmpdir(), "capsync-upload-"));

function storage(extra: Record<string, unknown> = {}): StorageConfig {
  const r = parseStorage({
    bucket: "capsync-test",
    prefix: "lab/",
    endpoint: s3.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: { env: "T_S3_ID" }, secretAccessKey: { env: "T_S3_SECRET" } },
    partSize: "5MB",
    concurrency: 2,
    retries: 3,
    ...extra,
  });
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.value;
}

/** A run folder as a finished run leaves it (captures, merged file, reports, manifest, journal). */
function runFolder(name: string, bigBytes = 12 * MiB): { dir: string; files: Record<string, Buffer> } {
  const dir = join(work, name);
  const files: Record<string, Buffer> = {
    "CPE_device_127.0.0.2_2026-11-23T10.00.00.000000.pcap": randomBytes(bigBytes),
    "OVOC_device_127.0.0.2_2026-11-23T10.00.00.000000-0.pcap": randomBytes(100 * 1024),
    "merged.pcapng": randomBytes(MiB),
    "manifest.json": Buffer.from(JSON.stringify({ tool: "capsync", runId: name, status: "done", devices: [] })),
    "events.csv": Buffer.from("timestamp,device,source,event,status,http_status,detail\n"),
    "report.txt": Buffer.from("capsync report: msbr-127.0.0.2→server lost 0/100 (0.00%)\n"),
    "report.json": Buffer.from(JSON.stringify({ summaryLine: "lost 0/100" })),
    "report.html": Buffer.from("<!doctype html><html><body><p>report</p></body></html>\n"),
    "empty.txt": Buffer.alloc(0),
  };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [n, b] of Object.entries(files)) writeFileSync(join(dir, n), b);
  writeFileSync(join(dir, "capsync.log"), "2026-11-23T10:00:00Z INFO run started\n");
  new Journal(join(dir, "journal.jsonl")).append("run-end", { status: "done" });
  writeFileSync(join(dir, "orchestrator.pid"), "1\n");
  return { dir, files };
}

async function getObject(key: string): Promise<Buffer> {
  const r = await s3.client().send(new GetObjectCommand({ Bucket: "capsync-test", Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

beforeAll(async () => {
  s3 = await startS3(["capsync-test"]);
});
afterAll(async () => {
  await s3?.close();
  rmSync(work, { recursive: true, force: true });
});

describe("upload of a run folder", () => {
  test("every file listed with the same content; multipart above the part size; presigned link to an index", async () => {
    const { dir, files } = runFolder("run-20261123-100000-aaaa");
    const before = s3.requests.length;
    const r = await uploadRunFolder(dir, storage(), { env: ENV });
    const mine = s3.requests.slice(before);
    // 12 MiB at 5 MiB parts: 3 parts, one CreateMultipartUpload, one Complete.
    expect(mine.filter((q) => q.op === "part")).toHaveLength(3);
    expect(mine.filter((q) => q.op === "create-mpu")).toHaveLength(1);
    expect(mine.filter((q) => q.op === "complete-mpu")).toHaveLength(1);
    expect(mine.some((q) => q.path.endsWith("orchestrator.pid"))).toBe(false);

    const list = await s3.client().send(new ListObjectsV2Command({ Bucket: "capsync-test", Prefix: "lab/run-20261123-100000-aaaa/" }));
    const keys = (list.Contents ?? []).map((o) => o.Key!.split("/").pop()!).sort();
    expect(keys).toEqual([...Object.keys(files), "capsync.log", "index.html", "journal.jsonl", "storage.json"].sort());
    // Content hashes: the captures byte for byte; the reports carry the storage link now.
    for (const [name, body] of Object.entries(files)) {
      const remote = await getObject(`lab/run-20261123-100000-aaaa/${name}`);
      if (name === "report.html") expect(remote.toString()).toContain(r.link.replace(/&/g, "&#38;"));
      else if (name.startsWith("report.")) expect(remote.toString()).toContain(r.link);
      else expect(sha(remote)).toBe(sha(body));
      expect(sha(remote)).toBe(sha(readFileSync(join(dir, name))));
    }
    const receipt = JSON.parse(readFileSync(join(dir, "storage.json"), "utf8")) as { files: { name: string; sha256: string; parts: number }[] };
    expect(receipt.files.find((f) => f.name.startsWith("CPE_"))).toMatchObject({ parts: 3, sha256: sha(files["CPE_device_127.0.0.2_2026-11-23T10.00.00.000000.pcap"]!) });

    // The link (presigned) opens the index, whose per-file links (presigned too) give the files.
    const index = await fetch(r.link);
    expect(index.status).toBe(200);
    const html = await index.text();
    const href = /href="([^"]+merged\.pcapng[^"]*)"/.exec(html)![1]!.replace(/&#38;/g, "&");
    const merged = Buffer.from(await (await fetch(href)).arrayBuffer());
    expect(sha(merged)).toBe(sha(files["merged.pcapng"]!));
    // Nothing is deleted unless asked.
    expect(existsSync(join(dir, "CPE_device_127.0.0.2_2026-11-23T10.00.00.000000.pcap"))).toBe(true);
  });

  test("transient 5xx answers are retried", async () => {
    const { dir, files } = runFolder("run-20261123-100100-bbbb", 6 * MiB);
    s3.fault({ op: "put", status: 503, times: 2 });
    s3.fault({ op: "part", status: 500, times: 1 });
    const before = s3.requests.length;
    const r = await uploadRunFolder(dir, storage(), { env: ENV });
    const mine = s3.requests.slice(before);
    expect(mine.filter((q) => q.status === 503)).toHaveLength(2);
    expect(mine.filter((q) => q.op === "part" && q.status === 500)).toHaveLength(1);
    expect(r.files.find((f) => f.name === "merged.pcapng")!.sha256).toBe(sha(files["merged.pcapng"]!));
  });

  test("an interrupted upload resumes from the journal: finished parts and files are not sent again", async () => {
    const { dir, files } = runFolder("run-20261123-100200-cccc", 21 * MiB);
    const big = "CPE_device_127.0.0.2_2026-11-23T10.00.00.000000.pcap";
    // The connection drops in the middle of the third part, every time: retries run out.
    s3.fault({ op: "part", cutAfterBytes: 64 * 1024, after: 2, times: 100 });
    const cfg = storage({ retries: 1, concurrency: 1 });
    await expect(uploadRunFolder(dir, cfg, { env: ENV })).rejects.toThrow(/part 3\/5 of lab\/run-20261123-100200-cccc\/CPE_device.*after 2 attempts/);
    const journaled = new Journal(join(dir, "journal.jsonl")).read();
    expect(journaled.filter((e) => e.kind === "upload-part").map((e) => e.part)).toEqual([1, 2]);
    expect(journaled.some((e) => e.kind === "upload-end")).toBe(false);

    // The "crash": nothing was cleaned up (the multipart upload stays open for the rerun).
    s3.clearFaults();
    const before = s3.requests.length;
    const r = await uploadRunFolder(dir, cfg, { env: ENV });
    const mine = s3.requests.slice(before);
    expect(mine.filter((q) => q.op === "create-mpu")).toHaveLength(0);
    expect(mine.filter((q) => q.op === "part").map((q) => Number(q.query.get("partNumber")))).toEqual([3, 4, 5]);
    expect(r.skippedParts).toBe(2);
    // Small files done before the interruption are not sent again.
    expect(mine.some((q) => q.op === "put" && q.path.endsWith("/merged.pcapng"))).toBe(false);
    expect(sha(await getObject(`lab/run-20261123-100200-cccc/${big}`))).toBe(sha(files[big]!));
    // Presigned links carry their signing time in whole seconds: let it tick, so the new link
    // (and with it the reports) really differs from the first one.
    await new Promise((r) => setTimeout(r, 1100));
    const again = await uploadRunFolder(dir, cfg, { env: ENV });
    // Only the reports and storage.json change (a new link), and the journal and index are always sent.
    expect(again.skippedFiles).toBe(Object.keys(files).length - 3 + 1); // + capsync.log
    expect(readFileSync(join(dir, "report.txt"), "utf8").match(/^storage: /gm)).toHaveLength(1);
  });

  test("deleteLocal removes the captures only after a verified upload; a failed upload deletes nothing", async () => {
    const { dir } = runFolder("run-20261123-100300-dddd", 1 * MiB);
    const pcaps = ["CPE_device_127.0.0.2_2026-11-23T10.00.00.000000.pcap", "OVOC_device_127.0.0.2_2026-11-23T10.00.00.000000-0.pcap", "merged.pcapng"];
    await expect(uploadRunFolder(dir, storage({ bucket: "no-such-bucket", deleteLocal: true }), { env: ENV })).rejects.toThrow(/NoSuchBucket|bucket/i);
    for (const p of pcaps) expect(existsSync(join(dir, p))).toBe(true);
    const r = await uploadRunFolder(dir, storage({ deleteLocal: true }), { env: ENV });
    expect(r.deleted.sort()).toEqual([...pcaps].sort());
    for (const p of pcaps) expect(existsSync(join(dir, p))).toBe(false);
    for (const kept of ["manifest.json", "report.html", "storage.json", "journal.jsonl"]) expect(existsSync(join(dir, kept))).toBe(true);
  });

  test("credentials that the store refuses fail clearly, without retries", async () => {
    const { dir } = runFolder("run-20261123-100400-eeee", 1024);
    const before = s3.requests.length;
    await expect(uploadRunFolder(dir, storage(), { env: { ...ENV, T_S3_SECRET: "wrong" } })).rejects.toThrow(/SignatureDoesNotMatch|403/);
    expect(s3.requests.length - before).toBeLessThanOrEqual(3);
  });

  test("cpe-capture upload <folder> (storage from run-config.json) and resume of a run whose upload never finished: exit 0 / 1", async () => {
    const { dir } = runFolder("run-20261123-100500-ffff", 1024);
    writeFileSync(join(dir, "run-config.json"), JSON.stringify({ storage: storage() }));
    const cliEnv = { T_S3_ID: S3_KEY.accessKeyId, T_S3_SECRET: S3_KEY.secretAccessKey };
    const resumed = runCli(["resume", dir, "--json"], cliEnv);
    expect(await resumed.exited).toBe(0);
    const line = JSON.parse(resumed.stdout().trim().split("\n").pop()!) as { link: string; files: number };
    expect(line.link).toMatch(/\/lab\/run-20261123-100500-ffff\/index\.html\?/);
    const index = await fetch(line.link);
    expect(index.status).toBe(200);
    // run-config.json stays local (it may hold webhook URLs in plain text).
    expect(await index.text()).not.toContain("run-config.json");

    writeFileSync(join(dir, "run-config.json"), JSON.stringify({ storage: storage({ bucket: "not-a-bucket-here" }) }));
    const failed = runCli(["upload", dir], cliEnv);
    expect(await failed.exited).toBe(1);
    expect(failed.stderr()).toMatch(/cpe-capture: upload failed: .*NoSuchBucket.*; run the same command again to resume/);
    const missing = runCli(["upload", join(work, "nowhere")], cliEnv);
    expect(await missing.exited).toBe(1);
  });

  test("cpe-capture upload killed (SIGKILL) mid-file: the rerun sends only the parts the journal does not have", async () => {
    const { dir, files } = runFolder("run-20261123-100600-gggg", 26 * MiB);
    const big = "CPE_device_127.0.0.2_2026-11-23T10.00.00.000000.pcap";
    writeFileSync(join(dir, "run-config.json"), JSON.stringify({ storage: storage({ concurrency: 1 }) }));
    const cliEnv = { T_S3_ID: S3_KEY.accessKeyId, T_S3_SECRET: S3_KEY.secretAccessKey };
    // A slow link: each part waits 700 ms before it reaches the store.
    s3.fault({ op: "part", delayMs: 700, times: 1000 });
    const first = runCli(["upload", dir], cliEnv);
    const journal = new Journal(join(dir, "journal.jsonl"));
    for (let i = 0; i < 200 && journal.read().filter((e) => e.kind === "upload-part").length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    first.child.kill("SIGKILL");
    await first.exited;
    s3.clearFaults();
    const before = journal.read().filter((e) => e.kind === "upload-part").map((e) => e.part as number);
    expect(before.length).toBeGreaterThanOrEqual(2);
    expect(before.length).toBeLessThan(6);
    const from = s3.requests.length;
    const second = runCli(["upload", dir, "--json"], cliEnv);
    expect(await second.exited).toBe(0);
    const sent = s3.requests.slice(from).filter((q) => q.op === "part").map((q) => Number(q.query.get("partNumber")));
    expect(sent.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6].filter((p) => !before.includes(p)));
    expect(s3.requests.slice(from).some((q) => q.op === "create-mpu" && q.path.endsWith(big))).toBe(false);
    expect(sha(await getObject(`lab/run-20261123-100600-gggg/${big}`))).toBe(sha(files[big]!));
  });
});
