// A burst of alarms against a running fleet (emulated AudioCodes devices in this process, a real
// UDP agent stand-in speaking CSYNC/1, the alarms really sent over UDP back to back): every STOP
// reaches the agent in the order the alarms were sent, each STOP's file name is already in
// journal.jsonl when the agent reads the STOP (resume trusts it), device stops start in arrival
// order, and after the run the journal holds every alarm's lines — none lost behind the burst.
import dgram from "node:dgram";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AudioCodesFleet, ovocConnectionLostAlarm, startAudioCodesFleet } from "@capsync/emulators";
import { formatAnswer, parseRequest } from "@capsync/protocol";
import { loadConfig } from "../config/loader.js";
import { runConfig } from "../commands/run.js";
import type { Orchestrator } from "./orchestrator.js";

const N = 48;
const KEY = "alarm-burst-test-key-0123456789abcdef";
const PASSWORD = "burst-pw";

/** The agent: answers REGISTER/CAPTURE 200 and STOP 200 without files; notes each STOP as it reads it. */
class AgentStandIn {
  readonly stops: { device: string; filename: string; journaled: boolean }[] = [];
  journalPath?: string;
  private constructor(private readonly sock: dgram.Socket) {
    sock.on("message", (buf, rinfo) => {
      const p = parseRequest(buf, { keys: [Buffer.from(KEY, "latin1")] });
      if (!p.ok) throw new Error(`agent stand-in got a bad request: ${p.message}`);
      const r = p.value;
      if (r.verb === "STOP") {
        const journal = this.journalPath ? readFileSync(this.journalPath, "utf8") : "";
        const line = JSON.stringify({ device: r.device, captureName: r.filename }).slice(1, -1);
        this.stops.push({ device: r.device!, filename: r.filename!, journaled: journal.includes(`"kind":"capture-name",${line}`) });
      }
      const details: Record<string, string> = r.verb === "CAPTURE" ? { file: `srv_${r.device}.pcap` } : {};
      sock.send(formatAnswer({ id: r.id, ts: Date.now(), code: 200, verb: r.verb, device: r.device ?? null, details }, Buffer.from(KEY, "latin1")), rinfo.port, rinfo.address);
    });
  }
  static async start(): Promise<AgentStandIn> {
    const sock = dgram.createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
    return new AgentStandIn(sock);
  }
  get port(): number {
    return this.sock.address().port;
  }
  close(): void {
    this.sock.close();
  }
}

describe("a burst of alarms", () => {
  let dir: string;
  let fleet: AudioCodesFleet;
  let agent: AgentStandIn;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "capsync-alarm-burst-"));
    fleet = await startAudioCodesFleet(N, { firstAddress: "127.0.41.1", username: "Admin", password: PASSWORD, capture: { kind: "synthetic", packetsPerSecond: 5 } });
    agent = await AgentStandIn.start();
  }, 60_000);
  afterAll(async () => {
    agent?.close();
    await fleet?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("STOPs leave in arrival order behind their journal lines; device stops start in that order; no journal line lost", async () => {
    const keyFile = join(dir, "agent.key");
    writeFileSync(keyFile, KEY);
    chmodSync(keyFile, 0o600);
    const output = join(dir, "runs");
    writeFileSync(
      join(dir, "run.yaml"),
      [
        `output: ${output}`,
        `concurrency: 16`,
        `agents: { keyFile: ${keyFile} }`,
        `syslog: { listen: 127.0.0.1:0 }`,
        `stop: { duration: 120s }`,
        `verify: false`,
        `devices:`,
        ...fleet.devices.map(
          (d) =>
            `  - { address: ${d.address}, type: ${d.type}, interfaces: [${d.type === "msbr" ? "eth-wan" : "eth-lan"}], username: Admin, password: { env: BURST_TEST_PW }, tls: insecure, restPort: ${d.restPort}, sshPort: ${d.sshPort}, agents: [127.0.0.1:${agent.port}] }`,
        ),
      ].join("\n") + "\n",
    );
    const { config } = await loadConfig(join(dir, "run.yaml"));
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    let started!: (o: Orchestrator) => void;
    const orchestrator = new Promise<Orchestrator>((r) => (started = r));
    const done = runConfig(config, { stdout: sink, stderr: sink }, { json: false, quiet: true, onStarted: (o) => started(o), env: { BURST_TEST_PW: PASSWORD } });
    const orch = await orchestrator;
    while (orch.manifest.devices.some((d) => d.state !== "capturing")) {
      expect(orch.manifest.devices.filter((d) => d.state === "failed").map((d) => d.device)).toEqual([]);
      await new Promise((r) => setTimeout(r, 20));
    }
    const folder = join(output, readdirSync(output)[0]!);
    agent.journalPath = join(folder, "journal.jsonl");

    // The burst, back to back from one socket (loopback keeps the order), in a shuffled device order.
    const order = fleet.devices.map((d) => d.address).sort((a, b) => (a.split(".").reverse().join() < b.split(".").reverse().join() ? -1 : 1)).reverse();
    const sender = dgram.createSocket("udp4");
    await new Promise<void>((r) => sender.connect(orch.listening.udp!.port, "127.0.0.1", r));
    for (const address of order) sender.send(ovocConnectionLostAlarm({ deviceIp: address }));
    const summary = await done;
    sender.close();

    expect(agent.stops.map((s) => s.device)).toEqual(order);
    expect(agent.stops.filter((s) => !s.journaled)).toEqual([]);
    expect(orch.deviceStopLatencies.map((s) => s.device)).toEqual(order);
    expect(orch.stopLatencies.map((s) => s.device)).toEqual(order);

    const journal = readFileSync(agent.journalPath, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { kind: string; device?: string; state?: string; captureName?: string; reason?: string });
    for (const address of order) {
      const mine = journal.filter((e) => e.device === address);
      const kinds = mine.map((e) => (e.kind === "device-state" ? `state:${e.state}` : e.kind));
      // Each once, in this order, after the start's lines.
      const wanted = ["stop-requested", "capture-name", "state:stopping", "state:collecting", "device-collected", "state:done"];
      expect(kinds.filter((k) => wanted.includes(k)), address).toEqual(wanted);
      expect(mine.find((e) => e.kind === "stop-requested")?.reason).toBe("alarm");
      expect(mine.find((e) => e.kind === "capture-name")?.captureName).toBe(agent.stops.find((s) => s.device === address)?.filename);
    }
    // The stop lines are in arrival order too.
    expect(journal.filter((e) => e.kind === "stop-requested").map((e) => e.device)).toEqual(order);
    expect(summary.manifest.devices.map((d) => d.state)).toEqual(Array(N).fill("done"));
  }, 90_000);
});
