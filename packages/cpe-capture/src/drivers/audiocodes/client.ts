// AudioCodes transport: REST over HTTPS with Basic auth (firmware 7.2/7.4 `/api/v1/status`,
// `/api/v1/files/cliScript/incremental`) and SFTP downloads. HTTP/SSH only: no CLI meaning here.
// Transport failures become typed errors; HTTP answers of any status are returned as data.
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { isIPv6 } from "node:net";
import axios, { type AxiosInstance } from "axios";
import SftpClient from "ssh2-sftp-client";
import {
  CapsyncError,
  ConfigError,
  DeviceAuthError,
  DeviceProtocolError,
  DeviceTimeoutError,
  DeviceUnreachableError,
  redact,
} from "@capsync/protocol";

export type ClientTls = { mode: "verify" } | { mode: "insecure" } | { mode: "ca"; ca: string };

export interface AudioCodesClientOptions {
  address: string;
  restPort: number;
  sshPort: number;
  username: string;
  password: string;
  tls: ClientTls;
  sshHostKeySha256?: string | undefined;
}

/** Any HTTP answer; `text` is the raw body (parsing is the caller's, and never throws). */
export interface RestAnswer {
  httpStatus: number;
  text: string;
}

export interface DownloadResult {
  remoteSize: number;
  bytes: number;
}

const TLS_TRUST_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);

/** Transport errors that the same request cannot cure (untrusted certificate, rejected host key). */
const permanent = new WeakSet<Error>();
export function isPermanentTransportError(err: unknown): boolean {
  return err instanceof Error && permanent.has(err);
}
function markPermanent<E extends Error>(err: E): E {
  permanent.add(err);
  return err;
}

const quietCallbacks = { error: () => {}, end: () => {}, close: () => {} };

/** Reads `ca` as PEM text, or as a path when it does not look like PEM. */
export async function loadCa(ca: string): Promise<string> {
  if (ca.includes("-----BEGIN")) return ca;
  try {
    return await fsp.readFile(ca, "utf8");
  } catch (err) {
    throw new ConfigError(`tls.ca: cannot read ${ca}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

export class AudioCodesClient {
  readonly baseUrl: string;
  private http: Promise<{ axios: AxiosInstance; agent: HttpsAgent }> | undefined;
  private readonly sftpSessions = new Set<SftpClient>();
  private readonly secrets: string[];

  constructor(private readonly opts: AudioCodesClientOptions) {
    const host = isIPv6(opts.address) ? `[${opts.address}]` : opts.address;
    this.baseUrl = `https://${host}:${opts.restPort}`;
    this.secrets = [opts.password, Buffer.from(`${opts.username}:${opts.password}`).toString("base64")];
  }

  /** Removes the password (and its Basic form) from any text that leaves this module. */
  scrub(text: string): string {
    return redact(text, this.secrets);
  }

  private instance(): Promise<{ axios: AxiosInstance; agent: HttpsAgent }> {
    this.http ??= (async () => {
      const tls = this.opts.tls;
      const agent = new HttpsAgent({
        keepAlive: true,
        maxSockets: 2,
        // Self-signed device certificates are accepted only when the device's config says so.
        rejectUnauthorized: tls.mode !== "insecure",
        ...(tls.mode === "ca" ? { ca: await loadCa(tls.ca) } : {}),
      });
      const instance = axios.create({
        baseURL: this.baseUrl,
        httpsAgent: agent,
        proxy: false, // HTTPS_PROXY from the environment must not divert device traffic
        maxRedirects: 0,
        maxContentLength: 4 * 1024 * 1024,
        validateStatus: () => true,
        responseType: "text",
        transformResponse: [(d: unknown) => d],
        headers: {
          Authorization: `Basic ${Buffer.from(`${this.opts.username}:${this.opts.password}`).toString("base64")}`,
          Accept: "application/json",
        },
      });
      return { axios: instance, agent };
    })();
    this.http.catch(() => (this.http = undefined));
    return this.http;
  }

  /** One HTTP exchange with a hard time limit; throws only typed transport errors. */
  private async exchange(what: string, timeoutMs: number, send: (ax: AxiosInstance, signal: AbortSignal) => Promise<{ status: number; data: unknown }>): Promise<RestAnswer> {
    const { axios: ax } = await this.instance();
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, timeoutMs);
    try {
      const res = await send(ax, ctl.signal);
      return { httpStatus: res.status, text: typeof res.data === "string" ? res.data : String(res.data ?? "") };
    } catch (err) {
      throw this.transportError(what, err, timedOut, timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }

  getStatus(timeoutMs: number): Promise<RestAnswer> {
    return this.exchange("GET /api/v1/status", timeoutMs, (ax, signal) => ax.get("/api/v1/status", { signal }));
  }

  /** PUT the lines as multipart part `file` named `cli.txt`, as the original did. */
  putCliScript(lines: readonly string[], timeoutMs: number): Promise<RestAnswer> {
    return this.exchange("PUT /api/v1/files/cliScript/incremental", timeoutMs, (ax, signal) => {
      const form = new FormData();
      form.append("file", new Blob([lines.join("\n") + "\n"], { type: "text/plain" }), "cli.txt");
      return ax.put("/api/v1/files/cliScript/incremental", form, { signal });
    });
  }

  private transportError(what: string, err: unknown, timedOut: boolean, timeoutMs: number): CapsyncError {
    const target = `${this.opts.address}:${this.opts.restPort}`;
    const e = err as { code?: string; message?: string; cause?: { code?: string } };
    const code = e.code ?? e.cause?.code ?? "";
    const cause = this.safeCause(err);
    if (err instanceof CapsyncError) return err;
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

  /**
   * A cause that keeps the code and message but not the request: axios errors carry the config,
   * whose Authorization header holds the password.
   */
  private safeCause(err: unknown): Error {
    const e = err as { code?: string; message?: string; name?: string };
    return Object.assign(new Error(this.scrub(String(e?.message ?? err))), { name: e?.name ?? "Error", code: e?.code });
  }

  /**
   * Connects, stats and downloads `remotePath` to `localPath` in one SFTP session. `idleMs` bounds
   * the handshake and any pause in the transfer. Errors: DeviceAuthError (no retry makes sense),
   * DeviceTimeoutError, DeviceUnreachableError, DeviceProtocolError code capture-file-missing / sftp.
   */
  async download(remotePath: string, localPath: string, idleMs: number): Promise<DownloadResult> {
    const target = `${this.opts.address}:${this.opts.sshPort}`;
    const sftp = new SftpClient("capsync-audiocodes", quietCallbacks);
    this.sftpSessions.add(sftp);
    let raw: (Error & { level?: string; code?: string }) | undefined;
    sftp.on("error", (e: Error) => (raw ??= e));
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        // ssh2-sftp-client has no per-call timeout: dropping the connection fails the pending call.
        (sftp as unknown as { client: { destroy(): void } }).client.destroy();
      }, idleMs);
    };
    const pin = this.opts.sshHostKeySha256;
    try {
      arm();
      await sftp.connect({
        host: this.opts.address,
        port: this.opts.sshPort,
        username: this.opts.username,
        password: this.opts.password,
        readyTimeout: idleMs,
        tryKeyboard: false,
        ...(pin
          ? { hostVerifier: (key: Buffer) => `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}` === pin }
          : {}),
      });
      arm();
      const st = await sftp.stat(remotePath);
      arm();
      let received = 0;
      let shortRead = false;
      try {
        await sftp.fastGet(remotePath, localPath, {
          step: (total, chunk) => {
            if (chunk > 0) {
              received = total;
              return arm();
            }
            // EOF before the size fstat announced: ssh2's fastGet would re-read forever. Stop and
            // report what arrived; the caller compares it with the remote size.
            shortRead = true;
            (sftp as unknown as { client: { destroy(): void } }).client.destroy();
          },
        });
      } catch (err) {
        if (!shortRead) throw err;
        return { remoteSize: st.size, bytes: received };
      }
      const bytes = (await fsp.stat(localPath)).size;
      return { remoteSize: st.size, bytes };
    } catch (err) {
      throw this.sftpError(remotePath, target, err, raw, timedOut, idleMs);
    } finally {
      clearTimeout(timer);
      this.sftpSessions.delete(sftp);
      await this.endSftp(sftp);
    }
  }

  private sftpError(remotePath: string, target: string, err: unknown, raw: { level?: string; code?: string; message?: string } | undefined, timedOut: boolean, idleMs: number): CapsyncError {
    const msg = this.scrub((err as Error)?.message ?? String(err));
    const cause = this.safeCause(err);
    const level = raw?.level ?? "";
    const code = String((err as { code?: unknown })?.code ?? raw?.code ?? "");
    if (timedOut || level === "client-timeout") return new DeviceTimeoutError(`SFTP ${target}: no progress within ${idleMs} ms`, { cause });
    if (level === "client-authentication" || /authentication methods failed/i.test(msg)) {
      return new DeviceAuthError(`SFTP ${target}: authentication failed for user ${this.opts.username}`, { cause });
    }
    if (/host key|hostVerifier|Host denied/i.test(msg) || level === "client-verification") {
      return new DeviceAuthError(`SFTP ${target}: host key does not match the pinned ${this.opts.sshHostKeySha256}`, { cause });
    }
    if (/No such file|ENOENT|Not a regular file/i.test(msg) || code === "2") {
      return new DeviceProtocolError(`SFTP ${target}: ${remotePath} not found on the device (${msg})`, { cause, code: "capture-file-missing" });
    }
    if (level === "client-socket" || /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|EPIPE|handshake|Connection lost|closed|not connected/i.test(`${msg} ${code}`)) {
      return new DeviceUnreachableError(`SFTP ${target}: ${msg}`, { cause });
    }
    return new DeviceProtocolError(`SFTP ${target}: ${msg}`, { cause, code: "sftp" });
  }

  private async endSftp(sftp: SftpClient): Promise<void> {
    // end() waits for a 'close' that never comes when the socket is already gone; don't wait long.
    let t: NodeJS.Timeout | undefined;
    await Promise.race([sftp.end().catch(() => {}), new Promise((r) => (t = setTimeout(r, 1000)))]);
    clearTimeout(t);
  }

  /** Drops keep-alive sockets and any SFTP session in progress. Safe twice; the client stays usable. */
  async close(): Promise<void> {
    const http = this.http;
    this.http = undefined;
    if (http) await http.then((h) => h.agent.destroy(), () => {});
    await Promise.all([...this.sftpSessions].map((s) => this.endSftp(s)));
  }
}
