// The HTTPS side every REST driver shares (vendor REST APIs, RESTCONF): one keep-alive
// axios instance per device with Basic auth and the configured trust, one exchange under a hard time
// limit, transport failures mapped to typed errors free of the password. Not here: paths, bodies, and
// what an HTTP status means (each vendor's client and driver decide).
import { promises as fsp } from "node:fs";
import type { Agent as HttpsAgent } from "node:https";
import { isIPv6 } from "node:net";
import axios, { type AxiosInstance } from "axios";
import { CapsyncError, ConfigError, DeviceTimeoutError, DeviceUnreachableError, redact } from "@capsync/protocol";
import { TLS_TRUST_CODES, basicClientSettings, basicSecrets, httpsAgent, requestWithin, transportErrorCode, type HttpsTrust } from "@capsync/common";
import type { DriverOptions } from "../driver.js";

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
 * A cause that keeps the name, code and message but not the request: axios errors carry the config,
 * whose Authorization header holds the password.
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
  private http: Promise<{ axios: AxiosInstance; agent: HttpsAgent }> | undefined;
  private readonly secrets: string[];

  constructor(private readonly opts: DeviceHttpOptions) {
    const host = isIPv6(opts.address) ? `[${opts.address}]` : opts.address;
    this.baseUrl = `https://${host}:${opts.restPort}`;
    this.secrets = basicSecrets(opts.username, opts.password);
  }

  /** Removes the password (and its Basic form) from any text that leaves the client. */
  scrub(text: string): string {
    return redact(text, this.secrets);
  }

  private instance(): Promise<{ axios: AxiosInstance; agent: HttpsAgent }> {
    this.http ??= (async () => {
      const tls = this.opts.tls;
      // A self-signed device certificate is accepted only when the device's config says so.
      const agent = httpsAgent(tls.mode === "ca" ? { mode: "ca", ca: await loadCa(tls.ca) } : tls, { keepAlive: true, maxSockets: 2 });
      const instance = axios.create(
        basicClientSettings({ baseURL: this.baseUrl, agent, username: this.opts.username, password: this.opts.password, headers: { Accept: this.opts.accept } }),
      );
      return { axios: instance, agent };
    })();
    this.http.catch(() => (this.http = undefined));
    return this.http;
  }

  /** One HTTP exchange with a hard time limit; throws only typed transport errors. */
  async exchange(what: string, timeoutMs: number, send: (ax: AxiosInstance, signal: AbortSignal) => Promise<{ status: number; data: unknown }>): Promise<RestAnswer> {
    const { axios: ax } = await this.instance();
    const res = await requestWithin(timeoutMs, (signal) => send(ax, signal), (err, timedOut) => this.transportError(what, err, timedOut, timeoutMs));
    return { httpStatus: res.status, text: typeof res.data === "string" ? res.data : String(res.data ?? "") };
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
    const http = this.http;
    this.http = undefined;
    if (http) await http.then((h) => h.agent.destroy(), () => {});
  }
}
