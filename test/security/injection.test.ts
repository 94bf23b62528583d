// Injection: device addresses, file names, interface names and filters carrying shell
// metacharacters, `..`, NUL, newlines, option-looking words and over-long values, sent to the real
// agent (CSYNC/1 with a valid MAC, and legacy) and written into cpe-capture configs. Every one is
// refused before any process or file is touched: a spawn hook inside each binary records every
// child process (none after the refusals; a legitimate CAPTURE shows the hook works), no file
// appears outside the capture dir (each hostile name carries a marker that is searched for), and
// nothing new appears inside it.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { computeMac, encodeSpecWire, formatLegacyRequest, formatRequest, newRequestId, type CaptureSpec } from "@capsync/protocol";
import { TEST_KEY, TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { CPE_CLI } from "../helpers/cli-proc.js";
import { ConfigFileError, parseConfigText } from "../../packages/cpe-capture/src/config/loader.js";
import { isTcpdumpSpawn, processesMatching, tcpdumpArgv, tcpdumpsFor } from "../helpers/procs.js";

const KEY = Buffer.from(TEST_KEY);
const MARK = `capsync-pwned-${randomBytes(4).toString("hex")}`;
const CPE = (dev: string) => `CPE_device_${dev}_2026-11-23T10.00.00.000000.pcap`;

/** Device values an attacker would try; each names MARK so a file or process it caused can be found. */
const HOSTILE_DEVICES = [
  `127.0.0.1;touch /tmp/${MARK}`,
  `127.0.0.1$(touch /tmp/${MARK})`,
  `\`touch /tmp/${MARK}\``,
  `127.0.0.1|touch /tmp/${MARK}`,
  `127.0.0.1&&touch /tmp/${MARK}`,
  `127.0.0.1\ntouch /tmp/${MARK}`,
  `127.0.0.1\0${MARK}`,
  `-w/tmp/${MARK}`,
  `--relinquish-privileges=${MARK}`,
  `../../tmp/${MARK}`,
  `fe80::1%lo;${MARK}`,
  `[127.0.0.1]`,
  `127.0.0.1\t${MARK}`,
  `127.0.0.${"1".repeat(300)}`,
  `${MARK}.example.net`,
];
/** STOP file names: every one would leave the capture dir, hit a control character or be too long. */
const HOSTILE_FILES = [
  `../${MARK}.pcap`,
  `../../../tmp/${MARK}.pcap`,
  `/tmp/${MARK}.pcap`,
  `..`,
  `.`,
  `a/../../${MARK}`,
  `${MARK}\0.pcap`,
  `${MARK}\n.pcap`,
  `${MARK};touch /tmp/${MARK}`,
  `$(touch /tmp/${MARK}).pcap`,
  `${MARK}.pcap|id`,
  `x`.repeat(201),
  `..\\${MARK}.pcap`,
  `${MARK}..pcap`,
];
const HOSTILE_SPECS: unknown[] = [
  { filter: { src: `192.0.2.1 or host 10.0.0.1; touch /tmp/${MARK}` } },
  { filter: { dst: `$(touch /tmp/${MARK})` } },
  { filter: { protocol: `udp; touch /tmp/${MARK}` } },
  { filter: { protocol: "tcp", dport: "22 or 1=1" } },
  { interfaces: [`eth0;touch /tmp/${MARK}`] },
  { interfaces: [`-w/tmp/${MARK}`] },
  { vrf: `$(touch /tmp/${MARK})` },
  { snaplen: "64 -w /tmp/x" },
  { limits: { ringFiles: "2 -C 1" } },
  { extra: `-Z root` },
];

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

function spawnHook(dir: string): { env: Record<string, string>; entries: () => { name: string; file: string; args: string[] }[] } {
  const hook = join(dir, "spawn-hook.mjs");
  writeFileSync(hook, SPAWN_HOOK);
  const log = join(dir, "spawns.jsonl");
  writeFileSync(log, "");
  return {
    env: { NODE_OPTIONS: `--import=${pathToFileURL(hook).href}`, CAPSYNC_SPAWN_LOG: log },
    entries: () =>
      readFileSync(log, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { name: string; file: string; args: string[] }),
  };
}

async function startHookedAgent(args: string[]): Promise<{ agent: AgentProc; spawns: () => { name: string; file: string; args: string[] }[] }> {
  const hook = spawnHook(tempDir("capsync-inject-hook-"));
  const saved = { NODE_OPTIONS: process.env.NODE_OPTIONS, CAPSYNC_SPAWN_LOG: process.env.CAPSYNC_SPAWN_LOG };
  Object.assign(process.env, hook.env);
  let started: Promise<AgentProc>;
  try {
    started = startAgent(args);
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return { agent: await started, spawns: hook.entries };
}

/** Every path under `roots` (a few levels deep) whose name holds the marker. */
function markerHits(roots: string[]): string[] {
  const hits: string[] = [];
  const walk = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      if (n.includes(MARK)) hits.push(p);
      if (depth > 0 && p !== "/proc" && p !== "/sys") {
        try {
          walk(p, depth - 1);
        } catch {
          /* not a dir */
        }
      }
    }
  };
  for (const r of roots) walk(r, 2);
  return hits;
}

const markerProcesses = () => processesMatching((a) => a.some((x) => x.includes(MARK)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A v1 request with any fields, signed with the agent's key (formatRequest refuses nothing, but checks the size). */
function signed(fields: string[]): Buffer {
  const body = ["CSYNC/1", "REQ", newRequestId(), String(Date.now()), ...fields].join(" ");
  return Buffer.from(`${body} mac=${computeMac(KEY, body)}`);
}

describe("hostile values sent to the real agent (CSYNC/1, valid MAC)", () => {
  let agent: AgentProc;
  let spawns: () => { name: string; file: string; args: string[] }[];
  let peer: TestPeer;

  beforeAll(async () => {
    ({ agent, spawns } = await startHookedAgent(["--key-file", writeKey(tempDir("capsync-inject-key-")), "--interface", "lo"]));
    peer = await TestPeer.open();
    // The log file appears with the first line written (asynchronously): wait for it, so the
    // listings below compare what the hostile requests could have created.
    for (let i = 0; i < 200 && !existsSync(join(agent.dir, "server-capture.log")); i++) await sleep(10);
  });
  afterAll(async () => {
    peer?.close();
    await agent?.stop();
  });

  it("CAPTURE, VERIFY, REGISTER and STOP with hostile devices: dropped unanswered, nothing spawned or written", async () => {
    const spawnsBefore = spawns().length;
    const files = readdirSync(agent.dir).sort();
    let sent = 0;
    for (const dev of HOSTILE_DEVICES) {
      for (const fields of [["CAPTURE", dev], ["VERIFY", dev], ["REGISTER", dev], ["STOP", dev, CPE("127.0.0.1")]]) {
        const b = signed(fields);
        peer.send(b, agent.port);
        sent++;
      }
    }
    const ping = await peer.request(agent.port, { verb: "PING" });
    await sleep(200);
    // The PING's answer is the only one: the hostile requests were dropped, not answered.
    expect(peer.received.filter((b) => !b.toString().includes(ping.final.id))).toHaveLength(0);
    expect(spawns().slice(spawnsBefore)).toEqual([]);
    expect(markerProcesses()).toEqual([]);
    expect(markerHits(["/tmp", agent.dir, "/"])).toEqual([]);
    expect(readdirSync(agent.dir).sort()).toEqual(files);
    expect(readdirSync(join(agent.dir, ".incoming"))).toEqual([]);
    expect(sent).toBe(HOSTILE_DEVICES.length * 4);
  });

  it("STOP of a running capture with hostile file names: dropped; the capture keeps running and a proper STOP renames inside the dir", async () => {
    const dev = "127.0.0.81";
    const cap = await peer.request(agent.port, { verb: "CAPTURE", device: dev });
    expect(cap.final.code).toBe(200);
    const tcpdumpSpawns = spawns().filter(isTcpdumpSpawn).map(tcpdumpArgv);
    expect(tcpdumpSpawns.length).toBeGreaterThan(0); // the hook does see spawns
    // The argument array is what the agent built: the device is one word after "host", never a shell line.
    expect(tcpdumpSpawns.at(-1)!.args.slice(-2)).toEqual(["host", dev]);
    const spawnsBefore = spawns().length;
    const before = peer.received.length;
    for (const f of HOSTILE_FILES) peer.send(signed(["STOP", dev, f]), agent.port);
    await sleep(300);
    expect(peer.received.length).toBe(before);
    expect(tcpdumpsFor(dev)).toHaveLength(1);
    const stop = await peer.request(agent.port, { verb: "STOP", device: dev, filename: CPE(dev) });
    expect(stop.final.code).toBe(200);
    expect(stop.final.details.file).toBe(`OVOC_device_${dev}_2026-11-23T10.00.00.000000-0.pcap`);
    expect(existsSync(join(agent.dir, stop.final.details.file!))).toBe(true);
    expect(spawns().slice(spawnsBefore)).toEqual([]);
    expect(markerHits(["/tmp", agent.dir, "/"])).toEqual([]);
  });

  it("CAPTURE spec= with hostile filters, interfaces, VRF and limits: 400, no tcpdump", async () => {
    const spawnsBefore = spawns().length;
    const codes: string[] = [];
    for (const [i, spec] of HOSTILE_SPECS.entries()) {
      const dev = `127.0.0.${90 + i}`;
      const wire = Buffer.from(JSON.stringify(spec)).toString("base64url");
      const r = await peer.request(agent.port, { verb: "CAPTURE", device: dev, spec: wire });
      codes.push(`${r.final.code} ${r.final.details.reason ?? ""}`);
      expect(r.final.code, JSON.stringify(spec)).toBe(400);
      expect(tcpdumpsFor(dev)).toHaveLength(0);
    }
    // A well-formed spec still works (so the 400s are about the values).
    const ok: CaptureSpec = { filter: { protocol: "udp", dport: 5060 } };
    const good = await peer.request(agent.port, { verb: "CAPTURE", device: "127.0.0.99", spec: encodeSpecWire(ok) });
    expect(good.final.code).toBe(200);
    await peer.request(agent.port, { verb: "STOP", device: "127.0.0.99", filename: CPE("127.0.0.99") });
    expect(spawns().slice(spawnsBefore).filter((s) => !s.args.includes("127.0.0.99"))).toEqual([]);
    expect(markerHits(["/tmp", agent.dir])).toEqual([]);
    console.log(`hostile specs: ${codes.join(", ")}`);
  });

  it("datagrams over 1,200 bytes and with NUL/newline framing tricks are dropped", async () => {
    const spawnsBefore = spawns().length;
    const before = peer.received.length;
    const long = Buffer.concat([signed(["CAPTURE", "127.0.0.1"]), Buffer.alloc(2000, 0x41)]);
    peer.send(long, agent.port);
    const withNul = formatRequest({ id: newRequestId(), ts: Date.now(), verb: "CAPTURE", device: "127.0.0.82" }, KEY);
    peer.send(Buffer.concat([withNul.subarray(0, 40), Buffer.from([0]), withNul.subarray(40)]), agent.port);
    peer.send(Buffer.concat([withNul, Buffer.from("\nCSYNC/1 REQ 0 0 CAPTURE 127.0.0.83")]), agent.port);
    await sleep(300);
    expect(peer.received.length).toBe(before);
    expect(spawns().slice(spawnsBefore)).toEqual([]);
    expect(tcpdumpsFor("127.0.0.82")).toHaveLength(0);
    expect(tcpdumpsFor("127.0.0.83")).toHaveLength(0);
  });
});

describe("hostile values sent to a legacy-mode agent", () => {
  it("text requests with hostile devices and file names: dropped, nothing spawned or written", async () => {
    const { agent, spawns } = await startHookedAgent(["--legacy", "--interface", "lo", "--allow", "127.0.0.1"]);
    const peer = await TestPeer.open();
    try {
      const dev = "127.0.0.84";
      peer.send(formatLegacyRequest({ verb: "CAPTURE", device: dev }), agent.port);
      await peer.waitFor((all) => (all.some((b) => b.toString() === `200 OK ${dev} CAPTURE`) ? true : undefined));
      const spawnsBefore = spawns().length;
      const before = peer.received.length;
      for (const d of HOSTILE_DEVICES) for (const verb of ["CAPTURE", "VERIFY", "REGISTER"]) peer.send(Buffer.from(`${verb} ${d}`), agent.port);
      for (const f of HOSTILE_FILES) peer.send(Buffer.from(`STOP ${dev} ${f}`), agent.port);
      peer.send(Buffer.from(`CAPTURE ${dev} ${dev}`), agent.port);
      await sleep(400);
      expect(peer.received.length).toBe(before);
      expect(spawns().slice(spawnsBefore)).toEqual([]);
      expect(tcpdumpsFor(dev)).toHaveLength(1);
      expect(markerHits(["/tmp", agent.dir, "/"])).toEqual([]);
      peer.send(formatLegacyRequest({ verb: "STOP", device: dev, filename: CPE(dev) }), agent.port);
      await peer.waitFor((all) => (all.some((b) => b.toString() === `200 OK ${dev} STOP`) ? true : undefined));
      expect(readdirSync(agent.dir).filter((f) => f.endsWith(".pcap"))).toEqual([`OVOC_device_${dev}_2026-11-23T10.00.00.000000-0.pcap`]);
    } finally {
      peer.close();
      await agent.stop();
    }
  });
});

describe("hostile values in cpe-capture configs", () => {
  let work: string;
  let hook: ReturnType<typeof spawnHook>;
  beforeAll(() => {
    work = tempDir("capsync-inject-cfg-");
    writeKey(work);
    hook = spawnHook(work);
  });

  /** Run the real CLI asynchronously (the test process must stay free), with the spawn hook loaded. */
  function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CPE_CLI, ...args], { cwd: work, env: { ...process.env, ...hook.env, SECRET_PW: "Inject-Pw-1" }, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("exit", (code) => resolve({ code, stdout, stderr }));
    });
  }

  const device = (over: Record<string, unknown>) => ({
    address: "127.0.0.85",
    type: "msbr",
    interfaces: ["eth-wan"],
    username: "Admin",
    password: { env: "SECRET_PW" },
    agents: ["127.0.0.1:20001"],
    ...over,
  });
  const fieldPattern = (field: string) => new RegExp(field === "capture" ? "devices\\[0\\]\\.(capture|interfaces)" : `devices\\[0\\]\\.${field}`);
  const CASES: { field: string; device: Record<string, unknown>; top?: Record<string, unknown> }[] = [
    // (`<marker>.example.net` is a fine host name for a device; it is only hostile where an IP is required.)
    ...HOSTILE_DEVICES.filter((a) => !a.endsWith(".example.net")).map((a) => ({ field: "address", device: device({ address: a }) })),
    ...HOSTILE_DEVICES.map((a) => ({ field: "agents", device: device({ agents: [`${a}:20001`] }) })),
    ...[`eth-wan;touch /tmp/${MARK}`, `eth-wan\ndebug capture data physical stop`, `$(touch /tmp/${MARK})`, "-w", "../eth-wan"].map((i) => ({ field: "interfaces", device: device({ interfaces: [i] }) })),
    ...[`Gi1;touch /tmp/${MARK}`, `Gi1\nreload`, `Gi1 | include x`, "x".repeat(65)].map((i) => ({ field: "interfaces", device: device({ type: "iosxe", interfaces: [i] }) })),
    ...[`../../tmp/${MARK}`, `${MARK}/x`, `a\nb`, `a;touch /tmp/${MARK}`, "x".repeat(65)].map((n) => ({ field: "name", device: device({ name: n }) })),
    // The device's own `interfaces` would override the capture section's, so leave it out here.
    ...HOSTILE_SPECS.slice(0, 7).map((spec) => ({ field: "capture", device: device({ type: "iosxe", interfaces: undefined, capture: spec }) })),
    { field: "password", device: device({ password: { env: `X;touch /tmp/${MARK}` } }) },
    { field: "tls", device: device({ tls: `insecure;touch /tmp/${MARK}` }) },
    { field: "restPort", device: device({ restPort: "443;id" }) },
  ];

  it(`${CASES.length} configs, each with one hostile value, are refused by the loader naming the field`, () => {
    for (const c of CASES) {
      const text = JSON.stringify({ output: "./runs", agents: { keyFile: "./agent.key" }, devices: [c.device] });
      let msg = "";
      try {
        parseConfigText(text, { file: "run.json", baseDir: work });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigFileError);
        msg = (e as Error).message;
      }
      expect(msg, `${c.field} ${JSON.stringify(c.device[c.field])}`).toMatch(fieldPattern(c.field));
    }
  });

  it("the real CLI on one config per kind of field: exit 2 before anything starts — no process, no run folder, no file", async () => {
    // Each CLI start costs ~0.7 s, so one config per kind of field (the loader test above covers every value).
    const kinds = new Map<string, (typeof CASES)[number]>();
    for (const c of CASES) if (["address", "agents", "interfaces", "name", "capture"].includes(c.field) && !kinds.has(c.field)) kinds.set(c.field, c);
    const picked = [...kinds.values()];
    const outcomes: string[] = [];
    for (const [i, c] of picked.entries()) {
      const dir = join(work, `case${i}`);
      mkdirSync(dir);
      const cfg = join(dir, "run.json");
      writeFileSync(cfg, JSON.stringify({ output: join(dir, "runs"), agents: { keyFile: join(work, "agent.key") }, devices: [c.device] }, null, 2));
      for (const cmd of i === 0 ? ["validate", "run"] : ["run"]) {
        const before = hook.entries().length;
        const r = await cli([cmd, "--config", cfg]);
        outcomes.push(`${cmd} ${c.field}: ${r.code}`);
        expect(r.code, `${cmd} ${c.field} ${JSON.stringify(c.device[c.field])}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(fieldPattern(c.field));
        expect(hook.entries().slice(before)).toEqual([]);
        expect(existsSync(join(dir, "runs"))).toBe(false);
      }
    }
    expect(markerHits(["/tmp", work, "/"])).toEqual([]);
    expect(markerProcesses()).toEqual([]);
    console.log(`config injection: ${CASES.length} configs refused in-process, ${outcomes.length} CLI runs exit 2 (${[...kinds.keys()].join(" ")})`);
  });
});
