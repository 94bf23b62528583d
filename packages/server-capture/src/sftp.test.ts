import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import ssh2 from "ssh2";
import { describe, expect, it } from "vitest";
import SftpClient from "ssh2-sftp-client";
import { Writable } from "node:stream";
import winston from "winston";
import { HOST_KEY_FILE, generateSshKeyPair, loadAuthorizedKeys, loadHostKey, loadOrCreateHostKey, parseAuthorizedKeys } from "./sftp-keys.js";
import { isServedName, startAgentSftp } from "./sftp.js";

const ed = generateSshKeyPair("orchestrator@lab");
const ecdsa = ssh2.utils.generateKeyPairSync("ecdsa", { bits: 256, comment: "e" });
const [edType, edB64] = ed.public.split(" ") as [string, string];

describe("isServedName", () => {
  const table: [string, boolean][] = [
    ["OVOC_device_192.0.2.10_2026-11-23T10.00.00.000000-0.pcap", true],
    ["CPE_x_server-1.pcapng", true],
    ["tmp_device_192.0.2.10_2026-11-23T10.00.00.000000.pcap3", true],
    ["tmp_device_x.pcap01", true],
    ["UPPER.PCAP", true],
    ["server-capture-state.json", false],
    ["server-capture.log", false],
    [".incoming", false],
    [HOST_KEY_FILE, false],
    [".hidden.pcap", false],
    ["a.pcap.tmp", false],
    ["a.txt", false],
    ["pcap", false],
    ["a/b.pcap", false],
  ];
  it.each(table)("%s → %s", (name, expected) => expect(isServedName(name)).toBe(expected));
});

describe("parseAuthorizedKeys", () => {
  it("reads keys with comments, blank lines, options and CRLF", () => {
    const text = `# capsync orchestrators\r\n\r\n${ed.public}\r\n  from="10.0.0.0/8,!10.9.9.9",no-pty,command="echo \\"x y\\"" ${ecdsa.public}\n`;
    const r = parseAuthorizedKeys(text);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.keys.map((k) => [k.line, k.key.type, k.comment])).toEqual([
      [3, "ssh-ed25519", "orchestrator@lab"],
      [4, "ecdsa-sha2-nistp256", "e"],
    ]);
    expect(r.keys[0]!.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(r.keys[1]!.from).toHaveLength(2);
  });

  it("matches ssh-keygen's fingerprint", () => {
    const dir = mkdtempSync(join(tmpdir(), "capsync-fp-"));
    writeFileSync(join(dir, "k.pub"), ed.public + "\n");
    const out = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", join(dir, "k.pub")], { encoding: "utf8" });
    const r = parseAuthorizedKeys(ed.public);
    expect(r.ok && out.split(" ")[1]).toBe(r.ok ? r.keys[0]!.fingerprint : "");
  });

  const bad: { name: string; input: string; line: number; message: string }[] = [
    { name: "garbage", input: "hello world", line: 1, message: 'not a public key (expected "[options] <key type> <base64 key> [comment]")' },
    { name: "key without type", input: `# c\n${edB64} me`, line: 2, message: 'not a public key (expected "[options] <key type> <base64 key> [comment]")' },
    { name: "truncated base64", input: `${edType} ${edB64.slice(0, 30)}`, line: 1, message: "malformed ssh-ed25519 key data" },
    { name: "type mismatch", input: `ssh-rsa ${edB64}`, line: 1, message: "malformed ssh-rsa key data" },
    { name: "type only", input: `${ed.public}\nssh-ed25519`, line: 2, message: 'not a public key (expected "[options] <key type> <base64 key> [comment]")' },
    { name: "security key", input: `sk-ssh-ed25519@openssh.com ${edB64}`, line: 1, message: "unsupported key type 'sk-ssh-ed25519@openssh.com'" },
    { name: "certificate", input: `ssh-ed25519-cert-v01@openssh.com ${edB64}`, line: 1, message: "unsupported key type 'ssh-ed25519-cert-v01@openssh.com'" },
    { name: "unknown option", input: `frm="1.2.3.4" ${ed.public}`, line: 1, message: "unknown option 'frm'" },
    { name: "unterminated quote", input: `from="1.2.3.4 ${ed.public}`, line: 1, message: "unterminated quote in the options" },
    { name: "bad cidr", input: `from="10.0.0.0/33" ${ed.public}`, line: 1, message: `from="10.0.0.0/33": '10.0.0.0/33' is not an address/prefix` },
    { name: "cert-authority", input: `cert-authority ${ed.public}`, line: 1, message: "cert-authority/principals (SSH certificates) are not supported" },
    { name: "bad expiry", input: `expiry-time="2026" ${ed.public}`, line: 1, message: 'expiry-time="2026": expected YYYYMMDD[HHMM[SS]][Z]' },
    { name: "private key pasted", input: ed.private, line: 1, message: 'not a public key (expected "[options] <key type> <base64 key> [comment]")' },
  ];
  it.each(bad)("$name → line $line: $message", ({ input, line, message }) => {
    expect(parseAuthorizedKeys(input)).toEqual({ ok: false, line, message });
  });
});

describe("loadAuthorizedKeys / host keys", () => {
  it("refuses group-writable and empty files with the file name", () => {
    const dir = mkdtempSync(join(tmpdir(), "capsync-ak-"));
    const f = join(dir, "authorized_keys");
    writeFileSync(f, ed.public, { mode: 0o664 });
    chmodSync(f, 0o664);
    expect(() => loadAuthorizedKeys(f)).toThrow(`${f}: writable by group/others; run: chmod go-w ${f}`);
    writeFileSync(f, "# nothing yet\n");
    chmodSync(f, 0o644);
    expect(() => loadAuthorizedKeys(f)).toThrow(`${f}: no public keys in it`);
    expect(() => loadAuthorizedKeys(join(dir, "missing"))).toThrow(/missing: cannot read \(ENOENT\)/);
  });

  it("generates the host key once (0600) and loads it afterwards; refuses loose or corrupt keys", () => {
    const dir = join(mkdtempSync(join(tmpdir(), "capsync-hk-")), "captures");
    const a = loadOrCreateHostKey(dir);
    expect(a.created).toBe(true);
    expect(statSync(a.file).mode & 0o777).toBe(0o600);
    const b = loadOrCreateHostKey(dir);
    expect(b.created).toBe(false);
    expect(b.fingerprint).toBe(a.fingerprint);
    chmodSync(a.file, 0o644);
    expect(() => loadOrCreateHostKey(dir)).toThrow(`host key ${a.file}: mode 0644 lets group/others read it; run: chmod 600 ${a.file}`);
    writeFileSync(a.file, "junk", { mode: 0o600 });
    chmodSync(a.file, 0o600);
    expect(() => loadHostKey(a.file)).toThrow(/not an unencrypted OpenSSH\/PEM private key \(.*\)$/);
    expect(() => loadOrCreateHostKey(dir)).toThrow(/not an unencrypted OpenSSH\/PEM private key \(.*\); delete it to have a new one generated$/);
    expect(readFileSync(a.file, "utf8")).toBe("junk"); // never silently replaced
  });
});

describe("startAgentSftp: authorized_keys options", () => {
  it("honours from= (CIDR, globs, negation) and expiry-time=", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capsync-sftp-opts-"));
    writeFileSync(join(dir, "a.pcap"), "a");
    const keys = [1, 2, 3, 4].map((i) => generateSshKeyPair(`k${i}`));
    const text = [
      `from="10.0.0.0/8" ${keys[0]!.public}`,
      `from="127.0.0.*,!127.0.0.2" ${keys[1]!.public}`,
      `from="127.0.0.0/8,!127.0.0.1" ${keys[2]!.public}`,
      `expiry-time="20200101Z" ${keys[3]!.public}`,
    ].join("\n");
    const r = parseAuthorizedKeys(text);
    if (!r.ok) throw new Error(r.message);
    const lines: string[] = [];
    const sink = new Writable({
      objectMode: true,
      write: (i: { message: string }, _enc, done) => (lines.push(i.message), done()),
    });
    const log = winston.createLogger({ level: "debug", transports: [new winston.transports.Stream({ stream: sink })] });
    const srv = await startAgentSftp({ dir, listen: { address: "127.0.0.1", port: 0 }, authorizedKeys: r.keys, hostKey: loadOrCreateHostKey(dir).key, log });
    const quiet = { error: () => {}, end: () => {}, close: () => {} };
    const tryKey = async (privateKey: string) => {
      const c = new SftpClient("t", quiet);
      try {
        await c.connect({ host: "127.0.0.1", port: srv.port, username: "anyone", privateKey, readyTimeout: 5000 });
        return ((await c.get("/a.pcap")) as Buffer).toString();
      } catch (e) {
        return (e as Error).message;
      } finally {
        await c.end().catch(() => undefined);
      }
    };
    try {
      expect(await tryKey(keys[0]!.private)).toMatch(/authentication methods failed/);
      expect(await tryKey(keys[1]!.private)).toBe("a");
      expect(await tryKey(keys[2]!.private)).toMatch(/authentication methods failed/);
      expect(await tryKey(keys[3]!.private)).toMatch(/authentication methods failed/);
    } finally {
      await srv.close();
      await srv.close();
    }
    expect(lines.filter((l) => l.startsWith("sftp: refused key")).map((l) => l.replace(/SHA256:\S+/, "FP").replace(/:\d+$/, ""))).toEqual([
      "sftp: refused key FP (authorized_keys line 1: from= does not match 127.0.0.1) user=anyone peer=127.0.0.1",
      "sftp: refused key FP (authorized_keys line 3: from= does not match 127.0.0.1) user=anyone peer=127.0.0.1",
      "sftp: refused key FP (authorized_keys line 4: expired) user=anyone peer=127.0.0.1",
    ]);
    expect(lines.some((l) => /^sftp: login user=anyone key=SHA256:\S+ \(k2\) peer=127\.0\.0\.1:\d+$/.test(l))).toBe(true);
  });
});
