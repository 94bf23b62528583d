// The UDP syslog socket read in its own thread (udp-reader.ts): reads go on while this thread is
// blocked, the reader enforces the lane bounds and counts what it drops, frames in transit are
// counted at close, and the thread path matches the main-thread path event for event.
import { Worker } from "node:worker_threads";
import { CapsyncError } from "@capsync/protocol";
import { formatRfc3164, formatRfc5424, ovocAlarmText, ovocConnectionEstablished, ovocConnectionLostAlarm } from "@capsync/emulators/syslog-sender";
import { afterEach, describe, expect, it } from "vitest";
import { type ListenerStats, SyslogListener } from "./listener.js";
import { UdpReader } from "./udp-reader.js";
import type { SyslogEvent } from "./matchers.js";

const TS = new Date("2026-11-23T10:15:30.123Z");
const now = () => Number(process.hrtime.bigint() / 1000n) / 1000;
const devices = Array.from({ length: 50 }, (_, i) => `192.0.2.${i + 1}`);

const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

// Sends its datagrams to 127.0.0.1:port when told "go" (this thread may be blocked by then) and
// answers with each one's send time on the hrtime axis (the same clock in every thread).
const SENDER = `
const { workerData, parentPort } = require("node:worker_threads");
const dgram = require("node:dgram");
const sock = dgram.createSocket("udp4");
sock.on("error", () => {});
sock.connect(workerData.port, "127.0.0.1", () => {
  parentPort.postMessage("ready");
  parentPort.once("message", () => {
    const at = [];
    for (const b of workerData.frames) {
      at.push(Number(process.hrtime.bigint() / 1000n) / 1000);
      sock.send(Buffer.from(b));
    }
    setTimeout(() => { parentPort.postMessage(at); sock.close(); }, 20);
  });
});`;

async function sender(port: number, frames: Uint8Array[]): Promise<{ go(): void; sentAt: Promise<number[]> }> {
  const w = new Worker(SENDER, { eval: true, workerData: { port, frames } });
  open.push({ close: () => w.terminate() });
  await new Promise<void>((resolve, reject) => {
    w.once("message", () => resolve());
    w.once("error", reject);
  });
  const sentAt = new Promise<number[]>((resolve) => w.once("message", resolve));
  return { go: () => w.postMessage("go"), sentAt };
}

/** Busy-waits (this thread does nothing else) until `done` or `ms` passed; returns the ms spent. */
function block(ms: number, done: () => boolean = () => false): number {
  const t0 = performance.now();
  while (performance.now() - t0 < ms && !done());
  return performance.now() - t0;
}

async function listener(opts: { priority?: number; readerThread?: boolean; onEvent?: (e: SyslogEvent) => void } = {}) {
  const l = new SyslogListener({
    onEvent: opts.onEvent ?? (() => {}),
    devices,
    udp: { address: "127.0.0.1", port: 0, ...(opts.readerThread === false ? { readerThread: false } : {}) },
    ...(opts.priority ? { queue: { priority: opts.priority } } : {}),
  });
  const a = await l.listen();
  open.push(l);
  return { l, port: a.udp!.port };
}

const alarms = devices.map((d) => ovocConnectionLostAlarm({ deviceIp: d, timestamp: TS }));
const adds = (s: ListenerStats) => s.received === s.ignored + s.dropped + s.processed + s.queued;

describe("UDP reader thread", () => {
  it("reads a burst while this thread is blocked: read timestamps are the socket's, not this thread's", async () => {
    const events: SyslogEvent[] = [];
    const { l, port } = await listener({ onEvent: (e) => events.push(e) });
    const s = await sender(port, alarms);
    const blockedFrom = now();
    s.go();
    // Blocked until the reader has read all 50 (its counters are shared memory), at least 300 ms.
    block(5000, () => l.stats().received === alarms.length);
    const readBy = now();
    block(300);
    expect(l.alarmsPending(0)).toBe(true);
    const sentAt = await s.sentAt;
    await l.whenIdle();
    expect(events.map((e) => (e.kind === "stop" ? e.device : e.kind))).toEqual(devices);
    for (const e of events) {
      expect(e.receivedAt.monotonicMs).toBeGreaterThanOrEqual(blockedFrom);
      expect(e.receivedAt.monotonicMs).toBeLessThanOrEqual(readBy);
    }
    // Every alarm was read before this thread ran again (300 ms later), however late it was handled.
    const sendToRead = events.map((e, i) => e.receivedAt.monotonicMs - sentAt[i]!);
    expect(Math.min(...sendToRead)).toBeGreaterThanOrEqual(0);
    expect(now() - readBy).toBeGreaterThanOrEqual(300);
    expect(l.stats()).toMatchObject({ received: 50, processed: 50, dropped: 0, queued: 0, stopEvents: 50 });
  });

  it("bounds a lane in the reader while this thread is blocked, counting what it drops", async () => {
    const { l, port } = await listener({ priority: 10 });
    const s = await sender(port, alarms);
    s.go();
    block(5000, () => l.stats().received === alarms.length);
    let st = l.stats();
    expect(st).toMatchObject({ received: 50, ignored: 0, dropped: 40, droppedPriority: 40, processed: 0, queued: 10, peakQueued: 10 });
    expect(adds(st)).toBe(true);
    await l.whenIdle();
    st = l.stats();
    expect(st).toMatchObject({ received: 50, dropped: 40, processed: 10, queued: 0, stopEvents: 10 });
    expect(adds(st)).toBe(true);
  });

  it("counts frames still in transit to this thread as dropped at close", async () => {
    const { l, port } = await listener();
    const s = await sender(port, alarms.slice(0, 20));
    s.go();
    block(5000, () => l.stats().received === 20);
    expect(l.stats()).toMatchObject({ received: 20, queued: 20, processed: 0 });
    await l.close();
    const st = l.stats();
    expect(st).toMatchObject({ received: 20, processed: 0, queued: 0, dropped: 20, droppedPriority: 20 });
    expect(adds(st)).toBe(true);
  });

  it("counts frames already in this thread's lanes once when closed from an event handler", async () => {
    let closing: Promise<void> | undefined;
    const events: SyslogEvent[] = [];
    const ref: { l?: SyslogListener } = {};
    const { l, port } = await listener({
      onEvent: (e) => {
        events.push(e);
        closing ??= ref.l!.close();
      },
    });
    ref.l = l;
    const s = await sender(port, alarms.slice(0, 20));
    s.go();
    // All 20 read before the first is handled (and closes the listener).
    block(5000, () => l.stats().received === 20);
    await s.sentAt;
    while (closing === undefined) await new Promise((r) => setTimeout(r, 2));
    await closing;
    const st = l.stats();
    expect(events).toHaveLength(1);
    expect(st).toMatchObject({ received: 20, processed: 1, queued: 0, dropped: 19, droppedPriority: 19, stopEvents: 1 });
    expect(adds(st)).toBe(true);
  });

  it("same events and counters as reads on the main thread, for a mixed stream", async () => {
    const junk = Buffer.from(formatRfc3164({ timestamp: TS, hostname: "fw1", tag: "kernel", message: "[UFW BLOCK] IN=eth0 SRC=203.0.113.9 DST=198.51.100.3 PROTO=TCP" }));
    const kpi = formatRfc5424({ timestamp: TS, hostname: "app1", appName: "sbc-monitor", procId: "1", msgId: "KPI", message: "periodic KPI report for 192.0.2.3" });
    const other = Buffer.from(formatRfc3164({ timestamp: TS, tag: "", message: ovocAlarmText({ alarmName: "Power Supply Alarm", description: "Power supply failure", source: "PS#1", ipAddress: "192.0.2.4" }) }) + "\0");
    const long = Buffer.concat([ovocConnectionLostAlarm({ deviceIp: "192.0.2.9", timestamp: TS, trailingNul: false }), Buffer.alloc(20_000, 0x20)]);
    const frames = [junk, kpi, other, ovocConnectionEstablished({ deviceIp: "192.0.2.5", timestamp: TS }), alarms[0]!, alarms[0]!, long, alarms[1]!];
    const runs: Array<{ events: string[]; st: Partial<ListenerStats> }> = [];
    for (const readerThread of [true, false]) {
      const events: SyslogEvent[] = [];
      const { l, port } = await listener({ readerThread, onEvent: (e) => events.push(e) });
      const s = await sender(port, frames);
      s.go();
      await s.sentAt;
      while (l.stats().received < frames.length) await new Promise((r) => setTimeout(r, 5));
      await l.whenIdle();
      const { received, bytes, ignored, processed, dropped, queued, truncated, stopEvents, logEvents } = l.stats();
      // Order across lanes depends on timing by design (stop-alarm candidates first): compared as a set.
      const comparable = events.map(({ receivedAt: _r, from, ...e }) => JSON.stringify({ ...e, from: { ...from, port: 0 } })).sort();
      runs.push({ events: comparable, st: { received, bytes, ignored, processed, dropped, queued, truncated, stopEvents, logEvents } });
    }
    expect(runs[0]).toEqual(runs[1]);
    expect(runs[0]!.st).toEqual({ received: 8, bytes: frames.reduce((n, f) => n + f.length, 0), ignored: 2, processed: 6, dropped: 0, queued: 0, truncated: 1, stopEvents: 3, logEvents: 3 });
  });

  it("bounds the bulk lane by bytes as well as frames, counting what it drops", async () => {
    const got: Array<{ len: number; lane: number }> = [];
    const reader = await UdpReader.start(
      { address: "127.0.0.1", port: 0, recvBufferSize: 1 << 20, maxMessageBytes: 2000, prefilter: { priority: ["STOP"], bulk: ["log"], unfiltered: false }, capacity: [3, 100], bulkBytes: 5000, bulkDelayMs: 1, bulkBatch: 256 },
      (frame, _a, _p, lane) => got.push({ len: frame.length, lane }),
      (m) => {
        throw new Error(m);
      },
    );
    open.push(reader);
    // Nothing is ever marked done here: what the reader let through stays queued.
    const frames = [...Array.from({ length: 20 }, () => Buffer.alloc(1000, "log ")), ...Array.from({ length: 5 }, () => Buffer.from("<1>STOP")), Buffer.alloc(3000, "log ")];
    const s = await sender(reader.port, frames);
    s.go();
    await s.sentAt;
    while (reader.stats().received < frames.length) await new Promise((r) => setTimeout(r, 5));
    while (got.length < 8) await new Promise((r) => setTimeout(r, 5));
    // 5 × 1000 bytes fill the 5000-byte bulk bound; the 3000-byte frame is cut to 2000 and dropped too.
    expect(reader.stats()).toEqual({ received: 26, bytes: 20_000 + 35 + 3000, ignored: 0, truncated: 1, dropped: 18, droppedPriority: 2, peakQueued: 8 });
    expect([reader.queued(0), reader.queued(1)]).toEqual([3, 5]);
    expect(got.map((g) => `${g.lane}:${g.len}`).sort()).toEqual([...Array(3).fill("0:7"), ...Array(5).fill("1:1000")]);
    reader.done(1, 1000);
    expect(reader.queued(1)).toBe(4);
    expect(await reader.close()).toEqual([3, 4]);
  });

  it("refuses a port in use with the socket's own message, thread or not", async () => {
    const { port } = await listener();
    for (const readerThread of [true, false]) {
      const second = new SyslogListener({ onEvent: () => {}, udp: { address: "127.0.0.1", port, readerThread } });
      const err = await second.listen().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CapsyncError);
      expect([(err as CapsyncError).code, (err as CapsyncError).message]).toEqual(["syslog-listen", `cannot bind UDP 127.0.0.1:${port}: bind EADDRINUSE 127.0.0.1:${port}`]);
      expect(((err as CapsyncError).cause as NodeJS.ErrnoException).code).toBe("EADDRINUSE");
      await second.close();
    }
  });
});
