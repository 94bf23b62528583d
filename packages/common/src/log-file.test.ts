import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, readdirSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, reopenLogFiles } from "./log.js";

const settle = () => new Promise((r) => setImmediate(r));

describe("the agent's log file (size-bounded, reopenable)", () => {
  it("rotates by size and keeps exactly maxFiles old files, the newest lines in the live file, none lost in between", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capsync-logfile-"));
    const file = join(dir, "agent.log");
    const log = createLogger({ file, fileMaxBytes: 4096, fileMaxFiles: 2, console: false });
    for (let i = 0; i < 400; i++) log.info(`line ${String(i).padStart(4, "0")} ${"x".repeat(40)}`);
    await settle();
    expect(readdirSync(dir).sort()).toEqual(["agent.log", "agent.log.1", "agent.log.2"]);
    for (const f of ["agent.log", "agent.log.1", "agent.log.2"]) expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(4096);
    const lines = ["agent.log.2", "agent.log.1", "agent.log"].flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n").filter(Boolean));
    const numbers = lines.map((l) => Number(/line (\d{4})/.exec(l)![1]));
    // Consecutive up to the last line written: rotation drops only the oldest whole files.
    expect(numbers.at(-1)).toBe(399);
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
    // The two rotated files are full (about 49 lines of 82 bytes in 4 KiB each).
    expect(numbers.length).toBeGreaterThan(2 * 45);
  });

  it("after a truncation (copytruncate) writes continue at offset 0; reopen follows a renamed file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capsync-logfile-"));
    const file = join(dir, "agent.log");
    const log = createLogger({ file, fileMaxBytes: 0, console: false });
    log.info("before");
    await settle();
    truncateSync(file, 0);
    log.info("after");
    await settle();
    const text = readFileSync(file);
    expect(text.includes(0)).toBe(false);
    expect(text.toString()).toMatch(/^\S+ INFO  after\n$/);
    expect(reopenLogFiles(log)).toEqual([file]);
  });
});
