import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { redact } from "@capsync/protocol";
import { RunFolder } from "../artifacts/run-folder.js";
import { devicesInfoCompanion, devicesInfoJson } from "../artifacts/devices-info.js";
import { ManifestWriter, slicedManifestText } from "./manifest-writer.js";
import type { DeviceRecord, Manifest } from "./model.js";

const work = mkdtempSync(join(tmpdir(), "capsync-manifest-writer-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function device(i: number): DeviceRecord {
  return {
    device: `192.0.2.${i}`,
    type: i % 2 ? "msbr" : "gwsbc",
    state: "capturing",
    status: "running",
    severity: "info",
    description: `device capturing; "quoted" \\ and\nnewline, password pw-${i}`,
    interfaces: ["eth-wan"],
    events: 0,
    tasks: [{ name: "probe", timestamp: "2026-11-23T10:00:00.000Z", status: "ok", httpStatus: 200, output: `Mediant ${i}\npw-${i}`, durationMs: 50 }],
    agents: [{ agent: "198.51.100.5:20001", registration: "active", capture: "capturing", answers: [], files: [] }],
    times: { started: "2026-11-23T10:00:00.000Z" },
  } as unknown as DeviceRecord;
}

function manifest(n: number): Manifest {
  return {
    tool: "capsync",
    version: "0.1.0",
    runId: "run-x",
    folder: "/tmp/run-x",
    startedAt: "2026-11-23T10:00:00.000Z",
    status: "running",
    mode: "v1",
    config: { devices: [{ address: "192.0.2.1" }] },
    devices: Array.from({ length: n }, (_, i) => device(i + 1)),
    syslog: { udp: "127.0.0.1:514" },
  } as unknown as Manifest;
}

describe("manifest writer", () => {
  it("slices to exactly the bytes of JSON.stringify(manifest, null, 2), redacted", async () => {
    const secrets = ["pw-3", "pw-70"];
    for (const n of [0, 1, 24, 25, 26, 103]) {
      const m = manifest(n);
      const expected = JSON.stringify(m, null, 2).split("pw-70").join("***").split("pw-3").join("***");
      const r = await slicedManifestText(m, secrets);
      expect(r?.text).toBe(expected);
    }
  });

  it("gives up a sliced text that went stale", async () => {
    let turns = 0;
    expect(await slicedManifestText(manifest(100), [], () => ++turns === 2)).toBeUndefined();
  });

  it("writes a big manifest in slices and a flush() in between wins", async () => {
    const folder = RunFolder.create(work);
    const m = manifest(400);
    const w = new ManifestWriter(folder, m, () => []);
    w.flush();
    // Force the sliced path as a fleet's manifest would (its writes cost more than 2 ms).
    (w as unknown as { lastCostMs: number }).lastCostMs = 3;
    (w as unknown as { lastWriteAt: number }).lastWriteAt = 0;
    m.devices[0]!.state = "stopping";
    w.touch();
    await new Promise((r) => setTimeout(r, 5));
    m.devices[0]!.state = "done";
    w.flush();
    await new Promise((r) => setTimeout(r, 300));
    const onDisk = JSON.parse(readFileSync(folder.path("manifest.json"), "utf8")) as Manifest;
    expect(onDisk.devices[0]!.state).toBe("done");
    expect(onDisk.devices).toHaveLength(400);
  });

  it("an incremental write re-serialises only changed devices and writes the bytes of a full one", async () => {
    const folder = RunFolder.create(work);
    const secrets = ["pw-3", "pw-70"];
    const m = manifest(103);
    const w = new ManifestWriter(folder, m, () => secrets, devicesInfoCompanion);
    const expectOnDisk = () => {
      expect(readFileSync(folder.path("manifest.json"), "utf8")).toBe(redact(JSON.stringify(m, null, 2), secrets) + "\n");
      expect(readFileSync(folder.path("devices_info.json"), "utf8")).toBe(devicesInfoJson(m, secrets));
    };
    const sliced = () => (w as unknown as { writeSliced(): Promise<void> }).writeSliced();
    await sliced();
    expectOnDisk();
    // Changed through deviceChanged: written anew; the others come from their cached text.
    m.devices[2]!.state = "stopping";
    m.devices[2]!.tasks.push({ name: "stop-capture", timestamp: "2026-11-23T10:05:00.000Z", status: "ok", httpStatus: 200, output: "pw-3 stopped", durationMs: 40 });
    m.devices[69]!.description = "done";
    w.deviceChanged(m.devices[2]!);
    w.deviceChanged(m.devices[69]!);
    (m as unknown as { status: string }).status = "stopping";
    await sliced();
    expectOnDisk();
    // A change that missed deviceChanged() is not in the next write, but in the next full one.
    m.devices[50]!.events = 7;
    await sliced();
    expect(JSON.parse(readFileSync(folder.path("manifest.json"), "utf8")).devices[50].events).toBe(0);
    for (let i = 0; i < 10; i++) await sliced();
    expectOnDisk();
    // A secret added later is redacted from cached devices too.
    secrets.push("192.0.2.9");
    await sliced();
    expectOnDisk();
    expect(readFileSync(folder.path("manifest.json"), "utf8")).not.toContain("192.0.2.9");
    w.flush();
    expectOnDisk();
  });
});
