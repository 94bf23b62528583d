// xepacketcap's answers and its capture file: /pcap_json and /status_json bodies as the Flask app
// wrote them (jsonify: sorted keys, two-space indent, application/json), the capture file named
// like xepacketcap names it (<epoch ms>.pcap), uploaded as one object to the job's bucket, or
// served by `serve` itself at /captures/<job>/<file> when the job has no storage.
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { StorageConfig } from "../storage/config.js";
import { makeS3Client } from "../storage/s3.js";
import { contentType } from "../storage/upload.js";

/** What these answers read of a job (jobs.ts's Job; structural, so jobs.ts can import this file). */
interface Job {
  id: string;
  status: string;
  request?: { iface: string; proto: string; src: string; dst: string; duration: number } | undefined;
  url?: string | undefined;
  error?: string | undefined;
  folder?: string | undefined;
  captureFile?: string | undefined;
  captureKey?: string | undefined;
}

let lastMs = 0;
/**
 * xepacketcap's file name: milliseconds since the epoch, ".pcap" (xepacketcap_util.generate_filename);
 * jobs created in the same millisecond (xepacketcap ran one at a time, serve does not) take the next one.
 */
export function xePacketCapFileName(now = Date.now()): string {
  lastMs = Math.max(Math.floor(now), lastMs + 1);
  return `${lastMs}.pcap`;
}

/** Flask's jsonify: keys sorted, indent 2, newline at the end, `application/json`. */
export function sendFlaskJson(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  const sorted = Object.fromEntries(Object.keys(body).sort().map((k) => [k, body[k]]));
  const text = JSON.stringify(sorted, null, 2) + "\n";
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store", ...headers });
  res.end(text);
}

/** /pcap_json's answer: the job id as a string (xepacketcap returned `str(job_id)`). */
export function pcapJsonBody(j: Job): Record<string, unknown> {
  return { job_id: j.id };
}

/**
 * /status_json's answer: xepacketcap's eight fields, job_id and duration as numbers (its SQLite
 * columns are integers), iface/proto/src/dst as the request gave them; `error` only on ERROR.
 * @param servedBase where this listener serves capture files, e.g. "http://127.0.0.1:5000".
 */
export function statusJsonBody(j: Job, servedBase: string): Record<string, unknown> {
  const r = j.request;
  const num = /^\d+$/.test(j.id) ? Number(j.id) : j.id;
  const url = j.url ?? (j.status === "UPLOADED" && j.captureFile && !j.captureKey ? `${servedBase}/captures/${j.id}/${j.captureFile}` : null);
  return {
    job_id: num,
    iface: r?.iface ?? null,
    proto: r?.proto ?? null,
    src: r?.src ?? null,
    dst: r?.dst ?? null,
    duration: r?.duration ?? null,
    url,
    status: j.status,
    ...(j.status === "ERROR" && j.error ? { error: j.error } : {}),
  };
}

interface ManifestDevices {
  devices: { address?: string; name?: string; state?: string; description?: string; deviceFile?: { name: string; bytes: number } }[];
}

/** The device pcaps of a finished job's run folder, in device order. */
export function devicePcaps(folder: string, manifest?: ManifestDevices): string[] {
  const m = manifest ?? (existsSync(join(folder, "manifest.json")) ? (JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8")) as ManifestDevices) : { devices: [] });
  return m.devices.map((d) => d.deviceFile?.name).filter((n): n is string => !!n && existsSync(join(folder, n)));
}

/** Why a job has no capture file, from its manifest's device descriptions. */
export function noCaptureReason(manifest: ManifestDevices): string {
  const why = manifest.devices.map((d) => `${d.name ?? d.address ?? "device"}: ${d.description ?? d.state ?? "no capture file"}`).join("; ");
  return `no capture file from the router${why ? ` (${why})` : ""}`;
}

/** The path of a job's served capture file, when `file` is its name and it exists. */
export function servedCapturePath(j: Job, file: string): string | undefined {
  if (!j.folder || !j.captureFile || file !== j.captureFile) return undefined;
  const first = devicePcaps(j.folder)[0];
  return first ? join(j.folder, first) : undefined;
}

export function sendPcap(res: ServerResponse, path: string, name: string): void {
  res.writeHead(200, { "content-type": contentType(name), "content-length": statSync(path).size, "content-disposition": `attachment; filename="${name}"` });
  createReadStream(path).pipe(res);
}

/** Uploads the capture as the one object `<bucket>/<file>` (xepacketcap's key) and returns a presigned GET of it. */
export async function uploadCaptureObject(path: string, key: string, storage: StorageConfig, env?: NodeJS.ProcessEnv): Promise<string> {
  const { client } = await makeS3Client(storage, env ? { env } : {});
  try {
    await client.send(new PutObjectCommand({ Bucket: storage.bucket, Key: key, Body: readFileSync(path), ContentType: contentType(key) }));
    return await getSignedUrl(client, new GetObjectCommand({ Bucket: storage.bucket, Key: key }), { expiresIn: Math.floor(storage.presignExpiresMs / 1000) });
  } finally {
    client.destroy();
  }
}
