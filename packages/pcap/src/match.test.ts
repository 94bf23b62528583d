// Matching against synthetic captures written by our writer, where the truth is known: which
// packets each hop dropped, every one-way delay, and each point's clock.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { matchPair } from "./match.js";
import type { MatchOptions, PacketOutcome, PairResult } from "./match-types.js";
import { writeScenario, type ScenarioResult, type ScenarioSpec } from "./synth.js";

const dir = mkdtempSync(join(tmpdir(), "capsync-match-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function run(spec: ScenarioSpec, opts: MatchOptions = {}): Promise<{ sc: ScenarioResult; r: PairResult; outcomes: PacketOutcome[] }> {
  const d = join(dir, `s${n++}`);
  const { mkdirSync } = await import("node:fs");
  mkdirSync(d);
  const sc = await writeScenario(d, spec);
  const [a, b] = sc.points as [ScenarioResult["points"][number], ScenarioResult["points"][number]];
  const outcomes: PacketOutcome[] = [];
  const r = await matchPair(
    { name: a.name, files: [a.file], startNanos: a.startNanos, endNanos: a.endNanos },
    { name: b.name, files: [b.file], startNanos: b.startNanos, endNanos: b.endNanos },
    { ...opts, onOutcome: (o) => outcomes.push(o) },
  );
  return { sc, r, outcomes };
}

/** Nearest-rank quantile of true delays. */
const q = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.max(0, Math.ceil(p * xs.length) - 1)]!;
const ipIdOf = (o: PacketOutcome) => (o.packet.ip?.version === 4 ? o.packet.ip.id : -1);

function expectExactLoss(sc: ScenarioResult, r: PairResult, outcomes: PacketOutcome[]): void {
  for (const dirIdx of [0, 1] as const) {
    const truthLost = sc.packets.filter((p) => p.dir === dirIdx && p.lostAtHop === 0).map((p) => p.ipId);
    const foundLost = outcomes.filter((o) => o.direction === dirIdx && o.status === "lost").map(ipIdOf);
    expect(foundLost.sort((x, y) => x - y)).toEqual(truthLost.sort((x, y) => x - y));
    const d = r.directions[dirIdx];
    expect(d.lost).toBe(truthLost.length);
    expect(d.sent).toBe(sc.packets.filter((p) => p.dir === dirIdx).length);
    expect(d.delivered).toBe(d.sent - d.lost);
    expect(d.duplicates).toBe(sc.packets.filter((p) => p.dir === dirIdx && p.duplicated).length);
    expect(d.unexpected).toBe(0);
  }
}

function expectDelays(sc: ScenarioResult, r: PairResult, trueOffset: bigint): void {
  const err = Math.abs(Number(r.clock.offsetNanos - trueOffset));
  // The estimate's interval holds the true offset, and it is no wider than half the fastest round trip.
  expect(err).toBeLessThanOrEqual(r.clock.uncertaintyNanos!);
  for (const dirIdx of [0, 1] as const) {
    const delays = sc.packets.filter((p) => p.dir === dirIdx && p.lostAtHop === null).map((p) => p.hopDelays[0]!);
    const got = r.directions[dirIdx].delay!;
    // Stated tolerance: the clock error plus 1 % (log histogram) plus 1 µs.
    const tol = (v: number) => err + 0.01 * v + 1000;
    expect(Math.abs(got.minNanos - q(delays, 0))).toBeLessThanOrEqual(tol(q(delays, 0)));
    expect(Math.abs(got.medianNanos - q(delays, 0.5))).toBeLessThanOrEqual(tol(q(delays, 0.5)));
    expect(Math.abs(got.p99Nanos - q(delays, 0.99))).toBeLessThanOrEqual(tol(q(delays, 0.99)));
    expect(Math.abs(got.maxNanos - q(delays, 1))).toBeLessThanOrEqual(tol(q(delays, 1)));
  }
}

describe("matchPair", () => {
  it("finds exactly the dropped packets, the blackout, the delay and the clock offset (device Ethernet, server -i any)", async () => {
    const OFFSET = 2_500_000_123n;
    const { sc, r, outcomes } = await run({
      seed: 3,
      durationMs: 30_000,
      forwardIntervalMs: 20,
      reverseIntervalMs: 25,
      points: [{ name: "msbr" }, { name: "ovoc", linktype: "sll2", clockOffsetNanos: OFFSET }],
      hops: [{ delayMs: [5, 15], loss: 0.03, blackoutFromMs: 25_000 }],
      duplicateRate: 0.01,
      retransmit: true,
      unrelated: true,
    });
    expect(r.clock.method).toBe("two-way-min-delay");
    expectExactLoss(sc, r, outcomes);
    expectDelays(sc, r, OFFSET);
    expect(r.clock.uncertaintyNanos!).toBeLessThan(5_100_000); // ≈ half of the 10 ms fastest round trip
    // The blackout: everything from 25 s on was lost; the lists straddle it.
    const f = r.directions[0].failure!;
    const firstBlack = sc.packets.find((p) => p.dir === 0 && Number(p.sentNanos - 1_790_000_000_000_000_000n) >= 25_000e6)!;
    expect(f.kind).toBe("blackout");
    expect(f.startNanos).toBe(firstBlack.sentNanos);
    expect(f.firstLost).toHaveLength(5);
    expect(f.lastDelivered).toHaveLength(5);
    expect(f.lastDelivered.every((x) => x.tsNanos < f.startNanos && x.delayNanos! > 0)).toBe(true);
    expect(f.firstLost[0]!.summary).toMatch(/^(TCP|UDP|ICMP) 10\.1\.0\.2/);
    expect(r.directions[1].failure?.kind).toBe("burst");
    // Out-of-scope and non-IP traffic at the device is counted, not matched.
    expect(r.sides[0].outOfScope).toBe(300);
    expect(r.sides[0].nonIp).toBe(300);
    // Per flow: three flows each way, their losses add up.
    expect(r.directions[0].flows.map((x) => x.flow).sort()).toEqual(["ICMP 10.1.0.2 > 10.9.0.5", "TCP 10.1.0.2:40001 > 10.9.0.5:443", "UDP 10.1.0.2:40001 > 10.9.0.5:443"]);
    expect(r.directions[0].flows.reduce((s, x) => s + x.lost, 0)).toBe(r.directions[0].lost);
    // Reordering: only a retransmission sent at the same instant as a new segment can overtake.
    const reord = (dirIdx: 0 | 1) => {
      let max = -Infinity;
      let c = 0;
      for (const o of outcomes.filter((x) => x.direction === dirIdx && x.status === "delivered")) {
        const arrival = Number(o.tsNanos % 10n ** 12n) + o.delayNanos!;
        if (arrival < max) c++;
        max = Math.max(max, arrival);
      }
      return c;
    };
    expect(r.directions[0].reordered).toBe(reord(0));
    expect(r.directions[1].reordered).toBe(reord(1));
    // Timeline bins add up to the totals.
    const tl = r.directions[0].timeline;
    expect(tl.lost.reduce((s, x) => s + x, 0)).toBe(r.directions[0].lost);
    expect(tl.delivered.reduce((s, x) => s + x, 0)).toBe(r.directions[0].delivered);
  });

  it("a device clock hours off and drifting 40 ppm: drift fitted, delays still right", async () => {
    const OFFSET = -3n * 3600n * 1_000_000_000n + 123_456_789n;
    const { sc, r, outcomes } = await run({
      seed: 5,
      durationMs: 600_000,
      forwardIntervalMs: 250,
      reverseIntervalMs: 300,
      points: [{ name: "dev" }, { name: "srv", clockOffsetNanos: OFFSET, driftPpm: 40 }],
      hops: [{ delayMs: [1, 3], loss: 0.02 }],
    });
    expectExactLoss(sc, r, outcomes);
    expect(r.clock.driftPpm).toBeGreaterThan(38);
    expect(r.clock.driftPpm).toBeLessThan(42);
    // Without the drift the last delays would be off by 24 ms; with it, within the stated tolerance.
    const err = Math.abs(Number(r.clock.offsetNanos - OFFSET));
    expect(err).toBeLessThanOrEqual(r.clock.uncertaintyNanos!);
    const got = r.directions[0].delay!;
    expect(got.maxNanos).toBeLessThan(3e6 + r.clock.uncertaintyNanos! + 1e5);
    expect(got.minNanos).toBeGreaterThan(1e6 - r.clock.uncertaintyNanos! - 1e5);
  });

  it("NAT between the points: matched when addresses and ports are ignored, not otherwise", async () => {
    const spec: ScenarioSpec = {
      seed: 9,
      durationMs: 10_000,
      forwardIntervalMs: 20,
      reverseIntervalMs: 20,
      points: [{ name: "dev" }, { name: "srv", clockOffsetNanos: 5_000_000n, natDevice: { address: "203.0.113.7", port: 61000 } }],
      hops: [{ delayMs: [2, 4], loss: 0.05 }],
    };
    const plain = await run(spec);
    expect(plain.r.clock.method).toBe("none");
    expect(plain.r.directions[0].delivered + plain.r.directions[1].delivered).toBe(0);
    const nat = await run(spec, { ignore: ["addresses", "ports"] });
    expectExactLoss(nat.sc, nat.r, nat.outcomes);
    expectDelays(nat.sc, nat.r, 5_000_000n);
    expect(nat.r.directions[1].flows[0]!.flow).toBe("TCP 10.9.0.5:443 > 203.0.113.7:61000"); // as the sender (server) saw it
  });

  it("IPv6 (no IP id): identities from ports, seq and payload", async () => {
    const { sc, r, outcomes } = await run({
      seed: 11,
      durationMs: 5_000,
      forwardIntervalMs: 10,
      reverseIntervalMs: 15,
      ipv6: true,
      points: [{ name: "dev", linktype: "sll2" }, { name: "srv", clockOffsetNanos: -700_000_000n }],
      hops: [{ delayMs: [3, 6], loss: 0.04 }],
    });
    for (const dirIdx of [0, 1] as const) {
      const truth = sc.packets.filter((p) => p.dir === dirIdx && p.lostAtHop === 0).length;
      expect(outcomes.filter((o) => o.direction === dirIdx && o.status === "lost")).toHaveLength(truth);
      expect(r.directions[dirIdx].lost).toBe(truth);
    }
    expectDelays(sc, r, -700_000_000n);
  });

  it("traffic one way only: the offset assumes the fastest packet took no time, and says so", async () => {
    const { r } = await run({
      seed: 13,
      durationMs: 5_000,
      forwardIntervalMs: 10,
      reverseIntervalMs: 1e9,
      points: [{ name: "dev" }, { name: "srv", clockOffsetNanos: 42_000_000n }],
      hops: [{ delayMs: [4, 8], loss: 0.1 }],
    });
    expect(r.clock.method).toBe("one-way-min-delay");
    expect(r.clock.uncertaintyNanos).toBeNull();
    expect(r.clock.notes.join(" ")).toMatch(/one direction only/);
    expect(r.directions[0].delay!.minNanos).toBe(0);
    expect(Number(r.clock.offsetNanos - 42_000_000n)).toBeGreaterThanOrEqual(4_000_000);
  });

  it("bounded window: with maxPending far below the packets in flight, memory stays capped and it says so", async () => {
    const { r } = await run(
      {
        seed: 17,
        durationMs: 3_000,
        forwardIntervalMs: 1,
        reverseIntervalMs: 1,
        points: [{ name: "dev" }, { name: "srv" }],
        hops: [{ delayMs: [40, 60] }],
      },
      { maxPending: 20 },
    );
    expect(r.directions[0].decidedEarly).toBeGreaterThan(0);
    expect(r.notes.join(" ")).toMatch(/decided before maxDelay/);
  });
});

describe("matching pairs one after another", () => {
  it("a pair matched after another (its clock samples and send rings reuse that one's columns) gives the same result as the first time", async () => {
    const { mkdirSync } = await import("node:fs");
    const pairOf = async (name: string, spec: ScenarioSpec) => {
      const d = join(dir, name);
      mkdirSync(d);
      const [a, b] = (await writeScenario(d, spec)).points as [ScenarioResult["points"][number], ScenarioResult["points"][number]];
      return () => {
        const outcomes: PacketOutcome[] = [];
        const r = matchPair({ name: a.name, files: [a.file] }, { name: b.name, files: [b.file] }, { onOutcome: (o) => outcomes.push(o) });
        return r.then((res) => ({ res, outcomes }));
      };
    };
    const x = await pairOf("reuse-x", { seed: 3, durationMs: 4_000, forwardIntervalMs: 5, reverseIntervalMs: 7, points: [{ name: "a" }, { name: "b", clockOffsetNanos: 30_000_000n }], hops: [{ delayMs: [2, 6], loss: 0.03 }] });
    const y = await pairOf("reuse-y", { seed: 4, durationMs: 6_000, forwardIntervalMs: 3, reverseIntervalMs: 4, points: [{ name: "c" }, { name: "d", linktype: "sll2", clockOffsetNanos: -9_000_000n }], hops: [{ delayMs: [1, 9], loss: 0.1, blackoutFromMs: 4_000 }], duplicateRate: 0.02 });
    const first = await x();
    const other = await y();
    const again = await x();
    expect(other.res.directions[0].lost).toBeGreaterThan(0);
    expect(first.res.directions[0].sent).toBeGreaterThan(500);
    expect(again.res).toEqual(first.res);
    expect(again.outcomes).toEqual(first.outcomes);
  });
});
