// `cpe-capture interactive` driven through a real pseudo-terminal (tmux): two devices with a
// mistyped password confirmation, a saved config checked byte for byte against what `run` loads,
// the remembered answers offered again and edited, a real run against an emulated MSBR and a real
// server-capture agent stopped with Ctrl-C,
// Ctrl-C at a question, and the refusal without a terminal.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { startAudioCodesDevice, type AudioCodesDevice } from "@capsync/emulators";
import { parseConfigText } from "../../packages/cpe-capture/src/config/loader.js";
import { ROOT, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { freeUdpPort } from "../helpers/cli-proc.js";

const CLI = join(ROOT, "packages/cpe-capture/dist/index.js");
const PW1 = "Msbr-Pw-4711!x";
const PW2 = "Sbc-Pw-0815?y";
const WRONG = "Typo-Pw-999";
const MSBR = "127.0.0.2";

/** One tmux server of our own (-L), so nothing touches the user's sessions. */
class Terminal {
  private readonly socket = `capsync-it-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private started = false;

  start(cwd: string, env: Record<string, string>, args: string[]): void {
    const cmd = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(" ");
    const envArgs = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    // The shell line keeps the pane open after the CLI exits and shows its exit code.
    this.tmux("-u", "new-session", "-d", "-s", "t", "-x", "200", "-y", "50", "-c", cwd, ...envArgs, `${cmd}; echo "__EXIT=$?"; sleep 600`);
    this.started = true;
  }

  /** Everything shown so far, scrollback included, wrapped lines joined. */
  screen(): string {
    return this.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t");
  }

  keys(...keys: string[]): void {
    this.tmux("send-keys", "-t", "t", ...keys);
  }

  type(text: string): void {
    this.tmux("send-keys", "-t", "t", "-l", text);
  }

  async waitFor(what: RegExp | string | ((screen: string) => boolean), timeoutMs = 10_000): Promise<string> {
    const test = typeof what === "function" ? what : (s: string) => (typeof what === "string" ? s.includes(what) : what.test(s));
    const until = Date.now() + timeoutMs;
    for (;;) {
      const s = this.screen();
      if (test(s)) return s;
      if (Date.now() > until) throw new Error(`timed out waiting for ${String(what)}; screen:\n${s.split("\n").filter((l) => l.trim()).slice(-40).join("\n")}`);
      await sleep(40);
    }
  }

  /** Wait until the question `message` is the one being asked (answered ones show ✔, not ?). */
  async prompt(message: string): Promise<void> {
    await this.waitFor((s) => s.split("\n").some((l) => l.startsWith(`? ${message}`)));
  }

  /** In a select or checkbox: move the cursor (❯) to the line containing `label`. */
  async cursorTo(label: string): Promise<void> {
    for (let i = 0; i < 12; i++) {
      const line = cursorLine(this.screen());
      if (line?.includes(label)) return;
      this.keys("Down");
      await this.waitFor((s) => cursorLine(s) !== line, 3_000);
    }
    throw new Error(`no choice ${label}; screen:\n${this.screen()}`);
  }

  async choose(message: string, label: string): Promise<void> {
    await this.prompt(message);
    await this.cursorTo(label);
    this.keys("Enter");
  }

  async answer(message: string, text: string): Promise<void> {
    await this.prompt(message);
    if (text !== "") this.type(text);
    this.keys("Enter");
  }

  async exitCode(timeoutMs = 15_000): Promise<number> {
    const s = await this.waitFor(/__EXIT=\d+/, timeoutMs);
    return Number(/__EXIT=(\d+)/.exec(s)![1]);
  }

  kill(): void {
    if (!this.started) return;
    this.started = false;
    try {
      const socketPath = this.tmux("display-message", "-p", "#{socket_path}").trim();
      this.tmux("kill-server");
      // tmux leaves its socket file behind.
      if (socketPath) rmSync(socketPath, { force: true });
    } catch {
      // The server is already gone.
    }
  }

  private tmux(...args: string[]): string {
    return execFileSync("tmux", ["-L", this.socket, ...args], { encoding: "utf8" });
  }
}

function cursorLine(screen: string): string | undefined {
  return screen.split("\n").filter((l) => l.startsWith("❯")).at(-1);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let work: string;
let env: Record<string, string>;
let msbr: AudioCodesDevice;
let agent: AgentProc;
let syslogPort: number;
const terms: Terminal[] = [];
function terminal(): Terminal {
  const t = new Terminal();
  terms.push(t);
  return t;
}

beforeAll(async () => {
  work = tempDir("capsync-interactive-");
  const key = writeKey(work);
  agent = await startAgent(["--key-file", key, "--interface", "lo"]);
  env = { HOME: join(work, "home"), XDG_CONFIG_HOME: join(work, "xdg") };
  syslogPort = await freeUdpPort();
  msbr = await startAudioCodesDevice({ type: "msbr", address: MSBR, username: "Admin", password: PW1, capture: { kind: "synthetic", packetsPerSecond: 200 } });
});
afterAll(async () => {
  for (const t of terms) t.kill();
  await msbr?.close();
  await agent?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("cpe-capture interactive on a terminal", () => {
  const configPath = () => join(work, "capsync-run.yaml");
  const answersPath = () => join(work, "xdg", "capsync", "interactive.json");

  it("asks for two devices, re-asks a mistyped password confirmation and saves a config without passwords", async () => {
    const t = terminal();
    t.start(work, env, ["interactive"]);

    await t.choose("Devices", "Add a device");
    await t.answer("Device address", "192.0.2.300");
    await t.waitFor("> Enter an IPv4 address, an IPv6 address or a host name");
    t.keys("C-u");
    t.type(MSBR);
    t.keys("Enter");
    await t.choose("Device type", "msbr");
    await t.prompt("MSBR interfaces");
    for (const i of ["cellular-wan", "eth-wan"]) {
      await t.cursorTo(i);
      t.keys("Space");
      await t.waitFor((s) => cursorLine(s)?.includes("◉") ?? false, 3_000);
    }
    t.keys("Enter");
    await t.answer("Username", ""); // default Admin
    await t.answer(`Password for Admin@${MSBR}`, PW1);
    await t.answer(`Confirm the password for Admin@${MSBR}`, WRONG);
    await t.waitFor("The two passwords differ; enter the password again.");
    await t.answer(`Password for Admin@${MSBR}`, PW1); // asked again
    await t.answer(`Confirm the password for Admin@${MSBR}`, PW1);
    await t.choose("The device's HTTPS certificate", "Don't verify");
    await t.answer("REST (HTTPS) port", String(msbr.restPort));
    await t.answer("SFTP (SSH) port", String(msbr.sshPort));
    await t.answer("Server-capture agent(s)", "");

    await t.choose("Devices", "Add a device");
    await t.answer("Device address", "SBC-1.Example.NET");
    await t.choose("Device type", "gwsbc");
    await t.answer("Username", "operator");
    await t.prompt("Password for operator@sbc-1.example.net");
    t.type(PW2);
    t.keys("C-t"); // inquirer's "toggle visibility" key must not reveal it
    await sleep(200);
    expect(t.screen()).not.toContain(PW2);
    t.keys("Enter");
    await t.answer("Confirm the password for operator@sbc-1.example.net", PW2);
    await t.choose("The device's HTTPS certificate", "Verify it against the system CAs");
    await t.answer("REST (HTTPS) port", "");
    await t.answer("SFTP (SSH) port", "");
    await t.answer("Server-capture agent(s)", "198.51.100.5, [2001:DB8::5]:20002");

    await t.choose("Devices", "Done with the devices");
    await t.answer("Agent key file", join(work, "agent.key"));
    await t.answer("SSH private key", "");
    await t.answer("UDP port to receive the syslog alarms on", String(syslogPort));
    await t.answer("Retries of device and agent requests", "1");
    await t.answer("Alarms per device before its capture is stopped", "2");
    await t.answer("Folder for the run folders", "");
    await t.choose("What now?", "Save a config file only");
    await t.answer("Config file to write", "");
    await t.choose("How should the config file refer to the passwords?", "Environment variables");
    expect(await t.exitCode()).toBe(0);

    const screen = t.screen();
    for (const pw of [PW1, PW2, WRONG]) expect(screen).not.toContain(pw);
    expect(screen).toContain(`Saved ${configPath()}.`);

    const text = readFileSync(configPath(), "utf8");
    for (const pw of [PW1, PW2, WRONG]) expect(text).not.toContain(pw);
    expect(text).toMatch(/^# capsync run config, written by `cpe-capture interactive`/);
    expect(text).toContain("read -rs CAPSYNC_PW_1 && export CAPSYNC_PW_1");
    expect(parse(text)).toEqual({
      output: join(work, "runs"),
      retries: 1,
      agents: { keyFile: join(work, "agent.key") },
      syslog: { listen: `0.0.0.0:${syslogPort}` },
      stop: { alarms: ["connection-lost"], maxEventsPerDevice: 2 },
      devices: [
        {
          address: MSBR,
          type: "msbr",
          interfaces: ["cellular-wan", "eth-wan"],
          username: "Admin",
          password: { env: "CAPSYNC_PW_1" },
          tls: "insecure",
          restPort: msbr.restPort,
          sshPort: msbr.sshPort,
          agents: [],
        },
        {
          address: "sbc-1.example.net",
          type: "gwsbc",
          interfaces: ["eth-lan"],
          username: "operator",
          password: { env: "CAPSYNC_PW_2" },
          tls: "verify",
          restPort: 443,
          sshPort: 22,
          agents: ["198.51.100.5:20001", "[2001:db8::5]:20002"],
        },
      ],
    });
    // Exactly what `cpe-capture run --config` loads.
    const { config } = parseConfigText(text, { file: configPath(), baseDir: work });
    expect(config.devices.map((d) => d.password)).toEqual([
      { kind: "env", env: "CAPSYNC_PW_1" },
      { kind: "env", env: "CAPSYNC_PW_2" },
    ]);

    const remembered = readFileSync(answersPath(), "utf8");
    for (const pw of [PW1, PW2, WRONG]) expect(remembered).not.toContain(pw);
    expect(statSync(answersPath()).mode & 0o777).toBe(0o600);
    expect(JSON.parse(remembered).answers.devices).toHaveLength(2);
  });

  it("offers the remembered devices, edits and deletes, runs with the status table and collects on Ctrl-C", async () => {
    const configBefore = readFileSync(configPath(), "utf8");
    const t = terminal();
    t.start(work, env, []); // no arguments on a terminal: the interactive mode
    await t.waitFor("2 device(s) from your last session");
    await t.waitFor(`1. ${MSBR}  msbr  cellular-wan, eth-wan  user Admin  agents: none  tls: not verified`);
    await t.choose("Devices", "Delete a device");
    await t.choose("Delete which device?", "sbc-1.example.net");
    await t.waitFor("Deleted sbc-1.example.net.");

    // Edit: every remembered value is the default, Enter keeps it; the password is asked again.
    await t.choose("Devices", "Edit a device");
    await t.choose("Edit which device?", MSBR);
    await t.answer("Device address", "");
    await t.choose("Device type", "msbr");
    await t.prompt("MSBR interfaces");
    await t.waitFor((s) => /◉ cellular-wan/.test(s) && /◉ eth-wan/.test(s));
    t.keys("Enter");
    await t.answer("Username", "");
    await t.answer(`Password for Admin@${MSBR}`, PW1);
    await t.answer(`Confirm the password for Admin@${MSBR}`, PW1);
    await t.choose("The device's HTTPS certificate", "Don't verify");
    await t.answer("REST (HTTPS) port", "");
    await t.answer("SFTP (SSH) port", "");
    await t.answer("Server-capture agent(s)", `127.0.0.1:${agent.port}`);
    await t.waitFor(`1. ${MSBR}  msbr  cellular-wan, eth-wan  user Admin  agents: 127.0.0.1:${agent.port}`);
    await t.choose("Devices", "Done with the devices");
    await t.answer("Agent key file", "");
    await t.answer("SSH private key", "");
    await t.waitFor(`(${syslogPort})`);
    await t.answer("UDP port to receive the syslog alarms on", "");
    await t.answer("Retries of device and agent requests", "");
    await t.answer("Alarms per device before its capture is stopped", "");
    await t.answer("Folder for the run folders", "");
    await t.choose("What now?", "Start the captures without saving");

    // Device side, then (after any other columns) the agent side.
    await t.waitFor(/127\.0\.0\.2\s+msbr\s+capturing\s.*\scapturing\s/, 20_000);
    t.keys("C-c");
    await t.waitFor("stopping every capture and collecting the files");
    expect(await t.exitCode(20_000)).toBe(0);

    const screen = t.screen();
    expect(screen).not.toContain(PW1);
    // The device capture collected, the agent's file left on the server (no SSH key was given).
    expect(screen).toMatch(/127\.0\.0\.2\s+msbr\s+done\s.*\sremote\s/);
    const runs = readdirSync(join(work, "runs"));
    expect(runs).toHaveLength(1);
    const folder = join(work, "runs", runs[0]!);
    const files = readdirSync(folder);
    expect(files.some((f) => f.startsWith(`CPE_device_${MSBR}_`) && f.endsWith(".pcap"))).toBe(true);
    for (const f of ["manifest.json", "capsync.log", "events.csv"]) {
      if (existsSync(join(folder, f))) expect(readFileSync(join(folder, f), "utf8")).not.toContain(PW1);
    }
    const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8")) as { devices: { stopReason?: string; status: string }[] };
    expect(manifest.devices[0]).toMatchObject({ stopReason: "signal", status: "collected" });
    // "Start without saving" left the saved config alone.
    expect(readFileSync(configPath(), "utf8")).toBe(configBefore);
    const remembered = JSON.parse(readFileSync(answersPath(), "utf8")) as { answers: { devices: unknown[] } };
    expect(remembered.answers.devices).toMatchObject([{ address: MSBR, agents: [`127.0.0.1:${agent.port}`] }]);
  });

  it("Ctrl-C at a question exits cleanly and writes nothing", async () => {
    const before = readFileSync(answersPath(), "utf8");
    const entries = readdirSync(work).sort();
    const t = terminal();
    t.start(work, env, ["interactive"]);
    await t.choose("Devices", "Add a device");
    await t.prompt("Device address");
    t.type("10.1.2.3");
    t.keys("C-c");
    expect(await t.exitCode()).toBe(130);
    const screen = t.screen();
    expect(screen).toContain("cancelled: nothing was saved or started");
    expect(screen).not.toMatch(/Error|at .*\.js:\d+/);
    expect(readFileSync(answersPath(), "utf8")).toBe(before);
    expect(readdirSync(work).sort()).toEqual(entries);
  });
});

describe("cpe-capture without a terminal", () => {
  const expected = "cpe-capture: stdin is not a terminal, so there is no one to ask; give a config file instead: cpe-capture run --config <file>\n";
  for (const args of [[], ["interactive"]]) {
    it(`${["cpe-capture", ...args].join(" ")} with stdin not a TTY exits 2 pointing to --config`, async () => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
      child.stdin.end();
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((r) => child.once("exit", r));
      expect(code).toBe(2);
      expect(err).toBe(expected);
      expect(out).toBe("");
    });
  }
});

describe("cpe-capture interactive: a flow along a path", () => {
  it("asks the 5-tuple field by field with validation, the hops in order among the devices and agents, and saves the flow", async () => {
    const dir = tempDir("capsync-interactive-flow-");
    const key = writeKey(dir);
    const fenv = { HOME: join(dir, "home"), XDG_CONFIG_HOME: join(dir, "xdg") };
    const retype = async (error: string, text: string) => {
      await t.waitFor(`> ${error}`);
      t.keys("C-u");
      t.type(text);
      t.keys("Enter");
    };
    const t = terminal();
    try {
      t.start(dir, fenv, ["interactive"]);
      await t.choose("Devices", "Add a device");
      await t.answer("Device address", "192.0.2.10");
      await t.choose("Device type", "msbr");
      await t.prompt("MSBR interfaces");
      await t.cursorTo("eth-wan");
      t.keys("Space");
      await t.waitFor((s) => cursorLine(s)?.includes("◉") ?? false, 3_000);
      t.keys("Enter");
      await t.answer("Username", "");
      await t.answer("Password for Admin@192.0.2.10", PW1);
      await t.answer("Confirm the password for Admin@192.0.2.10", PW1);
      await t.choose("The device's HTTPS certificate", "Don't verify");
      await t.answer("REST (HTTPS) port", "");
      await t.answer("SFTP (SSH) port", "");
      await t.answer("Server-capture agent(s)", "");
      await t.choose("Devices", "Add a device");
      await t.answer("Device address", "192.0.2.20");
      await t.choose("Device type", "iosxe");
      await t.answer("Interfaces to capture", "GigabitEthernet2");
      await t.answer("Username", "admin");
      await t.answer("Password for admin@192.0.2.20", PW2);
      await t.answer("Confirm the password for admin@192.0.2.20", PW2);
      await t.choose("The device's HTTPS certificate", "Don't verify");
      await t.answer("REST (HTTPS) port", "");
      await t.answer("SFTP (SSH) port", "");
      await t.answer("Server-capture agent(s)", "198.51.100.5");

      await t.choose("Devices", "Capture a flow along a path");
      await t.answer("Flow source", "10.1.0.300");
      await retype("Enter an IPv4/IPv6 address, a prefix like 10.1.0.0/16, or leave it empty for any", "10.1.0.10");
      await t.answer("Flow destination", "2001:db8::1");
      await retype("The source is IPv4: both ends must be IPv4 or both IPv6", "10.3.0.0/24");
      await t.choose("Flow protocol", "udp");
      await t.answer("Flow source port", "");
      await t.answer("Flow destination port", "70000");
      await retype("Enter a port 1..65535, or leave it empty for any", "5000");
      await t.answer("VRF of the flow", "CUST-A");
      // The MSBR is offered but cannot be chosen: its debug capture has no filter.
      await t.prompt("Hop 1");
      await t.waitFor(/device 192\.0\.2\.10 \(msbr\).*\(the AudioCodes debug capture has no filter\)/);
      await t.cursorTo("device 192.0.2.20");
      t.keys("Enter");
      await t.choose("Hop 2", "agent 198.51.100.5:20001");
      await t.choose("Hop 3", "Another server-capture agent");
      await t.answer("Agent IP[:port]", "198.51.100.5");
      await retype("That agent is already a hop", "198.51.100.7");
      await t.choose("Hop 4", "Done with the path");
      await t.waitFor("Flow: udp 10.1.0.10 → 10.3.0.0/24:5000 vrf CUST-A; path: 192.0.2.20 (iosxe) → agent 198.51.100.5:20001 → agent 198.51.100.7:20001");
      await t.choose("Devices", "Done with the devices");
      await t.answer("Agent key file", key);
      await t.answer("SSH private key", "");
      for (const q of ["UDP port to receive the syslog alarms on", "Retries of device and agent requests", "Alarms per device before its capture is stopped", "Folder for the run folders"]) await t.answer(q, "");
      await t.choose("What now?", "Save a config file only");
      await t.answer("Config file to write", "");
      await t.choose("How should the config file refer to the passwords?", "Environment variables");
      expect(await t.exitCode()).toBe(0);

      const file = join(dir, "capsync-run.yaml");
      const text = readFileSync(file, "utf8");
      const flow = { filter: { src: "10.1.0.10", dst: "10.3.0.0/24", protocol: "udp", dport: 5000 }, vrf: "CUST-A", path: ["192.0.2.20", "agent:198.51.100.5:20001", "agent:198.51.100.7:20001"] };
      expect(parse(text).flow).toEqual(flow);
      const { config } = parseConfigText(text, { file, baseDir: dir });
      expect(config.flow!.path.map((h) => `${h.hop} ${h.kind} ${h.name}`)).toEqual(["1 device 192.0.2.20", "2 server 198.51.100.5:20001", "3 server 198.51.100.7:20001"]);
      expect(config.devices[1]!.flowHop).toEqual({ hop: 1, spec: { interfaces: ["GigabitEthernet2"], filter: flow.filter, vrf: "CUST-A" } });
      const remembered = JSON.parse(readFileSync(join(dir, "xdg", "capsync", "interactive.json"), "utf8")) as { answers: { flow: unknown } };
      expect(remembered.answers.flow).toEqual(flow);
    } finally {
      t.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
