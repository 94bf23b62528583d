// `npm run dist`: the release files in dist/ — one-file executables of both CLIs for linux-x64,
// named with their package's version, then SHA256SUMS over everything in dist/ (sha256sum -c).
// Usage: node tools/dist/build.mjs [--out <dir>] [--executables-only]
// (run `tsc -b` first: it bundles packages/*/dist; --executables-only skips the .deb/.rpm step)
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildExecutable } from "./sea.mjs";
import { buildPackages } from "../../packaging/build.mjs";

const ROOT = join(import.meta.dirname, "../..");
// The SEA blob only runs in the node binary it was made with: the executables are for the machine
// type of the node that runs this build.
const PLATFORM = `${process.platform}-${process.arch}`;

export const EXECUTABLES = [
  { name: "cpe-capture", pkg: "packages/cpe-capture", entry: "dist/index.js" },
  { name: "server-capture", pkg: "packages/server-capture", entry: "dist/cli.js" },
];

export function versionOf(pkg) {
  return JSON.parse(readFileSync(join(ROOT, pkg, "package.json"), "utf8")).version;
}

/** "<sha256>  <name>" lines for every file in `dir` but SHA256SUMS itself, as sha256sum writes them. */
export function writeChecksums(dir) {
  const files = readdirSync(dir).filter((f) => f !== "SHA256SUMS" && statSync(join(dir, f)).isFile()).sort();
  const lines = files.map((f) => `${createHash("sha256").update(readFileSync(join(dir, f))).digest("hex")}  ${f}\n`);
  writeFileSync(join(dir, "SHA256SUMS"), lines.join(""));
  return files;
}

async function main() {
  const { values } = parseArgs({ options: { out: { type: "string", default: join(ROOT, "dist") }, "executables-only": { type: "boolean", default: false } } });
  const out = resolve(values.out);
  // dist/ holds only this build's files, so SHA256SUMS never lists a stale version.
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), "capsync-dist-"));
  /** What the package step builds from: { name, version, file } per executable. */
  const built = [];
  try {
    for (const x of EXECUTABLES) {
      const version = versionOf(x.pkg);
      const file = join(out, `${x.name}-${version}-${PLATFORM}`);
      const started = Date.now();
      const r = await buildExecutable({ name: x.name, entry: join(ROOT, x.pkg, x.entry), out: file, work });
      // A smoke run: an executable that cannot even print its help is not shipped.
      const help = execFileSync(file, ["--help"], { encoding: "utf8", cwd: work, env: { PATH: "/usr/bin:/bin" } });
      if (!help.startsWith(`Usage: ${x.name} `)) throw new Error(`${file} --help printed:\n${help}`);
      const mb = (n) => (n / 1e6).toFixed(1);
      built.push({ name: x.name, version, file });
      console.log(`${file}: ${mb(r.bytes)} MB (bundle ${mb(r.bundleBytes)} MB from ${r.inputs} modules, blob ${mb(r.blobBytes)} MB; ssh2 crypto ${r.sshCrypto ? "native, as an asset" : "Node's: the binding is not built"}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (!values["executables-only"]) {
    // The .deb and .rpm packages wrap these executables; built before the checksums so SHA256SUMS lists them.
    const by = Object.fromEntries(built.map((b) => [b.name, b]));
    const pkgs = buildPackages({ out, agent: by["server-capture"].file, agentVersion: by["server-capture"].version, cpe: by["cpe-capture"].file, cpeVersion: by["cpe-capture"].version });
    for (const f of pkgs) console.log(f);
  }
  const listed = writeChecksums(out);
  console.log(`${join(out, "SHA256SUMS")}: ${listed.join(", ")}`);
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  main().catch((e) => {
    console.error(`dist: ${e.message}`);
    process.exit(1);
  });
}
