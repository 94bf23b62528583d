// A fresh clone of the working tree with README's set-up done (npm ci, npm run build), shared by
// the install tests (PATH, one-file executables, packages). It holds exactly what a clone would:
// the tracked files and the untracked ones git does not ignore, never node_modules or dist/ from
// this tree. Made once per content of the tree and reused by later test files and runs (about
// 40 s to make); a clone of an older tree is removed when a new one is made.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { ROOT } from "./agent-proc.js";

const run = promisify(execFile);

/** Where every fresh clone lives: one folder per tree content, named by its hash. */
export const FRESH_CLONES = join(tmpdir(), "capsync-fresh-clone");
const READY = ".capsync-fresh-clone-ready";
/** What `npm ci` printed in the clone (stdout, then stderr), for the tests that read its warnings. */
export const NPM_CI_LOG = ".capsync-npm-ci.log";

/**
 * The environment for npm in the clone: this process's, without the npm_* variables the npm that
 * started vitest (`npm test`) sets, which would point the clone's npm at this tree's config.
 * `extra` adds or overrides variables (e.g. npm_config_prefix for a private global folder).
 */
export function cleanNpmEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

async function treeFiles(): Promise<string[]> {
  const { stdout } = await run("git", ["-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], { maxBuffer: 64 << 20 });
  // A tracked file deleted in the working tree is not part of the tree a clone would get here.
  return stdout
    .split("\0")
    .filter((f) => f && existsSync(join(ROOT, f)))
    .sort();
}

function treeKey(files: string[]): string {
  const h = createHash("sha256");
  for (const f of files) h.update(f).update("\0").update(readFileSync(join(ROOT, f))).update("\0");
  return h.digest("hex").slice(0, 16);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Clones of other tree contents, and half-made ones whose maker has died. */
function removeStale(keep: string): void {
  for (const name of readdirSync(FRESH_CLONES)) {
    const tmp = /\.tmp-(\d+)$/.exec(name);
    if (name === keep || (tmp && pidAlive(Number(tmp[1])))) continue;
    rmSync(join(FRESH_CLONES, name), { recursive: true, force: true });
  }
}

let made: Promise<string> | undefined;

/**
 * The path of a fresh clone of the current working tree after `npm ci` and `npm run build`
 * (README's set-up without the global `npm link`, which each test does into its own prefix).
 * npm reads packages from its cache first (--prefer-offline), so a warm cache needs no network.
 */
export function freshClone(): Promise<string> {
  made ??= make();
  return made;
}

async function make(): Promise<string> {
  const files = await treeFiles();
  const key = treeKey(files);
  const dir = join(FRESH_CLONES, key);
  if (existsSync(join(dir, READY))) return dir;
  mkdirSync(FRESH_CLONES, { recursive: true });
  removeStale(key);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    for (const f of files) {
      mkdirSync(dirname(join(tmp, f)), { recursive: true });
      copyFileSync(join(ROOT, f), join(tmp, f)); // keeps the mode: the executable scripts stay executable
    }
    const npm = (args: string[]) => run("npm", args, { cwd: tmp, env: cleanNpmEnv(), maxBuffer: 64 << 20 });
    const ci = await npm(["ci", "--prefer-offline", "--no-audit", "--no-fund"]);
    writeFileSync(join(tmp, NPM_CI_LOG), `${ci.stdout}${ci.stderr}`);
    await npm(["run", "build"]);
    writeFileSync(join(tmp, READY), `${new Date().toISOString()}\n`);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // Another process finished the same clone first: use theirs.
      if (!existsSync(join(dir, READY))) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
    return dir;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const err = e as { message: string; stdout?: string; stderr?: string };
    throw new Error(`fresh clone set-up failed: ${err.message}\n${err.stdout ?? ""}${err.stderr ?? ""}`);
  }
}
