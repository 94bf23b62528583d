import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RunFolder } from "../artifacts/run-folder.js";
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
});
