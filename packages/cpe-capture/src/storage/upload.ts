// Upload of a finished run folder to S3 (or an S3-compatible store): every file under
// `<prefix><run id>/`, multipart above the part size, Content-MD5 on every request, each file
// verified after upload (size, ETag, sha256 metadata), and resumable after a crash: the run's
// journal.jsonl records each multipart upload id and every finished part and file *after* the
// store acknowledged it, so a second `upload` (or `resume`) sends only what is missing.
// Not here: server-side encryption with KMS keys (its ETags are not MD5s; verification then
// fails and says so), object lock, storage classes.
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, renameSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { Journal, type JournalEntry } from "../artifacts/journal.js";
import { Limiter } from "../run/limiter.js";
import type { StorageConfig } from "./config.js";
import { StorageError } from "./s3.js";

export const RECEIPT_FILE = "storage.json";
export const INDEX_FILE = "index.html";
const JOURNAL_FILE = "journal.jsonl";
/**
 * Never uploaded: scratch and liveness files, and run-config.json — it exists for resume on this
 * machine and may hold webhook URLs in plain text (manifest.json has the config with them masked).
 */
const SKIP = /(\.tmp|\.part)$|^orchestrator\.pid$|^run-config\.json$/;
/** Uploaded last, in this order: they change while the upload runs (log lines, journal entries). */
const LAST = ["capsync.log", RECEIPT_FILE, INDEX_FILE, JOURNAL_FILE];
const REPORTS = ["report.txt", "report.json", "report.html"];

export interface UploadedFile {
  name: string;
  key: string;
  bytes: number;
  sha256: string;
  etag: string;
  parts: number;
  /** Presigned GET, valid until the receipt's expiresAt. */
  url?: string;
}

export interface UploadResult {
  bucket: string;
  prefix: string;
  /** Presigned link to index.html, which lists every file with its own link. */
  link: string;
  expiresAt: string;
  files: UploadedFile[];
  /** Bytes sent in this call (resumed parts and files not counted). */
  bytesSent: number;
  /** Files (and parts) the journal already had: not sent again. */
  skippedFiles: number;
  skippedParts: number;
  ms: number;
  deleted: string[];
}

export interface UploadProgress {
  file: string;
  part?: number;
  parts?: number;
  bytes: number;
}

export interface UploadOptions {
  /** The run folder. */
  dir: string;
  runId: string;
  storage: StorageConfig;
  client: S3Client;
  log?: (level: "info" | "warn" | "error", message: string) => void;
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
  now?: () => Date;
}

// --- journal state -----------------------------------------------------------------------------------

interface Mpu {
  uploadId: string;
  key: string;
  bytes: number;
  sha256: string;
  partSize: number;
  parts: Map<number, { etag: string; md5: string }>;
}

interface UploadState {
  done: Map<string, UploadedFile>;
  mpus: Map<string, Mpu>;
  ended: JournalEntry | undefined;
}

/** What the journal says was uploaded to this bucket/prefix (a different target starts over). */
export function readUploadState(entries: JournalEntry[], bucket: string, prefix: string): UploadState {
  const st: UploadState = { done: new Map(), mpus: new Map(), ended: undefined };
  let target = "";
  for (const e of entries) {
    if (e.kind === "upload-start") {
      target = `${String(e.bucket)}|${String(e.prefix)}`;
      continue;
    }
    if (target !== `${bucket}|${prefix}`) continue;
    const file = e.file as string;
    switch (e.kind) {
      case "upload-mpu":
        st.mpus.set(file, { uploadId: e.uploadId as string, key: e.key as string, bytes: e.bytes as number, sha256: e.sha256 as string, partSize: e.partSize as number, parts: new Map() });
        break;
      case "upload-part": {
        const m = st.mpus.get(file);
        if (m && m.uploadId === e.uploadId) m.parts.set(e.part as number, { etag: e.etag as string, md5: e.md5 as string });
        break;
      }
      case "upload-file":
        st.done.set(file, { name: file, key: e.key as string, bytes: e.bytes as number, sha256: e.sha256 as string, etag: e.etag as string, parts: e.parts as number });
        st.mpus.delete(file);
        break;
      case "upload-end":
        st.ended = e;
        break;
    }
  }
  return st;
}

/** True when the journal records a finished upload to this target. */
export function uploadFinished(dir: string, s: StorageConfig): { link: string; expiresAt: string } | undefined {
  const st = readUploadState(new Journal(join(dir, JOURNAL_FILE)).read(), s.bucket, s.prefix);
  return st.ended ? { link: st.ended.link as string, expiresAt: st.ended.expiresAt as string } : undefined;
}

// --- helpers -------------------------------------------------------------------------------------------

interface FileHash {
  sha256: string;
  bytes: number;
  /** Whole-content MD5: known for single PUTs; for multipart only computed if a store's ETag needs it. */
  md5?: Buffer;
}

async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const sha = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    sha.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: sha.digest("hex"), bytes };
}

async function hashFile(path: string): Promise<{ sha256: string; md5: Buffer; bytes: number }> {
  const sha = createHash("sha256");
  const md5 = createHash("md5");
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    sha.update(chunk as Buffer);
    md5.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: sha.digest("hex"), md5: md5.digest(), bytes };
}

async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) throw new StorageError(`${path} shrank while it was uploaded`);
      got += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

export function contentType(name: string): string {
  if (/\.pcap$/i.test(name)) return "application/vnd.tcpdump.pcap";
  if (/\.pcapng$/i.test(name)) return "application/octet-stream";
  if (/\.html$/i.test(name)) return "text/html; charset=utf-8";
  if (/\.json$/i.test(name)) return "application/json";
  if (/\.csv$/i.test(name)) return "text/csv; charset=utf-8";
  if (/\.(txt|log|jsonl)$/i.test(name)) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

const unquote = (etag: string | undefined) => (etag ?? "").replace(/^W\//, "").replace(/"/g, "").toLowerCase();

/** Errors worth another try: transport failures, throttling, 5xx. A 4xx (auth, no bucket) is not. */
function retryable(e: unknown): boolean {
  const err = e as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const status = err.$metadata?.httpStatusCode;
  if (err.name === "AbortError") return false;
  if (status !== undefined) return status >= 500 || status === 429 || status === 408 || err.name === "SlowDown" || err.name === "RequestTimeout";
  return true;
}

function describe(e: unknown): string {
  const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode;
  return `${err.name && err.name !== "Error" ? `${err.name}: ` : ""}${err.message ?? String(e)}${status ? ` (HTTP ${status})` : ""}`;
}

// --- the upload ------------------------------------------------------------------------------------------

export class Uploader {
  private readonly o: UploadOptions;
  private readonly journal: Journal;
  private readonly limiter: Limiter;
  private bytesSent = 0;
  private skippedFiles = 0;
  private skippedParts = 0;

  constructor(o: UploadOptions) {
    this.o = o;
    this.journal = new Journal(join(o.dir, JOURNAL_FILE));
    this.limiter = new Limiter(o.storage.concurrency);
  }

  private get s(): StorageConfig {
    return this.o.storage;
  }

  key(name: string): string {
    return `${this.s.prefix}${this.o.runId}/${name}`;
  }

  private log(level: "info" | "warn" | "error", msg: string): void {
    this.o.log?.(level, msg);
  }

  private checkAbort(): void {
    if (this.o.signal?.aborted) throw new StorageError("upload interrupted", { cause: this.o.signal.reason });
  }

  /** One S3 request with our retry budget (exponential backoff, 250 ms → 8 s). */
  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.checkAbort();
      try {
        return await fn();
      } catch (e) {
        if (e instanceof StorageError || attempt >= this.s.retries || !retryable(e)) {
          throw e instanceof StorageError ? e : new StorageError(`${what}: ${describe(e)}${attempt ? ` (after ${attempt + 1} attempts)` : ""}`, { cause: e });
        }
        const delay = Math.min(8000, 250 * 2 ** attempt);
        this.log("warn", `storage: ${what} failed (${describe(e)}); retry ${attempt + 1}/${this.s.retries} in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async presign(name: string): Promise<string> {
    return getSignedUrl(this.o.client, new GetObjectCommand({ Bucket: this.s.bucket, Key: this.key(name) }), { expiresIn: Math.floor(this.s.presignExpiresMs / 1000) });
  }

  /** Upload the folder; resumes from the journal. Throws StorageError when anything is not uploaded and verified. */
  async run(): Promise<UploadResult> {
    const t0 = performance.now();
    const { dir } = this.o;
    const now = this.o.now?.() ?? new Date();
    const state = readUploadState(this.journal.read(), this.s.bucket, this.s.prefix);
    this.journal.append("upload-start", { bucket: this.s.bucket, prefix: this.s.prefix, endpoint: this.s.endpoint ?? "aws", resumed: state.done.size + state.mpus.size > 0 });
    this.log("info", `storage: uploading ${dir} to s3://${this.s.bucket}/${this.key("")}${state.done.size ? ` (${state.done.size} file(s) already uploaded)` : ""}`);

    // The link can be made before anything is sent: it names index.html, uploaded last, so it
    // only works once everything else is there.
    const link = await this.presign(INDEX_FILE);
    const expiresAt = new Date(now.getTime() + this.s.presignExpiresMs).toISOString();
    addLinkToReports(dir, link, expiresAt);

    const names = readdirSync(dir)
      .filter((n) => !SKIP.test(n) && !LAST.includes(n) && statSync(join(dir, n)).isFile())
      .sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size || a.localeCompare(b));
    const files = new Map<string, UploadedFile>();
    // Big files first, so their parts keep every connection busy while the small ones fill in.
    await Promise.all(names.map(async (n) => files.set(n, await this.uploadFile(n, state))));

    // The log is uploaded as of now; the lines after this point stay local.
    if (existsSync(join(dir, "capsync.log"))) files.set("capsync.log", await this.uploadFile("capsync.log", state));
    const listed = [...files.values()].sort((a, b) => a.name.localeCompare(b.name));
    for (const f of listed) f.url = await this.presign(f.name);
    const receipt = { bucket: this.s.bucket, prefix: this.key(""), endpoint: this.s.endpoint ?? null, link, expiresAt, files: listed.map(({ url: _u, ...f }) => f) };
    writeAtomic(join(dir, RECEIPT_FILE), JSON.stringify(receipt, null, 2) + "\n");
    files.set(RECEIPT_FILE, await this.uploadFile(RECEIPT_FILE, state));
    const journalUrl = await this.presign(JOURNAL_FILE);
    writeAtomic(join(dir, INDEX_FILE), indexPage(this.o.runId, [...listed, { ...files.get(RECEIPT_FILE)!, url: await this.presign(RECEIPT_FILE) }], journalUrl, expiresAt));
    // The journal before the index: the index (the link) is the very last object of a complete upload.
    files.set(JOURNAL_FILE, await this.uploadFile(JOURNAL_FILE, state, true));
    files.set(INDEX_FILE, await this.uploadFile(INDEX_FILE, state, true));

    const deleted: string[] = [];
    if (this.s.deleteLocal) {
      for (const f of files.values()) {
        // Only the captures: the small files keep documenting the run and where it went.
        if (!/\.(pcap|pcapng)$/i.test(f.name)) continue;
        const p = join(dir, f.name);
        // Delete only what is byte-for-byte what was verified remotely.
        if (existsSync(p) && statSync(p).size === f.bytes && (await hashFile(p)).sha256 === f.sha256) {
          rmSync(p);
          deleted.push(f.name);
        }
      }
      if (deleted.length) this.log("info", `storage: deleted ${deleted.length} local capture file(s) after the verified upload: ${deleted.join(", ")}`);
    }
    this.journal.append("upload-end", { bucket: this.s.bucket, prefix: this.s.prefix, link, expiresAt, files: files.size, bytesSent: this.bytesSent, deleted });
    const ms = performance.now() - t0;
    this.log("info", `storage: ${files.size} file(s) uploaded and verified in ${(ms / 1000).toFixed(1)} s (${this.bytesSent} bytes sent${this.skippedFiles ? `, ${this.skippedFiles} file(s) already there` : ""}${this.skippedParts ? `, ${this.skippedParts} part(s) resumed` : ""})`);
    return { bucket: this.s.bucket, prefix: this.key(""), link, expiresAt, files: [...files.values()], bytesSent: this.bytesSent, skippedFiles: this.skippedFiles, skippedParts: this.skippedParts, ms, deleted };
  }

  private async uploadFile(name: string, state: UploadState, noJournalSkip = false): Promise<UploadedFile> {
    this.checkAbort();
    const path = join(this.o.dir, name);
    // A small file is read, hashed, sent and verified inside one slot, so memory stays at most
    // concurrency × partSize; a big one takes a slot per part (multipart below).
    return statSync(path).size <= this.s.partSizeBytes ? this.limiter.run(() => this.uploadOne(name, path, state, noJournalSkip)) : this.uploadOne(name, path, state, noJournalSkip);
  }

  private async uploadOne(name: string, path: string, state: UploadState, noJournalSkip: boolean): Promise<UploadedFile> {
    // Hashing is most of the cost next to a loopback store (bench/upload.mjs): a small file is
    // read once and both hashes come from that buffer; a big one gets a SHA-256 pass (fast) and
    // its MD5s per part while the parts are sent.
    const size = statSync(path).size;
    let body: Buffer | undefined;
    let h: FileHash;
    if (size <= this.s.partSizeBytes) {
      body = size === 0 ? Buffer.alloc(0) : await readRange(path, 0, size);
      h = { sha256: createHash("sha256").update(body).digest("hex"), md5: createHash("md5").update(body).digest(), bytes: size };
    } else h = await sha256File(path);
    const prev = state.done.get(name);
    if (prev && !noJournalSkip && prev.sha256 === h.sha256 && prev.bytes === h.bytes && prev.key === this.key(name)) {
      this.skippedFiles++;
      return prev;
    }
    const key = this.key(name);
    let etag: string;
    let parts = 1;
    let partMd5s: string[] | undefined;
    if (!body) {
      const r = await this.multipart(name, path, key, h, state);
      etag = r.etag;
      parts = r.parts;
      partMd5s = r.partMd5s;
    } else {
      const md5 = h.md5!;
      const put = await this.retry(`PUT ${key}`, () =>
        this.o.client.send(
          new PutObjectCommand({ Bucket: this.s.bucket, Key: key, Body: body, ContentLength: h.bytes, ContentMD5: md5.toString("base64"), ContentType: contentType(name), Metadata: { sha256: h.sha256 } }),
          this.o.signal ? { abortSignal: this.o.signal } : {},
        ),
      );
      this.bytesSent += h.bytes;
      etag = unquote(put.ETag);
      this.o.onProgress?.({ file: name, bytes: h.bytes });
    }
    await this.verify(name, key, h, etag, parts, partMd5s);
    const done: UploadedFile = { name, key, bytes: h.bytes, sha256: h.sha256, etag, parts };
    this.journal.append("upload-file", { file: name, key, bytes: h.bytes, sha256: h.sha256, etag, parts });
    return done;
  }

  private async multipart(name: string, path: string, key: string, h: FileHash, state: UploadState): Promise<{ etag: string; parts: number; partMd5s: string[] }> {
    const partSize = this.s.partSizeBytes;
    const count = Math.ceil(h.bytes / partSize);
    let mpu = state.mpus.get(name);
    if (mpu && (mpu.sha256 !== h.sha256 || mpu.bytes !== h.bytes || mpu.partSize !== partSize || mpu.key !== key)) mpu = undefined;
    for (let fresh = 0; fresh < 2; fresh++) {
      if (!mpu) {
        const created = await this.retry(`create multipart ${key}`, () =>
          this.o.client.send(new CreateMultipartUploadCommand({ Bucket: this.s.bucket, Key: key, ContentType: contentType(name), Metadata: { sha256: h.sha256 } })),
        );
        if (!created.UploadId) throw new StorageError(`create multipart ${key}: the store returned no UploadId`);
        mpu = { uploadId: created.UploadId, key, bytes: h.bytes, sha256: h.sha256, partSize, parts: new Map() };
        state.mpus.set(name, mpu);
        this.journal.append("upload-mpu", { file: name, key, uploadId: mpu.uploadId, bytes: h.bytes, sha256: h.sha256, partSize, parts: count });
      } else {
        this.log("info", `storage: resuming ${name}: ${mpu.parts.size}/${count} part(s) already uploaded (upload id ${mpu.uploadId.slice(0, 16)}…)`);
      }
      const m = mpu;
      try {
        const work: Promise<void>[] = [];
        for (let part = 1; part <= count; part++) {
          if (m.parts.has(part)) {
            this.skippedParts++;
            continue;
          }
          work.push(
            this.limiter.run(async () => {
              const offset = (part - 1) * partSize;
              const body = await readRange(path, offset, Math.min(partSize, h.bytes - offset));
              const md5 = createHash("md5").update(body).digest();
              const r = await this.retry(`part ${part}/${count} of ${key}`, () =>
                this.o.client.send(
                  new UploadPartCommand({ Bucket: this.s.bucket, Key: key, UploadId: m.uploadId, PartNumber: part, Body: body, ContentLength: body.length, ContentMD5: md5.toString("base64") }),
                  this.o.signal ? { abortSignal: this.o.signal } : {},
                ),
              );
              const etag = unquote(r.ETag);
              // A store that received other bytes than we sent answers another MD5.
              if (etag && /^[0-9a-f]{32}$/.test(etag) && etag !== md5.toString("hex")) throw new StorageError(`part ${part} of ${key}: the store's ETag ${etag} is not the part's MD5 ${md5.toString("hex")}`);
              m.parts.set(part, { etag, md5: md5.toString("hex") });
              this.bytesSent += body.length;
              this.journal.append("upload-part", { file: name, uploadId: m.uploadId, part, etag, md5: md5.toString("hex"), bytes: body.length });
              this.o.onProgress?.({ file: name, part, parts: count, bytes: body.length });
            }),
          );
        }
        // Every part is attempted even when one fails, so a rerun has as little left as possible.
        const results = await Promise.allSettled(work);
        const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failed) throw failed.reason;
        const done = await this.retry(`complete multipart ${key}`, () =>
          this.o.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: this.s.bucket,
              Key: key,
              UploadId: m.uploadId,
              MultipartUpload: { Parts: [...m.parts.entries()].sort((a, b) => a[0] - b[0]).map(([PartNumber, p]) => ({ PartNumber, ETag: `"${p.etag}"` })) },
            }),
          ),
        );
        return { etag: unquote(done.ETag), parts: count, partMd5s: [...m.parts.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p.md5) };
      } catch (e) {
        // The store forgot the upload (expired, aborted by a lifecycle rule): start this file over, once.
        const noSuch = /NoSuchUpload/.test(String((e as { cause?: { name?: string } }).cause?.name ?? (e as Error).name ?? "")) || /NoSuchUpload/.test((e as Error).message);
        if (noSuch && fresh === 0) {
          this.log("warn", `storage: the store no longer knows multipart upload ${m.uploadId.slice(0, 16)}… of ${name}; starting that file again`);
          mpu = undefined;
          continue;
        }
        throw e;
      }
    }
    throw new StorageError(`multipart upload of ${key} failed twice`);
  }

  /**
   * The object as the store holds it: the size, our sha256 in its metadata, and the ETag: an MD5
   * of the content for single PUTs; for multipart, the S3 composite (MD5 of the part MD5s, "-N")
   * or, on some compatible stores, the MD5 of the whole content.
   */
  private async verify(name: string, key: string, h: FileHash, etag: string, parts: number, partMd5s?: string[]): Promise<void> {
    const head = await this.retry(`HEAD ${key}`, () => this.o.client.send(new HeadObjectCommand({ Bucket: this.s.bucket, Key: key })));
    const problems: string[] = [];
    if (head.ContentLength !== h.bytes) problems.push(`size ${head.ContentLength} ≠ ${h.bytes}`);
    const meta = head.Metadata?.sha256;
    if (meta !== undefined && meta !== h.sha256) problems.push(`sha256 metadata ${meta} ≠ ${h.sha256}`);
    const remote = unquote(head.ETag) || etag;
    if (parts === 1) {
      const whole = h.md5!.toString("hex");
      if (remote !== whole) problems.push(`ETag ${remote} ≠ MD5 ${whole}`);
    } else {
      // From the part MD5s computed while sending (or journaled before a crash): no extra read.
      const c = partMd5s?.length === parts ? compositeOf(partMd5s) : await compositeEtag(join(this.o.dir, name), this.s.partSizeBytes, h.bytes);
      if (remote !== c) {
        const whole = (h.md5 ?? (await hashFile(join(this.o.dir, name))).md5).toString("hex");
        if (remote !== whole) problems.push(`ETag ${remote} is neither the multipart MD5 ${c} nor the MD5 ${whole}`);
      }
    }
    if (problems.length) throw new StorageError(`verification of ${name} (s3://${this.s.bucket}/${key}) failed: ${problems.join("; ")}`);
  }
}

/** The S3 multipart ETag from the parts' MD5s (hex): md5(md5(part 1) ‖ … ‖ md5(part N)) + "-N". */
export function compositeOf(partMd5s: string[]): string {
  return `${createHash("md5").update(Buffer.concat(partMd5s.map((m) => Buffer.from(m, "hex")))).digest("hex")}-${partMd5s.length}`;
}

/** The S3 multipart ETag for a file: md5(md5(part 1) ‖ … ‖ md5(part N)) + "-N". */
export async function compositeEtag(path: string, partSize: number, bytes: number): Promise<string> {
  const all = createHash("md5");
  const n = Math.ceil(bytes / partSize);
  for (let i = 0; i < n; i++) all.update(createHash("md5").update(await readRange(path, i * partSize, Math.min(partSize, bytes - i * partSize))).digest());
  return `${all.digest("hex")}-${n}`;
}

function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o640 });
  renameSync(tmp, path);
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The storage link in the run's reports, so the report read anywhere points at everything. */
export function addLinkToReports(dir: string, link: string, expiresAt: string): void {
  for (const name of REPORTS) {
    const p = join(dir, name);
    if (!existsSync(p)) continue;
    const text = readFileSync(p, "utf8");
    if (text.includes(link)) continue;
    let out: string;
    if (name.endsWith(".json")) {
      try {
        const j = JSON.parse(text) as Record<string, unknown>;
        out = JSON.stringify({ ...j, storage: { link, expiresAt } }, null, 2) + "\n";
      } catch {
        continue;
      }
    } else if (name.endsWith(".html")) {
      const p2 = `<p class="storage" id="storage">Uploaded: <a href="${esc(link)}">all files of this run</a> (link valid until ${esc(expiresAt)})</p>\n`;
      // An earlier link (an upload to another bucket) is replaced, not stacked.
      const cleaned = text.replace(/<p class="storage" id="storage">.*<\/p>\n/, "");
      out = cleaned.includes("</body>") ? cleaned.replace("</body>", `${p2}</body>`) : cleaned + p2;
    } else {
      out = text.replace(/\nstorage: \S+ \(valid until [^)]*\)\n$/, "\n") + `${text.endsWith("\n") ? "" : "\n"}storage: ${link} (valid until ${expiresAt})\n`;
    }
    writeAtomic(p, out);
  }
}

function indexPage(runId: string, files: UploadedFile[], journalUrl: string, expiresAt: string): string {
  const size = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
  const rows = files
    .map((f) => `<tr><td><a href="${esc(f.url ?? "#")}">${esc(f.name)}</a></td><td>${size(f.bytes)}</td><td><code>${f.sha256}</code></td></tr>`)
    .join("\n");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>capsync ${esc(runId)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:.2em 1em;text-align:left}code{font-size:12px}</style></head>
<body><h1>capsync run ${esc(runId)}</h1>
<p>Links valid until ${esc(expiresAt)}. Start with <code>report.html</code> when it is listed.</p>
<table><tr><th>file</th><th>size</th><th>sha256</th></tr>
${rows}
<tr><td><a href="${esc(journalUrl)}">journal.jsonl</a></td><td colspan="2">the run's journal as of the upload</td></tr>
</table></body></html>
`;
}
