// One CLI -> one file that runs without Node.js installed: esbuild bundles the compiled ESM CLI and
// its dependencies into one CommonJS script (Node 20's single executable applications run exactly
// one CommonJS script), `node --experimental-sea-config` turns it into a blob, and postject injects
// the blob into a copy of the node binary that runs this build (process.execPath: no download).
// Everything that differs from `node dist/...` is in seaAdaptations below.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { build } from "esbuild";

const ROOT = join(import.meta.dirname, "../..");
const POSTJECT = join(ROOT, "node_modules/postject/dist/cli.js");
// The fuse string Node's official builds carry; postject flips it so the binary looks for the blob.
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

// Native add-ons cannot be loaded from inside the blob. ssh2 loads both of these in a try/catch
// and falls back to Node's own crypto, so either may be missing; anyone else requiring a native
// add-on fails the build instead of failing at run time on a server.
const NATIVE_ADDONS_WITH_FALLBACK = {
  "./crypto/build/Release/sshcrypto.node": "node_modules/ssh2/lib/protocol/crypto.js",
  "cpu-features": "node_modules/ssh2/lib/protocol/constants.js",
};
// ssh2's AES-GCM/ChaCha20 binding makes handshakes ~5x and SFTP ~2x faster (BENCHMARKS.md), so
// when `npm ci` built it, it rides along as a SEA asset (built for this very node binary).
const SSH_CRYPTO = join(ROOT, "node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node");
const SSH_CRYPTO_ASSET = "sshcrypto.node";
// A shared library loads only from a file: written to a fresh 0700 directory, loaded, removed at
// once (the mapping stays). Where that fails (a noexec /tmp), ssh2's catch uses Node crypto.
const LOAD_SSH_CRYPTO = `const { mkdtempSync, rmSync, writeFileSync } = require("node:fs");
const { join } = require("node:path");
const dir = mkdtempSync(join(require("node:os").tmpdir(), "capsync-sshcrypto-"));
try {
  const file = join(dir, ${JSON.stringify(SSH_CRYPTO_ASSET)});
  writeFileSync(file, new Uint8Array(require("node:sea").getRawAsset(${JSON.stringify(SSH_CRYPTO_ASSET)})), { mode: 0o500 });
  process.dlopen(module, file);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
`;

const DEMO_NOT_IN_EXECUTABLE =
  "the demo is not part of the one-file executable (it needs the lab package and its emulators); run it from a capsync checkout: npm ci && npm run demo";

/** What a one-file executable cannot do like `node dist/...`: files beside the code, the lab, native add-ons. */
function seaAdaptations(withSshCrypto) {
  return {
    name: "capsync-sea",
    setup(b) {
      // version.js reads ../package.json beside itself at run time; there is no such file next to
      // the executable, so the version is written into the bundle at build time.
      b.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]dist[\\/]version\.js$/ }, (args) => {
        const source = readFileSync(args.path, "utf8");
        if (!/export const VERSION\b/.test(source) || !source.includes("../package.json")) {
          throw new Error(`${relative(ROOT, args.path)} no longer exports VERSION read from ../package.json: update tools/dist/sea.mjs`);
        }
        const pkg = JSON.parse(readFileSync(join(dirname(args.path), "../package.json"), "utf8"));
        return { contents: `export const VERSION = ${JSON.stringify(pkg.version)};\n`, loader: "js" };
      });
      // The demo loads the lab package (emulators, netns lab) by name at run time; it is not in
      // the executable, so `demo` says so and exits 2 (bad input), like a missing lab in a checkout.
      b.onLoad({ filter: /[\\/]packages[\\/]cpe-capture[\\/]dist[\\/]commands[\\/]demo\.js$/ }, () => ({
        contents: `export const LAB_MISSING = ${JSON.stringify(DEMO_NOT_IN_EXECUTABLE)};
export async function demoCommand(_options, io) {
  io.stderr.write("cpe-capture demo: " + LAB_MISSING + "\\n");
  return 2;
}
`,
        loader: "js",
      }));
      b.onResolve({ filter: /\.node$|^cpu-features$/ }, (args) => {
        const importer = relative(ROOT, args.importer);
        if (NATIVE_ADDONS_WITH_FALLBACK[args.path] !== importer) {
          return { errors: [{ text: `native add-on ${args.path} required by ${importer}: it cannot be inside a one-file executable and has no known fallback` }] };
        }
        return { path: args.path, namespace: withSshCrypto && args.path.endsWith("/sshcrypto.node") ? "sea-asset" : "native-addon" };
      });
      b.onLoad({ filter: /.*/, namespace: "sea-asset" }, () => ({ contents: LOAD_SSH_CRYPTO, loader: "js" }));
      b.onLoad({ filter: /.*/, namespace: "native-addon" }, (args) => ({
        contents: `throw new Error(${JSON.stringify(`${args.path}: native add-ons are not part of the one-file executable`)});\n`,
        loader: "js",
      }));
    },
  };
}

/**
 * Bundle `entry` (a compiled ESM CLI) and make `out` the executable. `work` holds the bundle and
 * the blob. Returns sizes, and whether ssh2's binding is inside, for the build's summary.
 */
export async function buildExecutable({ name, entry, out, work }) {
  const bundle = join(work, `${name}.cjs`);
  const withSshCrypto = existsSync(SSH_CRYPTO);
  const result = await build({
    entryPoints: [entry],
    outfile: bundle,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    // Whitespace and syntax only: identifiers stay, so the stack of an unexpected error stays readable.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "none",
    logLevel: "warning",
    metafile: true,
    // In the executable the bundle is the entry module. The CLIs run main() when import.meta.url is
    // `file://${process.argv[1]}`; CommonJS has no import.meta, so define it to be exactly that.
    define: { "import.meta.url": "__capsync_entry_url" },
    banner: { js: `var __capsync_entry_url = "file://" + process.argv[1];` },
    plugins: [seaAdaptations(withSshCrypto)],
  });

  const blob = join(work, `${name}.blob`);
  const config = join(work, `${name}.sea.json`);
  // useCodeCache: V8's compiled code goes into the blob, so start-up skips compiling the bundle.
  const assets = withSshCrypto ? { [SSH_CRYPTO_ASSET]: SSH_CRYPTO } : {};
  writeFileSync(config, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true, assets }));
  execFileSync(process.execPath, ["--experimental-sea-config", config], { stdio: "pipe" });

  copyFileSync(process.execPath, out);
  chmodSync(out, 0o755);
  try {
    // postject's injector prints harmless ELF section warnings; they are shown only on failure.
    execFileSync(process.execPath, [POSTJECT, out, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE], { stdio: "pipe" });
  } catch (e) {
    throw new Error(`postject failed for ${out}:\n${e.stdout ?? ""}${e.stderr ?? e.message}`);
  }
  return { bundleBytes: statSync(bundle).size, blobBytes: statSync(blob).size, bytes: statSync(out).size, inputs: Object.keys(result.metafile.inputs).length, sshCrypto: withSshCrypto };
}
