// A directory tree served over SFTP under a root jail: what an emulated device offers (its capture
// folder, IOS-XE's bootflash). A view (sftp-protocol.ts) on the one SFTP server (sftp-ssh.ts), with
// password or key logins; read-only unless asked, and nothing outside the root is reachable.
import { promises as fsp, type Stats } from "node:fs";
import path from "node:path";
import { timingSafeEqual } from "node:crypto";
import ssh2 from "ssh2";
import type { Attributes, ParsedKey, Session } from "ssh2";
import { fingerprint, parseAuthorizedKeys, type AuthorizedKey } from "./sftp-keys.js";
import { applyAttrs, SftpError, STATUS, type SftpView, type SftpWrites } from "./sftp-protocol.js";
import { listenSftp, type SftpServerHandle } from "./sftp-ssh.js";

const { utils } = ssh2;
const OPEN = utils.sftp.OPEN_MODE;

export type { SftpServerHandle };

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
    /** Authorized public keys as authorized_keys lines (`ssh-ed25519 AAAA… comment`) or parsed keys. */
    authorizedKeys?: ReadonlyArray<string | Buffer | ParsedKey>;
    /** Usernames accepted with a public key (default: any). */
    users?: readonly string[];
  };
  /** Listen address (default 127.0.0.1) and port (default 0: any free port). */
  host?: string;
  port?: number;
  hooks?: SftpServerHooks;
  /** Open TCP connections at most (default: no limit). */
  maxConnections?: number;
  /** SSH identification string (default "capsync-sftp"); an emulated device presents its own. */
  ident?: string;
  /** Failed authentication attempts before the connection is closed (default 6). */
  maxAuthFailures?: number;
  /** Offer the sftp subsystem (default true); false leaves only what `hooks.onSession` serves. */
  sftp?: boolean;
}

function errnoStatus(err: unknown): SftpError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") return new SftpError(STATUS.NO_SUCH_FILE, "No such file");
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") return new SftpError(STATUS.PERMISSION_DENIED, "Permission denied");
  return new SftpError(STATUS.FAILURE, "Failure");
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

  /** Canonical virtual path ("/a/b") of a client's path, or an SftpError for paths no file system accepts. */
  virtual(p: string): string {
    if (p.includes("\0")) throw new SftpError(STATUS.BAD_MESSAGE, "NUL in path");
    const mapped = this.mapPath ? this.mapPath(p) : p;
    if (mapped === undefined) throw new SftpError(STATUS.NO_SUCH_FILE, "No such file");
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
      if (!this.inside(real)) throw new SftpError(STATUS.PERMISSION_DENIED, "outside the served directory");
      return real;
    }
    if (v === "/") return this.rootReal;
    const parent = await fsp.realpath(path.dirname(joined));
    if (!this.inside(parent)) throw new SftpError(STATUS.PERMISSION_DENIED, "outside the served directory");
    return path.join(parent, path.basename(joined));
  }
}

/** The tree under `safe`; `hooks` as in SftpServerOptions. */
export function jailView(safe: SafeRoot, hooks: Pick<SftpServerHooks, "beforeAccess" | "mapRead">, writable: boolean): SftpView {
  const { beforeAccess } = hooks;
  return {
    realpath: (p) => safe.virtual(p),
    async open(p, flags, attrs) {
      const v = safe.virtual(p);
      await beforeAccess?.(v, "open");
      const mode = utils.sftp.flagsToString(flags);
      if (!mode) throw new SftpError(STATUS.BAD_MESSAGE, "bad open flags");
      let local: string;
      try {
        local = await safe.local(v, true);
      } catch (err) {
        if ((flags & OPEN.CREAT) === 0 || (err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        local = await safe.local(v, false);
      }
      const fh = await fsp.open(local, mode, typeof attrs?.mode === "number" ? attrs.mode & 0o777 : 0o644);
      let st: Stats;
      try {
        st = await fh.stat();
        if (!st.isFile()) throw new SftpError(STATUS.FAILURE, "not a regular file");
      } catch (err) {
        await fh.close();
        throw err;
      }
      return { name: v, fh, size: st.size };
    },
    async stat(p, follow) {
      const v = safe.virtual(p);
      await beforeAccess?.(v, "stat");
      return follow ? fsp.stat(await safe.local(v, true)) : fsp.lstat(await safe.local(v, false));
    },
    async openDir(p) {
      const v = safe.virtual(p);
      await beforeAccess?.(v, "opendir");
      const local = await safe.local(v, true);
      const names = await fsp.readdir(local);
      return {
        names: [".", "..", ...names.sort()],
        stat: () => fsp.stat(local),
        // lstat: list symlinks as themselves; following them is checked when they are opened.
        entry: (name) => fsp.lstat(path.join(local, name)).catch(() => undefined),
      };
    },
    errorStatus: errnoStatus,
    ...(hooks.mapRead ? { mapRead: hooks.mapRead } : {}),
    ...(writable ? { writes: jailWrites(safe) } : {}),
  };
}

function jailWrites(safe: SafeRoot): SftpWrites {
  const existing = (p: string) => safe.local(safe.virtual(p), true);
  const named = (p: string) => safe.local(safe.virtual(p), false);
  const notRoot = async (p: string, what: string): Promise<string> => {
    const local = await named(p);
    if (local === safe.rootReal) throw new SftpError(STATUS.PERMISSION_DENIED, `cannot ${what} the root`);
    return local;
  };
  return {
    remove: async (p) => fsp.unlink(await notRoot(p, "remove")),
    rmdir: async (p) => fsp.rmdir(await notRoot(p, "remove")),
    mkdir: async (p, attrs) => void (await fsp.mkdir(await named(p), { mode: typeof attrs?.mode === "number" ? attrs.mode & 0o777 : 0o755 })),
    async rename(from, to) {
      const src = await named(from);
      const dst = await named(to);
      if (src === safe.rootReal) throw new SftpError(STATUS.PERMISSION_DENIED, "cannot rename the root");
      const exists = await fsp.lstat(dst).then(() => true, () => false);
      if (exists) throw new SftpError(STATUS.FAILURE, "target exists");
      await fsp.rename(src, dst);
    },
    setstat: async (p, attrs) => applyAttrs(await existing(p), attrs),
  };
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Convenience for `auth.password`: one fixed username/password pair, compared in constant time. */
export function passwordCheck(username: string, password: string): (u: string, p: string) => boolean {
  return (u, p) => constantTimeEqual(u, username) && constantTimeEqual(p, password);
}

function authorizedKey(k: string | Buffer | ParsedKey): AuthorizedKey {
  if (typeof k !== "string" && !Buffer.isBuffer(k)) return { key: k, fingerprint: fingerprint(k), comment: "", line: 0 };
  const r = parseAuthorizedKeys(k.toString());
  if (!r.ok) throw new Error(`authorized key: ${r.message}`);
  if (r.keys.length !== 1) throw new Error(`authorized key: expected one key, found ${r.keys.length}`);
  return r.keys[0]!;
}

/** `root` served over SFTP as `/`: the tree under a jail, on the one SFTP server. */
export async function startSftpServer(opts: SftpServerOptions): Promise<SftpServerHandle> {
  const hooks = opts.hooks ?? {};
  const safe = await SafeRoot.open(opts.root, hooks.mapPath);
  const keys = (opts.auth.authorizedKeys ?? []).map(authorizedKey);
  if (!opts.auth.password && keys.length === 0) throw new Error("startSftpServer: configure auth.password and/or auth.authorizedKeys");
  return listenSftp({
    listen: { address: opts.host ?? "127.0.0.1", port: opts.port ?? 0 },
    hostKey: opts.hostKey,
    ident: opts.ident ?? "capsync-sftp",
    auth: { password: opts.auth.password, keys, users: opts.auth.users },
    view: jailView(safe, hooks, opts.readOnly === false),
    maxConnections: opts.maxConnections ?? Infinity,
    maxAuthFailures: opts.maxAuthFailures,
    onConnection: hooks.onConnection,
    onSession: hooks.onSession,
    sftp: opts.sftp,
  });
}
