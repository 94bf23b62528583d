import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Journal } from "./journal.js";

const work = mkdtempSync(join(tmpdir(), "capsync-journal-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const kinds = (path: string) => readFileSync(path, "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { kind: string }).kind);

describe("journal (group commit)", () => {
  it("has each line in the file when append() returns, syncs in groups, and closes", async () => {
    const path = join(work, "a.jsonl");
    const j = new Journal(path, { groupCommit: true });
    j.append("run-start", { devices: ["192.0.2.1"] });
    // No event-loop turn yet: the line is in the file already (a crash now would not lose it).
    expect(kinds(path)).toEqual(["run-start"]);
    for (let i = 0; i < 100; i++) j.append("device-state", { device: `192.0.2.${i}`, state: "starting" });
    expect(kinds(path)).toHaveLength(101);
    await j.synced();
    j.append("stop-requested", { device: "192.0.2.1", reason: "alarm" });
    const synced = j.synced();
    j.append("capture-name", { device: "192.0.2.1", captureName: "x.pcap" });
    await synced;
    j.close();
    await j.synced();
    // After close() an append opens the file for itself.
    j.append("run-end", { status: "done" });
    expect(kinds(path).slice(-3)).toEqual(["stop-requested", "capture-name", "run-end"]);
    expect(j.read()).toHaveLength(104);
  });

  it("reads every complete line and skips a torn last one", () => {
    const path = join(work, "b.jsonl");
    const j = new Journal(path, { groupCommit: true });
    j.append("run-start");
    j.close();
    appendFileSync(path, '{"t":"2026-12-06T00:00:00.000Z","kind":"device-st');
    expect(new Journal(path).read().map((e) => e.kind)).toEqual(["run-start"]);
  });
});
