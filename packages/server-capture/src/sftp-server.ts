// The read-only SFTP server of the agent (and of the device emulators): one directory, no shell.
// SFTP server (draft-ietf-secsh-filexfer-02, protocol version 3, as spoken by OpenSSH `sftp` and
// ssh2) serving one directory over ssh2's Server. Only the sftp subsystem (an emulated device adds its
// shell/exec through hooks.onSession): no forwarding, symlink creation or readlink (their targets could
// point outside the root); no SFTP extensions.
import { promises as fsp } from "node:fs";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import path from "node:path";
import { timingSafeEqual } from "node:crypto";
import ssh2 from "ssh2";
import type { Attributes, AuthContext, AuthenticationType, Connection, FileEntry, ParsedKey, Session, SFTPWrapper } from "ssh2";
import { listeningServer, longname, statsToAttrs } from "./sftp-common.js";

const { Server: SshServer, utils } = ssh2;
const STATUS = utils.sftp.STATUS_CODE;
const OPEN = utils.sftp.OPEN_MODE;

/** Largest READ answer; clients ask for 32 KiB (ssh2) or up to 256 KiB (OpenSSH) and accept short reads. */
const MAX_READ = 64 * 1024;
const READDIR_BATCH = 64;
const MAX_AUTH_FAILURES = 6;

export type SftpOp = "open" | "stat" | "opendir" | "read" | "write" | "remove" | "rename" | "mkdir" | "rmdir" | "setstat";

export interface SftpServerHooks {
  /** Called for each TCP connection before the SSH handshake; `false` closes it at once (a refusal). */
  onConnection?(info: { remoteAddress: string; remotePort: number }): boolean;
  /** Awaited before a path is opened or stat'ed, e.g. to bring a file being produced up to date. */
  beforeAccess?(virtualPath: string, op: "open" | "stat" | "opendir"): void | Promise<void>;
  /** Lets an emulator alter what a READ returns (fault injection); return `data` unchanged normally. */
  mapRead?(virtualPath: string, position: number, data: Buffer): Buffer;
  /** Rewrites a client's path before it is resolved under the root (a device's own path syntax,
   *  e.g. IOS-XE `bootflash:x.pcap`); undefined answers "no such file". */
  mapPath?(clientPath: string): string | undefined;
  /** Sees each session channel first, so a device emulator can serve shell/exec on the same server. */
  onSession?(session: Session): void;
}

export type SftpServerEvent =
  | { type: "connect"; remoteAddress: string }
  | { type: "refused"; remoteAddress: string }
  | { type: "auth"; username: string; method: string; ok: boolean }
  | { type: "op"; op: SftpOp; path: string; ok: boolean; detail?: string };

export interface SftpServerOptions {
  /** Directory served as `/`. Nothing outside it is reachable, symlinks included. */
  root: string;
  /** Refuse every write/remove/rename/mkdir/setstat (default true). */
  readOnly?: boolean;
  /** Host private key (OpenSSH or PEM text, or a key parsed with ssh2 `utils.parseKey`). */
  hostKey: string | Buffer | ParsedKey;
  auth: {
    /** Password check; compare in constant time. Absent: password auth is not offered. */
    password?: (username: string, password: string) => boolean | Promise<boolean>;
    /** Authorized public keys as OpenSSH lines (`ssh-ed25519 AAAA… comment`) or parsed keys. */
    authorizedKeys?: ReadonlyArray<string | Buffer | ParsedKey>;
    /** Usernames accepted with a public key (default: any). */
    users?: readonly string[];
  };
  /** Listen address (default 127.0.0.1) and port (default 0: any free port). */
  host?: string;
  port?: number;
  hooks?: SftpServerHooks;
  log?: (event: SftpServerEvent) => void;
  maxConnections?: number;
  /** SSH identification string (default "capsync-sftp"); an emulated device presents its own. */
  ident?: string;
  /** Failed authentication attempts before the connection is closed (default 6). */
  maxAuthFailures?: number;
  /** Offer the sftp subsystem (default true); false leaves only what `hooks.onSession` serves. */
  sftp?: boolean;
}

export interface SftpServerHandle {
  readonly address: string;
  readonly port: number;
  /** Number of open TCP connections. */
  connections(): number;
  /** Stop listening and drop every connection. Safe to call twice. */
  close(): Promise<void>;
}

let sharedKey: { private: string; public: string; parsed: ParsedKey } | undefined;

/** One ed25519 host key for the whole process (emulated fleets share it). */
export function sharedHostKey(): { private: string; public: string; parsed: ParsedKey } {
  if (!sharedKey) {
    const pair = generateSshKeyPair();
    sharedKey = { ...pair, parsed: parsePrivateKey(pair.private) };
  }
  return sharedKey;
}

/** A fresh ed25519 key pair: `private` in OpenSSH format, `public` as an authorized_keys line. */
export function generateSshKeyPair(comment = "capsync"): { private: string; public: string } {
  // ssh2 (1.17) now and then writes an ed25519 key its own parser rejects as "Malformed OpenSSH
  // private key" (measured: 9 of 3,000); only hand out keys that parse.
  for (let i = 0; i < 20; i++) {
    const pair = utils.generateKeyPairSync("ed25519", { comment });
    const parsed = utils.parseKey(pair.private);
    if (parsed && !(parsed instanceof Error)) return { private: pair.private, public: pair.public };
  }
  throw new Error("could not generate a usable ed25519 key");
}

function parsePrivateKey(key: string | Buffer | ParsedKey): ParsedKey {
  const parsed = utils.parseKey(key);
  const k = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  if (!k || k instanceof Error) throw new Error(`cannot parse SSH key: ${k instanceof Error ? k.message : "empty"}`);
  return k;
}

function parsePublicKey(key: string | Buffer | ParsedKey): ParsedKey {
  if (typeof key !== "string" && !Buffer.isBuffer(key)) return key;
  // authorized_keys lines may carry options before the key type; ssh2 wants "type base64 [comment]".
  const text = key.toString().trim();
  const m = /(?:^|\s)((?:ssh-|ecdsa-|sk-)\S+\s+[A-Za-z0-9+/=]+)/.exec(text);
  return parsePrivateKey(m?.[1] ?? text);
}

export { statsToAttrs };

function errnoStatus(err: unknown): number {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") return STATUS.NO_SUCH_FILE;
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") return STATUS.PERMISSION_DENIED;
  return STATUS.FAILURE;
}

class PathError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * Maps SFTP paths onto `rootReal`. Every path is resolved against "/" (the session's home) so `..`
 * cannot climb above it, then the real path (symlinks followed) must still lie inside the root.
 * The check-then-use window is accepted: the served directory belongs to the server's own process.
 */
export class SafeRoot {
  private constructor(
    readonly rootReal: string,
    private readonly mapPath?: (p: string) => string | undefined,
  ) {}

  static async open(root: string, mapPath?: (p: string) => string | undefined): Promise<SafeRoot> {
    const real = await fsp.realpath(root);
    const st = await fsp.stat(real);
    if (!st.isDirectory()) throw new Error(`SFTP root is not a directory: ${root}`);
    return new SafeRoot(real, mapPath);
  }

  /** Canonical virtual path ("/a/b") of a client's path, or a PathError for paths no file system accepts. */
  virtual(p: string): string {
    if (p.includes("\0")) throw new PathError(STATUS.BAD_MESSAGE, "NUL in path");
    const mapped = this.mapPath ? this.mapPath(p) : p;
    if (mapped === undefined) throw new PathError(STATUS.NO_SUCH_FILE, "No such file");
    return path.posix.resolve("/", mapped.replace(/\\/g, "/"));
  }

  private inside(real: string): boolean {
    return real === this.rootReal || real.startsWith(this.rootReal.endsWith(path.sep) ? this.rootReal : this.rootReal + path.sep);
  }

  /**
   * Local path for a virtual one. `mustExist`: the target itself is resolved (symlinks followed);
   * otherwise (creation, lstat, remove) only its parent directory is, and the name is appended.
   */
  async local(vpath: string, mustExist: boolean): Promise<string> {
    const v = path.posix.resolve("/", vpath);
    const joined = path.join(this.rootReal, ...v.split("/").filter(Boolean));
    if (mustExist) {
      const real = await fsp.realpath(joined);
      if (!this.inside(real)) throw new PathError(STATUS.PERMISSION_DENIED, "outside the served directory");
      return real;
    }
    if (v === "/") return this.rootReal;
    const parent = await fsp.realpath(path.dirname(joined));
    if (!this.inside(parent)) throw new PathError(STATUS.PERMISSION_DENIED, "outside the served directory");
    return path.join(parent, path.basename(joined));
  }
}

type Handle =
  | { kind: "file"; vpath: string; fh: fsp.FileHandle; writable: boolean }
  | { kind: "dir"; vpath: string; local: string; names: string[]; pos: number };

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Convenience for `auth.password`: one fixed username/password pair, compared in constant time. */
export function passwordCheck(username: string, password: string): (u: string, p: string) => boolean {
  return (u, p) => constantTimeEqual(u, username) && constantTimeEqual(p, password);
}

export async function startSftpServer(opts: SftpServerOptions): Promise<SftpServerHandle> {
  const safe = await SafeRoot.open(opts.root, opts.hooks?.mapPath);
  const readOnly = opts.readOnly ?? true;
  const hostKey = parsePrivateKey(opts.hostKey);
  const authorized = (opts.auth.authorizedKeys ?? []).map(parsePublicKey);
  const methods: AuthenticationType[] = [];
  if (opts.auth.password) methods.push("password");
  if (authorized.length > 0) methods.push("publickey");
  if (methods.length === 0) throw new Error("startSftpServer: configure auth.password and/or auth.authorizedKeys");
  const log = opts.log ?? (() => {});
  const hooks = opts.hooks ?? {};

  // ssh2's Server is used without its own listener: our net.Server decides about refusals before
  // the handshake and keeps the sockets so close() can drop them.
  const ssh = new SshServer({ hostKeys: [{ key: hostKey }], ident: opts.ident ?? "capsync-sftp" });
  const sockets = new Set<Socket>();
  const net: NetServer = createNetServer((socket) => {
    const remoteAddress = socket.remoteAddress ?? "";
    if (opts.maxConnections !== undefined && sockets.size >= opts.maxConnections) {
      socket.destroy();
      log({ type: "refused", remoteAddress });
      return;
    }
    if (hooks.onConnection && !hooks.onConnection({ remoteAddress, remotePort: socket.remotePort ?? 0 })) {
      // resetAndDestroy gives the client an immediate ECONNRESET instead of a half-done handshake.
      socket.resetAndDestroy();
      log({ type: "refused", remoteAddress });
      return;
    }
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    log({ type: "connect", remoteAddress });
    ssh.injectSocket(socket);
  });
  ssh.on("connection", (client: Connection) => {
    client.on("error", () => {});
    let failures = 0;
    client.on("authentication", (ctx: AuthContext) => {
      void authenticate(ctx).then(
        (ok) => {
          if (ok === "partial") return;
          log({ type: "auth", username: ctx.username, method: ctx.method, ok });
          if (ok) return ctx.accept();
          ctx.reject(methods);
          if (ctx.method !== "none" && ++failures >= (opts.maxAuthFailures ?? MAX_AUTH_FAILURES)) client.end();
        },
        () => ctx.reject(methods),
      );
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        const session = accept();
        hooks.onSession?.(session);
        session.on("sftp", (acceptSftp, rejectSftp) => (opts.sftp === false ? rejectSftp() : serve(acceptSftp())));
      });
    });
  });

  /** true/false, or "partial" when a public-key query was answered (no signature yet). */
  async function authenticate(ctx: AuthContext): Promise<boolean | "partial"> {
    if (ctx.method === "password") {
      if (!opts.auth.password) return false;
      return await opts.auth.password(ctx.username, ctx.password);
    }
    if (ctx.method === "publickey") {
      if (opts.auth.users && !opts.auth.users.includes(ctx.username)) return false;
      const key = authorized.find((k) => k.getPublicSSH().equals(ctx.key.data));
      if (!key) return false;
      if (!ctx.signature || !ctx.blob) {
        ctx.accept(); // "this key would be acceptable": the client signs next
        return "partial";
      }
      return key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
    }
    return false;
  }

  function serve(sftp: SFTPWrapper): void {
    const handles = new Map<number, Handle>();
    let nextHandle = 1;
    const newHandle = (h: Handle): Buffer => {
      const id = nextHandle++;
      handles.set(id, h);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(id >>> 0);
      return b;
    };
    const getHandle = (b: Buffer): Handle | undefined => (b.length === 4 ? handles.get(b.readUInt32BE(0)) : undefined);
    const dropHandle = (b: Buffer): void => void (b.length === 4 && handles.delete(b.readUInt32BE(0)));

    /** Runs one request; any thrown error becomes a status answer, never a crash. */
    const run = (reqId: number, op: SftpOp, vpath: string, fn: () => Promise<void>): void => {
      fn().then(
        () => log({ type: "op", op, path: vpath, ok: true }),
        (err: unknown) => {
          const status = err instanceof PathError ? err.status : errnoStatus(err);
          const message = err instanceof PathError ? err.message : status === STATUS.NO_SUCH_FILE ? "No such file" : status === STATUS.PERMISSION_DENIED ? "Permission denied" : "Failure";
          log({ type: "op", op, path: vpath, ok: false, detail: message });
          try {
            sftp.status(reqId, status, message);
          } catch {
            /* channel already gone */
          }
        },
      );
    };
    const denyIfReadOnly = (): void => {
      if (readOnly) throw new PathError(STATUS.PERMISSION_DENIED, "read-only server");
    };

    sftp.on("OPEN", (reqId: number, filename: string, flags: number, attrs: Attributes) =>
      run(reqId, "open", filename, async () => {
        const writing = (flags & (OPEN.WRITE | OPEN.APPEND | OPEN.CREAT | OPEN.TRUNC)) !== 0;
        if (writing) denyIfReadOnly();
        const v = safe.virtual(filename);
        await hooks.beforeAccess?.(v, "open");
        const mode = utils.sftp.flagsToString(flags);
        if (!mode) throw new PathError(STATUS.BAD_MESSAGE, "bad open flags");
        const creating = (flags & OPEN.CREAT) !== 0;
        let local: string;
        try {
          local = await safe.local(v, true);
        } catch (err) {
          if (!creating || (err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
          local = await safe.local(v, false);
        }
        const fh = await fsp.open(local, mode, typeof attrs?.mode === "number" ? attrs.mode & 0o777 : 0o644);
        try {
          if (!(await fh.stat()).isFile()) throw new PathError(STATUS.FAILURE, "not a regular file");
        } catch (err) {
          await fh.close();
          throw err;
        }
        sftp.handle(reqId, newHandle({ kind: "file", vpath: v, fh, writable: writing }));
      }),
    );

    sftp.on("READ", (reqId: number, handle: Buffer, offset: number, len: number) => {
      const h = getHandle(handle);
      run(reqId, "read", h?.vpath ?? "?", async () => {
        if (!h || h.kind !== "file") throw new PathError(STATUS.FAILURE, "invalid handle");
        const want = Math.min(Math.max(len, 0), MAX_READ);
        const buf = Buffer.alloc(want);
        const { bytesRead } = await h.fh.read(buf, 0, want, offset);
        if (bytesRead === 0) return sftp.status(reqId, STATUS.EOF);
        let data: Buffer = buf.subarray(0, bytesRead);
        if (hooks.mapRead) data = hooks.mapRead(h.vpath, offset, data);
        if (data.length === 0) return sftp.status(reqId, STATUS.EOF);
        sftp.data(reqId, data);
      });
    });

    sftp.on("WRITE", (reqId: number, handle: Buffer, offset: number, data: Buffer) => {
      const h = getHandle(handle);
      run(reqId, "write", h?.vpath ?? "?", async () => {
        denyIfReadOnly();
        if (!h || h.kind !== "file" || !h.writable) throw new PathError(STATUS.FAILURE, "invalid handle");
        await h.fh.write(data, 0, data.length, offset);
        sftp.status(reqId, STATUS.OK);
      });
    });

    sftp.on("FSTAT", (reqId: number, handle: Buffer) => {
      const h = getHandle(handle);
      run(reqId, "stat", h?.vpath ?? "?", async () => {
        if (!h) throw new PathError(STATUS.FAILURE, "invalid handle");
        sftp.attrs(reqId, statsToAttrs(h.kind === "file" ? await h.fh.stat() : await fsp.stat(h.local)));
      });
    });

    const setstat = async (local: string | fsp.FileHandle, attrs: Attributes): Promise<void> => {
      denyIfReadOnly();
      const f = typeof local === "string" ? undefined : local;
      const p = typeof local === "string" ? local : undefined;
      if (typeof attrs.size === "number") await (f ? f.truncate(attrs.size) : fsp.truncate(p!, attrs.size));
      if (typeof attrs.mode === "number") await (f ? f.chmod(attrs.mode & 0o7777) : fsp.chmod(p!, attrs.mode & 0o7777));
      if (typeof attrs.atime === "number" && typeof attrs.mtime === "number")
        await (f ? f.utimes(attrs.atime, attrs.mtime) : fsp.utimes(p!, attrs.atime, attrs.mtime));
    };
    sftp.on("FSETSTAT", (reqId: number, handle: Buffer, attrs: Attributes) => {
      const h = getHandle(handle);
      run(reqId, "setstat", h?.vpath ?? "?", async () => {
        if (!h || h.kind !== "file") throw new PathError(STATUS.FAILURE, "invalid handle");
        await setstat(h.fh, attrs);
        sftp.status(reqId, STATUS.OK);
      });
    });
    sftp.on("SETSTAT", (reqId: number, p: string, attrs: Attributes) =>
      run(reqId, "setstat", p, async () => {
        denyIfReadOnly();
        await setstat(await safe.local(safe.virtual(p), true), attrs);
        sftp.status(reqId, STATUS.OK);
      }),
    );

    sftp.on("CLOSE", (reqId: number, handle: Buffer) => {
      const h = getHandle(handle);
      run(reqId, h?.kind === "dir" ? "opendir" : "open", h?.vpath ?? "?", async () => {
        if (!h) throw new PathError(STATUS.FAILURE, "invalid handle");
        dropHandle(handle);
        if (h.kind === "file") await h.fh.close();
        sftp.status(reqId, STATUS.OK);
      });
    });

    sftp.on("OPENDIR", (reqId: number, p: string) =>
      run(reqId, "opendir", p, async () => {
        const v = safe.virtual(p);
        await hooks.beforeAccess?.(v, "opendir");
        const local = await safe.local(v, true);
        const names = await fsp.readdir(local);
        sftp.handle(reqId, newHandle({ kind: "dir", vpath: v, local, names: [".", "..", ...names.sort()], pos: 0 }));
      }),
    );

    sftp.on("READDIR", (reqId: number, handle: Buffer) => {
      const h = getHandle(handle);
      run(reqId, "opendir", h?.vpath ?? "?", async () => {
        if (!h || h.kind !== "dir") throw new PathError(STATUS.FAILURE, "invalid handle");
        const entries: FileEntry[] = [];
        while (h.pos < h.names.length && entries.length < READDIR_BATCH) {
          const name = h.names[h.pos++]!;
          try {
            // lstat: list symlinks as themselves; following them is checked when they are opened.
            const st = await fsp.lstat(path.join(h.local, name));
            entries.push({ filename: name, longname: longname(name, st), attrs: statsToAttrs(st) });
          } catch {
            /* vanished between readdir and lstat */
          }
        }
        if (entries.length === 0) return sftp.status(reqId, STATUS.EOF);
        sftp.name(reqId, entries);
      });
    });

    const stat = (follow: boolean) => (reqId: number, p: string) =>
      run(reqId, "stat", p, async () => {
        const v = safe.virtual(p);
        await hooks.beforeAccess?.(v, "stat");
        const st = follow ? await fsp.stat(await safe.local(v, true)) : await fsp.lstat(await safe.local(v, false));
        sftp.attrs(reqId, statsToAttrs(st));
      });
    sftp.on("STAT", stat(true));
    sftp.on("LSTAT", stat(false));

    sftp.on("REALPATH", (reqId: number, p: string) =>
      run(reqId, "stat", p, async () => {
        const v = safe.virtual(p === "" ? "." : p);
        sftp.name(reqId, [{ filename: v, longname: v, attrs: { mode: 0, uid: 0, gid: 0, size: 0, atime: 0, mtime: 0 } }]);
      }),
    );

    const remove = (op: "remove" | "rmdir", rm: (local: string) => Promise<void>) => (reqId: number, p: string) =>
      run(reqId, op, p, async () => {
        denyIfReadOnly();
        const local = await safe.local(safe.virtual(p), false);
        if (local === safe.rootReal) throw new PathError(STATUS.PERMISSION_DENIED, "cannot remove the root");
        await rm(local);
        sftp.status(reqId, STATUS.OK);
      });
    sftp.on("REMOVE", remove("remove", (local) => fsp.unlink(local)));
    sftp.on("RMDIR", remove("rmdir", (local) => fsp.rmdir(local)));
    sftp.on("MKDIR", (reqId: number, p: string, attrs: Attributes) =>
      run(reqId, "mkdir", p, async () => {
        denyIfReadOnly();
        await fsp.mkdir(await safe.local(safe.virtual(p), false), { mode: typeof attrs?.mode === "number" ? attrs.mode & 0o777 : 0o755 });
        sftp.status(reqId, STATUS.OK);
      }),
    );
    sftp.on("RENAME", (reqId: number, from: string, to: string) =>
      run(reqId, "rename", from, async () => {
        denyIfReadOnly();
        const src = await safe.local(safe.virtual(from), false);
        const dst = await safe.local(safe.virtual(to), false);
        if (src === safe.rootReal) throw new PathError(STATUS.PERMISSION_DENIED, "cannot rename the root");
        // SFTP v3 rename never replaces an existing file.
        const exists = await fsp.lstat(dst).then(() => true, () => false);
        if (exists) throw new PathError(STATUS.FAILURE, "target exists");
        await fsp.rename(src, dst);
        sftp.status(reqId, STATUS.OK);
      }),
    );
    const unsupported = (reqId: number) => sftp.status(reqId, STATUS.OP_UNSUPPORTED, "not supported");
    sftp.on("READLINK", unsupported);
    sftp.on("SYMLINK", (reqId: number) => sftp.status(reqId, STATUS.PERMISSION_DENIED, "symlinks are not allowed"));
    sftp.on("EXTENDED", unsupported);

    const closeAll = (): void => {
      for (const h of handles.values()) if (h.kind === "file") void h.fh.close().catch(() => {});
      handles.clear();
    };
    sftp.on("close", closeAll);
    // The client's EOF means it is done (OpenSSH `sftp` then waits for our side of the channel to close).
    sftp.on("end", () => {
      closeAll();
      sftp.end();
    });
  }

  await new Promise<void>((resolve, reject) => {
    net.once("error", reject);
    net.listen({ host: opts.host ?? "127.0.0.1", port: opts.port ?? 0 }, () => {
      net.off("error", reject);
      resolve();
    });
  });
  net.on("error", () => {});
  return listeningServer(net, sockets);
}
