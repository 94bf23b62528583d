// SSH keys of the SFTP server (sftp-ssh.ts): authorized_keys (sshd(8) "AUTHORIZED_KEYS FILE
// FORMAT", with from= and expiry-time=), host keys kept on disk like sshd's, and generated ed25519
// pairs. Read once at start-up; every refusal names the file and line.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync, type Stats } from "node:fs";
import { BlockList, isIPv4, isIPv6 } from "node:net";
import path from "node:path";
import ssh2 from "ssh2";
import type { ParsedKey } from "ssh2";
import { CapsyncError } from "@capsync/protocol";

const { utils } = ssh2;

/** Default host key, inside the capture dir; a dot-file, so it is never served. */
export const HOST_KEY_FILE = ".sftp_host_ed25519_key";

export class SftpSetupError extends CapsyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("sftp-setup", message, options);
  }
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
  return blobFingerprint(key.getPublicSSH());
}

/** The fingerprint of a public key blob as the SSH wire carries it. */
export function blobFingerprint(blob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
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
export function fromAllows(patterns: HostPattern[], ip: string): boolean {
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

// --- host keys -----------------------------------------------------------------------------------

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

/** A fresh ed25519 key pair: `private` in OpenSSH format, `public` as an authorized_keys line. */
export function generateSshKeyPair(comment = "capsync"): { private: string; public: string } {
  // ssh2 (1.17) now and then writes an ed25519 key its own parser rejects as "Malformed OpenSSH
  // private/public key" (9 of 3,000 measured: a 31-byte key, its leading zero dropped); only hand
  // out pairs whose both halves parse.
  for (let i = 0; i < 20; i++) {
    const pair = utils.generateKeyPairSync("ed25519", { comment });
    const priv = utils.parseKey(pair.private);
    const pub = utils.parseKey(pair.public);
    if (priv && !(priv instanceof Error) && pub && !(pub instanceof Error)) return { private: pair.private, public: pair.public };
  }
  throw new Error("could not generate a usable ed25519 key");
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

/** A key as ssh2 parses it (OpenSSH or PEM text, or already parsed). */
export function parsePrivateKey(key: string | Buffer | ParsedKey): ParsedKey {
  const parsed = utils.parseKey(key);
  const k = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  if (!k || k instanceof Error) throw new Error(`cannot parse SSH key: ${k instanceof Error ? k.message : "empty"}`);
  return k;
}
