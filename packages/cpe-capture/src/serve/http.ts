// The HTTP(S) API of `cpe-capture serve`: token check first on every path, then the
// xepacketcap-compatible /pcap_json, /status_json and /captures/<job>/<file> and the native
// /api/v1/runs. The same handler serves xepacketcap mode's plain-HTTP listener (`compat`), where
// clients of the allow list reach the xepacketcap paths without a token. Bodies are bounded
// (1 MiB) and validated; every problem is one line of a 400's `issues`.
import { createHash, timingSafeEqual } from "node:crypto";
import { createReadStream, existsSync, readdirSync, statSync } from "node:fs";
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttps } from "node:https";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import { isSafeFilename } from "@capsync/protocol";
import { parseConfigText, configFromObject, ConfigFileError, formatIssue } from "../config/loader.js";
import type { RunConfig } from "../config/schema.js";
import { VENDOR_CONFIG_KEYS } from "../drivers/index.js";
import { fromXePacketCap } from "../spec/xepacketcap.js";
import { contentType } from "../storage/upload.js";
import { isValidBucket } from "../storage/config.js";
import type { ServeConfig, XePacketCapListener } from "./config.js";
import type { Job, JobRunner, JobStore, XePacketCapRequest } from "./jobs.js";
import { OPENAPI } from "./openapi.js";
import { pcapJsonBody, sendFlaskJson, sendPcap, servedCapturePath, statusJsonBody, xePacketCapFileName } from "./xepacketcap.js";
import type { WebexBot } from "./webex.js";

const MAX_BODY = 1 << 20;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly issues?: string[],
  ) {
    super(message);
  }
}

export interface ApiOptions {
  config: ServeConfig;
  tokens: string[];
  store: JobStore;
  runner: JobRunner;
  log: (level: "info" | "warn" | "error", msg: string) => void;
  /** Set for xepacketcap mode's listener: plain HTTP, its allow list admits clients without a token. */
  compat?: XePacketCapListener;
  /** The Webex bot's webhook: authenticated by its X-Spark-Signature, not by a token. */
  webex?: WebexBot;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

export function createApi(o: ApiOptions): Server {
  const accepted = o.tokens.map(digest);
  const authorised = (req: IncomingMessage): boolean => {
    const h = req.headers.authorization;
    const token = typeof h === "string" && /^Bearer\s+/i.test(h) ? h.replace(/^Bearer\s+/i, "").trim() : typeof req.headers["x-auth-token"] === "string" ? req.headers["x-auth-token"] : undefined;
    if (!token) return false;
    // Compare digests in constant time: neither the length nor a prefix of a token leaks.
    const d = digest(token);
    return accepted.some((a) => timingSafeEqual(a, d));
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const t0 = performance.now();
    res.on("finish", () => o.log("info", `${req.method} ${(req.url ?? "").split("?")[0]} ${res.statusCode} ${(performance.now() - t0).toFixed(1)} ms`));
    route(req, res).catch((e: unknown) => {
      const he = e instanceof HttpError ? e : new HttpError(500, `internal error: ${(e as Error).message}`);
      if (he.status === 500) o.log("error", `${req.method} ${req.url}: ${(e as Error).stack ?? String(e)}`);
      if (!res.headersSent) send(res, he.status, { error: he.message, ...(he.issues ? { issues: he.issues } : {}) }, he.status === 401 ? { "www-authenticate": 'Bearer realm="capsync"' } : {});
      else res.destroy();
    });
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (o.webex?.accepts(req)) return o.webex.handle(req, res, (body) => createPcapJob(o, body));
    const compatPath = /^\/(pcap_json|status_json|captures\/[^/]+\/[^/]+)\/?$/.test((req.url ?? "/").split("?")[0]!);
    const trusted = Boolean(o.compat && compatPath && o.compat.allows(req.socket.remoteAddress ?? ""));
    if (!trusted && !authorised(req)) {
      req.resume();
      throw new HttpError(401, "missing or wrong token: send Authorization: Bearer <token>");
    }
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const m = /^\/api\/v1\/runs\/([^/]+)(?:\/(stop|filter|artifacts)(?:\/([^/]+))?)?$/.exec(path);
    const method = req.method ?? "GET";
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) throw new HttpError(405, `${method} not allowed here; use ${methods.join(", ")}`);
    };
    if (path === "/pcap_json") {
      allow("POST");
      const job = createPcapJob(o, await readJson(req));
      return sendFlaskJson(res, 200, pcapJsonBody(job));
    }
    if (path === "/status_json") {
      allow("POST");
      const body = await readJson(req);
      const id = isObj(body) && (typeof body.job_id === "string" || typeof body.job_id === "number") ? String(body.job_id) : undefined;
      if (!id) throw new HttpError(400, "invalid request", ["job_id: required (the id /pcap_json returned)"]);
      const j = o.store.get(id);
      if (!j) throw new HttpError(404, `no job ${id}`);
      return sendFlaskJson(res, 200, statusJsonBody(j, servedBase(req, o)));
    }
    const cap = /^\/captures\/([^/]+)\/([^/]+)$/.exec(path);
    if (cap) {
      allow("GET", "HEAD");
      const j = o.store.get(decodeURIComponent(cap[1]!));
      const file = decodeURIComponent(cap[2]!);
      const p = j && isSafeFilename(file) ? servedCapturePath(j, file) : undefined;
      if (!j || !p) throw new HttpError(404, `no capture file ${JSON.stringify(file.slice(0, 100))} for job ${JSON.stringify(cap[1]!.slice(0, 20))}`);
      return sendPcap(res, p, file);
    }
    if (path === "/api/v1/openapi.json") {
      allow("GET");
      return send(res, 200, OPENAPI);
    }
    if (path === "/api/v1/runs") {
      allow("GET", "POST");
      if (method === "GET") return send(res, 200, { runs: o.store.list().map(publicJob) });
      const job = await createRunJob(o, req);
      return send(res, 201, publicJob(job), { location: `/api/v1/runs/${job.id}` });
    }
    if (m) {
      const j = o.store.get(decodeURIComponent(m[1]!));
      if (!j) throw new HttpError(404, `no run ${m[1]}`);
      if (!m[2]) {
        allow("GET");
        const live = o.runner.live(j.id);
        return send(res, 200, { ...publicJob(j), ...(live ? { devices: live } : {}) });
      }
      if (m[2] === "stop") {
        allow("POST");
        if (m[3]) throw new HttpError(404, "not found");
        return send(res, 202, publicJob(o.runner.stop(j.id)!));
      }
      if (m[2] === "filter") {
        allow("POST");
        if (m[3]) throw new HttpError(404, "not found");
        // A live filter change (run/segments.ts): answered once every device runs its new segment.
        const orch = o.runner.orchestrator(j.id);
        if (!orch) throw new HttpError(409, `run ${j.id} is not capturing (${j.status})`);
        const a = await orch.changeFilter(await readJson(req));
        return send(res, a.status, { id: j.id, ...a.body });
      }
      allow("GET");
      if (!j.folder || !existsSync(j.folder)) throw new HttpError(404, `run ${j.id} has no files yet (${j.status})`);
      if (!m[3]) return send(res, 200, { artifacts: artifacts(j.folder) });
      const name = decodeURIComponent(m[3]);
      if (!isSafeFilename(name) || !artifacts(j.folder).some((a) => a.name === name)) throw new HttpError(404, `no file ${JSON.stringify(name.slice(0, 100))} in run ${j.id}`);
      const p = join(j.folder, name);
      res.writeHead(200, { "content-type": contentType(name), "content-length": statSync(p).size, "content-disposition": `attachment; filename="${name}"` });
      createReadStream(p).pipe(res);
      return;
    }
    throw new HttpError(404, `no such endpoint ${path}; see /api/v1/openapi.json`);
  };

  const server = o.config.tls ? createHttps({ cert: readFileSync(o.config.tls.cert), key: readFileSync(o.config.tls.key) }, handler) : createHttp(handler);
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  return server;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2) + "\n";
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), "cache-control": "no-store", ...headers });
  res.end(text);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

async function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_BODY) {
    req.resume();
    throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  if (!text.trim()) throw new HttpError(400, "invalid request", ["body: expected a JSON object"]);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new HttpError(400, "invalid JSON", [`body: ${(e as Error).message}`]);
  }
}

function artifacts(dir: string): { name: string; bytes: number }[] {
  return readdirSync(dir)
    .filter((n) => isSafeFilename(n) && !/\.tmp$|^orchestrator\.pid$/.test(n) && statSync(join(dir, n)).isFile())
    .sort()
    .map((name) => ({ name, bytes: statSync(join(dir, name)).size }));
}

/** What the API shows of a job: no config (it can hold secret references and paths). */
export function publicJob(j: Job): Record<string, unknown> {
  const { config: _c, folder: _f, request, ...rest } = j;
  return { ...rest, ...(request ? { request } : {}), url: j.url ?? null };
}

/** Where this listener serves capture files, from the Host the client used (it reached us by it). */
function servedBase(req: IncomingMessage, o: ApiOptions): string {
  const host = req.headers.host;
  const scheme = o.config.tls && !o.compat ? "https" : "http";
  if (typeof host === "string" && /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/.test(host)) return `${scheme}://${host}`;
  const a = req.socket.address() as { address?: string; port?: number; family?: string };
  return `${scheme}://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
}

// --- /pcap_json ------------------------------------------------------------------------------------

const PCAP_KEYS = ["iface", "proto", "src", "dst", "duration", "bucket", "device"];

export function validatePcapJson(body: unknown): XePacketCapRequest {
  if (!isObj(body)) throw new HttpError(400, "invalid request", ["body: expected a JSON object with iface, proto, src, dst, duration, bucket"]);
  const issues: string[] = [];
  for (const k of Object.keys(body)) if (!PCAP_KEYS.includes(k)) issues.push(`${k}: unknown field; expected ${PCAP_KEYS.join(", ")}`);
  const str = (k: string) => {
    const v = body[k];
    if (typeof v !== "string" || !v.trim()) {
      issues.push(`${k}: ${v === undefined ? "required" : `expected a string, got ${JSON.stringify(v)}`}`);
      return "";
    }
    return v.trim();
  };
  const iface = str("iface");
  if (iface && !/^[A-Za-z][A-Za-z0-9/.:-]{0,63}$/.test(iface)) issues.push(`iface: expected an interface name like GigabitEthernet1, got ${JSON.stringify(iface)}`);
  const proto = str("proto").toLowerCase();
  if (proto && !["ip", "tcp", "udp"].includes(proto)) issues.push(`proto: expected ip, tcp or udp, got ${JSON.stringify(body.proto)}`);
  const host = (k: "src" | "dst") => {
    const v = str(k);
    if (v && v.toLowerCase() !== "any" && !isIP(v)) issues.push(`${k}: expected "any" or one IPv4/IPv6 address, got ${JSON.stringify(v)}`);
    return v.toLowerCase() === "any" ? "any" : v;
  };
  const src = host("src");
  const dst = host("dst");
  // The seed's clients sent the duration as a number or a numeric string.
  const d = typeof body.duration === "string" && /^\d+$/.test(body.duration) ? Number(body.duration) : body.duration;
  if (typeof d !== "number" || !Number.isInteger(d) || d < 1 || d > 86400) issues.push(`duration: ${body.duration === undefined ? "required" : `expected whole seconds 1..86400, got ${JSON.stringify(body.duration)}`}`);
  let bucket: string | undefined;
  if (body.bucket !== undefined && body.bucket !== null && body.bucket !== "") {
    if (typeof body.bucket !== "string" || !isValidBucket(body.bucket)) issues.push(`bucket: expected an S3 bucket name, got ${JSON.stringify(body.bucket)}`);
    else bucket = body.bucket;
  }
  let device: string | undefined;
  if (body.device !== undefined) {
    if (typeof body.device !== "string") issues.push(`device: expected a device name or address, got ${JSON.stringify(body.device)}`);
    else device = body.device;
  }
  if (issues.length) throw new HttpError(400, "invalid request", issues);
  return { iface, proto: proto as XePacketCapRequest["proto"], src, dst, duration: d as number, ...(bucket ? { bucket } : {}), ...(device ? { device } : {}) };
}

function createPcapJob(o: ApiOptions, body: unknown): Job {
  const r = validatePcapJson(body);
  const spec = fromXePacketCap({ iface: r.iface, proto: r.proto, src: r.src, dst: r.dst, duration: r.duration });
  if (!spec.ok) throw new HttpError(400, "invalid request", [`${spec.field}: ${spec.message}`]);
  const base = o.config.run;
  const routers = Array.isArray(base.devices) ? (base.devices as Record<string, unknown>[]) : [];
  if (!routers.length) throw new HttpError(400, "no routers configured", ["the serve config's run.devices is empty: /pcap_json has no router to capture on"]);
  const wanted = r.device ? [r.device] : o.config.pcapJsonDevices;
  const chosen = routers.filter((d) => wanted.includes(String(d.name ?? "")) || wanted.includes(String(d.address ?? "")));
  if (!chosen.length) throw new HttpError(400, "invalid request", [`device: ${JSON.stringify(r.device)} is not a router of this server (${routers.map((d) => String(d.name ?? d.address)).join(", ")})`]);
  // pcap-sparkbot always names a bucket: without a storage: section `serve` keeps and serves the file itself.
  const filter: Record<string, string> = { protocol: r.proto };
  if (r.src !== "any") filter.src = r.src;
  if (r.dst !== "any") filter.dst = r.dst;
  const runLimits = isObj(base.capture) && isObj(base.capture.limits) ? base.capture.limits : {};
  const raw: Record<string, unknown> = {
    ...base,
    output: resolve(o.config.dataDir, "runs"),
    // Duration-bound captures need no alarm listener of their own port: any free loopback port.
    syslog: { listen: "127.0.0.1:0" },
    stop: { ...(isObj(base.stop) ? base.stop : {}), alarms: [], duration: `${r.duration}s` },
    devices: chosen.map((d) => {
      // xepacketcap's EPC buffer: `buffer circular size 100`, unless the config sets the buffer.
      const own = isObj(d.capture) && isObj(d.capture.limits) ? d.capture.limits : {};
      const limits = { ...runLimits, ...own };
      const epc = VENDOR_CONFIG_KEYS.get("epcBuffer")?.types.includes(d.type as never) ?? false;
      if (epc && limits.buffer === undefined && limits.maxSize === undefined) limits.buffer = "100MB";
      return { ...d, ...(epc ? { epcBuffer: d.epcBuffer ?? "circular" } : {}), interfaces: [r.iface], capture: { direction: "both", filter, limits }, duration: `${r.duration}s` };
    }),
    // The job's file is uploaded after the run; the run's own upload must not delete it first.
    ...(isObj(base.storage) ? { storage: { ...base.storage, ...(r.bucket ? { bucket: r.bucket } : {}), deleteLocal: false } } : {}),
  };
  delete raw.capture;
  let config: RunConfig;
  try {
    config = checkRunConfig(() => configFromObject(raw, { baseDir: o.config.baseDir }).config);
  } catch (e) {
    // The router refuses the interface name: say so about the request's own field.
    if (e instanceof HttpError && e.issues) throw new HttpError(400, "invalid request", e.issues.map((i) => i.replace(/^(?:.*: )?devices\[\d+\]\.interfaces(?:\[\d+\])?: /, "iface: ")));
    throw e;
  }
  const now = new Date().toISOString();
  return o.runner.submit({ id: o.store.newId(), kind: "pcap_json", status: "WAITING", createdAt: now, updatedAt: now, request: r, config, captureFile: xePacketCapFileName() });
}

// --- /api/v1/runs ------------------------------------------------------------------------------------

function checkRunConfig(load: () => RunConfig): RunConfig {
  try {
    return load();
  } catch (e) {
    if (e instanceof ConfigFileError) throw new HttpError(400, "invalid run config", e.issues.map(formatIssue));
    throw e;
  }
}

async function createRunJob(o: ApiOptions, req: IncomingMessage): Promise<Job> {
  const type = String(req.headers["content-type"] ?? "application/json").toLowerCase();
  const yaml = /yaml/.test(type);
  let raw: unknown;
  if (yaml) {
    const { parse } = await import("yaml");
    try {
      raw = parse(await readBody(req));
    } catch (e) {
      throw new HttpError(400, "invalid YAML", [`body: ${(e as Error).message.split("\n")[0]}`]);
    }
  } else raw = await readJson(req);
  if (!isObj(raw)) throw new HttpError(400, "invalid run config", ["body: expected a run config mapping (output, agents, syslog, stop, devices, ...)"]);
  const issues: string[] = [];
  if (raw.allowPlain === true || (Array.isArray(raw.devices) && raw.devices.some((d) => isObj(d) && (d.allowPlain === true || typeof d.password === "string")))) {
    issues.push("devices[].password: plain-text passwords are not accepted over the API; use { env: NAME } or { file: PATH } known to the server");
  }
  if (issues.length) throw new HttpError(400, "invalid run config", issues);
  const base = o.config.run;
  const merged: Record<string, unknown> = { ...raw, output: resolve(o.config.dataDir, "runs") };
  for (const k of ["storage", "notify", "syslog", "agents", "timeouts"]) if (merged[k] === undefined && base[k] !== undefined) merged[k] = base[k];
  const config = checkRunConfig(() => (yaml ? parseConfigText(JSON.stringify(merged), { file: "request.json", baseDir: o.config.baseDir }) : configFromObject(merged, { baseDir: o.config.baseDir })).config);
  const now = new Date().toISOString();
  return o.runner.submit({ id: o.store.newId(), kind: "run", status: "WAITING", createdAt: now, updatedAt: now, config });
}
