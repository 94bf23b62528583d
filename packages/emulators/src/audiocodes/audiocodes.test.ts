import { createHook } from "node:async_hooks";
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { request } from "node:https";
import { promisify } from "node:util";
import SftpClient from "ssh2-sftp-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { internetChecksum } from "@capsync/pcap";
import { DEBUG_CAPTURE_REMOTE_PATH, DESCRIPTIONS, startAudioCodesDevice, startAudioCodesFleet, type AudioCodesDevice } from "./index.js";
import { parseDebugCaptureCommand, parseMultipartFile } from "./cli-script.js";
import { fleetAddresses } from "./fleet.js";
import { SyntheticPacketSource } from "../synthetic-traffic.js";

const USER = "Admin";
const PASS = "Emu-Pa55!";
const quiet = { error: () => {}, end: () => {}, close: () => {} };

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

/** HTTPS request that verifies the emulator certificate (its own CA) and the address in its SAN. */
function call(dev: AudioCodesDevice, method: string, path: string, opts: { auth?: string; body?: Buffer; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: dev.address,
        port: dev.restPort,
        method,
        path,
        ca: dev.certificate,
        agent: false,
        headers: { authorization: `Basic ${Buffer.from(opts.auth ?? `${USER}:${PASS}`).toString("base64")}`, ...opts.headers },
        timeout: opts.timeoutMs ?? 5000,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            /* leave empty */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("client timeout")));
    req.on("error", reject);
    req.end(opts.body);
  });
}

async function cli(dev: AudioCodesDevice, lines: string[], auth?: string): Promise<Answer> {
  const fd = new FormData();
  fd.append("file", new Blob([lines.join("\n") + "\n"], { type: "text/plain" }), "cli.txt");
  const r = new Response(fd);
  const body = Buffer.from(await r.arrayBuffer());
  return call(dev, "PUT", "/api/v1/files/cliScript/incremental", { body, headers: { "content-type": r.headers.get("content-type")! }, ...(auth ? { auth } : {}) });
}

const P = "debug capture data physical";
const V = "debug capture voip physical";

/** Minimal strict reader for what the synthetic source writes. */
function readPcap(buf: Buffer): Array<{ tsMicros: bigint; frame: Buffer }> {
  expect(buf.readUInt32LE(0)).toBe(0xa1b2c3d4);
  const out: Array<{ tsMicros: bigint; frame: Buffer }> = [];
  let off = 24;
  while (off < buf.length) {
    expect(off + 16).toBeLessThanOrEqual(buf.length);
    const caplen = buf.readUInt32LE(off + 8);
    expect(buf.readUInt32LE(off + 12)).toBe(caplen);
    const ts = BigInt(buf.readUInt32LE(off)) * 1_000_000n + BigInt(buf.readUInt32LE(off + 4));
    out.push({ tsMicros: ts, frame: buf.subarray(off + 16, off + 16 + caplen) });
    off += 16 + caplen;
  }
  expect(off).toBe(buf.length);
  return out;
}

describe("AudioCodes emulator: MSBR over real HTTPS", () => {
  let dev: AudioCodesDevice;
  beforeAll(async () => {
    dev = await startAudioCodesDevice({ address: "127.0.0.21", type: "msbr", username: USER, password: PASS, capture: { kind: "synthetic", packetsPerSecond: 500 } });
  });
  afterAll(() => dev.close());

  it("answers /api/v1/status with the device facts", async () => {
    const r = await call(dev, "GET", "/api/v1/status");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("application/json");
    expect(r.json).toMatchObject({
      ipAddress: "127.0.0.21",
      productType: "Mediant 500L MSBR",
      versionID: "7.24A.356.353",
      serialNumber: "EMU7F000015",
      macAddress: "02:00:7f:00:00:15",
      operationalState: "UNLOCKED",
    });
  });

  it("answers 401 with a description and a Basic challenge on bad credentials", async () => {
    for (const auth of [`${USER}:wrong`, `admin:${PASS}`, ""]) {
      const r = await call(dev, "GET", "/api/v1/status", { auth });
      expect(r.status).toBe(401);
      expect(r.headers["www-authenticate"]).toBe('Basic realm="AudioCodes"');
      expect(r.json).toEqual({ status: "failure", description: DESCRIPTIONS.auth });
    }
    expect((await cli(dev, [`${P} show`], `${USER}:nope`)).status).toBe(401);
  });

  it("404/405 for other resources and methods", async () => {
    expect((await call(dev, "GET", "/api/v1/alarms")).status).toBe(404);
    const r = await call(dev, "POST", "/api/v1/status");
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe("GET");
  });

  it("runs the debug capture script: several interfaces, start, show, stop", async () => {
    const start = await cli(dev, [`${P} stop`, `${P} eth-wan`, `${P} cellular-wan`, `${P} start`]);
    expect(start.status).toBe(200);
    expect(start.json).toEqual({
      status: "success",
      output: `MSBR# ${P} stop\nDebug capture physical was not running\nMSBR# ${P} eth-wan\nMSBR# ${P} cellular-wan\nMSBR# ${P} start\nDebug capture physical started on eth-wan, cellular-wan\n`,
    });
    expect(dev.state()).toMatchObject({ capturing: true, interfaces: ["eth-wan", "cellular-wan"], captures: 1 });
    const show = await cli(dev, [`${P} show`]);
    expect(show.json.output).toBe(`MSBR# ${P} show\nDebug capture physical is active\nInterfaces: eth-wan, cellular-wan\n`);
    await new Promise((r) => setTimeout(r, 100));
    const stop = await cli(dev, [`${P} stop`, `${P} show`]);
    expect(stop.json.output).toBe(`MSBR# ${P} stop\nDebug capture physical stopped\nMSBR# ${P} show\nDebug capture physical is not active\n`);
    expect(dev.state().capturing).toBe(false);
    expect(dev.state().scripts.map((s) => [s.fileName, s.httpStatus])).toContainEqual(["cli.txt", 200]);
  });

  it("wrote a valid, deterministic pcap of UDP packets to and from the device", async () => {
    const file = (await dev.capturedFile())!;
    const packets = readPcap(file);
    // 500 pps for >= 100 ms between start and stop.
    expect(packets.length).toBeGreaterThanOrEqual(50);
    expect(packets.length).toBe(dev.state().packets);
    const src = new SyntheticPacketSource({ device: "127.0.0.21", packetsPerSecond: 500 });
    const t0 = packets[0]!.tsMicros;
    expect(file.subarray(24).equals(src.records(t0, 0, packets.length))).toBe(true);
    for (const [i, p] of packets.entries()) {
      expect(internetChecksum(p.frame.subarray(14, 34))).toBe(0);
      const srcIp = [...p.frame.subarray(26, 30)].join(".");
      const dstIp = [...p.frame.subarray(30, 34)].join(".");
      expect(i % 2 === 0 ? srcIp : dstIp).toBe("127.0.0.21");
      expect(p.frame[23]).toBe(17);
    }
  });

  it("rejects unknown commands and bad scripts with 400 and a description, executing nothing", async () => {
    const before = dev.state().captures;
    const r = await cli(dev, [`${P} eth-wan`, `${P} start`, "configure system", `snmp-server user capsync`]);
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ status: "failure", description: "Line 3: Invalid command: 'configure system'", output: "" });
    expect(dev.state().captures).toBe(before);
    const bad = await cli(dev, [`${P} wifi`]);
    expect(bad.json.description).toBe(
      "Line 1: Invalid interface 'wifi' (expected one of: cellular-wan, fiber-wan, xdsl-wan, shdsl-wan, t1-e1-wan, eth-wan, eth-lan, start, stop, show)",
    );
    const voip = await cli(dev, [`${V} start`]);
    expect(voip.status).toBe(400);
    const none = await cli(dev, [`${P} start`]);
    expect(none.status).toBe(400);
    expect(none.json.description).toBe(DESCRIPTIONS.noInterface);
    const notMultipart = await call(dev, "PUT", "/api/v1/files/cliScript/incremental", { body: Buffer.from("x"), headers: { "content-type": "text/plain" } });
    expect(notMultipart.status).toBe(400);
    expect(notMultipart.json.description).toBe("Expected multipart/form-data with a boundary");
  });

  it("serves the capture over SFTP with the same credentials", async () => {
    const c = new SftpClient("t", quiet);
    await c.connect({ host: dev.address, port: dev.sshPort, username: USER, password: PASS });
    try {
      const data = (await c.get(DEBUG_CAPTURE_REMOTE_PATH)) as Buffer;
      expect(data.equals((await dev.capturedFile())!)).toBe(true);
      await expect(c.put(Buffer.from("x"), "/debug-capture/x")).rejects.toThrow(/Permission denied|read-only/);
    } finally {
      await c.end();
    }
    await expect(new SftpClient("t", quiet).connect({ host: dev.address, port: dev.sshPort, username: USER, password: "bad" })).rejects.toThrow(
      /authentication methods failed/,
    );
  });
});

describe("AudioCodes emulator: faults and latency", () => {
  let dev: AudioCodesDevice;
  beforeAll(async () => {
    dev = await startAudioCodesDevice({ address: "127.0.0.22", type: "gwsbc", username: USER, password: PASS });
  });
  afterAll(() => dev.close());

  it("GW/SBC speaks the voip physical commands", async () => {
    const r = await cli(dev, [`${V} eth-lan`, `${V} start`, `${V} show`]);
    expect(r.json.output).toBe(
      `SBC# ${V} eth-lan\nSBC# ${V} start\nDebug capture voip physical started on eth-lan\nSBC# ${V} show\nDebug capture physical is active\nInterfaces: eth-lan\n`,
    );
    expect((await cli(dev, [`${P} eth-wan`])).status).toBe(400);
    expect((await cli(dev, [`${V} eth-wan`])).json.description).toMatch(/^Line 1: Invalid interface 'eth-wan'/);
    expect((await cli(dev, [`${V} stop`])).json.output).toContain("Debug capture voip physical stopped");
  });

  it("injects 409 / 500 / 403 / 503 with descriptions, counted with `times`", async () => {
    dev.setFault({ rest: { kind: "busy", on: "cli", times: 2 } });
    expect((await call(dev, "GET", "/api/v1/status")).status).toBe(200); // `on: cli` spares status
    for (let i = 0; i < 2; i++) expect((await cli(dev, [`${V} show`])).json).toEqual({ status: "failure", description: DESCRIPTIONS.busy });
    expect((await cli(dev, [`${V} show`])).status).toBe(200);
    dev.setFault({ rest: { kind: "server-error" } });
    const r = await call(dev, "GET", "/api/v1/status");
    expect([r.status, r.json.description]).toEqual([500, DESCRIPTIONS["server-error"]]);
    dev.setFault({ rest: { kind: "forbidden", description: "User Admin may not" } });
    expect((await call(dev, "GET", "/api/v1/status")).json.description).toBe("User Admin may not");
    dev.setFault({ rest: { kind: "unavailable" } });
    expect((await call(dev, "GET", "/api/v1/status")).status).toBe(503);
    dev.setFault({ rest: { kind: "bad-json" } });
    expect((await call(dev, "GET", "/api/v1/status")).text).toBe('{"status":"success","output":"');
    // Credentials are still checked first.
    expect((await call(dev, "GET", "/api/v1/status", { auth: "x:y" })).status).toBe(401);
    dev.clearFaults();
    expect((await call(dev, "GET", "/api/v1/status")).status).toBe(200);
  });

  it("a timeout fault never answers", async () => {
    dev.setFault({ rest: { kind: "timeout", times: 1 } });
    const t0 = Date.now();
    await expect(call(dev, "GET", "/api/v1/status", { timeoutMs: 300 })).rejects.toThrow("client timeout");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect((await call(dev, "GET", "/api/v1/status")).status).toBe(200);
  });

  it("latency delays every answer", async () => {
    const slow = await startAudioCodesDevice({ address: "127.0.0.23", type: "msbr", username: USER, password: PASS, latencyMs: 150 });
    try {
      const t0 = Date.now();
      expect((await call(slow, "GET", "/api/v1/status")).status).toBe(200);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(145);
    } finally {
      await slow.close();
    }
  });

  it("show lags behind start/stop when asked", async () => {
    dev.setFault({ showLag: 2 });
    await cli(dev, [`${V} eth-lan`, `${V} start`]);
    const outs: string[] = [];
    for (let i = 0; i < 3; i++) outs.push(String((await cli(dev, [`${V} show`])).json.output));
    expect(outs.map((o) => /is active/.test(o))).toEqual([false, false, true]);
    await cli(dev, [`${V} stop`]);
    dev.clearFaults();
  });

  it("SFTP faults: refusal (counted), missing file, truncation, bad magic", async () => {
    await cli(dev, [`${V} eth-lan`, `${V} start`]);
    await new Promise((r) => setTimeout(r, 50));
    await cli(dev, [`${V} stop`]);
    const good = (await dev.capturedFile())!;
    expect(good.length).toBeGreaterThan(24);
    const connect = async () => {
      const c = new SftpClient("t", quiet);
      await c.connect({ host: dev.address, port: dev.sshPort, username: USER, password: PASS, readyTimeout: 3000 });
      return c;
    };
    dev.setFault({ sftp: { kind: "refuse", times: 2 } });
    await expect(connect()).rejects.toThrow();
    await expect(connect()).rejects.toThrow();
    expect(dev.state().sftpRefusals).toBe(2);
    const c = await connect();
    try {
      dev.setFault({ sftp: { kind: "missing-file", times: 1 } });
      await expect(c.get(DEBUG_CAPTURE_REMOTE_PATH)).rejects.toThrow(/No such file/);
      dev.setFault({ sftp: { kind: "truncate", times: 1 } });
      expect((await c.stat(DEBUG_CAPTURE_REMOTE_PATH)).size).toBe(good.length);
      const cut = (await c.get(DEBUG_CAPTURE_REMOTE_PATH)) as Buffer;
      expect(cut.equals(good.subarray(0, Math.floor(good.length / 2)))).toBe(true);
      dev.setFault({ sftp: { kind: "bad-magic", times: 1 } });
      const bad = (await c.get(DEBUG_CAPTURE_REMOTE_PATH)) as Buffer;
      expect(bad.subarray(0, 4).toString()).toBe("XXXX");
      expect(bad.subarray(4).equals(good.subarray(4))).toBe(true);
      expect(((await c.get(DEBUG_CAPTURE_REMOTE_PATH)) as Buffer).equals(good)).toBe(true);
    } finally {
      await c.end();
    }
  });

  it("a capture start failure is a 500 with the reason (tcpdump in a namespace that does not exist)", async () => {
    const d = await startAudioCodesDevice({
      address: "127.0.0.24",
      type: "gwsbc",
      username: USER,
      password: PASS,
      capture: { kind: "tcpdump", iface: "lo", netns: "capsync-no-such-ns" },
    });
    try {
      const r = await cli(d, [`${V} eth-lan`, `${V} start`]);
      expect(r.status).toBe(500);
      expect(r.json.description).toMatch(/^Debug capture could not start: /);
      expect(d.state().capturing).toBe(false);
    } finally {
      await d.close();
    }
  });
});

const isRoot = process.getuid?.() === 0;
const hasTcpdump = await promisify(execFile)("tcpdump", ["--version"]).then(
  () => true,
  () => false,
);

// Missing root or tcpdump fails these tests by name (never a silent skip: tools/test-deps.mjs).
if (!isRoot || !hasTcpdump) throw new Error("the tcpdump capture tests need root and tcpdump (Debian: tcpdump)");

describe("AudioCodes emulator: tcpdump capture", () => {
  it("captures real packets on lo, including those sent just before stop", async () => {
    const dev = await startAudioCodesDevice({
      address: "127.0.0.25",
      type: "msbr",
      username: USER,
      password: PASS,
      capture: { kind: "tcpdump", iface: "lo", filter: "udp and dst host 127.0.0.25 and dst port 40999" },
    });
    const sock = createSocket("udp4");
    try {
      expect((await cli(dev, [`${P} stop`, `${P} eth-lan`, `${P} start`])).status).toBe(200);
      for (let i = 0; i < 5; i++) {
        await new Promise<void>((r) => sock.send(Buffer.from(`probe-${i}`), 40999, "127.0.0.25", () => r()));
      }
      await new Promise((r) => setTimeout(r, 100));
      expect((await cli(dev, [`${P} stop`])).status).toBe(200);
      const packets = readPcap((await dev.capturedFile())!);
      const payloads = packets.map((p) => p.frame.subarray(14 + 20 + 8).toString());
      expect(payloads).toEqual(["probe-0", "probe-1", "probe-2", "probe-3", "probe-4"]);
    } finally {
      sock.close();
      await dev.close();
    }
  });
});

describe("AudioCodes emulator: fleets", () => {
  it("numbers addresses across octets and skips .0/.255", () => {
    expect(fleetAddresses("127.0.1.253", 4)).toEqual(["127.0.1.253", "127.0.1.254", "127.0.2.1", "127.0.2.2"]);
  });

  it("starts 1000 devices without a single idle timer, and each one answers", async () => {
    let timers = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === "Timeout") timers++;
      },
    });
    hook.enable();
    const t0 = Date.now();
    const fleet = await startAudioCodesFleet(1000, { username: USER, password: PASS, firstAddress: "127.0.10.1" });
    const startMs = Date.now() - t0;
    hook.disable();
    try {
      expect(timers).toBe(0);
      expect(fleet.devices).toHaveLength(1000);
      expect(new Set(fleet.devices.map((d) => d.address)).size).toBe(1000);
      expect(startMs).toBeLessThan(15_000);
      const last = fleet.devices[999]!;
      expect(last.type).toBe("gwsbc");
      // Outside the shared certificate's SAN range: trust the CA but skip the name check.
      const r = await new Promise<number>((resolve, reject) =>
        request(
          { host: last.address, port: last.restPort, path: "/api/v1/status", ca: last.certificate, checkServerIdentity: () => undefined, auth: `${USER}:${PASS}`, agent: false },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
          .on("error", reject)
          .end(),
      );
      expect(r).toBe(200);
    } finally {
      await fleet.close();
    }
  });
});

describe("wire helpers", () => {
  it("parses the multipart `file` part", () => {
    const body = Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="other"\r\n\r\nno\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="cli.txt"\r\nContent-Type: text/plain\r\n\r\na\nb\r\n--XyZ--\r\n');
    const r = parseMultipartFile("multipart/form-data; boundary=XyZ", body);
    expect(r).toEqual({ ok: true, fileName: "cli.txt", content: Buffer.from("a\nb") });
    expect(parseMultipartFile("multipart/form-data; boundary=XyZ", Buffer.from("--XyZ--\r\n"))).toEqual({ ok: false, reason: "Missing multipart part 'file'" });
  });

  it("parses debug capture commands strictly", () => {
    expect(parseDebugCaptureCommand("msbr", "  debug   capture data physical  fiber-wan ")).toEqual({ kind: "iface", iface: "fiber-wan" });
    expect(parseDebugCaptureCommand("gwsbc", "debug capture voip physical show")).toEqual({ kind: "show" });
    expect(parseDebugCaptureCommand("msbr", "debug capture data physical start now")).toEqual({ error: "Invalid command: 'debug capture data physical start now'" });
  });
});
