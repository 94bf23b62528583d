// AudioCodes transport: REST over HTTPS with Basic auth (firmware 7.2/7.4 `/api/v1/status`,
// `/api/v1/files/cliScript/incremental`) and SFTP downloads. HTTP/SSH only: no CLI meaning here.
// Transport failures become typed errors; HTTP answers of any status are returned as data.
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import SftpClient from "ssh2-sftp-client";
import { CapsyncError, DeviceAuthError, DeviceProtocolError, DeviceTimeoutError, DeviceUnreachableError } from "@capsync/protocol";
import { DeviceHttp, safeCause, type RestAnswer } from "../common/http.js";
import { multipartFile } from "../common/multipart.js";
import type { DeviceLogin } from "../common/ssh-cli.js";

export type AudioCodesClientOptions = DeviceLogin;

export interface DownloadResult {
  remoteSize: number;
  bytes: number;
}

const quietCallbacks = { error: () => {}, end: () => {}, close: () => {} };
/**
 * SFTP read size for downloads (ssh2's default is 32 KiB). Half the requests, packets and file
 * writes per MB: capsync's side of bench/collect.mjs is CPU-bound on them. A server answering
 * less (short reads) gets a follow-up read for the rest from ssh2's fastGet.
 */
const FETCH_CHUNK = 64 * 1024;

export class AudioCodesClient {
  readonly baseUrl: string;
  private readonly http: DeviceHttp;
  private readonly sftpSessions = new Set<SftpClient>();

  constructor(private readonly opts: AudioCodesClientOptions) {
    this.http = new DeviceHttp({ address: opts.address, restPort: opts.restPort, username: opts.username, password: opts.password, tls: opts.tls, accept: "application/json" });
    this.baseUrl = this.http.baseUrl;
  }

  /** Removes the password (and its Basic form) from any text that leaves this module. */
  scrub(text: string): string {
    return this.http.scrub(text);
  }

  getStatus(timeoutMs: number): Promise<RestAnswer> {
    return this.http.exchange("GET /api/v1/status", timeoutMs, { method: "GET", path: "/api/v1/status" });
  }

  /** PUT the lines as multipart part `file` named `cli.txt`, as the original did. */
  putCliScript(lines: readonly string[], timeoutMs: number): Promise<RestAnswer> {
    const form = multipartFile("file", "cli.txt", "text/plain", lines.join("\n") + "\n");
    return this.http.exchange("PUT /api/v1/files/cliScript/incremental", timeoutMs, {
      method: "PUT",
      path: "/api/v1/files/cliScript/incremental",
      headers: { "Content-Type": form.contentType },
      body: form.body,
    });
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
          chunkSize: FETCH_CHUNK,
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
    const cause = safeCause(err, (t) => this.scrub(t));
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
    await this.http.close();
    await Promise.all([...this.sftpSessions].map((s) => this.endSftp(s)));
  }
}
