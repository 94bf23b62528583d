import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { demoCommand, LAB_MISSING, type DemoLab } from "./demo.js";

function io() {
  const out = { stdout: "", stderr: "" };
  const stdout = new PassThrough().on("data", (d: Buffer) => (out.stdout += d.toString()));
  const stderr = new PassThrough().on("data", (d: Buffer) => (out.stderr += d.toString()));
  return { io: { stdout, stderr }, out };
}

const notFound = (message: string) => Object.assign(new Error(message), { code: "ERR_MODULE_NOT_FOUND" });

describe("cpe-capture demo loads @capsync/lab lazily", () => {
  it("hands the options and io to the lab and returns its exit code", async () => {
    const { io: x } = io();
    const seen: unknown[] = [];
    const lab: DemoLab = { demoCommand: async (o, given) => (seen.push(o, given), 1) };
    expect(await demoCommand({ devices: "3", loopback: true }, x, async () => lab)).toBe(1);
    expect(seen).toEqual([{ devices: "3", loopback: true }, x]);
  });

  it("without the lab package: exit 2 and says what to install", async () => {
    const { io: x, out } = io();
    const code = await demoCommand({}, x, async () => {
      throw notFound("Cannot find package '@capsync/lab' imported from /opt/capsync/packages/cpe-capture/dist/commands/demo.js");
    });
    expect(code).toBe(2);
    expect(out.stderr).toBe(`cpe-capture demo: ${LAB_MISSING}\n`);
    expect(out.stderr).toContain("@capsync/lab");
    expect(out.stdout).toBe("");
  });

  it("a lab that is there but cannot be loaded (not built): exit 2 with the loader's reason", async () => {
    const { io: x, out } = io();
    const code = await demoCommand({}, x, async () => {
      throw notFound("Cannot find module '/opt/capsync/packages/lab/dist/index.js' imported from /opt/capsync/packages/cpe-capture/dist/commands/demo.js");
    });
    expect(code).toBe(2);
    expect(out.stderr).toMatch(/^cpe-capture demo: cannot load @capsync\/lab: Cannot find module '.*\/lab\/dist\/index\.js'/);
  });
});
