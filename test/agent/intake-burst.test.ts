// A fleet-wide STOP at one real agent: 500 devices capturing (--capture-mode shared, real tcpdump on
// lo), then 5,000 STOP datagrams in one burst from one socket (the 500 and 4,500 for devices without
// a capture). The agent must keep reading its socket while it works through the backlog: every
// datagram answered (200 with its file, or 404), none lost in its intake or in the kernel (the
// socket's drop counter), bounded in time.
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatRequest, newRequestId, parseAnswer, type V1Answer } from "@capsync/protocol";
import { TEST_KEY, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";

const KEY = Buffer.from(TEST_KEY);
let agent: AgentProc | undefined;
afterAll(async () => {
  await agent?.stop("SIGINT");
});

/** The kernel's drop counter of the UDP socket bound to `port` on 127.0.0.1 (/proc/net/udp). */
function socketDrops(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const line = readFileSync("/proc/net/udp", "utf8")
    .split("\n")
    .find((l) => l.trim().split(/\s+/)[1] === `0100007F:${hex}`);
  if (!line) throw new Error(`no UDP socket on 127.0.0.1:${port}`);
  return Number(line.trim().split(/\s+/).at(-1));
}

describe("agent intake under a fleet-wide STOP", () => {
  it("answers all 5,000 datagrams of a burst while 500 captures stop", async () => {
    const work = tempDir("capsync-burst-");
    agent = await startAgent(["--key-file", writeKey(work), "--interface", "lo", "--capture-mode", "shared", "--min-free-disk", "0", "--max-sessions", "1000", "--log-level", "warn"], { dir: join(work, "captures") });
    const sock = createSocket({ type: "udp4", recvBufferSize: 16 << 20 });
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    const finals = new Map<string, V1Answer>();
    let waiter: (() => void) | undefined;
    sock.on("message", (m) => {
      const a = parseAnswer(m, [KEY]);
      if (a.ok && a.value.code !== 100 && !finals.has(a.value.id)) {
        finals.set(a.value.id, a.value);
        waiter?.();
      }
    });
    const port = agent.port;
    const send = (verb: "CAPTURE" | "STOP", device: string) => {
      const id = newRequestId();
      sock.send(formatRequest({ id, ts: Date.now(), verb, device, ...(verb === "STOP" ? { filename: `CPE_device_${device}.pcap` } : {}) }, KEY), port, "127.0.0.1");
      return id;
    };
    const answered = (ids: string[], ms: number) =>
      new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`${ids.filter((id) => !finals.has(id)).length} of ${ids.length} unanswered after ${ms} ms (${ids.find((id) => !finals.has(id))}); agent drops ${socketDrops(port)}; ${readFileSync(join(work, "captures", "server-capture.log"), "utf8").slice(-1500)}`)), ms);
        waiter = () => {
          if (ids.every((id) => finals.has(id))) {
            clearTimeout(t);
            res();
          }
        };
        waiter();
      });
    try {
      const capturing = Array.from({ length: 500 }, (_, i) => `127.77.${Math.floor(i / 250)}.${(i % 250) + 1}`);
      const caps = capturing.map((d) => send("CAPTURE", d));
      await answered(caps, 30_000);
      expect(caps.filter((id) => finals.get(id)!.code !== 200)).toEqual([]);

      const dropsBefore = socketDrops(port);
      const t0 = performance.now();
      // Interleaved, as an alarm storm would send them: every tenth STOP is for a capturing device.
      const stops = Array.from({ length: 5000 }, (_, i) => (i % 10 === 0 ? capturing[i / 10]! : `127.78.${Math.floor(i / 250)}.${(i % 250) + 1}`)).map((d) => ({ d, id: send("STOP", d) }));
      const sendMs = performance.now() - t0;
      await answered(stops.map((s) => s.id), 45_000);
      const allMs = performance.now() - t0;
      const codes = stops.map((s) => [s.d, finals.get(s.id)!.code] as const);
      expect(codes.filter(([d, c]) => c !== (capturing.includes(d) ? 200 : 404))).toEqual([]);
      // Each capturing device's STOP names its own file.
      for (const s of stops.filter((x) => capturing.includes(x.d))) expect(finals.get(s.id)!.details.file).toBe(`OVOC_device_${s.d}-0.pcap`);
      expect(socketDrops(port) - dropsBefore).toBe(0);
      console.log(`[intake] 5,000 STOPs sent in ${sendMs.toFixed(0)} ms, all answered in ${allMs.toFixed(0)} ms (500 × 200, 4,500 × 404), 0 kernel drops`);
    } finally {
      sock.close();
    }
  }, 120_000);
});
