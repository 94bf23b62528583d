// The IOS-XE emulator from the outside, with plain HTTPS and ssh2 (no capsync driver): RESTCONF
// answers and their RFC 8040 errors, the monitor RPC's validation, the capture point state machine,
// limits, the CLI shell (paging, `%` errors), SCP and SFTP from bootflash:, real pcap content.
import { request } from "node:https";
import ssh2 from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IOSXE_MESSAGES, bootflashName, startIosXeDevice, type IosXeDevice } from "./index.js";

const USER = "admin";
const PASS = "Emu-Xe-S3cret";
let dev: IosXeDevice;

beforeAll(async () => {
  dev = await startIosXeDevice({ address: "127.0.0.61", username: USER, password: PASS, serial: "9EMUTEST061", packetsPerSecond: 1000 });
});
afterAll(async () => {
  await dev?.close();
});

function http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, auth = `${USER}:${PASS}`): Promise<{ status: number; json: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: dev.address, port: dev.restPort, method, path, ca: dev.certificate, agent: false, auth, headers: { accept: "application/yang-data+json", "content-type": "application/yang-data+json", ...headers } },
      (res) => {
        let t = "";
        res.on("data", (c: Buffer) => (t += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode!, json: t && res.headers["content-type"]?.includes("json") ? JSON.parse(t) : t, headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body));
  });
}
const rpc = (name: string, input: unknown) => http("POST", `/restconf/operations/Cisco-IOS-XE-rpc:${name}`, { "Cisco-IOS-XE-rpc:input": input });
const result = (r: { json: any }) => r.json["Cisco-IOS-XE-rpc:output"].result as string;
const error = (r: { json: any }) => r.json["ietf-restconf:errors"].error[0];

/** Runs `input` through an interactive shell and returns everything the device printed. */
function shell(input: string, rows = 24): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on("error", reject)
      .on("ready", () =>
        c.shell({ rows, cols: 120 }, (err, s) => {
          if (err) return reject(err);
          let out = "";
          s.on("data", (d: Buffer) => (out += d.toString()));
          s.on("close", () => {
            c.end();
            resolve(out.replace(/\r\n/g, "\n"));
          });
          s.write(input);
        }),
      )
      .connect({ host: dev.address, port: dev.sshPort, username: USER, password: PASS });
  });
}

function ssh<T>(use: (c: InstanceType<typeof ssh2.Client>) => Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on("error", reject)
      .on("ready", () => use(c).then(resolve, reject).finally(() => c.end()))
      .connect({ host: dev.address, port: dev.sshPort, username: USER, password: PASS });
  });
}

/** SCP sink side by hand: \0, header, \0, data, status, \0. */
function scpGet(path: string): Promise<{ header: string; data: Buffer } | { error: string }> {
  return ssh(
    (c) =>
      new Promise((resolve, reject) =>
        c.exec(`scp -f ${path}`, (err, s) => {
          if (err) return reject(err);
          let buf = Buffer.alloc(0);
          s.on("data", (d: Buffer) => {
            buf = Buffer.concat([buf, d]);
            if (buf[0] === 1) return resolve({ error: buf.subarray(1).toString().trim() });
            const nl = buf.indexOf(0x0a);
            if (nl < 0) return;
            const header = buf.subarray(0, nl).toString();
            const size = Number(header.split(" ")[1]);
            if (buf.length === nl + 1) return s.write(Buffer.from([0]));
            if (buf.length >= nl + 1 + size + 1) {
              s.write(Buffer.from([0]));
              resolve({ header, data: buf.subarray(nl + 1, nl + 1 + size) });
            }
          });
          s.write(Buffer.from([0]));
        }),
      ),
  );
}

describe("RESTCONF", () => {
  it("authenticates with Basic and answers 401 in the errors envelope", async () => {
    const r = await http("GET", "/restconf/data/Cisco-IOS-XE-native:native", undefined, {}, `${USER}:wrong`);
    expect(r.status).toBe(401);
    expect(r.headers["www-authenticate"]).toBe('Basic realm="restconf"');
    expect(error(r)).toEqual({ "error-type": "protocol", "error-tag": "access-denied", "error-message": IOSXE_MESSAGES.auth });
  });

  it("serves the native facts with fields=, host-meta, and 404 for unknown paths", async () => {
    const r = await http("GET", "/restconf/data/Cisco-IOS-XE-native:native?fields=version;hostname;license/udi");
    expect(r).toMatchObject({ status: 200, json: { "Cisco-IOS-XE-native:native": { version: "17.9", hostname: "edge-rtr1", license: { udi: { pid: "C8000V", sn: "9EMUTEST061" } } } } });
    expect(Object.keys(r.json["Cisco-IOS-XE-native:native"])).toEqual(["version", "hostname", "license"]);
    expect((await http("GET", "/.well-known/host-meta")).json).toContain("<Link rel='restconf' href='/restconf'/>");
    const nf = await http("GET", "/restconf/data/Cisco-IOS-XE-native:native/nothing");
    expect([nf.status, error(nf)["error-message"]]).toEqual([404, "uri keypath not found"]);
    expect((await http("GET", "/restconf/data/Cisco-IOS-XE-native:native/interface/GigabitEthernet=4/vrf/forwarding")).json).toEqual({ "Cisco-IOS-XE-native:forwarding": "MGMT" });
    expect((await http("GET", "/restconf/data/Cisco-IOS-XE-native:native/interface/GigabitEthernet=1/vrf/forwarding")).status).toBe(204);
  });

  it("wants application/yang-data+json and the module-qualified input", async () => {
    expect((await http("POST", "/restconf/operations/Cisco-IOS-XE-rpc:monitor", "{}", { "content-type": "text/plain" })).status).toBe(415);
    expect((await http("GET", "/restconf/operations/Cisco-IOS-XE-rpc:monitor")).status).toBe(405);
    const r = await http("POST", "/restconf/operations/Cisco-IOS-XE-rpc:monitor", { input: { capture: "X" } });
    expect([r.status, error(r)["error-tag"]]).toEqual([400, "malformed-message"]);
  });

  const invalid: Array<{ name: string; input: Record<string, unknown>; status: number; tag: string; path: string }> = [
    { name: "buffer size 0", input: { capture: "V1", buffer: { size: 0 } }, status: 400, tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/buffer/size" },
    { name: "buffer size 101", input: { capture: "V1", buffer: { size: 101 } }, status: 400, tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/buffer/size" },
    { name: "duration 0", input: { capture: "V1", limit: { duration: 0 } }, status: 400, tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/limit/duration" },
    { name: "duration too long", input: { capture: "V1", limit: { duration: 1_000_001 } }, status: 400, tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/limit/duration" },
    { name: "packet-len 63", input: { capture: "V1", limit: { "packet-len": 63 } }, status: 400, tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/limit/packet-len" },
    { name: "unknown interface", input: { capture: "V1", interface: "GigabitEthernet9", both: [null] }, status: 400, tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/interface" },
    { name: "interface without direction", input: { capture: "V1", interface: "GigabitEthernet1" }, status: 400, tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/interface" },
    { name: "two directions", input: { capture: "V1", interface: "Gi1", both: [null], in: [null] }, status: 400, tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/in" },
    { name: "empty leaf not [null]", input: { capture: "V1", start: true }, status: 400, tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/start" },
    { name: "bad match", input: { capture: "V1", match: "ipv4 protocol udp any eq 5060" }, status: 400, tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/match" },
    { name: "unknown leaf", input: { capture: "V1", filter: "x" }, status: 400, tag: "unknown-element", path: "/Cisco-IOS-XE-rpc:monitor/input/filter" },
    { name: "access-list", input: { capture: "V1", "access-list": "ACL" }, status: 501, tag: "operation-not-supported", path: "/Cisco-IOS-XE-rpc:monitor/input/access-list" },
    { name: "two actions", input: { capture: "V1", start: [null], stop: [null] }, status: 400, tag: "invalid-value", path: "/Cisco-IOS-XE-rpc:monitor/input/stop" },
  ];
  it.each(invalid)("monitor RPC validation: $name → $status $tag", async ({ input, status, tag, path }) => {
    const r = await rpc("monitor", input);
    expect(r.status).toBe(status);
    expect(error(r)).toMatchObject({ "error-tag": tag, "error-path": path });
    expect(dev.capturePoint("V1")).toBeUndefined();
  });
});

describe("capture point state machine", () => {
  it("defined → active → stopped → exported, with IOS's own texts, then removed and deleted", async () => {
    const define = await rpc("monitor", { capture: "SM1", interface: "Gi1", both: [null], match: "ipv4 protocol udp any any eq 5060", buffer: { size: 2 } });
    expect([define.status, result(define)]).toEqual([200, ""]);
    expect(dev.capturePoint("SM1")).toMatchObject({ state: "defined", interfaces: [{ name: "GigabitEthernet1", direction: "both" }], match: "ipv4 protocol udp any any eq 5060", bufferMb: 2 });
    expect(result(await rpc("monitor", { capture: "SM1", export: "bootflash:SM1.pcap" }))).toBe("Exported Successfully\n"); // an empty buffer exports
    expect(result(await rpc("monitor", { capture: "SM1", start: [null] }))).toBe("Started capture point : SM1\n");
    expect(result(await rpc("monitor", { capture: "SM1", start: [null] }))).toBe("% Capture point SM1 is already active\n");
    expect(result(await rpc("monitor", { capture: "SM1", buffer: { size: 5 } }))).toBe("% Capture point SM1 is active; stop it before changing its parameters\n");
    expect(result(await rpc("monitor", { capture: "SM1", export: "bootflash:SM1.pcap" }))).toBe("% Capture point SM1 is active; stop it before exporting\n");
    await new Promise((r) => setTimeout(r, 100));
    const stop = result(await rpc("monitor", { capture: "SM1", stop: [null] }));
    expect(stop).toMatch(/^Capture statistics collected at software:\n[\s\S]*Packets received - \d+\n[\s\S]*Stopped capture point : SM1\n$/);
    expect(result(await rpc("monitor", { capture: "SM1", stop: [null] }))).toBe("Capture point SM1 not active\n");
    expect(result(await rpc("monitor", { capture: "SM1", stop_export: [null] }))).toMatch(/^% No export location configured/);
    expect(result(await rpc("monitor", { capture: "SM1", export: "tftp://192.0.2.5/x.pcap" }))).toMatch(/^% Export to tftp:\/\/192\.0\.2\.5\/x\.pcap is not supported/);
    expect(result(await rpc("monitor", { capture: "SM1", export: "bootflash:SM1.pcap" }))).toBe("Exported Successfully\n");
    const cp = dev.capturePoint("SM1")!;
    expect(cp).toMatchObject({ state: "exported", exportedTo: "bootflash:SM1.pcap" });
    const file = dev.bootflashFile("SM1.pcap")!;
    expect(file.readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect(file.readUInt32LE(20)).toBe(1); // Ethernet
    const pkts = records(file);
    expect(pkts.length).toBe(cp.packets);
    expect(pkts.length).toBeGreaterThan(20);
    for (const p of pkts) expect(p.readUInt16BE(36)).toBe(5060);
    expect(result(await rpc("no", { monitor: { capture: "SM1" } }))).toBe("");
    expect(dev.capturePoint("SM1")).toBeUndefined();
    expect(result(await rpc("no", { monitor: { capture: "SM1" } }))).toBe("Capture point SM1 does not exist\n");
    expect(result(await rpc("delete", { "filename-drop-node-name": "bootflash:SM1.pcap" }))).toBe("");
    expect(dev.bootflashFile("SM1.pcap")).toBeUndefined();
    expect(result(await rpc("delete", { "filename-drop-node-name": "bootflash:SM1.pcap" }))).toBe("%Error deleting bootflash:SM1.pcap (No such file or directory)\n");
    expect(dev.lastExport()?.name).toBe("SM1.pcap");
    expect(dev.state().commands.slice(0, 2)).toEqual([
      "monitor capture SM1 interface GigabitEthernet1 both match ipv4 protocol udp any any eq 5060 buffer size 2",
      "monitor capture SM1 export bootflash:SM1.pcap",
    ]);
  });

  it("start needs an attachment point and a filter", async () => {
    await rpc("monitor", { capture: "SM2", buffer: { size: 1 } });
    expect(result(await rpc("monitor", { capture: "SM2", start: [null] }))).toBe("% Capture point SM2 has no attachment point; add 'interface <name> {in|out|both}'\n");
    await rpc("monitor", { capture: "SM2", interface: "Gi2", in: [null] });
    expect(result(await rpc("monitor", { capture: "SM2", start: [null] }))).toBe("% Capture point SM2 has no filter; add 'match any' or a match filter\n");
    await rpc("no", { monitor: { capture: "SM2" } });
  });

  it("limit packets and limit duration stop the capture by themselves", async () => {
    await rpc("monitor", { capture: "LP", interface: "Gi1", both: [null], match: "any", limit: { packets: 7, "packet-len": 64 } });
    await rpc("monitor", { capture: "LD", interface: "Gi1", out: [null], match: "any", limit: { duration: 1 } });
    await rpc("monitor", { capture: "LP", start: [null] });
    await rpc("monitor", { capture: "LD", start: [null] });
    await new Promise((r) => setTimeout(r, 1100));
    expect(dev.capturePoint("LP")).toMatchObject({ state: "stopped", packets: 7 });
    const ld = dev.capturePoint("LD")!;
    expect(ld.state).toBe("stopped");
    expect(ld.packets).toBe(500); // 1 s at 1000/s, outbound half
    await rpc("monitor", { capture: "LP", export: "bootflash:LP.pcap" });
    const lp = dev.bootflashFile("LP.pcap")!;
    expect(lp.readUInt32LE(16)).toBe(64); // snaplen in the header
    expect(records(lp).every((p) => p.length === 64)).toBe(true);
    await rpc("no", { monitor: { capture: "LP" } });
    await rpc("no", { monitor: { capture: "LD" } });
  });
});

describe("SSH CLI, SCP and SFTP", () => {
  it("pages long output until `terminal length 0`, marks invalid input, shows capture points", async () => {
    const paged = await shell("show version\n q\nexit\n");
    expect(paged).toContain(" --More-- ");
    const out = await shell("terminal length 0\nshow version\nmonitor capture C1 interface Gi9 both\nmonitor capture C1 interface Gi1 both match any\nshow monitor capture C1\nno monitor capture C1\nexit\n");
    expect(out).not.toContain("--More--");
    expect(out).toContain("Cisco IOS XE Software, Version 17.09.04a");
    expect(out).toContain("cisco C8000V (VXE) processor");
    expect(out).toContain("edge-rtr1#monitor capture C1 interface Gi9 both\n" + " ".repeat("edge-rtr1#monitor capture C1 interface ".length) + "^\n% Invalid input detected at '^' marker.");
    expect(out).toMatch(/Status Information for Capture C1\n {2}Target Type:\n Interface: GigabitEthernet1, Direction: BOTH\n {3}Status : Inactive\n/);
    expect(dev.capturePoint("C1")).toBeUndefined();
  });

  it("serves bootflash: over SCP and SFTP, byte for byte; refuses what is missing", async () => {
    await rpc("monitor", { capture: "F1", interface: "Gi1", both: [null], match: "any" });
    await rpc("monitor", { capture: "F1", start: [null] });
    await new Promise((r) => setTimeout(r, 30));
    await rpc("monitor", { capture: "F1", stop: [null] });
    await rpc("monitor", { capture: "F1", export: "bootflash:F1.pcap" });
    const want = dev.bootflashFile("F1.pcap")!;
    const scp = await scpGet("bootflash:F1.pcap");
    expect(scp).toEqual({ header: `C0644 ${want.length} F1.pcap`, data: want });
    expect(await scpGet("bootflash:NOPE.pcap")).toEqual({ error: "scp: bootflash:NOPE.pcap: No such file or directory" });
    const viaSftp = await ssh(
      (c) =>
        new Promise<Buffer>((resolve, reject) =>
          c.sftp((err, sftp) => {
            if (err) return reject(err);
            const parts: Buffer[] = [];
            sftp.createReadStream("/bootflash:/F1.pcap").on("data", (d: Buffer) => parts.push(d)).on("end", () => resolve(Buffer.concat(parts))).on("error", reject);
          }),
        ),
    );
    expect(viaSftp.equals(want)).toBe(true);
    await rpc("no", { monitor: { capture: "F1" } });
    await rpc("delete", { "filename-drop-node-name": "bootflash:F1.pcap" });
  });

  it("refuses SSH connections on demand and counts them", async () => {
    dev.setFault({ file: { kind: "refuse", times: 1 } });
    await expect(shell("exit\n")).rejects.toThrow(/ECONNRESET|closed|socket/i);
    expect(await shell("exit\n")).toContain("edge-rtr1#");
    expect(dev.state().fileRefusals).toBe(1);
    dev.clearFaults();
  });

  it("bootflash paths", () => {
    expect(["bootflash:a.pcap", "bootflash:/a.pcap", "/bootflash:/a.pcap", "flash:a.pcap", "bootflash:../x", "disk0:a", "bootflash:a/b"].map(bootflashName)).toEqual(["a.pcap", "a.pcap", "a.pcap", "a.pcap", undefined, undefined, undefined]);
  });
});

/** Frames of a classic little-endian pcap file. */
function records(file: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 24; off + 16 <= file.length; ) {
    const n = file.readUInt32LE(off + 8);
    out.push(file.subarray(off + 16, off + 16 + n));
    off += 16 + n;
  }
  return out;
}
