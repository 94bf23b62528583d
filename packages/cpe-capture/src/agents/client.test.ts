import dgram from "node:dgram";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  AgentError,
  type Code,
  type V1Request,
  formatAnswer,
  formatLegacyAnswer,
  newRequestId,
  parseRequest,
} from "@capsync/protocol";
import { AgentClient, type AgentClientOptions, type AgentLogger } from "./client.js";

const KEY = Buffer.from("0123456789abcdef0123456789abcdef");
const OTHER_KEY = Buffer.from("fedcba9876543210fedcba9876543210");
const DEVICE = "192.0.2.7";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Reply = (msg: Buffer | string, delayMs?: number) => void;
type Handler = (buf: Buffer, reply: Reply, index: number) => void;

/** A scriptable agent on a real UDP socket: records every datagram, answers as the test says. */
class FakeAgent {
  readonly received: Buffer[] = [];
  private constructor(
    private readonly sock: dgram.Socket,
    readonly host: string,
    public handler: Handler,
  ) {}

  static async start(handler: Handler, host = "127.0.0.1"): Promise<FakeAgent> {
    const sock = dgram.createSocket({ type: host.includes(":") ? "udp6" : "udp4", recvBufferSize: 1 << 20 });
    await new Promise<void>((resolve) => sock.bind(0, host, resolve));
    const fake = new FakeAgent(sock, host, handler);
    sock.on("message", (buf, rinfo) => {
      fake.received.push(buf);
      const reply: Reply = (msg, delayMs = 0) => {
        const send = () => sock.send(typeof msg === "string" ? Buffer.from(msg) : msg, rinfo.port, rinfo.address);
        if (delayMs > 0) setTimeout(send, delayMs);
        else send();
      };
      fake.handler(buf, reply, fake.received.length - 1);
    });
    fakes.push(fake);
    return fake;
  }

  get endpoint() {
    return { host: this.host, port: this.sock.address().port };
  }
  get label() {
    return this.host.includes(":") ? `[${this.host}]:${this.endpoint.port}` : `${this.host}:${this.endpoint.port}`;
  }
  close() {
    this.sock.close();
  }
}

function req(buf: Buffer): V1Request {
  const r = parseRequest(buf, { keys: [KEY] });
  if (!r.ok) throw new Error(`fake agent got a bad request: ${r.message}`);
  return r.value;
}

function ans(r: V1Request, code: Code, details: Record<string, string> = {}, over: { key?: Buffer; id?: string; verb?: V1Request["verb"] } = {}): Buffer {
  return formatAnswer(
    { id: over.id ?? r.id, ts: Date.now(), code, verb: over.verb ?? r.verb, device: r.device ?? null, details },
    over.key ?? KEY,
  );
}

const fakes: FakeAgent[] = [];
const clients: AgentClient[] = [];
async function open(opts: Partial<AgentClientOptions> = {}): Promise<AgentClient> {
  const c = await AgentClient.open({ mode: "v1", key: KEY, ...opts } as AgentClientOptions);
  clients.push(c);
  return c;
}
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const f of fakes.splice(0)) f.close();
});

function recordingLog(): AgentLogger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (level: string) => (message: string, meta?: Record<string, unknown>) => lines.push(`${level} ${message} ${JSON.stringify(meta ?? {})}`);
  return { lines, debug: rec("debug"), info: rec("info"), warn: rec("warn") };
}

async function rejection(p: Promise<unknown>): Promise<AgentError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AgentError);
    return e as AgentError;
  }
  throw new Error("expected the request to fail");
}

describe("AgentClient v1", () => {
  it("happy path: 100 then 200, details decoded, timing recorded, late duplicate counted, key never logged", async () => {
    const fake = await FakeAgent.start((buf, reply) => {
      const r = req(buf);
      reply(ans(r, 100));
      reply(ans(r, 200, { file: "tmp_device_192.0.2.7_x.pcap", msg: "listening on eth0" }), 20);
      reply(ans(r, 200, { file: "tmp_device_192.0.2.7_x.pcap", msg: "listening on eth0" }), 40);
    });
    const log = recordingLog();
    const sends: number[] = [];
    const c = await open({ log, onSend: (i) => sends.push(i.at) });
    let trying = 0;
    const before = performance.now();
    const a = await c.request(fake.endpoint, { verb: "CAPTURE", device: DEVICE }, { onTrying: () => trying++ });
    expect(a).toMatchObject({ code: 200, verb: "CAPTURE", device: DEVICE, tries: 1, trying: true, agent: fake.label });
    expect(a.details).toEqual({ file: "tmp_device_192.0.2.7_x.pcap", msg: "listening on eth0" });
    expect(trying).toBe(1);
    expect(a.id).toMatch(/^[0-9a-f]{16}$/);
    expect(req(fake.received[0]!).id).toBe(a.id);
    expect(sends).toEqual([a.sentAt]);
    expect(a.sentAt).toBeGreaterThanOrEqual(before);
    expect(a.elapsedMs).toBeGreaterThan(0);
    await sleep(60);
    expect(c.stats()).toMatchObject({ requests: 1, datagramsSent: 1, resends: 0, trying: 1, answers: 1, late: 1 });
    expect(c.stats().dropped).toEqual({ badMac: 0, malformed: 0, unmatched: 0, mismatch: 0 });
    expect(log.lines.join("\n")).not.toContain(KEY.toString());
  });

  it("resends byte-identical datagrams with doubling backoff after drops", async () => {
    const at: number[] = [];
    const fake = await FakeAgent.start((buf, reply, i) => {
      at.push(performance.now());
      if (i < 3) return; // lose the first three
      reply(ans(req(buf), 200));
    });
    const c = await open({ backoff: { initialMs: 40, maxMs: 100 } });
    const a = await c.request(fake.endpoint, { verb: "STOP", device: DEVICE, filename: "CPE_device_192.0.2.7_2026-11-23T10.00.00.000000.pcap" });
    expect(a.code).toBe(200);
    expect(a.tries).toBe(4);
    expect(fake.received).toHaveLength(4);
    for (const b of fake.received) expect(b.equals(fake.received[0]!)).toBe(true);
    // Gaps 40, 80, 100 (capped); the one timer may batch a couple of ms early or run late, never much early.
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(36);
    expect(gaps[1]).toBeGreaterThanOrEqual(76);
    expect(gaps[2]).toBeGreaterThanOrEqual(96);
    expect(gaps[2]).toBeLessThan(180);
    expect(c.stats()).toMatchObject({ datagramsSent: 4, resends: 3 });
  });

  it("ignores an answer with a wrong MAC and counts it", async () => {
    const fake = await FakeAgent.start((buf, reply) => {
      const r = req(buf);
      reply(ans(r, 200, { which: "forged" }, { key: OTHER_KEY }));
      reply(ans(r, 200, { which: "real" }), 30);
    });
    const c = await open();
    const a = await c.request(fake.endpoint, { verb: "CAPTURE", device: DEVICE });
    expect(a.details).toEqual({ which: "real" });
    expect(c.stats().dropped).toMatchObject({ badMac: 1 });
  });

  it("ignores answers with an unknown id (counted) or the wrong verb (counted)", async () => {
    const fake = await FakeAgent.start((buf, reply) => {
      const r = req(buf);
      reply(ans(r, 200, { which: "stray" }, { id: newRequestId() }));
      reply(ans(r, 200, { which: "wrong-verb" }, { verb: "VERIFY" }));
      reply(ans(r, 503, { which: "real", reason: "disk-low" }), 30);
    });
    const c = await open();
    const a = await c.request(fake.endpoint, { verb: "CAPTURE", device: DEVICE });
    expect(a.code).toBe(503); // a refusal is an answer, not an exception
    expect(a.details).toEqual({ which: "real", reason: "disk-low" });
    expect(c.stats().dropped).toEqual({ badMac: 0, malformed: 0, unmatched: 1, mismatch: 1 });
  });

  it("fails at the deadline with the exact message", async () => {
    const fake = await FakeAgent.start(() => {});
    const c = await open();
    const t = performance.now();
    const e = await rejection(c.request(fake.endpoint, { verb: "CAPTURE", device: DEVICE }, { deadlineMs: 1000 }));
    expect(e.code).toBe("agent-timeout");
    // Sends at 0, 250, 750 ms; the next (1750) is past the deadline.
    expect(e.message).toBe(`agent ${fake.label} did not answer CAPTURE for 192.0.2.7 after 3 tries in 1 s`);
    expect(performance.now() - t).toBeGreaterThanOrEqual(990);
    expect(fake.received).toHaveLength(3);
    expect(c.stats()).toMatchObject({ timeouts: 1 });
  });

  it("a 100 stretches the wait past the deadline, and resends then become rare", async () => {
    const fake = await FakeAgent.start((buf, reply) => {
      const r = req(buf);
      reply(ans(r, 100));
      reply(ans(r, 200), 700);
    });
    const c = await open();
    const a = await c.request(fake.endpoint, { verb: "VERIFY", device: DEVICE }, { deadlineMs: 300, tryingDeadlineMs: 3000 });
    expect(a).toMatchObject({ code: 200, trying: true, tries: 1 });
    expect(a.elapsedMs).toBeGreaterThanOrEqual(690);
  });

  it("after a 100 the per-verb trying deadline bounds the wait (STOP configured)", async () => {
    const fake = await FakeAgent.start((buf, reply) => reply(ans(req(buf), 100)));
    const c = await open({ timing: { STOP: { deadlineMs: 200, tryingDeadlineMs: 500 } } });
    const e = await rejection(c.request(fake.endpoint, { verb: "STOP", device: DEVICE, filename: "x.pcap" }));
    expect(e.code).toBe("agent-timeout");
    expect(e.message).toBe(`agent ${fake.label} answered 100 Trying to STOP for 192.0.2.7 but sent no final answer after 1 try in 0.5 s`);
  });

  it("respects maxInFlightPerAgent and queues the rest in order", async () => {
    const inFlight = new Set<string>();
    let max = 0;
    const order: string[] = [];
    const fake = await FakeAgent.start((buf, reply) => {
      const r = req(buf);
      if (inFlight.has(r.id)) return;
      inFlight.add(r.id);
      order.push(r.device!);
      max = Math.max(max, inFlight.size);
      setTimeout(() => {
        inFlight.delete(r.id);
        reply(ans(r, 200));
      }, 25);
    });
    const c = await open({ maxInFlightPerAgent: 4 });
    const devices = Array.from({ length: 20 }, (_, i) => `192.0.2.${i + 1}`);
    const answers = await Promise.all(devices.map((device) => c.request(fake.endpoint, { verb: "CAPTURE", device })));
    expect(answers.map((a) => a.device)).toEqual(devices);
    expect(answers.every((a) => a.code === 200 && a.tries === 1)).toBe(true);
    expect(max).toBe(4);
    expect(order).toEqual(devices);
    expect(Math.max(...answers.map((a) => a.queuedMs))).toBeGreaterThan(50);
  });

  it("frees a request's slot when the agent acknowledges it with 100 Trying", async () => {
    // The agent says 100 at once and answers each STOP only after 300 ms (tcpdump exiting): with
    // two slots, 20 STOPs must all be on the wire long before the first final answer.
    const sentAt = new Map<string, number>();
    const t0 = performance.now();
    const fake = await FakeAgent.start((buf, reply) => {
      const r = req(buf);
      if (!sentAt.has(r.id)) sentAt.set(r.id, performance.now() - t0);
      reply(ans(r, 100));
      reply(ans(r, 200), 300);
    });
    const c = await open({ maxInFlightPerAgent: 2 });
    const devices = Array.from({ length: 20 }, (_, i) => `192.0.2.${i + 1}`);
    const answers = await Promise.all(devices.map((device) => c.request(fake.endpoint, { verb: "STOP", device, filename: "x.pcap" })));
    expect(answers.every((a) => a.code === 200)).toBe(true);
    expect(sentAt.size).toBe(20);
    expect(Math.max(...sentAt.values())).toBeLessThan(250);
  });

  it("sends a STOP at once even when every slot to the agent is taken", async () => {
    const fake = await FakeAgent.start((buf, reply) => {
      const r = req(buf);
      if (r.verb === "STOP") reply(ans(r, 200));
    });
    const c = await open({ maxInFlightPerAgent: 1 });
    const held = rejection(c.request(fake.endpoint, { verb: "CAPTURE", device: DEVICE }, { deadlineMs: 400 }));
    await new Promise((r) => setTimeout(r, 20));
    let sentSync = false;
    const stop = c.request(fake.endpoint, { verb: "STOP", device: "192.0.2.8", filename: "x.pcap" }, { onSend: () => (sentSync = true) });
    // The socket is open (the CAPTURE opened it): the STOP leaves before request() even returns.
    expect(sentSync).toBe(true);
    expect((await stop).code).toBe(200);
    expect((await held).code).toBe("agent-timeout");
  });

  it("times out a request that never left the queue after maxQueueMs with a message that says so", async () => {
    const fake = await FakeAgent.start(() => {});
    const c = await open({ maxInFlightPerAgent: 1, maxQueueMs: 200 });
    const first = rejection(c.request(fake.endpoint, { verb: "CAPTURE", device: DEVICE }, { deadlineMs: 400 }));
    const e = await rejection(c.request(fake.endpoint, { verb: "CAPTURE", device: "192.0.2.8" }, { deadlineMs: 100 }));
    expect(e.code).toBe("agent-timeout");
    expect(e.message).toBe(
      `CAPTURE for 192.0.2.8 to agent ${fake.label} was never sent: it waited 0.2 s (maxQueueMs) behind 1 requests in flight to this agent (maxInFlightPerAgent 1, STOPs 4096)`,
    );
    expect((await first).code).toBe("agent-timeout");
    expect(fake.received.every((b) => req(b).device === DEVICE)).toBe(true);
  });

  it("handles 1000 concurrent requests with one timer", async () => {
    const fake = await FakeAgent.start((buf, reply) => reply(ans(req(buf), 200)));
    const c = await open({ maxInFlightPerAgent: 1000 });
    const t = performance.now();
    const timers = vi.spyOn(globalThis, "setTimeout");
    const answers = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => c.request(fake.endpoint, { verb: "PING" }, { deadlineMs: 5000 }).then((a) => a.code, () => i)),
    );
    const timersArmed = timers.mock.calls.length;
    timers.mockRestore();
    // Not one timer per request: the shared timer is re-armed only when the earliest due time moves.
    expect(timersArmed).toBeLessThan(20);
    expect(answers.every((code) => code === 200)).toBe(true);
    expect(performance.now() - t).toBeLessThan(3000);
    expect(c.stats().answers).toBe(1000);
  });

  it("aborts on signal and on close()", async () => {
    const fake = await FakeAgent.start(() => {});
    const c = await open();
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("operator pressed Ctrl-C")), 50);
    const e = await rejection(c.request(fake.endpoint, { verb: "CAPTURE", device: DEVICE }, { signal: ac.signal }));
    expect(e.code).toBe("agent-aborted");
    expect(e.message).toBe(`CAPTURE for 192.0.2.7 to agent ${fake.label} aborted after 1 try`);
    const pending = rejection(c.request(fake.endpoint, { verb: "STOP", device: DEVICE, filename: "a.pcap" }));
    await sleep(20);
    c.close();
    expect((await pending).code).toBe("agent-aborted");
    expect((await rejection(c.request(fake.endpoint, { verb: "PING" }))).code).toBe("agent-aborted");
  });

  it("refuses requests the wire cannot carry, before sending anything", async () => {
    const fake = await FakeAgent.start(() => {});
    const c = await open();
    const bad = async (r: Parameters<AgentClient["request"]>[1], to = fake.endpoint) => (await rejection(c.request(to, r))).code;
    expect(await bad({ verb: "CAPTURE", device: "example.com" })).toBe("agent-bad-request");
    expect(await bad({ verb: "STOP", device: DEVICE })).toBe("agent-bad-request");
    expect(await bad({ verb: "STOP", device: DEVICE, filename: "../etc/passwd" })).toBe("agent-bad-request");
    expect(await bad({ verb: "PING", device: DEVICE })).toBe("agent-bad-request");
    expect(await bad({ verb: "CAPTURE", device: DEVICE }, { host: "agent.example", port: 20001 })).toBe("agent-bad-request");
    expect(fake.received).toHaveLength(0);
  });

  it("speaks IPv6 on ::1 through a lazily created udp6 socket", async () => {
    const fake = await FakeAgent.start((buf, reply) => {
      const r = req(buf);
      reply(ans(r, 100));
      reply(ans(r, 200), 10);
    }, "::1");
    const c = await open();
    expect(c.localAddress(6)).toBeUndefined();
    const a = await c.request({ host: "0:0:0:0:0:0:0:1", port: fake.endpoint.port }, { verb: "CAPTURE", device: "2001:DB8::10" });
    expect(a).toMatchObject({ code: 200, device: "2001:db8::10", agent: fake.label });
    expect(c.localAddress(6)?.family).toBe("IPv6");
    expect(c.localAddress(4)).toBeUndefined();
  });

  it("passes non-protocol datagrams on a shared port to onForeignDatagram", async () => {
    const got: { text: string; port: number }[] = [];
    const c = await open({ bind: { address: "127.0.0.1", port: 0 }, onForeignDatagram: (buf, rinfo) => got.push({ text: buf.toString(), port: rinfo.port }) });
    const port = c.localAddress(4)!.port;
    expect(port).toBeGreaterThan(0);
    const sender = dgram.createSocket("udp4");
    await new Promise<void>((r) => sender.bind(0, "127.0.0.1", r));
    const line = "<131>Nov 23 10:00:00 ovoc New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, IP Address: 192.0.2.7";
    sender.send(line, port, "127.0.0.1");
    sender.send("200 OK 192.0.2.7 CAPTURE", port, "127.0.0.1"); // a legacy answer in v1 mode: dropped, not forwarded
    await sleep(50);
    const senderPort = sender.address().port;
    sender.close();
    expect(got).toEqual([{ text: line, port: senderPort }]);
    expect(c.stats()).toMatchObject({ foreign: 1, dropped: { malformed: 1 } });
  });
});

describe("AgentClient legacy", () => {
  it("sends the original's exact bytes and correlates answers by device and verb", async () => {
    const fake = await FakeAgent.start((buf, reply) => {
      const [verb, device] = buf.toString().split(" ");
      reply(`100 Trying ${device} ${verb}`);
      // Answer the second device first, and with a refusal, to prove correlation.
      if (device === "192.0.2.8") reply(formatLegacyAnswer({ code: 503, verb: "CAPTURE", device }), 20);
      else reply(`200 OK ${device} ${verb}`, 60);
    });
    const log = recordingLog();
    const c = await open({ mode: "legacy", key: undefined, log });
    expect(log.lines.some((l) => l.startsWith("warn") && l.includes("legacy mode"))).toBe(true);
    const [a7, a8] = await Promise.all([
      c.request(fake.endpoint, { verb: "CAPTURE", device: DEVICE }),
      c.request(fake.endpoint, { verb: "CAPTURE", device: "192.0.2.8" }),
    ]);
    expect(fake.received.map((b) => b.toString("latin1"))).toEqual(["CAPTURE 192.0.2.7", "CAPTURE 192.0.2.8"]);
    expect(a7).toMatchObject({ code: 200, verb: "CAPTURE", device: DEVICE, details: {}, trying: true, tries: 1 });
    expect(a8).toMatchObject({ code: 503, device: "192.0.2.8" });
  });

  it("retries only until 100 Trying, then waits without resending", async () => {
    const fake = await FakeAgent.start((buf, reply, i) => {
      if (i === 0) return; // first datagram lost
      reply("100 Trying 192.0.2.7 STOP");
      reply("200 OK 192.0.2.7 STOP", 700); // longer than several backoff steps
    });
    const c = await open({ mode: "legacy" });
    const a = await c.request(fake.endpoint, { verb: "STOP", device: DEVICE, filename: "CPE_device_192.0.2.7_x.pcap" });
    expect(a).toMatchObject({ code: 200, tries: 2, trying: true });
    expect(fake.received.map((b) => b.toString())).toEqual(["STOP 192.0.2.7 CPE_device_192.0.2.7_x.pcap", "STOP 192.0.2.7 CPE_device_192.0.2.7_x.pcap"]);
  });

  it("refuses v1-only verbs and specs", async () => {
    const c = await open({ mode: "legacy" });
    const to = { host: "127.0.0.1", port: 9 };
    expect((await rejection(c.request(to, { verb: "PING" }))).message).toContain("not part of the legacy protocol");
    expect((await rejection(c.request(to, { verb: "CAPTURE", device: DEVICE, spec: "e30" }))).code).toBe("agent-bad-request");
  });

  it("hands a forwarded syslog line on the shared port to onForeignDatagram", async () => {
    const got: string[] = [];
    const c = await open({ mode: "legacy", bind: { address: "127.0.0.1", port: 0 }, onForeignDatagram: (buf) => got.push(buf.toString()) });
    const sender = dgram.createSocket("udp4");
    const line = "<131>Nov 23 10:00:00 ovoc New Alarm - Connection Alarm, Description: Connection Lost, IP Address: 192.0.2.7";
    await new Promise<void>((r) => sender.send(line, c.localAddress(4)!.port, "127.0.0.1", () => r()));
    sender.send("200 OK 192.0.2.9 CAPTURE", c.localAddress(4)!.port, "127.0.0.1"); // an answer nobody asked for
    await sleep(50);
    sender.close();
    expect(got).toEqual([line]);
    expect(c.stats()).toMatchObject({ foreign: 1, dropped: { unmatched: 1 } });
  });
});
