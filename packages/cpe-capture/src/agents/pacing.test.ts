// Pacing of a fleet's requests to one slow agent: STOPs beyond maxStopsInFlightPerAgent wait in
// arrival order, and every request's deadline counts from its own first send, not from the queue.
// The agent here is a real UDP socket on loopback with a bounded intake (it drops what does not fit,
// like server-capture's) that works through it at a fixed pace.
import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { type Code, type V1Request, formatAnswer, parseRequest } from "@capsync/protocol";
import { AgentClient, type AgentClientOptions } from "./client.js";

const KEY = Buffer.from("0123456789abcdef0123456789abcdef");

interface SlowAgentOptions {
  /** Requests the intake holds (received, not yet acknowledged); a new one beyond that is dropped. */
  intake: number;
  /** Requests taken from the intake per tick (10 ms). */
  perTick: number;
  /** Code of the first answer (100: acknowledged, final answer `finalAfterMs` later; else final at once). */
  first: Code;
  finalAfterMs?: number;
  /** The first copy of these requests (by arrival index) is lost, so only a resend gets in. */
  loseFirstCopy?: (index: number) => boolean;
}

/** An agent with a bounded intake, worked through `perTick` requests every 10 ms. */
class SlowAgent {
  readonly order: string[] = [];
  /** Devices whose first copy was lost. */
  readonly lostDevices: string[] = [];
  readonly drops = { full: 0, lost: 0 };
  maxIntake = 0;
  private readonly intake: { r: V1Request; port: number; address: string }[] = [];
  private readonly seen = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly sock: dgram.Socket,
    private readonly o: SlowAgentOptions,
  ) {
    sock.on("message", (buf, rinfo) => this.onMessage(buf, rinfo));
    this.timer = setInterval(() => this.work(), 10);
  }

  static async start(o: SlowAgentOptions): Promise<SlowAgent> {
    const sock = dgram.createSocket({ type: "udp4", recvBufferSize: 8 << 20 });
    await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", resolve));
    const a = new SlowAgent(sock, o);
    agents.push(a);
    return a;
  }

  get endpoint() {
    return { host: "127.0.0.1", port: this.sock.address().port };
  }

  private onMessage(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    const p = parseRequest(buf, { keys: [KEY] });
    if (!p.ok) throw new Error(`slow agent got a bad request: ${p.message}`);
    const r = p.value;
    if (this.seen.has(r.id)) {
      // A resend (our answer was lost, or it came before we answered): the last answer again, as server-capture does.
      const last = this.answered.get(r.id);
      if (last && !this.closed) this.sock.send(last, rinfo.port, rinfo.address);
      return;
    }
    if (this.o.loseFirstCopy?.(this.order.length + this.drops.lost) && !this.lost.has(r.id)) {
      this.lost.add(r.id);
      this.lostDevices.push(r.device!);
      this.drops.lost++;
      return;
    }
    if (this.intake.length >= this.o.intake) {
      this.drops.full++;
      return;
    }
    this.seen.add(r.id);
    this.order.push(r.device!);
    this.intake.push({ r, port: rinfo.port, address: rinfo.address });
    this.maxIntake = Math.max(this.maxIntake, this.intake.length);
  }
  private readonly lost = new Set<string>();
  private readonly answered = new Map<string, Buffer>();

  private work(): void {
    for (const { r, port, address } of this.intake.splice(0, this.o.perTick)) {
      const answer = (code: Code) => {
        if (this.closed) return;
        const buf = formatAnswer({ id: r.id, ts: Date.now(), code, verb: r.verb, device: r.device ?? null, details: {} }, KEY);
        this.answered.set(r.id, buf);
        this.sock.send(buf, port, address);
      };
      answer(this.o.first);
      if (this.o.first === 100) setTimeout(() => answer(200), this.o.finalAfterMs ?? 0);
    }
  }

  private closed = false;
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.sock.close();
  }
}

const agents: SlowAgent[] = [];
const clients: AgentClient[] = [];
async function open(opts: Partial<AgentClientOptions>): Promise<AgentClient> {
  const c = await AgentClient.open({ mode: "v1", key: KEY, ...opts } as AgentClientOptions);
  clients.push(c);
  return c;
}
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const a of agents.splice(0)) a.close();
});

const devices = (n: number) => Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

describe("agent client pacing", () => {
  it("3,000 STOPs to an agent holding 256: all answered, never 256 unacknowledged at once, in arrival order", async () => {
    // 25 acknowledged per 10 ms: the 3,000th STOP leaves over a second after the first. Every
    // 97th STOP's first copy is lost on the way, so only a resend gets it in. Default timing and
    // backoff (8 s to the first answer).
    const agent = await SlowAgent.start({ intake: 256, perTick: 50, first: 100, finalAfterMs: 20, loseFirstCopy: (i) => i % 97 === 5 });
    const c = await open({ maxInFlightPerAgent: 64, maxStopsInFlightPerAgent: 256 });
    const list = devices(3000);
    const answers = await Promise.all(list.map((device) => c.request(agent.endpoint, { verb: "STOP", device, filename: "x.pcap" })));
    expect(answers.filter((a) => a.code !== 200)).toEqual([]);
    expect(c.stats().timeouts).toBe(0);
    // Never more than the cap unacknowledged: nothing arrived at a full intake.
    expect(agent.drops.full).toBe(0);
    expect(agent.maxIntake).toBeLessThanOrEqual(256);
    expect(agent.order).toHaveLength(3000);
    // The lost ones were resent; everything else arrived in the order it was asked for.
    expect(agent.lostDevices.length).toBeGreaterThan(20);
    const lost = new Set(agent.lostDevices);
    const byDevice = new Map(answers.map((a) => [a.device, a]));
    expect(agent.lostDevices.filter((d) => byDevice.get(d)!.tries < 2)).toEqual([]);
    expect(agent.order.filter((d) => !lost.has(d))).toEqual(list.filter((d) => !lost.has(d)));
    expect(Math.max(...answers.map((a) => a.queuedMs))).toBeGreaterThan(500);
  });

  it("CAPTUREs that waited longer than their deadline in our own queue still get answered", async () => {
    // 4 in flight, each answered 200 within one 10 ms tick: 200 CAPTUREs take ≥ 500 ms, the deadline is 150 ms.
    const agent = await SlowAgent.start({ intake: 4, perTick: 4, first: 200 });
    const c = await open({ maxInFlightPerAgent: 4, timing: { CAPTURE: { deadlineMs: 150 } } });
    const list = devices(200);
    const answers = await Promise.all(list.map((device) => c.request(agent.endpoint, { verb: "CAPTURE", device })));
    expect(answers.every((a) => a.code === 200 && a.tries === 1)).toBe(true);
    expect(agent.order).toEqual(list);
    expect(agent.drops.full).toBe(0);
    expect(Math.max(...answers.map((a) => a.queuedMs))).toBeGreaterThan(150);
  });

  it("a STOP still leaves at once while the agent holds fewer than its cap, ahead of queued CAPTUREs", async () => {
    // The agent never answers: 2 CAPTUREs fill maxInFlightPerAgent, more queue; a STOP does not.
    const agent = await SlowAgent.start({ intake: 100, perTick: 0, first: 200 });
    const c = await open({ maxInFlightPerAgent: 2, maxStopsInFlightPerAgent: 4 });
    const pending = devices(4).map((device) => c.request(agent.endpoint, { verb: "CAPTURE", device }, { deadlineMs: 300 }).catch((e: Error) => e));
    await new Promise((r) => setTimeout(r, 20));
    let sent = 0;
    const stops = ["192.0.2.1", "192.0.2.2", "192.0.2.3"].map((device) =>
      c.request(agent.endpoint, { verb: "STOP", device, filename: "x.pcap" }, { deadlineMs: 300, onSend: () => sent++ }).catch((e: Error) => e),
    );
    // Synchronously: 2 CAPTUREs + 2 STOPs reach the cap of 4; the third STOP waits.
    expect(sent).toBe(2);
    await Promise.all([...pending, ...stops]);
    // The waiting STOP went before the two queued CAPTUREs once the first slots came free.
    expect(agent.order).toEqual(["10.0.0.0", "10.0.0.1", "192.0.2.1", "192.0.2.2", "192.0.2.3", "10.0.0.2", "10.0.0.3"]);
  });
  it("resends a request the agent answered 503 overload (intake full), same id, until it is answered", async () => {
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", resolve));
    const ids: string[] = [];
    sock.on("message", (buf, rinfo) => {
      const p = parseRequest(buf, { keys: [KEY] });
      if (!p.ok) throw new Error(p.message);
      const r = p.value;
      ids.push(r.id);
      const overload = ids.length <= 2;
      const details: Record<string, string> = overload ? { reason: "overload", msg: "intake full: 16384 requests queued; retry" } : {};
      sock.send(formatAnswer({ id: r.id, ts: Date.now(), code: overload ? 503 : 200, verb: r.verb, device: r.device ?? null, details }, KEY), rinfo.port, rinfo.address);
    });
    try {
      const c = await open({ backoff: { initialMs: 50 } });
      const a = await c.request({ host: "127.0.0.1", port: sock.address().port }, { verb: "CAPTURE", device: "192.0.2.9" });
      expect(a.code).toBe(200);
      expect(a.tries).toBe(3);
      expect(new Set(ids).size).toBe(1);
      expect(c.stats().overloads).toBe(2);
    } finally {
      sock.close();
    }
  });
  it("halves an agent's window after 503 overload, and waits past the deadline for an agent that answers others", async () => {
    // The agent answers the first STOP 503 overload, then 200 to its resend: the window (512) is
    // halved, so of 300 more STOPs 256 leave at once. It then acknowledges those one every 5 ms, but never 10.0.0.0's,
    // and stops answering at all 1.5 s later: 10.0.0.0's STOP (deadline 300 ms) is not failed while
    // the agent answers others, and fails about 1 s after it went quiet.
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", resolve));
    let quietAt = Infinity;
    let overloaded = false;
    let nextAt = 0;
    const answered = new Set<string>();
    sock.on("message", (buf, rinfo) => {
      const p = parseRequest(buf, { keys: [KEY] });
      if (!p.ok) throw new Error(p.message);
      const r = p.value;
      const send = (code: Code, details: Record<string, string> = {}) => sock.send(formatAnswer({ id: r.id, ts: Date.now(), code, verb: r.verb, device: r.device ?? null, details }, KEY), rinfo.port, rinfo.address);
      if (r.device === "192.0.2.1" && overloaded) return void send(200);
      if (answered.has(r.id) || r.device === "10.0.0.0") return;
      answered.add(r.id);
      if (r.device === "192.0.2.1") {
        overloaded = true;
        send(503, { reason: "overload", msg: "intake full; retry" });
        answered.delete(r.id);
        return;
      }
      nextAt = Math.max(performance.now(), nextAt) + 5;
      if (nextAt < quietAt) setTimeout(() => send(100), nextAt - performance.now());
    });
    const to = { host: "127.0.0.1", port: sock.address().port };
    try {
      const c = await open({ maxStopsInFlightPerAgent: 512, backoff: { initialMs: 200 } });
      expect((await c.request(to, { verb: "STOP", device: "192.0.2.1", filename: "x.pcap" })).code).toBe(200);
      expect(c.stats().overloads).toBe(1);
      let sent = 0;
      const t0 = performance.now();
      quietAt = t0 + 1_500;
      const stops = devices(300).map((device) =>
        c.request(to, { verb: "STOP", device, filename: "x.pcap" }, { deadlineMs: 300, tryingDeadlineMs: 60_000, onSend: (i) => void (i.attempt === 1 && sent++) }).catch((e: Error) => e),
      );
      expect(sent).toBe(256);
      const first = (await stops[0]) as Error;
      const waited = performance.now() - t0;
      expect(first.message).toMatch(/^agent 127\.0\.0\.1:\d+ did not answer STOP for 10\.0\.0\.0 after \d+ tr(y|ies) in [\d.]+ s \(a slow agent, answering others\)$/);
      expect(waited).toBeGreaterThan(1_500);
      expect(waited).toBeLessThan(10_000);
      c.close();
      await Promise.all(stops);
    } finally {
      sock.close();
    }
  });
});
