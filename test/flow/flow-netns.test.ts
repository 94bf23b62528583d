// A 3-hop flow capture in network namespaces: csfl-a — csfl-b (forwarding) — csfl-c in a line, a
// real server-capture agent in each namespace capturing on that hop's interface, and the real
// `cpe-capture run` (root namespace, reaching the agents over management veths) with a flow config
// naming the three agents as the path. The flow (UDP a→c port 5000) is sent with noise around it
// (another port, another host, the reverse direction, TCP to the same port); every hop's file must hold exactly the
// flow's packets, in order, and nothing else, and the report must follow the three hops.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { generateSshKeyPair } from "@capsync/emulators";
import { startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { linkExists, nsExists } from "../helpers/netns.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { processesMatching } from "../helpers/procs.js";

const run = promisify(execFile);
const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] });
const tryIp = (...args: string[]) => {
  try {
    ip(...args);
  } catch {
    /* not there */
  }
};

// 198.18.0.0/15 (RFC 2544 benchmarking): nothing else on the machine uses it.
const A = "198.18.1.1";
const B_A = "198.18.1.2";
const B_C = "198.18.2.1";
const C = "198.18.2.2";
const NS = ["csfl-a", "csfl-b", "csfl-c"] as const;
const MGMT = [
  { ns: "csfl-a", link: "csfl-ma", root: "198.18.11.1", addr: "198.18.11.2", captureIf: "csfl-ab" },
  { ns: "csfl-b", link: "csfl-mb", root: "198.18.12.1", addr: "198.18.12.2", captureIf: "csfl-ba" },
  { ns: "csfl-c", link: "csfl-mc", root: "198.18.13.1", addr: "198.18.13.2", captureIf: "csfl-cb" },
] as const;
const FLOW_PACKETS = 60;
const SPORT = 40_000;

let work: string;
const agents: AgentProc[] = [];

function teardownNetwork(): void {
  for (const n of NS) tryIp("netns", "del", n);
  for (const m of MGMT) tryIp("link", "del", m.link);
}

beforeAll(async () => {
  teardownNetwork();
  for (const n of NS) ip("netns", "add", n);
  for (const n of NS) ip("-n", n, "link", "set", "lo", "up");
  // The line: a — b — c, b forwards.
  ip("link", "add", "csfl-ab", "netns", "csfl-a", "type", "veth", "peer", "name", "csfl-ba", "netns", "csfl-b");
  ip("link", "add", "csfl-bc", "netns", "csfl-b", "type", "veth", "peer", "name", "csfl-cb", "netns", "csfl-c");
  ip("-n", "csfl-a", "addr", "add", `${A}/24`, "dev", "csfl-ab");
  ip("-n", "csfl-b", "addr", "add", `${B_A}/24`, "dev", "csfl-ba");
  ip("-n", "csfl-b", "addr", "add", `${B_C}/24`, "dev", "csfl-bc");
  ip("-n", "csfl-c", "addr", "add", `${C}/24`, "dev", "csfl-cb");
  for (const [n, l] of [["csfl-a", "csfl-ab"], ["csfl-b", "csfl-ba"], ["csfl-b", "csfl-bc"], ["csfl-c", "csfl-cb"]] as const) ip("-n", n, "link", "set", l, "up");
  ip("-n", "csfl-a", "route", "add", "198.18.2.0/24", "via", B_A);
  ip("-n", "csfl-c", "route", "add", "198.18.1.0/24", "via", B_C);
  execFileSync("ip", ["netns", "exec", "csfl-b", "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  // Management: one veth from the root namespace (where cpe-capture runs) to each namespace.
  for (const m of MGMT) {
    ip("link", "add", m.link, "type", "veth", "peer", "name", `${m.link}-n`, "netns", m.ns);
    ip("addr", "add", `${m.root}/24`, "dev", m.link);
    ip("link", "set", m.link, "up");
    ip("-n", m.ns, "addr", "add", `${m.addr}/24`, "dev", `${m.link}-n`);
    ip("-n", m.ns, "link", "set", `${m.link}-n`, "up");
  }

  work = tempDir("capsync-flow-netns-");
  const key = writeKey(work);
  const pair = generateSshKeyPair("capsync-flow");
  writeFileSync(join(work, "id_ed25519"), pair.private);
  chmodSync(join(work, "id_ed25519"), 0o600);
  writeFileSync(join(work, "authorized_keys"), pair.public + "\n");
  for (const m of MGMT) {
    agents.push(
      await startAgent(["--key-file", key, "--interface", m.captureIf, "--sftp-listen", `${m.addr}:20022`, "--authorized-keys", join(work, "authorized_keys")], {
        netns: m.ns,
        listen: `${m.addr}:20001`,
      }),
    );
  }
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  for (const a of agents) rmSync(a.dir, { recursive: true, force: true });
  teardownNetwork();
  for (const n of NS) expect(nsExists(n)).toBe(false);
  for (const m of MGMT) expect(linkExists(m.link)).toBe(false);
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Run a small node script inside a namespace, asynchronously. */
async function inNs(ns: string, script: string): Promise<string> {
  return (await run("ip", ["netns", "exec", ns, process.execPath, "-e", script], { timeout: 15_000 })).stdout;
}

describe("flow along a path of three agents (network namespaces)", () => {
  it("every hop's pcap holds exactly the flow's packets, the files are named by hop, the report follows the path", async () => {
    const syslog = await freeUdpPort();
    const cfg = join(work, "flow.yaml");
    writeFileSync(
      cfg,
      `output: ./runs
verify: false
timeouts: { agent: 4s, sftp: 10s }
agents: { keyFile: ./agent.key, sshKeyFile: ./id_ed25519, sftpPort: 20022 }
syslog: { listen: 127.0.0.1:${syslog} }
stop:
  duration: 5s
devices: []
flow:
  filter: { src: ${A}, dst: ${C}, protocol: udp, dport: 5000 }
  path: [agent:${MGMT[0].addr}:20001, agent:${MGMT[1].addr}:20001, agent:${MGMT[2].addr}:20001]
`,
    );
    const cli = runCli(["run", "--config", cfg, "--json"]);
    await cli.waitFor((l) => l.device === "flow" && l.event === "state" && l.status === "capturing");
    expect(cli.lines.filter((l) => l.device === "flow" && / CAPTURE$/.test(l.event ?? "")).map((l) => `${l.event} ${l.status}`)).toEqual(
      expect.arrayContaining(MGMT.map((m, i) => `hop${i + 1} ${m.addr}:20001 CAPTURE 200`)),
    );

    // c listens on 5000 and 5001 (no ICMP unreachables); a sends the flow and the noise, interleaved.
    const sink = inNs(
      "csfl-c",
      `const d = require("node:dgram"), got = { 5000: 0, 5001: 0 };
       for (const p of [5000, 5001]) d.createSocket("udp4").on("message", () => got[p]++).bind(p, "${C}");
       setTimeout(() => { process.stdout.write(JSON.stringify(got)); process.exit(0); }, 2500);`,
    );
    await new Promise((r) => setTimeout(r, 300));
    await inNs(
      "csfl-a",
      `const d = require("node:dgram");
       const flow = d.createSocket("udp4"), other = d.createSocket("udp4");
       flow.bind(${SPORT}, "${A}", () => other.bind(0, "${A}", async () => {
         const send = (s, m, port, host) => new Promise((r) => s.send(m, port, host, r));
         for (let i = 0; i < ${FLOW_PACKETS}; i++) {
           await send(flow, "flow-" + i, 5000, "${C}");
           await send(flow, "noise-port-" + i, 5001, "${C}");      // same hosts, another port
           await send(other, "noise-sport-" + i, 5000, "${B_A}");  // another host (b itself)
           await new Promise((r) => setTimeout(r, 3));
         }
         process.exit(0);
       }));`,
    );
    // The reverse direction and ICMP cross every hop too, and are not the flow.
    await inNs(
      "csfl-c",
      `const s = require("node:dgram").createSocket("udp4"); s.bind(5000 + 7, "${C}", async () => {
         for (let i = 0; i < 10; i++) await new Promise((r) => s.send("reverse-" + i, ${SPORT}, "${A}", r));
         process.exit(0);
       });`,
    );
    // Same hosts and port, another protocol: TCP SYNs to c:5000 (answered with RSTs).
    await inNs(
      "csfl-a",
      `const net = require("node:net"); let n = 0;
       const next = () => { if (n++ === 3) process.exit(0); const c = net.connect({ host: "${C}", port: 5000, localAddress: "${A}" }); c.on("error", next); c.on("connect", () => { c.destroy(); next(); }); };
       next();`,
    );
    // The noise really crossed every hop: c received the other port's datagrams as well as the flow's.
    expect(JSON.parse(await sink)).toEqual({ 5000: FLOW_PACKETS, 5001: FLOW_PACKETS });

    const end = await cli.waitFor((l) => l.done === true, 30_000);
    expect(await cli.exited).toBe(0);
    const folder = end.folder!;
    const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    expect(manifest.status).toBe("done");
    expect(manifest.devices).toEqual([]);
    expect(manifest.flow).toMatchObject({ filter: { src: A, dst: C, protocol: "udp", dport: 5000 }, agentHost: A, state: "done", status: "collected", stopReason: "run-duration" });
    const stamp: string = manifest.flow.stamp;
    expect(stamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{6}$/);
    const names = MGMT.map((m, i) => `hop${i + 1}_server_${m.addr}-20001_${stamp}.pcap`);
    expect(manifest.path.map((h: { hop: number; kind: string; name: string; capture: string; files: { name: string }[] }) => [h.hop, h.kind, h.name, h.capture, h.files.map((f) => f.name)])).toEqual(
      MGMT.map((m, i) => [i + 1, "server", `${m.addr}:20001`, "collected", [names[i]]]),
    );
    expect(readdirSync(folder).filter((f) => f.startsWith("hop")).sort()).toEqual(names);

    for (const [i, name] of names.entries()) {
      const pcap = readPcap(join(folder, name));
      expect(pcap.linktype, name).toBe(1);
      const got = pcap.packets.map((p) => `${p.src}:${p.sport}>${p.dst}:${p.dport}/${p.proto} ${p.payload?.toString()}`);
      expect(got, `hop ${i + 1}`).toEqual(Array.from({ length: FLOW_PACKETS }, (_, n) => `${A}:${SPORT}>${C}:5000/17 flow-${n}`));
      // The agent's copy, renamed after STOP's hop name, is the same bytes.
      const remote = join(agents[i]!.dir, name.replace(/\.pcap$/, "_server-0.pcap"));
      expect(readFileSync(join(folder, name)).equals(readFileSync(remote)), name).toBe(true);
    }

    const report = JSON.parse(readFileSync(join(folder, "report.json"), "utf8"));
    const hopPoints = MGMT.map((m, i) => `hop${i + 1}-server-${m.addr}:20001`);
    expect(report.points.map((p: { name: string; role: string; packets: number }) => [p.name, p.role, p.packets])).toEqual(hopPoints.map((n) => [n, "hop", FLOW_PACKETS]));
    expect(report.pairs.map((p: { a: string; b: string }) => [p.a, p.b])).toEqual([
      [hopPoints[0], hopPoints[1]],
      [hopPoints[1], hopPoints[2]],
    ]);
    expect(report.paths[0]).toEqual({
      direction: `${hopPoints[0]} → ${hopPoints[2]}`,
      hops: [
        { from: hopPoints[0], to: hopPoints[1], sent: FLOW_PACKETS, lost: 0 },
        { from: hopPoints[1], to: hopPoints[2], sent: FLOW_PACKETS, lost: 0 },
      ],
    });
    expect(readFileSync(join(folder, "report.txt"), "utf8")).toContain(`Path ${hopPoints[0]} → ${hopPoints[2]}: ${hopPoints[0]}→${hopPoints[1]} lost 0/${FLOW_PACKETS}`);
    // No tcpdump is left in any namespace.
    expect(processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && a.includes(A))).toEqual([]);
  });
});
