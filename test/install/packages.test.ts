// The .deb and .rpm packages of `npm run dist` (packaging/). Built once into a temp dir by the real
// dist script (gzip instead of xz: same contents, a minute less), while a throwaway Debian 12 root is
// bootstrapped beside it. Checked: file lists, modes and control fields; lintian with no error or
// warning left (each override has its reason); the agent .deb's life in that root — install, the
// unit verified by systemd-analyze, upgrade keeping the key and the captures, remove keeping them,
// purge removing them and the user; the RPM's file list, scriptlets and requirements via rpm -qp,
// and its scriptlets run for real by rpm --root in the same kind of root.
import { createHash } from "node:crypto";
import { chownSync, existsSync, lstatSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, TestPeer, tempDir } from "../helpers/agent-proc.js";
import { debianRoot, inRoot, outcome, spawnInRoot, stopInRoot } from "../helpers/debian-root.js";

const VERSION = (name: string) => (JSON.parse(readFileSync(join(ROOT, "packages", name, "package.json"), "utf8")) as { version: string }).version;
const V = VERSION("server-capture");
const CPE_V = VERSION("cpe-capture");
// The upgrade: the same executables packaged as the next patch release.
const NEXT = V.replace(/^(\d+)\.(\d+)\.(\d+).*$/, (_, a: string, b: string, c: string) => `${a}.${b}.${Number(c) + 1}`);
const AGENT_DEB = `server-capture_${V}_amd64.deb`;
const CPE_DEB = `cpe-capture_${CPE_V}_amd64.deb`;
const AGENT_RPM = `server-capture-${V}-1.x86_64.rpm`;
// What the packages need in the root, as a server would have them (iputils-ping, tcpdump, adduser:
// the .deb's Depends) plus systemd and man-db for `systemd-analyze verify` (unit and man page).
const ROOT_PACKAGES = ["adduser", "tcpdump", "iputils-ping", "systemd", "man-db"];
// A port and device address no other test file uses, for the agent installed in the root.
const AGENT_ADDR = "127.0.0.1"; // where TestPeer sends
const AGENT_PORT = 20173;
const DEVICE = "127.0.173.9";
const FAST = { ...process.env, CAPSYNC_PACKAGE_COMPRESSION: "fast" };

let work: string;
let dist: string;
let next: string;
let debRoot: string;
let lintian: Promise<{ code: number; stdout: string; stderr: string }[]>;
const timings: string[] = [];

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
  const t = Date.now();
  try {
    return await f();
  } finally {
    timings.push(`${what} ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
};

/** passwd/group entry of `name` in the root, or undefined. */
function entry(root: string, file: "passwd" | "group", name: string): string[] | undefined {
  return readFileSync(join(root, "etc", file), "utf8").split("\n").map((l) => l.split(":")).find((f) => f[0] === name);
}

beforeAll(async () => {
  work = tempDir("capsync-packages-");
  dist = join(work, "dist");
  next = join(work, "next");
  const built = timed("npm run dist (executables + packages)", async () => {
    const b = await outcome(process.execPath, [join(ROOT, "tools/dist/build.mjs"), "--out", dist], { timeout: 240_000, env: FAST });
    expect(b.stderr, b.stderr).toBe("");
    expect(b.code).toBe(0);
    // lintian takes longest (it reads every string of two 100 MB executables): started now, one
    // process per package, it runs while the root is prepared and the lifecycle tests go on.
    lintian = timed("lintian (both, in parallel)", () => Promise.all([AGENT_DEB, CPE_DEB].map((d) => outcome("lintian", ["--fail-on", "error,warning", "--display-info", join(dist, d)], { timeout: 300_000 }))));
    lintian.catch(() => undefined);
    const n = await outcome(process.execPath, [join(ROOT, "packaging/build.mjs"), "--out", next, "--version", NEXT, "--agent", join(dist, `server-capture-${V}-linux-x64`), "--cpe", join(dist, `cpe-capture-${CPE_V}-linux-x64`)], { timeout: 120_000, env: FAST });
    expect(n.stderr, n.stderr).toBe("");
    expect(n.code).toBe(0);
  });
  const rooted = timed("Debian 12 root", async () => {
    const r = await debianRoot(ROOT_PACKAGES);
    debRoot = r.root;
    timings.push(`(root: ${r.bootstrapped ? "debootstrap + tar" : "from today's cache"})`);
  });
  await Promise.all([built, rooted]);
}, 400_000);

afterAll(() => {
  console.log(`packages test timings: ${timings.join("; ")}`);
  if (work) rmSync(work, { recursive: true, force: true });
  if (debRoot) rmSync(debRoot, { recursive: true, force: true });
});

describe("npm run dist: the packages", () => {
  it("writes both .deb files and the agent .rpm beside the executables, with their sha256 in SHA256SUMS", async () => {
    const files = readdirSync(dist).sort();
    expect(files).toEqual(["SHA256SUMS", AGENT_RPM, AGENT_DEB, CPE_DEB, `cpe-capture-${CPE_V}-linux-x64`, `server-capture-${V}-linux-x64`].sort());
    const sums = readFileSync(join(dist, "SHA256SUMS"), "utf8");
    for (const f of [AGENT_DEB, CPE_DEB, AGENT_RPM]) expect(sums).toContain(`${sha256(join(dist, f))}  ${f}\n`);
    const check = await outcome("sh", ["-c", 'cd "$1" && sha256sum -c --strict SHA256SUMS', "sh", dist]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout.trim().split("\n")).toHaveLength(5);
  });

  it("the agent .deb: the executable, the unit, the options conffile, man page and docs; no key inside; Depends on tcpdump, adduser, ping and the C++ runtime", async () => {
    const deb = join(dist, AGENT_DEB);
    const list = (await outcome("dpkg-deb", ["-c", deb])).stdout.trim().split("\n").map((l) => l.split(/\s+/));
    const files = list.filter((f) => !f[0]!.startsWith("d")).map((f) => `${f[0]} ${f[1]} ${f[5]}`);
    expect(files).toEqual([
      "-rw-r--r-- root/root ./etc/capsync/server-capture.env",
      "-rw-r--r-- root/root ./lib/systemd/system/server-capture.service",
      "-rwxr-xr-x root/root ./usr/bin/server-capture",
      "-rw-r--r-- root/root ./usr/share/doc/server-capture/changelog.gz",
      "-rw-r--r-- root/root ./usr/share/doc/server-capture/copyright",
      "-rw-r--r-- root/root ./usr/share/lintian/overrides/server-capture",
      "-rw-r--r-- root/root ./usr/share/man/man8/server-capture.8.gz",
    ]);
    expect((await outcome("dpkg-deb", ["-f", deb, "Package", "Version", "Architecture"])).stdout).toBe(`Package: server-capture\nVersion: ${V}\nArchitecture: amd64\n`);
    const depends = (await outcome("dpkg-deb", ["-f", deb, "Depends"])).stdout.trim().split(", ").map((d) => d.split(" ")[0]);
    expect(depends).toEqual(expect.arrayContaining(["libc6", "libstdc++6", "adduser", "tcpdump", "iputils-ping"]));
    expect((await outcome("dpkg-deb", ["--info", deb, "conffiles"])).stdout).toBe("/etc/capsync/server-capture.env\n");
    const unit = (await outcome("sh", ["-c", 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./lib/systemd/system/server-capture.service', "sh", deb])).stdout;
    expect(unit).toBe(readFileSync(join(ROOT, "packaging/server-capture.service"), "utf8"));
    expect(unit).toMatch(/^User=capsync$/m);
    expect(unit).toMatch(/^AmbientCapabilities=CAP_NET_RAW$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/server-capture --dir \/var\/lib\/capsync\/captures --key-file \/etc\/capsync\/agent.key --on-term keep \$SERVER_CAPTURE_OPTS$/m);
    // Captures survive `systemctl restart` and upgrades: only the agent is signalled, and it keeps them.
    expect(unit).toMatch(/^KillMode=process$/m);
  });

  it("the orchestrator .deb: cpe-capture, its man page and docs, no service and no maintainer scripts", async () => {
    const deb = join(dist, CPE_DEB);
    const list = (await outcome("dpkg-deb", ["-c", deb])).stdout.trim().split("\n").map((l) => l.split(/\s+/));
    expect(list.filter((f) => !f[0]!.startsWith("d")).map((f) => f[5])).toEqual([
      "./usr/bin/cpe-capture",
      "./usr/share/doc/cpe-capture/changelog.gz",
      "./usr/share/doc/cpe-capture/copyright",
      "./usr/share/lintian/overrides/cpe-capture",
      "./usr/share/man/man1/cpe-capture.1.gz",
    ]);
    const info = (await outcome("dpkg-deb", ["--info", deb])).stdout;
    expect(info).not.toMatch(/postinst|prerm|postrm|conffiles/);
    expect(info).toContain(`Version: ${CPE_V}`);
  });

  it("lintian: no error or warning in either .deb; every override is used and has its reason above it", async () => {
    for (const l of await lintian) {
      const tags = l.stdout.trim().split("\n").filter(Boolean);
      // The info tags left are about Node.js's own strings (spelling-error-in-binary) and the
      // systemd-only service (no init.d script); they are printed so the log shows them.
      console.log(`lintian info tags: ${tags.filter((t) => t.startsWith("I: ")).length}, e.g. ${[...new Set(tags.map((t) => t.split(" ")[2]))].join(", ")}`);
      expect(tags.filter((t) => /^[EWX]: /.test(t)), l.stdout).toEqual([]);
      expect(tags.filter((t) => /unused-override|mismatched-override|malformed-override/.test(t)), l.stdout).toEqual([]);
      expect(l.code, l.stdout + l.stderr).toBe(0);
    }
    for (const p of ["server-capture", "cpe-capture"]) {
      const lines = readFileSync(join(ROOT, "packaging/debian/lintian", p), "utf8").trim().split("\n");
      expect(lines.filter((l) => !l.startsWith("#")).sort()).toEqual(["embedded-library zlib", "hardening-no-pie", "unstripped-binary-or-object"].map((t) => `${p}: ${t} [usr/bin/${p}]`));
      lines.forEach((line, i) => {
        if (!line.startsWith("#")) expect(lines[i - 1], `override '${line}' needs a '# reason' line above it`).toMatch(/^# \S/);
      });
    }
  }, 300_000);
});

describe("the agent .deb in a Debian 12 root: install, upgrade, remove, purge", () => {
  const key = () => join(debRoot, "etc/capsync/agent.key");
  const capture = () => join(debRoot, "var/lib/capsync/captures/OVOC_device_192.0.2.10_2026-12-06T01.00.00.000000-0.pcap");
  const captureBytes = Buffer.from("d4c3b2a1020004000000000000000000ffff000001000000", "hex");
  let keyBytes: Buffer;

  it("install: capsync system user, a new 0600 key of 64 base64 characters owned by it, its dirs, the unit enabled and passing systemd-analyze verify", async () => {
    for (const f of [join(dist, AGENT_DEB), join(next, `server-capture_${NEXT}_amd64.deb`)]) writeFileSync(join(debRoot, "tmp", f.split("/").pop()!), readFileSync(f));
    const i = await timed("dpkg -i", () => inRoot(debRoot, ["dpkg", "-i", `/tmp/${AGENT_DEB}`]));
    expect(i.code, i.stdout + i.stderr).toBe(0);
    const user = entry(debRoot, "passwd", "capsync")!;
    expect(user, "capsync user").toBeDefined();
    const [uid, gid] = [Number(user[2]), Number(user[3])];
    expect(uid).toBeLessThan(1000);
    expect(user[5]).toBe("/var/lib/capsync");
    expect(user[6]).toBe("/usr/sbin/nologin");
    expect(Number(entry(debRoot, "group", "capsync")![2])).toBe(gid);
    const st = statSync(key());
    expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o600, uid, gid]);
    keyBytes = readFileSync(key());
    // Never printed: only its shape is checked.
    expect(/^[A-Za-z0-9+/]{64}$/.test(keyBytes.toString("latin1")), "key is 64 base64 characters on one line").toBe(true);
    for (const d of ["var/lib/capsync", "var/lib/capsync/captures"]) {
      const s = statSync(join(debRoot, d));
      expect([d, s.mode & 0o777, s.uid, s.gid]).toEqual([d, 0o750, uid, gid]);
    }
    expect(lstatSync(join(debRoot, "etc/systemd/system/multi-user.target.wants/server-capture.service")).isSymbolicLink()).toBe(true);
    const v = await timed("systemd-analyze verify", () => inRoot(debRoot, ["systemd-analyze", "verify", "server-capture.service"]));
    expect(v.stdout + v.stderr).toBe("");
    expect(v.code).toBe(0);
    // The executable runs in this root, which has no Node.js at all.
    expect(existsSync(join(debRoot, "usr/bin/node"))).toBe(false);
    const ver = await inRoot(debRoot, ["server-capture", "--version"]);
    expect(ver.stdout.trim(), ver.stderr).toBe(V);
    // An existing capture, as the running agent would have left it.
    writeFileSync(capture(), captureBytes);
    chownSync(capture(), uid, gid);
  });

  it("the installed agent runs as the unit runs it (capsync, CAP_NET_RAW only) with the generated key: CAPTURE and STOP answer 200", async () => {
    // setpriv gives exactly what the unit's User=, AmbientCapabilities= and
    // CapabilityBoundingSet= give; systemd itself cannot run in a chroot.
    const agent = spawnInRoot(debRoot, [
      "setpriv", "--reuid=capsync", "--regid=capsync", "--init-groups", "--inh-caps=-all,+net_raw", "--ambient-caps=-all,+net_raw", "--bounding-set=-all,+net_raw", "--no-new-privs",
      "/usr/bin/server-capture", "--dir", "/var/lib/capsync/captures", "--key-file", "/etc/capsync/agent.key", "--listen", `${AGENT_ADDR}:${AGENT_PORT}`, "--interface", "lo",
    ]);
    let log = "";
    agent.stderr!.on("data", (b: Buffer) => (log += b.toString()));
    agent.stdout!.on("data", (b: Buffer) => (log += b.toString()));
    const exited = new Promise<number | null>((r) => agent.on("exit", (code) => r(code)));
    const peer = await TestPeer.open();
    try {
      for (let i = 0; i < 100 && !log.includes("listening on"); i++) await new Promise((r) => setTimeout(r, 100));
      expect(log).toContain(`listening on ${AGENT_ADDR}:${AGENT_PORT}`);
      const cap = await peer.request(AGENT_PORT, { verb: "CAPTURE", device: DEVICE }, Buffer.from(keyBytes), 15_000);
      expect(cap.final.code, `${JSON.stringify(cap.final.details)}\n${log}`).toBe(200);
      const stop = await peer.request(AGENT_PORT, { verb: "STOP", device: DEVICE, filename: `CPE_device_${DEVICE}_2026-12-06T01.00.00.000000.pcap` }, Buffer.from(keyBytes), 15_000);
      expect(stop.final.code, `${JSON.stringify(stop.final.details)}\n${log}`).toBe(200);
    } finally {
      peer.close();
      stopInRoot(agent);
    }
    expect(await exited).toBe(0);
    // The agent's own files are the captures an upgrade must keep, next to the one placed above.
    expect(readdirSync(join(debRoot, "var/lib/capsync/captures")).filter((f) => f.startsWith(`OVOC_device_${DEVICE}_`)).length).toBeGreaterThan(0);
  });

  it("upgrade to the next version keeps the key byte for byte and the captures", async () => {
    const u = await timed("dpkg -i (upgrade)", () => inRoot(debRoot, ["dpkg", "-i", `/tmp/server-capture_${NEXT}_amd64.deb`]));
    expect(u.code, u.stdout + u.stderr).toBe(0);
    expect(u.stdout).toContain(`Unpacking server-capture (${NEXT}) over (${V})`);
    expect((await inRoot(debRoot, ["dpkg-query", "-W", "-f", "${Version} ${db:Status-Abbrev}", "server-capture"])).stdout.trim()).toBe(`${NEXT} ii`);
    expect(readFileSync(key()).equals(keyBytes), "key unchanged").toBe(true);
    expect(statSync(key()).mode & 0o777).toBe(0o600);
    expect(readFileSync(capture())).toEqual(captureBytes);
  });

  it("remove keeps the key, the captures, the options file and the user; the executable and the unit go", async () => {
    const r = await timed("dpkg -r", () => inRoot(debRoot, ["dpkg", "-r", "server-capture"]));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await inRoot(debRoot, ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "server-capture"])).stdout.trim()).toBe("rc");
    expect(existsSync(join(debRoot, "usr/bin/server-capture"))).toBe(false);
    expect(existsSync(join(debRoot, "lib/systemd/system/server-capture.service"))).toBe(false);
    expect(readFileSync(key()).equals(keyBytes), "key kept").toBe(true);
    expect(readFileSync(capture())).toEqual(captureBytes);
    expect(existsSync(join(debRoot, "etc/capsync/server-capture.env"))).toBe(true);
    expect(entry(debRoot, "passwd", "capsync")).toBeDefined();
  });

  it("purge removes /etc/capsync, /var/lib/capsync with the captures, the capsync user and group, and the unit's enablement", async () => {
    const p = await timed("dpkg -P", () => inRoot(debRoot, ["dpkg", "-P", "server-capture"]));
    expect(p.code, p.stdout + p.stderr).toBe(0);
    expect((await inRoot(debRoot, ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "server-capture"])).code).not.toBe(0);
    for (const gone of ["etc/capsync", "var/lib/capsync", "etc/systemd/system/multi-user.target.wants/server-capture.service"]) {
      expect(existsSync(join(debRoot, gone)), gone).toBe(false);
    }
    expect(entry(debRoot, "passwd", "capsync")).toBeUndefined();
    expect(entry(debRoot, "group", "capsync")).toBeUndefined();
  });
});

describe("the agent .rpm", () => {
  const rpm = () => join(dist, AGENT_RPM);
  const q = async (...args: string[]) => {
    const r = await outcome("rpm", ["-qp", ...args, rpm()]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  it("rpm -qp: name, version, arch, the file list with owners and modes, the config file", async () => {
    expect(await q("--qf", "%{NAME} %{VERSION}-%{RELEASE} %{ARCH} %{LICENSE}\n")).toBe(`server-capture ${V}-1 x86_64 MIT\n`);
    expect((await q("--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]")).trim().split("\n").sort()).toEqual(
      [
        "drwxr-xr-x root:root /etc/capsync",
        "-rw-r--r-- root:root /etc/capsync/server-capture.env",
        "-rwxr-xr-x root:root /usr/bin/server-capture",
        "-rw-r--r-- root:root /usr/lib/systemd/system/server-capture.service",
        "-rw-r--r-- root:root /usr/share/licenses/server-capture/copyright",
        "-rw-r--r-- root:root /usr/share/man/man8/server-capture.8.gz",
        "drwxr-x--- capsync:capsync /var/lib/capsync",
        "drwxr-x--- capsync:capsync /var/lib/capsync/captures",
      ].sort(),
    );
    expect(await q("--list")).not.toContain("agent.key");
    expect(await q("--configfiles")).toBe("/etc/capsync/server-capture.env\n");
  });

  it("rpm -qp --requires: tcpdump, ping, useradd for %pre, systemd for the scriptlets, and the C++ runtime of the executable", async () => {
    const req = (await q("--requires")).trim().split("\n");
    for (const r of ["tcpdump", "iputils", "shadow-utils", "systemd", "coreutils"]) expect(req, r).toContain(r);
    for (const lib of ["libc.so.6()(64bit)", "libstdc++.so.6()(64bit)"]) expect(req, lib).toContain(lib);
  });

  it("rpm -qp --scripts: %pre creates the user, %post makes the key only when none exists, the systemd scriptlets as on RHEL", async () => {
    const s = await q("--scripts");
    const part = (name: string) => new RegExp(`^${name} scriptlet \\(using /bin/sh\\):\\n([\\s\\S]*?)(?=^\\w+ scriptlet|$(?![\\s\\S]))`, "m").exec(s)?.[1] ?? "";
    expect(part("preinstall")).toContain("getent passwd capsync >/dev/null || useradd -r -g capsync -d /var/lib/capsync -s /sbin/nologin");
    expect(part("postinstall")).toContain("if [ ! -e /etc/capsync/agent.key ]; then");
    expect(part("postinstall")).toContain("head -c 48 /dev/urandom | base64 -w 0 > /etc/capsync/agent.key.new");
    expect(part("postinstall")).toContain("systemctl --no-reload preset server-capture.service");
    expect(part("preuninstall")).toContain("systemctl --no-reload disable --now server-capture.service");
    expect(part("postuninstall")).toContain("systemctl try-restart server-capture.service");
  });

  it("its scriptlets for real (rpm --root in a Debian root): install makes the user and the key, upgrade keeps the key, erase keeps key and captures", async () => {
    const r = (args: string[]) => outcome("rpm", ["--root", debRoot, "--nodeps", ...args], { timeout: 120_000 });
    const i = await timed("rpm -i", () => r(["-i", rpm()]));
    expect(i.code, i.stdout + i.stderr).toBe(0);
    const user = entry(debRoot, "passwd", "capsync")!;
    expect(user, "capsync user").toBeDefined();
    const st = statSync(join(debRoot, "etc/capsync/agent.key"));
    expect([st.mode & 0o777, st.uid]).toEqual([0o600, Number(user[2])]);
    const keyBytes = readFileSync(join(debRoot, "etc/capsync/agent.key"));
    expect(/^[A-Za-z0-9+/]{64}$/.test(keyBytes.toString("latin1"))).toBe(true);
    writeFileSync(join(debRoot, "var/lib/capsync/captures/kept.pcap"), "x");
    const u = await timed("rpm -U", () => r(["-U", join(next, `server-capture-${NEXT}-1.x86_64.rpm`)]));
    expect(u.code, u.stdout + u.stderr).toBe(0);
    expect(readFileSync(join(debRoot, "etc/capsync/agent.key")).equals(keyBytes), "key unchanged").toBe(true);
    const e = await r(["-e", "server-capture"]);
    expect(e.code, e.stdout + e.stderr).toBe(0);
    expect(existsSync(join(debRoot, "usr/bin/server-capture"))).toBe(false);
    expect(readFileSync(join(debRoot, "etc/capsync/agent.key")).equals(keyBytes), "key kept").toBe(true);
    expect(readFileSync(join(debRoot, "var/lib/capsync/captures/kept.pcap"), "utf8")).toBe("x");
  });
});
