// README's set-up in a fresh clone puts cpe-capture and server-capture on PATH: the clone gets
// `npm ci && npm run build` (test/helpers/fresh-clone.ts), then the README's own `npm link` line
// runs into a private global prefix (so this machine's global folder is never touched), and the
// commands run from /tmp with a PATH of that bin folder and the system's, as a user's shell would.
// Then every cpe-capture / server-capture line of README.md is checked against the real --help of
// the linked commands (commands and options that exist), and README's removal line removes them.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, realpathSync, rmSync, statSync, chmodSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/agent-proc.js";
import { cleanNpmEnv, freshClone, NPM_CI_LOG } from "../helpers/fresh-clone.js";

const run = promisify(execFile);
const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** The set-up line and the removal line, exactly as README's "Set up" section has them. */
const SETUP = "tools/install-deps.sh && npm ci && npm run build && npm link -w packages/cpe-capture -w packages/server-capture";
const REMOVE = "npm rm -g @capsync/cpe-capture @capsync/server-capture";

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<Ran> {
  return run(cmd, args, { ...opts, maxBuffer: 16 << 20 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number | string; stdout: string; stderr: string }) => ({ code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: `${e.stderr ?? ""}${String(e.code)}` }),
  );
}

/** README's text of the "## Set up" section. */
function setUpSection(): string {
  const start = README.indexOf("\n## Set up\n");
  return README.slice(start, README.indexOf("\n## ", start + 1));
}

/**
 * Every command line of README naming one of the CLIs: code-block lines and inline `code` spans,
 * except in a paragraph starting "Not built yet", which names commands still to come.
 */
function readmeCommandLines(): string[] {
  const lines: string[] = [];
  let inBlock = false;
  let pending = "";
  let future = false;
  for (const raw of README.split("\n")) {
    if (!inBlock && raw.trim() === "") future = false;
    else if (!inBlock && raw.startsWith("Not built yet")) future = true;
    if (raw.startsWith("```")) {
      inBlock = !inBlock;
      continue;
    }
    if (inBlock) {
      // One command may go on over lines ending in a backslash.
      const line = pending + raw.trim().replace(/^\$ /, "");
      if (line.endsWith("\\")) {
        pending = `${line.slice(0, -1)} `;
        continue;
      }
      pending = "";
      const cmd = line.replace(/^([A-Z_][A-Z0-9_]*=\S*\s+)+/, "");
      if (/^(cpe-capture|server-capture)(\s|$)/.test(cmd)) lines.push(cmd);
    } else if (!future) {
      for (const m of raw.matchAll(/`((?:cpe-capture|server-capture)(?: [^`]*)?)`/g)) lines.push(m[1]!);
    }
  }
  return lines;
}

/** The program, its subcommand (if any) and the options one README command line uses. */
function parseCommand(line: string, commands: Set<string>): { program: string; sub?: string; flags: string[]; unknownSub?: string } {
  const tokens: string[] = [];
  let depth = 0;
  for (const t of line.split(/\s+/)) {
    if (t === "#" || t.startsWith("#") || t === "&&" || t === ";" || t === ">" || t.startsWith(">") || (t === "|" && depth === 0)) break;
    depth += (t.match(/\[/g) ?? []).length - (t.match(/\]/g) ?? []).length;
    tokens.push(t.replace(/^[[(]+|[\]),]+$/g, ""));
  }
  const [program, first] = tokens;
  let sub: string | undefined;
  let unknownSub: string | undefined;
  if (program === "cpe-capture" && first && !first.startsWith("-") && !first.startsWith("<") && first !== "...") {
    if (commands.has(first)) sub = first;
    else unknownSub = first;
  }
  const flags = tokens.slice(1).flatMap((t) => /^(--?[A-Za-z][\w-]*)/.exec(t)?.[1] ?? []);
  return { program: program!, sub, flags, unknownSub };
}

describe("README set-up: cpe-capture and server-capture on PATH", () => {
  let clone: string;
  let prefix: string;
  let bin: string;
  let env: NodeJS.ProcessEnv;
  const helps = new Map<string, string>();

  beforeAll(async () => {
    clone = await freshClone();
    prefix = mkdtempSync(join(tmpdir(), "capsync-path-prefix-"));
    bin = join(prefix, "bin");
    // A user's PATH: the global bin folder, node's folder, the system's; nothing of this tree
    // (npm test puts node_modules/.bin, which has both commands, on the test's own PATH).
    env = cleanNpmEnv({ PATH: [bin, dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin"].join(":"), npm_config_prefix: prefix });
    delete env.NODE_OPTIONS;
  }, 600_000);

  afterAll(async () => {
    if (prefix && existsSync(join(prefix, "lib/node_modules/@capsync/cpe-capture"))) {
      await exec("npm", REMOVE.split(" ").slice(1), { cwd: clone, env });
    }
    if (prefix) rmSync(prefix, { recursive: true, force: true });
  });

  it("README's Set up has the install line and the removal line this test runs", () => {
    const section = setUpSection();
    expect(section.split("\n")).toContain(SETUP);
    expect(section.split("\n")).toContain(REMOVE);
    // The same script installs the Debian packages for README's set-up and for CI.
    expect(readFileSync(join(ROOT, ".ci/run"), "utf8").split("\n")).toContain("tools/install-deps.sh");
  });

  it("npm ci in the fresh clone printed no warning (no unreviewed install scripts, no deprecated packages)", () => {
    const log = readFileSync(join(clone, NPM_CI_LOG), "utf8");
    expect(log).toMatch(/^added \d+ packages in /m);
    expect(log.split("\n").filter((l) => /^npm (warn|WARN|error|ERR)/.test(l))).toEqual([]);
    // ssh2's native crypto binding is built (package.json allowScripts), cpu-features' is not.
    expect(existsSync(join(clone, "node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node"))).toBe(true);
    expect(existsSync(join(clone, "node_modules/cpu-features/build"))).toBe(false);
  });

  it("one version everywhere: every workspace, CHANGELOG.md's latest release, capsync-emulator --version", async () => {
    const root = JSON.parse(readFileSync(join(clone, "package.json"), "utf8")) as { version: string; workspaces: string[] };
    for (const ws of root.workspaces) {
      expect((JSON.parse(readFileSync(join(clone, ws, "package.json"), "utf8")) as { version: string }).version, ws).toBe(root.version);
    }
    const changelog = readFileSync(join(clone, "CHANGELOG.md"), "utf8");
    expect(/^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$/m.exec(changelog)?.[1]).toBe(root.version);
    const r = await exec(process.execPath, [join(clone, "packages/emulators/dist/cli.js"), "--version"], { cwd: "/tmp", env });
    expect(r).toEqual({ code: 0, stdout: `${root.version}\n`, stderr: "" });
  });

  it("npm link (README's line) puts both commands into the global bin folder, executable, with a shebang", async () => {
    const link = SETUP.split(" && ").find((c) => c.startsWith("npm link "))!.split(" ");
    const r = await exec(link[0]!, link.slice(1), { cwd: clone, env });
    expect(r.code, r.stderr).toBe(0);
    for (const [name, file] of [
      ["cpe-capture", "packages/cpe-capture/dist/index.js"],
      ["server-capture", "packages/server-capture/dist/cli.js"],
    ] as const) {
      expect(realpathSync(join(bin, name))).toBe(realpathSync(join(clone, file)));
      expect(statSync(join(clone, file)).mode & 0o777).toBe(0o755);
      expect(readFileSync(join(clone, file), "utf8").split("\n")[0]).toBe("#!/usr/bin/env node");
    }
  }, 120_000);

  it("from /tmp: cpe-capture --version, server-capture --version and --help, cpe-capture validate of the example config", async () => {
    const version = (ws: string) => (JSON.parse(readFileSync(join(clone, ws, "package.json"), "utf8")) as { version: string }).version;
    const where = await exec("sh", ["-c", 'command -v "$1"', "sh", "cpe-capture"], { cwd: "/tmp", env });
    expect(where.stdout).toBe(`${join(bin, "cpe-capture")}\n`);

    const v = await exec("cpe-capture", ["--version"], { cwd: "/tmp", env });
    expect(v).toEqual({ code: 0, stdout: `${version("packages/cpe-capture")}\n`, stderr: "" });
    const sv = await exec("server-capture", ["--version"], { cwd: "/tmp", env });
    expect(sv).toEqual({ code: 0, stdout: `${version("packages/server-capture")}\n`, stderr: "" });
    expect(version("packages/cpe-capture")).toBe(version("."));

    const help = await exec("server-capture", ["--help"], { cwd: "/tmp", env: { ...env, COLUMNS: "100" } });
    expect(help.code).toBe(0);
    expect(help.stdout.split("\n")[0]).toBe("Usage: server-capture [options]");
    expect(help.stdout).toMatch(/^ {2}-V, --version +output the version number$/m);
    expect(help.stdout).toContain("Exit codes: 0 stopped cleanly, 1 runtime failure, 2 bad input.");

    const config = join(clone, "examples/run.yaml");
    const val = await exec("cpe-capture", ["validate", "--config", config], { cwd: "/tmp", env });
    expect(val.code, val.stderr).toBe(0);
    expect(val.stderr).toBe(`${config}: valid (3 device(s))\n`);
    // Relative paths resolve against the config file's folder, not against /tmp.
    expect(val.stdout.split("\n")).toContain(`output: ${join(clone, "examples/runs")}`);
  }, 60_000);

  it("every cpe-capture / server-capture command line in README.md uses commands and options that exist", async () => {
    const help = async (program: string, sub?: string): Promise<string> => {
      const key = `${program} ${sub ?? ""}`;
      if (!helps.has(key)) {
        const r = await exec(program, [...(sub ? [sub] : []), "--help"], { cwd: "/tmp", env });
        expect(r.code, `${key} --help: ${r.stderr}`).toBe(0);
        helps.set(key, r.stdout);
      }
      return helps.get(key)!;
    };
    const top = await help("cpe-capture");
    const commands = new Set([...top.slice(top.indexOf("Commands:")).matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!));
    expect(commands).toContain("validate");

    const lines = readmeCommandLines();
    expect(lines.length).toBeGreaterThan(20);
    const wrong: string[] = [];
    for (const line of lines) {
      const c = parseCommand(line, commands);
      if (c.unknownSub) {
        wrong.push(`${line}\n    unknown command '${c.unknownSub}'`);
        continue;
      }
      const text = await help(c.program, c.sub);
      for (const flag of c.flags) {
        const known = new RegExp(`(^|[\\s,(])${flag}(?=[\\s,=)<\\[]|$)`, "m").test(text) || (flag === "--version" && c.sub === undefined) || flag === "--help";
        if (!known) wrong.push(`${line}\n    unknown option ${flag} (not in \`${c.program}${c.sub ? ` ${c.sub}` : ""} --help\`)`);
      }
    }
    expect(wrong, wrong.join("\n")).toEqual([]);
  }, 60_000);

  it("every `npm run <script>` in README.md is a script of the root package.json", () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
    const named = [...README.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(3);
    expect(named.filter((n) => !(n in scripts))).toEqual([]);
  });

  it("every file of the repository README.md names (examples/, tools/, packaging/, bench/, contrib/) is in the clone", () => {
    const named = [...README.matchAll(/\b(?:examples|tools|packaging|bench|packages\/[a-z-]+\/contrib)\/[\w./-]*[\w-]/g)].map((m) => m[0]);
    expect(named.length).toBeGreaterThan(3);
    expect([...new Set(named)].filter((p) => !existsSync(join(clone, p)))).toEqual([]);
  });

  it("npm run build leaves the bin files executable even when they were rewritten without the bit", async () => {
    const file = join(clone, "packages/server-capture/dist/cli.js");
    chmodSync(file, 0o644);
    const r = await exec("npm", ["run", "build"], { cwd: clone, env });
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o755);
  }, 120_000);

  it("README's removal line takes both commands off PATH again", async () => {
    const r = await exec("npm", REMOVE.split(" ").slice(1), { cwd: clone, env });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(bin, "cpe-capture"))).toBe(false);
    expect(existsSync(join(bin, "server-capture"))).toBe(false);
    const gone = await exec("sh", ["-c", 'command -v "$1"', "sh", "cpe-capture"], { cwd: "/tmp", env });
    expect(gone.code).not.toBe(0);
    // The clone's build stays: the links pointed at it, nothing was copied.
    expect(existsSync(join(clone, "packages/cpe-capture/dist/index.js"))).toBe(true);
  }, 60_000);

  it("npm's real global bin folder, where README's set-up links the commands, is on this machine's PATH", async () => {
    const r = await exec("npm", ["prefix", "-g"], { cwd: "/tmp", env: cleanNpmEnv() });
    expect(r.code).toBe(0);
    expect((process.env.PATH ?? "").split(":")).toContain(join(r.stdout.trim(), "bin"));
  });
});
