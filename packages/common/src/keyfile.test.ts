import { afterAll, describe, expect, it } from "vitest";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadKeyFile } from "./keyfile.js";

const dir = mkdtempSync(join(tmpdir(), "capsync-key-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SECRET = "s3cr3t-key-material-0123456789abcdef";
function keyFile(name: string, content: string, mode: number): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  chmodSync(p, mode);
  return p;
}

describe("loadKeyFile", () => {
  it("loads a 0600 key, trimming the newline", () => {
    expect(loadKeyFile(keyFile("ok", `${SECRET}\n`, 0o600)).toString()).toBe(SECRET);
  });
  it("refuses a group/other-readable file with the chmod fix and without the key", () => {
    const p = keyFile("open", SECRET, 0o644);
    expect(() => loadKeyFile(p)).toThrow(`key file ${p}: mode 0644 lets group/others read it; run: chmod 600 ${p}`);
    try {
      loadKeyFile(p);
    } catch (e) {
      expect(String((e as Error).message)).not.toContain(SECRET);
      expect((e as { code: string }).code).toBe("key-file");
    }
  });
  it("refuses a short key", () => {
    const p = keyFile("short", "tooshort", 0o600);
    expect(() => loadKeyFile(p)).toThrow(`key file ${p}: key is 8 characters, at least 32 required`);
  });
  it("refuses a missing file", () => {
    expect(() => loadKeyFile(join(dir, "nope"))).toThrow(/cannot read \(ENOENT\)/);
  });
});
