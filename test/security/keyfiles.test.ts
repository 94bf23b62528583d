// Key files on both sides, and key rotation. The agent refuses to start (exit 2) with a CSYNC/1 key,
// SFTP host key or OVOC credentials file that group or others can read, that another user owns,
// that is not a regular file, or whose key is too short or not printable ASCII; cpe-capture refuses
// a run (exit 2, no run folder) on the same for the CSYNC/1 key and on a readable SSH private key.
// No refusal prints the key. During a rotation the agent takes two keys, answers each request with
// the key it came with, and drops a third; after the rotation the old key is dropped.
import { spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatRequest, newRequestId, parseAnswer } from "@capsync/protocol";
import { generateSshKeyPair } from "@capsync/emulators";
import { AGENT_CLI, TEST_KEY, TestPeer, startAgent, tempDir, writeKey } from "../helpers/agent-proc.js";
import { CPE_CLI } from "../helpers/cli-proc.js";

const OLD_KEY = "rotation-old-key-0123456789abcdef-ABCDEFG";
const NEW_KEY = "rotation-new-key-0123456789abcdef-HIJKLMN";
const THIRD_KEY = "rotation-third-key-0123456789abcdef-OPQRS";

/** Run a binary to completion without blocking the test process. */
function run(file: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.on("exit", (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

describe("the agent refuses key files others could read", () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir("capsync-keyfiles-");
  });

  const keyFile = (name: string, content: string, mode: number) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    chmodSync(p, mode);
    return p;
  };
  const agent = (args: string[]) => run(AGENT_CLI, ["--listen", "127.0.0.1:0", "--dir", join(dir, "captures"), "--interface", "lo", ...args]);

  it("CSYNC/1 key: modes that let group/others read, another owner, not a file, too short, not ASCII → exit 2, key never printed", async () => {
    const cases: [string, () => string, RegExp][] = [
      ["0644", () => keyFile("k644", TEST_KEY, 0o644), /mode 0644 lets group\/others read it; run: chmod 600/],
      ["0640", () => keyFile("k640", TEST_KEY, 0o640), /mode 0640 lets group\/others read it/],
      ["0604", () => keyFile("k604", TEST_KEY, 0o604), /mode 0604 lets group\/others read it/],
      ["0660", () => keyFile("k660", TEST_KEY, 0o660), /mode 0660/],
      ["0602 (others may write)", () => keyFile("k602", TEST_KEY, 0o602), /mode 0602/],
      [
        "symlink to a 0644 file",
        () => {
          const target = keyFile("k644b", TEST_KEY, 0o644);
          const link = join(dir, "klink");
          symlinkSync(target, link);
          return link;
        },
        /mode 0644/,
      ],
      [
        "owned by another user",
        () => {
          const p = keyFile("kother", TEST_KEY, 0o600);
          chownSync(p, 65534, 65534);
          return p;
        },
        /owned by uid 65534, not by the running user/,
      ],
      [
        "a directory",
        () => {
          const p = join(dir, "kdir");
          mkdirSync(p, { mode: 0o700 });
          return p;
        },
        /not a regular file/,
      ],
      ["missing", () => join(dir, "nope"), /cannot read \(ENOENT\)/],
      ["31 characters", () => keyFile("kshort", "x".repeat(31), 0o600), /key is 31 characters, at least 32 required/],
      ["not printable ASCII", () => keyFile("kbin", `${"x".repeat(32)}\u00e9\u0001`, 0o600), /one line of printable ASCII/],
    ];
    // Independent processes: start them together (each is a Node start-up).
    const results = await Promise.all(cases.map(([, make]) => agent(["--key-file", make()])));
    results.forEach((r, i) => {
      const [what, , why] = cases[i]!;
      expect(r.code, `${what}: ${r.out}`).toBe(2);
      expect(r.out, what).toMatch(why);
      expect(r.out).not.toContain(TEST_KEY);
      expect(r.out).not.toContain("x".repeat(31));
    });
    // 0600 and 0400 are fine (a start that gets as far as listening).
    for (const mode of [0o600, 0o400]) {
      const a = await startAgent(["--key-file", keyFile(`k${mode.toString(8)}`, TEST_KEY, mode)], { dir: join(dir, `ok${mode}`) });
      await a.stop();
    }
  });

  it("more than two keys, or a key with --legacy → exit 2", async () => {
    const k = writeKey(tempDir("capsync-keyfiles-3-"));
    expect((await agent(["--key-file", k, "--key-file", k, "--key-file", k])).out).toMatch(/at most two --key-file/);
    const legacy = await agent(["--legacy", "--key-file", k]);
    expect(legacy.code).toBe(2);
    expect(legacy.out).toMatch(/--legacy and --key-file exclude each other/);
  });

  it("SFTP host key and OVOC credentials file readable by others → exit 2, content never printed", async () => {
    const k = writeKey(tempDir("capsync-keyfiles-sftp-"));
    const pair = generateSshKeyPair("t");
    const auth = keyFile("authorized_keys", pair.public + "\n", 0o644);
    const host = keyFile("host_key", pair.private, 0o644);
    const r = await agent(["--key-file", k, "--sftp-listen", "127.0.0.1:0", "--authorized-keys", auth, "--host-key", host]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/host key .*: mode 0644 lets group\/others read it/);
    expect(r.out).not.toContain(pair.private.split("\n")[1]!);
    const cred = keyFile("ovoc.cred", "capsync-api:Ovoc-S3cret-Pw\n", 0o640);
    const o = await agent(["--key-file", k, "--ovoc-url", "https://127.0.0.1:1", "--ovoc-credentials", cred]);
    expect(o.code).toBe(2);
    expect(o.out).toMatch(/OVOC credentials file .*: mode 0640 lets group\/others read it/);
    expect(o.out).not.toContain("Ovoc-S3cret-Pw");
  });
});

describe("cpe-capture refuses key files others could read, before anything starts", () => {
  let work: string;
  beforeAll(() => {
    work = tempDir("capsync-keyfiles-cpe-");
    const pair = generateSshKeyPair("t");
    writeFileSync(join(work, "id_ed25519"), pair.private);
  });

  const config = (name: string, keyFile: string, sshKeyFile?: string) => {
    const p = join(work, name);
    writeFileSync(
      p,
      JSON.stringify({
        output: join(work, `runs-${name}`),
        agents: { keyFile, ...(sshKeyFile ? { sshKeyFile } : {}) },
        syslog: { listen: "127.0.0.1:0" },
        devices: [{ address: "127.0.0.2", type: "gwsbc", username: "Admin", password: { env: "KF_PW" }, agents: ["127.0.0.1:9"] }],
      }),
    );
    return p;
  };

  it("a group/other-readable or foreign-owned CSYNC/1 key, and a readable SSH private key: exit 2, no run folder", async () => {
    const ok = join(work, "ok.key");
    writeFileSync(ok, TEST_KEY);
    chmodSync(ok, 0o600);
    const cases: [string, () => string, RegExp][] = [
      [
        "key 0644",
        () => {
          const p = join(work, "k644");
          writeFileSync(p, TEST_KEY);
          chmodSync(p, 0o644);
          return config("a.json", p);
        },
        /agent|key file .*: mode 0644 lets group\/others read it/,
      ],
      [
        "key owned by another user",
        () => {
          const p = join(work, "kother");
          writeFileSync(p, TEST_KEY);
          chmodSync(p, 0o600);
          chownSync(p, 65534, 65534);
          return config("b.json", p);
        },
        /owned by uid 65534/,
      ],
      [
        "SSH key 0644",
        () => {
          chmodSync(join(work, "id_ed25519"), 0o644);
          return config("c.json", ok, join(work, "id_ed25519"));
        },
        /agents\.sshKeyFile: .* has mode 0644, which lets group\/others read the private key; run: chmod 600/,
      ],
    ];
    for (const [what, make, why] of cases) {
      const cfg = make();
      const r = await run(CPE_CLI, ["run", "--config", cfg], { cwd: work, env: { KF_PW: "Kf-Pw-123" } });
      expect(r.code, `${what}: ${r.out}`).toBe(2);
      expect(r.out, what).toMatch(why);
      expect(r.out).not.toContain(TEST_KEY);
      expect(existsSync(join(work, `runs-${cfg.split("/").at(-1)}`)), what).toBe(false);
    }
  });
});

describe("key rotation: two keys during the window, then only the new one", () => {
  let dir: string;
  let peer: TestPeer;
  beforeAll(async () => {
    dir = tempDir("capsync-rotation-");
    peer = await TestPeer.open();
  });
  afterAll(() => peer?.close());

  const ping = async (port: number, key: string) => {
    const id = newRequestId();
    const before = peer.received.length;
    peer.send(formatRequest({ id, ts: Date.now(), verb: "PING" }, Buffer.from(key)), port);
    await new Promise((r) => setTimeout(r, 300));
    return peer.received.slice(before);
  };

  it("accepts the old and the new key, answers each with its own, drops a third; afterwards drops the old one", async () => {
    const oldFile = writeKey(join(dir), OLD_KEY);
    const newDir = join(dir, "new");
    mkdirSync(newDir);
    const newFile = writeKey(newDir, NEW_KEY);
    const both = await startAgent(["--key-file", oldFile, "--key-file", newFile], { dir: join(dir, "captures") });
    try {
      const [viaOld] = await ping(both.port, OLD_KEY);
      const [viaNew] = await ping(both.port, NEW_KEY);
      expect(await ping(both.port, THIRD_KEY)).toEqual([]);
      // Each answer is signed with the key its request used: an orchestrator still on the old key can check it.
      expect(parseAnswer(viaOld!, [Buffer.from(OLD_KEY)]).ok).toBe(true);
      expect(parseAnswer(viaOld!, [Buffer.from(NEW_KEY)]).ok).toBe(false);
      expect(parseAnswer(viaNew!, [Buffer.from(NEW_KEY)]).ok).toBe(true);
      expect(parseAnswer(viaNew!, [Buffer.from(OLD_KEY)]).ok).toBe(false);
    } finally {
      await both.stop();
    }
    const after = await startAgent(["--key-file", newFile], { dir: join(dir, "captures") });
    try {
      expect(await ping(after.port, OLD_KEY)).toEqual([]);
      expect(await ping(after.port, NEW_KEY)).toHaveLength(1);
    } finally {
      await after.stop();
    }
  });
});
