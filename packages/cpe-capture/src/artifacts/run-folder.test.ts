import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RunFolder } from "./run-folder.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const work = () => {
  const d = mkdtempSync(join(tmpdir(), "capsync-run-folder-"));
  dirs.push(d);
  return d;
};

describe("RunFolder.reserve", () => {
  it("hands out each name once: name, name_2, ... in a new folder", () => {
    const f = RunFolder.create(work());
    expect(f.reserve("CPE_device_a.pcap")).toBe("CPE_device_a.pcap");
    expect(f.reserve("CPE_device_a.pcap")).toBe("CPE_device_a_2.pcap");
    expect(f.reserve("CPE_device_a.pcap")).toBe("CPE_device_a_3.pcap");
    expect(f.reserve("notes")).toBe("notes");
    expect(f.reserve("notes")).toBe("notes_2");
  });

  it("an opened folder's files are never handed out again (resume)", () => {
    const f = RunFolder.create(work());
    writeFileSync(f.path("manifest.json"), "{}");
    writeFileSync(f.path("CPE_device_a.pcap"), "x");
    writeFileSync(f.path("CPE_device_a_2.pcap"), "x");
    const again = RunFolder.open(f.dir);
    expect(again.reserve("CPE_device_a.pcap")).toBe("CPE_device_a_3.pcap");
    expect(again.reserve("CPE_device_b.pcap")).toBe("CPE_device_b.pcap");
  });

  it("refuses an unsafe name with a run-folder error", () => {
    const f = RunFolder.create(work());
    expect(() => f.reserve("../escape.pcap")).toThrow(/unsafe file name '..\/escape.pcap'/);
  });
});
