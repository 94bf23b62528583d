// The SSH side of Cisco-style CLI devices (ssh2 client): the exec CLI over an interactive shell
// (`terminal length 0`, then one command at a time, each read up to the next `name#` prompt), and
// file downloads by SCP (the RCP source protocol `scp -f`) or SFTP. SSH only: what the commands mean
// is each vendor's. Not handled: enable passwords (the user must land in privileged EXEC, `#`),
// configuration mode, keyboard-interactive logins, SSH agents.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import ssh2 from "ssh2";
import type { ClientChannel, ConnectConfig } from "ssh2";
import { CapsyncError, DeviceAuthError, DeviceProtocolError, DeviceTimeoutError, DeviceUnreachableError, redact } from "@capsync/protocol";
import { markPermanent, type DeviceHttpOptions } from "./http.js";

const { Client } = ssh2;

export interface SshTarget {
  address: string;
  sshPort: number;
  username: string;
  password: string;
  /** OpenSSH style "SHA256:base64…"; default: any host key. */
  sshHostKeySha256?: string | undefined;
}

/** One login to a device reached over both HTTPS (its REST API) and SSH. */
export interface DeviceLogin extends SshTarget, Omit<DeviceHttpOptions, "accept"> {}

/** One command and what the device printed for it (echo and prompt removed, CRLF → LF). */
export interface CliExchange {
  command: string;
  output: string;
}

export interface DownloadResult {
  /** The size the device announced (SCP `C` line, SFTP stat). */
  remoteSize: number;
  bytes: number;
}

/** A prompt at the end of the text: `hostname#` (privileged) or `hostname>` (user EXEC). */
const PROMPT = /(?:^|\n)([A-Za-z0-9][A-Za-z0-9._()-]{0,63})([#>]) ?$/;
const MORE = / ?--More-- ?$/;

type Session = InstanceType<typeof Client>;

export class DeviceSsh {
  private readonly live = new Set<Session>();
  private readonly secrets: string[];

  constructor(private readonly target: SshTarget) {
    this.secrets = [target.password];
  }

  private get label(): string {
    return `${this.target.address}:${this.target.sshPort}`;
  }

  scrub(text: string): string {
    return redact(text, this.secrets);
  }

  /**
   * Opens a connection, runs `use` with it under one time limit `ms` (re-armed by `progress`), and
   * always closes it. Errors become DeviceAuthError, DeviceTimeoutError, DeviceUnreachableError.
   */
  private async withConnection<T>(what: string, ms: number, use: (c: Session, progress: () => void) => Promise<T>): Promise<T> {
    const conn = new Client();
    this.live.add(conn);
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    let failed: ((e: Error) => void) | undefined;
    const dead = new Promise<never>((_, reject) => (failed = reject));
    dead.catch(() => {});
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        failed?.(new Error("timeout"));
        conn.destroy();
      }, ms);
    };
    let raw: (Error & { level?: string }) | undefined;
    conn.on("error", (e: Error & { level?: string }) => {
      raw ??= e;
      failed?.(e);
    });
    conn.on("close", () => failed?.(raw ?? new Error("Connection closed by the device")));
    const pin = this.target.sshHostKeySha256;
    try {
      arm();
      const config: ConnectConfig = {
        host: this.target.address,
        port: this.target.sshPort,
        username: this.target.username,
        password: this.target.password,
        readyTimeout: ms,
        tryKeyboard: false,
        ...(pin ? { hostVerifier: (key: Buffer) => `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}` === pin } : {}),
      };
      await Promise.race([new Promise<void>((resolve) => conn.once("ready", () => resolve()).connect(config)), dead]);
      arm();
      return await Promise.race([use(conn, arm), dead]);
    } catch (err) {
      throw this.sshError(what, err, raw, timedOut, ms);
    } finally {
      clearTimeout(timer);
      failed = undefined;
      this.live.delete(conn);
      conn.end();
      // end() waits for the peer; a device that stopped talking gets dropped.
      setTimeout(() => conn.destroy(), 1000).unref();
    }
  }

  private sshError(what: string, err: unknown, raw: (Error & { level?: string }) | undefined, timedOut: boolean, ms: number): CapsyncError {
    if (err instanceof CapsyncError) return err;
    const msg = this.scrub((err as Error)?.message ?? String(err));
    const cause = Object.assign(new Error(msg), { code: (err as { code?: unknown })?.code });
    const level = raw?.level ?? (err as { level?: string })?.level ?? "";
    if (timedOut || level === "client-timeout") return new DeviceTimeoutError(`${what} ${this.label}: no answer within ${ms} ms`, { cause });
    if (level === "client-authentication" || /authentication methods failed/i.test(msg)) {
      return new DeviceAuthError(`${what} ${this.label}: SSH authentication failed for user ${this.target.username}`, { cause });
    }
    if (/host key|hostVerifier|Host denied/i.test(msg) || level === "client-verification") {
      return markPermanent(new DeviceAuthError(`${what} ${this.label}: host key does not match the pinned ${this.target.sshHostKeySha256}`, { cause }));
    }
    return new DeviceUnreachableError(`${what} ${this.label}: ${msg}`, { cause });
  }

  /**
   * Runs CLI lines in one interactive session, after `terminal length 0` (so no --More-- pages).
   * Resolves to one exchange per line; `ms` bounds the whole session, re-armed by device output.
   * Throws DeviceProtocolError code "cli-not-privileged" when the prompt is user EXEC (`>`).
   */
  async runCli(lines: readonly string[], ms: number): Promise<CliExchange[]> {
    return this.withConnection("CLI", ms, (conn, progress) =>
      new Promise<CliExchange[]>((resolve, reject) => {
        conn.shell({ term: "vt100", rows: 24, cols: 200 }, (err, stream) => {
          if (err) return reject(err);
          void this.converse(stream, ["terminal length 0", ...lines], progress).then((ex) => resolve(ex.slice(1)), reject);
        });
      }),
    );
  }

  private converse(stream: ClientChannel, lines: readonly string[], progress: () => void): Promise<CliExchange[]> {
    return new Promise((resolve, reject) => {
      let text = "";
      let waiting: (() => void) | undefined;
      stream.on("data", (d: Buffer) => {
        progress();
        text += d.toString("utf8").replace(/\r\n?/g, "\n");
        // Defensive: a page prompt despite `terminal length 0` gets a space, never a stall.
        if (MORE.test(text)) {
          text = text.replace(MORE, "");
          stream.write(" ");
          return;
        }
        waiting?.();
      });
      stream.stderr.on("data", () => progress());
      stream.on("close", () => reject(new Error("the device closed the CLI session")));
      const untilPrompt = () =>
        new Promise<RegExpExecArray>((res) => {
          const check = () => {
            const m = PROMPT.exec(text);
            if (m) {
              waiting = undefined;
              res(m);
            }
          };
          waiting = check;
          check();
        });
      void (async () => {
        const first = await untilPrompt();
        if (first[2] === ">") {
          throw new DeviceProtocolError(`CLI ${this.label}: user ${this.target.username} lands in user EXEC (${first[1]}>); capsync needs privilege 15 (${first[1]}#)`, {
            code: "cli-not-privileged",
          });
        }
        const out: CliExchange[] = [];
        for (const command of lines) {
          text = "";
          stream.write(`${command}\n`);
          await untilPrompt();
          const body = text.replace(PROMPT, "");
          // The first line is the device's echo of the command.
          const nl = body.indexOf("\n");
          out.push({ command, output: nl < 0 ? "" : body.slice(nl + 1) });
        }
        stream.end("exit\n");
        return out;
      })().then(resolve, reject);
    });
  }

  /**
   * Downloads `remotePath` (e.g. "bootflash:CS1.pcap", the device's own path syntax) to `localPath`; `idleMs` bounds the handshake
   * and any pause in the transfer. A short transfer resolves with bytes < remoteSize (the caller
   * compares); a missing file is DeviceProtocolError "capture-file-missing".
   */
  download(remotePath: string, localPath: string, via: "scp" | "sftp", idleMs: number): Promise<DownloadResult> {
    return this.withConnection(via.toUpperCase(), idleMs, (conn, progress) => (via === "scp" ? this.scp(conn, remotePath, localPath, progress) : this.sftp(conn, remotePath, localPath, progress)));
  }

  private scp(conn: Session, remotePath: string, localPath: string, progress: () => void): Promise<DownloadResult> {
    // RCP source protocol: we ack (\0); the device sends "C<mode> <size> <name>\n"; we ack; it sends
    // the bytes and a \0; we ack. \1 or \2 start a (fatal) error line instead.
    return new Promise((resolve, reject) => {
      if (/[\s;'"`$\\]/.test(remotePath)) return reject(new DeviceProtocolError(`SCP ${this.label}: refusing remote path ${JSON.stringify(remotePath)}`, { code: "bad-path" }));
      conn.exec(`scp -f ${remotePath}`, (err, stream) => {
        if (err) return reject(err);
        const file = createWriteStream(localPath, { flags: "wx" });
        let stage: "header" | "data" | "status" | "done" = "header";
        let header = "";
        let size = 0;
        let received = 0;
        let stderr = "";
        const finish = (e?: Error) => {
          if (stage === "done") return;
          stage = "done";
          file.end(() => (e ? reject(e) : resolve({ remoteSize: size, bytes: received })));
        };
        stream.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
        file.on("error", (e) => finish(e));
        stream.on("data", (d: Buffer) => {
          progress();
          let buf = d;
          while (buf.length > 0 && stage !== "done") {
            if (stage === "header") {
              if (header === "" && (buf[0] === 1 || buf[0] === 2)) {
                const msg = buf.subarray(1).toString("utf8").trim();
                const missing = /no such file|not found/i.test(msg);
                return finish(
                  missing
                    ? new DeviceProtocolError(`SCP ${this.label}: ${remotePath} not found on the device (${msg})`, { code: "capture-file-missing" })
                    : new DeviceProtocolError(`SCP ${this.label}: ${msg}`, { code: "scp" }),
                );
              }
              const nl = buf.indexOf(0x0a);
              header += buf.subarray(0, nl < 0 ? buf.length : nl).toString("latin1");
              if (nl < 0) return;
              buf = buf.subarray(nl + 1);
              const m = /^C[0-7]{4} (\d{1,15}) (.+)$/.exec(header);
              if (!m) return finish(new DeviceProtocolError(`SCP ${this.label}: unexpected header ${JSON.stringify(header.slice(0, 80))}`, { code: "scp" }));
              size = Number(m[1]);
              stage = size === 0 ? "status" : "data";
              stream.write(Buffer.from([0]));
            } else if (stage === "data") {
              const take = buf.subarray(0, size - received);
              file.write(take);
              received += take.length;
              buf = buf.subarray(take.length);
              if (received === size) stage = "status";
            } else if (stage === "status") {
              if (buf[0] !== 0) return finish(new DeviceProtocolError(`SCP ${this.label}: transfer failed: ${buf.subarray(1).toString("utf8").trim()}`, { code: "scp" }));
              stream.write(Buffer.from([0]));
              stream.end();
              return finish();
            }
          }
        });
        stream.on("close", () => {
          // Closed before the final status: whatever arrived is reported; the caller compares sizes.
          if (stage === "header") {
            const why = stderr.trim() || "the device closed the SCP channel before sending the file";
            return finish(new DeviceProtocolError(`SCP ${this.label}: ${this.scrub(why)}`, { code: /not enabled/i.test(why) ? "scp-disabled" : "scp" }));
          }
          finish();
        });
        stream.write(Buffer.from([0]));
      });
    });
  }

  private sftp(conn: Session, remotePath: string, localPath: string, progress: () => void): Promise<DownloadResult> {
    return new Promise((resolve, reject) => {
      conn.sftp((err, sftp) => {
        if (err) return reject(new DeviceProtocolError(`SFTP ${this.label}: no SFTP subsystem (${err.message}); use SCP for this device`, { code: "sftp-disabled" }));
        sftp.stat(remotePath, (e, st) => {
          if (e) {
            const missing = (e as { code?: unknown }).code === 2 || /no such file/i.test(e.message);
            return reject(
              missing
                ? new DeviceProtocolError(`SFTP ${this.label}: ${remotePath} not found on the device (${e.message})`, { code: "capture-file-missing" })
                : new DeviceProtocolError(`SFTP ${this.label}: ${e.message}`, { code: "sftp" }),
            );
          }
          // A read stream ends at the device's EOF; ssh2's fastGet would re-read a short file forever.
          const src = sftp.createReadStream(remotePath);
          const dst = createWriteStream(localPath, { flags: "wx" });
          let bytes = 0;
          src.on("data", (c: Buffer) => {
            bytes += c.length;
            progress();
          });
          src.on("error", (x: Error) => {
            dst.destroy();
            reject(new DeviceProtocolError(`SFTP ${this.label}: ${x.message}`, { code: "sftp" }));
          });
          dst.on("error", reject);
          dst.on("finish", () => resolve({ remoteSize: st.size, bytes }));
          src.pipe(dst);
        });
      });
    });
  }

  /** Drops any connection in progress. Safe twice. */
  async close(): Promise<void> {
    for (const c of this.live) c.destroy();
    this.live.clear();
  }
}

/** Lines of Cisco CLI output that report an error ("% Invalid input …", "%Error deleting …"). */
export function cliErrors(output: string): string[] {
  return output
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("%"));
}
