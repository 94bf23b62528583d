// Issue 9 item 6: a syslog storm — 50,000 unrelated messages/s for 10 s, really sent (a small C
// sender with sendmmsg; the achieved rate is measured, printed, and the test fails below 90 % of
// the target) at a running orchestrator, plus the one real "Connection Lost" alarm in the middle of
// it. The device's stop must follow the alarm within 1 s, and the capture must really have ended —
// the agent's tcpdump gone and the device no longer capturing — within STOPPED_MS; the
// orchestrator's memory growth stays bounded; whatever was dropped is counted and logged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { SyslogSender, ovocConnectionLostAlarm } from "@capsync/emulators";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { tempDir } from "../helpers/agent-proc.js";
import { startLab, type Lab } from "../helpers/lab.js";
import { processesMatching, tcpdumpsFor } from "../helpers/procs.js";

const run = promisify(execFile);

const DEV = "127.0.0.81";
/** Stopped after the storm, so the run (and its listener) outlives the storm. */
const LAST = "127.0.0.82";
const RATE = 50_000;
const SECONDS = 10;
const RSS_LIMIT_MB = 300;

// The storm runs in its own process so the sender never competes with this test's event loop
// (which serves the emulated device), and in C so that its rate does not hang on a JavaScript event
// loop on a loaded machine: see test/helpers/native/udp-storm.c (bounded in count and time).
const STORM_SRC = join(import.meta.dirname, "../helpers/native/udp-storm.c");
/** The agent's tcpdump gone and the device stopped, after the alarm, at most this long. */
const STOPPED_MS = 3000;
/** Orchestrator RSS growth from before the storm to the end of the run. */
const RSS_GROWTH_MB = 100;

interface StormResult {
  sent: number;
  skipped: number;
  errors: number;
  seconds: number;
  rate: number;
}

function startStorm(bin: string, port: number): { started: Promise<number>; result: Promise<StormResult> } {
  const child = spawn(bin, [String(port), String(RATE), String(SECONDS)], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let onStart: (t: number) => void = () => undefined;
  const started = new Promise<number>((r) => (onStart = r));
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    const m = /\{"started":(\d+)\}/.exec(out);
    if (m) onStart(Number(m[1]));
  });
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const result = new Promise<StormResult>((resolve, reject) => {
    child.once("exit", (code) => {
      const last = out.trim().split("\n").at(-1) ?? "";
      if (code !== 0 || !last.includes('"sent"')) reject(new Error(`storm sender exited ${code}: ${err}`));
      else resolve(JSON.parse(last) as StormResult);
    });
  });
  return { started, result };
}

function rssMb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function tcpdumpsOnMachine(): number {
  return processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!)).length;
}

/** The process has exited (no /proc entry) or is a zombie waiting to be reaped. */
function gone(pid: number): boolean {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^\d+ \(.*\)/, ""));
  } catch {
    return true;
  }
}

/** The kernel's drop counter of the UDP socket bound to `port` (/proc/net/udp, last column). */
function kernelDrops(port: number): number | undefined {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of readFileSync("/proc/net/udp", "utf8").split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[1]?.endsWith(hex)) return Number(cols.at(-1));
  }
  return undefined;
}

let lab: Lab;
let stormBin: string;
beforeAll(async () => {
  stormBin = join(tempDir("capsync-storm-"), "udp-storm");
  await run("cc", ["-O2", "-Wall", "-o", stormBin, STORM_SRC]);
  lab = await startLab([
    { type: "msbr", address: DEV, password: "Storm-Pw-1" },
    { type: "gwsbc", address: LAST, password: "Storm-Pw-2" },
  ]);
});
afterAll(async () => lab?.close());

describe("syslog storm", () => {
  it(`${RATE} unrelated messages/s for ${SECONDS} s: the real alarm stops the device within 1 s, memory bounded, drops counted and logged`, { timeout: 80_000 }, async () => {
    const port = await freeUdpPort();
    const cfg = lab.writeConfig("storm.yaml", port);
    const cli = runCli(["run", "--config", cfg, "--json"], lab.env);
    try {
      for (const d of [DEV, LAST]) await cli.waitFor((l) => l.device === d && l.event === "state" && l.status === "capturing");
      const pid = cli.child.pid!;
      const tcpdumps = tcpdumpsFor(DEV).map((t) => t.pid);
      expect(tcpdumps, "one tcpdump for the device on the agent").toHaveLength(1);
      const device = lab.devices[0]!;
      expect(device.state().capturing).toBe(true);
      const rssBefore = rssMb(pid)!;
      const rss: number[] = [];
      const drops: number[] = [];
      const sampler = setInterval(() => {
        const v = rssMb(pid);
        if (v !== undefined) rss.push(v);
        drops.push(kernelDrops(port) ?? NaN);
      }, 200);

      const storm = startStorm(stormBin, port);
      await storm.started;
      // The alarm in the middle of the storm, from its own socket like a forwarding OVOC would.
      await new Promise((r) => setTimeout(r, (SECONDS * 1000) / 2));
      const dropsAtAlarm = kernelDrops(port);
      const alarm = await SyslogSender.open({ host: "127.0.0.1", port });
      const sentAt = Date.now();
      await alarm.send(ovocConnectionLostAlarm({ deviceIp: DEV }));
      await alarm.close();
      // Until the capture has really ended on both sides, not just until the STOP went out: the
      // agent's tcpdump process gone (or a zombie) and the device no longer capturing.
      let tcpdumpGoneMs: number | undefined;
      let deviceStoppedMs: number | undefined;
      const stopped = (async () => {
        const deadline = sentAt + 15_000;
        while ((tcpdumpGoneMs === undefined || deviceStoppedMs === undefined) && Date.now() < deadline) {
          if (tcpdumpGoneMs === undefined && tcpdumps.every(gone)) tcpdumpGoneMs = Date.now() - sentAt;
          if (deviceStoppedMs === undefined && !device.state().capturing) deviceStoppedMs = Date.now() - sentAt;
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const stop = await cli.waitFor((l) => l.device === DEV && l.source === "trigger" && l.status === "stop", 10_000);
      const alarmToStopMs = Date.parse(stop.timestamp!) - sentAt;
      const stopping = await cli.waitFor((l) => l.device === DEV && l.event === "state" && l.status === "stopping", 10_000);
      const alarmToStoppingMs = Date.parse(stopping.timestamp!) - sentAt;
      await stopped;

      const result = await storm.result;
      const last = await SyslogSender.open({ host: "127.0.0.1", port });
      await last.send(ovocConnectionLostAlarm({ deviceIp: LAST }));
      await last.close();
      const end = await cli.waitFor((l) => l.done === true, 30_000);
      clearInterval(sampler);
      expect(await cli.exited).toBe(0);

      const maxRss = Math.max(...rss);
      const log = readFileSync(join(end.folder!, "capsync.log"), "utf8");
      const stats = /syslog listener \(end of run\): received (\d+), ignored (\d+) \(unrelated\), processed (\d+), dropped (\d+) \(queue full; (\d+) from the priority lane\), kernel drops (\d+|unknown)/.exec(log);
      console.log(
        `[syslog-storm] sent ${result.sent} in ${result.seconds.toFixed(2)} s = ${result.rate}/s (target ${RATE}/s, ${result.skipped} skipped by the sender's queue bound, ${result.errors} send errors); ` +
          `alarm → trigger event ${alarmToStopMs} ms, → stopping ${alarmToStoppingMs} ms, → tcpdump gone ${tcpdumpGoneMs ?? "never"} ms, → device stopped ${deviceStoppedMs ?? "never"} ms; ` +
          `orchestrator RSS ${rssBefore.toFixed(0)} MB before, max ${maxRss.toFixed(0)} MB until the end of the run (+${(maxRss - rssBefore).toFixed(0)} MB, ${rss.length} samples); load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}; ` +
          `listener: ${stats?.[0] ?? "(no stats line)"}; kernel drops by 200 ms sample: ${drops.join(",")} (${dropsAtAlarm} when the alarm was sent)`,
      );

      expect(alarmToStopMs).toBeLessThan(1000);
      expect(alarmToStoppingMs).toBeLessThan(1000);
      expect(tcpdumpGoneMs, "the agent's tcpdump ended").toBeDefined();
      expect(deviceStoppedMs, "the device stopped capturing").toBeDefined();
      expect(tcpdumpGoneMs!).toBeLessThan(STOPPED_MS);
      expect(deviceStoppedMs!).toBeLessThan(STOPPED_MS);
      expect(maxRss).toBeLessThan(RSS_LIMIT_MB);
      expect(maxRss - rssBefore).toBeLessThan(RSS_GROWTH_MB);
      // The storm really was one: at least 90 % of the target rate left the sender.
      // Every tcpdump on lo runs its filter on every loopback datagram: with hundreds running
      // (leaked by other harnesses) no sender reaches the rate, and the message says so.
      expect(result.rate, `achieved ${result.rate}/s of ${RATE}/s (${tcpdumpsOnMachine()} tcpdump processes on this machine)`).toBeGreaterThanOrEqual(RATE * 0.9);
      expect(stats, "capsync.log has the listener's counters at the end of the run").not.toBeNull();
      const [received, ignored, processed, dropped, , kernel] = stats!.slice(1).map((v) => (v === "unknown" ? NaN : Number(v)));
      expect(kernel).not.toBeNaN();
      // Every datagram that left the sender is accounted for: taken in, or dropped by the kernel.
      // (+2: the two alarms; nothing else is sent to this port.)
      expect(received! + kernel!).toBeGreaterThanOrEqual(result.sent * 0.99);
      expect(received! + kernel!).toBeLessThanOrEqual(result.sent + 2);
      expect(ignored! + processed! + dropped!).toBe(received);
      if (dropped! + kernel! > 0) expect(log).toMatch(/WARN  syslog listener \(end of run\)/);
      // The other alarms were not written one line each (that is what used to starve the socket).
      const logOnlyLines = log.split("\n").filter((l) => l.includes("syslog (logged only")).length;
      expect(logOnlyLines).toBeLessThanOrEqual(100 * (Math.ceil(result.seconds / 10) + 2));
      expect(log).toMatch(/syslog: \d+ more log-only syslog message\(s\) in [\d.]+ s not written one by one/);
      const manifest = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8"));
      for (const d of manifest.devices) {
        expect(d.stopReason).toBe("alarm");
        expect(d.status).toBe("collected");
      }
    } finally {
      if (cli.child.exitCode === null) cli.child.kill("SIGKILL");
    }
  });
});
