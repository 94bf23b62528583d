// The orchestrator under a stepped wall clock: the real cpe-capture and the real agent both run
// under libfaketime reading one clock file (so they agree with each other: no stale refusals),
// CLOCK_MONOTONIC left alone. The run's stop.duration of 6 s must end the run 6 s after it started,
// however the wall clock jumps (+1 h, then −1 h) in between; the manifest records each
// agent's measured clock skew. Then an agent 95 s ahead: the run's error says which clock is off.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startAudioCodesDevice, type AudioCodesDevice } from "@capsync/emulators";
import { AGENT_CLI, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { freeUdpPort, runCli, type EventLine } from "../helpers/cli-proc.js";
import { tcpdumpsFor } from "../helpers/procs.js";

const PW = "Clock-Step-Pw-42!";
const DEV = "127.0.0.95";

function faketimeEnv(clockFile: string): Record<string, string> {
  const lib = execFileSync("dpkg", ["-L", "libfaketime"], { encoding: "utf8" })
    .split("\n")
    .find((l) => /\/faketime\/libfaketime\.so\.1$/.test(l));
  if (!lib || !existsSync(lib)) throw new Error("libfaketime.so.1 not found: apt-get install faketime (tools/test-deps.mjs)");
  return { LD_PRELOAD: lib, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: "1", DONT_FAKE_MONOTONIC: "1" };
}

function runConfig(syslogPort: number, agentPort: number, duration: string): string {
  return `output: ./runs
timeouts: { rest: 3s, sftp: 10s, agent: 4s }
retries: 1
verify: false
agents: { keyFile: ./agent.key }
syslog: { listen: 127.0.0.1:${syslogPort} }
stop:
  alarms: [connection-lost]
  duration: ${duration}
devices:
  - address: ${DEV}
    type: gwsbc
    username: Admin
    password: { env: CLOCK_PW }
    tls: insecure
    restPort: ${device.restPort}
    sshPort: ${device.sshPort}
    agents: [127.0.0.1:${agentPort}]
`;
}

let work: string;
let clock: string;
let agent: AgentProc;
let device: AudioCodesDevice;

beforeAll(async () => {
  work = tempDir("capsync-clock-run-");
  clock = join(work, "clock");
  writeFileSync(clock, "+0\n");
  writeKey(work);
  const env = Object.entries(faketimeEnv(clock)).map(([k, v]) => `${k}=${v}`);
  agent = await startAgent(["--key-file", join(work, "agent.key"), "--interface", "lo"], { command: ["env", ...env, process.execPath, AGENT_CLI] });
  device = await startAudioCodesDevice({ type: "gwsbc", address: DEV, username: "Admin", password: PW, capture: { kind: "synthetic", packetsPerSecond: 50 } });
});
afterAll(async () => {
  await device?.close();
  await agent?.stop();
});

describe("cpe-capture run under a stepped wall clock (libfaketime)", () => {
  it("stop.duration 6s ends the run 6 s after it started, across a +1 h and a −1 h step", async () => {
    const port = await freeUdpPort();
    const cfg = join(work, "run.yaml");
    writeFileSync(cfg, runConfig(port, agent.port, "6s"));
    const run = runCli(["run", "--config", cfg, "--json"], { CLOCK_PW: PW, ...faketimeEnv(clock) });
    const state = (s: string) => (l: EventLine) => l.device === DEV && l.event === "state" && l.status === s;
    // The run's limit is armed just before its "run start" event: the 6 s count from there.
    await run.waitFor((l) => l.source === "run" && l.event === "start", 30_000);
    const t0 = performance.now();
    await run.waitFor(state("capturing"), 30_000);
    expect(tcpdumpsFor(DEV)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1500));
    writeFileSync(clock, "+3600\n");
    await new Promise((r) => setTimeout(r, 1500));
    // Neither side stopped on the forward step.
    expect(run.child.exitCode).toBeNull();
    expect(tcpdumpsFor(DEV)).toHaveLength(1);
    writeFileSync(clock, "-3600\n");
    const stopping = await run.waitFor(state("stopping"), 15_000);
    const elapsed = performance.now() - t0;
    console.log(`run duration 6s under +1 h / -1 h steps: stopping ${(elapsed / 1000).toFixed(2)} s after the run started (${stopping.detail ?? ""})`);
    // Early would be ~3 s (the +1 h step), late an hour; the slack is for a loaded machine.
    expect(elapsed).toBeGreaterThanOrEqual(5000);
    expect(elapsed).toBeLessThan(6000 + 2500);
    const end = await run.waitFor((l) => l.done === true, 30_000);
    expect(await run.exited).toBe(0);
    writeFileSync(clock, "+0\n");

    const m = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8"));
    const rec = m.devices[0];
    expect(rec.stopReason).toBe("run-duration");
    expect(rec.agents[0].capture).toBe("remote");
    // Both processes read the same faked clock: the skew measured from the agent's answers is ~0.
    expect(Math.abs(rec.agents[0].clock.skewMs)).toBeLessThan(1000);
    expect(rec.agents[0].clock.uncertaintyMs).toBeLessThan(1000);
    expect(tcpdumpsFor(DEV)).toHaveLength(0);
  });

  it("an agent whose clock is 95 s ahead: the run's error says so, and the manifest has the measured skew", async () => {
    const skewed = join(work, "skewed-clock");
    writeFileSync(skewed, "+95\n");
    const env = Object.entries(faketimeEnv(skewed)).map(([k, v]) => `${k}=${v}`);
    const ahead = await startAgent(["--key-file", join(work, "agent.key"), "--interface", "lo"], { command: ["env", ...env, process.execPath, AGENT_CLI] });
    try {
      const cfg = join(work, "skewed.yaml");
      writeFileSync(cfg, runConfig(await freeUdpPort(), ahead.port, "2s"));
      const run = runCli(["run", "--config", cfg, "--json"], { CLOCK_PW: PW });
      const end = await run.waitFor((l) => l.done === true, 30_000);
      expect(await run.exited).toBe(1);
      const m = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8"));
      const side = m.devices[0].agents[0];
      const words = new RegExp(`^agent 127\\.0\\.0\\.1:${ahead.port} refused CAPTURE: stale — its clock is 9[45]\\.\\d s ahead of this host's; set the clock that is wrong right \\(NTP\\)$`);
      expect(side.capture).toBe("failed");
      expect(side.error).toMatch(words);
      expect(side.clock.skewMs).toBeGreaterThan(94_000);
      expect(side.clock.skewMs).toBeLessThan(96_000);
      const log = readFileSync(join(end.folder!, "capsync.log"), "utf8");
      expect(log).toContain(`${DEV}: ${side.error}`);
      expect(log).toMatch(new RegExp(`agent 127\\.0\\.0\\.1:${ahead.port}: its clock is 9[45]\\.\\d s ahead of this host's; beyond its --window`));
      expect(tcpdumpsFor(DEV)).toHaveLength(0);
    } finally {
      await ahead.stop();
    }
  });
});
