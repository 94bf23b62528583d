import dgram from "node:dgram";
import net from "node:net";
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { CapsyncError } from "@capsync/protocol";
import {
  SyslogSender,
  formatRfc3164,
  formatRfc5424,
  ovocConnectionEstablished,
  ovocConnectionLostAlarm,
} from "@capsync/emulators/syslog-sender";
import { afterEach, describe, expect, it } from "vitest";
import { type SyslogListenerOptions, SyslogListener, SyslogStreamDecoder, looksLikeSyslog } from "./listener.js";
import { BUILTIN_MATCHERS, type SyslogEvent, compileMatchers } from "./matchers.js";

const TS = new Date("2026-11-23T10:15:30.123Z");
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const now = () => Number(process.hrtime.bigint() / 1000n) / 1000;

// ---------------------------------------------------------------------------------------------
// Stream framing (pure)

function decodeAll(chunks: Buffer[], max = 64): { frames: string[]; framing: string | null; oversize: number; error: string | null } {
  const frames: string[] = [];
  const d = new SyslogStreamDecoder({ maxFrameBytes: max, onFrame: (f) => frames.push(f.toString("latin1")) });
  let error: string | null = null;
  for (const c of chunks) {
    const r = d.push(c);
    if (!r.ok) {
      error = `${r.message} @${r.offset}`;
      break;
    }
  }
  if (error === null) d.end();
  return { frames, framing: d.framing, oversize: d.oversize, error };
}

const STREAMS: Array<{ name: string; input: string; expected: { frames: string[]; framing: string | null; oversize: number; error: string | null } }> = [
  { name: "octet counting", input: "11 <13>1 - - -9 <13>hello", expected: { frames: ["<13>1 - - -", "<13>hello"], framing: "octet-counting", oversize: 0, error: null } },
  {
    name: "octet counting with LF after frames (some senders)",
    input: "5 <13>a\n5 <13>b\r\n",
    expected: { frames: ["<13>a", "<13>b"], framing: "octet-counting", oversize: 0, error: null },
  },
  { name: "octet counting keeps LF inside a frame", input: "9 <13>a\nb\nc", expected: { frames: ["<13>a\nb\nc"], framing: "octet-counting", oversize: 0, error: null } },
  { name: "newline framing, CRLF kept for the parser", input: "<13>one\n<13>two\r\n\n<13>three", expected: { frames: ["<13>one", "<13>two\r", "<13>three"], framing: "newline", oversize: 0, error: null } },
  { name: "NUL trailer", input: "<13>one\0<13>two\0", expected: { frames: ["<13>one", "<13>two"], framing: "newline", oversize: 0, error: null } },
  {
    name: "oversize octet frame skipped whole",
    input: `70 <13>${"x".repeat(66)}5 <13>z`,
    expected: { frames: ["<13>z"], framing: "octet-counting", oversize: 1, error: null },
  },
  {
    name: "oversize line skipped to the next LF",
    input: `<13>${"x".repeat(80)}\n<13>ok\n`,
    expected: { frames: ["<13>ok"], framing: "newline", oversize: 1, error: null },
  },
  { name: "MSG-LEN not followed by SP", input: "12<13>", expected: { frames: [], framing: "octet-counting", oversize: 0, error: "MSG-LEN must be followed by SP @2" } },
  { name: "garbage after a frame", input: "5 <13>ax", expected: { frames: ["<13>a"], framing: "octet-counting", oversize: 0, error: "MSG-LEN must start with a digit 1-9 @7" } },
  { name: "MSG-LEN too long", input: "1234567890 x", expected: { frames: [], framing: "octet-counting", oversize: 0, error: "MSG-LEN has too many digits @9" } },
  { name: "empty stream", input: "", expected: { frames: [], framing: null, oversize: 0, error: null } },
];

describe("SyslogStreamDecoder (RFC 6587)", () => {
  for (const s of STREAMS) {
    it(s.name, () => {
      expect(decodeAll([Buffer.from(s.input, "latin1")])).toEqual(s.expected);
    });
    it(`${s.name} — split at every byte boundary and byte by byte`, () => {
      const b = Buffer.from(s.input, "latin1");
      for (let cut = 0; cut <= b.length; cut++) {
        const r = decodeAll([b.subarray(0, cut), b.subarray(cut)]);
        // An error's offset is stream-absolute, so it does not depend on the split either.
        expect(r).toEqual(s.expected);
      }
      expect(decodeAll([...b].map((x) => Buffer.from([x])))).toEqual(s.expected);
    });
  }

  it("never throws, and never emits more than maxFrameBytes (10,000 random streams)", () => {
    const stream = fc.array(
      fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constantFrom(...STREAMS.map((s) => Buffer.from(s.input, "latin1")))),
      { maxLength: 6 },
    );
    fc.assert(
      fc.property(stream, (chunks) => {
        const frames: Buffer[] = [];
        const d = new SyslogStreamDecoder({ maxFrameBytes: 32, onFrame: (f) => frames.push(f) });
        for (const c of chunks) if (!d.push(Buffer.from(c)).ok) break;
        d.end();
        return frames.every((f) => f.length > 0 && f.length <= 32);
      }),
      { numRuns: 10_000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Real sockets on 127.0.0.1

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

function collect() {
  const events: SyslogEvent[] = [];
  const waiters: Array<{ pred: (e: SyslogEvent) => boolean; resolve: (e: SyslogEvent) => void }> = [];
  return {
    events,
    onEvent(e: SyslogEvent) {
      events.push(e);
      for (const w of [...waiters]) {
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    },
    next(pred: (e: SyslogEvent) => boolean = () => true, timeoutMs = 3000): Promise<SyslogEvent> {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no matching event within ${timeoutMs} ms (got ${events.length})`)), timeoutMs);
        waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) });
      });
    },
  };
}

async function start(opts: Omit<SyslogListenerOptions, "onEvent"> & { onEvent?: SyslogListenerOptions["onEvent"] }) {
  const c = collect();
  const listener = new SyslogListener({ onEvent: c.onEvent, ...opts });
  const addrs = await listener.listen();
  open.push(listener);
  return { listener, addrs, ...c };
}

async function sender(port: number, transport: "udp" | "tcp", extra: { framing?: "octet-counting" | "newline"; localAddress?: string } = {}) {
  const s = await SyslogSender.open({ host: "127.0.0.1", port, transport, ...extra });
  open.push(s);
  return s;
}

describe("SyslogListener over UDP", () => {
  it("delivers exact StopEvents for OVOC alarms (RFC 3164 and 5424) and logs Connection established", async () => {
    const { addrs, next, events, listener } = await start({ udp: { address: "127.0.0.1", port: 0 }, devices: ["192.0.2.10", "2001:db8::10"] });
    const s = await sender(addrs.udp!.port, "udp");
    const from = { address: "127.0.0.1", port: s.local.port, transport: "udp" };

    const t0 = now();
    const lost3164 = ovocConnectionLostAlarm({ deviceIp: "192.0.2.10", deviceName: "MSBR-Lab-1", timestamp: TS });
    await s.send(lost3164);
    const e1 = await next((e) => e.kind === "stop");
    expect(e1).toEqual({
      kind: "stop",
      device: "192.0.2.10",
      via: "alarm",
      count: 1,
      reason: "Connection Alarm: Connection Lost",
      matcher: "connection-lost",
      message:
        "<129>Nov 23 10:15:30 : New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, Device Name: MSBR-Lab-1, Tenant: Default, Region: Default, IP Address: 192.0.2.10, Device Type: MSBR, Device Serial: , Device Description: ",
      format: "rfc3164",
      receivedAt: { monotonicMs: expect.any(Number), iso: expect.stringMatching(ISO) },
      from,
    });
    expect(e1.receivedAt.monotonicMs).toBeGreaterThanOrEqual(t0);
    expect(e1.receivedAt.monotonicMs).toBeLessThanOrEqual(now());

    await s.send(ovocConnectionLostAlarm({ deviceIp: "2001:db8::10", deviceName: "SBC-2", timestamp: TS, format: "rfc5424", ovocHost: "ovoc-srv1" }));
    const e2 = await next((e) => e.kind === "stop" && e.device === "2001:db8::10");
    expect(e2).toEqual({
      kind: "stop",
      device: "2001:db8::10",
      via: "alarm",
      count: 1,
      reason: "Connection Alarm: Connection Lost",
      matcher: "connection-lost",
      message:
        "<129>1 2026-11-23T10:15:30.123Z ovoc-srv1 OVOC - - - \uFEFFNew Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, Device Name: SBC-2, Tenant: Default, Region: Default, IP Address: 2001:db8::10, Device Type: MSBR, Device Serial: , Device Description: ",
      format: "rfc5424",
      receivedAt: { monotonicMs: expect.any(Number), iso: expect.stringMatching(ISO) },
      from,
    });

    await s.send(ovocConnectionEstablished({ deviceIp: "192.0.2.10", deviceName: "MSBR-Lab-1", timestamp: TS }));
    const e3 = await next((e) => e.kind === "log");
    expect(e3).toMatchObject({ kind: "log", device: "192.0.2.10", via: "alarm", note: "not-a-stop-alarm", reason: "Connection Alarm: Connection established" });

    // The same loss again: counted, logged, no second stop.
    await s.send(lost3164);
    await next((e) => e.kind === "log" && e.note === "after-stop");
    await listener.whenIdle();
    expect(events.map((e) => e.kind)).toEqual(["stop", "stop", "log", "log"]);
    const st = listener.stats();
    expect(st).toMatchObject({ received: 4, ignored: 0, processed: 4, dropped: 0, queued: 0, stopEvents: 2, logEvents: 2 });
    expect(st.recvBufferSize).toBeGreaterThanOrEqual(212_992);
  });

  it("shares a port: another socket forwards what looksLikeSyslog() accepts via handleDatagram()", async () => {
    const { listener, next } = await start({ udp: false, devices: ["192.0.2.10"] });
    // Stands in for the orchestrator's agent-client socket, which also gets "200 OK ..." answers.
    const shared = dgram.createSocket("udp4");
    const answers: string[] = [];
    shared.on("message", (msg, rinfo) => (looksLikeSyslog(msg) ? listener.handleDatagram(msg, rinfo) : answers.push(msg.toString())));
    await new Promise<void>((r) => shared.bind(0, "127.0.0.1", () => r()));
    open.push({ close: () => new Promise<void>((r) => shared.close(() => r())) });
    const s = await sender(shared.address().port, "udp");
    await s.send("200 OK 192.0.2.10 CAPTURE");
    await s.send(ovocConnectionLostAlarm({ deviceIp: "192.0.2.10", timestamp: TS }));
    const e = await next((x) => x.kind === "stop");
    expect(e).toMatchObject({ kind: "stop", device: "192.0.2.10", from: { address: "127.0.0.1", port: s.local.port, transport: "udp" } });
    expect(answers).toEqual(["200 OK 192.0.2.10 CAPTURE"]);
    expect(looksLikeSyslog(Buffer.from("CSYNC/1 200"))).toBe(false);
  });

  it("refuses a port in use with CapsyncError syslog-listen", async () => {
    const { addrs } = await start({ udp: { address: "127.0.0.1", port: 0 } });
    const second = new SyslogListener({ onEvent: () => {}, udp: { address: "127.0.0.1", port: addrs.udp!.port } });
    const err = await second.listen().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapsyncError);
    expect((err as CapsyncError).code).toBe("syslog-listen");
    await second.close();
  });
});

describe("SyslogListener over TCP", () => {
  it("auto-detects octet counting and newline framing per connection; IOS-XE matched by sender", async () => {
    const { addrs, next, listener } = await start({
      udp: false,
      tcp: { address: "127.0.0.1", port: 0 },
      matchers: compileMatchers([...BUILTIN_MATCHERS]),
      devices: ["192.0.2.10", "127.0.0.2"],
    });
    const port = addrs.tcp!.port;

    const octet = await sender(port, "tcp", { framing: "octet-counting" });
    await octet.send(ovocConnectionLostAlarm({ deviceIp: "192.0.2.10", timestamp: TS, format: "rfc5424", ovocHost: "ovoc-srv1" }));
    const e1 = await next((e) => e.kind === "stop");
    expect(e1).toEqual({
      kind: "stop",
      device: "192.0.2.10",
      via: "alarm",
      count: 1,
      reason: "Connection Alarm: Connection Lost",
      matcher: "connection-lost",
      message:
        "<129>1 2026-11-23T10:15:30.123Z ovoc-srv1 OVOC - - - \uFEFFNew Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, Device Name: device-192.0.2.10, Tenant: Default, Region: Default, IP Address: 192.0.2.10, Device Type: MSBR, Device Serial: , Device Description: ",
      format: "rfc5424",
      receivedAt: { monotonicMs: expect.any(Number), iso: expect.stringMatching(ISO) },
      from: { address: "127.0.0.1", port: octet.local.port, transport: "tcp" },
    });

    // A "device" on its own loopback address, LF framing, IOS-XE's own prefix (not RFC 3164).
    const device = await sender(port, "tcp", { framing: "newline", localAddress: "127.0.0.2" });
    await device.send("<187>45: *Mar  1 00:01:23.456: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/0/1, changed state to up");
    await device.send("<187>46: *Mar  1 00:01:24.456: %LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down");
    const e2 = await next((e) => e.kind === "stop" && e.device === "127.0.0.2");
    expect(e2).toEqual({
      kind: "stop",
      device: "127.0.0.2",
      via: "sender",
      count: 1,
      reason: "%LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down",
      matcher: "iosxe-link-down",
      message: "<187>46: *Mar  1 00:01:24.456: %LINK-3-UPDOWN: Interface GigabitEthernet0/0/1, changed state to down",
      format: "raw",
      receivedAt: { monotonicMs: expect.any(Number), iso: expect.stringMatching(ISO) },
      from: { address: "127.0.0.2", port: device.local.port, transport: "tcp" },
    });
    await listener.whenIdle();
    expect(listener.stats()).toMatchObject({ received: 3, processed: 3, stopEvents: 2, logEvents: 1, tcpAccepted: 2, tcpOpen: 2, tcpFramingErrors: 0 });
  });

  it("bounds connections and closes a connection whose framing breaks", async () => {
    const errors: CapsyncError[] = [];
    const { addrs, listener } = await start({ udp: false, tcp: { address: "127.0.0.1", port: 0, maxConnections: 2 }, onError: (e) => errors.push(e) });
    const port = addrs.tcp!.port;
    const socks: net.Socket[] = [];
    const closed: Array<Promise<void>> = [];
    for (let i = 0; i < 3; i++) {
      const c = net.connect({ host: "127.0.0.1", port });
      c.on("error", () => {});
      closed.push(new Promise<void>((r) => c.once("close", () => r())));
      await new Promise<void>((r) => c.once("connect", () => r()));
      socks.push(c);
    }
    open.push({ close: async () => void socks.forEach((c) => c.destroy()) });
    await closed[2]; // the third one is closed by the listener
    expect(listener.stats()).toMatchObject({ tcpAccepted: 2, tcpRejected: 1, tcpOpen: 2 });

    socks[0]!.write("12<13>garbage");
    await closed[0];
    expect(listener.stats()).toMatchObject({ tcpFramingErrors: 1 });
    expect(errors.map((e) => [e.code, e.message.replace(/:\d+:/, ":PORT:")])).toEqual([
      ["syslog-framing", "TCP syslog from 127.0.0.1:PORT: MSG-LEN must be followed by SP at byte 2; connection closed"],
    ]);
  });
});

describe("bounded queue", () => {
  it("drops bulk frames beyond capacity, counts them, and still delivers the alarm first", async () => {
    const { listener, events } = await start({ udp: false, devices: ["192.0.2.10"], queue: { bulk: 100, priority: 10 } });
    const rinfo = { address: "198.51.100.5", port: 514 };
    const other = Buffer.from(formatRfc3164({ timestamp: TS, tag: "", message: "New Alarm - Power Supply Alarm, Source: PS#1, Description: Power supply failure, IP Address: 192.0.2.99," }));
    const junk = Buffer.from(formatRfc3164({ timestamp: TS, hostname: "fw1", tag: "kernel", message: "IN=eth0 OUT= SRC=10.0.0.1 DST=10.0.0.2 LEN=60" }));
    // All of this lands within one event-loop turn, as a burst read from the socket would.
    for (let i = 0; i < 1000; i++) listener.handleDatagram(i % 2 ? other : junk, rinfo);
    listener.handleDatagram(ovocConnectionLostAlarm({ deviceIp: "192.0.2.10", timestamp: TS }), rinfo);
    for (let i = 0; i < 20; i++) listener.handleDatagram(ovocConnectionLostAlarm({ deviceIp: "192.0.2.77", timestamp: TS }), rinfo);
    let st = listener.stats();
    expect(st).toMatchObject({ received: 1021, ignored: 500, queued: 110, dropped: 411, droppedPriority: 11, processed: 0, peakQueued: 110 });
    await listener.whenIdle();
    st = listener.stats();
    expect(st).toMatchObject({ received: 1021, ignored: 500, processed: 110, dropped: 411, queued: 0, stopEvents: 1, logEvents: 109 });
    expect(st.received).toBe(st.ignored + st.dropped + st.processed + st.queued);
    expect(events[0]).toMatchObject({ kind: "stop", device: "192.0.2.10" });
  });

  it("a burst of alarms with a slow handler: handled in arrival order, in stretches that let other I/O run between them", async () => {
    const order: string[] = [];
    const devices = Array.from({ length: 100 }, (_, i) => `192.0.2.${i + 1}`);
    const { listener } = await start({
      udp: false,
      devices,
      onEvent: (e) => {
        const until = performance.now() + 1;
        while (performance.now() < until);
        if (e.kind === "stop") order.push(e.device);
      },
    });
    const rinfo = { address: "198.51.100.5", port: 514 };
    for (const d of devices) listener.handleDatagram(ovocConnectionLostAlarm({ deviceIp: d, timestamp: TS }), rinfo);
    expect(listener.alarmsPending(0)).toBe(true);
    // A timer due at once fires while most alarms still wait: the handler of a hundred did not hold the loop for 100 ms.
    const atTimer = await new Promise<number>((r) => setTimeout(() => r(listener.stats().processed), 0));
    expect(atTimer).toBeGreaterThan(0);
    expect(atTimer).toBeLessThan(50);
    await listener.whenIdle();
    expect(order).toEqual(devices);
    expect(listener.stats()).toMatchObject({ received: 100, processed: 100, dropped: 0, stopEvents: 100 });
    expect(listener.alarmsPending(0)).toBe(false);
  });

  it("truncates oversize datagrams and ignores input after close()", async () => {
    const { listener, events } = await start({ udp: false, devices: ["192.0.2.10"], maxMessageBytes: 2048 });
    const alarm = Buffer.concat([ovocConnectionLostAlarm({ deviceIp: "192.0.2.10", timestamp: TS, trailingNul: false }), Buffer.alloc(5000, 0x20)]);
    listener.handleDatagram(alarm, { address: "127.0.0.1", port: 1 });
    await listener.whenIdle();
    expect(listener.stats()).toMatchObject({ truncated: 1, stopEvents: 1 });
    await listener.close();
    await listener.close();
    listener.handleDatagram(alarm, { address: "127.0.0.1", port: 1 });
    expect(listener.stats().received).toBe(1);
    expect(events).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Storm: a separate thread floods the UDP port while the test waits for the one real alarm.

const STORM_SENDER = `
const { workerData, parentPort } = require("node:worker_threads");
const dgram = require("node:dgram");
const { port, count, alarmAt, alarm, rate } = workerData;
const junk = [
  "<134>Nov 23 10:15:30 fw1 kernel: IN=eth0 OUT= MAC=00:11:22:33:44:55 SRC=10.0.0.1 DST=10.0.0.2 LEN=60 TOS=0x00 PROTO=TCP SPT=443 DPT=51234 SYN",
  "<30>Nov 23 10:15:30 web3 nginx[812]: 10.9.8.7 - - [23/Nov/2026:10:15:30 +0000] \\"GET /index.html HTTP/1.1\\" 200 512",
  "<13>1 2026-11-23T10:15:30.123Z app7 billing 4242 TX [meta seq=\\"1\\"] committed batch 77",
].map((s) => Buffer.from(s));
const alarmBuf = Buffer.from(alarm);
const now = () => Number(process.hrtime.bigint() / 1000n) / 1000;
// Linux nice values are per thread: this lowers only the sender. On a busy machine the storm then
// slows down a little instead of starving the receiver into kernel drops.
try { require("node:os").setPriority(19); } catch {}
const sock = dgram.createSocket("udp4");
sock.connect(port, "127.0.0.1", async () => {
  const t0 = now();
  let alarmSentAt = 0, errors = 0, sent = 0;
  const BURST = 250;
  for (let i = 0; i < count; ) {
    await new Promise((resolve) => {
      let left = 0;
      const cb = (err) => { if (err) errors++; else sent++; if (--left === 0) resolve(); };
      for (let k = 0; k < BURST && i < count; k++, i++) {
        if (i === alarmAt) { alarmSentAt = now(); left++; sock.send(alarmBuf, cb); }
        left++;
        sock.send(junk[i % junk.length], cb);
      }
    });
    // Pace to the target rate; a burst that falls behind simply goes on at full speed.
    const ahead = t0 + (i / rate) * 1000 - now();
    if (ahead > 1) await new Promise((r) => setTimeout(r, ahead));
  }
  parentPort.postMessage({ alarmSentAt, errors, sent, ms: now() - t0 });
  sock.close();
});`;

interface StormRun {
  stops: Array<{ e: SyslogEvent; at: number }>;
  logs: number;
  st: ReturnType<SyslogListener["stats"]>;
  kernelDrops: number | null;
  result: { alarmSentAt: number; errors: number; sent: number; ms: number };
  heapGrowth: number;
}

async function runStorm(count: number): Promise<StormRun> {
  const stops: StormRun["stops"] = [];
  let logs = 0;
  const { addrs, listener } = await start({
    udp: { address: "127.0.0.1", port: 0 },
    devices: ["192.0.2.10"],
    onEvent: (e) => (e.kind === "stop" ? stops.push({ e, at: now() }) : logs++),
  });
  const heapBefore = process.memoryUsage().heapUsed;
  const worker = new Worker(STORM_SENDER, {
    eval: true,
    workerData: {
      port: addrs.udp!.port,
      count,
      alarmAt: count / 2,
      alarm: ovocConnectionLostAlarm({ deviceIp: "192.0.2.10", timestamp: TS }),
      // ~35,000/s: the whole storm within ~3 s.
      rate: 35_000,
    },
  });
  const result = await new Promise<StormRun["result"]>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  await worker.terminate();
  // Let the socket buffer and the queue empty.
  let last = -1;
  while (listener.stats().received !== last) {
    last = listener.stats().received;
    await new Promise((r) => setTimeout(r, 100));
  }
  await listener.whenIdle();
  const st = listener.stats();
  const kernelDrops = await listener.kernelDrops();
  await listener.close();
  return { stops, logs, st, kernelDrops, result, heapGrowth: process.memoryUsage().heapUsed - heapBefore };
}

describe("syslog storm", () => {
  it("100,000 unrelated datagrams in ~3 s: the alarm gets through at once and the counters add up", async () => {
    const COUNT = 100_000;
    let run = await runStorm(COUNT);
    if (run.stops.length === 0 && (run.kernelDrops ?? 0) > 0) {
      // Inconclusive, not a listener fault: the kernel dropped datagrams (the alarm among them)
      // before any user-space code saw them, because other suites starved this process of CPU.
      // Repeat once; a second such run fails below.
      console.warn(`storm: kernel dropped ${run.kernelDrops} datagrams including the alarm; repeating once`);
      run = await runStorm(COUNT);
    }
    const { stops, logs, st, kernelDrops, result } = run;
    expect(result.errors).toBe(0);
    expect(result.sent).toBe(COUNT + 1);
    expect(stops).toHaveLength(1);
    expect(stops[0]!.e).toMatchObject({ kind: "stop", device: "192.0.2.10", matcher: "connection-lost" });
    const latencyMs = stops[0]!.at - result.alarmSentAt;
    // Typically a few ms; generous because other test suites share the CPUs.
    expect(latencyMs).toBeLessThan(500);
    expect(logs).toBe(0);
    // Every datagram is accounted for: read by us or dropped by the kernel, and every one we read
    // was ignored by the prefilter, dropped from a full lane, or processed.
    expect(st.received).toBe(st.ignored + st.dropped + st.processed + st.queued);
    expect(st.queued).toBe(0);
    expect(st.processed).toBe(1);
    expect(st.dropped).toBe(0);
    if (kernelDrops !== null) expect(st.received + kernelDrops).toBe(COUNT + 1);
    else expect(st.received).toBeLessThanOrEqual(COUNT + 1);
    expect(st.peakQueued).toBeLessThanOrEqual(256 + 1024);
    // The storm itself leaves nothing behind.
    expect(run.heapGrowth).toBeLessThan(64 * 1024 * 1024);
    console.info(
      `storm: ${COUNT} sent in ${result.ms.toFixed(0)} ms, received ${st.received}, kernel drops ${kernelDrops}, ` +
        `alarm latency ${latencyMs.toFixed(2)} ms, SO_RCVBUF ${st.recvBufferSize}`,
    );
  }, 20_000);
});
