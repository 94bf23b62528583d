// The agent's read-only SFTP service: finished captures at the top of the capture dir, downloaded
// by the orchestrator (or OpenSSH `sftp`) with a key from an OpenSSH authorized_keys file.
// SFTP v3 (draft-ietf-secsh-filexfer-02) over ssh2's Server; public-key auth only.
// Deliberately not handled: any write, subdirectories, symlinks, passwords, SSH certificates,
// shells/exec/forwarding (ssh2 rejects requests nobody listens for), hostname patterns in from=.
//
// Why not startSftpServer (sftp-server.ts): that one serves a whole tree under a root jail. The
// agent's dir also holds its state file, log, host key and the files tcpdump is still writing, so
// the agent serves a flat allowlist of names instead: nothing else is listed, opened or stat'ed,
// and there is no path that can lead anywhere else. It also needs the key fingerprint of each
// login and the bytes sent per file for its log, which the generic server does not report.
import { generateSshKeyPair } from "./sftp-server.js";
import { createHash } from "node:crypto";
import { constants as fsc, mkdirSync, promises as fsp, readFileSync, realpathSync, statSync, writeFileSync, type Stats } from "node:fs";
import { BlockList, createServer, isIPv4, isIPv6, type Socket } from "node:net";
import path from "node:path";
import ssh2 from "ssh2";
import type { Attributes, AuthContext, ClientInfo, Connection, FileEntry, ParsedKey, SFTPWrapper } from "ssh2";
import { CapsyncError, formatEndpoint } from "@capsync/protocol";
import type { Logger } from "@capsync/common";
import { listeningServer, longname, statsToAttrs } from "./sftp-common.js";

const { Server: SshServer, utils } = ssh2;
const STATUS = utils.sftp.STATUS_CODE;
const OPEN = utils.sftp.OPEN_MODE;

export const DEFAULT_SFTP_PORT = 20022;
/** Default host key, inside the capture dir; a dot-file, so it is never served. */
export const HOST_KEY_FILE = ".sftp_host_ed25519_key";

/** Largest READ answer; clients ask for 32 KiB (ssh2) or up to 256 KiB (OpenSSH) and accept short reads. */
const MAX_READ = 64 * 1024;
const READDIR_BATCH = 64;
const MAX_HANDLES = 64;
const MAX_CONNECTIONS = 32;
const MAX_AUTH_FAILURES = 6;
/** Like sshd's LoginGraceTime: a connection that has not logged in by then is dropped. */
const LOGIN_GRACE_MS = 30_000;

export class SftpSetupError extends CapsyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("sftp-setup", message, options);
  }
}

// --- what is served ------------------------------------------------------------------------------

/**
 * Finished captures only: `*.pcap`, `*.pcapng` and tcpdump ring parts (`x.pcap0`, `x.pcap01`).
 * Dot-files (.incoming, the host key), the state file and the log never match.
 */
export function isServedName(name: string): boolean {
  return /^[^./\0][^/\0]*\.(?:pcap|pcapng)\d*$/i.test(name);
}

// --- authorized_keys -----------------------------------------------------------------------------

export interface AuthorizedKey {
  key: ParsedKey;
  /** OpenSSH style: `SHA256:<base64 without padding>`. */
  fingerprint: string;
  comment: string;
  line: number;
  /** `from="..."`: the peer address must match (addresses, globs, CIDR; no DNS). */
  from?: HostPattern[];
  /** `expiry-time="..."`: refused from this instant (ms since epoch). */
  expiresAt?: number;
}

interface HostPattern {
  negate: boolean;
  cidr?: BlockList;
  glob?: RegExp;
}

export type AuthorizedKeysResult = { ok: true; keys: AuthorizedKey[] } | { ok: false; line: number; message: string };

/** Key types ssh2 can verify. */
const SUPPORTED_TYPES = new Set(["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"]);
const KEY_TYPE = /^(?:ssh|ecdsa|sk)-[A-Za-z0-9@.-]+$/;
// Every option OpenSSH 9 knows. Those other than from=/expiry-time= restrict ptys, forwarding,
// commands or environment, none of which this server offers, so ignoring them loses nothing.
const KNOWN_OPTIONS = new Set([
  "agent-forwarding", "cert-authority", "command", "environment", "expiry-time", "from", "no-agent-forwarding",
  "no-port-forwarding", "no-pty", "no-touch-required", "no-user-rc", "no-x11-forwarding", "permitlisten", "permitopen",
  "port-forwarding", "principals", "pty", "restrict", "tunnel", "user-rc", "verify-required", "x11-forwarding",
]);

export function fingerprint(key: ParsedKey): string {
  return "SHA256:" + createHash("sha256").update(key.getPublicSSH()).digest("base64").replace(/=+$/, "");
}

/** Parse authorized_keys text (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"). Never throws. */
export function parseAuthorizedKeys(text: string): AuthorizedKeysResult {
  const keys: AuthorizedKey[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const r = parseKeyLine(line, i + 1);
    if (typeof r === "string") return { ok: false, line: i + 1, message: r };
    keys.push(r);
  }
  return { ok: true, keys };
}

const NOT_A_KEY = 'not a public key (expected "[options] <key type> <base64 key> [comment]")';

function parseKeyLine(line: string, n: number): AuthorizedKey | string {
  let rest = line;
  let options: Map<string, string | true> | undefined;
  const first = /^\S+/.exec(rest)![0];
  if (!KEY_TYPE.test(first)) {
    // Options: comma-separated, spaces only inside double quotes (\" escapes a quote).
    let j = 0;
    let quoted = false;
    for (; j < rest.length && (quoted || !/\s/.test(rest[j]!)); j++) {
      if (rest[j] === "\\" && quoted && rest[j + 1] === '"') j++;
      else if (rest[j] === '"') quoted = !quoted;
    }
    if (quoted) return "unterminated quote in the options";
    const after = rest.slice(j).trimStart();
    if (!KEY_TYPE.test(/^\S*/.exec(after)![0])) return NOT_A_KEY;
    const parsed = parseOptions(rest.slice(0, j));
    if (typeof parsed === "string") return parsed;
    options = parsed;
    rest = after;
  }
  const m = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(rest);
  if (!m || !KEY_TYPE.test(m[1]!)) return NOT_A_KEY;
  const type = m[1]!;
  if (!SUPPORTED_TYPES.has(type)) return `unsupported key type '${type}'`;
  const parsed = utils.parseKey(`${type} ${m[2]!}`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error || key.isPrivateKey() || key.type !== type) return `malformed ${type} key data`;
  const out: AuthorizedKey = { key, fingerprint: fingerprint(key), comment: m[3]?.trim() ?? "", line: n };
  if (options?.has("cert-authority") || options?.has("principals")) return "cert-authority/principals (SSH certificates) are not supported";
  const from = options?.get("from");
  if (from !== undefined) {
    const patterns = typeof from === "string" ? parseFrom(from) : "from needs a value: from=\"pattern-list\"";
    if (typeof patterns === "string") return patterns;
    out.from = patterns;
  }
  const expiry = options?.get("expiry-time");
  if (expiry !== undefined) {
    const at = typeof expiry === "string" ? parseExpiry(expiry) : undefined;
    if (at === undefined) return `expiry-time="${String(expiry)}": expected YYYYMMDD[HHMM[SS]][Z]`;
    out.expiresAt = at;
  }
  return out;
}

function parseOptions(text: string): Map<string, string | true> | string {
  const out = new Map<string, string | true>();
  const re = /([A-Za-z0-9-]+)(?:="((?:[^"\\]|\\.)*)")?(?:,|$)/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m || m[0] === "") return `cannot parse the options '${text}'`;
    const name = m[1]!.toLowerCase();
    if (!KNOWN_OPTIONS.has(name)) return `unknown option '${m[1]!}'`;
    out.set(name, m[2] === undefined ? true : m[2].replace(/\\"/g, '"'));
    pos = re.lastIndex;
  }
  return out;
}

function parseFrom(list: string): HostPattern[] | string {
  const out: HostPattern[] = [];
  for (const raw of list.split(",")) {
    const negate = raw.startsWith("!");
    const p = negate ? raw.slice(1) : raw;
    if (p === "") return `from="${list}": empty pattern`;
    if (p.includes("/")) {
      const [net, bits] = p.split("/");
      const v6 = isIPv6(net!);
      if ((!v6 && !isIPv4(net!)) || !/^\d{1,3}$/.test(bits ?? "") || Number(bits) > (v6 ? 128 : 32)) return `from="${list}": '${p}' is not an address/prefix`;
      const cidr = new BlockList();
      cidr.addSubnet(net!, Number(bits), v6 ? "ipv6" : "ipv4");
      out.push({ negate, cidr });
    } else {
      const glob = new RegExp("^" + p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$", "i");
      out.push({ negate, glob });
    }
  }
  return out;
}

/** OpenSSH pattern-list semantics: a matching negated pattern refuses, else any match allows. */
function fromAllows(patterns: HostPattern[], ip: string): boolean {
  const v6 = isIPv6(ip);
  const matches = (p: HostPattern) => (p.cidr ? p.cidr.check(ip, v6 ? "ipv6" : "ipv4") : p.glob!.test(ip));
  if (patterns.some((p) => p.negate && matches(p))) return false;
  return patterns.some((p) => !p.negate && matches(p));
}

function parseExpiry(v: string): number | undefined {
  const m = /^(\d{4})(\d\d)(\d\d)(?:(\d\d)(\d\d)(\d\d)?)?(Z)?$/.exec(v);
  if (!m) return undefined;
  const f = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0));
  // sshd reads the time in the system time zone unless it ends in Z.
  const t = m[7] ? Date.UTC(f[0]!, f[1]! - 1, f[2]!, f[3]!, f[4]!, f[5]!) : new Date(f[0]!, f[1]! - 1, f[2]!, f[3]!, f[4]!, f[5]!).getTime();
  return Number.isNaN(t) ? undefined : t;
}

/**
 * Read and parse an authorized_keys file. Like sshd's StrictModes it refuses a file that group
 * or others can write: whoever can add a line there can download every capture.
 */
export function loadAuthorizedKeys(file: string): AuthorizedKey[] {
  let text: string;
  try {
    if ((statSync(file).mode & 0o022) !== 0) throw new SftpSetupError(`${file}: writable by group/others; run: chmod go-w ${file}`);
    text = readFileSync(file, "utf8");
  } catch (e) {
    if (e instanceof SftpSetupError) throw e;
    throw new SftpSetupError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? "error"})`, { cause: e });
  }
  const r = parseAuthorizedKeys(text);
  if (!r.ok) throw new SftpSetupError(`${file}: line ${r.line}: ${r.message}`);
  if (r.keys.length === 0) throw new SftpSetupError(`${file}: no public keys in it`);
  return r.keys;
}

// --- host key ------------------------------------------------------------------------------------

export interface HostKey {
  key: ParsedKey;
  fingerprint: string;
  /** authorized_keys / known_hosts form of the public half. */
  publicLine: string;
  file: string;
  created: boolean;
}

function hostKeyFrom(file: string, text: string, created: boolean, hint = ""): HostKey {
  const parsed = utils.parseKey(text);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error || !key.isPrivateKey()) {
    throw new SftpSetupError(`host key ${file}: not an unencrypted OpenSSH/PEM private key (${key instanceof Error ? key.message : "no private key"})${hint}`);
  }
  return { key, fingerprint: fingerprint(key), publicLine: `${key.type} ${key.getPublicSSH().toString("base64")}`, file, created };
}

/** An existing host private key; like sshd, refused when group or others can read it. */
export function loadHostKey(file: string): HostKey {
  return hostKeyFrom(file, protectedText(file), false);
}

function protectedText(file: string): string {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (e) {
    throw new SftpSetupError(`host key ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? "error"})`, { cause: e });
  }
  if (!st.isFile()) throw new SftpSetupError(`host key ${file}: not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new SftpSetupError(`host key ${file}: mode ${(st.mode & 0o777).toString(8).padStart(4, "0")} lets group/others read it; run: chmod 600 ${file}`);
  }
  return readFileSync(file, "utf8");
}

/** `<dir>/.sftp_host_ed25519_key`, generated on first use so clients can pin it across restarts. */
export function loadOrCreateHostKey(dir: string): HostKey {
  const file = path.join(dir, HOST_KEY_FILE);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const pair = generateSshKeyPair("server-capture sftp host key");
  try {
    writeFileSync(file, pair.private, { mode: 0o600, flag: "wx" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new SftpSetupError(`host key ${file}: cannot create (${(e as NodeJS.ErrnoException).code ?? "error"})`, { cause: e });
    // An existing key that is unreadable or corrupt is an error, never silently replaced:
    // clients that pinned it would otherwise see a changed host key.
    return hostKeyFrom(file, protectedText(file), false, "; delete it to have a new one generated");
  }
  return hostKeyFrom(file, pair.private, true);
}

// --- the server ----------------------------------------------------------------------------------

export interface AgentSftpOptions {
  /** The capture dir; only its top-level finished captures are served. */
  dir: string;
  listen: { address: string; port: number };
  authorizedKeys: readonly AuthorizedKey[];
  hostKey: ParsedKey;
  log: Logger;
}

export interface AgentSftp {
  readonly address: string;
  readonly port: number;
  connections(): number;
  /** Stop listening, drop every connection, close open files. Safe to call twice. */
  close(): Promise<void>;
}

class FxError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
const noSuchFile = () => new FxError(STATUS.NO_SUCH_FILE, "No such file");

type Handle =
  | { kind: "file"; name: string; fh: fsp.FileHandle; size: number; sent: number }
  | { kind: "dir"; names: string[]; pos: number };

interface Peer {
  /** "addr:port" for logs. */
  endpoint: string;
  ip: string;
  user?: string;
  key?: AuthorizedKey;
}

export async function startAgentSftp(opts: AgentSftpOptions): Promise<AgentSftp> {
  if (opts.authorizedKeys.length === 0) throw new SftpSetupError("no authorized keys: nobody could log in");
  const root = realpathSync(opts.dir);
  const log = opts.log;
  const openFiles = new Set<fsp.FileHandle>();
  const sockets = new Set<Socket>();

  /** The served name a client path means, or NO_SUCH_FILE. "/", "..", "../x" all resolve from "/". */
  const servedName = (p: string): string => {
    if (p.includes("\0")) throw noSuchFile();
    const m = /^\/([^/]+)$/.exec(path.posix.resolve("/", p));
    if (!m || !isServedName(m[1]!)) throw noSuchFile();
    return m[1]!;
  };
  const isRoot = (p: string) => !p.includes("\0") && path.posix.resolve("/", p) === "/";
  /** lstat of a served name: regular files only (a symlink named x.pcap is not served). */
  const fileStat = async (name: string): Promise<Stats> => {
    const st = await fsp.lstat(path.join(root, name)).catch(() => undefined);
    if (!st?.isFile()) throw noSuchFile();
    return st;
  };

  const ssh = new SshServer({ hostKeys: [{ key: opts.hostKey }], ident: "capsync-server-capture" });
  ssh.on("connection", (client: Connection, info: ClientInfo) => {
    const ip = info.ip.startsWith("::ffff:") && isIPv4(info.ip.slice(7)) ? info.ip.slice(7) : info.ip;
    const peer: Peer = { ip, endpoint: formatEndpoint(ip, info.port) };
    client.on("error", (e) => log.debug(`sftp: ${peer.endpoint}: ${e.message}`));
    const grace = setTimeout(() => {
      log.warn(`sftp: ${peer.endpoint} did not log in within ${LOGIN_GRACE_MS / 1000}s; dropped`);
      client.end();
    }, LOGIN_GRACE_MS);
    client.once("close", () => clearTimeout(grace));
    let failures = 0;
    client.on("authentication", (ctx: AuthContext) => {
      const refuse = (why?: string) => {
        if (why) log.warn(`sftp: refused ${why} user=${ctx.username} peer=${peer.endpoint}`);
        ctx.reject(["publickey"]);
        if (ctx.method !== "none" && ++failures >= MAX_AUTH_FAILURES) client.end();
      };
      if (ctx.method !== "publickey") return refuse();
      const k = opts.authorizedKeys.find((a) => a.key.getPublicSSH().equals(ctx.key.data));
      if (!k) {
        // The client offers keys one by one; each unknown one is worth a line (it names the key).
        const fp = "SHA256:" + createHash("sha256").update(ctx.key.data).digest("base64").replace(/=+$/, "");
        return refuse(`key ${fp} (not in authorized keys)`);
      }
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
      const k = peer.key!;
      log.info(`sftp: login user=${peer.user!} key=${k.fingerprint}${k.comment ? ` (${k.comment})` : ""} peer=${peer.endpoint}`);
      client.on("session", (accept) => {
        const session = accept();
        session.on("sftp", (acceptSftp) => serve(acceptSftp(), peer));
      });
    });
    client.on("close", () => log.debug(`sftp: ${peer.endpoint} disconnected`));
  });

  function serve(sftp: SFTPWrapper, peer: Peer): void {
    const handles = new Map<number, Handle>();
    let nextHandle = 1;
    const newHandle = (h: Handle): Buffer => {
      if (handles.size >= MAX_HANDLES) throw new FxError(STATUS.FAILURE, "too many open handles");
      const id = nextHandle++;
      handles.set(id, h);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(id >>> 0);
      return b;
    };
    const getHandle = (b: Buffer): Handle => {
      const h = b.length === 4 ? handles.get(b.readUInt32BE(0)) : undefined;
      if (!h) throw new FxError(STATUS.FAILURE, "invalid handle");
      return h;
    };
    const who = () => `to ${peer.endpoint} (user ${peer.user ?? "?"}, key ${peer.key?.fingerprint ?? "?"})`;
    const finish = async (h: Extract<Handle, { kind: "file" }>, how: string): Promise<void> => {
      openFiles.delete(h.fh);
      await h.fh.close().catch(() => undefined);
      log.info(`sftp: sent ${h.name}: ${h.sent} of ${h.size} bytes ${who()}${how}`);
    };

    /** Runs one request; any error becomes a status answer, never a crash. */
    const run = (reqId: number, fn: () => Promise<void> | void): void => {
      void (async () => fn())().catch((err: unknown) => {
        let status: number = STATUS.FAILURE;
        let message = "Failure";
        if (err instanceof FxError) {
          status = err.status;
          message = err.message;
        } else {
          log.warn(`sftp: ${peer.endpoint}: ${(err as Error).message}`);
        }
        try {
          sftp.status(reqId, status, message);
        } catch {
          /* channel already gone */
        }
      });
    };
    // Every modification is refused the same way, whatever the path: no hint what exists.
    const refuseWrite = (op: string, p: unknown): FxError => {
      log.info(`sftp: refused ${op}${typeof p === "string" ? ` ${JSON.stringify(p)}` : ""} from ${peer.endpoint} (read-only)`);
      return new FxError(STATUS.PERMISSION_DENIED, "read-only server");
    };
    const deny = (op: string) => (reqId: number, p?: unknown) =>
      run(reqId, () => {
        throw refuseWrite(op, p);
      });

    sftp.on("OPEN", (reqId: number, filename: string, flags: number) =>
      run(reqId, async () => {
        if ((flags & (OPEN.WRITE | OPEN.APPEND | OPEN.CREAT | OPEN.TRUNC | OPEN.EXCL)) !== 0) throw refuseWrite("open for writing", filename);
        const name = servedName(filename);
        // O_NOFOLLOW: a symlink swapped in after the check is not followed; O_NONBLOCK: a FIFO
        // named like a capture cannot hang the open.
        const fh = await fsp.open(path.join(root, name), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK).catch(() => {
          throw noSuchFile();
        });
        const st = await fh.stat().catch(() => undefined);
        if (!st?.isFile()) {
          await fh.close();
          throw noSuchFile();
        }
        const h: Handle = { kind: "file", name, fh, size: st.size, sent: 0 };
        let hb: Buffer;
        try {
          hb = newHandle(h);
        } catch (e) {
          await fh.close();
          throw e;
        }
        openFiles.add(fh);
        sftp.handle(reqId, hb);
      }),
    );

    sftp.on("READ", (reqId: number, handle: Buffer, offset: number, len: number) =>
      run(reqId, async () => {
        const h = getHandle(handle);
        if (h.kind !== "file") throw new FxError(STATUS.FAILURE, "invalid handle");
        const want = Math.min(Math.max(len, 0), MAX_READ);
        const buf = Buffer.alloc(want);
        const { bytesRead } = await h.fh.read(buf, 0, want, offset);
        if (bytesRead === 0) return void sftp.status(reqId, STATUS.EOF);
        h.sent += bytesRead;
        sftp.data(reqId, buf.subarray(0, bytesRead));
      }),
    );

    sftp.on("FSTAT", (reqId: number, handle: Buffer) =>
      run(reqId, async () => {
        const h = getHandle(handle);
        sftp.attrs(reqId, statsToAttrs(h.kind === "file" ? await h.fh.stat() : await fsp.stat(root)));
      }),
    );

    const stat = (reqId: number, p: string) =>
      run(reqId, async () => {
        sftp.attrs(reqId, statsToAttrs(isRoot(p) ? await fsp.stat(root) : await fileStat(servedName(p))));
      });
    sftp.on("STAT", stat);
    sftp.on("LSTAT", stat);

    sftp.on("REALPATH", (reqId: number, p: string) =>
      run(reqId, () => {
        if (p.includes("\0")) throw noSuchFile();
        const v = path.posix.resolve("/", p === "" ? "." : p);
        sftp.name(reqId, [{ filename: v, longname: v, attrs: {} as Attributes }]);
      }),
    );

    sftp.on("OPENDIR", (reqId: number, p: string) =>
      run(reqId, async () => {
        if (!isRoot(p)) throw noSuchFile();
        const names = (await fsp.readdir(root, { withFileTypes: true })).filter((d) => d.isFile() && isServedName(d.name)).map((d) => d.name);
        sftp.handle(reqId, newHandle({ kind: "dir", names: names.sort(), pos: 0 }));
      }),
    );

    sftp.on("READDIR", (reqId: number, handle: Buffer) =>
      run(reqId, async () => {
        const h = getHandle(handle);
        if (h.kind !== "dir") throw new FxError(STATUS.FAILURE, "invalid handle");
        const entries: FileEntry[] = [];
        while (h.pos < h.names.length && entries.length < READDIR_BATCH) {
          const name = h.names[h.pos++]!;
          const st = await fileStat(name).catch(() => undefined); // renamed or gone since OPENDIR
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

    sftp.on("WRITE", deny("write"));
    sftp.on("FSETSTAT", deny("setstat"));
    sftp.on("SETSTAT", deny("setstat"));
    sftp.on("REMOVE", deny("remove"));
    sftp.on("RMDIR", deny("rmdir"));
    sftp.on("MKDIR", deny("mkdir"));
    sftp.on("RENAME", deny("rename"));
    sftp.on("SYMLINK", deny("symlink"));
    sftp.on("READLINK", (reqId: number) => run(reqId, () => { throw noSuchFile(); }));
    sftp.on("EXTENDED", (reqId: number) => run(reqId, () => { throw new FxError(STATUS.OP_UNSUPPORTED, "not supported"); }));

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

  // ssh2's Server is fed from our own net.Server so close() can drop live connections and a
  // connection cap applies before any handshake work.
  const net = createServer((socket) => {
    if (sockets.size >= MAX_CONNECTIONS) {
      log.warn(`sftp: ${socket.remoteAddress ?? "?"}: more than ${MAX_CONNECTIONS} connections; refused`);
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    ssh.injectSocket(socket);
  });
  await new Promise<void>((resolve, reject) => {
    net.once("error", (e) => reject(new SftpSetupError(`sftp: cannot listen on ${formatEndpoint(opts.listen.address, opts.listen.port)}: ${e.message}`, { cause: e })));
    net.listen({ host: opts.listen.address, port: opts.listen.port }, () => resolve());
  });
  net.removeAllListeners("error");
  net.on("error", (e) => log.error(`sftp: ${e.message}`));
  return listeningServer(net, sockets, () => {
    for (const fh of openFiles) void fh.close().catch(() => undefined);
    openFiles.clear();
  });
}
