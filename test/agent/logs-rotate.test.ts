// The agent's log under the real logrotate (Debian's), against a running agent process: `create`
// mode (rename, then SIGHUP from postrotate: the agent reopens a new file) and `copytruncate`
// (the file is copied and truncated in place: the agent's next line lands at offset 0, no hole of
// NULs). And where the log goes by default: /var/log/capsync, never the capture directory.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { AGENT_CLI, TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";

const run = promisify(execFile);

async function until<T>(what: string, get: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");

describe("the agent's log under logrotate", () => {
  let work: string;
  let agent: AgentProc;
  let peer: TestPeer;
  let log: string;

  beforeAll(async () => {
    work = tempDir("capsync-logs-");
    mkdirSync(join(work, "log"));
    log = join(work, "log", "server-capture.log");
    // No built-in rotation here: logrotate does it.
    agent = await startAgent(["--key-file", writeKey(work), "--interface", "lo", "--log-file", log, "--log-max-size", "0"], { dir: join(work, "captures") });
    peer = await TestPeer.open();
  });
  afterAll(async () => {
    peer?.close();
    await agent?.stop();
  });

  /** A PING the agent logs with its request id: a marker line to find in the files. */
  const mark = async (): Promise<string> => {
    const r = await peer.request(agent.port, { verb: "PING" });
    const id = r.sent.toString().split(" ")[2]!;
    await until(`the PING ${id} in some log file`, () => [log, `${log}.1`, `${log}.2`].some((f) => read(f).includes(`id=${id}`)));
    return id;
  };

  const logrotate = async (name: string, body: string) => {
    const conf = join(work, `${name}.conf`);
    writeFileSync(conf, `${log} {\n${body}\n}\n`);
    const r = await run("logrotate", ["-f", "-s", join(work, `${name}.state`), conf]);
    return r;
  };

  it("is outside the capture directory, and not there at all when a file is named elsewhere", () => {
    expect(read(log)).toMatch(/ INFO  listening on 127\.0\.0\.1:\d+ \(CSYNC\/1\), captures in /);
    expect(existsSync(join(agent.dir, "server-capture.log"))).toBe(false);
  });

  it("create mode: after the rename and SIGHUP, new lines go to a new file and the old one is left alone", async () => {
    const before = await mark();
    await logrotate("create", `  create 0640 root root\n  rotate 3\n  postrotate\n    kill -HUP ${agent.child.pid}\n  endscript`);
    await until("the reopen line in the new file", () => /SIGHUP: log reopened \(.*server-capture\.log\)/.test(read(log)));
    const after = await mark();
    const oldFile = read(`${log}.1`);
    const newFile = read(log);
    expect(oldFile).toContain(`id=${before}`);
    expect(oldFile).not.toContain(`id=${after}`);
    expect(newFile).toContain(`id=${after}`);
    expect(newFile).not.toContain(`id=${before}`);
    expect(statSync(log).mode & 0o777).toBe(0o640);
    // SIGHUP reopened the log; it did not stop the agent.
    expect(agent.child.exitCode).toBeNull();
  });

  it("copytruncate: the file is truncated in place and the next line starts at offset 0 (no NUL hole)", async () => {
    const before = await mark();
    const sizeBefore = statSync(log).size;
    expect(sizeBefore).toBeGreaterThan(100);
    await logrotate("copy", "  copytruncate\n  rotate 3");
    const after = await mark();
    const bytes = readFileSync(log);
    expect(bytes.includes(0)).toBe(false);
    expect(bytes.length).toBeLessThan(sizeBefore);
    expect(bytes.toString("utf8")).toMatch(/^\d{4}-\d\d-\d\dT[^\n]*\n/);
    expect(bytes.toString("utf8")).toContain(`id=${after}`);
    // The copy holds what was written before the truncation.
    expect(read(`${log}.1`)).toContain(`id=${before}`);
    expect(bytes.toString("utf8")).not.toContain(`id=${before}`);
    expect(read(`${log}.1`)).not.toContain(`id=${after}`);
  });
});

describe("the agent's log by default", () => {
  it("a --log-file it cannot open is bad input: exit 2, the path and the reason on stderr", async () => {
    const work = tempDir("capsync-logs-bad-");
    writeFileSync(join(work, "plain-file"), "");
    const bad = join(work, "plain-file", "agent.log");
    const r = await run(process.execPath, [AGENT_CLI, "--listen", "127.0.0.1:0", "--dir", join(work, "captures"), "--key-file", writeKey(work), "--interface", "lo", "--log-file", bad]).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`server-capture: --log-file ${bad}: cannot open (EEXIST: file already exists, mkdir '${join(work, "plain-file")}')`);
  });

  it("goes to /var/log/capsync/server-capture.log (not the capture directory) when not run by systemd", async () => {
    const work = tempDir("capsync-logs-default-");
    const dir = join(work, "captures");
    const env = { ...process.env };
    delete env.JOURNAL_STREAM;
    const child = spawn(process.execPath, [AGENT_CLI, "--listen", "127.0.0.1:0", "--dir", dir, "--key-file", writeKey(work), "--interface", "lo"], { stdio: ["ignore", "pipe", "pipe"], env });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    try {
      const port = await until("the ready line", () => /server-capture ready \S+ (\d+)/.exec(out)?.[1], 10_000);
      const line = `listening on 127.0.0.1:${port} (CSYNC/1), captures in ${dir}`;
      await until("the listening line in /var/log/capsync", () => read("/var/log/capsync/server-capture.log").includes(line));
      expect(existsSync(join(dir, "server-capture.log"))).toBe(false);
    } finally {
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  });
});
