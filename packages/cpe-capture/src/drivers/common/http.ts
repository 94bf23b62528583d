// The HTTPS side every REST driver shares (vendor REST APIs, RESTCONF): one keep-alive agent per
// device (at most 2 sockets, the configured trust), Basic auth, one exchange under a hard time limit,
// transport failures mapped to typed errors free of the password. Not here: paths, bodies, and what an
// HTTP status means (each vendor's client and driver decide).
import { promises as fsp } from "node:fs";
import type { Agent as HttpsAgent } from "node:https";
import { isIPv6 } from "node:net";
import { CapsyncError, ConfigError, DeviceTimeoutError, DeviceUnreachableError, redact } from "@capsync/protocol";
import { TLS_TRUST_CODES, basicAuthorization, basicSecrets, httpsAgent, requestWithin, transportErrorCode, type HttpsTrust } from "@capsync/common";
import { VERSION } from "../../version.js";
import type { DriverOptions } from "../driver.js";
import { ACCEPT_ENCODING, httpsExchange } from "./https-exchange.js";

const USER_AGENT = `capsync/${VERSION}`;

/** The config's shorthands ("verify", "insecure", { ca }) as the clients' HttpsTrust. */
export function normaliseTls(tls: DriverOptions["tls"]): HttpsTrust {
  if (tls === undefined || tls === "verify") return { mode: "verify" };
  if (tls === "insecure") return { mode: "insecure" };
  if ("mode" in tls) return tls;
  return { mode: "ca", ca: tls.ca };
}

/** Reads `ca` as PEM text, or as a path when it does not look like PEM. */
async function loadCa(ca: string): Promise<string> {
  if (ca.includes("-----BEGIN")) return ca;
  try {
    return await fsp.readFile(ca, "utf8");
  } catch (err) {
    throw new ConfigError(`tls.ca: cannot read ${ca}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

/** Transport errors the same request cannot cure (an untrusted certificate, a rejected host key). */
const permanent = new WeakSet<Error>();
export function isPermanent(err: unknown): boolean {
  return err instanceof Error && permanent.has(err);
}
export function markPermanent<E extends Error>(err: E): E {
  permanent.add(err);
  return err;
}

/**
 * A cause that keeps the name, code and message but nothing else: an error object may carry the
 * request, whose Authorization header holds the password.
 */
export function safeCause(err: unknown, scrub: (text: string) => string): Error {
  const e = err as { code?: string; message?: string; name?: string };
  return Object.assign(new Error(scrub(String(e?.message ?? err))), { name: e?.name ?? "Error", code: e?.code });
}

/** Any HTTP answer; `text` is the raw body (parsing is the caller's, and never throws). */
export interface RestAnswer {
  httpStatus: number;
  text: string;
}

/** One request: `headers` go after Accept (Authorization, User-Agent, Content-Length and Accept-Encoding follow). */
export interface DeviceRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  headers?: Readonly<Record<string, string>>;
  body?: string | Buffer;
}

export interface DeviceHttpOptions {
  address: string;
  restPort: number;
  username: string;
  password: string;
  /** `ca` is PEM text or a file path (read when the first request is made). */
  tls: HttpsTrust;
  /** The Accept header: the media type the vendor's API answers in. */
  accept: string;
}

export class DeviceHttp {
  readonly baseUrl: string;
  private agent: Promise<HttpsAgent> | undefined;
  private readonly secrets: string[];
  private readonly host: string;
  private readonly authorization: string;

  constructor(private readonly opts: DeviceHttpOptions) {
    // node:https takes an IPv6 literal bare and writes the Host header with brackets itself.
    this.host = opts.address;
    this.baseUrl = `https://${isIPv6(opts.address) ? `[${opts.address}]` : opts.address}:${opts.restPort}`;
    this.secrets = basicSecrets(opts.username, opts.password);
    this.authorization = basicAuthorization(opts.username, opts.password);
  }

  /** Removes the password (and its Basic form) from any text that leaves the client. */
  scrub(text: string): string {
    return redact(text, this.secrets);
  }

  private connection(): Promise<HttpsAgent> {
    this.agent ??= (async () => {
      const tls = this.opts.tls;
      // A self-signed device certificate is accepted only when the device's config says so.
      return httpsAgent(tls.mode === "ca" ? { mode: "ca", ca: await loadCa(tls.ca) } : tls, { keepAlive: true, maxSockets: 2 });
    })();
    this.agent.catch(() => (this.agent = undefined));
    return this.agent;
  }

  /** One HTTP exchange with a hard time limit; any HTTP status is an answer; throws only typed transport errors. */
  async exchange(what: string, timeoutMs: number, req: DeviceRequest): Promise<RestAnswer> {
    const agent = await this.connection();
    const headers: Record<string, string> = { Accept: this.opts.accept, ...req.headers, Authorization: this.authorization, "User-Agent": USER_AGENT };
    let body: Buffer | undefined;
    if (req.body !== undefined && req.body.length > 0) {
      body = typeof req.body === "string" ? Buffer.from(req.body, "utf8") : req.body;
      headers["Content-Length"] = String(body.length);
    }
    headers["Accept-Encoding"] = ACCEPT_ENCODING;
    const target = { agent, host: this.host, port: this.opts.restPort };
    const res = await requestWithin(
      timeoutMs,
      (signal) => httpsExchange(target, req.method, req.path, headers, body, signal),
      (err, timedOut) => this.transportError(what, err, timedOut, timeoutMs),
    );
    return { httpStatus: res.status, text: res.text };
  }

  private transportError(what: string, err: unknown, timedOut: boolean, timeoutMs: number): CapsyncError {
    if (err instanceof CapsyncError) return err;
    const target = `${this.opts.address}:${this.opts.restPort}`;
    const e = err as { message?: string };
    const code = transportErrorCode(err);
    const cause = safeCause(err, (t) => this.scrub(t));
    if (timedOut) return new DeviceTimeoutError(`${what} to ${target}: no answer within ${timeoutMs} ms`, { cause });
    if (TLS_TRUST_CODES.has(code)) {
      return markPermanent(
        new DeviceUnreachableError(
          `${what} to ${target}: TLS certificate not trusted (${code}); set tls: insecure for a self-signed device certificate, or tls: { ca: <file> }`,
          { cause },
        ),
      );
    }
    if (code === "ETIMEDOUT" || code === "ECONNABORTED") return new DeviceTimeoutError(`${what} to ${target}: ${this.scrub(e.message ?? code)}`, { cause });
    return new DeviceUnreachableError(`${what} to ${target}: ${this.scrub(e.message ?? String(err))}${code && !(e.message ?? "").includes(code) ? ` (${code})` : ""}`, { cause });
  }

  /** Drops keep-alive sockets. Safe twice; the client stays usable. */
  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    if (agent) await agent.then((a) => a.destroy(), () => {});
  }
}
