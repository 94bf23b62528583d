// The SSH side of the SFTP server: listening, connection limits, password and public-key logins
// (RFC 4252), sessions with the sftp subsystem (sftp-protocol.ts). ssh2's Server is fed from our own
// net.Server so close() can drop live connections and limits apply before any handshake work.
// Shells, exec and forwarding are offered only through `onSession` (ssh2 rejects requests nobody
// listens for).
import { promises as fsp } from "node:fs";
import { createServer, isIPv4, type AddressInfo, type Socket } from "node:net";
import ssh2 from "ssh2";
import type { AuthContext, AuthenticationType, ClientInfo, Connection, ParsedKey, Session } from "ssh2";
import { formatEndpoint } from "@capsync/protocol";
import type { Logger } from "@capsync/common";
import { blobFingerprint, fromAllows, parsePrivateKey, SftpSetupError, type AuthorizedKey } from "./sftp-keys.js";
import { serveSftp, type SftpPeer, type SftpView } from "./sftp-protocol.js";

const { Server: SshServer } = ssh2;

export interface SftpListenOptions {
  listen: { address: string; port: number };
  /** Host private key (OpenSSH or PEM text, or parsed with ssh2 `utils.parseKey`). */
  hostKey: string | Buffer | ParsedKey;
  /** SSH identification string; an emulated device presents its own. */
  ident: string;
  auth: {
    /** Password check; compare in constant time. Absent: password logins are not offered. */
    password?: (username: string, password: string) => boolean | Promise<boolean>;
    /** Keys allowed to log in (from= and expiry-time= honoured). */
    keys?: readonly AuthorizedKey[];
    /** Usernames accepted with a key (default: any). */
    users?: readonly string[];
  };
  view: SftpView;
  /** Logins, refusals and bytes sent per file; absent: silent. */
  log?: Logger;
  /** Open TCP connections at most (default 32); more are dropped before the handshake. */
  maxConnections?: number;
  /** Failed authentication attempts before the connection is closed (default 6). */
  maxAuthFailures?: number;
  /** Called for each TCP connection before the handshake; `false` resets it (a refusal). */
  onConnection?(info: { remoteAddress: string; remotePort: number }): boolean;
  /** Sees each session channel first, so a device emulator can serve shell/exec on the same server. */
  onSession?(session: Session): void;
  /** Offer the sftp subsystem (default true); false leaves only what `onSession` serves. */
  sftp?: boolean;
}

export interface SftpServerHandle {
  readonly address: string;
  readonly port: number;
  /** Number of open TCP connections. */
  connections(): number;
  /** Stop listening, drop every connection, close open files. Safe to call twice. */
  close(): Promise<void>;
}

const MAX_CONNECTIONS = 32;
const MAX_AUTH_FAILURES = 6;
/** Like sshd's LoginGraceTime: a connection that has not logged in by then is dropped. */
const LOGIN_GRACE_MS = 30_000;

export async function listenSftp(opts: SftpListenOptions): Promise<SftpServerHandle> {
  const log = opts.log;
  const keys = opts.auth.keys ?? [];
  const methods: AuthenticationType[] = [];
  if (opts.auth.password) methods.push("password");
  if (keys.length > 0) methods.push("publickey");
  const maxConnections = opts.maxConnections ?? MAX_CONNECTIONS;
  const maxAuthFailures = opts.maxAuthFailures ?? MAX_AUTH_FAILURES;
  const openFiles = new Set<fsp.FileHandle>();
  const sockets = new Set<Socket>();

  const ssh = new SshServer({ hostKeys: [{ key: parsePrivateKey(opts.hostKey) }], ident: opts.ident });
  ssh.on("connection", (client: Connection, info: ClientInfo) => {
    const ip = info.ip.startsWith("::ffff:") && isIPv4(info.ip.slice(7)) ? info.ip.slice(7) : info.ip;
    const peer: SftpPeer = { ip, endpoint: formatEndpoint(ip, info.port) };
    client.on("error", (e) => log?.debug(`sftp: ${peer.endpoint}: ${e.message}`));
    const grace = setTimeout(() => {
      log?.warn(`sftp: ${peer.endpoint} did not log in within ${LOGIN_GRACE_MS / 1000}s; dropped`);
      client.end();
    }, LOGIN_GRACE_MS);
    client.once("close", () => clearTimeout(grace));
    let failures = 0;
    client.on("authentication", (ctx: AuthContext) => {
      const refuse = (why?: string) => {
        if (why) log?.warn(`sftp: refused ${why} user=${ctx.username} peer=${peer.endpoint}`);
        ctx.reject(methods);
        if (ctx.method !== "none" && ++failures >= maxAuthFailures) client.end();
      };
      const password = opts.auth.password;
      if (ctx.method === "password" && password) {
        void Promise.resolve()
          .then(() => password(ctx.username, ctx.password))
          .then(
            (ok) => {
              if (!ok) return refuse();
              peer.user = ctx.username;
              ctx.accept();
            },
            () => ctx.reject(methods),
          );
        return;
      }
      if (ctx.method !== "publickey" || keys.length === 0) return refuse();
      if (opts.auth.users && !opts.auth.users.includes(ctx.username)) return refuse();
      const k = keys.find((a) => a.key.getPublicSSH().equals(ctx.key.data));
      // The client offers keys one by one; each unknown one is worth a line (it names the key).
      if (!k) return refuse(`key ${blobFingerprint(ctx.key.data)} (not in authorized keys)`);
      if (k.from && !fromAllows(k.from, ip)) return refuse(`key ${k.fingerprint} (authorized_keys line ${k.line}: from= does not match ${ip})`);
      if (k.expiresAt !== undefined && Date.now() >= k.expiresAt) return refuse(`key ${k.fingerprint} (authorized_keys line ${k.line}: expired)`);
      // Without a signature the client only asks whether this key would do; it signs next.
      if (!ctx.signature || !ctx.blob) return ctx.accept();
      if (k.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return refuse(`key ${k.fingerprint} (bad signature)`);
      peer.user = ctx.username;
      peer.key = k;
      ctx.accept();
    });
    client.on("ready", () => {
      clearTimeout(grace);
      const k = peer.key;
      log?.info(`sftp: login user=${peer.user!} ${k ? `key=${k.fingerprint}${k.comment ? ` (${k.comment})` : ""}` : "password"} peer=${peer.endpoint}`);
      client.on("session", (accept) => {
        const session = accept();
        opts.onSession?.(session);
        session.on("sftp", (acceptSftp, rejectSftp) => (opts.sftp === false ? rejectSftp() : serveSftp(acceptSftp(), opts.view, { peer, log, openFiles })));
      });
    });
    client.on("close", () => log?.debug(`sftp: ${peer.endpoint} disconnected`));
  });

  const net = createServer((socket) => {
    if (sockets.size >= maxConnections) {
      log?.warn(`sftp: ${socket.remoteAddress ?? "?"}: more than ${maxConnections} connections; refused`);
      socket.destroy();
      return;
    }
    if (opts.onConnection && !opts.onConnection({ remoteAddress: socket.remoteAddress ?? "", remotePort: socket.remotePort ?? 0 })) {
      // resetAndDestroy gives the client an immediate ECONNRESET instead of a half-done handshake.
      socket.resetAndDestroy();
      return;
    }
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    ssh.injectSocket(socket);
  });
  const { address, port } = opts.listen;
  await new Promise<void>((resolve, reject) => {
    net.once("error", (e) => reject(new SftpSetupError(`sftp: cannot listen on ${formatEndpoint(address, port)}: ${e.message}`, { cause: e })));
    net.listen({ host: address, port }, () => resolve());
  });
  net.removeAllListeners("error");
  net.on("error", (e) => log?.error(`sftp: ${e.message}`));

  const bound = net.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    address: bound.address,
    port: bound.port,
    connections: () => sockets.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        net.close(() => resolve());
        for (const s of sockets) s.destroy();
        for (const fh of openFiles) void fh.close().catch(() => undefined);
        openFiles.clear();
      });
      return closing;
    },
  };
}
