import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ConfigFileError, configFromObject } from "./loader.js";
import { resolveDeviceSecrets, resolveSecret } from "./secrets.js";

const SECRET = "s3cr3t-Value!";
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "capsync-secrets-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function secretFile(name: string, content: string, mode = 0o600): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, content);
  await chmod(file, mode);
  return file;
}

async function failure(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ConfigFileError);
  const message = (e as Error).message;
  expect(message).not.toContain(SECRET);
  return message;
}

describe("resolveSecret", () => {
  const label = "devices[0].password";

  test("env", async () => {
    const env = { MSBR1_PASSWORD: SECRET, EMPTY: "" };
    expect(await resolveSecret({ kind: "env", env: "MSBR1_PASSWORD" }, label, { env })).toEqual({ value: SECRET, warnings: [] });
    expect(await failure(resolveSecret({ kind: "env", env: "NOPE" }, label, { env }))).toBe(
      "devices[0].password: environment variable NOPE is not set",
    );
    expect(await failure(resolveSecret({ kind: "env", env: "EMPTY" }, label, { env }))).toBe(
      "devices[0].password: environment variable EMPTY is empty",
    );
  });

  test("file: read trimmed; 0600 is quiet, anything looser warns", async () => {
    const tight = await secretFile("tight", `  ${SECRET}\n`);
    expect(await resolveSecret({ kind: "file", file: tight }, label)).toEqual({ value: SECRET, warnings: [] });
    const loose = await secretFile("loose", `${SECRET}\r\n`, 0o644);
    const r = await resolveSecret({ kind: "file", file: loose }, label);
    expect(r.value).toBe(SECRET);
    expect(r.warnings).toEqual([`devices[0].password: file ${loose} is accessible by group/others (mode 0644); chmod 600 it`]);
  });

  test("file problems", async () => {
    const missing = join(dir, "missing");
    expect(await failure(resolveSecret({ kind: "file", file: missing }, label))).toBe(`devices[0].password: file ${missing} does not exist`);
    const empty = await secretFile("empty", " \n\n");
    expect(await failure(resolveSecret({ kind: "file", file: empty }, label))).toBe(`devices[0].password: file ${empty} is empty`);
    const twoLines = await secretFile("two-lines", `${SECRET}\n${SECRET}\n`);
    expect(await failure(resolveSecret({ kind: "file", file: twoLines }, label))).toBe(
      `devices[0].password: file ${twoLines} has more than one line; it must hold only the password`,
    );
    const folder = join(dir, "folder");
    await mkdir(folder);
    expect(await failure(resolveSecret({ kind: "file", file: folder }, label))).toBe(`devices[0].password: ${folder} is not a regular file`);
    const big = await secretFile("big", "x".repeat(70_000));
    expect(await failure(resolveSecret({ kind: "file", file: big }, label))).toBe(
      `devices[0].password: file ${big} is too large for a password (70000 bytes)`,
    );
  });

  test("a FIFO is refused instead of blocking the run", async () => {
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    expect(await failure(resolveSecret({ kind: "file", file: fifo }, label))).toBe(`devices[0].password: ${fifo} is not a regular file`);
  });

  test("plain values pass through", async () => {
    expect(await resolveSecret({ kind: "plain", value: SECRET }, label)).toEqual({ value: SECRET, warnings: [] });
  });
});

describe("resolveDeviceSecrets", () => {
  const device = (address: string, password: unknown) => ({ address, type: "gwsbc", username: "Admin", password });

  test("resolves every device, relative files against the config folder", async () => {
    await secretFile("sbc", `${SECRET}-2\n`, 0o640);
    const { config } = configFromObject(
      { devices: [device("192.0.2.1", { env: "P1" }), device("192.0.2.2", { file: "sbc" }), device("192.0.2.3", { env: "P1" })] },
      { baseDir: dir },
    );
    const r = await resolveDeviceSecrets(config, { env: { P1: SECRET } });
    expect(r.passwords).toEqual([SECRET, `${SECRET}-2`, SECRET]);
    expect(r.secrets).toEqual([SECRET, `${SECRET}-2`]);
    expect(r.warnings).toEqual([`devices[1].password: file ${join(dir, "sbc")} is accessible by group/others (mode 0640); chmod 600 it`]);
  });

  test("reports every failure at once, never a value", async () => {
    const { config } = configFromObject(
      { devices: [device("192.0.2.1", { env: "MSBR1_PASSWORD" }), device("192.0.2.2", { env: "OK" }), device("192.0.2.3", { file: "nope" })] },
      { baseDir: dir },
    );
    const message = await failure(resolveDeviceSecrets(config, { env: { OK: SECRET } }));
    expect(message.split("\n")).toEqual([
      "devices[0].password: environment variable MSBR1_PASSWORD is not set",
      `devices[2].password: file ${join(dir, "nope")} does not exist`,
    ]);
  });
});
