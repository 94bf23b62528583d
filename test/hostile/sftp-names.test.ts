// Hostile file names: the STOP file name (packages/protocol filename.ts) that the agent turns into
// a capture file name (server-capture naming.ts), and the names the agent's read-only SFTP serves
// (sftp.ts isServedName). 100,000 fast-check cases each: what is accepted is one safe path
// component, and the agent's derived names stay inside the capture dir. Then 2,000 hostile paths
// over the wire against the real SFTP service (STAT, LSTAT, OPEN, OPENDIR, REALPATH, READ): only
// the finished capture is ever served; the state file, log, host key, .incoming, a symlink named
// like a capture, a directory named like one, and a file outside the dir never are.
import fc from "fast-check";
import { heapMb } from "../helpers/hostile.js";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2, { type SFTPWrapper } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@capsync/common";
import { filenameProblem, isSafeFilename } from "@capsync/protocol";
import { generateSshKeyPair } from "@capsync/emulators";
import { finalName, unusedName } from "../../packages/server-capture/src/naming.js";
import { loadOrCreateHostKey, parseAuthorizedKeys } from "../../packages/server-capture/src/sftp-keys.js";
import { isServedName, startAgentSftp, type AgentSftp } from "../../packages/server-capture/src/sftp.js";

const RUNS = 100_000;


const PIECES = ["..", ".", "/", "\\", "\0", "\n", "\r", "%2e", "%2f", "~", "-", "_", ".pcap", ".pcapng", ".pcap0", "CPE_device_", "192.0.2.10", "::1", ":", "$(id)", ";", "|", "`", "'", '"', " ", "*", "?", "[", "]", "{", "}", "\u202e", "ü", "💥", "a", "Z", "0", "x".repeat(100), ".incoming", "server-capture-state.json", ".sftp_host_ed25519_key", "server-capture.log"];
const hostileName = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 8 }).map((p) => p.join("")) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 60 }) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9._-]{1,210}$/) },
);

function run(name: string, check: (s: string, seen: Map<string, number>) => void): Map<string, number> {
  const seen = new Map<string, number>();
  const before = heapMb();
  const t0 = performance.now();
  fc.assert(
    fc.property(hostileName, (s) => {
      check(s, seen);
    }),
    { numRuns: RUNS },
  );
  const grew = heapMb() - before;
  console.log(`${name}: ${RUNS} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s, heap ${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MB; ${[...seen].map(([k, v]) => `${k} ${v}`).join(", ")}`);
  expect(grew).toBeLessThan(16);
  return seen;
}
const bump = (s: Map<string, number>, k: string) => s.set(k, (s.get(k) ?? 0) + 1);
/** One path component of a small alphabet: nothing a shell, a path or a terminal would read specially. */
const ONE_COMPONENT = /^[A-Za-z0-9._-]{1,255}$/;

describe("hostile file names", () => {
  it(`STOP file names (filenameProblem / isSafeFilename) and the agent's names derived from them: ${RUNS.toLocaleString("en")} cases`, () => {
    const dir = mkdtempSync(join(tmpdir(), "capsync-hostile-names-"));
    const seen = run("filename + finalName", (s, seen) => {
      const problem = filenameProblem(s);
      const safe = isSafeFilename(s);
      // The two checks agree, and "safe" means one harmless component, never `.` or `..` or containing them.
      if ((problem === undefined) !== safe) throw new Error(`disagree on ${JSON.stringify(s)}: ${problem}`);
      if (!safe) return bump(seen, "refused");
      bump(seen, "accepted");
      if (!ONE_COMPONENT.test(s) || s.length > 200 || s.includes("..")) throw new Error(`accepted ${JSON.stringify(s)}`);
      for (const i of [0, 1, 17]) {
        const f = finalName(s, i);
        if (!ONE_COMPONENT.test(f) || f === "." || f === ".." || f.includes("/")) throw new Error(`finalName(${JSON.stringify(s)}) = ${JSON.stringify(f)}`);
        const u = unusedName(dir, f);
        if (!ONE_COMPONENT.test(u)) throw new Error(`unusedName ${JSON.stringify(u)}`);
        if (i === 0) bump(seen, isServedName(f) ? "derived-served" : "derived-not-served");
      }
    });
    expect(seen.get("accepted") ?? 0).toBeGreaterThan(10_000);
    expect(seen.get("refused") ?? 0).toBeGreaterThan(10_000);
  });

  it(`names the agent's SFTP serves (isServedName): ${RUNS.toLocaleString("en")} cases`, () => {
    const seen = run("isServedName", (s, seen) => {
      if (!isServedName(s)) return bump(seen, "hidden");
      bump(seen, "served");
      if (s.includes("/") || s.includes("\0") || s.startsWith(".") || !/\.pcap(ng)?\d*$/i.test(s)) throw new Error(`served ${JSON.stringify(s)}`);
    });
    expect(seen.get("served") ?? 0).toBeGreaterThan(1000);
    for (const n of [".incoming", "server-capture-state.json", "server-capture.log", ".sftp_host_ed25519_key", "../x.pcap", "/x.pcap", ".x.pcap", "x.pcap/", "x.pcap\0"]) expect(isServedName(n), n).toBe(false);
  });
});

describe("hostile paths against the agent's read-only SFTP", () => {
  let sftpSrv: AgentSftp;
  let conn: ssh2.Client;
  let sftp: SFTPWrapper;
  let dir: string;
  const CAPTURE = "OVOC_device_192.0.2.10_2026-11-23T10.00.00.000000-0.pcap";
  const SERVED = Buffer.from("served capture bytes");
  const SECRET = "never-served-" + Math.random().toString(36).slice(2);

  beforeAll(async () => {
    const base = mkdtempSync(join(tmpdir(), "capsync-hostile-sftp-"));
    dir = join(base, "captures");
    mkdirSync(join(dir, ".incoming"), { recursive: true });
    writeFileSync(join(dir, CAPTURE), SERVED);
    for (const f of ["server-capture-state.json", "server-capture.log", ".incoming/tmp_device_x.pcap", "notes.txt"]) writeFileSync(join(dir, f), SECRET);
    writeFileSync(join(base, "outside.pcap"), SECRET);
    symlinkSync(join(base, "outside.pcap"), join(dir, "link.pcap"));
    symlinkSync("/etc/passwd", join(dir, "passwd.pcap"));
    mkdirSync(join(dir, "dir.pcap"));
    writeFileSync(join(dir, "dir.pcap", "inner.pcap"), SECRET);
    const pair = generateSshKeyPair("hostile");
    const keys = parseAuthorizedKeys(pair.public);
    if (!keys.ok) throw new Error(keys.message);
    sftpSrv = await startAgentSftp({ dir, listen: { address: "127.0.0.1", port: 0 }, authorizedKeys: keys.keys, hostKey: loadOrCreateHostKey(dir).key, log: createLogger({ console: false, level: "error" }) });
    conn = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      conn.once("ready", () => resolve()).once("error", reject);
      conn.connect({ host: "127.0.0.1", port: sftpSrv.port, username: "capsync", privateKey: pair.private });
    });
    sftp = await new Promise<SFTPWrapper>((resolve, reject) => conn.sftp((e, s) => (e ? reject(e) : resolve(s))));
  });
  afterAll(async () => {
    conn?.end();
    await sftpSrv?.close();
  });

  const call = <T>(f: (cb: (err: Error | null | undefined, v?: T) => void) => void) =>
    new Promise<{ err?: Error; v?: T }>((resolve) => f((err, v) => resolve(err ? { err } : { v: v! })));

  it("2,000 hostile paths: only the finished capture is ever stat'ed, opened or read; no other byte leaves", async () => {
    const paths = fc.sample(
      fc.oneof(
        hostileName,
        fc.constantFrom(...PIECES).map((p) => `/${p}`),
        fc.tuple(fc.constantFrom("", "/", "./", "../", "/../../", "//", "/./", ".incoming/", "dir.pcap/", "%2e%2e/"), fc.constantFrom(CAPTURE, "server-capture-state.json", "server-capture.log", ".sftp_host_ed25519_key", "link.pcap", "passwd.pcap", "dir.pcap", "inner.pcap", "outside.pcap", "etc/passwd", "tmp_device_x.pcap", "notes.txt", `${CAPTURE}\0`, `${CAPTURE}/`, `${CAPTURE}/..`, "x".repeat(70_000))).map(([a, b]) => a + b),
      ),
      { numRuns: 2000 },
    );
    const outcomes = new Map<string, number>();
    const bumpO = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    let leaked: string[] = [];
    await Promise.all(
      paths.map(async (p) => {
        const st = await call<ssh2.Stats>((cb) => sftp.stat(p, cb));
        const lst = await call<ssh2.Stats>((cb) => sftp.lstat(p, cb));
        const op = await call<Buffer>((cb) => sftp.open(p, "r", cb));
        const od = await call<Buffer>((cb) => sftp.opendir(p, cb));
        const rp = await call<string>((cb) => sftp.realpath(p, cb));
        if (rp.v !== undefined && (!rp.v.startsWith("/") || rp.v.includes(dir))) leaked.push(`realpath ${JSON.stringify(p)} → ${rp.v}`);
        if (od.v) {
          const list = await call<ssh2.FileEntry[]>((cb) => sftp.readdir(od.v!, cb));
          await call((cb) => sftp.close(od.v!, cb));
          const names = (list.v ?? []).map((e) => e.filename);
          if (names.some((n) => n !== CAPTURE)) leaked.push(`readdir ${JSON.stringify(p)} → ${names.join(",")}`);
          bumpO("opendir-root");
        }
        // The root itself ("/", ".", "..", "x.pcap/..") may be stat'ed: it is the served dir.
        if (st.v && st.v.size !== SERVED.length && !st.v.isDirectory()) leaked.push(`stat ${JSON.stringify(p)} → ${st.v.size} bytes`);
        if (st.v?.isDirectory()) bumpO("stat-root");
        if (lst.v && lst.v.size !== SERVED.length && !lst.v.isDirectory()) leaked.push(`lstat ${JSON.stringify(p)} → ${lst.v.size} bytes`);
        if (op.v) {
          const buf = Buffer.alloc(4096);
          const rd = await call<number>((cb) => sftp.read(op.v!, buf, 0, buf.length, 0, (e, n) => cb(e, n)));
          await call((cb) => sftp.close(op.v!, cb));
          const got = buf.subarray(0, rd.v ?? 0);
          if (!got.equals(SERVED)) leaked.push(`read ${JSON.stringify(p)} → ${JSON.stringify(got.toString().slice(0, 40))}`);
          bumpO("opened-capture");
        } else bumpO("open-refused");
        // Writes are refused whatever the path.
        const w = await call<Buffer>((cb) => sftp.open(p, "w", cb));
        if (w.v) leaked.push(`opened for writing: ${JSON.stringify(p)}`);
      }),
    );
    leaked = [...new Set(leaked)];
    console.log(`SFTP: ${paths.length} hostile paths × 6 requests; ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(", ")}; leaks ${leaked.length}`);
    expect(leaked).toEqual([]);
    expect(outcomes.get("opened-capture") ?? 0).toBeGreaterThan(0);
  });
});
