// Issue 9 item 1: UDP loss and delay between the orchestrator and its agent — 30 % loss, 0-200 ms
// jitter, duplication and reordering on every datagram in both directions — through a full run
// of 50 devices. This kernel has no sch_netem (`tc qdisc ... netem` → "Specified qdisc kind is
// unknown") and no tc actions, so test/helpers/impair.ts, a seeded userspace UDP relay between the
// orchestrator and the agent, stands in for netem; the config's agents point at the relay.
// Per device: one tcpdump while capturing, every CAPTURE/STOP final, device and agent files
// collected exactly once, and the agent ran each CAPTURE once (resends answered from its cache).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SyslogSender, generateSshKeyPair, ovocConnectionLostAlarm, startAudioCodesFleet, type AudioCodesFleet } from "@capsync/emulators";
import { startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { startImpairment, type Impairment } from "../helpers/impair.js";
import { tcpdumpsUnder } from "../helpers/procs.js";

const N = 50;
const PW = "Lossy-Fleet-Pw-1";
const SEED = 20261123;

let work: string;
let agent: AgentProc;
let relay: Impairment;
/** This run's tcpdumps only (they write under agent.dir): the same test may be running elsewhere on the machine. */
const tcpdumpsFor = (device: string) => tcpdumpsUnder(device, agent.dir);
let fleet: AudioCodesFleet;
/** Request id → verb, and how many copies of it the relay handed to the agent. */
const toAgent = new Map<string, { verb: string; device: string; copies: number }>();

beforeAll(async () => {
  work = tempDir("capsync-lossy-");
  writeKey(work);
  const pair = generateSshKeyPair("capsync-lossy");
  writeFileSync(join(work, "id_ed25519"), pair.private);
  chmodSync(join(work, "id_ed25519"), 0o600);
  writeFileSync(join(work, "authorized_keys"), pair.public + "\n");
  agent = await startAgent([
    "--key-file", join(work, "agent.key"), "--interface", "lo", "--max-sessions", "100", "--min-free-disk", "0",
    "--sftp-listen", "127.0.0.1:0", "--authorized-keys", join(work, "authorized_keys"),
  ]);
  relay = await startImpairment({
    target: { address: "127.0.0.1", port: agent.port },
    seed: SEED,
    loss: 0.3,
    jitterMs: 200,
    duplicate: 0.2,
    reorder: 0.2,
    onDeliver: (dir, buf) => {
      if (dir !== "toTarget") return;
      // CSYNC/1 REQ <id> <ts> <VERB> <device> ...
      const f = buf.toString("latin1").split(" ");
      const e = toAgent.get(f[2]!) ?? { verb: f[4]!, device: f[5] ?? "-", copies: 0 };
      e.copies++;
      toAgent.set(f[2]!, e);
    },
  });
  // Own range, away from the other tests' devices.
  fleet = await startAudioCodesFleet(N, { firstAddress: "127.0.91.1", username: "Admin", password: PW, capture: { kind: "synthetic", packetsPerSecond: 20 } });
});

afterAll(async () => {
  await relay?.close();
  await fleet?.close();
  await agent?.stop();
  for (const d of [work, agent?.dir]) if (d) rmSync(d, { recursive: true, force: true });
});

interface Answer {
  verb: string;
  code: number;
  details: Record<string, string>;
  tries: number;
}

describe(`${N} devices, orchestrator <-> agent over 30 % loss + 0-200 ms jitter + duplication + reordering`, () => {
  it("every CAPTURE/STOP ends final, one tcpdump per device, every file collected once, no work done twice", { timeout: 85_000 }, async () => {
    const syslogPort = await freeUdpPort();
    const devices = fleet.devices;
    const cfg = join(work, "lossy.yaml");
    writeFileSync(
      cfg,
      `output: ./runs
timeouts: { rest: 5s, sftp: 20s, agent: 30s }
retries: 1
verify: false
agents: { keyFile: ./agent.key, sshKeyFile: ./id_ed25519, sftpPort: ${agent.sftpPort} }
syslog: { listen: 127.0.0.1:${syslogPort} }
devices:
${devices
  .map(
    (d) => `  - address: ${d.address}
    type: ${d.type}
    interfaces: [${d.type === "msbr" ? "eth-wan" : "eth-lan"}]
    username: Admin
    password: { env: FLEET_PW }
    tls: insecure
    restPort: ${d.restPort}
    sshPort: ${d.sshPort}
    agents: [${relay.address}:${relay.port}]`,
  )
  .join("\n")}
`,
    );
    const t0 = Date.now();
    const run = runCli(["run", "--config", cfg, "--json"], { FLEET_PW: PW });
    try {
      for (const d of devices) await run.waitFor((l) => l.device === d.address && l.event === "state" && (l.status === "capturing" || l.status === "failed"), 60_000);
      const startedMs = Date.now() - t0;
      // Exactly one tcpdump per device while capturing, retries and duplicates notwithstanding.
      const counts = devices.map((d) => tcpdumpsFor(d.address).length);
      expect(counts).toEqual(devices.map(() => 1));

      const udp = await SyslogSender.open({ host: "127.0.0.1", port: syslogPort });
      for (const d of devices) await udp.send(ovocConnectionLostAlarm({ deviceIp: d.address }));
      await udp.close();
      const end = await run.waitFor((l) => l.done === true, 70_000 - (Date.now() - t0));
      const code = await run.exited;
      const totalMs = Date.now() - t0;
      const folder = end.folder!;
      const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
      const failed = manifest.devices.filter((d: { status: string }) => d.status !== "collected").map((d: { device: string; description: string; agents: unknown[] }) => `${d.device}: ${d.description} ${JSON.stringify(d.agents)}`);
      expect(failed).toEqual([]);
      expect(code).toBe(0);

      const files = readdirSync(folder);
      const agentLog = readFileSync(join(agent.dir, "server-capture.log"), "utf8").split("\n");
      let maxTries = 0;
      let totalTries = 0;
      for (const d of manifest.devices as { device: string; captureName: string; deviceFile: { sha256: string }; agents: { capture: string; answers: Answer[]; files: { name: string }[] }[] }[]) {
        const side = d.agents[0]!;
        expect(side.capture).toBe("collected");
        // One final answer per verb, and the ones that matter are successes.
        expect(side.answers.map((a) => `${a.verb} ${a.code}`)).toEqual(["REGISTER 200", "CAPTURE 200", "STOP 200"]);
        expect(side.answers[1]!.details.existing).toBeUndefined();
        for (const a of side.answers) {
          maxTries = Math.max(maxTries, a.tries);
          totalTries += a.tries;
        }
        // The device's file and the agent's, each exactly once in the folder and identical to the source.
        expect(files.filter((f) => f.startsWith(`CPE_device_${d.device}_`))).toEqual([d.captureName]);
        const ovoc = d.captureName.replace(/^CPE_/, "OVOC_").replace(/\.pcap$/, "-0.pcap");
        expect(files.filter((f) => f.startsWith(`OVOC_device_${d.device}_`))).toEqual([ovoc]);
        expect(side.files.map((f) => f.name)).toEqual([ovoc]);
        expect(readFileSync(join(folder, ovoc)).equals(readFileSync(join(agent.dir, ovoc)))).toBe(true);
        const dev = devices.find((x) => x.address === d.device)!;
        expect(readFileSync(join(folder, d.captureName)).equals((await dev.capturedFile())!)).toBe(true);
        // The agent did the work once: one CAPTURE and one STOP executed (logged) per device.
        const lines = (verb: string) => agentLog.filter((l) => l.includes(` verb=${verb} device=${d.device} `));
        expect(lines("CAPTURE")).toHaveLength(1);
        expect(lines("CAPTURE")[0]).toContain("code=200");
        expect(lines("STOP")).toHaveLength(1);
        expect(tcpdumpsFor(d.device)).toHaveLength(0);
      }
      expect(files.filter((f) => f.endsWith(".part") || f.endsWith(".tmp"))).toEqual([]);

      // The link really was that bad, and the agent saw repeated ids (resends, duplicates) it
      // answered from its cache: more CAPTURE/STOP copies reached it than it executed.
      const captures = [...toAgent.values()].filter((e) => e.verb === "CAPTURE");
      const stops = [...toAgent.values()].filter((e) => e.verb === "STOP");
      expect(captures).toHaveLength(N);
      expect(stops).toHaveLength(N);
      const repeated = [...captures, ...stops].filter((e) => e.copies > 1).length;
      expect(repeated).toBeGreaterThan(0);
      const { toTarget: up, toClient: down } = relay.stats;
      expect(up.lost / up.received).toBeGreaterThan(0.2);
      expect(down.lost / down.received).toBeGreaterThan(0.2);
      console.log(
        `[lossy-agents] ${N} devices capturing after ${(startedMs / 1000).toFixed(1)} s, run done after ${(totalMs / 1000).toFixed(1)} s; ` +
          `relay →agent ${up.received} in, ${up.lost} lost, ${up.duplicated} duplicated, ${up.reordered} held back, ${up.delivered} delivered; ` +
          `←agent ${down.received} in, ${down.lost} lost, ${down.duplicated} duplicated, ${down.reordered} held back, ${down.delivered} delivered; ` +
          `requests: ${totalTries} datagrams for ${3 * N} (max ${maxTries} tries); ${repeated} of ${2 * N} CAPTURE/STOP ids reached the agent more than once, each executed once`,
      );
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
    }
  });

  it("a CAPTURE whose answers never arrive is still stopped at the device's stop, and its file collected", { timeout: 60_000 }, async () => {
    // The agent runs the CAPTURE but every answer is lost until the orchestrator has given up on it:
    // the capture is running there all the same, so the stop must reach it (or its tcpdump would run
    // to the agent's max duration) and its file is the device's server side.
    const syslogPort = await freeUdpPort();
    const dev = fleet.devices[0]!;
    let answersLost = true;
    const silent = await startImpairment({
      target: { address: "127.0.0.1", port: agent.port },
      seed: SEED,
      loss: 0,
      jitterMs: 0,
      duplicate: 0,
      reorder: 0,
      // CSYNC/1 ANS <id> <ts> <code> <VERB> ...: only CAPTURE's answers are lost.
      blackhole: (dir, buf) => dir === "toClient" && answersLost && buf.toString("latin1").split(" ", 6)[5] === "CAPTURE",
    });
    const cfg = join(work, "silent.yaml");
    writeFileSync(
      cfg,
      `output: ./runs-silent
timeouts: { agent: 2s }
verify: false
agents: { keyFile: ./agent.key, sshKeyFile: ./id_ed25519, sftpPort: ${agent.sftpPort} }
syslog: { listen: 127.0.0.1:${syslogPort} }
devices:
  - { address: ${dev.address}, type: ${dev.type}, interfaces: [${dev.type === "msbr" ? "eth-wan" : "eth-lan"}], username: Admin, password: { env: FLEET_PW }, tls: insecure, restPort: ${dev.restPort}, sshPort: ${dev.sshPort}, agents: ["${silent.address}:${silent.port}"] }
`,
    );
    const run = runCli(["run", "--config", cfg, "--json"], { FLEET_PW: PW });
    try {
      const deadline = Date.now() + 30_000;
      while (!/did not answer CAPTURE/.test(run.stdout() + run.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(run.stdout() + run.stderr()).toMatch(/did not answer CAPTURE/);
      // The agent did run it: one tcpdump for the device, under this agent's dir.
      expect(tcpdumpsFor(dev.address)).toHaveLength(1);
      answersLost = false;
      const udp = await SyslogSender.open({ host: "127.0.0.1", port: syslogPort });
      await udp.send(ovocConnectionLostAlarm({ deviceIp: dev.address }));
      await udp.close();
      const end = await run.waitFor((l) => l.done === true, 40_000);
      await run.exited;
      const manifest = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8"));
      const side = manifest.devices[0].agents[0] as { capture: string; error?: string; files: { name: string }[]; answers: Answer[] };
      expect(side.answers.map((a) => `${a.verb} ${a.code}`).at(-1)).toBe("STOP 200");
      expect(side.capture).toBe("collected");
      expect(side.error).toBeUndefined();
      expect(side.files).toHaveLength(1);
      expect(readFileSync(join(end.folder!, side.files[0]!.name)).equals(readFileSync(join(agent.dir, side.files[0]!.name)))).toBe(true);
      expect(tcpdumpsFor(dev.address)).toHaveLength(0);
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
      await silent.close();
    }
  });
});
