// The agent under a flood of hostile datagrams, against the real server-capture binary: 10,000
// datagrams with forged MACs, another key, junk bytes, legacy text (legacy mode off), stale
// timestamps, replays of commands it already ran, and valid requests from a peer outside --allow.
// Zero commands run: no process spawned (a spawn hook inside the agent records every child it
// starts), no tcpdump in the process table at any poll, nothing new in the state file or the
// capture dir. Nothing answers the unauthenticated ones; stale and replayed ones get a bounded
// number of answers; the log aggregates drops instead of writing 10,000 lines. Then the agent
// still answers and runs a real command. A legacy-mode agent with --allow gets the same treatment.
import { type Socket, createSocket } from "node:dgram";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatLegacyRequest, formatRequest, newRequestId, parseAnswer } from "@capsync/protocol";
import { TEST_KEY, TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { isTcpdumpSpawn, processesMatching, tcpdumpsFor } from "../helpers/procs.js";

const KEY = Buffer.from(TEST_KEY);
const OTHER_KEY = Buffer.from("not-the-agent-key-not-the-agent-key-000");
const CPE = (dev: string) => `CPE_device_${dev}_2026-11-23T10.00.00.000000.pcap`;

/** A module loaded into the agent with --import: logs every child process it starts, then starts it. */
const SPAWN_HOOK = `
import cp from "node:child_process";
import { syncBuiltinESMExports } from "node:module";
import { appendFileSync } from "node:fs";
const out = process.env.CAPSYNC_SPAWN_LOG;
if (out) {
  for (const name of ["spawn", "spawnSync", "execFile", "execFileSync", "exec", "execSync", "fork"]) {
    const orig = cp[name];
    cp[name] = function (...args) {
      appendFileSync(out, JSON.stringify({ t: Date.now(), name, file: String(args[0]), args: Array.isArray(args[1]) ? args[1].map(String) : [] }) + "\\n");
      return orig.apply(this, args);
    };
  }
  syncBuiltinESMExports();
}
`;

interface SpawnLog {
  file: string;
  entries(): { t: number; name: string; file: string; args: string[] }[];
}

/** Start the real agent with the spawn hook loaded (the env is read synchronously by spawn). */
async function startHookedAgent(args: string[]): Promise<{ agent: AgentProc; spawns: SpawnLog }> {
  const dir = tempDir("capsync-flood-hook-");
  const hook = join(dir, "spawn-hook.mjs");
  writeFileSync(hook, SPAWN_HOOK);
  const log = join(dir, "spawns.jsonl");
  writeFileSync(log, "");
  const saved = { NODE_OPTIONS: process.env.NODE_OPTIONS, CAPSYNC_SPAWN_LOG: process.env.CAPSYNC_SPAWN_LOG };
  process.env.NODE_OPTIONS = `--import=${pathToFileURL(hook).href}`;
  process.env.CAPSYNC_SPAWN_LOG = log;
  let started: Promise<AgentProc>;
  try {
    started = startAgent(args);
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const agent = await started;
  return {
    agent,
    spawns: {
      file: log,
      entries: () =>
        readFileSync(log, "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { t: number; name: string; file: string; args: string[] }),
    },
  };
}

async function sockets(n: number, address = "127.0.0.1"): Promise<{ socks: Socket[]; answers: () => Buffer[]; close: () => void }> {
  const got: Buffer[] = [];
  const socks = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createSocket("udp4");
      s.on("message", (m) => got.push(m));
      await new Promise<void>((r) => s.bind(0, address, () => r()));
      return s;
    }),
  );
  return { socks, answers: () => got, close: () => socks.forEach((s) => s.close()) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** tcpdumps writing into `dir` (this agent's), by pid: other tests on the machine may run their own. */
const tcpdumpPids = (dir: string) => new Set(processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && a.some((x) => x.startsWith(dir))).map((p) => p.pid));

function logLines(agent: AgentProc): string[] {
  const f = join(agent.dir, "server-capture.log");
  return existsSync(f) ? readFileSync(f, "utf8").split("\n").filter(Boolean) : [];
}

function stateDevices(agent: AgentProc): { device: string; tasks: { task: string }[] }[] {
  return (JSON.parse(readFileSync(join(agent.dir, "server-capture-state.json"), "utf8")) as { devices: { device: string; tasks: { task: string }[] }[] }).devices;
}

describe("10,000 hostile datagrams against the CSYNC/1 agent", () => {
  let agent: AgentProc;
  let spawns: SpawnLog;
  let peer: TestPeer;

  beforeAll(async () => {
    const keyDir = tempDir("capsync-flood-key-");
    ({ agent, spawns } = await startHookedAgent(["--key-file", writeKey(keyDir), "--interface", "lo", "--allow", "127.0.0.1"]));
    peer = await TestPeer.open();
  });
  afterAll(async () => {
    peer?.close();
    await agent?.stop();
  });

  it("runs none of them, answers none of the unauthenticated ones, and logs them in aggregate", async () => {
    // One real command first: its datagrams are what an attacker on the path would replay.
    const dev = "127.0.0.60";
    const capture = await peer.request(agent.port, { verb: "CAPTURE", device: dev });
    expect(capture.final.code).toBe(200);
    const stop = await peer.request(agent.port, { verb: "STOP", device: dev, filename: CPE(dev) });
    expect(stop.final.code).toBe(200);
    const tcpdumpSpawns = spawns.entries().filter(isTcpdumpSpawn);
    expect(tcpdumpSpawns).toHaveLength(1); // the hook sees real spawns
    await sleep(50);
    const spawnsBefore = spawns.entries().length;
    const stateBefore = JSON.stringify(stateDevices(agent));
    const filesBefore = readdirSync(agent.dir).sort();
    const logBefore = logLines(agent).length;
    const pidsBefore = tcpdumpPids(agent.dir);

    const forged = await sockets(8);
    const wrongKey = await sockets(4);
    const junk = await sockets(4);
    const legacy = await sockets(4);
    const stale = await sockets(4);
    const replay = await sockets(4);
    const outsiders = await Promise.all(Array.from({ length: 10 }, (_, i) => sockets(1, `127.0.0.${i + 2}`)));

    const now = () => Date.now();
    const plan: { s: Socket; b: Buffer }[] = [];
    const pick = <T>(xs: T[], i: number) => xs[i % xs.length]!;
    for (let i = 0; i < 2000; i++) {
      const body = `CSYNC/1 REQ ${newRequestId()} ${now()} CAPTURE 127.0.0.61`;
      plan.push({ s: pick(forged.socks, i), b: Buffer.from(`${body} mac=${randomBytes(32).toString("hex")}`) });
    }
    for (let i = 0; i < 1000; i++) plan.push({ s: pick(wrongKey.socks, i), b: formatRequest({ id: newRequestId(), ts: now(), verb: "CAPTURE", device: "127.0.0.62" }, OTHER_KEY) });
    for (let i = 0; i < 1000; i++) plan.push({ s: pick(junk.socks, i), b: randomBytes(i % 10 === 0 ? 1300 : 1 + (i % 300)) });
    for (let i = 0; i < 1000; i++) {
      const b = [formatLegacyRequest({ verb: "CAPTURE", device: "127.0.0.63" }), formatLegacyRequest({ verb: "STOP", device: dev, filename: CPE(dev) }), formatLegacyRequest({ verb: "REGISTER", device: "127.0.0.63" })][i % 3]!;
      plan.push({ s: pick(legacy.socks, i), b });
    }
    for (let i = 0; i < 2000; i++) {
      const ts = now() + (i % 2 ? -600_000 : 600_000);
      plan.push({ s: pick(stale.socks, i), b: formatRequest({ id: newRequestId(), ts, verb: "CAPTURE", device: "127.0.0.64" }, KEY) });
    }
    for (let i = 0; i < 2000; i++) plan.push({ s: pick(replay.socks, i), b: i % 2 ? capture.sent : stop.sent });
    for (let i = 0; i < 1000; i++) plan.push({ s: outsiders[i % outsiders.length]!.socks[0]!, b: formatRequest({ id: newRequestId(), ts: now(), verb: "CAPTURE", device: "127.0.0.65" }, KEY) });
    expect(plan).toHaveLength(10_000);
    // Interleave the kinds, as a real flood would.
    for (let i = plan.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [plan[i], plan[j]] = [plan[j]!, plan[i]!];
    }

    // Poll the process table the whole time: a tcpdump that lived for a millisecond still counts.
    const seenPids = new Set<number>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        for (const p of tcpdumpPids(agent.dir)) if (!pidsBefore.has(p)) seenPids.add(p);
        await sleep(5);
      }
    })();
    const t0 = Date.now();
    for (let i = 0; i < plan.length; i++) {
      plan[i]!.s.send(plan[i]!.b, agent.port, "127.0.0.1");
      if (i % 250 === 249) await sleep(10);
    }
    const sendMs = Date.now() - t0;
    // Two agent ticks (1 s each) for the aggregated log lines and the coalesced state write.
    await sleep(2300);
    polling = false;
    await poller;

    // Still alive and still doing real work.
    const ping = await peer.request(agent.port, { verb: "PING" });
    expect(ping.final.code).toBe(200);

    const newSpawns = spawns.entries().slice(spawnsBefore);
    const stateAfter = JSON.stringify(stateDevices(agent));
    const lines = logLines(agent).slice(logBefore);
    const dropLines = lines.filter((l) => /dropped \d+ (more )?datagram/.test(l));
    const dropped = dropLines.reduce((n, l) => n + Number(/dropped (\d+)/.exec(l)![1]), 0);
    const staleAnswers = stale.answers().map((b) => parseAnswer(b, [KEY])).filter((r) => r.ok && r.value.code === 400 && r.value.details.reason === "stale").length;
    const replayAnswers = replay.answers().length;
    const outsiderAnswers = outsiders.reduce((n, o) => n + o.answers().length, 0);
    console.log(
      `flood: 10000 datagrams in ${sendMs} ms; spawned ${newSpawns.length}, tcpdumps seen ${seenPids.size}; answers: forged ${forged.answers().length}, other key ${wrongKey.answers().length}, junk ${junk.answers().length}, ` +
        `legacy ${legacy.answers().length}, outside --allow ${outsiderAnswers}, stale ${staleAnswers}/2000, replays ${replayAnswers}/2000; log +${lines.length} lines (${dropLines.length} drop lines covering ${dropped})`,
    );
    for (const l of lines.slice(0, 30)) console.log(`  log: ${l.slice(0, 200)}`);

    expect(newSpawns).toEqual([]);
    expect(seenPids.size).toBe(0);
    for (const d of ["127.0.0.61", "127.0.0.62", "127.0.0.63", "127.0.0.64", "127.0.0.65"]) expect(tcpdumpsFor(d)).toHaveLength(0);
    expect(stateAfter).toBe(stateBefore);
    expect(readdirSync(agent.dir).sort()).toEqual(filesBefore);
    expect(readdirSync(join(agent.dir, ".incoming"))).toEqual([]);

    // Unauthenticated: silence (never an oracle, never an amplifier).
    expect(forged.answers()).toHaveLength(0);
    expect(wrongKey.answers()).toHaveLength(0);
    expect(junk.answers()).toHaveLength(0);
    expect(legacy.answers()).toHaveLength(0);
    expect(outsiderAnswers).toBe(0);
    // Authenticated but stale or replayed: answered, but not once per datagram.
    expect(staleAnswers).toBeGreaterThan(0);
    expect(staleAnswers).toBeLessThanOrEqual(100);
    expect(replayAnswers).toBeGreaterThan(0);
    expect(replayAnswers).toBeLessThanOrEqual(100);

    // Logged, in aggregate: at most ~14 lines per one-second tick (10 drop lines, a summary, stale,
    // repeats, queue) whatever the flood, the drops accounted for.
    const ticks = new Set(lines.map((l) => l.slice(0, 19))).size;
    expect(lines.length).toBeLessThanOrEqual(ticks * 14 + 2);
    expect(lines.length).toBeLessThan(100);
    expect(dropped).toBeGreaterThan(4000);
    expect(dropLines.some((l) => /bad-mac from 127\.0\.0\.1/.test(l))).toBe(true);
    expect(dropLines.some((l) => /peer-not-allowed (from 127\.0\.0\.\d+|\d+)/.test(l))).toBe(true);
    expect(lines.some((l) => /stale/.test(l))).toBe(true);
    expect(lines.join("\n")).not.toContain(TEST_KEY);

    // A real command after the flood still runs (exactly one tcpdump).
    const after = "127.0.0.66";
    expect((await peer.request(agent.port, { verb: "CAPTURE", device: after })).final.code).toBe(200);
    expect(tcpdumpsFor(after)).toHaveLength(1);
    expect((await peer.request(agent.port, { verb: "STOP", device: after, filename: CPE(after) })).final.code).toBe(200);
    for (const s of [forged, wrongKey, junk, legacy, stale, replay, ...outsiders]) s.close();
  });
});

describe("legacy mode: no authentication, so --allow is the only gate", () => {
  it("1,000 legacy CAPTUREs from outside --allow run nothing and get no answer; the allowed peer's one works", async () => {
    const { agent, spawns } = await startHookedAgent(["--legacy", "--interface", "lo", "--allow", "127.0.0.1/32"]);
    try {
      for (let i = 0; i < 100 && !/LEGACY MODE/.test(logLines(agent).join("\n")); i++) await sleep(20);
      expect(logLines(agent).join("\n")).toMatch(/LEGACY MODE: commands are unauthenticated/);
      const spawnsBefore = spawns.entries().length;
      const outsider = await sockets(4, "127.0.0.20");
      for (let i = 0; i < 1000; i++) {
        outsider.socks[i % 4]!.send(formatLegacyRequest({ verb: i % 2 ? "CAPTURE" : "STOP", device: "127.0.0.70", ...(i % 2 ? {} : { filename: CPE("127.0.0.70") }) }), agent.port, "127.0.0.1");
        if (i % 250 === 249) await sleep(10);
      }
      await sleep(1300);
      expect(outsider.answers()).toHaveLength(0);
      expect(spawns.entries().slice(spawnsBefore)).toEqual([]);
      expect(tcpdumpsFor("127.0.0.70")).toHaveLength(0);
      const drops = logLines(agent).filter((l) => /dropped \d+ datagram\(s\): peer-not-allowed from 127\.0\.0\.20/.test(l));
      expect(drops.length).toBeGreaterThan(0);
      expect(drops.length).toBeLessThan(10);

      const inside = await TestPeer.open();
      inside.send(formatLegacyRequest({ verb: "CAPTURE", device: "127.0.0.71" }), agent.port);
      await inside.waitFor((all) => (all.some((b) => b.toString() === "200 OK 127.0.0.71 CAPTURE") ? true : undefined));
      expect(tcpdumpsFor("127.0.0.71")).toHaveLength(1);
      inside.send(formatLegacyRequest({ verb: "STOP", device: "127.0.0.71", filename: CPE("127.0.0.71") }), agent.port);
      await inside.waitFor((all) => (all.some((b) => b.toString() === "200 OK 127.0.0.71 STOP") ? true : undefined));
      inside.close();
      outsider.close();
    } finally {
      await agent.stop();
    }
  });
});
