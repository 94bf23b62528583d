// Local time as the original writes it, in a zone that is not UTC: set before any Date is formatted.
process.env.TZ = "Europe/Berlin";

import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { README_OVOC_RECORD, expectReadmeShape, parseReadmeRecord } from "../../../test/helpers/devices-info-golden.js";
import { agentDeviceInfo, devicesInfoWriter } from "./devices-info.js";
import { StateStore, type DeviceRecord } from "./state.js";

const work = mkdtempSync(join(tmpdir(), "capsync-agent-devices-info-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const TMP = "tmp_device_192.0.2.10_2026-11-23T19.55.00.000000.pcap";
const CPE = "CPE_device_192.0.2.10_2026-11-23T20.55.00.456000.pcap";
const OVOC = "OVOC_device_192.0.2.10_2026-11-23T20.55.00.456000-0.pcap";
const VERIFY = JSON.stringify({ ok: true, tcpTries: 3, tcpAnswered: 3, tcpTimeouts: 0, udpSent: 3, udpAnswers: 0, icmp: { sent: 3, received: 3 } });

/** The agent's state after REGISTER, CAPTURE, VERIFY and STOP for one device. */
function stopped(): DeviceRecord {
  return {
    device: "192.0.2.10",
    registration: "active",
    orchestrator: "198.51.100.9:40000",
    lastRequest: "STOP",
    lastResponse: "200",
    session: { device: "192.0.2.10", state: "collected", tmpName: TMP, ring: false, iface: "eth0", filter: ["host", "192.0.2.10"], startedAt: "2026-11-23T18:55:00.000Z", stoppedAt: "2026-11-23T19:55:00.470Z", stopReason: "request", packets: 12, forFile: CPE, files: [{ name: OVOC, bytes: 900 }] },
    tasks: [
      { timestamp: "2026-11-23T18:54:59.900Z", task: "register", status: "ok", detail: "198.51.100.9:40000" },
      { timestamp: "2026-11-23T18:55:00.020Z", task: "capture", status: "ok", detail: TMP },
      { timestamp: "2026-11-23T19:55:00.300Z", task: "verify", status: "ok", detail: VERIFY },
      { timestamp: "2026-11-23T19:55:00.480Z", task: "stop", status: "ok", detail: OVOC },
    ],
  };
}

const SHAPE = parseReadmeRecord(README_OVOC_RECORD);

describe("devices_info.json (agent side)", () => {
  it("the golden record: field for field as ovoc_capture_app would have kept it", () => {
    expect(agentDeviceInfo(stopped())).toEqual({
      device: "192.0.2.10",
      status: "Success",
      state: "not active",
      description: `Successfully renamed capture file: [${TMP}]`,
      lastCapture: OVOC,
      lastRequest: "STOP",
      lastResponse: "200 OK",
      severity: "NORMAL",
      tasks: [
        { task: "Register device", timestamp: "2026-11-23T19:54:59.900000", status: "Success", description: "Registered device for CPE capture script: [198.51.100.9:40000]" },
        { task: "Start capture", timestamp: "2026-11-23T19:55:00.020000", status: "Success", description: `Started capture for device to file: [${TMP}]`, filename: TMP },
        { task: "Send ICMP (Ping)", timestamp: "2026-11-23T20:55:00.300000", status: "Success", output: "ICMP: 3 of 3 answered.", description: "Successfully sent all ICMP pings to device." },
        { task: "Send UDP (SNMP)", timestamp: "2026-11-23T20:55:00.300000", status: "Failure", output: "SNMP: 0 of 3 answered.", description: "Failed to receive response to 3 out of 3 SNMP GET requests!" },
        { task: "Send TCP (Port 443)", timestamp: "2026-11-23T20:55:00.300000", status: "Success", output: "TCP: 3 of 3 answered.", description: "Successfully sent all TCP connection requests to device." },
        { task: "Stop capture", timestamp: "2026-11-23T20:55:00.480000", status: "Success", description: `Stopped capture on device as file: [${CPE}]`, filename: CPE },
        { task: "Rename temporary capture file", timestamp: "2026-11-23T20:55:00.480000", status: "Success", description: `Successfully renamed capture file: [${TMP}]`, filename: OVOC },
      ],
      registration: "active",
      regTime: Date.parse("2026-11-23T18:54:59.900Z") / 1000,
      ovocCapture: "not active",
      cpeFilename: CPE,
      tempCapture: TMP,
      pid: "",
      ovocCapture0: OVOC,
    });
  });

  it("has every key of the README's record with the README's value formats, README keys first", () => {
    const rec = agentDeviceInfo(stopped()) as unknown as Record<string, unknown>;
    expectReadmeShape(rec, SHAPE);
    expect([...SHAPE.device.keys()]).toEqual(["device", "status", "state", "description", "lastCapture", "lastRequest", "lastResponse", "severity", "tasks"]);
    expect([...SHAPE.task.keys()]).toEqual(["task", "timestamp", "status", "description"]);
    expect(Object.keys(rec).slice(0, 9)).toEqual([...SHAPE.device.keys()]);
  });

  it("capturing: active, the pid as a string, VERIFY's failures CRITICAL", () => {
    const d = stopped();
    d.session = { ...d.session!, state: "capturing", pid: 4242 };
    delete d.session.files;
    delete d.session.forFile;
    d.tasks = [...d.tasks.slice(0, 2), { timestamp: "2026-11-23T19:55:00.300Z", task: "verify", status: "failed", detail: JSON.stringify({ ok: false, tcpTries: 3, tcpAnswered: 0, tcpTimeouts: 3, udpSent: 3, udpAnswers: 0, snmpv3: { ok: false, sent: 3, answered: 0 } }) }];
    d.lastRequest = "VERIFY";
    d.lastResponse = "430";
    const got = agentDeviceInfo(d);
    expect(got).toMatchObject({ state: "active", ovocCapture: "active", pid: "4242", status: "Failure", severity: "CRITICAL", lastCapture: "", lastResponse: "430 Flow Failed" });
    expect(got.description).toBe("Sending ICMP PING requests is disabled. Failed to receive response to 3 out of 3 SNMP GET requests! Failed to receive response to 3 out of 3 SNMP GET requests! Failed to receive response to 3 out of 3 TCP connection requests!");
    expect(got.tasks.slice(2).map((t) => t.task)).toEqual(["Send UDP (SNMPv3)", "Send UDP (SNMP)", "Send TCP (Port 443)"]);
    expect(got.cpeFilename).toBeUndefined();
  });

  it("a tcpdump that failed to start: Failure, CRITICAL, the error as description", () => {
    const d = stopped();
    d.session = { ...d.session!, state: "failed", error: "tcpdump: eth9: No such device exists" };
    delete d.session.files;
    d.tasks = [d.tasks[0]!, { timestamp: "2026-11-23T18:55:00.020Z", task: "capture", status: "failed", detail: "tcpdump: eth9: No such device exists" }];
    expect(agentDeviceInfo(d)).toMatchObject({ status: "Failure", severity: "CRITICAL", description: "tcpdump: eth9: No such device exists", state: "not active" });
    expect(agentDeviceInfo(d).tasks[1]).toMatchObject({ task: "Start capture", status: "Failure", filename: TMP });
  });

  it("ring files: one rename task per file, temp names with the ring index; an agent stop is MINOR", () => {
    const d = stopped();
    const files = [0, 1, 2].map((i) => ({ name: OVOC.replace("-0.pcap", `-${i}.pcap`), bytes: 100 }));
    d.session = { ...d.session!, ring: true, files };
    d.tasks[3] = { ...d.tasks[3]!, detail: files.map((f) => f.name).join(",") };
    const got = agentDeviceInfo(d);
    expect(got.tasks.filter((t) => t.task === "Rename temporary capture file").map((t) => [t.filename, t.description])).toEqual(files.map((f, i) => [f.name, `Successfully renamed capture file: [${TMP}${i}]`]));
    expect([got.ovocCapture0, got.ovocCapture1, got.ovocCapture2]).toEqual(files.map((f) => f.name));
    d.tasks.push({ timestamp: "2026-11-24T18:55:00.000Z", task: "watchdog", status: "stopped", detail: "max-duration" });
    expect(agentDeviceInfo(d)).toMatchObject({ status: "Success", severity: "MINOR", description: "Capture stopped by the agent (max-duration); files kept." });
  });

  it("a successful unregister after STOP keeps the capture's outcome; a failed one is MINOR", () => {
    const d = stopped();
    d.registration = "not active";
    d.tasks.push({ timestamp: "2026-11-23T19:55:00.490Z", task: "unregister", status: "ok", detail: "capture stopped" });
    expect(agentDeviceInfo(d)).toMatchObject({ status: "Success", severity: "NORMAL", description: `Successfully renamed capture file: [${TMP}]`, registration: "not active" });
    expect(agentDeviceInfo(d).tasks.at(-1)).toMatchObject({ task: "Unregister device", status: "Success", description: "Unregistered device: capture stopped" });
    expect(agentDeviceInfo(d).regTime).toBeUndefined();
    d.tasks.push({ timestamp: "2026-11-23T19:56:00.000Z", task: "unregister", status: "failed", detail: "management server: HTTP 500" });
    expect(agentDeviceInfo(d)).toMatchObject({ status: "Failure", severity: "MINOR", description: "management server: HTTP 500" });
  });

  it("an older stop (not the current session) still names the device file, from its final name", () => {
    const d = stopped();
    d.session = { ...d.session!, state: "capturing", tmpName: "tmp_device_192.0.2.10_x.pcap" };
    delete d.session.files;
    delete d.session.forFile;
    const got = agentDeviceInfo(d);
    expect(got.tasks.find((t) => t.task === "Stop capture")).toMatchObject({ filename: CPE, description: `Stopped capture on device as file: [${CPE}]` });
  });

  it("the state store writes devices_info.json beside its state file on every write", () => {
    const dir = mkdtempSync(join(work, "dir-"));
    const errors: string[] = [];
    const store = new StateStore(dir, devicesInfoWriter(dir, (e) => errors.push(e.message)));
    store.task("192.0.2.10", "register", "ok", "198.51.100.9:40000");
    store.flush();
    const first = JSON.parse(readFileSync(join(dir, "devices_info.json"), "utf8")) as { devices: { device: string; tasks: unknown[] }[] };
    expect(first.devices.map((d) => [d.device, d.tasks.length])).toEqual([["192.0.2.10", 1]]);
    store.task("192.0.2.11", "capture", "failed", "no tcpdump");
    store.flush();
    const text = readFileSync(join(dir, "devices_info.json"), "utf8");
    expect(text.startsWith('{\n    "devices": [\n')).toBe(true);
    expect((JSON.parse(text) as { devices: unknown[] }).devices).toHaveLength(2);
    expect(errors).toEqual([]);
    // A write that fails is reported once and never breaks the state file.
    rmSync(dir, { recursive: true, force: true });
    const broken = devicesInfoWriter(dir, (e) => errors.push(e.message));
    broken([stopped()]);
    broken([stopped()]);
    expect(errors).toHaveLength(1);
    expect(existsSync(dir)).toBe(false);
  });
});
