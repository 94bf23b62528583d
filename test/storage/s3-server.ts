// A real S3 API server for the tests: s3rver (the @20minutes fork that runs on Node 20) on
// 127.0.0.1, behind a small HTTP proxy that counts requests and injects faults (5xx answers,
// connections cut mid-body), so retries and resumed uploads can be seen from outside the client.
// s3rver quirks worked around here, not in the product: buckets are created by s3rver itself
// (its SigV4 check rejects the SDK's path-style "/bucket/" for CreateBucket and ListObjects), and
// it neither verifies Content-MD5 nor implements ListParts — the product relies on neither.
import S3rver from "@20minutes/s3rver";
import { request, createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { S3Client } from "@aws-sdk/client-s3";

export const S3_KEY = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export interface S3Request {
  method: string;
  path: string;
  query: URLSearchParams;
  /** "put" | "part" | "create-mpu" | "complete-mpu" | "head" | "get" | "list" | "other" */
  op: string;
  status?: number;
}

export interface Fault {
  op: string;
  /** Answer this status instead of forwarding (default 500)… */
  status?: number;
  /** …or cut the connection after forwarding this many body bytes. */
  cutAfterBytes?: number;
  /** How many matching requests to hit (default 1). */
  times?: number;
  /** Let this many matching requests through first (default 0). */
  after?: number;
  /** Forward, but only after this delay (a slow link). */
  delayMs?: number;
}

export interface TestS3 {
  endpoint: string;
  port: number;
  dir: string;
  requests: S3Request[];
  fault(f: Fault): void;
  clearFaults(): void;
  /** A client for the tests' own checks (list, get), with the s3rver path fix. */
  client(): S3Client;
  close(): Promise<void>;
}

function opOf(method: string, path: string, q: URLSearchParams): string {
  if (method === "PUT" && q.has("partNumber")) return "part";
  if (method === "PUT") return "put";
  if (method === "POST" && q.has("uploads")) return "create-mpu";
  if (method === "POST" && q.has("uploadId")) return "complete-mpu";
  if (method === "HEAD") return "head";
  if (method === "GET" && path.split("/").filter(Boolean).length <= 1) return "list";
  if (method === "GET") return "get";
  return "other";
}

export async function startS3(buckets: string[] = ["capsync-test"]): Promise<TestS3> {
  const dir = mkdtempSync(join(tmpdir(), "capsync-s3-"));
  const s3 = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: dir, configureBuckets: buckets.map((name) => ({ name })) });
  const { port: backend } = await s3.run();
  const requests: S3Request[] = [];
  const faults: (Fault & { left: number; seen: number })[] = [];
  const upstream = new Set<ReturnType<typeof request>>();
  const timers = new Set<NodeJS.Timeout>();
  const proxy: Server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const r: S3Request = { method: req.method ?? "GET", path: url.pathname, query: url.searchParams, op: opOf(req.method ?? "GET", url.pathname, url.searchParams) };
    requests.push(r);
    const f = faults.find((x) => x.op === r.op && x.left > 0 && x.seen++ >= (x.after ?? 0));
    if (f) f.left--;
    if (f && f.delayMs !== undefined) {
      // A slow link: the whole body first, then the delay. A client killed before its body is
      // complete never reaches s3rver, which would store the cut body as a part (a zombie that
      // could overwrite the rerun's complete part).
      const body: Buffer[] = [];
      req.on("data", (c: Buffer) => body.push(c));
      req.on("end", () => {
        const t = setTimeout(() => {
          timers.delete(t);
          if (req.socket.destroyed) return;
          forwardBody(req, res, r, Buffer.concat(body));
        }, f.delayMs);
        timers.add(t);
      });
      return;
    }
    forwardTo(req, res, r, f);
  });
  /** A request to s3rver whose answer goes back to the client; tracked until it closes. */
  function upstreamFor(req: IncomingMessage, res: ServerResponse, r: S3Request): ReturnType<typeof request> {
    const up = request({ host: "127.0.0.1", port: backend, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      r.status = ur.statusCode;
      res.writeHead(ur.statusCode ?? 500, ur.headers);
      ur.pipe(res);
    });
    upstream.add(up);
    up.on("close", () => upstream.delete(up));
    up.on("error", () => res.destroy());
    return up;
  }
  function forwardBody(req: IncomingMessage, res: ServerResponse, r: S3Request, body: Buffer): void {
    upstreamFor(req, res, r).end(body);
  }
  function forwardTo(req: IncomingMessage, res: ServerResponse, r: S3Request, f: (Fault & { left: number; seen: number }) | undefined): void {
    if (f && f.cutAfterBytes === undefined) {
      req.resume();
      r.status = f.status ?? 500;
      res.writeHead(r.status, { "content-type": "application/xml" });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected fault</Message></Error>`);
      return;
    }
    const up = upstreamFor(req, res, r);
    req.on("close", () => {
      // The client went away (killed): do not leave s3rver waiting for the rest of the body.
      if (!req.complete) up.destroy();
    });
    if (f?.cutAfterBytes !== undefined) {
      let seen = 0;
      req.on("data", (c: Buffer) => {
        seen += c.length;
        if (seen > f.cutAfterBytes!) {
          up.destroy();
          req.destroy();
          res.destroy();
        } else up.write(c);
      });
      req.on("end", () => up.end());
    } else req.pipe(up);
  }
  proxy.listen(0, "127.0.0.1");
  await new Promise((r) => proxy.once("listening", r));
  const port = (proxy.address() as AddressInfo).port;
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: S3Client[] = [];
  return {
    endpoint,
    port,
    dir,
    requests,
    fault: (f) => faults.push({ ...f, left: f.times ?? 1, seen: 0 }),
    clearFaults: () => faults.splice(0),
    client() {
      const c = new S3Client({ region: "us-east-1", endpoint, forcePathStyle: true, credentials: S3_KEY, requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" });
      // s3rver signs bucket-level paths without the trailing slash the SDK sends.
      c.middlewareStack.add(
        (next) => async (args) => {
          const req = (args as { request: { path: string } }).request;
          if (/^\/[^/]+\/$/.test(req.path)) req.path = req.path.slice(0, -1);
          return next(args);
        },
        { step: "build", priority: "low" },
      );
      clients.push(c);
      return c;
    },
    async close() {
      clients.forEach((c) => c.destroy());
      timers.forEach(clearTimeout);
      upstream.forEach((u) => u.destroy());
      proxy.closeAllConnections();
      await new Promise<void>((r) => proxy.close(() => r()));
      await s3.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
