import { execFile } from "node:child_process";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import SftpClient from "ssh2-sftp-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSshKeyPair, sharedHostKey } from "./sftp-keys.js";
import { passwordCheck, startSftpServer, type SftpServerHandle } from "./sftp-jail.js";

const run = promisify(execFile);
const hasOpenSsh = await run("ssh", ["-V"]).then(
  (r) => /OpenSSH/.test(r.stderr),
  () => false,
);
const quiet = { error: () => {}, end: () => {}, close: () => {} };

let base: string;
let root: string;
beforeAll(async () => {
  base = await fsp.mkdtemp(path.join(tmpdir(), "capsync-sftp-test-"));
  root = path.join(base, "root");
  await fsp.mkdir(path.join(root, "sub"), { recursive: true });
  await fsp.writeFile(path.join(root, "sub", "data.bin"), Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) & 0xff)));
  await fsp.writeFile(path.join(base, "secret.txt"), "outside the root");
  await fsp.symlink(path.join(base, "secret.txt"), path.join(root, "escape"));
  await fsp.symlink("sub/data.bin", path.join(root, "inside-link"));
});
afterAll(async () => {
  await fsp.rm(base, { recursive: true, force: true });
});

async function connect(port: number, cfg: Record<string, unknown>): Promise<SftpClient> {
  const c = new SftpClient("test", quiet);
  await c.connect({ host: "127.0.0.1", port, readyTimeout: 5000, ...cfg });
  return c;
}

describe("startSftpServer, read-only with password", () => {
  let srv: SftpServerHandle;
  beforeAll(async () => {
    srv = await startSftpServer({ root, readOnly: true, hostKey: sharedHostKey().private, auth: { password: passwordCheck("op", "pw-123") } });
  });
  afterAll(() => srv.close());

  it("serves files byte for byte and lists directories", async () => {
    const c = await connect(srv.port, { username: "op", password: "pw-123" });
    try {
      const data = (await c.get("/sub/data.bin")) as Buffer;
      expect(data.equals(await fsp.readFile(path.join(root, "sub", "data.bin")))).toBe(true);
      expect((await c.stat("sub/data.bin")).size).toBe(200_000);
      const names = (await c.list("/")).map((e) => e.name).sort();
      expect(names).toEqual(["escape", "inside-link", "sub"]);
      expect(await c.realPath("/sub/../..")).toBe("/");
      // A symlink that stays inside the root is followed.
      expect(((await c.get("/inside-link")) as Buffer).length).toBe(200_000);
    } finally {
      await c.end();
    }
  });

  it("keeps `..` and symlinks from leaving the root", async () => {
    const c = await connect(srv.port, { username: "op", password: "pw-123" });
    try {
      // "/../secret.txt" resolves to <root>/secret.txt, which does not exist.
      await expect(c.get("/../secret.txt")).rejects.toThrow(/No such file/);
      await expect(c.get("../../../../etc/passwd")).rejects.toThrow(/No such file/);
      await expect(c.get("/escape")).rejects.toThrow(/outside the served directory|Permission denied/);
      await expect(c.stat("/escape")).rejects.toThrow();
    } finally {
      await c.end();
    }
  });

  it("refuses every write", async () => {
    const c = await connect(srv.port, { username: "op", password: "pw-123" });
    try {
      await expect(c.put(Buffer.from("x"), "/new.txt")).rejects.toThrow(/read-only|Permission denied/);
      await expect(c.delete("/sub/data.bin")).rejects.toThrow(/read-only|Permission denied/);
      await expect(c.mkdir("/d")).rejects.toThrow(/read-only|Permission denied/);
      await expect(c.rename("/sub/data.bin", "/sub/x")).rejects.toThrow(/read-only|Permission denied/);
      await expect(fsp.stat(path.join(root, "new.txt"))).rejects.toThrow(/ENOENT/);
    } finally {
      await c.end();
    }
  });

  it("rejects a wrong password and offers no public-key auth", async () => {
    await expect(connect(srv.port, { username: "op", password: "wrong" })).rejects.toThrow(/authentication methods failed/);
    await expect(connect(srv.port, { username: "op", privateKey: generateSshKeyPair().private })).rejects.toThrow(/authentication methods failed/);
  });
});

describe("startSftpServer, public-key auth", () => {
  const client = generateSshKeyPair("capsync-test");
  let srv: SftpServerHandle;
  beforeAll(async () => {
    srv = await startSftpServer({
      root,
      hostKey: sharedHostKey().parsed,
      auth: { authorizedKeys: [`no-pty ${client.public}`], users: ["capsync"] },
      host: "127.0.0.3",
    });
  });
  afterAll(() => srv.close());

  it("accepts the authorized key only, for the allowed user only", async () => {
    const c = new SftpClient("test", quiet);
    await c.connect({ host: "127.0.0.3", port: srv.port, username: "capsync", privateKey: client.private });
    expect(((await c.get("/sub/data.bin")) as Buffer).length).toBe(200_000);
    await c.end();
    await expect(
      new SftpClient("test", quiet).connect({ host: "127.0.0.3", port: srv.port, username: "root", privateKey: client.private }),
    ).rejects.toThrow(/authentication methods failed/);
    await expect(
      new SftpClient("test", quiet).connect({ host: "127.0.0.3", port: srv.port, username: "capsync", privateKey: generateSshKeyPair().private }),
    ).rejects.toThrow(/authentication methods failed/);
  });

  it("works with the OpenSSH sftp client", async () => {
    expect(hasOpenSsh, "the OpenSSH client (Debian: openssh-client) is needed here").toBe(true);
    const keyFile = path.join(base, "id_ed25519");
    await fsp.writeFile(keyFile, client.private, { mode: 0o600 });
    const out = path.join(base, "openssh-copy.bin");
    const batch = path.join(base, "batch.txt");
    await fsp.writeFile(batch, `cd sub\nls -l\nget data.bin ${out}\nput ${keyFile} /stolen\n`);
    const res = await run(
      "sftp",
      ["-b", batch, "-P", String(srv.port), "-i", keyFile, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "capsync@127.0.0.3"],
      { timeout: 10_000 },
    ).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    // The batch fails on `put` (read-only) after `get` succeeded.
    expect(res.code).not.toBe(0);
    expect(res.stdout).toMatch(/-rw.*200000 .* data\.bin/);
    expect(res.stderr).toMatch(/Permission denied|read-only/);
    expect((await fsp.readFile(out)).equals(await fsp.readFile(path.join(root, "sub", "data.bin")))).toBe(true);
  });
});

describe("startSftpServer, read-write", () => {
  it("writes, renames without replacing, removes; connection refusal hook", async () => {
    const rw = path.join(base, "rw");
    await fsp.mkdir(rw);
    let refuse = false;
    const srv = await startSftpServer({
      root: rw,
      readOnly: false,
      hostKey: sharedHostKey().private,
      auth: { password: passwordCheck("u", "p") },
      hooks: { onConnection: () => !refuse },
    });
    try {
      const c = await connect(srv.port, { username: "u", password: "p" });
      await c.mkdir("/in");
      await c.put(Buffer.from("one"), "/in/a.txt");
      await c.put(Buffer.from("two"), "/in/b.txt");
      await expect(c.rename("/in/a.txt", "/in/b.txt")).rejects.toThrow();
      await c.rename("/in/a.txt", "/in/c.txt");
      expect(await fsp.readFile(path.join(rw, "in", "c.txt"), "utf8")).toBe("one");
      await c.delete("/in/b.txt");
      await expect(c.put(Buffer.from("x"), "/../../outside.txt")).resolves.toBeDefined();
      expect(await fsp.readFile(path.join(rw, "outside.txt"), "utf8")).toBe("x"); // clamped into the root
      await expect(c.rmdir("/")).rejects.toThrow();
      await c.end();
      refuse = true;
      await expect(connect(srv.port, { username: "u", password: "p" })).rejects.toThrow(/ECONNRESET|closed|Connection lost|handshake/i);
    } finally {
      await srv.close();
      await srv.close();
    }
  });
});
