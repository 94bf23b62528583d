import { afterAll, describe, expect, it } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256File } from "./file-hash.js";

const dir = mkdtempSync(join(tmpdir(), "capsync-hash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("sha256File", () => {
  it("hashes files around the 64 KiB read size exactly", async () => {
    for (const size of [0, 1, 65535, 65536, 65537, 3 * 65536 + 17]) {
      const bytes = randomBytes(size);
      const p = join(dir, `f${size}`);
      writeFileSync(p, bytes);
      expect(await sha256File(p), `size ${size}`).toBe(sha(bytes));
    }
    expect(await sha256File(join(dir, "f0"))).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });

  it("keeps concurrent hashes apart while they share reused buffers", async () => {
    // More files than buffers kept between hashes, each with distinct bytes across several reads.
    const files = Array.from({ length: 48 }, (_, i) => {
      const bytes = randomBytes(70_000 + i * 1_000);
      const p = join(dir, `c${i}`);
      writeFileSync(p, bytes);
      return { p, want: sha(bytes) };
    });
    for (let round = 0; round < 2; round++) {
      const got = await Promise.all(files.map((f) => sha256File(f.p)));
      expect(got).toEqual(files.map((f) => f.want));
    }
  });

  it("throws the fs error of a missing file", async () => {
    await expect(sha256File(join(dir, "missing"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
