import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { type SignalEvent, type SignalSource, installStopSignals } from "./signals.js";

function fakeSource(): SignalSource & EventEmitter {
  return new EventEmitter() as SignalSource & EventEmitter;
}

describe("installStopSignals", () => {
  it("first signal aborts and reports count 1; a repeat (any watched signal) reports count 2", () => {
    const src = fakeSource();
    const events: SignalEvent[] = [];
    const s = installStopSignals((e) => events.push(e), { source: src });
    expect(s.signal.aborted).toBe(false);
    src.emit("SIGINT", "SIGINT");
    expect(s.signal.aborted).toBe(true);
    expect(s.signal.reason).toMatchObject({ kind: "signal", signal: "SIGINT", count: 1 });
    src.emit("SIGTERM", "SIGTERM");
    expect(events.map((e) => [e.kind, e.signal, e.count])).toEqual([
      ["signal", "SIGINT", 1],
      ["signal", "SIGTERM", 2],
    ]);
    expect(events[0]!.receivedAt).toEqual({ monotonicMs: expect.any(Number), iso: expect.stringMatching(/Z$/) });
    expect(s.count).toBe(2);
  });

  it("watches SIGINT, SIGTERM and SIGHUP by default and removes exactly its own handlers", () => {
    const src = fakeSource();
    const other = () => {};
    src.on("SIGINT", other);
    const s = installStopSignals(() => {}, { source: src });
    expect(["SIGINT", "SIGTERM", "SIGHUP"].map((n) => src.listenerCount(n))).toEqual([2, 1, 1]);
    s.dispose();
    s.dispose();
    expect(["SIGINT", "SIGTERM", "SIGHUP"].map((n) => src.listenerCount(n))).toEqual([1, 0, 0]);
  });

  it("receives a real signal sent to this process", async () => {
    // SIGUSR2 stands in for SIGINT: same delivery path, and a test bug cannot kill the runner.
    const got = new Promise<SignalEvent>((resolve) => {
      const s = installStopSignals((e) => {
        s.dispose();
        resolve(e);
      }, { signals: ["SIGUSR2"] });
    });
    process.kill(process.pid, "SIGUSR2");
    await expect(got).resolves.toMatchObject({ kind: "signal", signal: "SIGUSR2", count: 1 });
    expect(process.listenerCount("SIGUSR2")).toBe(0);
  });
});
