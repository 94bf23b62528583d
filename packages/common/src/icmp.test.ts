import { afterAll, describe, expect, it } from "vitest";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { icmpEcho, parsePingOutput, pingArgs } from "./icmp.js";

// iputils-ping 20221126 (Debian 12), the tool .ci/run installs, and busybox's ping.
const IPUTILS_OK = `PING 127.0.15.1 (127.0.15.1) 56(84) bytes of data.
64 bytes from 127.0.15.1: icmp_seq=1 ttl=64 time=0.031 ms
64 bytes from 127.0.15.1: icmp_seq=2 ttl=64 time=0.045 ms
64 bytes from 127.0.15.1: icmp_seq=3 ttl=64 time=0.052 ms

--- 127.0.15.1 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 409ms
rtt min/avg/max/mdev = 0.031/0.042/0.052/0.008 ms
`;
const IPUTILS_LOST = `PING 203.0.113.43 (203.0.113.43) 56(84) bytes of data.
From 203.0.113.41 icmp_seq=1 Destination Host Unreachable

--- 203.0.113.43 ping statistics ---
3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2040ms
`;
const BUSYBOX = `PING 127.0.15.1 (127.0.15.1): 56 data bytes
64 bytes from 127.0.15.1: seq=0 ttl=64 time=0.060 ms

--- 127.0.15.1 ping statistics ---
2 packets transmitted, 1 packets received, 50% packet loss
round-trip min/avg/max = 0.060/0.060/0.060 ms
`;

describe("parsePingOutput", () => {
  it("iputils: counts and min/avg/max", () => {
    expect(parsePingOutput(IPUTILS_OK)).toEqual({ sent: 3, received: 3, rttMs: { min: 0.031, avg: 0.042, max: 0.052 } });
  });
  it("iputils: no replies, errors counted as lost, no rtt", () => {
    expect(parsePingOutput(IPUTILS_LOST)).toEqual({ sent: 3, received: 0 });
  });
  it("busybox: 'packets received' and 'round-trip'", () => {
    expect(parsePingOutput(BUSYBOX)).toEqual({ sent: 2, received: 1, rttMs: { min: 0.06, avg: 0.06, max: 0.06 } });
  });
  it("no summary → undefined", () => {
    expect(parsePingOutput("ping: connect: Network is unreachable\n")).toBeUndefined();
  });
});

describe("pingArgs", () => {
  it("defaults: 3 echoes, 200 ms apart, 1 s reply timeout, 56-byte payload, address last after --", () => {
    expect(pingArgs("127.0.15.1")).toEqual(["-4", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-s", "56", "--", "127.0.15.1"]);
  });
  it("IPv6 and bounded values", () => {
    expect(pingArgs("::1", { count: 99, timeoutMs: 50, intervalMs: 1, size: 1_000_000 })).toEqual(["-6", "-n", "-c", "20", "-i", "0.2", "-W", "0.1", "-s", "65507", "--", "::1"]);
  });
  it.each(["-f", "127.0.0.1; reboot", "localhost", "", "127.0.0.1 -f"])("refuses %j: only IP literals reach ping", (bad) => {
    expect(() => pingArgs(bad)).toThrow(/not an IP address/);
  });
});

describe("icmpEcho (the real ping)", () => {
  it("loopback answers every echo: sent 3, received 3, rtt present", async () => {
    const r = await icmpEcho("127.0.15.1", { count: 3 });
    expect(r.sent).toBe(3);
    expect(r.received).toBe(3);
    expect(r.error).toBeUndefined();
    expect(r.rttMs!.min).toBeGreaterThanOrEqual(0);
    expect(r.rttMs!.max).toBeGreaterThanOrEqual(r.rttMs!.avg);
  });

  it("a hostile address never spawns anything: error, nothing sent", async () => {
    expect(await icmpEcho("127.0.0.1;id")).toEqual({ sent: 0, received: 0, error: 'not an IP address: "127.0.0.1;id"' });
  });

  it("ping missing: a clear error naming the package", async () => {
    expect(await icmpEcho("127.0.15.1", { binary: "/nonexistent/ping" })).toEqual({ sent: 0, received: 0, error: "ping not found: install iputils-ping" });
  });

  it("a ping that prints no summary: its first stderr line is the error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capsync-ping-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const fake = join(dir, "ping");
    writeFileSync(fake, "#!/bin/sh\necho 'ping: connect: Network is unreachable' >&2\nexit 2\n");
    chmodSync(fake, 0o755);
    expect(await icmpEcho("127.0.15.1", { binary: fake })).toEqual({ sent: 0, received: 0, error: "ping: connect: Network is unreachable" });
  });
});
