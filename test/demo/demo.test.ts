// `cpe-capture demo` end to end: the real binary builds the namespace lab (root), the emulated
// management server's real alarm stops device 1, and nothing of the lab is left afterwards.
// Plus the unprivileged paths: --loopback as user nobody, and the "needs root" refusal.
import { afterAll, describe, expect, it } from "vitest";
import { spawn, execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CPE_CLI } from "../helpers/cli-proc.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { processesMatching } from "../helpers/procs.js";

const isRoot = process.getuid?.() === 0;
const DEVICE1 = "192.0.2.2";
const DEVICE2 = "192.0.2.6";
const MGMT = "198.51.100.10";

interface Done {
  done: true;
  exitCode: number;
  summary: {
    ok: boolean;
    mode: string;
    problems: string[];
    runFolder: string;
    wallMs: number;
    alarmToCollectedMs?: number;
    devices: {
      address: string;
      role: string;
      stopReason?: string;
      alarm?: { from: string; injected: boolean };
      deviceFile?: { name: string; packets: number | null };
      serverFiles: { name: string; packets: number | null }[];
      afterBreak?: { deviceSent: number | null; serverCaptured: number | null };
    }[];
  };
}

function runDemo(args: string[], opts: { asNobody?: boolean; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const argv = [CPE_CLI, "demo", ...args];
  const [cmd, cmdArgs] = opts.asNobody
    ? ["setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, ...argv]]
    : [process.execPath, argv];
  const child = spawn(cmd, cmdArgs, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env } });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise<{ code: number | null; out: string; err: string; lines: Record<string, unknown>[] }>((resolve) => {
    const t = setTimeout(() => child.kill("SIGINT"), opts.timeoutMs ?? 80_000);
    child.once("close", (code) => {
      clearTimeout(t);
      const lines = out.split("\n").flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
      resolve({ code, out, err, lines });
    });
  });
}

const made: string[] = [];
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempOut(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

function worldWritableDir(prefix: string): string {
  const d = tempOut(prefix);
  chmodSync(d, 0o1777);
  return d;
}

/** Every IPv4 packet of the file has `addr` as source or destination; returns how many IPv4 packets there were. */
function ipPacketsAllInvolve(file: string, addr: string): number {
  const { packets } = readPcap(file);
  const ip = packets.filter((p) => p.src !== undefined);
  const strangers = ip.filter((p) => p.src !== addr && p.dst !== addr).map((p) => `${p.src} > ${p.dst}`);
  expect(strangers, file).toEqual([]);
  return ip.length;
}

describe("cpe-capture demo (network namespaces, root)", () => {
  it("breaks device 1's path, the management server's real alarm stops it, both sides are collected, nothing is left", async () => {
    const out = tempOut("capsync-demo-test-");
    const res = await runDemo(["--devices", "2", "--duration", "25s", "--break-after", "6s", "--json", "--output", out]);
    const done = res.lines.at(-1) as unknown as Done | undefined;
    expect(done?.done, `stdout:\n${res.out}\nstderr:\n${res.err}`).toBe(true);
    expect(done!.summary.problems).toEqual([]);
    expect(res.code).toBe(0);
    expect(done!.exitCode).toBe(0);
    const s = done!.summary;
    expect(s.mode).toBe("netns");
    expect(s.runFolder.startsWith(out)).toBe(true);

    // The alarm came from the emulated management server (its own log line, its address), not from the demo.
    const mgmtAlarms = res.lines.filter((l) => l.demo === "mgmt-alarm" && l.kind === "lost");
    expect(mgmtAlarms.map((l) => l.device)).toEqual([DEVICE1]);
    expect(res.lines.some((l) => l.demo === "alarm")).toBe(false); // the loopback-only injection step
    const manifest = JSON.parse(readFileSync(join(s.runFolder, "manifest.json"), "utf8"));
    const d1 = manifest.devices.find((d: { device: string }) => d.device === DEVICE1);
    expect(d1.stopReason).toBe("alarm");
    expect(d1.status).toBe("collected");
    expect(d1.stopEvent.from).toMatch(new RegExp(`^${MGMT.replace(/\./g, "\\.")}:\\d+$`));
    expect(d1.stopEvent.matcher).toBe("connection-lost");
    expect(d1.stopEvent.message).toContain(`IP Address: ${DEVICE1}`);
    expect(d1.stopEvent.message).toContain("Description: Connection Lost");

    // Device 1's run folder: a device pcap and a server pcap, every IP packet to or from device 1.
    const devicePcap = join(s.runFolder, d1.deviceFile.name);
    const serverPcaps = d1.agents.flatMap((a: { files: { name: string }[] }) => a.files.map((f) => join(s.runFolder, f.name)));
    expect(d1.deviceFile.name).toMatch(/^CPE_device_192\.0\.2\.2_.*\.pcap$/);
    expect(serverPcaps.length).toBeGreaterThan(0);
    expect(ipPacketsAllInvolve(devicePcap, DEVICE1)).toBeGreaterThan(0);
    for (const f of serverPcaps) {
      expect(f).toMatch(/OVOC_device_192\.0\.2\.2_.*\.pcap$/);
      expect(ipPacketsAllInvolve(f, DEVICE1)).toBeGreaterThan(0);
    }
    // What the product exists to show: after the break, the device's packets to the server are in
    // the device's capture and not in the server's.
    const b = s.devices.find((d) => d.address === DEVICE1)!;
    expect(b.afterBreak!.deviceSent).toBeGreaterThan(0);
    expect(b.afterBreak!.serverCaptured).toBe(0);

    // The healthy device captured until the end of the run.
    const d2 = manifest.devices.find((d: { device: string }) => d.device === DEVICE2);
    expect(d2.stopReason).toBe("run-duration");
    expect(d2.status).toBe("collected");
    expect(s.alarmToCollectedMs).toBeGreaterThan(0);

    // Nothing of the lab is left: namespaces, links, processes (tcpdump included), its temp dir.
    // (Namespace names are machine-wide: two demo labs cannot run at once; CI runs test files one by one.)
    const config = String(res.lines.find((l) => l.demo === "run")?.config ?? "");
    const labDir = config.replace(/\/lab\.yaml$/, "");
    expect(labDir).toMatch(/\/capsync-demolab-[^/]+$/);
    expect(existsSync(labDir)).toBe(false);
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toMatch(/cslab-/);
    const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
    expect(links).not.toMatch(/\d+: (cslab-|to-d\d|to-mgmt|to-orch)/);
    expect(processesMatching((a) => a.some((x) => x.includes(labDir)))).toEqual([]);
    expect(processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && a.some((x) => x.includes(labDir)))).toEqual([]);
  }, 120_000);

  it("removes a crashed lab's leftovers (namespace with a process inside, a process on the lab dir, the dir)", async () => {
    execFileSync("ip", ["netns", "add", "cslab-d9"]);
    const inNs = spawn("ip", ["netns", "exec", "cslab-d9", "sleep", "300"], { stdio: "ignore", detached: true });
    const labDir = mkdtempSync(join(tmpdir(), "capsync-demolab-"));
    writeFileSync(join(labDir, "demo.pid"), "0\n"); // the crashed demo's pid file (0: long gone)
    const notOurs = mkdtempSync(join(tmpdir(), "capsync-demolab-")); // same prefix, no pid file: left alone
    const onDir = spawn(process.execPath, ["-e", "setTimeout(() => {}, 300000)", join(labDir, "agent")], { stdio: "ignore", detached: true });
    const gone = (c: typeof inNs) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once("exit", () => r())));
    try {
      await new Promise((r) => setTimeout(r, 200));
      const res = await runDemo(["--clean"]);
      expect(res.code, res.err).toBe(0);
      expect(res.out + res.err).toMatch(/removed \d+ namespace\(s\) (\S+ )*cslab-d9\b.*, [2-9]\d* process\(es\), [1-9]\d* lab dir\(s\)/);
      await Promise.all([gone(inNs), gone(onDir)]);
      expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toMatch(/cslab-d9/);
      expect(existsSync(labDir)).toBe(false);
      expect(existsSync(notOurs)).toBe(true);
    } finally {
      rmSync(notOurs, { recursive: true, force: true });
      inNs.kill("SIGKILL");
      onDir.kill("SIGKILL");
      try {
        execFileSync("ip", ["netns", "del", "cslab-d9"], { stdio: "ignore" });
      } catch {
        /* removed by the test */
      }
    }
  });
});

describe("cpe-capture demo without root", () => {
  const asNobody = isRoot;
  it("--loopback works unprivileged: injected alarm stops device 1, device 2 runs to the end, exit 0", async () => {
    const home = worldWritableDir("capsync-demo-nobody-");
    const res = await runDemo(["--loopback", "--devices", "2", "--duration", "8s", "--break-after", "2s", "--json", "--output", join(home, "runs")], {
      asNobody,
      env: { HOME: home, TMPDIR: home },
    });
    const done = res.lines.at(-1) as unknown as Done | undefined;
    expect(done?.done, `stdout:\n${res.out}\nstderr:\n${res.err}`).toBe(true);
    expect(done!.summary.problems).toEqual([]);
    expect(res.code).toBe(0);
    const s = done!.summary;
    expect(s.mode).toBe("loopback");
    const [d1, d2] = s.devices;
    expect(d1!.role).toBe("broken");
    expect(d1!.stopReason).toBe("alarm");
    expect(d1!.alarm!.injected).toBe(true);
    expect(d1!.deviceFile!.packets).toBeGreaterThan(0);
    expect(d2!.stopReason).toBe("run-duration");
    expect(d2!.deviceFile!.packets).toBeGreaterThan(0);
    expect(existsSync(join(s.runFolder, "manifest.json"))).toBe(true);
    expect(s.runFolder.startsWith(join(home, "runs"))).toBe(true);
  }, 60_000);

  it("the namespace lab refuses to start without root, says what it needs and offers --loopback (exit 2)", async () => {
    if (!isRoot) {
      const res = await runDemo(["--duration", "20s"]);
      expect(res.code).toBe(2);
      expect(res.err).toContain("needs root and `ip netns`");
      expect(res.err).toContain("cpe-capture demo --loopback");
      return;
    }
    const home = worldWritableDir("capsync-demo-nobody-");
    const res = await runDemo(["--duration", "20s"], { asNobody: true, env: { HOME: home, TMPDIR: home } });
    expect(res.code).toBe(2);
    expect(res.err).toContain(
      "the demo lab needs root and `ip netns` (iproute2) to create network namespaces; run it as root, or try `cpe-capture demo --loopback` (no root, emulated captures)",
    );
    expect(res.out).toBe("");
  });
});
