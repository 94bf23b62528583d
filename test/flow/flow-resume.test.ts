// A flow run whose orchestrator is SIGKILLed while every hop captures: `cpe-capture stop <folder>`
// reads the flow back from the journal and stops the IOS-XE hop and the agent hop together, with
// one timestamp, each file collected once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSocket } from "node:dgram";
import { chmodSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateSshKeyPair, startIosXeDevice, type IosXeDevice } from "@capsync/emulators";
import { startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { processesMatching } from "../helpers/procs.js";

const RTR = "127.0.0.76";
const PEER = "127.0.0.77";
const PW = "Rtr-Resume-1234!";

let work: string;
let agent: AgentProc;
let rtr: IosXeDevice;

beforeAll(async () => {
  work = tempDir("capsync-flow-resume-");
  const key = writeKey(work);
  const pair = generateSshKeyPair("capsync-flow-resume");
  writeFileSync(join(work, "id_ed25519"), pair.private);
  chmodSync(join(work, "id_ed25519"), 0o600);
  writeFileSync(join(work, "authorized_keys"), pair.public + "\n");
  agent = await startAgent(["--key-file", key, "--interface", "lo", "--sftp-listen", "127.0.0.1:0", "--authorized-keys", join(work, "authorized_keys")]);
  rtr = await startIosXeDevice({ address: RTR, username: "admin", password: PW, peer: PEER, packetsPerSecond: 200 });
});
afterAll(async () => {
  await rtr?.close();
  await agent?.stop();
  if (agent) rmSync(agent.dir, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

const flowTcpdumps = () => processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && a.includes(RTR));

describe("flow run interrupted", () => {
  it("SIGKILL while capturing, then `cpe-capture stop <folder>`: both hops stopped and collected once, one timestamp", async () => {
    const cfg = join(work, "flow.yaml");
    writeFileSync(
      cfg,
      `output: ./runs
timeouts: { rest: 3s, sftp: 10s, agent: 4s }
retries: 1
agents: { keyFile: ./agent.key, sshKeyFile: ./id_ed25519, sftpPort: ${agent.sftpPort} }
syslog: { listen: 127.0.0.1:${await freeUdpPort()} }
stop: { alarms: [iosxe-lineproto-down] }
devices:
  - { name: rtr, address: ${RTR}, type: iosxe, interfaces: [GigabitEthernet1], username: admin, password: { env: RTR_PW }, tls: insecure, restPort: ${rtr.restPort}, sshPort: ${rtr.sshPort} }
flow:
  filter: { src: ${RTR}, dst: ${PEER}, protocol: udp, dport: 5060 }
  path: [rtr, agent:127.0.0.1:${agent.port}]
`,
    );
    const env = { RTR_PW: PW };
    const run = runCli(["run", "--config", cfg, "--json"], env);
    await run.waitFor((l) => l.device === RTR && l.event === "state" && l.status === "capturing");
    await run.waitFor((l) => l.device === "flow" && l.event === "state" && l.status === "capturing");
    const folder = join(work, "runs", readdirSync(join(work, "runs")).sort().at(-1)!);
    run.child.kill("SIGKILL");
    await run.exited;
    // Both hops keep capturing without an orchestrator.
    expect(flowTcpdumps()).toHaveLength(1);
    expect(rtr.state().capturePoints.map((c) => c.state)).toEqual(["active"]);
    const s = createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, RTR, () => r()));
    for (let i = 0; i < 10; i++) await new Promise<void>((r) => s.send(`flow-${i}`, 5060, PEER, () => r()));
    s.close();

    const stop = runCli(["stop", folder], env);
    expect(await stop.exited, stop.stderr() + stop.stdout()).toBe(0);
    expect(flowTcpdumps()).toHaveLength(0);
    expect(rtr.state().capturePoints).toEqual([]);
    const m = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    expect(m.status).toBe("done");
    expect(m.flow).toMatchObject({ state: "done", status: "collected", stopReason: "manual" });
    const stamp: string = m.flow.stamp;
    const names = [`hop1_CPE_device_${RTR}_${stamp}.pcap`, `hop2_server_127.0.0.1-${agent.port}_${stamp}.pcap`];
    expect(m.path.map((h: { capture: string; files: { name: string }[] }) => [h.capture, h.files.map((f) => f.name)])).toEqual(names.map((n) => ["collected", [n]]));
    expect(readdirSync(folder).filter((f) => f.endsWith(".pcap")).sort()).toEqual(names);
    expect(readFileSync(join(folder, names[0]!)).equals(rtr.lastExport()!.data)).toBe(true);
    const hop2 = readPcap(join(folder, names[1]!)).packets.map((p) => `${p.src}>${p.dst}:${p.dport} ${p.payload?.toString()}`);
    expect(hop2).toEqual(Array.from({ length: 10 }, (_, i) => `${RTR}>${PEER}:5060 flow-${i}`));
    const kinds = readFileSync(join(folder, "journal.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).kind as string);
    expect(kinds.filter((k) => k === "flow-stop")).toHaveLength(1);
    expect(kinds.filter((k) => k === "flow-collected")).toHaveLength(1);
    // A second stop finds nothing to do and changes nothing.
    const again = runCli(["stop", folder], env);
    expect(await again.exited).toBe(0);
    expect(readdirSync(folder).filter((f) => f.endsWith(".pcap")).sort()).toEqual(names);
  });
});
