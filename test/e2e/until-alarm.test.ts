// A run without stop.duration waits for its alarm however long that takes (trafficCapture's
// behaviour), with the agent's ring bounding the disk meanwhile. Real parts: an emulated
// AudioCodes device, a server-capture agent (in this process, for its clock) with real tcpdump on
// loopback and its SFTP, the orchestrator (runConfig, as `cpe-capture run` drives it), a real
// syslog alarm. Days pass on two injected clocks — the orchestrator's duration limits and the
// agent's watchdog — not on the wall: 25 h after the start (past a 24 h limit, which would have
// stopped everything) the run is still capturing; then the alarm stops it and every ring file is
// collected, in time order, into the run folder and merged.pcapng.
import { chmodSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, loadKeyFile, type Logger } from "@capsync/common";
import { generateSshKeyPair, ovocConnectionLostAlarm, startAudioCodesDevice, SyslogSender, type AudioCodesDevice } from "@capsync/emulators";
import { readCapture } from "@capsync/pcap";
import { Agent, DEFAULT_MAX_DURATION_MS, loadOrCreateHostKey, parseAuthorizedKeys, startAgentSftp, type AgentSftp } from "@capsync/server-capture";
import { runConfig } from "@capsync/cpe-capture/commands/run";
import { loadConfig } from "@capsync/cpe-capture/config/loader";
import { DurationTriggers, type SchedulerClock } from "@capsync/cpe-capture/triggers/timers";
import { TestPeer, tempDir, udpSink, writeKey } from "../helpers/agent-proc.js";
import { freeUdpPort } from "../helpers/cli-proc.js";
import { numberedTraffic, seqOf } from "../helpers/numbered.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { tcpdumpsFor } from "../helpers/procs.js";

const DEV = "127.0.0.219";
const DEV_WATCHDOG = "127.0.0.220";
const PW = "Until-Alarm-Secret-42!";
const HOUR = 3_600_000;

/** A monotonic clock that can jump: timers due by then fire at once, as they would after the wait. */
class JumpClock implements SchedulerClock {
  private offset = 0;
  private readonly timers = new Map<number, { fn: () => void; at: number; real: NodeJS.Timeout }>();
  private seq = 0;
  now(): number {
    return performance.now() + this.offset;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = this.seq++;
    const real = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.set(id, { fn, at: this.now() + ms, real });
    return id;
  }
  clearTimer(h: unknown): void {
    const t = this.timers.get(h as number);
    if (t) clearTimeout(t.real);
    this.timers.delete(h as number);
  }
  jump(ms: number): void {
    this.offset += ms;
    for (const [id, t] of [...this.timers]) {
      if (t.at > this.now()) continue;
      clearTimeout(t.real);
      this.timers.delete(id);
      t.fn();
    }
  }
}

async function waitFor(pred: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let work: string;
let device: AudioCodesDevice;
let agent: Agent;
let sftp: AgentSftp;
let agentLog: Logger;
let agentShift = 0;

beforeAll(async () => {
  work = tempDir("capsync-until-alarm-");
  writeKey(work);
  const pair = generateSshKeyPair("capsync-until-alarm");
  writeFileSync(join(work, "id_ed25519"), pair.private);
  chmodSync(join(work, "id_ed25519"), 0o600);
  const dir = join(work, "agent");
  agentLog = createLogger({ file: join(work, "agent.log"), console: false });
  agent = await Agent.start({
    listen: { address: "127.0.0.1", port: 0 },
    dir,
    keys: [loadKeyFile(join(work, "agent.key"))],
    legacy: false,
    allow: [],
    iface: "lo",
    maxSessions: 8,
    // The CLI's defaults, but a 3 x 1 MB ring so the test turns it.
    maxDurationMs: DEFAULT_MAX_DURATION_MS,
    ringSizeMb: 1,
    ringFiles: 3,
    minFreeMb: 0,
    windowMs: 30_000,
    tickMs: 50,
    now: () => Date.now() + agentShift,
    log: agentLog,
  });
  const authorized = parseAuthorizedKeys(pair.public + "\n");
  if (!authorized.ok) throw new Error(authorized.message);
  sftp = await startAgentSftp({ dir, listen: { address: "127.0.0.1", port: 0 }, authorizedKeys: authorized.keys, hostKey: loadOrCreateHostKey(dir).key, log: agentLog });
  device = await startAudioCodesDevice({ type: "gwsbc", address: DEV, username: "Admin", password: PW, capture: { kind: "synthetic", packetsPerSecond: 50 } });
});

afterAll(async () => {
  await device?.close();
  await sftp?.close();
  await agent?.close();
});

describe("no stop.duration: the run waits for the alarm", () => {
  it("still capturing 25 h in (past a 24 h limit) with the ring bounded; the alarm stops it and every ring file is collected in order", async () => {
    const syslogPort = await freeUdpPort();
    const cfg = join(work, "run.yaml");
    writeFileSync(
      cfg,
      `output: ./runs
timeouts: { rest: 3s, sftp: 10s, agent: 4s }
retries: 1
verify: false
agents: { keyFile: ./agent.key, sshKeyFile: ./id_ed25519, sftpPort: ${sftp.port} }
syslog: { listen: 127.0.0.1:${syslogPort} }
stop:
  alarms: [connection-lost]
devices:
  - address: ${DEV}
    type: gwsbc
    username: Admin
    password: { env: UNTIL_ALARM_PW }
    tls: insecure
    restPort: ${device.restPort}
    sshPort: ${device.sshPort}
    agents: [127.0.0.1:${agent.address().port}]
`,
    );
    const { config } = await loadConfig(cfg);
    expect(config.stop.durationMs).toBeUndefined();
    expect(config.devices[0]!.durationMs).toBeUndefined();

    const clock = new JumpClock();
    // The clock is not a no-op: a 24 h run limit on it fires on the same jump.
    const dayLimit: string[] = [];
    const probe = new DurationTriggers((e) => dayLimit.push(`${e.scope} ${e.limitMs}`), clock);
    probe.setRunLimit(24 * HOUR);

    const stdout = new PassThrough();
    let out = "";
    stdout.on("data", (d: Buffer) => (out += d.toString()));
    const events = () => out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { device?: string; source?: string; event?: string; status?: string; done?: boolean });
    const states = () => events().filter((e) => e.device === DEV && e.source === "run" && e.event === "state").map((e) => e.status);
    const sink = await udpSink(DEV);
    const running = runConfig(config, { stdout, stderr: new PassThrough() }, { json: true, env: { UNTIL_ALARM_PW: PW }, durationClock: clock });
    try {
      await waitFor(() => states().includes("capturing"), "the device to capture");
      expect(tcpdumpsFor(DEV)).toHaveLength(1);
      // ~4.2 MB for a 3 x 1 MB ring: it turns.
      await numberedTraffic(DEV, sink.port, 0, 4000);

      // 25 hours later, on both clocks.
      clock.jump(25 * HOUR);
      agentShift += 25 * HOUR;
      await new Promise((r) => setTimeout(r, 400));
      expect(dayLimit).toEqual([`run ${24 * HOUR}`]);
      expect(states().at(-1)).toBe("capturing");
      expect(device.state().capturing).toBe(true);
      expect(tcpdumpsFor(DEV)).toHaveLength(1);
      expect(agent.devices().find((d) => d.device === DEV)?.session?.state).toBe("capturing");
      const incoming = readdirSync(join(work, "agent", ".incoming")).filter((f) => f.startsWith("tmp_device_"));
      expect(incoming.length).toBe(3);

      // Day two: the last datagrams, then the alarm.
      await numberedTraffic(DEV, sink.port, 4000, 300);
      const udp = await SyslogSender.open({ host: "127.0.0.1", port: syslogPort });
      await udp.send(ovocConnectionLostAlarm({ deviceIp: DEV, format: "rfc3164" }));
      await udp.close();
      const summary = await running;
      expect(summary.exitCode).toBe(0);

      const manifest = JSON.parse(readFileSync(join(summary.folder, "manifest.json"), "utf8"));
      const rec = manifest.devices.find((d: { device: string }) => d.device === DEV);
      expect(rec.status).toBe("collected");
      expect(rec.stopReason).toBe("alarm");
      const stem = (rec.captureName as string).replace(/^CPE_/, "OVOC_").replace(/\.pcap$/, "");
      const names = rec.agents[0].files.map((f: { name: string }) => f.name);
      expect(names).toEqual([0, 1, 2].map((i) => `${stem}-${i}.pcap`));
      expect(rec.agents[0].answers.find((a: { verb: string }) => a.verb === "STOP").details.stopped).toBeUndefined();

      // Each collected ring file in time order; the newest datagrams before the STOP all there.
      const perFile = names.map((n: string) => readPcap(join(summary.folder, n)).packets.flatMap((p) => seqOf(p.payload) ?? []));
      const all: number[] = perFile.flat();
      for (let i = 1; i < all.length; i++) expect(all[i]!).toBeGreaterThan(all[i - 1]!);
      expect(all.at(-1)).toBe(4299);
      expect(all.slice(-300)).toEqual(Array.from({ length: 300 }, (_, i) => 4000 + i));
      expect(all[0]!).toBeGreaterThan(0);

      // merged.pcapng holds every ring file's packets, in the same order.
      const merged = await readCapture(join(summary.folder, "merged.pcapng"), { decode: true });
      const mergedSeqs = merged.packets.flatMap((p) => {
        const d = p.decoded;
        return d?.payloadOffset !== undefined ? (seqOf(p.data.subarray(d.payloadOffset, d.payloadEnd)) ?? []) : [];
      });
      expect(mergedSeqs).toEqual(all);
      console.log(`until-alarm: ring ${names.length} files, seq ${all[0]}..${all.at(-1)} (${all.length} datagrams) collected and merged after a 25 h jump`);
    } finally {
      probe.close();
      sink.close();
    }
  }, 90_000);

  it("a capture nobody stops: the agent's default --max-duration (7d) ends it, files kept; 25 h does not", async () => {
    const peer = await TestPeer.open();
    try {
      const port = agent.address().port;
      expect((await peer.request(port, { verb: "CAPTURE", device: DEV_WATCHDOG })).final.code).toBe(200);
      const session = () => agent.devices().find((d) => d.device === DEV_WATCHDOG)?.session;
      agentShift += 25 * HOUR;
      await new Promise((r) => setTimeout(r, 300));
      expect(session()?.state).toBe("capturing");
      agentShift += DEFAULT_MAX_DURATION_MS - 25 * HOUR + 60_000;
      await waitFor(() => session()?.state === "stopped", "the watchdog to stop the capture");
      expect(session()?.stopReason).toBe("max-duration");
      expect(tcpdumpsFor(DEV_WATCHDOG)).toHaveLength(0);
      expect(readFileSync(join(work, "agent.log"), "utf8")).toContain(`capture for ${DEV_WATCHDOG} reached --max-duration 7d without a STOP; stopping it (files kept)`);
      // The files wait for a late STOP (or an operator) under the device's name.
      const stop = await peer.request(port, { verb: "STOP", device: DEV_WATCHDOG, filename: `CPE_device_${DEV_WATCHDOG}_2026-11-23T10.00.00.000000.pcap` });
      expect(stop.final.code).toBe(200);
      expect(stop.final.details.stopped).toBe("max-duration");
      expect(stop.final.details.files).toBe(`OVOC_device_${DEV_WATCHDOG}_2026-11-23T10.00.00.000000-0.pcap`);
    } finally {
      peer.close();
    }
  }, 30_000);
});
