// Issue 19 item 4: durable state. The state file is fsynced (file, then directory) around its
// rename (seen with strace on the real agent); the agent's state writer killed mid-write 50 times
// never leaves it torn, and the real agent killed amid bursts always restarts knowing every tcpdump
// it left; a torn or empty file at start-up is reported by name and the running capture is recovered
// from the process table (its tcpdump's marker) and adopted, and STOP still returns its file.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatRequest, newRequestId } from "@capsync/protocol";
import { ROOT, TEST_KEY, TestPeer, tempDir, writeKey, udpSink, type AgentProc } from "../helpers/agent-proc.js";
import { tcpdumpsUnder } from "../helpers/procs.js";
import { STATE_FILE, agentOn, durableFixture, logOf, payloads, running, stateOf, traffic, until } from "../helpers/durability.js";

const DEVS = ["127.0.0.84", "127.0.0.85"];
const { work, agent, peer, cleanup } = durableFixture("capsync-durable-state-", DEVS);

afterEach(cleanup);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("durable state", () => {
  it("the state file is written to a temp file, fsynced, renamed into place and its directory fsynced (strace)", async () => {
    const dir = join(work, "fsync");
    const a = await agent(dir);
    const trace = join(work, "strace.txt");
    // -f: the agent writes its state from libuv's thread pool (the tcpdump it forks is traced too, and matches nothing below).
    const st = spawn("strace", ["-qq", "-f", "-p", String(a.child.pid), "-o", trace, "-e", "trace=openat,fsync,fdatasync,rename,renameat,renameat2"], { stdio: ["ignore", "ignore", "pipe"] });
    try {
      await until("strace attached", () => existsSync(trace), 5000);
      await new Promise((r) => setTimeout(r, 500));
      const p = await peer();
      const cap = await p.request(a.port, { verb: "CAPTURE", device: DEVS[0]! });
      expect(cap.final.code).toBe(200);
    } finally {
      st.kill("SIGINT");
      await new Promise((r) => st.once("exit", r));
    }
    // "<pid> call" per line; a call another thread's interrupted is "<unfinished ...>" then "<... resumed>": joined again.
    const unfinished = new Map<string, string>();
    const lines = readFileSync(trace, "utf8").split("\n").flatMap((l) => {
      const [, pid = "", call = l] = /^(\d+) +(.*)$/.exec(l) ?? [];
      if (call.endsWith("<unfinished ...>")) {
        unfinished.set(pid, call.slice(0, -"<unfinished ...>".length).trimEnd());
        return [];
      }
      const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(call);
      return [resumed ? `${unfinished.get(pid) ?? ""}${resumed[1]}` : call];
    });
    const statePath = join(dir, STATE_FILE);
    // openat(.., "<state>.<pid>.tmp", ...) = N, fsync(N), rename(tmp, state), openat(.., "<dir>", ...) = M, fsync(M)
    const open = lines.findIndex((l) => l.includes(`"${statePath}.`) && l.includes(".tmp\"") && /openat\(/.test(l) && / = \d+$/.test(l));
    expect(open, `no open of the temp file in:\n${lines.slice(0, 40).join("\n")}`).toBeGreaterThanOrEqual(0);
    const fd = / = (\d+)$/.exec(lines[open]!)![1];
    const rest = lines.slice(open);
    const fsyncFile = rest.findIndex((l) => new RegExp(`fsync\\(${fd}\\)\\s+= 0`).test(l));
    const rename = rest.findIndex((l) => /rename(at2?)?\(/.test(l) && l.includes(`"${statePath}"`));
    const openDir = rest.findIndex((l, i) => i > rename && /openat\(/.test(l) && l.includes(`"${dir}"`) && / = \d+$/.test(l));
    expect(fsyncFile).toBeGreaterThan(0);
    expect(rename).toBeGreaterThan(fsyncFile);
    expect(openDir).toBeGreaterThan(rename);
    const dfd = / = (\d+)$/.exec(rest[openDir]!)![1];
    expect(rest.slice(openDir).some((l) => new RegExp(`fsync\\(${dfd}\\)\\s+= 0`).test(l))).toBe(true);
  });

  it.each([
    ["empty", (path: string) => truncateSync(path, 0), "is empty (0 bytes)"],
    ["torn", (path: string) => writeFileSync(path, readFileSync(path, "utf8").slice(0, 150)), "is not valid JSON (150 bytes: torn by a crash or power cut?)"],
  ])("a state file found %s at start-up is reported by name; the running capture is recovered from the process table, adopted, and STOP returns its file", async (name, damage, words) => {
    const dir = join(work, `damaged-${name}`);
    const dev = DEVS[1]!;
    const sink = await udpSink(dev);
    try {
      const first = await agent(dir);
      const p = await peer();
      const cap = await p.request(first.port, { verb: "CAPTURE", device: dev });
      expect(cap.final.code).toBe(200);
      const pid = Number(cap.final.details.pid);
      await traffic(dev, sink.port, "before", 20);
      first.child.kill("SIGKILL");
      await first.exited;
      const statePath = join(dir, STATE_FILE);
      damage(statePath);

      const second = await agent(dir);
      const log = logOf(dir);
      expect(log).toContain(`state file ${statePath} ${words}; kept as ${statePath}.bad-`);
      expect(log).toContain("recovering captures from the process table");
      expect(log).toContain(`adopted running tcpdump pid ${pid} for ${dev} after restart (found in the process table by its output ${cap.final.details.file}`);
      expect(readdirSync(dir).filter((f) => f.startsWith(`${STATE_FILE}.bad-`))).toHaveLength(1);
      expect(stateOf(dir).devices.find((d) => d.device === dev)?.session).toMatchObject({ state: "capturing", pid, tmpName: cap.final.details.file });
      // CAPTURE again is the running capture (idempotent), not a second tcpdump.
      const again = await p.request(second.port, { verb: "CAPTURE", device: dev });
      expect(again.final.details).toMatchObject({ existing: "1", file: cap.final.details.file });
      await traffic(dev, sink.port, "after", 20);
      const stop = await p.request(second.port, { verb: "STOP", device: dev, filename: `CPE_device_${dev}_2026-12-06T10.00.00.000000.pcap` });
      expect(stop.final.code, JSON.stringify(stop.final.details)).toBe(200);
      expect(stop.final.details.files).toBe(`OVOC_device_${dev}_2026-12-06T10.00.00.000000-0.pcap`);
      const got = payloads(join(dir, stop.final.details.files!), sink.port);
      expect(got).toEqual([...Array.from({ length: 20 }, (_, i) => `before-${i}`), ...Array.from({ length: 20 }, (_, i) => `after-${i}`)]);
      expect(running(pid)).toBe(false);
      expect(readdirSync(join(dir, ".incoming"))).toEqual([]);
    } finally {
      sink.close();
    }
  });

  it("the real agent SIGKILLed amid a burst of CAPTUREs and STOPs, 6 times: it always restarts, and every tcpdump of its dir is in the state file", async () => {
    const dir = join(work, "agent-killloop");
    const devs = ["127.0.0.91", "127.0.0.92", "127.0.0.93"];
    const k = Buffer.from(TEST_KEY);
    try {
      for (let i = 0; i < 6; i++) {
        const a = await agent(dir);
        const p = await peer();
        // A burst that makes the agent spawn, stop and rename, and write its state for each: not awaited.
        for (const [j, d] of devs.entries()) {
          const verb = (i + j) % 3 === 0 ? "STOP" : "CAPTURE";
          p.send(formatRequest({ id: newRequestId(), ts: Date.now(), verb, device: d, ...(verb === "STOP" ? { filename: `CPE_device_${d}_2026-12-06T10.00.0${i}.000000.pcap` } : {}) }, k), a.port);
        }
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 40)));
        a.child.kill("SIGKILL");
        await a.exited;
        const parsed = JSON.parse(readFileSync(join(dir, STATE_FILE), "utf8")) as { version: number };
        expect(parsed.version).toBe(1);
      }
      await agent(dir);
      // Every tcpdump running for this dir is a capturing session with that pid: none unknown, none twice.
      const st = stateOf(dir);
      let live = 0;
      for (const d of devs) {
        const pids = tcpdumpsUnder(d, dir).filter((t) => running(t.pid)).map((t) => t.pid);
        expect(pids.length, `${d}: ${pids.join(",")}`).toBeLessThanOrEqual(1);
        if (pids.length) expect(st.devices.find((x) => x.device === d)?.session).toMatchObject({ state: "capturing", pid: pids[0] });
        live += pids.length;
      }
      expect(live, "the kills left captures running to adopt").toBeGreaterThan(0);
      console.log(`[durability] agent SIGKILLed 6 times amid bursts: ${live} tcpdump(s) running at the end, each one a capturing session in the state file`);
    } finally {
      for (const d of devs) for (const t of tcpdumpsUnder(d, dir)) process.kill(t.pid, "SIGKILL");
    }
  });

  it("a state writer SIGKILLed at random moments, 50 times, never leaves the state file torn", async () => {
    // The agent's own StateStore (dist), flushing a growing state back to back: most of its time is
    // spent inside a write, so most kills land in one. 5 dirs at a time, 10 kills each.
    const script = `
      import { StateStore } from ${JSON.stringify(join(ROOT, "packages/server-capture/dist/state.js"))};
      const store = new StateStore(process.argv[1]);
      store.load();
      for (let i = 0; ; i++) {
        const d = store.upsert("10.0." + (i % 200 >> 8) + "." + (i % 200));
        d.lastRequest = "CAPTURE " + i;
        store.task(d.device, "capture", "ok", "x".repeat(i % 300));
        store.flush();
        if (i === 0) process.stdout.write("ready\\n");
      }`;
    let midWrite = 0;
    let kills = 0;
    const lane = async (n: number) => {
      const dir = join(work, `killloop-${n}`);
      mkdirSync(dir, { recursive: true });
      for (let k = 0; k < 10; k++) {
        const child: ChildProcess = spawn(process.execPath, ["--input-type=module", "-e", script, dir], { stdio: ["ignore", "pipe", "inherit"] });
        await new Promise<void>((r, j) => {
          child.stdout!.on("data", () => r());
          child.once("exit", (c) => j(new Error(`writer exited ${c}`)));
        });
        await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 60)));
        child.kill("SIGKILL");
        await new Promise((r) => child.once("exit", r));
        kills++;
        if (readdirSync(dir).some((f) => f.endsWith(".tmp"))) midWrite++;
        const parsed = JSON.parse(readFileSync(join(dir, STATE_FILE), "utf8")) as { version: number; devices: unknown[] };
        expect(parsed.version).toBe(1);
        expect(parsed.devices.length).toBeGreaterThan(0);
      }
    };
    await Promise.all([0, 1, 2, 3, 4].map(lane));
    expect(kills).toBe(50);
    // The kills did land inside writes (a temp file left behind), and the next load cleared them.
    expect(midWrite).toBeGreaterThanOrEqual(5);
    console.log(`[durability] state writer killed 50 times: ${midWrite} kills inside a write (temp file left); the state file parsed every time`);
  });
});
