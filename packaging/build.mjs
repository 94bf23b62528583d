// `npm run dist`'s package step: the agent as a Debian package and an RPM, the orchestrator as a
// Debian package, each built around the one-file executable with dpkg-deb and rpmbuild. No
// debhelper: every installed file and maintainer script is in packaging/, so what is shipped is
// what is read there. Reproducible: file times are SOURCE_DATE_EPOCH (default: the last commit).
// Usage: node packaging/build.mjs [--out dist] [--version <v>] [--agent <exe>] [--cpe <exe>] [--fast]
//   --version defaults to each package.json's; --agent/--cpe to dist/<name>-<version>-linux-x64;
//   --fast (or CAPSYNC_PACKAGE_COMPRESSION=fast, for `npm run dist` in tests) compresses with gzip -1
//   instead of xz: same contents, seconds instead of ~25 s per 100 MB package.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";

const ROOT = join(import.meta.dirname, "..");
const HERE = import.meta.dirname;
const MAINTAINER = "capsync maintainers <maintainers@capsync.invalid>";
const HOMEPAGE = "https://github.com/capsync/capsync";

/** npm's 1.2.0-rc.1 sorts after 1.2.0 in dpkg and rpm unless the '-' becomes '~'. */
export function packageVersion(npmVersion) {
  if (!/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?$/.test(npmVersion)) throw new Error(`version '${npmVersion}' is not x.y.z[-pre]`);
  return npmVersion.replace("-", "~");
}

export function npmVersionOf(pkg) {
  return JSON.parse(readFileSync(join(ROOT, "packages", pkg, "package.json"), "utf8")).version;
}

/** The file names this step writes into `out` for these versions. */
export function packageFiles(agentVersion, cpeVersion) {
  const a = packageVersion(agentVersion);
  return [`server-capture_${a}_amd64.deb`, `cpe-capture_${packageVersion(cpeVersion)}_amd64.deb`, `server-capture-${a}-1.x86_64.rpm`];
}

function sourceDateEpoch() {
  if (process.env.SOURCE_DATE_EPOCH && /^\d+$/.test(process.env.SOURCE_DATE_EPOCH)) return Number(process.env.SOURCE_DATE_EPOCH);
  try {
    return Number(execFileSync("git", ["log", "-1", "--format=%ct"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()) || 0;
  } catch {
    return 0;
  }
}

function run(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...opts });
  } catch (e) {
    if (e.code === "ENOENT") throw new Error(`${cmd} not found: apt-get install ${cmd === "rpmbuild" ? "rpm" : "dpkg-dev"}`);
    throw new Error(`${cmd} ${args.join(" ")} failed: ${String(e.stderr || e.message).trim()}`);
  }
}

/** Files of one package: [path inside the package, mode, content Buffer | source file path]. */
function place(stage, files) {
  for (const [path, mode, content] of files) {
    const to = join(stage, path);
    mkdirSync(dirname(to), { recursive: true });
    if (typeof content === "string") copyFileSync(content, to);
    else writeFileSync(to, content);
    chmodSync(to, mode);
  }
}

/** Every directory 0755 and every mtime the epoch: the archive depends on the inputs only. */
function normalise(dir, epoch) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      chmodSync(p, 0o755);
      normalise(p, epoch);
    }
    utimesSync(p, epoch, epoch);
  }
  utimesSync(dir, epoch, epoch);
}

// gzip -9n as Debian wants man pages and changelogs: no name, no time, maximum compression.
const gz = (text) => gzipSync(Buffer.from(text), { level: 9 });

function changelog(pkg, version, epoch) {
  const date = new Date(epoch * 1000).toUTCString().replace("GMT", "+0000");
  return `${pkg} (${version}) unstable; urgency=medium\n\n  * capsync ${version}; the changes are in CHANGELOG.md of the capsync sources.\n\n -- ${MAINTAINER}  ${date}\n`;
}

function walk(dir, base = dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), base) : [relative(base, join(dir, e.name))]));
}

/** Library dependencies of the executable as dpkg-shlibdeps finds them ("" for a non-ELF stand-in). */
function shlibDepends(stage, exe) {
  const work = mkdtempSync(join(tmpdir(), "capsync-shlibs-"));
  try {
    mkdirSync(join(work, "debian"));
    writeFileSync(join(work, "debian/control"), "");
    const out = run("dpkg-shlibdeps", ["-O", "-e", join(stage, exe)], { cwd: work });
    return /^shlibs:Depends=(.*)$/m.exec(out)?.[1]?.trim() ?? "";
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function buildDeb({ name, version, exe, section, depends, description, extra, man, scripts, out, epoch, fast }) {
  const stage = mkdtempSync(join(tmpdir(), `capsync-deb-${name}-`));
  try {
    const doc = `usr/share/doc/${name}`;
    place(stage, [
      [`usr/bin/${name}`, 0o755, exe],
      [`usr/share/man/man${man.section}/${name}.${man.section}.gz`, 0o644, gz(readFileSync(join(HERE, "man", `${name}.${man.section}`), "utf8"))],
      [`${doc}/copyright`, 0o644, join(HERE, "copyright")],
      [`${doc}/changelog.gz`, 0o644, gz(changelog(name, version, epoch))],
      // Each overridden tag has its reason above it in the file.
      [`usr/share/lintian/overrides/${name}`, 0o644, join(HERE, "debian/lintian", name)],
      ...extra,
    ]);
    const files = walk(stage).sort();
    const installedKb = files.reduce((n, f) => n + Math.ceil(statSync(join(stage, f)).size / 1024), 0);
    const libs = shlibDepends(stage, `usr/bin/${name}`);
    const control = [
      `Package: ${name}`,
      `Version: ${version}`,
      "Architecture: amd64",
      `Maintainer: ${MAINTAINER}`,
      `Installed-Size: ${installedKb}`,
      `Depends: ${[libs, ...depends].filter(Boolean).join(", ")}`,
      `Section: ${section}`,
      "Priority: optional",
      `Homepage: ${HOMEPAGE}`,
      `Description: ${description}`,
      "",
    ].join("\n");
    const md5sums = files.map((f) => `${createHash("md5").update(readFileSync(join(stage, f))).digest("hex")}  ${f}\n`).join("");
    place(stage, [
      ["DEBIAN/control", 0o644, Buffer.from(control)],
      ["DEBIAN/md5sums", 0o644, Buffer.from(md5sums)],
      ...scripts.map((s) => [`DEBIAN/${s}`, s === "conffiles" ? 0o644 : 0o755, join(HERE, "debian", name, s)]),
    ]);
    chmodSync(stage, 0o755);
    normalise(stage, epoch);
    const file = join(out, `${name}_${version}_amd64.deb`);
    const compression = fast ? ["-Zgzip", "-z1"] : ["-Zxz"];
    run("dpkg-deb", ["--root-owner-group", ...compression, "--build", stage, file], { env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } });
    return file;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function buildRpm({ version, exe, out, epoch, fast }) {
  const work = mkdtempSync(join(tmpdir(), "capsync-rpm-"));
  try {
    const stage = join(work, "stage");
    place(stage, [
      ["usr/bin/server-capture", 0o755, exe],
      ["usr/lib/systemd/system/server-capture.service", 0o644, join(HERE, "server-capture.service")],
      ["etc/capsync/server-capture.env", 0o644, join(HERE, "server-capture.env")],
      ["usr/share/man/man8/server-capture.8.gz", 0o644, gz(readFileSync(join(HERE, "man/server-capture.8"), "utf8"))],
      ["usr/share/licenses/server-capture/copyright", 0o644, join(HERE, "copyright")],
    ]);
    mkdirSync(join(stage, "var/lib/capsync/captures"), { recursive: true });
    normalise(stage, epoch);
    const define = (k, v) => ["--define", `${k} ${v}`];
    run("rpmbuild", [
      "-bb", "--target", "x86_64", "--nodeps",
      ...define("_topdir", join(work, "top")),
      ...define("_rpmdir", work),
      ...define("_build_name_fmt", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm"),
      ...define("capsync_version", version),
      ...define("capsync_stage", stage),
      ...define("_binary_payload", fast ? "w1.gzdio" : "w6T.xzdio"),
      // Same inputs, same bytes: no build host name or build time of this machine in the header.
      ...define("_buildhost", "capsync"),
      ...define("use_source_date_epoch_as_buildtime", "1"),
      ...define("clamp_mtime_to_source_date_epoch", "1"),
      ...define("_build_id_links", "none"),
      join(HERE, "rpm/server-capture.spec"),
    ], { env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch), HOME: work } });
    const name = `server-capture-${version}-1.x86_64.rpm`;
    const file = join(out, name);
    renameSync(join(work, name), file);
    return file;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Builds the three packages into `out`; returns their paths. */
export function buildPackages({ out, agent, cpe, agentVersion = npmVersionOf("server-capture"), cpeVersion = npmVersionOf("cpe-capture"), fast = process.env.CAPSYNC_PACKAGE_COMPRESSION === "fast" }) {
  const epoch = sourceDateEpoch();
  mkdirSync(out, { recursive: true });
  const a = packageVersion(agentVersion);
  return [
    buildDeb({
      name: "server-capture",
      version: a,
      exe: agent,
      section: "net",
      depends: ["adduser", "tcpdump", "iputils-ping"],
      description: [
        "capsync capture agent: tcpdump on command from cpe-capture",
        " Listens for authenticated CAPTURE/STOP/REGISTER/VERIFY commands from the",
        " capsync orchestrator and captures a device's traffic with tcpdump in a bounded",
        " ring of files, renamed to match the device's own capture. One executable, no",
        " Node.js needed. The service runs as the capsync user with CAP_NET_RAW only; the",
        " key is generated at the first installation.",
      ].join("\n"),
      man: { section: 8 },
      extra: [
        ["lib/systemd/system/server-capture.service", 0o644, join(HERE, "server-capture.service")],
        ["etc/capsync/server-capture.env", 0o644, join(HERE, "server-capture.env")],
      ],
      scripts: ["postinst", "prerm", "postrm", "conffiles"],
      out,
      epoch,
      fast,
    }),
    buildDeb({
      name: "cpe-capture",
      version: packageVersion(cpeVersion),
      exe: cpe,
      section: "net",
      depends: ["iputils-ping"],
      description: [
        "capsync orchestrator: synchronised captures on devices and servers",
        " Starts packet captures on network devices and on the server-capture agents",
        " that see their traffic, stops them all when the management server raises the",
        " device's Connection Lost alarm, and collects the files into one run directory.",
        " One executable, no Node.js needed.",
      ].join("\n"),
      man: { section: 1 },
      extra: [],
      scripts: [],
      out,
      epoch,
      fast,
    }),
    buildRpm({ version: a, exe: agent, out, epoch, fast }),
  ];
}

function main() {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: join(ROOT, "dist") },
      version: { type: "string" },
      agent: { type: "string" },
      cpe: { type: "string" },
      fast: { type: "boolean", default: process.env.CAPSYNC_PACKAGE_COMPRESSION === "fast" },
    },
  });
  const out = resolve(values.out);
  const agentVersion = values.version ?? npmVersionOf("server-capture");
  const cpeVersion = values.version ?? npmVersionOf("cpe-capture");
  const agent = resolve(values.agent ?? join(out, `server-capture-${agentVersion}-linux-x64`));
  const cpe = resolve(values.cpe ?? join(out, `cpe-capture-${cpeVersion}-linux-x64`));
  for (const f of [agent, cpe]) if (!existsSync(f)) throw new Error(`${f}: no such executable (npm run dist builds it)`);
  for (const f of buildPackages({ out, agent, cpe, agentVersion, cpeVersion, fast: values.fast })) console.log(f);
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  try {
    main();
  } catch (e) {
    console.error(`packages: ${e.message}`);
    process.exit(1);
  }
}
