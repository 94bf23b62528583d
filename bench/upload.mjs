#!/usr/bin/env node
// Upload benchmark: a run folder (captures of TOTAL_MB in all, plus the small files a run leaves)
// uploaded to a real S3 API server on loopback (s3rver) by capsync's uploader — multipart,
// Content-MD5 on every request, hashing, per-file HEAD verification, journaling — next to a raw
// PUT of the same files (one streamed, unsigned-payload presigned PUT per file, nothing else),
// alternately, ROUNDS times each; best round of each. Prints MB/s and the ratio last.
// Usage: npm run build && node bench/upload.mjs   (TOTAL_MB=256 ROUNDS=3 PART_MB=8 CONCURRENCY=4)
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, readdirSync } from "node:fs";
import { request } from "node:http";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "@20minutes/s3rver";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { uploadRunFolder } from "../packages/cpe-capture/dist/storage/index.js";
import { parseStorage } from "../packages/cpe-capture/dist/storage/config.js";

const TOTAL_MB = Number(process.env.TOTAL_MB ?? 256);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PART_MB = Number(process.env.PART_MB ?? 8);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 4);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const work = mkdtempSync(join(tmpdir(), "capsync-bench-upload-"));
const s3dir = join(work, "s3");
mkdirSync(s3dir);
const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: s3dir, configureBuckets: [{ name: "bench" }] });
const { port } = await server.run();
const endpoint = `http://127.0.0.1:${port}`;
const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

// The folder: one big device capture (60 %), agent captures (25 %, 4 files), merged file (15 %), small files.
const run = join(work, "run-20261123-120000-bench");
mkdirSync(run);
const MB = 1024 * 1024;
const write = (name, bytes) => {
  const fd = [];
  for (let left = bytes; left > 0; left -= 16 * MB) fd.push(randomBytes(Math.min(16 * MB, left)));
  writeFileSync(join(run, name), Buffer.concat(fd));
};
write("CPE_device_192.0.2.10_2026-11-23T12.00.00.000000.pcap", Math.round(TOTAL_MB * 0.6 * MB));
for (let i = 0; i < 4; i++) write(`OVOC_device_192.0.2.10_2026-11-23T12.00.00.000000-${i}.pcap`, Math.round(TOTAL_MB * 0.0625 * MB));
write("merged.pcapng", Math.round(TOTAL_MB * 0.15 * MB));
for (const n of ["manifest.json", "events.csv", "report.txt", "report.json", "report.html", "capsync.log"]) writeFileSync(join(run, n), randomBytes(4096).toString("hex"));
writeFileSync(join(run, "journal.jsonl"), "");
const files = readdirSync(run).filter((n) => n !== "journal.jsonl");
const bytes = files.reduce((s, n) => s + statSync(join(run, n)).size, 0);

const client = new S3Client({ region: "us-east-1", endpoint, forcePathStyle: true, credentials, requestChecksumCalculation: "WHEN_REQUIRED" });
async function rawPut(prefix) {
  // One PUT per file, streamed from disk, sequential, as `curl -T` of each file would.
  for (const n of files) {
    const url = await getSignedUrl(client, new PutObjectCommand({ Bucket: "bench", Key: `${prefix}/${n}` }), { expiresIn: 600 });
    const size = statSync(join(run, n)).size;
    await new Promise((resolve, reject) => {
      const req = request(url, { method: "PUT", headers: { "content-length": size } }, (res) => {
        res.resume();
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`PUT ${n}: HTTP ${res.statusCode}`))));
      });
      req.on("error", reject);
      createReadStream(join(run, n)).pipe(req);
    });
  }
}

const storage = (prefix) => {
  const r = parseStorage({ bucket: "bench", prefix, endpoint, region: "us-east-1", partSize: `${PART_MB}MB`, concurrency: CONCURRENCY, credentials: { accessKeyId: { env: "B_ID" }, secretAccessKey: { env: "B_KEY" } } });
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.value;
};
const env = { ...process.env, B_ID: "S3RVER", B_KEY: "S3RVER" };

const best = { raw: Infinity, capsync: Infinity };
for (let round = 1; round <= ROUNDS; round++) {
  let t0 = performance.now();
  await rawPut(`raw-${round}`);
  const raw = (performance.now() - t0) / 1000;
  writeFileSync(join(run, "journal.jsonl"), ""); // a fresh upload each round
  t0 = performance.now();
  const r = await uploadRunFolder(run, storage(`capsync-${round}/`), { env });
  const cs = (performance.now() - t0) / 1000;
  for (const n of ["storage.json", "index.html"]) rmSync(join(run, n), { force: true });
  best.raw = Math.min(best.raw, raw);
  best.capsync = Math.min(best.capsync, cs);
  console.log(`round ${round}: raw PUT ${raw.toFixed(2)} s, capsync upload ${cs.toFixed(2)} s (${r.files.length} files, ${r.files.filter((f) => f.parts > 1).length} multipart)`);
}
const mbps = (s) => (bytes / 1e6 / s).toFixed(1);
console.log(`files: ${files.length}, ${(bytes / 1e6).toFixed(1)} MB; part size ${PART_MB} MiB, concurrency ${CONCURRENCY}; s3rver on loopback`);
console.log(`raw PUT (streamed, one request per file, no checksums):          ${mbps(best.raw)} MB/s`);
console.log(`capsync upload (multipart, Content-MD5, sha256, HEAD-verified):  ${mbps(best.capsync)} MB/s`);
client.destroy();
await server.close();
rmSync(work, { recursive: true, force: true });
console.log(`ratio capsync/raw throughput: ${(best.raw / best.capsync).toFixed(2)}x`);
