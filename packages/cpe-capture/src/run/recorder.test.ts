import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "@capsync/common";
import { RunFolder } from "../artifacts/run-folder.js";
import { RunRecorder } from "./recorder.js";
import type { DeviceRecord, Manifest } from "./model.js";

const work = mkdtempSync(join(tmpdir(), "capsync-recorder-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const PASSWORD = "Dev1ce-Pa55!";

function record(): DeviceRecord {
  return { device: "192.0.2.10", name: "b", type: "msbr", state: "capturing", status: "running", severity: "info", description: "", interfaces: ["eth-wan"], events: 0, tasks: [], agents: [], times: {} };
}

async function closed(log: ReturnType<typeof createLogger>): Promise<void> {
  await new Promise<void>((r) => {
    log.on("finish", () => r());
    log.end();
  });
  // The file transport flushes after the logger's finish.
  await new Promise((r) => setTimeout(r, 100));
}

describe("run recorder: device tasks in capsync.log", () => {
  it("logs each attempt's CLI script and the device's answer, indented under the task line, never the password", async () => {
    const folder = RunFolder.create(work);
    const file = folder.path("capsync.log");
    const log = createLogger({ file, console: false, secrets: () => [PASSWORD] });
    const m = { tool: "capsync", version: "0", runId: "r", folder: folder.dir, startedAt: "", status: "running", mode: "v1", config: {}, devices: [record()] } as Manifest;
    const rec = m.devices[0]!;
    const recorder = new RunRecorder(folder, m, [PASSWORD], log, {});
    recorder.driverTask(rec, {
      name: "start-capture",
      timestamp: "2026-11-23T18:55:00.200Z",
      status: "ok",
      attempt: 1,
      durationMs: 12,
      httpStatus: 200,
      request: `debug capture data physical stop\ndebug capture data physical eth-wan\nsnmp auth-key ${PASSWORD}\ndebug capture data physical start`,
      output: `Debug capture physical is active\nuser password ${PASSWORD}\n`,
    });
    recorder.driverTask(rec, { name: "fetch-capture", timestamp: "2026-11-23T18:55:01.000Z", status: "ok", attempt: 1, durationMs: 5, output: "4824 bytes" });
    await closed(log);
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain(PASSWORD);
    const lines = text.split("\n");
    const at = lines.findIndex((l) => l.endsWith("INFO  192.0.2.10 task start-capture attempt 1 CLI script:"));
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1, at + 5)).toEqual(["    debug capture data physical stop", "    debug capture data physical eth-wan", "    snmp auth-key ***", "    debug capture data physical start"]);
    expect(lines[at + 5]).toMatch(/INFO  192\.0\.2\.10 task start-capture attempt 1 answer \(HTTP 200\):$/);
    expect(lines.slice(at + 6, at + 8)).toEqual(["    Debug capture physical is active", "    user password ***"]);
    // A download has no script: its one line only.
    expect(lines.filter((l) => l.includes("fetch-capture"))).toHaveLength(1);
    // The manifest's task has the output (redacted), devices_info.json follows the manifest.
    expect(rec.tasks[0]!.output).toBe("Debug capture physical is active\nuser password ***\n");
  });
});
