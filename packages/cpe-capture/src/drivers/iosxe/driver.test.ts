// IOS-XE specifics beyond the shared contract (test/contract/drivers.test.ts): answer parsing, the
// exact RPCs and CLI lines sent, the spec reaching the device's capture, VRF checks, unique names,
// SCP/SFTP verification, typed RESTCONF errors, the user EXEC prompt.
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { CapsyncError, ConfigError, DeviceAuthError, DeviceProtocolError } from "@capsync/protocol";
import { startIosXeDevice, type IosXeDevice, type IosXeDeviceOptions } from "@capsync/emulators";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { DriverOptions, DriverTask } from "../driver.js";
import { IosXeDriver, epcVerdict, newCaptureName, parseShowMonitorCapture, parseShowVersion, type IosXeHandle } from "./driver.js";
import { describeRestconfErrors, parseNativeFacts, parseRestconfErrors, parseRpcOutput, parseVrfForwarding, vrfForwardingPath } from "./restconf.js";
import { cliErrors } from "./ssh-cli.js";

const USER = "admin";
const PASS = "Xe-Unit-S3cret!";

describe("answer parsing (golden)", () => {
  const envelopes: Array<{ name: string; input: string; expected: ReturnType<typeof parseRestconfErrors> }> = [
    {
      name: "RFC 8040 envelope",
      input: '{"ietf-restconf:errors":{"error":[{"error-type":"application","error-tag":"invalid-value","error-path":"/Cisco-IOS-XE-rpc:monitor/input/buffer/size","error-message":"out of range"}]}}',
      expected: { ok: true, errors: [{ type: "application", tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/buffer/size", message: "out of range" }] },
    },
    { name: "no message", input: '{"ietf-restconf:errors":{"error":[{"error-tag":"access-denied"}]}}', expected: { ok: true, errors: [{ type: "", tag: "access-denied", path: undefined, message: "" }] } },
    { name: "empty list", input: '{"ietf-restconf:errors":{"error":[]}}', expected: { ok: false, code: "bad-field", field: "error" } },
    { name: "no tag", input: '{"ietf-restconf:errors":{"error":[{"error-message":"x"}]}}', expected: { ok: false, code: "bad-field", field: "error-tag" } },
    { name: "html", input: "<html>500</html>", expected: { ok: false, code: "not-json" } },
    { name: "other JSON", input: '{"Cisco-IOS-XE-rpc:output":{}}', expected: { ok: false, code: "bad-field", field: "ietf-restconf:errors" } },
  ];
  it.each(envelopes)("parseRestconfErrors: $name", ({ input, expected }) => expect(parseRestconfErrors(input)).toEqual(expected));

  it("describes an error with its tag and path", () => {
    const r = parseRestconfErrors(envelopes[0]!.input);
    expect(r.ok && describeRestconfErrors(r.errors)).toBe("out of range (invalid-value at /Cisco-IOS-XE-rpc:monitor/input/buffer/size)");
  });

  it("parseRpcOutput: result, empty result, 204, wrong shapes", () => {
    expect(parseRpcOutput('{"Cisco-IOS-XE-rpc:output":{"result":"Started capture point : CS1\\n"}}')).toEqual({ ok: true, result: "Started capture point : CS1\n" });
    expect(parseRpcOutput('{"Cisco-IOS-XE-rpc:output":{}}')).toEqual({ ok: true, result: "" });
    expect(parseRpcOutput("")).toEqual({ ok: true, result: "" });
    expect(parseRpcOutput('{"Cisco-IOS-XE-rpc:output":{"result":5}}')).toEqual({ ok: false, code: "bad-field", field: "result" });
    expect(parseRpcOutput('{"output":{"result":"x"}}')).toEqual({ ok: false, code: "bad-field", field: "Cisco-IOS-XE-rpc:output" });
    expect(parseRpcOutput('{"Cisco-IOS-XE-rpc:output":{"result":"')).toEqual({ ok: false, code: "not-json" });
  });

  it("parseNativeFacts and the VRF leaf", () => {
    expect(parseNativeFacts('{"Cisco-IOS-XE-native:native":{"version":"17.9","hostname":"r1","license":{"udi":{"pid":"C8000V","sn":"9X"}}}}')).toEqual({ ok: true, version: "17.9", hostname: "r1", pid: "C8000V", sn: "9X" });
    expect(parseNativeFacts('{"Cisco-IOS-XE-native:native":{"version":"17.9","hostname":"r1"}}')).toEqual({ ok: true, version: "17.9", hostname: "r1", pid: undefined, sn: undefined });
    expect(parseNativeFacts('{"Cisco-IOS-XE-native:native":{"hostname":"r1"}}')).toEqual({ ok: false, code: "bad-field", field: "version" });
    expect(parseVrfForwarding('{"Cisco-IOS-XE-native:forwarding":"MGMT"}')).toEqual({ ok: true, vrf: "MGMT" });
    expect(parseVrfForwarding("")).toEqual({ ok: true, vrf: undefined });
    expect(vrfForwardingPath("GigabitEthernet0/0/1")).toBe("/restconf/data/Cisco-IOS-XE-native:native/interface/GigabitEthernet=0%2F0%2F1/vrf/forwarding");
  });

  it("reads IOS output: % errors, show monitor capture, show version", () => {
    expect(cliErrors("x\n% Invalid input detected at '^' marker.\n%Error deleting bootflash:a (No such file or directory)\n")).toEqual([
      "% Invalid input detected at '^' marker.",
      "%Error deleting bootflash:a (No such file or directory)",
    ]);
    expect(epcVerdict("start", "Started capture point : CS1\n")).toEqual({ ok: true });
    expect(epcVerdict("start", "% Capture point CS1 is already active\n")).toEqual({ ok: true });
    expect(epcVerdict("start", "% Capture point CS1 has no filter; add 'match any' or a match filter\n")).toEqual({ ok: false, reason: "% Capture point CS1 has no filter; add 'match any' or a match filter" });
    expect(epcVerdict("delete", "%Error deleting bootflash:CS1.pcap (No such file or directory)\n")).toEqual({ ok: true });
    expect(epcVerdict("export", "Export failed: no space left\n").ok).toBe(false);
    expect(parseShowMonitorCapture("Status Information for Capture CS1\n   Status : Active\n")).toBe("active");
    expect(parseShowMonitorCapture("   Status : Inactive")).toBe("inactive");
    expect(parseShowMonitorCapture("Capture point CS1 does not exist")).toBeUndefined();
    const v = "Cisco IOS XE Software, Version 17.09.04a\nr1 uptime is 1 hour\ncisco C8000V (VXE) processor (revision VXE) with 2028465K/3075K bytes of memory.\nProcessor board ID 9ABC\n";
    expect(parseShowVersion(v)).toEqual({ ok: true, version: "17.09.04a", model: "C8000V", serial: "9ABC", hostname: "r1" });
    expect(parseShowVersion("nothing")).toEqual({ ok: false, field: "version" });
  });

  it("capture point names are unique and CLI-safe", () => {
    const names = new Set(Array.from({ length: 200 }, () => newCaptureName()));
    expect(names.size).toBe(200);
    for (const n of names) expect(n).toMatch(/^CS[A-Z0-9]{9}$/);
  });
});

describe.each(["restconf", "ssh-cli"] as const)("against the emulator over %s", (transport) => {
  let dev: IosXeDevice;
  let outDir: string;
  let tasks: DriverTask[];
  const made: IosXeDriver[] = [];
  const start = async (o: Partial<IosXeDeviceOptions> = {}) => {
    dev = await startIosXeDevice({ address: "127.0.0.41", username: USER, password: PASS, packetsPerSecond: 500, ...o });
  };
  const driver = (over: Partial<DriverOptions> = {}) => {
    const d = new IosXeDriver({
      address: dev.address,
      type: "iosxe",
      username: USER,
      password: PASS,
      restPort: dev.restPort,
      sshPort: dev.sshPort,
      tls: { ca: dev.certificate },
      transport,
      timeouts: { restMs: 3000, sftpMs: 3000 },
      retries: { rest: 1, sftp: 1, backoffMs: 10 },
      onTask: (t) => tasks.push(t),
      ...over,
    });
    made.push(d);
    return d;
  };
  beforeAll(async () => {
    outDir = await fsp.mkdtemp(path.join(tmpdir(), `capsync-iosxe-${transport}-`));
  });
  afterAll(async () => {
    await fsp.rm(outDir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await Promise.all(made.splice(0).map((d) => d.cleanup()));
    await dev?.close();
  });

  it("compiles the spec onto the device: interfaces, direction, match, buffer, limits — and the file holds only matching packets", async () => {
    await start();
    tasks = [];
    const drv = driver({ fileTransfer: transport === "restconf" ? "sftp" : "scp" });
    const h = (await drv.startCapture({
      interfaces: ["Gi1", "GigabitEthernet2"],
      direction: "in",
      filter: { protocol: "udp", src: "192.0.2.1", dport: 5060 },
      snaplen: 96,
      limits: { bufferMb: 4, durationSec: 600 },
    })) as IosXeHandle;
    const name = h.capture;
    expect(h).toMatchObject({ type: "iosxe", interfaces: ["GigabitEthernet1", "GigabitEthernet2"], transport });
    expect(dev.capturePoint(name)).toMatchObject({
      state: "active",
      interfaces: [
        { name: "GigabitEthernet1", direction: "in" },
        { name: "GigabitEthernet2", direction: "in" },
      ],
      match: "ipv4 protocol udp host 192.0.2.1 any eq 5060",
      bufferMb: 4,
      limit: { duration: 600, packetLen: 96 },
    });
    const lines = dev.state().commands.filter((c) => c.startsWith("monitor capture"));
    if (transport === "ssh-cli") {
      expect(lines).toEqual([
        `monitor capture ${name} interface GigabitEthernet1 in`,
        `monitor capture ${name} interface GigabitEthernet2 in`,
        `monitor capture ${name} match ipv4 protocol udp host 192.0.2.1 any eq 5060`,
        `monitor capture ${name} buffer size 4`,
        `monitor capture ${name} limit duration 600 packet-len 96`,
        `monitor capture ${name} start`,
      ]);
      expect(dev.state().commands[0]).toBe("terminal length 0");
    } else {
      expect(dev.state().rpcs.map((r) => [r.rpc, r.input, r.httpStatus])).toEqual([
        ["monitor", { capture: name, interface: "GigabitEthernet1", in: [null], match: "ipv4 protocol udp host 192.0.2.1 any eq 5060", buffer: { size: 4 }, limit: { duration: 600, "packet-len": 96 } }, 200],
        ["monitor", { capture: name, interface: "GigabitEthernet2", in: [null] }, 200],
        ["monitor", { capture: name, start: [null] }, 200],
      ]);
      expect(tasks.map((t) => t.name)).toEqual(["define-capture", "define-capture", "start-capture"]);
    }
    await new Promise((r) => setTimeout(r, 120));
    const remote = await drv.stopCapture(h);
    expect(remote).toMatchObject({ path: `bootflash:${name}.pcap`, protocol: transport === "restconf" ? "sftp" : "scp" });
    expect(dev.capturePoint(name)?.state).toBe("exported");
    const local = await drv.fetchCapture(remote, outDir);
    const data = await fsp.readFile(local.path);
    expect(data.equals(dev.lastExport()!.data)).toBe(true);
    // Only packets into the device (odd synthetic packets: peer 192.0.2.1 → device), UDP to 5060, cut to 96 bytes.
    const packets = records(data);
    expect(packets.length).toBeGreaterThan(5);
    for (const p of packets) {
      expect(p.incl).toBe(Math.min(96, p.orig));
      expect([...p.data.subarray(26, 30)].join(".")).toBe("192.0.2.1");
      expect([...p.data.subarray(30, 34)].join(".")).toBe(dev.address);
      expect(p.data.readUInt16BE(36)).toBe(5060);
    }
    // Fetched, then deleted from bootflash: and the capture point removed.
    expect(dev.state().bootflash).toEqual([]);
    expect(dev.capturePoint(name)).toBeUndefined();
  });

  it("two captures at once on one device never collide", async () => {
    await start();
    tasks = [];
    const a = driver();
    const b = driver();
    const [ha, hb] = (await Promise.all([a.startCapture({ interfaces: ["Gi1"] }), b.startCapture({ interfaces: ["Gi1"], filter: { protocol: "tcp" } })])) as IosXeHandle[];
    expect(ha!.capture).not.toBe(hb!.capture);
    expect(dev.state().capturePoints.map((c) => c.state)).toEqual(["active", "active"]);
    const [ra, rb] = await Promise.all([a.stopCapture(ha!), b.stopCapture(hb!)]);
    expect(ra!.path).not.toBe(rb!.path);
    const fa = await a.fetchCapture(ra!, path.join(outDir, `two-${transport}`));
    const fb = await b.fetchCapture(rb!, path.join(outDir, `two-${transport}`), { fileName: "b.pcap" });
    expect(records(await fsp.readFile(fa.path)).length).toBeGreaterThan(0);
    expect(records(await fsp.readFile(fb.path))).toEqual([]); // the synthetic flow is UDP only
  });

  it("checks the VRF of the interfaces before defining anything", async () => {
    await start();
    tasks = [];
    const drv = driver();
    const err = await drv.startCapture({ interfaces: ["Gi1", "Gi4"], vrf: "MGMT" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(`iosxe ${dev.address}: vrf: GigabitEthernet1 is in the global table, not VRF MGMT`);
    expect(dev.state().capturePoints).toEqual([]);
    const h = await drv.startCapture({ interfaces: ["Gi4"], vrf: "MGMT" });
    expect(dev.capturePoint((h as IosXeHandle).capture)?.state).toBe("active");
    expect(tasks.filter((t) => t.name === "check-vrf").every((t) => t.status === "ok")).toBe(true);
  });

  it("a spec EPC cannot express fails before anything is sent, naming device and field", async () => {
    await start();
    tasks = [];
    const drv = driver();
    for (const [spec, field] of [
      [{ interfaces: ["Gi1"], limits: { bufferMb: 200 } }, "limits.bufferMb"],
      [{ interfaces: ["Gi1"], limits: { maxSizeMb: 100, ringFiles: 4 } }, "limits.ringFiles"],
      [{ interfaces: ["Gi1"], snaplen: 32 }, "snaplen"],
      [{ interfaces: [] }, "interfaces"],
      [{ interfaces: ["Gi1"], filter: { dport: 53 } }, "filter.dport"],
    ] as const) {
      const err = await drv.startCapture(spec as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(`iosxe ${dev.address}: ${field}`);
    }
    expect(tasks).toEqual([]);
    expect(dev.state().commands).toEqual([]);
    expect(dev.state().rpcs).toEqual([]);
  });

  it("an interface the device does not have is the device's own error, typed, and nothing stays defined", async () => {
    await start();
    tasks = [];
    const err = await driver().startCapture({ interfaces: ["GigabitEthernet9"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceProtocolError);
    expect((err as DeviceProtocolError).code).toBe("device-rejected");
    if (transport === "restconf") {
      expect(err).toMatchObject({ httpStatus: 400 });
      expect((err as Error).message).toContain("Invalid interface name: GigabitEthernet9 does not exist on this device (invalid-value at /Cisco-IOS-XE-rpc:monitor/input/interface)");
      expect(tasks[0]).toMatchObject({ name: "define-capture", status: "failed", httpStatus: 400, output: "Invalid interface name: GigabitEthernet9 does not exist on this device" });
    } else {
      expect((err as Error).message).toContain("% Invalid input detected at '^' marker.");
    }
    expect(dev.state().capturePoints).toEqual([]);
  });

  it("a stop after the device stopped by itself (limit duration) still exports", async () => {
    await start();
    tasks = [];
    const drv = driver();
    const h = await drv.startCapture({ interfaces: ["Gi1"], limits: { durationSec: 1 } });
    await new Promise((r) => setTimeout(r, 1100));
    const remote = await drv.stopCapture(h);
    const local = await drv.fetchCapture(remote, path.join(outDir, `limit-${transport}`));
    const n = records(await fsp.readFile(local.path)).length;
    expect(n).toBeGreaterThanOrEqual(490);
    expect(n).toBeLessThanOrEqual(500); // 1 s at 500 packets/s
  });

  it("a short or corrupt download is retried, then verified", async () => {
    await start();
    tasks = [];
    const drv = driver({ fileTransfer: transport === "restconf" ? "scp" : "sftp" });
    const h = await drv.startCapture({ interfaces: ["Gi1"] });
    await new Promise((r) => setTimeout(r, 50));
    const remote = await drv.stopCapture(h);
    dev.setFault({ file: { kind: "truncate", times: 1 } });
    const local = await drv.fetchCapture(remote, path.join(outDir, `retry-${transport}`));
    expect((await fsp.readFile(local.path)).equals(dev.lastExport()!.data)).toBe(true);
    const fetches = tasks.filter((t) => t.name === "fetch-capture");
    expect(fetches.map((t) => [t.status, t.code])).toEqual([
      ["failed", "capture-size-mismatch"],
      ["ok", undefined],
    ]);
  });

  it("a missing file is capture-file-missing, not retried", async () => {
    await start();
    tasks = [];
    const drv = driver();
    const err = await drv
      .fetchCapture({ device: dev.address, path: "bootflash:CSNOSUCH.pcap", protocol: transport === "restconf" ? "sftp" : "scp", stoppedAt: "", fileName: "x.pcap" }, outDir)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceProtocolError);
    expect((err as CapsyncError).code).toBe("capture-file-missing");
    expect(tasks.filter((t) => t.name === "fetch-capture")).toHaveLength(1);
  });

  it("never leaks the password", async () => {
    await start();
    tasks = [];
    const bad = driver({ password: `${PASS}-wrong` });
    const err = await bad.probe().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceAuthError);
    expect(JSON.stringify(tasks) + String((err as Error).message)).not.toContain(PASS);
  });
});

describe("SSH CLI specifics", () => {
  it("refuses a user that lands in user EXEC (>) with a clear error", async () => {
    const dev = await startIosXeDevice({ address: "127.0.0.42", username: USER, password: PASS, privilege: 1 });
    const drv = new IosXeDriver({ address: dev.address, type: "iosxe", username: USER, password: PASS, sshPort: dev.sshPort, transport: "ssh-cli", retries: 0, timeouts: { restMs: 2000 } });
    try {
      const err = await drv.probe().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeviceProtocolError);
      expect(err).toMatchObject({ code: "cli-not-privileged" });
      expect((err as Error).message).toContain("lands in user EXEC (edge-rtr1>); capsync needs privilege 15 (edge-rtr1#)");
    } finally {
      await drv.cleanup();
      await dev.close();
    }
  });

  it("a device without RESTCONF is reached over ssh-cli; over restconf it is a typed 404", async () => {
    const dev = await startIosXeDevice({ address: "127.0.0.43", username: USER, password: PASS, restconf: false });
    const base = { address: dev.address, type: "iosxe" as const, username: USER, password: PASS, restPort: dev.restPort, sshPort: dev.sshPort, tls: "insecure" as const, retries: 0 };
    const ssh = new IosXeDriver({ ...base, transport: "ssh-cli" });
    const rc = new IosXeDriver({ ...base, transport: "restconf" });
    try {
      expect(await ssh.probe()).toEqual({ vendor: "Cisco", model: "C8000V", version: "17.09.04a", serial: expect.stringMatching(/^9/), warnings: [] });
      const err = await rc.probe().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "device-rejected", httpStatus: 404 });
    } finally {
      await Promise.all([ssh.cleanup(), rc.cleanup()]);
      await dev.close();
    }
  });
});

/** Classic little-endian pcap records (the emulator writes that format). */
function records(file: Buffer): { incl: number; orig: number; data: Buffer }[] {
  expect(file.readUInt32LE(0)).toBe(0xa1b2c3d4);
  const out: { incl: number; orig: number; data: Buffer }[] = [];
  for (let off = 24; off + 16 <= file.length; ) {
    const incl = file.readUInt32LE(off + 8);
    out.push({ incl, orig: file.readUInt32LE(off + 12), data: file.subarray(off + 16, off + 16 + incl) });
    off += 16 + incl;
  }
  return out;
}
