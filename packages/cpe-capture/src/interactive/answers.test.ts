import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { parseConfigText } from "../config/loader.js";
import {
  answersFile,
  checkAddress,
  defaultAnswers,
  loadAnswers,
  parseAgentList,
  parseInterfaceList,
  renderConfigFile,
  saveAnswers,
  toRawConfig,
  type Answers,
  type DeviceAnswer,
} from "./answers.js";
import { saveConfigFile } from "./save.js";

const dir = mkdtempSync(join(tmpdir(), "capsync-answers-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MSBR: DeviceAnswer = {
  address: "192.0.2.10",
  type: "msbr",
  interfaces: ["eth-wan", "cellular-wan"],
  username: "Admin",
  tls: "insecure",
  restPort: 443,
  sshPort: 22,
  agents: ["198.51.100.5:20001", "[2001:db8::5]:20002"],
};
const SBC: DeviceAnswer = { ...MSBR, address: "sbc.example.net", type: "gwsbc", interfaces: ["eth-lan"], tls: { ca: "/etc/ca.pem" }, agents: [] };

function answers(over: Partial<Answers> = {}): Answers {
  return { ...defaultAnswers("/srv/capsync"), keyFile: "/etc/capsync/agent.key", devices: [MSBR, SBC], ...over };
}

describe("answersFile", () => {
  test.each([
    [{ XDG_CONFIG_HOME: "/x/cfg", HOME: "/home/u" }, "/x/cfg/capsync/interactive.json"],
    [{ XDG_CONFIG_HOME: "relative/cfg", HOME: "/home/u" }, "/home/u/.config/capsync/interactive.json"],
    [{ XDG_CONFIG_HOME: "", HOME: "/home/u" }, "/home/u/.config/capsync/interactive.json"],
  ])("%j → %s", (env, expected) => {
    expect(answersFile(env)).toBe(expected);
  });
});

describe("field checks", () => {
  test.each([
    ["192.0.2.1", true],
    ["2001:db8::1", true],
    ["[2001:db8::1]", true],
    ["msbr-12.branch.example.net", true],
    ["Example.NET.", true],
    ["192.0.2.300", false],
    ["bad_host!", false],
    ["", false],
  ])("address %s valid: %s", (text, valid) => {
    expect(checkAddress(text, []) === true).toBe(valid);
  });

  test("an address already in the list is refused, in any spelling", () => {
    const v6 = { ...MSBR, address: "2001:db8::1" };
    expect(checkAddress("2001:DB8:0::1", [v6])).toBe("2001:db8::1 is already in the device list");
    expect(checkAddress("SBC.example.net", [SBC])).toBe("sbc.example.net is already in the device list");
  });

  test.each([
    ["", []],
    ["none", []],
    ["-", []],
    ["198.51.100.5", ["198.51.100.5:20001"]],
    ["198.51.100.5:20009,  [2001:DB8::5]:20002", ["198.51.100.5:20009", "[2001:db8::5]:20002"]],
    ["198.51.100.5 198.51.100.6", ["198.51.100.5:20001", "198.51.100.6:20001"]],
  ])("agents %j → %j", (text, agents) => {
    expect(parseAgentList(text)).toEqual({ ok: true, agents });
  });

  test.each([
    ["2001:db8::5", /write IPv6 endpoints as \[addr\]:port/],
    ["198.51.100.5:0", /port must be 1..65535/],
    ["agent.example.net", /expected IP:port/],
    ["198.51.100.5, 198.51.100.5:20001", /198.51.100.5:20001 is listed twice/],
  ])("agents %j refused", (text, message) => {
    const r = parseAgentList(text);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.message).toMatch(message);
  });

  test("IOS-XE interface lists", () => {
    expect(parseInterfaceList("GigabitEthernet1, Gi0/0/1")).toEqual({ ok: true, interfaces: ["GigabitEthernet1", "Gi0/0/1"] });
    expect(parseInterfaceList(" ")).toMatchObject({ ok: false });
    expect(parseInterfaceList("Gi1 Gi1")).toMatchObject({ ok: false, message: "Gi1 is listed twice" });
    expect(parseInterfaceList("eth0;rm")).toMatchObject({ ok: false });
  });
});

describe("config file", () => {
  test("YAML: what `run --config` loads, passwords by reference only", () => {
    const a = answers();
    const text = renderConfigFile(toRawConfig(a, (i) => ({ env: `CAPSYNC_PW_${i + 1}` })), "/srv/capsync/run.yaml", ["header line"]);
    expect(text.startsWith("# header line\n")).toBe(true);
    expect(text).toContain("interfaces: [eth-wan, cellular-wan]");
    expect(text).toContain("password: {env: CAPSYNC_PW_1}");
    const { config, warnings } = parseConfigText(text, { file: "/srv/capsync/run.yaml", baseDir: "/srv/capsync" });
    expect(warnings).toEqual([]);
    expect(config.output).toBe("/srv/capsync/runs");
    expect(config.agents.keyFile).toBe("/etc/capsync/agent.key");
    expect(config.syslog.listen).toEqual({ host: "0.0.0.0", port: 20514 });
    expect(config.devices.map((d) => [d.address, d.type, d.interfaces, d.password, d.tls, d.agents.length])).toEqual([
      ["192.0.2.10", "msbr", ["eth-wan", "cellular-wan"], { kind: "env", env: "CAPSYNC_PW_1" }, { mode: "insecure" }, 2],
      ["sbc.example.net", "gwsbc", ["eth-lan"], { kind: "env", env: "CAPSYNC_PW_2" }, { mode: "ca", ca: "/etc/ca.pem" }, 0],
    ]);
  });

  test("JSON for a .json name; no agents section when no device lists agents", () => {
    const a = answers({ devices: [{ ...MSBR, agents: [] }] });
    const text = renderConfigFile(toRawConfig(a, () => ({ file: "/s/pw" })), "/srv/run.json", ["ignored"]);
    expect(JSON.parse(text)).not.toHaveProperty("agents");
    const { config } = parseConfigText(text, { file: "/srv/run.json", baseDir: "/srv" });
    expect(config.devices[0]!.password).toEqual({ kind: "file", file: "/s/pw" });
  });
});

describe("remembered answers", () => {
  test("missing file: defaults, silently", () => {
    expect(loadAnswers(join(dir, "none.json"), "/w")).toEqual({ answers: defaultAnswers("/w"), notes: [] });
  });

  test("round trip, mode 0600, folders created", () => {
    const file = join(dir, "a", "b", "interactive.json");
    const a = answers({ configPath: "/srv/capsync/run.yaml", passwordStorage: "file", syslogPort: 20600, retries: 0, maxEventsPerDevice: 3 });
    saveAnswers(file, a);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadAnswers(file, "/other")).toEqual({ answers: a, notes: [] });
  });

  test("unusable files and values fall back to defaults with a note", () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, "{not json");
    expect(loadAnswers(bad, "/w").notes).toEqual([`${bad} is not valid JSON; starting without saved answers`]);
    writeFileSync(bad, JSON.stringify({ devices: [] }));
    expect(loadAnswers(bad, "/w").notes[0]).toMatch(/not a capsync answers file/);

    writeFileSync(
      bad,
      JSON.stringify({
        format: "capsync-interactive-answers",
        answers: {
          devices: [MSBR, { ...MSBR, address: "192.0.2.11", type: "msb" }, { ...SBC, address: "192.0.2.10" }, { ...SBC, password: "leaked?" }],
          syslogPort: 70000,
          retries: "3",
          output: "relative/runs",
          keyFile: 42,
        },
      }),
    );
    const { answers: a, notes } = loadAnswers(bad, "/w");
    // The bad type and the duplicate address are dropped; a stray password key is never picked up.
    expect(a.devices).toEqual([MSBR, SBC]);
    expect(JSON.stringify(a)).not.toContain("leaked?");
    expect(notes).toEqual([`ignored 2 saved device(s) in ${bad} that are no longer valid`]);
    expect(a).toMatchObject({ syslogPort: 20514, retries: 3, output: "/w/runs", keyFile: undefined });
  });
});

describe("saveConfigFile", () => {
  const PWS = ["pw-One-1!", "pw-Two-2?"];

  test("environment references: the config names the variables, never the values", () => {
    const path = join(dir, "env", "run.yaml");
    const { text, notes } = saveConfigFile(answers(), PWS, { path, storage: "env" });
    expect(readFileSync(path, "utf8")).toBe(text);
    for (const pw of PWS) expect(text).not.toContain(pw);
    expect(text).toContain("#   read -rs CAPSYNC_PW_2 && export CAPSYNC_PW_2    # Admin@sbc.example.net");
    expect(notes).toEqual([`Saved ${path}.`, `Before \`cpe-capture run --config ${path}\`, set CAPSYNC_PW_1, CAPSYNC_PW_2 (see the comment at the top of the file).`]);
  });

  test("password files: written with mode 0600 only when asked", () => {
    const files = [join(dir, "f", "secrets", "one"), join(dir, "f", "secrets", "two")];
    const path = join(dir, "f", "run.yaml");
    saveConfigFile(answers(), PWS, { path, storage: "file", files, writeFiles: false });
    expect(files.some((f) => existsSync(f))).toBe(false);

    const { text } = saveConfigFile(answers(), PWS, { path, storage: "file", files, writeFiles: true });
    for (const pw of PWS) expect(text).not.toContain(pw);
    files.forEach((f, i) => {
      expect(readFileSync(f, "utf8")).toBe(`${PWS[i]}\n`);
      expect(statSync(f).mode & 0o777).toBe(0o600);
    });
    const { config } = parseConfigText(text, { file: path, baseDir: dirname(path) });
    expect(config.devices.map((d) => d.password)).toEqual(files.map((file) => ({ kind: "file", file })));
  });
});

