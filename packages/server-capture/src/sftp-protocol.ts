// SFTP protocol version 3 (draft-ietf-secsh-filexfer-02) on one ssh2 channel: requests, handles,
// bounds and status codes. What is served is an SftpView's (the agent's captures in sftp.ts, a
// directory tree in sftp-jail.ts); the SSH side (listening, logins, sessions) is sftp-ssh.ts.
// Not handled: symlink creation, readlink, SFTP extensions.
import { constants as fsc, promises as fsp, type Stats } from "node:fs";
import ssh2 from "ssh2";
import type { Attributes, FileEntry, SFTPWrapper } from "ssh2";
import type { Logger } from "@capsync/common";
import type { AuthorizedKey } from "./sftp-keys.js";

const { utils } = ssh2;
export const STATUS = utils.sftp.STATUS_CODE;
const OPEN = utils.sftp.OPEN_MODE;
const WRITE_FLAGS = OPEN.WRITE | OPEN.APPEND | OPEN.CREAT | OPEN.TRUNC | OPEN.EXCL;

/** Largest READ answer; clients ask for 32 KiB (ssh2) or up to 256 KiB (OpenSSH) and accept short reads. */
const MAX_READ = 64 * 1024;
const READDIR_BATCH = 64;
const MAX_HANDLES = 64;

/** A refusal: the status and message the client sees. */
export class SftpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
export const noSuchFile = (): SftpError => new SftpError(STATUS.NO_SUCH_FILE, "No such file");

/** A file a view opened. `name`: how logs and `mapRead` call it; `size`: at open, for the log. */
export interface SftpFile {
  name: string;
  fh: fsp.FileHandle;
  size: number;
}

/** A directory a view opened: its entries in answer order, each stat'ed when READDIR reaches it. */
export interface SftpDir {
  names: string[];
  stat(): Promise<Stats>;
  /** undefined: gone (or no longer served) since OPENDIR; left out of the answer. */
  entry(name: string): Promise<Stats | undefined>;
}

/** Changes a writable view makes, each on a client path. */
export interface SftpWrites {
  remove(p: string): Promise<void>;
  rmdir(p: string): Promise<void>;
  mkdir(p: string, attrs: Attributes): Promise<void>;
  /** SFTP v3: never replaces an existing file. */
  rename(from: string, to: string): Promise<void>;
  setstat(p: string, attrs: Attributes): Promise<void>;
}

/**
 * What a server serves. Each method takes the client's path as sent and resolves it, or throws an
 * SftpError (the refusal the client sees). Without `writes` the server is read-only: every change,
 * whatever its path, is refused with PERMISSION_DENIED before the view sees it.
 */
export interface SftpView {
  /** The canonical absolute path ("/a/b") a client path names (REALPATH; "" arrives as "."). */
  realpath(p: string): string;
  /** Opens a regular file. `flags`: SFTP open flags; write flags reach only a view with `writes`. */
  open(p: string, flags: number, attrs: Attributes): Promise<SftpFile>;
  /** `follow`: STAT (symlinks followed) rather than LSTAT. */
  stat(p: string, follow: boolean): Promise<Stats>;
  openDir(p: string): Promise<SftpDir>;
  writes?: SftpWrites;
  /** The refusal for an error that is not an SftpError (e.g. an errno); otherwise it is logged and answered FAILURE. */
  errorStatus?(err: unknown): SftpError;
  /** Alters what a READ returns (an emulator's fault injection); an empty answer means EOF. */
  mapRead?(name: string, position: number, data: Buffer): Buffer;
}

/** The client of a connection, for logs. */
export interface SftpPeer {
  ip: string;
  /** "addr:port". */
  endpoint: string;
  user?: string;
  /** The key it logged in with (public-key logins). */
  key?: AuthorizedKey;
}

export interface SftpSessionContext {
  peer: SftpPeer;
  log: Logger | undefined;
  /** Files open in every session of the server, closed when it stops. */
  openFiles: Set<fsp.FileHandle>;
}

type Handle =
  | { kind: "file"; file: SftpFile; writable: boolean; sent: number }
  | { kind: "dir"; dir: SftpDir; pos: number };

export function statsToAttrs(st: Stats): Attributes {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

function modeString(mode: number): string {
  const type = (mode & fsc.S_IFMT) === fsc.S_IFDIR ? "d" : (mode & fsc.S_IFMT) === fsc.S_IFLNK ? "l" : "-";
  const bits = "rwxrwxrwx";
  let s = type;
  for (let i = 0; i < 9; i++) s += mode & (1 << (8 - i)) ? bits[i] : "-";
  return s;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/** `ls -l` style line (section 7); OpenSSH `sftp` prints it for `ls -l`. */
function longname(name: string, st: Stats): string {
  const d = st.mtime;
  const date = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`;
  return `${modeString(st.mode)} ${String(st.nlink).padStart(4)} ${String(st.uid).padEnd(8)} ${String(st.gid).padEnd(8)} ${String(st.size).padStart(12)} ${date} ${name}`;
}

/** SETSTAT/FSETSTAT: size, permissions, times, on a path or an open file. */
export async function applyAttrs(target: string | fsp.FileHandle, attrs: Attributes): Promise<void> {
  const f = typeof target === "string" ? undefined : target;
  const p = typeof target === "string" ? target : undefined;
  if (typeof attrs.size === "number") await (f ? f.truncate(attrs.size) : fsp.truncate(p!, attrs.size));
  if (typeof attrs.mode === "number") await (f ? f.chmod(attrs.mode & 0o7777) : fsp.chmod(p!, attrs.mode & 0o7777));
  if (typeof attrs.atime === "number" && typeof attrs.mtime === "number") await (f ? f.utimes(attrs.atime, attrs.mtime) : fsp.utimes(p!, attrs.atime, attrs.mtime));
}

/** Serves SFTP requests on `sftp` from `view` until the channel closes. */
export function serveSftp(sftp: SFTPWrapper, view: SftpView, ctx: SftpSessionContext): void {
  const { peer, log, openFiles } = ctx;
  const handles = new Map<number, Handle>();
  let nextHandle = 1;
  const newHandle = (h: Handle): Buffer => {
    if (handles.size >= MAX_HANDLES) throw new SftpError(STATUS.FAILURE, "too many open handles");
    const id = nextHandle++;
    handles.set(id, h);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(id >>> 0);
    return b;
  };
  const getHandle = (b: Buffer): Handle => {
    const h = b.length === 4 ? handles.get(b.readUInt32BE(0)) : undefined;
    if (!h) throw new SftpError(STATUS.FAILURE, "invalid handle");
    return h;
  };
  const fileHandle = (b: Buffer): Extract<Handle, { kind: "file" }> => {
    const h = getHandle(b);
    if (h.kind !== "file") throw new SftpError(STATUS.FAILURE, "invalid handle");
    return h;
  };
  const who = () => `to ${peer.endpoint} (user ${peer.user ?? "?"}, key ${peer.key?.fingerprint ?? "?"})`;
  const finish = async (h: Extract<Handle, { kind: "file" }>, how: string): Promise<void> => {
    openFiles.delete(h.file.fh);
    await h.file.fh.close().catch(() => undefined);
    log?.info(`sftp: sent ${h.file.name}: ${h.sent} of ${h.file.size} bytes ${who()}${how}`);
  };

  /** Runs one request; any error becomes a status answer, never a crash. */
  const run = (reqId: number, fn: () => Promise<void> | void): void => {
    void (async () => fn())().catch((err: unknown) => {
      let refusal = err instanceof SftpError ? err : view.errorStatus?.(err);
      if (!refusal) {
        log?.warn(`sftp: ${peer.endpoint}: ${(err as Error).message}`);
        refusal = new SftpError(STATUS.FAILURE, "Failure");
      }
      try {
        sftp.status(reqId, refusal.status, refusal.message);
      } catch {
        /* channel already gone */
      }
    });
  };
  // Without `writes` every modification is refused the same way, whatever the path: no hint what exists.
  const writes = (op: string, p: unknown): SftpWrites => {
    if (view.writes) return view.writes;
    log?.info(`sftp: refused ${op}${typeof p === "string" ? ` ${JSON.stringify(p)}` : ""} from ${peer.endpoint} (read-only)`);
    throw new SftpError(STATUS.PERMISSION_DENIED, "read-only server");
  };
  const change = (reqId: number, op: string, p: string, apply: (w: SftpWrites) => Promise<void>): void =>
    run(reqId, async () => {
      await apply(writes(op, p));
      sftp.status(reqId, STATUS.OK);
    });

  sftp.on("OPEN", (reqId: number, filename: string, flags: number, attrs: Attributes) =>
    run(reqId, async () => {
      const writable = (flags & WRITE_FLAGS) !== 0;
      if (writable) writes("open for writing", filename);
      const file = await view.open(filename, flags, attrs);
      let hb: Buffer;
      try {
        hb = newHandle({ kind: "file", file, writable, sent: 0 });
      } catch (e) {
        await file.fh.close();
        throw e;
      }
      openFiles.add(file.fh);
      sftp.handle(reqId, hb);
    }),
  );

  sftp.on("READ", (reqId: number, handle: Buffer, offset: number, len: number) =>
    run(reqId, async () => {
      const h = fileHandle(handle);
      const want = Math.min(Math.max(len, 0), MAX_READ);
      const buf = Buffer.alloc(want);
      const { bytesRead } = await h.file.fh.read(buf, 0, want, offset);
      let data: Buffer = buf.subarray(0, bytesRead);
      if (bytesRead > 0 && view.mapRead) data = view.mapRead(h.file.name, offset, data);
      if (data.length === 0) return void sftp.status(reqId, STATUS.EOF);
      h.sent += data.length;
      sftp.data(reqId, data);
    }),
  );

  sftp.on("WRITE", (reqId: number, handle: Buffer, offset: number, data: Buffer) =>
    run(reqId, async () => {
      writes("write", handle);
      const h = fileHandle(handle);
      if (!h.writable) throw new SftpError(STATUS.FAILURE, "invalid handle");
      await h.file.fh.write(data, 0, data.length, offset);
      sftp.status(reqId, STATUS.OK);
    }),
  );

  sftp.on("FSTAT", (reqId: number, handle: Buffer) =>
    run(reqId, async () => {
      const h = getHandle(handle);
      sftp.attrs(reqId, statsToAttrs(h.kind === "file" ? await h.file.fh.stat() : await h.dir.stat()));
    }),
  );

  sftp.on("FSETSTAT", (reqId: number, handle: Buffer, attrs: Attributes) =>
    run(reqId, async () => {
      writes("setstat", handle);
      await applyAttrs(fileHandle(handle).file.fh, attrs);
      sftp.status(reqId, STATUS.OK);
    }),
  );

  const stat = (follow: boolean) => (reqId: number, p: string) =>
    run(reqId, async () => {
      sftp.attrs(reqId, statsToAttrs(await view.stat(p, follow)));
    });
  sftp.on("STAT", stat(true));
  sftp.on("LSTAT", stat(false));

  sftp.on("REALPATH", (reqId: number, p: string) =>
    run(reqId, () => {
      const v = view.realpath(p === "" ? "." : p);
      // Empty attributes, as OpenSSH's sftp-server answers.
      sftp.name(reqId, [{ filename: v, longname: v, attrs: {} as Attributes }]);
    }),
  );

  sftp.on("OPENDIR", (reqId: number, p: string) =>
    run(reqId, async () => {
      const dir = await view.openDir(p);
      sftp.handle(reqId, newHandle({ kind: "dir", dir, pos: 0 }));
    }),
  );

  sftp.on("READDIR", (reqId: number, handle: Buffer) =>
    run(reqId, async () => {
      const h = getHandle(handle);
      if (h.kind !== "dir") throw new SftpError(STATUS.FAILURE, "invalid handle");
      const entries: FileEntry[] = [];
      while (h.pos < h.dir.names.length && entries.length < READDIR_BATCH) {
        const name = h.dir.names[h.pos++]!;
        const st = await h.dir.entry(name);
        if (st) entries.push({ filename: name, longname: longname(name, st), attrs: statsToAttrs(st) });
      }
      if (entries.length === 0) return void sftp.status(reqId, STATUS.EOF);
      sftp.name(reqId, entries);
    }),
  );

  sftp.on("CLOSE", (reqId: number, handle: Buffer) =>
    run(reqId, async () => {
      const h = getHandle(handle);
      handles.delete(handle.readUInt32BE(0));
      if (h.kind === "file") await finish(h, "");
      sftp.status(reqId, STATUS.OK);
    }),
  );

  sftp.on("SETSTAT", (reqId: number, p: string, attrs: Attributes) => change(reqId, "setstat", p, (w) => w.setstat(p, attrs)));
  sftp.on("REMOVE", (reqId: number, p: string) => change(reqId, "remove", p, (w) => w.remove(p)));
  sftp.on("RMDIR", (reqId: number, p: string) => change(reqId, "rmdir", p, (w) => w.rmdir(p)));
  sftp.on("MKDIR", (reqId: number, p: string, attrs: Attributes) => change(reqId, "mkdir", p, (w) => w.mkdir(p, attrs)));
  sftp.on("RENAME", (reqId: number, from: string, to: string) => change(reqId, "rename", from, (w) => w.rename(from, to)));
  // A symlink's target could point anywhere: never created, never read.
  sftp.on("SYMLINK", (reqId: number, p: string) =>
    run(reqId, () => {
      writes("symlink", p);
      throw new SftpError(STATUS.PERMISSION_DENIED, "symlinks are not allowed");
    }),
  );
  sftp.on("READLINK", (reqId: number) => run(reqId, () => { throw noSuchFile(); }));
  sftp.on("EXTENDED", (reqId: number) => run(reqId, () => { throw new SftpError(STATUS.OP_UNSUPPORTED, "not supported"); }));

  const closeAll = (): void => {
    for (const h of handles.values()) if (h.kind === "file") void finish(h, " (connection closed before CLOSE)");
    handles.clear();
  };
  sftp.on("close", closeAll);
  // The client's EOF means it is done (OpenSSH `sftp` then waits for our side of the channel to close).
  sftp.on("end", () => {
    closeAll();
    sftp.end();
  });
}
