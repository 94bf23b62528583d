// `cpe-capture demo --loopback`: the same story without root. Emulated AudioCodes devices in this
// process on 127.0.0.x with synthetic captures, no agents (they need root for tcpdump), the run
// through runConfig in this process, and the Connection Lost alarm sent by the demo itself with
// SyslogSender after --break-after (there is no real path to break on loopback).
import { startAudioCodesDevice, SyslogSender, ovocConnectionLostAlarm, type AudioCodesDevice } from "@capsync/emulators";
import { randomBytes } from "node:crypto";
import { runConfig, type Io } from "@capsync/cpe-capture/commands/run";
import { configFromObject } from "@capsync/cpe-capture/config/loader";
import type { Orchestrator } from "@capsync/cpe-capture/run/orchestrator";
import { sleep } from "./abortable.js";
import { LabError } from "./netns.js";
import type { LabRunOptions } from "./netns-lab.js";
import { RunWatcher } from "./run-watcher.js";
import { runSeen, summariseLab, type DemoSummary } from "./summary.js";

export type LoopbackRunOptions = Omit<LabRunOptions, "lostAfterMs" | "keep">;

/** 127.0.0.11, .12, ...: clear of the .1–.3 that tests and the e2e suite use. */
export function loopbackAddress(i: number): string {
  return `127.0.0.${11 + i}`;
}

export async function runLoopbackLab(o: LoopbackRunOptions, io: Io): Promise<DemoSummary> {
  const r = o.reporter;
  const types = Array.from({ length: o.devices }, (_, i): "msbr" | "gwsbc" => (i % 2 === 0 ? "msbr" : "gwsbc"));
  const envNames = types.map((_, i) => `CSLAB_LOOPBACK_D${i + 1}_PASSWORD`);
  const saved = envNames.map((n) => process.env[n]);
  const devices: AudioCodesDevice[] = [];
  const seen = runSeen();
  let injectedAt: number | undefined;
  const broken = loopbackAddress(0);
  try {
    for (const [i, type] of types.entries()) {
      const password = randomBytes(12).toString("base64url");
      process.env[envNames[i]!] = password;
      devices.push(await startAudioCodesDevice({ type, address: loopbackAddress(i), username: "Admin", password, capture: { kind: "synthetic", packetsPerSecond: 50 } }));
    }
    r.step("devices", `${devices.length} emulated AudioCodes device(s) on ${devices.map((d) => `${d.address} (${d.type})`).join(", ")}, synthetic captures, no agents`);

    const { config } = configFromObject(
      {
        output: o.output,
        retries: 1,
        timeouts: { rest: "5s", sftp: "20s" },
        syslog: { listen: "127.0.0.1:0" },
        stop: { alarms: ["connection-lost"], maxEventsPerDevice: 1, duration: `${o.durationMs}ms` },
        devices: devices.map((d, i) => ({
          name: `demo-${d.type}-${i + 1}`,
          address: d.address,
          type: d.type,
          interfaces: d.type === "msbr" ? ["eth-wan"] : ["eth-lan"],
          username: "Admin",
          password: { env: envNames[i] },
          tls: "insecure",
          restPort: d.restPort,
          sshPort: d.sshPort,
        })),
      },
      { baseDir: process.cwd() },
    );

    const watcher = new RunWatcher((e) => {
      if (r.json) {
        if (e.done || (e.source === "run" && e.event === "state") || e.source === "trigger") r.step("run-event", "", { event: e });
      } else if (e.source === "run" && e.event === "state" && ["capturing", "done", "failed"].includes(e.status ?? "")) {
        r.step("run-event", `cpe-capture: ${e.device} ${e.status}${e.detail ? ` (${e.detail})` : ""}`);
      }
    });
    let orch: Orchestrator | undefined;
    const run = runConfig(config, { stdout: watcher.writable(), stderr: io.stderr }, { json: true, onStarted: (x) => (orch = x) });
    void run.then(
      (s) => watcher.fail(new LabError(`the run ended (${s.manifest.status})`)),
      (e: Error) => watcher.fail(e),
    );
    r.step("run", `cpe-capture run (in this process, the same runConfig as \`cpe-capture run\`)`);
    try {
      await watcher.waitForStarted(devices.map((d) => d.address), 30_000, o.signal);
      r.step("capturing", `every device capturing; the alarm for ${broken} comes in ${o.breakAfterMs / 1000} s`);
      await sleep(o.breakAfterMs, o.signal);
      const udp = orch?.listening.udp;
      if (!udp) throw new LabError("the run has no UDP syslog listener");
      const sender = await SyslogSender.open({ host: udp.address, port: udp.port });
      try {
        injectedAt = Date.now();
        await sender.send(ovocConnectionLostAlarm({ deviceIp: broken, deviceName: "demo-msbr-1", deviceType: "MSBR" }));
      } finally {
        await sender.close();
      }
      seen.alarmSentAt.set(broken, injectedAt);
      r.step("alarm", `injected an OVOC "Connection Lost" syslog alarm for ${broken} → ${udp.address}:${udp.port} (loopback mode has no management server)`, { device: broken });
    } catch (e) {
      seen.problems.push(o.signal.aborted ? "interrupted (Ctrl-C / SIGTERM): stopped early" : (e as Error).message);
      orch?.stopAll("manual", "demo stopped early");
    }
    // Bounded: the run's own duration limit ends it; this is only the backstop.
    let timer: NodeJS.Timeout | undefined;
    const backstop = new Promise<void>((res) => {
      timer = setTimeout(() => {
        orch?.stopAll("manual", "demo backstop");
        res();
      }, o.durationMs + 60_000);
    });
    const result = await Promise.race([run, backstop.then(() => run)]);
    clearTimeout(timer);
    seen.manifest = result.manifest;
    seen.runFolder = result.folder;
    seen.runExitCode = result.exitCode;
  } catch (e) {
    if (!seen.problems.includes((e as Error).message)) seen.problems.push((e as Error).message);
  } finally {
    await Promise.all(devices.map((d) => d.close()));
    envNames.forEach((n, i) => (saved[i] === undefined ? delete process.env[n] : (process.env[n] = saved[i])));
  }
  return summariseLab("loopback", o, seen, devices.map((d) => ({ address: d.address, type: d.type })));
}
