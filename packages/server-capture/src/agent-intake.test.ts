// The agent's intake and group commit, in process: answers wait for the state write that holds their
// change (a slowed-down writer shows the order), bursts share writes, a burst beyond the intake is
// answered 503 overload (never silence), devices_info.json is right at the end of a burst and at
// shutdown. Real UDP on loopback, the bench's stand-in tcpdump (it writes an empty pcap).
import { createSocket, type Socket } from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger, DEVICES_INFO_FILE, devicesInfoText } from "@capsync/common";
import { formatRequest, newRequestId, parseAnswer, type V1Answer, type Verb } from "@capsync/protocol";
import { Agent, type AgentOptions } from "./agent.js";
import { agentDeviceInfo } from "./devices-info.js";
import { writeFileDurableAsync } from "./durable.js";
import type { DeviceRecord } from "./state.js";

const KEY = Buffer.from("intake-test-key-0123456789abcdef-XYZ");
const FAKE_TCPDUMP = resolve(import.meta.dirname, "../../../bench/lib/fake-bin/tcpdump");
const work = mkdtempSync(join(tmpdir(), "capsync-intake-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Written {
  at: number;
  devices: DeviceRecord[];
}

async function agentWith(extra: Partial<AgentOptions> = {}): Promise<Agent> {
  const dir = mkdtempSync(join(work, "agent-"));
  return Agent.start({
    listen: { address: "127.0.0.1", port: 0 },
    dir,
    keys: [KEY],
    legacy: false,
    allow: [],
    iface: "lo",
    maxSessions: 1000,
    maxDurationMs: 3_600_000,
    ringSizeMb: 1,
    ringFiles: 2,
    minFreeMb: 0,
    windowMs: 60_000,
    tcpdumpBinary: FAKE_TCPDUMP,
    log: createLogger({ console: false, level: "warn", file: join(dir, "agent.log"), fileMaxBytes: 0 }),
    ...extra,
  });
}

/** A client: requests by id, every answer kept with the moment it arrived. */
async function client(port: number): Promise<{ sock: Socket; send: (verb: Verb, device: string, filename?: string) => string; answers: Map<string, V1Answer[]>; finals: () => number; close: () => void }> {
  const sock = createSocket({ type: "udp4", recvBufferSize: 8 << 20 });
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  const answers = new Map<string, V1Answer[]>();
  let finals = 0;
  sock.on("message", (m) => {
    const a = parseAnswer(m, [KEY]);
    if (!a.ok) return;
    answers.set(a.value.id, [...(answers.get(a.value.id) ?? []), a.value]);
    if (a.value.code !== 100) finals++;
    onAnswer?.(a.value);
  });
  const send = (verb: Verb, device: string, filename?: string) => {
    const id = newRequestId();
    sock.send(formatRequest({ id, ts: Date.now(), verb, device, ...(filename ? { filename } : {}) }, KEY), port, "127.0.0.1");
    return id;
  };
  return { sock, send, answers, finals: () => finals, close: () => sock.close() };
}
let onAnswer: ((a: V1Answer) => void) | undefined;

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("agent intake and group commit", () => {
  it("every answer leaves after the state write that holds its change, and a burst shares writes", async () => {
    // The writer records each completed write (parsed) before it reports completion, 15 ms late.
    const written: Written[] = [];
    const agent = await agentWith({
      stateWriter: async (path, data, mayRename) => {
        await new Promise((r) => setTimeout(r, 15));
        await writeFileDurableAsync(path, data, mayRename);
        written.push({ at: performance.now(), devices: (JSON.parse(data) as { devices: DeviceRecord[] }).devices });
      },
    });
    const c = await client(agent.address().port);
    const violations: string[] = [];
    const last = () => new Map((written.at(-1)?.devices ?? []).map((d) => [d.device, d]));
    onAnswer = (a) => {
      const d = last().get(a.device ?? "");
      if (a.verb === "REGISTER" && a.code === 200 && d?.registration !== "active") violations.push(`REGISTER ${a.device} answered before 'active' was written`);
      if (a.verb === "CAPTURE" && d?.session?.pid === undefined) violations.push(`CAPTURE ${a.code} ${a.device} answered before its pid was written`);
      if (a.verb === "STOP" && a.code === 200 && (d?.session?.state !== "collected" || d.session.forFile !== `${a.device}.pcap`)) violations.push(`STOP ${a.device} answered before 'collected' was written`);
    };
    try {
      const devices = Array.from({ length: 60 }, (_, i) => `192.0.2.${i + 1}`);
      const writesBefore = written.length;
      const reg = devices.map((d) => c.send("REGISTER", d));
      await until("60 REGISTER answers", () => reg.every((id) => c.answers.get(id)?.some((a) => a.code !== 100)));
      // 60 requests at once, each promising a durable state: a handful of writes, not 60.
      expect(written.length - writesBefore).toBeLessThan(15);
      const caps = devices.slice(0, 20).map((d) => c.send("CAPTURE", d));
      await until("20 CAPTURE answers", () => caps.every((id) => c.answers.get(id)?.some((a) => a.code !== 100)));
      expect(caps.map((id) => c.answers.get(id)!.map((a) => a.code).join(","))).toEqual(Array(20).fill("100,200"));
      const stops = devices.slice(0, 20).map((d) => c.send("STOP", d, `${d}.pcap`));
      await until("20 STOP answers", () => stops.every((id) => c.answers.get(id)?.some((a) => a.code !== 100)));
      expect(stops.map((id) => c.answers.get(id)!.find((a) => a.code !== 100)!.code)).toEqual(Array(20).fill(200));
      expect(violations).toEqual([]);
    } finally {
      onAnswer = undefined;
      c.close();
      await agent.close();
    }
  });

  it("a burst beyond the intake gets 503 overload for what did not fit, never silence", async () => {
    const agent = await agentWith({ queueLimit: 8 });
    const c = await client(agent.address().port);
    try {
      // STOPs for devices without a capture: answered 404 at once when handled.
      const ids = Array.from({ length: 400 }, (_, i) => c.send("STOP", `198.51.100.${(i % 250) + 1}`, "x.pcap"));
      await until("400 final answers", () => c.finals() >= 400);
      const finals = ids.map((id) => (c.answers.get(id) ?? []).filter((a) => a.code !== 100));
      expect(finals.every((f) => f.length === 1)).toBe(true);
      const codes = finals.map((f) => f[0]!);
      const overload = codes.filter((a) => a.code === 503);
      expect(overload.length).toBeGreaterThan(0);
      expect(codes.filter((a) => a.code === 404).length + overload.length).toBe(400);
      expect(overload[0]!.details.reason).toBe("overload");
      expect(overload[0]!.details.msg).toMatch(/^intake full: \d+ requests queued \(limit 8, \d+ KiB of 32 MiB\); retry$/);
      expect(agent.counters.overloadAnswers).toBe(overload.length);
      // Nothing was remembered for them: the same request again is handled normally.
      const again = c.send("STOP", "198.51.100.1", "x.pcap");
      await until("the retry's answer", () => (c.answers.get(again) ?? []).some((a) => a.code !== 100));
      expect(c.answers.get(again)!.at(-1)!.code).toBe(404);
    } finally {
      c.close();
      await agent.close();
    }
  });

  it("devices_info.json catches up at the end of a burst and is exact at shutdown", async () => {
    const agent = await agentWith();
    const c = await client(agent.address().port);
    const dir = agent.opts.dir;
    const info = () => JSON.parse(readFileSync(join(dir, DEVICES_INFO_FILE), "utf8")) as { devices: { device: string; registration: string; lastRequest: string }[] };
    try {
      const unique = Array.from({ length: 250 }, (_, i) => `203.0.113.${i + 1}`);
      for (const d of unique) c.send("REGISTER", d);
      await until("the REGISTER answers", () => c.finals() >= unique.length);
      // A view, debounced (at most once a second while changes go on): it reaches the end state within ~1 s.
      await until("devices_info.json with every device registered", () => {
        try {
          const v = info();
          return v.devices.length === unique.length && v.devices.every((d) => d.registration === "active" && d.lastRequest === "REGISTER");
        } catch {
          return false;
        }
      }, 3_000);
      c.send("CAPTURE", unique[0]!);
      await until("the CAPTURE answer", () => c.finals() >= unique.length + 1);
    } finally {
      c.close();
      await agent.close();
    }
    // At shutdown: exactly what the full rendering of the state file's records gives.
    const state = JSON.parse(readFileSync(join(dir, "server-capture-state.json"), "utf8")) as { devices: DeviceRecord[] };
    expect(readFileSync(join(dir, DEVICES_INFO_FILE), "utf8")).toBe(devicesInfoText(state.devices.map(agentDeviceInfo), []));
    expect(info().devices[0]).toMatchObject({ lastRequest: "CAPTURE", state: "not active" });
  });
});
