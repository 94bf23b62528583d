// server-capture's read-only SFTP service end to end: the real binary, a real capture, then the
// download with ssh2-sftp-client (what cpe-capture uses) and with OpenSSH `sftp`.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import ssh2 from "ssh2";
import SftpClient from "ssh2-sftp-client";
import { generateSshKeyPair } from "@capsync/server-capture/sftp-keys";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_CLI, TestPeer, sendTraffic, startAgent, tempDir, udpSink, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { readPcap } from "../helpers/pcap-lite.js";

const run = promisify(execFile);
const DEV = "127.0.0.21";
const CPE = `CPE_device_${DEV}_2026-11-23T10.00.00.000000.pcap`;
const OVOC = `OVOC_device_${DEV}_2026-11-23T10.00.00.000000-0.pcap`;
// Finished files that are not from this run but must be served like any capture.
const RING_PART = "tmp_device_127.0.0.99_2026-11-23T09.00.00.000000.pcap1";
const PCAPNG = "manual.pcapng";
const quiet = { error: () => {}, end: () => {}, close: () => {} };

const client = generateSshKeyPair("orchestrator@test");
const stranger = generateSshKeyPair("stranger");
/** What ssh-keygen -l prints: SHA256 of the public key blob, base64 without padding. */
const sshFingerprint = (pub: string) =>
  "SHA256:" + createHash("sha256").update((ssh2.utils.parseKey(pub) as ssh2.ParsedKey).getPublicSSH()).digest("base64").replace(/=+$/, "");

let keyDir: string;
let agentKey: string;
let clientKeyFile: string;
let strangerKeyFile: string;
let authorizedKeys: string;
let agent: AgentProc;
let captured: Buffer;

async function sftpClient(port: number, privateKey: string, hostKeys?: Buffer[]): Promise<SftpClient> {
  const c = new SftpClient("test", quiet);
  await c.connect({
    host: "127.0.0.1",
    port,
    username: "capsync",
    privateKey,
    readyTimeout: 5000,
    ...(hostKeys ? { hostVerifier: (key: Buffer) => (hostKeys.push(key), true) } : {}),
  });
  return c;
}

/** OpenSSH `sftp -b`, never failing the promise: tests look at code, stdout and stderr. */
async function opensshSftp(port: number, keyFile: string, batch: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const b = join(keyDir, `batch-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  writeFileSync(b, batch);
  return run(
    "sftp",
    [
      "-b", b, "-i", keyFile, "-P", String(port),
      "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
      "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
      "capsync@127.0.0.1",
    ],
    { timeout: 10_000 },
  ).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

async function waitFor(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  keyDir = tempDir("capsync-sftp-keys-");
  agentKey = writeKey(keyDir);
  clientKeyFile = join(keyDir, "id_ed25519");
  strangerKeyFile = join(keyDir, "stranger_ed25519");
  writeFileSync(clientKeyFile, client.private, { mode: 0o600 });
  writeFileSync(strangerKeyFile, stranger.private, { mode: 0o600 });
  authorizedKeys = join(keyDir, "authorized_keys");
  writeFileSync(authorizedKeys, `# capsync orchestrators\n\n${client.public}\n`, { mode: 0o600 });

  agent = await startAgent(["--key-file", agentKey, "--interface", "lo", "--sftp-listen", "127.0.0.1:0", "--authorized-keys", authorizedKeys]);
  expect(agent.stdout()).toMatch(/^server-capture ready 127\.0\.0\.1 \d+\nserver-capture sftp 127\.0\.0\.1 \d+\n$/);
  expect(agent.sftpPort).toBeGreaterThan(0);

  const peer = await TestPeer.open();
  const sink = await udpSink(DEV);
  try {
    expect((await peer.request(agent.port, { verb: "CAPTURE", device: DEV })).final.code).toBe(200);
    await sendTraffic(DEV, sink.port, 40, 1);
    const stop = await peer.request(agent.port, { verb: "STOP", device: DEV, filename: CPE });
    expect(stop.final.code).toBe(200);
    expect(stop.final.details.file).toBe(OVOC);
  } finally {
    peer.close();
    sink.close();
  }
  captured = readFileSync(join(agent.dir, OVOC));
  expect(readPcap(join(agent.dir, OVOC)).packets).toHaveLength(40);

  // Things that sit in (or get dropped into) the capture dir and must never be served.
  writeFileSync(join(agent.dir, "notes.txt"), "not a capture");
  symlinkSync("/etc/passwd", join(agent.dir, "evil.pcap"));
  mkdirSync(join(agent.dir, "sub.pcap"));
  writeFileSync(join(agent.dir, RING_PART), Buffer.from("ring part"));
  writeFileSync(join(agent.dir, PCAPNG), Buffer.from("pcapng"));
});

afterAll(async () => {
  await agent?.stop();
});

describe("server-capture --sftp-listen", () => {
  it("serves the renamed capture byte for byte to ssh2-sftp-client, with the persisted host key", async () => {
    const seen: Buffer[] = [];
    const c = await sftpClient(agent.sftpPort!, client.private, seen);
    try {
      const data = (await c.get(`/${OVOC}`)) as Buffer;
      expect(data.equals(captured)).toBe(true);
      expect((await c.stat(OVOC)).size).toBe(captured.length);
    } finally {
      await c.end();
    }
    const hostKeyFile = join(agent.dir, ".sftp_host_ed25519_key");
    expect(statSync(hostKeyFile).mode & 0o777).toBe(0o600);
    const hostKey = ssh2.utils.parseKey(readFileSync(hostKeyFile)) as ssh2.ParsedKey;
    expect(seen).toHaveLength(1);
    expect(seen[0]!.equals(hostKey.getPublicSSH())).toBe(true);
    // Login (key fingerprint, peer) and the read (name, bytes) are in the agent's log.
    const fp = sshFingerprint(client.public);
    await waitFor(() => agent.stderr().includes(`sent ${OVOC}: ${captured.length} of ${captured.length} bytes`), "the read in the log");
    expect(agent.stderr()).toMatch(new RegExp(`sftp: login user=capsync key=${fp.replace(/[+/]/g, "\\$&")} \\(orchestrator@test\\) peer=127\\.0\\.0\\.1:\\d+`));
    expect(agent.stderr()).toMatch(new RegExp(`sent ${OVOC}: ${captured.length} of ${captured.length} bytes to 127\\.0\\.0\\.1:\\d+ \\(user capsync, key ${fp.replace(/[+/]/g, "\\$&")}\\)`));
  });

  it("serves it byte for byte to OpenSSH sftp", async () => {
    const out = join(keyDir, "openssh-copy.pcap");
    const r = await opensshSftp(agent.sftpPort!, clientKeyFile, `get ${OVOC} ${out}\nls -l\n`);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readFileSync(out).equals(captured)).toBe(true);
    expect(r.stdout).toMatch(new RegExp(`-rw.* ${captured.length} .* ${OVOC}`));
  });

  it("lists exactly the finished captures: no state file, log, .incoming, host key, symlink, dir or other file", async () => {
    for (const hidden of ["server-capture-state.json", "server-capture.log", ".incoming", ".sftp_host_ed25519_key", "notes.txt", "evil.pcap", "sub.pcap"]) {
      expect(existsSync(join(agent.dir, hidden)), hidden).toBe(true);
    }
    const expected = [OVOC, PCAPNG, RING_PART].sort();
    const c = await sftpClient(agent.sftpPort!, client.private);
    try {
      expect((await c.list("/")).map((e) => e.name).sort()).toEqual(expected);
      expect((await c.list("/")).every((e) => e.type === "-")).toBe(true);
      expect(((await c.get(`/${RING_PART}`)) as Buffer).toString()).toBe("ring part");
      for (const hidden of ["server-capture-state.json", "server-capture.log", ".sftp_host_ed25519_key", "notes.txt", "evil.pcap", ".incoming/x.pcap"]) {
        await expect(c.get(`/${hidden}`), hidden).rejects.toThrow(/No such file/);
      }
      await expect(c.list("/.incoming")).rejects.toThrow(/No such file/);
      await expect(c.list("/sub.pcap")).rejects.toThrow(/No such file/);
    } finally {
      await c.end();
    }
    const r = await opensshSftp(agent.sftpPort!, clientKeyFile, "ls -1a\n");
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").slice(1).filter(Boolean).sort()).toEqual(expected);
  });

  it("refuses every write, rename, removal and mkdir, and paths outside the capture dir", async () => {
    const before = readdirSync(agent.dir).sort();
    const c = await sftpClient(agent.sftpPort!, client.private);
    try {
      const denied = /Permission denied|read-only/;
      await expect(c.put(Buffer.from("x"), "/new.pcap")).rejects.toThrow(denied);
      await expect(c.put(Buffer.from("x"), `/${OVOC}`)).rejects.toThrow(denied);
      await expect(c.delete(`/${OVOC}`)).rejects.toThrow(denied);
      await expect(c.rename(`/${OVOC}`, "/x.pcap")).rejects.toThrow(denied);
      await expect(c.mkdir("/d")).rejects.toThrow(denied);
      await expect(c.rmdir("/")).rejects.toThrow(denied);
      await expect(c.rmdir("/sub.pcap")).rejects.toThrow(/No such/); // hidden: not even seen
      await expect(c.chmod(`/${OVOC}`, 0o777)).rejects.toThrow(denied);
      await expect(c.get("../../etc/passwd")).rejects.toThrow(/No such file/);
    } finally {
      await c.end();
    }
    const r = await opensshSftp(
      agent.sftpPort!,
      clientKeyFile,
      `-put ${authorizedKeys} stolen.pcap\n-rm ${OVOC}\n-rename ${OVOC} x.pcap\n-mkdir d\n-get ../../etc/passwd ${join(keyDir, "passwd")}\n`,
    );
    // OpenSSH ends its error lines with CRLF.
    expect(r.stderr.split(/\r?\n/).filter(Boolean)).toEqual([
      'dest open "/stolen.pcap": Permission denied',
      `remote delete /${OVOC}: Permission denied`,
      `remote rename "/${OVOC}" to "/x.pcap": Permission denied`,
      'remote mkdir "/d": Permission denied',
      'File "/../../etc/passwd" not found.',
    ]);
    expect(existsSync(join(keyDir, "passwd"))).toBe(false);
    expect(readdirSync(agent.dir).sort()).toEqual(before);
    expect(readFileSync(join(agent.dir, OVOC)).equals(captured)).toBe(true);
  });

  it("refuses a key that is not in authorized_keys (ssh2 and OpenSSH)", async () => {
    await expect(sftpClient(agent.sftpPort!, stranger.private)).rejects.toThrow(/All configured authentication methods failed/);
    const r = await opensshSftp(agent.sftpPort!, strangerKeyFile, "ls\n");
    expect(r.code).toBe(255);
    expect(r.stderr).toContain("Permission denied (publickey)");
    await waitFor(() => agent.stderr().includes(`refused key ${sshFingerprint(stranger.public)} (not in authorized keys)`), "the refusal in the log");
  });

  it("rejects a bad authorized_keys line at start-up with exit 2, naming the line", async () => {
    const bad = join(keyDir, "authorized_keys.bad");
    writeFileSync(bad, `# orchestrators\n${client.public}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIbroken orchestrator-2\n`, { mode: 0o600 });
    const dir = tempDir("capsync-sftp-bad-");
    const start = (extra: string[]) =>
      run(process.execPath, [AGENT_CLI, "--listen", "127.0.0.1:0", "--dir", dir, "--key-file", agentKey, "--interface", "lo", ...extra], { timeout: 10_000 }).then(
        () => ({ code: 0, stdout: "", stderr: "" }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const r = await start(["--sftp-listen", "127.0.0.1:0", "--authorized-keys", bad]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`server-capture: --authorized-keys ${bad}: line 3: malformed ssh-ed25519 key data\n`);
    const missing = await start(["--sftp-listen", "127.0.0.1:0"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("server-capture: --sftp-listen needs --authorized-keys <file>: the public keys allowed to download captures\n");
    expect(existsSync(join(dir, ".sftp_host_ed25519_key"))).toBe(false);
  });

  // Last: it stops the agent.
  it("closes the SFTP port on SIGTERM and keeps the host key across restarts", async () => {
    const sftpPort = agent.sftpPort!;
    const hostKey = readFileSync(join(agent.dir, ".sftp_host_ed25519_key"));
    expect(await agent.stop()).toBe(0);
    const refused = await new Promise<string>((resolve) => {
      const s = tcpConnect(sftpPort, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve("connected")));
      s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    expect(refused).toBe("ECONNREFUSED");

    agent = await startAgent(["--key-file", agentKey, "--interface", "lo", "--sftp-listen", "127.0.0.1:0", "--authorized-keys", authorizedKeys], { dir: agent.dir });
    expect(readFileSync(join(agent.dir, ".sftp_host_ed25519_key")).equals(hostKey)).toBe(true);
    const seen: Buffer[] = [];
    const c = await sftpClient(agent.sftpPort!, client.private, seen);
    try {
      expect(((await c.get(`/${OVOC}`)) as Buffer).equals(captured)).toBe(true);
    } finally {
      await c.end();
    }
    expect(seen[0]!.equals((ssh2.utils.parseKey(hostKey) as ssh2.ParsedKey).getPublicSSH())).toBe(true);
  });
});
