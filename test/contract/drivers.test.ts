// The driver contract suite (NAPALM getters.py in spirit): the same cases run against every driver
// type and its emulator over real sockets — HTTPS, SFTP, SSH, SCP — with only faults injected. The
// types come from the registry; each vendor brings its harness (./harness/<vendor>.ts), and a
// registered type without one fails here. Cases about HTTP itself run where control is HTTP.
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { inspect } from "node:util";
import { CapsyncError, ConfigError, DeviceAuthError, DeviceProtocolError, DeviceTimeoutError, DeviceUnreachableError } from "@capsync/protocol";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEVICE_TYPES, drivers } from "../../packages/cpe-capture/src/drivers/index.js";
import type { CaptureDriver, DriverOptions, DriverTask } from "../../packages/cpe-capture/src/drivers/driver.js";
import { HARNESSES, PASS, USER, type EmulatedTarget } from "./harness/index.js";

const WRONG = "Wr0ng-Pa55word";

describe("driver contract: the registry", () => {
  it("every registered device type has a harness", () => {
    expect(DEVICE_TYPES.filter((t) => (HARNESSES[t] ?? []).length === 0)).toEqual([]);
  });
});

const FILE_NAME = /^CPE_device_127\.0\.0\.\d+_\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{6}\.pcap$/;
const PCAP_MAGICS = ["a1b2c3d4", "d4c3b2a1", "a1b23c4d", "4d3cb2a1", "0a0d0d0a"];

describe.each(DEVICE_TYPES.flatMap((t) => HARNESSES[t] ?? []))("driver contract: $name", (h) => {
  let target: EmulatedTarget;
  let tasks: DriverTask[];
  let drv: CaptureDriver;
  let outDir: string;
  const made: CaptureDriver[] = [];

  // Cases about taking a capture run for types that capture; the others get the refusal case.
  const capturing = h.captures !== false;
  const captureIt = capturing ? it : () => undefined;

  function driver(over: Partial<DriverOptions> = {}): CaptureDriver {
    const d = drivers[h.type]({
      address: target.address,
      type: h.type,
      username: USER,
      password: PASS,
      restPort: target.restPort,
      sshPort: target.sshPort,
      tls: { ca: target.certificate },
      timeouts: { restMs: 3000, sftpMs: 3000 },
      retries: { rest: 2, sftp: 2, confirm: 3, backoffMs: 20, maxBackoffMs: 100 },
      onTask: (t) => tasks.push(t),
      ...h.options,
      ...over,
    });
    made.push(d);
    return d;
  }

  /** No secret in anything the driver hands out: tasks, messages, causes. */
  function expectNoSecrets(...things: unknown[]): void {
    const basic = Buffer.from(`${USER}:${PASS}`).toString("base64");
    const text = [JSON.stringify(tasks), ...things.map((t) => inspect(t, { depth: 20, showHidden: true }))].join("\n");
    expect(text).not.toContain(PASS);
    expect(text).not.toContain(WRONG);
    expect(text).not.toContain(basic);
  }

  beforeAll(async () => {
    outDir = await fsp.mkdtemp(path.join(tmpdir(), `capsync-contract-${h.type}-`));
  });
  afterAll(async () => {
    await fsp.rm(outDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    tasks = [];
    target = await h.startTarget();
    drv = driver();
  });
  afterEach(async () => {
    await Promise.all(made.splice(0).map((d) => d.cleanup()));
    await target.close();
  });

  it("probe returns the device facts and records a task", async () => {
    const facts = await drv.probe();
    expect(facts).toEqual({ ...h.facts, warnings: [] });
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ name: "probe", status: "ok", attempt: 1, ...(h.control === "http" ? { httpStatus: 200 } : {}) });
    expect(new Date(tasks[0]!.timestamp).toISOString()).toBe(tasks[0]!.timestamp);
    expectNoSecrets(facts);
  });

  captureIt("start → the device shows the capture active; stop → not active", async () => {
    expect(await target.show()).toBe("inactive");
    const handle = await drv.startCapture(h.spec);
    expect(handle).toMatchObject({ device: target.address, type: h.type });
    expect(JSON.parse(JSON.stringify(handle))).toEqual(handle); // journal-safe
    expect(await target.show()).toBe("active");
    const remote = await drv.stopCapture(handle);
    expect(await target.show()).toBe("inactive");
    expect(remote.fileName).toMatch(FILE_NAME);
    expect(tasks.map((t) => [t.name, t.status])).toEqual([...h.tasks.start, ...h.tasks.stop].map((n) => [n, "ok"]));
    for (const c of target.commands()) expect(c).toMatch(h.allowedCommand);
    expect(target.commands().join("\n")).not.toMatch(/snmp/i);
  });

  captureIt("fetch downloads the served file byte for byte, verified, never overwriting", async () => {
    const handle = await drv.startCapture(h.spec);
    await new Promise((r) => setTimeout(r, 60));
    const remote = await drv.stopCapture(handle);
    const local = await drv.fetchCapture(remote, outDir);
    const served = (await target.servedFile())!;
    const got = await fsp.readFile(local.path);
    expect(got.equals(served)).toBe(true);
    expect(local).toEqual({ path: path.join(outDir, remote.fileName), fileName: remote.fileName, bytes: served.length, sha256: createHash("sha256").update(served).digest("hex") });
    expect(PCAP_MAGICS).toContain(got.subarray(0, 4).toString("hex"));
    expect(served.length).toBeGreaterThan(24);
    const again = await drv.fetchCapture(remote, outDir).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(CapsyncError);
    expect((again as CapsyncError).code).toBe("file-exists");
    expect((await fsp.readFile(local.path)).equals(served)).toBe(true);
    expect((await fsp.readdir(outDir)).filter((f) => f.endsWith(".part"))).toEqual([]);
  });

  it("a wrong password is a DeviceAuthError with the device's description, not retried, not leaked", async () => {
    const bad = driver({ password: WRONG });
    const err = await bad.probe().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceAuthError);
    expect((err as DeviceAuthError).code).toBe("device-auth");
    if (h.control === "http") {
      expect((err as Error).message).toContain(h.descriptions.auth);
      expect((err as Error).message).toContain("401");
      expect(tasks).toEqual([expect.objectContaining({ name: "probe", status: "failed", httpStatus: 401, code: "device-auth", output: h.descriptions.auth })]);
    } else {
      // SSH has no description text: the user name and the failed method are what there is.
      expect((err as Error).message).toContain(`authentication failed for user ${USER}`);
      expect(tasks).toEqual([expect.objectContaining({ name: "probe", status: "failed", code: "device-auth" })]);
    }
    if (!capturing) return expectNoSecrets(err);
    const sftpErr = await bad.fetchCapture({ device: target.address, path: "/x", protocol: "sftp", stoppedAt: "", fileName: "x.pcap" }, outDir).catch((e: unknown) => e);
    expect(sftpErr).toBeInstanceOf(DeviceAuthError);
    expect(tasks.filter((t) => t.name === "fetch-capture")).toHaveLength(1);
    expectNoSecrets(err, sftpErr);
  });

  // HTTP status codes and TLS only exist for drivers controlled over HTTP: not registered otherwise.
  (h.control === "http" && capturing ? it : () => undefined)("409 busy is retried, and stays a typed error with the description when it persists", async () => {
    target.inject({ kind: "busy", on: "capture", times: 1 });
    const handle = await drv.startCapture(h.spec);
    expect(tasks.map((t) => [t.name, t.status, t.httpStatus])).toEqual([[h.tasks.start[0], "failed", 409], ...h.tasks.start.map((n) => [n, "ok", 200])]);
    tasks = [];
    target.inject({ kind: "busy", on: "capture" });
    const err = await drv.stopCapture(handle).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceProtocolError);
    expect(err).toMatchObject({ code: "device-busy", httpStatus: 409 });
    expect((err as Error).message).toContain(h.descriptions.busy);
    expect(tasks).toHaveLength(3); // 1 + retries.rest (2)
    expectNoSecrets(err);
  });

  (h.control === "http" ? it : () => undefined)("500 is a typed error carrying the device's description", async () => {
    target.inject({ kind: "server-error", on: "probe" });
    const err = await drv.probe().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceProtocolError);
    expect(err).toMatchObject({ code: "device-error", httpStatus: 500 });
    expect((err as Error).message).toContain(h.descriptions.serverError);
    expect(tasks.map((t) => t.httpStatus)).toEqual([500, 500, 500]);
  });

  it("a device that never answers is a DeviceTimeoutError within the configured timeout", async () => {
    target.inject({ kind: "timeout", on: "any" });
    const once = driver({ timeouts: { restMs: 300 }, retries: { rest: 0 } });
    let t0 = Date.now();
    const err = await once.probe().catch((e: unknown) => e);
    let took = Date.now() - t0;
    expect(err).toBeInstanceOf(DeviceTimeoutError);
    expect((err as Error).message).toContain("no answer within 300 ms");
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(800);
    if (!capturing) return expectNoSecrets(err);
    // With retries, the operation deadline still bounds the whole call.
    const bounded = driver({ timeouts: { restMs: 250, operationMs: 600 }, retries: { rest: 10, backoffMs: 20 } });
    t0 = Date.now();
    const err2 = await bounded.startCapture(h.spec).catch((e: unknown) => e);
    took = Date.now() - t0;
    expect(err2).toBeInstanceOf(DeviceTimeoutError);
    expect(took).toBeGreaterThanOrEqual(590);
    expect(took).toBeLessThan(1100);
    expectNoSecrets(err, err2);
  });

  captureIt("refused file transfers are retried, then a typed error", async () => {
    const handle = await drv.startCapture(h.spec);
    const remote = await drv.stopCapture(handle);
    target.inject({ kind: "file-refused", times: 2 });
    const local = await drv.fetchCapture(remote, path.join(outDir, "retried"));
    expect((await fsp.readFile(local.path)).equals((await target.servedFile())!)).toBe(true);
    expect(target.fileRefusals()).toBe(2);
    expect(tasks.filter((t) => t.name === "fetch-capture").map((t) => t.status)).toEqual(["failed", "failed", "ok"]);
    target.inject({ kind: "file-refused" });
    const err = await drv.fetchCapture(remote, path.join(outDir, "refused")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceUnreachableError);
    expect(target.fileRefusals()).toBe(2 + 3);
    expect(await fsp.readdir(path.join(outDir, "refused"))).toEqual([]);
    expectNoSecrets(err);
  });

  (h.control === "http" ? it : () => undefined)("accepts a self-signed certificate only when told to", async () => {
    const strict = driver({ tls: "verify" });
    const err = await strict.probe().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceUnreachableError);
    expect((err as Error).message).toMatch(/TLS certificate not trusted \(\w+\); set tls: insecure/);
    expect(tasks).toHaveLength(1); // not retried
    expect((await driver({ tls: "insecure" }).probe()).model).toBe(h.facts.model);
    const caFile = path.join(outDir, `ca-${h.type}.pem`);
    await fsp.writeFile(caFile, target.certificate);
    expect((await driver({ tls: { ca: caFile } }).probe()).model).toBe(h.facts.model);
  });

  captureIt("rejects a spec the device cannot express before sending anything", async () => {
    const err = await drv.startCapture({ interfaces: ["wifi0"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapsyncError);
    expect((err as CapsyncError).code).toBe("config");
    expect((err as Error).message).toContain('"wifi0"');
    expect(tasks).toEqual([]);
    expect(target.commands()).toEqual([]);
  });

  (capturing ? () => undefined : it)("a type that takes no capture says so and refuses every capture call with a ConfigError, sending nothing", async () => {
    expect(drv.capabilities.capture).toBe(false);
    for (const call of [() => drv.startCapture(h.spec), () => drv.stopCapture({ device: target.address, type: h.type, interfaces: [], startedAt: "" }), () => drv.fetchCapture({ device: target.address, path: "/x", protocol: "http", stoppedAt: "", fileName: "x.pcap" }, outDir)]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain("cannot capture");
    }
    expect(tasks).toEqual([]);
    expect(target.commands()).toEqual([]);
    await drv.cleanup();
    await drv.cleanup();
    expect((await drv.probe()).serial).toBe(h.facts.serial);
  });

  (h.fallback === "ssh" ? it : () => undefined)("with its HTTP API off, the device is still probed (over SSH)", async () => {
    target.apiOff!();
    expect(await drv.probe()).toEqual({ ...h.facts, warnings: [] });
    expect(tasks).toEqual([expect.objectContaining({ name: "probe", status: "ok", attempt: 1 })]);
    expect(tasks[0]!.httpStatus).toBeUndefined();
    expectNoSecrets();
  });

  captureIt("cleanup is safe twice, leaves the capture running, and the driver usable", async () => {
    await drv.startCapture(h.spec);
    await drv.cleanup();
    await drv.cleanup();
    expect(await target.show()).toBe("active");
    expect((await drv.probe()).serial).toBe(h.facts.serial);
    await drv.cleanup();
  });
});
