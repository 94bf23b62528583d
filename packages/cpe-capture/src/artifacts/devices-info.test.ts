// Local time as the original writes it, in a zone that is not UTC: set before any Date is formatted.
process.env.TZ = "Europe/Berlin";

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { README_CPE_RECORD, expectReadmeShape, parseReadmeRecord } from "../../../../test/helpers/devices-info-golden.js";
import { ManifestWriter } from "../run/manifest-writer.js";
import type { DeviceRecord, Manifest } from "../run/model.js";
import { DEVICES_INFO_FILE, deviceInfo, devicesInfoCompanion, devicesInfoJson, slicedDevicesInfoJson } from "./devices-info.js";
import { RunFolder } from "./run-folder.js";

const work = mkdtempSync(join(tmpdir(), "capsync-devices-info-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const PASSWORD = "Msbr-Secret-4711!";
const CAPTURE = "CPE_device_192.0.2.10_2026-11-23T19.55.00.456000.pcap";
const SHOW_ACTIVE = "debug capture data physical show\nDebug capture physical is active\n";
const SHOW_INACTIVE = "Debug capture physical is not active\n";

/** A collected MSBR run as the manifest holds it: start, an alarm, VERIFY, stop, download. */
function collected(): DeviceRecord {
  return {
    device: "192.0.2.10",
    name: "branch-msbr",
    type: "msbr",
    state: "done",
    status: "collected",
    severity: "info",
    description: "alarm: device collected, servers 1/1",
    interfaces: ["eth-wan", "cellular-wan"],
    events: 1,
    stopReason: "alarm",
    deviceCapture: "collected",
    captureName: CAPTURE,
    deviceFile: { name: CAPTURE, bytes: 4824, sha256: "9f86d0" },
    tasks: [
      { name: "probe", timestamp: "2026-11-23T18:55:00.100Z", status: "ok", httpStatus: 200, output: "M500L 7.24.356 EXA7F000015", durationMs: 40 },
      { name: "start-capture", timestamp: "2026-11-23T18:55:00.200Z", status: "ok", httpStatus: 200, output: SHOW_ACTIVE, durationMs: 60 },
      { name: "stop-capture", timestamp: "2026-11-23T19:55:00.400Z", status: "ok", httpStatus: 200, output: SHOW_INACTIVE, durationMs: 55 },
      { name: "fetch-capture", timestamp: "2026-11-23T19:55:00.500Z", status: "ok", output: `/debug-capture/debug-capture-data.pcap: 4824 bytes`, durationMs: 30 },
    ],
    agents: [
      {
        agent: "198.51.100.5:20001",
        registration: "active",
        capture: "collected",
        lastRequest: "STOP",
        lastResponse: "200",
        answers: [
          { verb: "REGISTER", code: 200, details: {}, tries: 1, elapsedMs: 3, at: "2026-11-23T18:54:59.900Z" },
          { verb: "CAPTURE", code: 200, details: {}, tries: 1, elapsedMs: 20, at: "2026-11-23T18:55:00.000Z" },
          { verb: "VERIFY", code: 200, details: { tcp: "3/3", snmp: "0/3" }, tries: 1, elapsedMs: 900, at: "2026-11-23T19:55:00.300Z" },
          { verb: "STOP", code: 200, details: {}, tries: 1, elapsedMs: 40, at: "2026-11-23T19:55:00.450Z" },
        ],
        files: [{ name: "OVOC_device_192.0.2.10_2026-11-23T19.55.00.456000-0.pcap", bytes: 900 }],
      },
    ],
    verify: { at: "2026-11-23T19:55:00.350Z", agents: [], orchestrator: { ok: true, tcp: "3/3", snmp: "0/3" } },
    times: { started: "2026-11-23T18:54:59.800Z", capturing: "2026-11-23T18:55:00.260Z", triggered: "2026-11-23T19:55:00.250Z", stopped: "2026-11-23T19:55:00.455Z", collected: "2026-11-23T19:55:00.600Z" },
  };
}

function manifestOf(...devices: DeviceRecord[]): Manifest {
  return {
    tool: "capsync",
    version: "0.1.0",
    runId: "run-x",
    folder: "/tmp/run-x",
    startedAt: "2026-11-23T18:54:59.000Z",
    status: "done",
    mode: "v1",
    config: { devices: devices.map((d) => ({ address: d.device, username: "Admin", password: "***" })) },
    devices,
  };
}

const SHAPE = parseReadmeRecord(README_CPE_RECORD);

describe("devices_info.json (orchestrator side)", () => {
  it("the golden record: field for field as cpe_capture_app would have kept it for this run", () => {
    const got = deviceInfo(manifestOf(collected()), collected());
    expect(got).toEqual({
      device: "192.0.2.10",
      username: "Admin",
      password: "*****",
      status: "Success",
      state: "not active",
      events: 1,
      ovocState: "not active",
      description: `Stored capture from device as file: [${CAPTURE}]`,
      lastRequest: "STOP",
      lastResponse: "200 OK",
      severity: "NORMAL",
      tasks: [
        { task: "Probe", timestamp: "2026-11-23T19:55:00.100000", status: "Success", statusCode: 200, output: "M500L 7.24.356 EXA7F000015", description: "M500L 7.24.356 EXA7F000015" },
        { task: "Start capture", timestamp: "2026-11-23T19:55:00.200000", status: "Success", statusCode: 200, output: SHOW_ACTIVE, description: "Successfully executed CLI script on device." },
        { task: "Send UDP (SNMP)", timestamp: "2026-11-23T20:55:00.350000", status: "Failure", statusCode: -1, output: "SNMP: 0 of 3 answered.", description: "Failed to receive response to 3 out of 3 SNMP GET requests!" },
        { task: "Send TCP (Port 443)", timestamp: "2026-11-23T20:55:00.350000", status: "Success", statusCode: -1, output: "TCP: 3 of 3 answered.", description: "Successfully sent all TCP connection requests to device." },
        { task: "Stop capture", timestamp: "2026-11-23T20:55:00.400000", status: "Success", statusCode: 200, output: SHOW_INACTIVE, description: "Successfully executed CLI script on device.", filename: CAPTURE },
        { task: "Retrieve capture", timestamp: "2026-11-23T20:55:00.500000", status: "Success", statusCode: -1, output: "/debug-capture/debug-capture-data.pcap: 4824 bytes", description: `Stored capture from device as file: [${CAPTURE}]`, filename: CAPTURE },
      ],
      type: "MSBR",
      interfaces: ["eth-wan", "cellular-wan"],
      ovoc: "198.51.100.5",
      awaitingResponse: false,
      completed: true,
      cpeCapture: "not active",
      cpeEvent: "not active",
      ovocCapture: "not active",
      registration: "active",
      registerAttempts: 1,
      lastCapture: CAPTURE,
    });
  });

  it("has every key of the README's record with the README's value formats", () => {
    const rec = deviceInfo(manifestOf(collected()), collected()) as unknown as Record<string, unknown>;
    expectReadmeShape(rec, SHAPE);
    expect([...SHAPE.device.keys()]).toEqual(["device", "username", "password", "status", "state", "events", "ovocState", "description", "lastRequest", "lastResponse", "severity", "tasks"]);
    expect([...SHAPE.task.keys()]).toEqual(["task", "timestamp", "status", "statusCode", "output", "description"]);
    // README keys first, in the README's order.
    expect(Object.keys(rec).slice(0, 12)).toEqual([...SHAPE.device.keys()]);
  });

  it("while capturing: the capture and the server side active, the event not yet", () => {
    const r = collected();
    Object.assign(r, { state: "capturing", status: "running", stopReason: undefined, deviceCapture: "capturing", deviceFile: undefined, captureName: undefined, verify: undefined });
    r.tasks = r.tasks.slice(0, 2);
    r.times = { started: r.times.started!, capturing: r.times.capturing! };
    r.agents[0]!.capture = "capturing";
    r.agents[0]!.answers = r.agents[0]!.answers.slice(0, 2);
    const got = deviceInfo(manifestOf(r), r);
    expect(got).toMatchObject({ status: "Success", severity: "NORMAL", state: "active", cpeCapture: "active", cpeEvent: "not active", ovocCapture: "active", ovocState: "active", completed: false, lastRequest: "CAPTURE", lastResponse: "200 OK", lastCapture: "" });
    expect(got.description).toBe("Successfully executed CLI script on device.");
  });

  it("after the alarm, while the device is retried: cpeEvent active, the failed stop MAJOR", () => {
    const r = collected();
    Object.assign(r, { state: "collecting", status: "running", deviceCapture: "pending", deviceFile: undefined });
    delete r.times.stopped;
    r.tasks = [...r.tasks.slice(0, 2), { name: "stop-capture", timestamp: "2026-11-23T19:55:00.400Z", status: "failed", durationMs: 3000, output: "connect ECONNREFUSED 192.0.2.10:443" }];
    r.agents[0]!.capture = "stopping";
    const got = deviceInfo(manifestOf(r), r);
    expect(got).toMatchObject({ status: "Failure", severity: "MAJOR", cpeCapture: "active", cpeEvent: "active", awaitingResponse: true, description: "REST Request Error: connect ECONNREFUSED 192.0.2.10:443" });
    expect(got.tasks.at(-1)).toEqual({ task: "Stop capture", timestamp: "2026-11-23T20:55:00.400000", status: "Failure", statusCode: -1, output: "", description: "REST Request Error: connect ECONNREFUSED 192.0.2.10:443", filename: CAPTURE });
  });

  it("a capture that never started: 'Verify started' says so, CRITICAL, and the device is a Failure", () => {
    const r = collected();
    Object.assign(r, { state: "failed", status: "failed", deviceCapture: undefined, deviceFile: undefined, stopReason: "start-failed", verify: undefined, description: "device capture failed to start: capture not active after 5 checks" });
    r.times = { started: r.times.started! };
    r.tasks = [
      r.tasks[0]!,
      { name: "start-capture", timestamp: "2026-11-23T18:55:00.200Z", status: "ok", httpStatus: 200, output: SHOW_INACTIVE, durationMs: 60 },
      { name: "confirm-start", timestamp: "2026-11-23T18:55:00.800Z", status: "ok", httpStatus: 200, output: SHOW_INACTIVE, durationMs: 60 },
      { name: "confirm-start", timestamp: "2026-11-23T18:55:01.800Z", status: "ok", httpStatus: 200, output: SHOW_INACTIVE, durationMs: 60 },
    ];
    const got = deviceInfo(manifestOf(r), r);
    expect(got.tasks.slice(2).map((t) => [t.task, t.status, t.description])).toEqual([
      ["Verify started", "Success", "Failed to start debug capture on device!"],
      ["Verify started", "Success", "Failed to start debug capture on device!"],
    ]);
    expect(got).toMatchObject({ status: "Failure", severity: "CRITICAL", description: "Failed to start debug capture on device!", completed: true, cpeCapture: "not active" });
  });

  it("HTTP errors: the device's own description, else the original's sentence; the status code in statusCode", () => {
    const r = collected();
    r.tasks = [
      { name: "start-capture", timestamp: "2026-11-23T18:55:00.200Z", status: "failed", httpStatus: 401, output: "Unauthorized access", durationMs: 5 },
      { name: "start-capture", timestamp: "2026-11-23T18:55:00.300Z", status: "failed", httpStatus: 500, output: "<html>oops</html>", durationMs: 5 },
      { name: "start-capture", timestamp: "2026-11-23T18:55:00.400Z", status: "failed", httpStatus: 200, output: "Invalid command", durationMs: 5 },
    ];
    const got = deviceInfo(manifestOf(r), r);
    expect(got.tasks.filter((t) => t.task === "Start capture").map((t) => [t.statusCode, t.output, t.description])).toEqual([
      [401, "", "Unauthorized access"],
      [500, "", "Unexpected response received from device. Status code: [500]"],
      [200, "Invalid command", "CLI script execution failed on device."],
    ]);
  });

  it("device file collected but a server side missing: MINOR", () => {
    const r = collected();
    r.status = "partial";
    r.agents[0]!.capture = "failed";
    expect(deviceInfo(manifestOf(r), r)).toMatchObject({ status: "Success", severity: "MINOR" });
  });

  it("registration: aborted when an agent refused, not active without agents; attempts count the tries", () => {
    const r = collected();
    r.agents[0]!.registration = "failed";
    r.agents[0]!.answers = [{ verb: "REGISTER", code: 503, details: {}, tries: 3, elapsedMs: 9, at: "2026-11-23T18:54:59.900Z" }];
    expect(deviceInfo(manifestOf(r), r)).toMatchObject({ registration: "aborted", registerAttempts: 3, lastRequest: "REGISTER", lastResponse: "503 Service Unavailable" });
    const alone = collected();
    alone.agents = [];
    expect(deviceInfo(manifestOf(alone), alone)).toMatchObject({ registration: "not active", registerAttempts: 0, ovoc: "", lastRequest: "", lastResponse: "" });
  });

  it("the file: {devices: [...]} with indent 4, no secret even when one slipped into an output", async () => {
    const r = collected();
    r.tasks[0]!.output = `echo ${PASSWORD}`;
    const m = manifestOf(r, { ...collected(), device: "192.0.2.11", type: "gwsbc" });
    const text = devicesInfoJson(m, [PASSWORD]);
    expect(text).not.toContain(PASSWORD);
    expect(text.startsWith('{\n    "devices": [\n        {\n            "device": "192.0.2.10",')).toBe(true);
    const parsed = JSON.parse(text) as { devices: { device: string; type: string; password: string }[] };
    expect(parsed.devices.map((d) => [d.device, d.type, d.password])).toEqual([
      ["192.0.2.10", "MSBR", "*****"],
      ["192.0.2.11", "GWSBC", "*****"],
    ]);
    expect((await slicedDevicesInfoJson(m, [PASSWORD]))?.text).toBe(text);
  });

  it("sliced text for a fleet equals the one-piece text, and gives up when stale", async () => {
    const m = manifestOf(...Array.from({ length: 60 }, (_, i) => ({ ...collected(), device: `192.0.2.${i + 1}` })));
    expect((await slicedDevicesInfoJson(m, []))?.text).toBe(devicesInfoJson(m, []));
    let turns = 0;
    expect(await slicedDevicesInfoJson(m, [], () => ++turns === 2)).toBeUndefined();
  });

  it("written beside manifest.json on every write, one-piece and sliced", async () => {
    const folder = RunFolder.create(work);
    const m = manifestOf(...Array.from({ length: 80 }, (_, i) => ({ ...collected(), device: `192.0.2.${i + 1}`, state: "capturing" as const })));
    const w = new ManifestWriter(folder, m, () => [PASSWORD], devicesInfoCompanion);
    w.flush();
    const first = JSON.parse(readFileSync(folder.path(DEVICES_INFO_FILE), "utf8")) as { devices: { completed: boolean }[] };
    expect(first.devices).toHaveLength(80);
    expect(first.devices[0]!.completed).toBe(false);
    // The throttled, sliced path a fleet's writes take.
    (w as unknown as { lastCostMs: number }).lastCostMs = 3;
    (w as unknown as { lastWriteAt: number }).lastWriteAt = 0;
    m.devices[0]!.state = "done";
    w.touch();
    // The sliced write yields to the event loop between slices: wait for it (bounded), not a fixed time.
    const completed = () => (JSON.parse(readFileSync(folder.path(DEVICES_INFO_FILE), "utf8")) as { devices: { completed: boolean }[] }).devices[0]!.completed;
    for (const until = performance.now() + 5_000; !completed() && performance.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    const after = JSON.parse(readFileSync(folder.path(DEVICES_INFO_FILE), "utf8")) as { devices: { completed: boolean }[] };
    expect(after.devices[0]!.completed).toBe(true);
    const manifest = JSON.parse(readFileSync(folder.path("manifest.json"), "utf8")) as Manifest;
    expect(manifest.devices[0]!.state).toBe("done");
  });
});
