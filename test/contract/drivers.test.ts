// The driver contract suite (NAPALM getters.py in spirit): the same cases run against every driver
// type and its emulator over real sockets — HTTPS, SFTP, SSH, SCP — with only faults injected. A new
// vendor (or transport) adds one harness below; cases about HTTP itself run where control is HTTP.
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { inspect } from "node:util";
import { CapsyncError, DeviceAuthError, DeviceProtocolError, DeviceTimeoutError, DeviceUnreachableError } from "@capsync/protocol";
import { DESCRIPTIONS, IOSXE_MESSAGES, startAudioCodesDevice, startIosXeDevice, type AudioCodesDevice, type IosXeDevice } from "@capsync/emulators";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { drivers } from "../../packages/cpe-capture/src/drivers/index.js";
import type { CaptureDriver, DeviceFacts, DeviceType, DriverOptions, DriverTask } from "../../packages/cpe-capture/src/drivers/driver.js";
import type { CaptureSpec } from "../../packages/cpe-capture/src/drivers/capture-spec.js";

const USER = "Admin";
const PASS = "C0ntract-S3cret!";
const WRONG = "Wr0ng-Pa55word";

/** What the suite may ask an emulator to do wrong. `on` narrows a REST fault to one kind of call. */
type ContractFault =
  | { kind: "busy" | "server-error" | "timeout"; on: "probe" | "capture" | "any"; times?: number }
  | { kind: "file-refused"; times?: number };

interface EmulatedTarget {
  readonly address: string;
  readonly restPort: number;
  readonly sshPort: number;
  /** PEM the emulator's TLS certificate chains to. */
  readonly certificate: string;
  /** Asks the emulator directly, not through the driver. */
  show(): Promise<"active" | "inactive">;
  /** Every command the driver sent, in order. */
  commands(): string[];
  /** The capture file exactly as the device serves it. */
  servedFile(): Promise<Buffer | undefined>;
  inject(f: ContractFault): void;
  fileRefusals(): number;
  close(): Promise<void>;
}

interface DriverHarness {
  /** Suite title, e.g. "msbr" or "iosxe (ssh-cli)". */
  name: string;
  type: DeviceType;
  /** Driver options particular to this harness, e.g. an IOS-XE transport. */
  options?: Partial<DriverOptions>;
  /** How the driver controls the device: HTTP cases (409, 500, TLS) only apply to "http". */
  control: "http" | "ssh";
  /** Task names a start and a stop record, in order, when nothing goes wrong. */
  tasks: { start: string[]; stop: string[] };
  spec: CaptureSpec;
  facts: Omit<DeviceFacts, "warnings">;
  /** Texts the device puts in its error answers; the driver's errors must carry them. */
  descriptions: { auth: string; busy: string; serverError: string };
  /** Every command a driver may send this device type (no SNMP users, no config changes). */
  allowedCommand: RegExp;
  startTarget(): Promise<EmulatedTarget>;
}

function audiocodesHarness(type: "msbr" | "gwsbc", address: string, spec: CaptureSpec, facts: DriverHarness["facts"]): DriverHarness {
  const prefix = type === "msbr" ? "debug capture data physical" : "debug capture voip physical";
  return {
    name: type,
    type,
    control: "http",
    tasks: { start: ["start-capture"], stop: ["stop-capture"] },
    spec,
    facts,
    descriptions: { auth: DESCRIPTIONS.auth, busy: DESCRIPTIONS.busy, serverError: DESCRIPTIONS["server-error"] },
    allowedCommand: new RegExp(`^${prefix} [a-z0-9-]+$`),
    async startTarget() {
      const dev: AudioCodesDevice = await startAudioCodesDevice({ address, type, username: USER, password: PASS, capture: { kind: "synthetic", packetsPerSecond: 400 } });
      return {
        address: dev.address,
        restPort: dev.restPort,
        sshPort: dev.sshPort,
        certificate: dev.certificate,
        show: () => cliShow(dev, `${prefix} show`),
        commands: () => dev.state().scripts.flatMap((s) => s.lines),
        servedFile: () => dev.capturedFile(),
        inject(f) {
          if (f.kind === "file-refused") dev.setFault({ sftp: { kind: "refuse", ...(f.times !== undefined ? { times: f.times } : {}) } });
          else dev.setFault({ rest: { kind: f.kind, on: f.on === "probe" ? "status" : f.on === "capture" ? "cli" : "any", ...(f.times !== undefined ? { times: f.times } : {}) } });
        },
        fileRefusals: () => dev.state().sftpRefusals,
        close: () => dev.close(),
      };
    },
  };
}

/** A `show` sent straight to the emulator (multipart `file` = cli.txt), verifying its certificate. */
async function cliShow(dev: AudioCodesDevice, line: string): Promise<"active" | "inactive"> {
  const fd = new FormData();
  fd.append("file", new Blob([`${line}\n`]), "cli.txt");
  const r = new Response(fd);
  const body = Buffer.from(await r.arrayBuffer());
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(
      {
        host: dev.address,
        port: dev.restPort,
        method: "PUT",
        path: "/api/v1/files/cliScript/incremental",
        ca: dev.certificate,
        agent: false,
        auth: `${USER}:${PASS}`,
        headers: { "content-type": r.headers.get("content-type")! },
      },
      (res) => {
        let t = "";
        res.on("data", (c: Buffer) => (t += c.toString()));
        res.on("end", () => resolve(t));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
  const output = String((JSON.parse(text) as { output?: string }).output);
  if (output.includes("physical is not active")) return "inactive";
  if (output.includes("physical is active")) return "active";
  throw new Error(`no show verdict in ${output}`);
}

/** IOS-XE EPC over RESTCONF (files by SFTP) or over the SSH CLI (files by SCP). */
function iosxeHarness(transport: "restconf" | "ssh-cli", address: string, serial: string): DriverHarness {
  const ssh = transport === "ssh-cli";
  return {
    name: `iosxe (${transport})`,
    type: "iosxe",
    options: { transport, fileTransfer: ssh ? "scp" : "sftp" },
    control: ssh ? "ssh" : "http",
    tasks: ssh ? { start: ["start-capture"], stop: ["stop-capture"] } : { start: ["define-capture", "start-capture"], stop: ["stop-capture", "export-capture"] },
    spec: { interfaces: ["GigabitEthernet1"], filter: { protocol: "udp", dport: 5060 }, limits: { bufferMb: 10 } },
    facts: { vendor: "Cisco", model: "C8000V", version: ssh ? "17.09.04a" : "17.9", serial },
    descriptions: { auth: IOSXE_MESSAGES.auth, busy: IOSXE_MESSAGES.busy, serverError: IOSXE_MESSAGES.serverError },
    allowedCommand:
      /^(terminal length 0|show version|show monitor capture CS[A-Z0-9]+|monitor capture CS[A-Z0-9]+ (interface|match|buffer|limit|start|stop|export)( [A-Za-z0-9./:_-]+)*|no monitor capture CS[A-Z0-9]+|delete \/force bootflash:CS[A-Z0-9]+\.pcap)$/,
    async startTarget() {
      const dev: IosXeDevice = await startIosXeDevice({ address, username: USER, password: PASS, serial, packetsPerSecond: 400 });
      return {
        address: dev.address,
        restPort: dev.restPort,
        sshPort: dev.sshPort,
        certificate: dev.certificate,
        show: async () => (dev.state().capturePoints.some((c) => c.state === "active") ? "active" : "inactive"),
        commands: () => dev.state().commands,
        servedFile: async () => dev.lastExport()?.data,
        inject(f) {
          const times = f.times !== undefined ? { times: f.times } : {};
          if (f.kind === "file-refused") return dev.setFault({ file: { kind: "refuse", ...times } });
          if (ssh) {
            if (f.kind !== "timeout") throw new Error(`the SSH CLI has no ${f.kind} fault`);
            return dev.setFault({ cli: { kind: "timeout", on: f.on, ...times } });
          }
          dev.setFault({ rest: { kind: f.kind, on: f.on === "capture" ? "rpc" : f.on, ...times } });
        },
        fileRefusals: () => dev.state().fileRefusals,
        close: () => dev.close(),
      };
    },
  };
}

const HARNESSES: DriverHarness[] = [
  audiocodesHarness("msbr", "127.0.0.31", { interfaces: ["eth-wan", "cellular-wan"] }, {
    vendor: "AudioCodes",
    model: "Mediant 500L MSBR",
    version: "7.24A.356.353",
    serial: "EMU7F00001F",
  }),
  audiocodesHarness("gwsbc", "127.0.0.32", {}, { vendor: "AudioCodes", model: "Mediant 800 Gateway & E-SBC", version: "7.40A.500.786", serial: "EMU7F000020" }),
  iosxeHarness("restconf", "127.0.0.33", "9CONTRACT33"),
  iosxeHarness("ssh-cli", "127.0.0.34", "9CONTRACT34"),
];

const FILE_NAME = /^CPE_device_127\.0\.0\.\d+_\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{6}\.pcap$/;
const PCAP_MAGICS = ["a1b2c3d4", "d4c3b2a1", "a1b23c4d", "4d3cb2a1", "0a0d0d0a"];

describe.each(HARNESSES)("driver contract: $name", (h) => {
  let target: EmulatedTarget;
  let tasks: DriverTask[];
  let drv: CaptureDriver;
  let outDir: string;
  const made: CaptureDriver[] = [];

  function driver(over: Partial<DriverOptions> = {}): CaptureDriver {
    const d = drivers[h.type as keyof typeof drivers]({
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

  it("start → the device shows the capture active; stop → not active", async () => {
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

  it("fetch downloads the served file byte for byte, verified, never overwriting", async () => {
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
    const sftpErr = await bad.fetchCapture({ device: target.address, path: "/x", protocol: "sftp", stoppedAt: "", fileName: "x.pcap" }, outDir).catch((e: unknown) => e);
    expect(sftpErr).toBeInstanceOf(DeviceAuthError);
    expect(tasks.filter((t) => t.name === "fetch-capture")).toHaveLength(1);
    expectNoSecrets(err, sftpErr);
  });

  // HTTP status codes and TLS only exist for drivers controlled over HTTP: not registered otherwise.
  (h.control === "http" ? it : () => undefined)("409 busy is retried, and stays a typed error with the description when it persists", async () => {
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

  it("refused file transfers are retried, then a typed error", async () => {
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

  it("rejects a spec the device cannot express before sending anything", async () => {
    const err = await drv.startCapture({ interfaces: ["wifi0"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapsyncError);
    expect((err as CapsyncError).code).toBe("config");
    expect((err as Error).message).toContain('"wifi0"');
    expect(tasks).toEqual([]);
    expect(target.commands()).toEqual([]);
  });

  it("cleanup is safe twice, leaves the capture running, and the driver usable", async () => {
    await drv.startCapture(h.spec);
    await drv.cleanup();
    await drv.cleanup();
    expect(await target.show()).toBe("active");
    expect((await drv.probe()).serial).toBe(h.facts.serial);
    await drv.cleanup();
  });
});
