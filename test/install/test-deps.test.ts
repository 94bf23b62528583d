// `npm test` on a machine that cannot run the whole suite fails at once, before building, and says
// what is missing and how to install it: as a non-root user, and with the tools off PATH. The real
// root package.json's test script is what runs (setpriv drops to nobody for the non-root case).
// And no test file skips itself, so vitest's summary never hides a test that did not run.
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGES, TOOLS } from "../../tools/test-deps.mjs";
import { ROOT } from "../helpers/agent-proc.js";
import { cleanNpmEnv } from "../helpers/fresh-clone.js";

const run = promisify(execFile);
const home = mkdtempSync(join(tmpdir(), "capsync-test-deps-"));
chmodSync(home, 0o777);
afterAll(() => rmSync(home, { recursive: true, force: true }));

async function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(cmd, args, { cwd: ROOT, env, timeout: 60_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describe("npm test's check of the machine (tools/test-deps.mjs)", () => {
  it("as a non-root user, npm test exits 1 before building, saying it needs root", async () => {
    const env = cleanNpmEnv({ HOME: home, npm_config_cache: join(home, "npm-cache"), npm_config_update_notifier: "false" });
    const r = await exec("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "npm", "test"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("npm test: the tests must run as root (they start tcpdump, agents, SFTP servers and network namespaces): run `sudo npm test`\n");
    // Nothing after the check ran: no tsc, no vitest.
    expect(r.stdout).toContain("> node tools/test-deps.mjs --check && ");
    expect(r.stdout).not.toMatch(/> capsync@\S+ build|\bRUN\b/);
  });

  it("with the tools off PATH, it names every missing command, its Debian package and the install command", async () => {
    // Only node's own folder: every tool is missing except those in /usr/sbin and /sbin, which the
    // check also searches (rsyslogd lives there).
    const env = cleanNpmEnv({ PATH: dirname(process.execPath) === "/usr/bin" ? "/nonexistent" : dirname(process.execPath) });
    const r = await exec(process.execPath, ["tools/test-deps.mjs", "--check"], env);
    expect(r.code).toBe(1);
    const line = r.stderr.split("\n").find((l) => l.startsWith("npm test: missing commands: "));
    expect(line, r.stderr).toBeDefined();
    for (const [tool, [pkg]] of Object.entries(TOOLS)) {
      if (["/usr/sbin", "/sbin"].some((d) => existsIn(d, tool))) continue;
      expect(line).toContain(`${tool} (Debian package ${pkg})`);
    }
    expect(line).toContain("install them with tools/install-deps.sh");
    expect(line).toMatch(/or: apt-get install -y [a-z0-9 .+-]+$/);
  });

  it("on this machine (root, everything installed) the check passes silently", async () => {
    const r = await exec(process.execPath, ["tools/test-deps.mjs", "--check"], cleanNpmEnv());
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  it("--packages lists every package a tool comes from, once, for tools/install-deps.sh", async () => {
    const r = await exec(process.execPath, ["tools/test-deps.mjs", "--packages"], cleanNpmEnv());
    const listed = r.stdout.trim().split(" ");
    expect(listed).toEqual(PACKAGES);
    expect(new Set(listed).size).toBe(listed.length);
    for (const [pkg] of Object.values(TOOLS)) expect(listed).toContain(pkg);
  });
});

describe("no test skips itself", () => {
  it("no test file skips a test or leaves one to do: a missing tool fails by name instead", async () => {
    const { stdout } = await run("git", ["-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "*.test.ts"]);
    const files = stdout.split("\n").filter(Boolean);
    expect(files.length).toBeGreaterThan(50);
    const found = files.flatMap((f) =>
      existsSync(join(ROOT, f))
        ? readFileSync(join(ROOT, f), "utf8")
            .split("\n")
            .flatMap((l, i) => (/\b(it|test|describe|suite)\.(skip|skipIf|runIf|todo)\b|\b(ctx|context|t)\.skip\(/.test(l) ? [`${f}:${i + 1}: ${l.trim()}`] : []))
        : [],
    );
    expect(found).toEqual([]);
  });
});

function existsIn(dir: string, cmd: string): boolean {
  return existsSync(join(dir, cmd));
}
