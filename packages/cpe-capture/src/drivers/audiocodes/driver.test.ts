// AudioCodes specifics beyond the shared contract (test/contract/drivers.test.ts): wire parsing,
// the exact CLI scripts, show polling, download verification, host-key pinning, odd answers.
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { DeviceAuthError, DeviceProtocolError, DeviceUnreachableError } from "@capsync/protocol";
import { DESCRIPTIONS, sharedHostKey, startAudioCodesDevice, type AudioCodesDevice } from "@capsync/emulators";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { DriverOptions, DriverTask } from "../driver.js";
import { AudioCodesDriver, hasCaptureMagic, parseCliAnswer, parseShowOutput, parseStatusAnswer } from "./driver.js";

const USER = "Admin";
const PASS = "Unit-S3cret#";

describe("wire parsing (golden)", () => {
  const cli: Array<{ name: string; input: string; expected: ReturnType<typeof parseCliAnswer> }> = [
    { name: "success", input: '{"status":"success","output":"MSBR# x\\n"}', expected: { ok: true, status: "success", output: "MSBR# x\n", description: undefined } },
    { name: "failure with description", input: '{"status":"failure","description":"Line 1: bad"}', expected: { ok: true, status: "failure", output: "", description: "Line 1: bad" } },
    { name: "cut body", input: '{"status":"success","output":"', expected: { ok: false, code: "not-json" } },
    { name: "array", input: "[1]", expected: { ok: false, code: "not-object" } },
    { name: "null", input: "null", expected: { ok: false, code: "not-object" } },
    { name: "output not a string", input: '{"status":"success","output":5}', expected: { ok: false, code: "bad-field", field: "output" } },
    { name: "html error page", input: "<html>401</html>", expected: { ok: false, code: "not-json" } },
  ];
  it.each(cli)("parseCliAnswer: $name", ({ input, expected }) => expect(parseCliAnswer(input)).toEqual(expected));

  it("parseStatusAnswer requires product, version and serial", () => {
    expect(parseStatusAnswer('{"productType":"M500L MSBR","versionID":"7.2","serialNumber":"1","x":1}')).toEqual({ ok: true, productType: "M500L MSBR", versionID: "7.2", serialNumber: "1" });
    expect(parseStatusAnswer('{"productType":"M","versionID":"7.2"}')).toEqual({ ok: false, code: "bad-field", field: "serialNumber" });
    expect(parseStatusAnswer('{"productType":"","versionID":"7.2","serialNumber":"1"}')).toEqual({ ok: false, code: "bad-field", field: "productType" });
    expect(parseStatusAnswer("")).toEqual({ ok: false, code: "not-json" });
  });

  it("parseShowOutput takes the last verdict", () => {
    expect(parseShowOutput("Debug capture physical is active\nInterfaces: eth-wan")).toBe("active");
    expect(parseShowOutput("Debug capture physical is not active\n")).toBe("inactive");
    expect(parseShowOutput("x# stop\nDebug capture physical is active\nx# show\nDebug capture physical is not active")).toBe("inactive");
    expect(parseShowOutput("Debug capture physical is already active")).toBeUndefined();
    expect(parseShowOutput("")).toBeUndefined();
  });

  it("hasCaptureMagic knows pcap (both orders, µs and ns) and pcapng", () => {
    for (const hex of ["a1b2c3d4", "d4c3b2a1", "a1b23c4d", "4d3cb2a1", "0a0d0d0a"]) expect(hasCaptureMagic(Buffer.from(hex + "00", "hex"))).toBe(true);
    expect(hasCaptureMagic(Buffer.from("XXXX"))).toBe(false);
    expect(hasCaptureMagic(Buffer.from("d4c3", "hex"))).toBe(false);
  });
});

describe("CLI scripts", () => {
  const base = { address: "192.0.2.1", username: "u", password: "p" };
  it("MSBR: stop, every interface, start, show", () => {
    expect(new AudioCodesDriver({ ...base, type: "msbr" }).startScript(["eth-wan", "cellular-wan"])).toEqual([
      "debug capture data physical stop",
      "debug capture data physical eth-wan",
      "debug capture data physical cellular-wan",
      "debug capture data physical start",
      "debug capture data physical show",
    ]);
    expect(new AudioCodesDriver({ ...base, type: "msbr" }).stopScript()).toEqual(["debug capture data physical stop", "debug capture data physical show"]);
  });
  it("GW/SBC: voip physical eth-lan, start, show", () => {
    expect(new AudioCodesDriver({ ...base, type: "gwsbc" }).startScript(["eth-lan"])).toEqual([
      "debug capture voip physical eth-lan",
      "debug capture voip physical start",
      "debug capture voip physical show",
    ]);
  });
  it("refuses other device types", () => {
    expect(() => new AudioCodesDriver({ ...base, type: "iosxe" })).toThrow(/unsupported device type "iosxe"/);
  });
});

describe("AudioCodes driver against the emulator", () => {
  let dev: AudioCodesDevice;
  let out: string;
  let tasks: DriverTask[] = [];
  const drivers: AudioCodesDriver[] = [];
  const make = (over: Partial<DriverOptions> = {}, d: AudioCodesDevice = dev) => {
    const drv = new AudioCodesDriver({
      address: d.address,
      type: d.type,
      username: USER,
      password: PASS,
      restPort: d.restPort,
      sshPort: d.sshPort,
      tls: "insecure",
      timeouts: { restMs: 2000, sftpMs: 2000 },
      retries: { rest: 1, sftp: 1, confirm: 3, backoffMs: 10, maxBackoffMs: 40 },
      onTask: (t) => tasks.push(t),
      ...over,
    });
    drivers.push(drv);
    return drv;
  };

  beforeAll(async () => {
    dev = await startAudioCodesDevice({ address: "127.0.0.41", type: "msbr", username: USER, password: PASS, capture: { kind: "synthetic", packetsPerSecond: 300 } });
    out = await fsp.mkdtemp(path.join(tmpdir(), "capsync-ac-driver-"));
  });
  afterAll(async () => {
    await dev.close();
    await fsp.rm(out, { recursive: true, force: true });
  });
  afterEach(async () => {
    dev.clearFaults();
    tasks = [];
    await Promise.all(drivers.splice(0).map((d) => d.cleanup()));
  });

  it("sends exactly the MSBR script as multipart cli.txt", async () => {
    const drv = make();
    const h = await drv.startCapture({ interfaces: ["xdsl-wan", "eth-lan", "xdsl-wan"] });
    expect(h.interfaces).toEqual(["xdsl-wan", "eth-lan"]);
    const last = dev.state().scripts.at(-1)!;
    expect(last.fileName).toBe("cli.txt");
    expect(last.lines).toEqual(drv.startScript(["xdsl-wan", "eth-lan"]));
    expect(dev.state().interfaces).toEqual(["xdsl-wan", "eth-lan"]);
    await drv.stopCapture(h);
  });

  it("polls show with backoff until the device confirms, both ways", async () => {
    dev.setFault({ showLag: 2 });
    const drv = make();
    const h = await drv.startCapture({ interfaces: ["eth-wan"] });
    expect(tasks.map((t) => t.name)).toEqual(["start-capture", "confirm-start", "confirm-start"]);
    tasks = [];
    await drv.stopCapture(h);
    expect(tasks.map((t) => t.name)).toEqual(["stop-capture", "confirm-stop", "confirm-stop"]);
  });

  it("gives up after a bounded number of show polls", async () => {
    dev.setFault({ showLag: Infinity });
    const drv = make();
    const t0 = Date.now();
    const err = await drv.startCapture({ interfaces: ["eth-wan"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceProtocolError);
    expect(err).toMatchObject({ code: "capture-not-confirmed" });
    expect((err as Error).message).toMatch(/capture still not active after 3 checks: .*Debug capture physical is not active/);
    expect(tasks.filter((t) => t.name === "confirm-start")).toHaveLength(3);
    expect(Date.now() - t0).toBeLessThan(2000); // 10 + 20 + 40 ms of backoff plus the calls
    dev.clearFaults();
    await make().stopCapture({ device: dev.address, type: "msbr", interfaces: [], startedAt: "" });
  });

  it("verifies size and magic, retrying a short or corrupt download", async () => {
    const drv = make();
    const remote = await drv.stopCapture(await drv.startCapture({ interfaces: ["eth-wan"] }));
    const served = (await dev.capturedFile())!;

    dev.setFault({ sftp: { kind: "truncate", times: 1 } });
    const ok = await drv.fetchCapture(remote, path.join(out, "a"));
    expect(ok.sha256).toBe(createHash("sha256").update(served).digest("hex"));
    expect(tasks.filter((t) => t.name === "fetch-capture").map((t) => [t.status, t.code])).toEqual([
      ["failed", "capture-size-mismatch"],
      ["ok", undefined],
    ]);

    dev.setFault({ sftp: { kind: "truncate" } });
    const short = await drv.fetchCapture(remote, path.join(out, "b")).catch((e: unknown) => e);
    expect(short).toMatchObject({ code: "capture-size-mismatch" });
    expect((short as Error).message).toBe(`msbr 127.0.0.41: fetch-capture: got ${Math.floor(served.length / 2)} of ${served.length} bytes of /debug-capture/debug-capture-data.pcap`);

    dev.setFault({ sftp: { kind: "bad-magic" } });
    const magic = await drv.fetchCapture(remote, path.join(out, "c")).catch((e: unknown) => e);
    expect(magic).toMatchObject({ code: "capture-bad-magic" });
    expect((magic as Error).message).toContain("starts with 58585858");

    dev.setFault({ sftp: { kind: "missing-file" } });
    const missing = await drv.fetchCapture(remote, path.join(out, "d")).catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: "capture-file-missing" });
    for (const d of ["b", "c", "d"]) expect(await fsp.readdir(path.join(out, d))).toEqual([]);
  });

  it("403 is a DeviceAuthError; a password echoed by the device is masked", async () => {
    dev.setFault({ rest: { kind: "forbidden", description: `User ${USER} with password ${PASS} is read-only` } });
    const err = await make().probe().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceAuthError);
    expect((err as Error).message).toBe(`msbr 127.0.0.41: probe: HTTP 403 User ${USER} with password *** is read-only`);
    expect(tasks[0]!.output).toBe(`User ${USER} with password *** is read-only`);
  });

  it("an unreadable answer is retried, then device-bad-answer", async () => {
    dev.setFault({ rest: { kind: "bad-json", times: 1 } });
    expect((await make().probe()).model).toBe("Mediant 500L MSBR");
    dev.setFault({ rest: { kind: "bad-json" } });
    const err = await make().probe().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "device-bad-answer", httpStatus: 200 });
  });

  it("a device of the other type: probe warns, its 400 description is a non-retried device-rejected error", async () => {
    const gw = await startAudioCodesDevice({ address: "127.0.0.42", type: "gwsbc", username: USER, password: PASS });
    try {
      const drv = make({}, gw);
      const wrong = new AudioCodesDriver({ address: gw.address, type: "msbr", username: USER, password: PASS, restPort: gw.restPort, sshPort: gw.sshPort, tls: "insecure", onTask: (t) => tasks.push(t) });
      drivers.push(wrong);
      expect((await drv.probe()).warnings).toEqual([]);
      expect((await wrong.probe()).warnings).toEqual(['configured as msbr but the device reports "Mediant 800 Gateway & E-SBC"']);
      tasks = [];
      const err = await wrong.startCapture({ interfaces: ["eth-wan"] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeviceProtocolError);
      expect(err).toMatchObject({ code: "device-rejected", httpStatus: 400 });
      expect((err as Error).message).toBe("msbr 127.0.0.42: start-capture: HTTP 400 Line 1: Invalid command: 'debug capture data physical stop'");
      expect(tasks).toHaveLength(1);
    } finally {
      await gw.close();
    }
  });

  it("pins the SSH host key when asked", async () => {
    const drv = make();
    const remote = await drv.stopCapture(await drv.startCapture({ interfaces: ["eth-wan"] }));
    const blob = Buffer.from(sharedHostKey().public.split(" ")[1]!, "base64");
    const fp = `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
    expect((await make({ sshHostKeySha256: fp }).fetchCapture(remote, path.join(out, "pinned"))).bytes).toBeGreaterThan(24);
    const err = await make({ sshHostKeySha256: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" })
      .fetchCapture(remote, path.join(out, "pin-bad"))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceAuthError);
    expect((err as Error).message).toMatch(/host key does not match/);
  });

  it("a closed port is DeviceUnreachableError after the retries", async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.43", r));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const err = await make({ restPort: port, address: "127.0.0.43" }).probe().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceUnreachableError);
    expect((err as Error).message).toContain("ECONNREFUSED");
    expect(tasks.map((t) => t.status)).toEqual(["failed", "failed"]);
  });

  it("tls.ca that cannot be read is a ConfigError, not retried", async () => {
    const err = await make({ tls: { ca: "/nonexistent/ca.pem" } }).probe().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "config", message: "tls.ca: cannot read /nonexistent/ca.pem: ENOENT" });
    expect(tasks).toHaveLength(1);
  });

  it("latency within the timeout is fine", async () => {
    const slow = await startAudioCodesDevice({ address: "127.0.0.44", type: "msbr", username: USER, password: PASS, latencyMs: 120 });
    try {
      expect((await make({ timeouts: { restMs: 1000 } }, slow).probe()).serial).toBe("EMU7F00002C");
    } finally {
      await slow.close();
    }
    expect(DESCRIPTIONS.auth).toBeTruthy();
  });
});
