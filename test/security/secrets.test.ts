// Secrets never leave their place. A full run (real cpe-capture, real agent with tcpdump and SFTP,
// two emulated AudioCodes devices) with known device passwords, CSYNC/1 key and SSH key; while it
// runs, the process table is polled and every process of the orchestrator's and the agent's trees
// (tcpdump included) has its /proc/<pid>/cmdline read; afterwards every file of the run folder,
// the agent's dir (log, state file, captures), the lab dir (except the key files themselves) and
// every stdout/stderr is searched for the secrets, plain and as HTTP Basic credentials: zero hits.
// (The orchestrator's /proc/<pid>/environ legitimately holds the password variables the user set,
// so environ is checked only where no secret belongs: tcpdump.) A second agent gets OVOC API
// credentials from the environment: they reach neither tcpdump's environment nor any log.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SyslogSender, ovocConnectionLostAlarm } from "@capsync/emulators";
import { TEST_KEY, TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { startLab, type Lab } from "../helpers/lab.js";
import { tcpdumpsFor } from "../helpers/procs.js";

const MSBR = "127.0.0.51";
const SBC = "127.0.0.52";
const PASSWORDS = ["Secret-Msbr-Pw-4711!x", "Secret-Sbc-Pw-0815?y"];

interface Proc {
  pid: number;
  ppid: number;
  argv: string[];
  comm: string;
}

function table(): Map<number, Proc> {
  const out = new Map<number, Proc>();
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").filter(Boolean);
      out.set(Number(p), { pid: Number(p), ppid, argv, comm });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** Processes whose parent chain reaches one of `roots` (the roots included). */
function descendants(t: Map<number, Proc>, roots: number[]): Proc[] {
  const out: Proc[] = [];
  for (const p of t.values()) {
    for (let q: Proc | undefined = p, hops = 0; q && hops < 20; q = t.get(q.ppid), hops++) {
      if (roots.includes(q.pid)) {
        out.push(p);
        break;
      }
    }
  }
  return out;
}

function grepTree(dir: string, needles: string[], skip: (f: string) => boolean = () => false): string[] {
  const hits: string[] = [];
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, f);
    if (skip(p)) continue;
    try {
      if (!statSync(p).isFile()) continue;
      const text = readFileSync(p).toString("latin1");
      for (const n of needles) if (text.includes(n)) hits.push(`${p}: ${n.slice(0, 12)}…`);
    } catch {
      /* gone */
    }
  }
  return hits;
}

const hitsIn = (what: string, text: string, needles: string[]) => needles.filter((n) => text.includes(n)).map((n) => `${what}: ${n.slice(0, 12)}…`);
const state = (dev: string, s: string) => (l: { device?: string; source?: string; event?: string; status?: string }) => l.device === dev && l.source === "run" && l.event === "state" && l.status === s;

describe("secrets over a full run", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab([
      { type: "msbr", address: MSBR, password: PASSWORDS[0]! },
      { type: "gwsbc", address: SBC, password: PASSWORDS[1]! },
    ]);
  });
  afterAll(async () => lab?.close());

  it("no password, key or SSH key in any file, output, log or process argument", async () => {
    const sshKey = readFileSync(join(lab.work, "id_ed25519"), "utf8");
    // The body lines of the private key, except the first: "b3BlbnNzaC1rZXktdjE..." is the same
    // "openssh-key-v1" header in every OpenSSH key (the agent's own host key has it too).
    const sshKeyLines = sshKey.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----")).slice(1);
    const needles = [
      ...PASSWORDS,
      ...PASSWORDS.map((p) => Buffer.from(`Admin:${p}`).toString("base64")),
      TEST_KEY,
      ...sshKeyLines,
    ];
    expect(sshKeyLines.length).toBeGreaterThan(0);

    const port = await freeUdpPort();
    const cfg = lab.writeConfig("secrets.yaml", port);
    const run = runCli(["run", "--config", cfg, "--json"], lab.env);
    const seen = new Map<number, Proc>();
    let polling = true;
    const poll = (async () => {
      while (polling) {
        for (const p of descendants(table(), [run.child.pid!, lab.agent.child.pid!])) if (!seen.has(p.pid)) seen.set(p.pid, p);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    await run.waitFor(state(MSBR, "capturing"));
    await run.waitFor(state(SBC, "capturing"));
    const tcpdumps = [...tcpdumpsFor(MSBR), ...tcpdumpsFor(SBC)];
    expect(tcpdumps).toHaveLength(2);
    // tcpdump's environment holds nothing secret either (it is not the user's shell).
    const environs = tcpdumps.map((t) => readFileSync(`/proc/${t.pid}/environ`, "latin1")).join("\n");
    await new Promise((r) => setTimeout(r, 300));
    const udp = await SyslogSender.open({ host: "127.0.0.1", port });
    await udp.send(ovocConnectionLostAlarm({ deviceIp: MSBR, format: "rfc3164" }));
    await udp.send(ovocConnectionLostAlarm({ deviceIp: SBC, format: "rfc5424", ovocHost: "ovoc1" }));
    const end = await run.waitFor((l) => l.done === true, 60_000);
    await udp.close();
    expect(await run.exited).toBe(0);
    polling = false;
    await poll;
    const folder = end.folder!;

    const procs = [...seen.values()];
    const kinds = [...new Set(procs.map((p) => p.comm))].sort();
    const hits = [
      ...grepTree(folder, needles),
      ...grepTree(lab.agent.dir, needles),
      ...grepTree(lab.work, needles, (p) => p === join(lab.work, "agent.key") || p === join(lab.work, "id_ed25519") || p.startsWith(folder)),
      ...hitsIn("cpe-capture stdout", run.stdout(), needles),
      ...hitsIn("cpe-capture stderr", run.stderr(), needles),
      ...hitsIn("agent stdout", lab.agent.stdout(), needles),
      ...hitsIn("agent stderr", lab.agent.stderr(), needles),
      ...procs.flatMap((p) => hitsIn(`/proc/${p.pid}/cmdline (${p.comm})`, p.argv.join(" "), needles)),
      ...hitsIn("tcpdump environ", environs, needles),
    ];
    const files = (readdirSync(folder, { recursive: true }) as string[]).length + (readdirSync(lab.agent.dir, { recursive: true }) as string[]).length;
    console.log(`secrets: ${needles.length} needles; ${files} files, ${procs.length} processes (${kinds.join(", ")}), 4 output streams searched; ${hits.length} hits`);
    expect(hits).toEqual([]);
    // The search did look at what matters: the processes of both trees, the logs and the run folder.
    expect(kinds).toEqual(expect.arrayContaining(["node", "tcpdump"]));
    expect(readdirSync(folder)).toEqual(expect.arrayContaining(["capsync.log", "manifest.json", "events.csv", "journal.jsonl", "run-config.json"]));
  });
});

describe("OVOC API credentials from the agent's environment", () => {
  let agent: AgentProc;
  const OVOC_PW = "Ovoc-Api-S3cret-9911";
  beforeAll(async () => {
    const saved = { u: process.env.CAPSYNC_OVOC_USER, p: process.env.CAPSYNC_OVOC_PASSWORD };
    process.env.CAPSYNC_OVOC_USER = "capsync-api";
    process.env.CAPSYNC_OVOC_PASSWORD = OVOC_PW;
    let started: Promise<AgentProc>;
    try {
      // Nothing listens on port 9 of 127.0.0.1: REGISTER fails, and its error must not carry the password.
      started = startAgent(["--key-file", writeKey(tempDir("capsync-secrets-ovoc-")), "--interface", "lo", "--ovoc-url", "https://127.0.0.1:9", "--ovoc-timeout", "1s"]);
    } finally {
      if (saved.u === undefined) delete process.env.CAPSYNC_OVOC_USER;
      else process.env.CAPSYNC_OVOC_USER = saved.u;
      if (saved.p === undefined) delete process.env.CAPSYNC_OVOC_PASSWORD;
      else process.env.CAPSYNC_OVOC_PASSWORD = saved.p;
    }
    agent = await started;
  });
  afterAll(async () => agent?.stop());

  it("reach neither tcpdump's environment nor the log, the state file or an answer", async () => {
    const needles = [OVOC_PW, Buffer.from(`capsync-api:${OVOC_PW}`).toString("base64")];
    const peer = await TestPeer.open();
    const dev = "127.0.0.53";
    const reg = await peer.request(agent.port, { verb: "REGISTER", device: dev });
    expect(reg.final.code).toBe(503);
    expect((await peer.request(agent.port, { verb: "CAPTURE", device: dev })).final.code).toBe(200);
    const [t] = tcpdumpsFor(dev);
    const environ = readFileSync(`/proc/${t!.pid}/environ`, "latin1");
    await peer.request(agent.port, { verb: "STOP", device: dev, filename: `CPE_device_${dev}_2026-11-23T10.00.00.000000.pcap` });
    await new Promise((r) => setTimeout(r, 200));
    const hits = [
      ...hitsIn("tcpdump environ", environ, needles),
      ...hitsIn("tcpdump environ (variable names)", environ, ["CAPSYNC_OVOC_PASSWORD"]),
      ...grepTree(agent.dir, needles),
      ...hitsIn("agent stdout/stderr", agent.stdout() + agent.stderr(), needles),
      ...hitsIn("answers", peer.received.map((b) => b.toString()).join("\n"), needles),
    ];
    console.log(`OVOC credentials: REGISTER → ${reg.final.code} ${reg.final.details.reason}; tcpdump environ has ${environ.split("\0").filter(Boolean).length} variables; ${hits.length} hits`);
    peer.close();
    expect(hits).toEqual([]);
  });
});
