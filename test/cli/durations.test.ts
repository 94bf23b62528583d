// Durations print as durations: server-capture --help shows every duration default as "7d"/"30s"
// (never milliseconds) beside the ring's defaults, and `cpe-capture validate` prints the run's
// durations canonically, `none` for no stop duration (the default: until the alarm). Both are
// the real binaries; outputs compared as golden text.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { AGENT_CLI, tempDir } from "../helpers/agent-proc.js";
import { CPE_CLI } from "../helpers/cli-proc.js";

const run = promisify(execFile);

async function exec(cli: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [cli, ...args], { env: { ...process.env, COLUMNS: "100" } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** Help text with the column wrapping undone: one space between words. */
const flat = (s: string) => s.replace(/\s+/g, " ");

describe("server-capture --help", () => {
  it("shows the duration defaults as durations and the ring's defaults", async () => {
    const r = await exec(AGENT_CLI, ["--help"]);
    expect(r.code).toBe(0);
    const help = flat(r.stdout);
    for (const line of [
      "--listen <addr:port> UDP address and port to listen on (default: 0.0.0.0:20001)",
      "--max-duration <duration> stop (and keep) a capture running longer than this: the bound on a capture whose orchestrator never sends STOP; 'none' = no limit (default: 7d)",
      "--ring-size <MB> rotate capture files at this many MB (tcpdump -C) (default: 100)",
      "--ring-files <n> keep the newest this many files per capture (tcpdump -W, 2..10): disk per capture <= size x files (default: 10)",
      "--no-ring one growing file per capture instead of the ring (bounded only by --min-free-disk and --max-duration)",
      "--window <duration> accepted clock difference for CSYNC/1 timestamps (default: 30s)",
      "--ovoc-timeout <duration> bound on each OVOC REST call (default: 5s)",
      "--register-idle <duration> delete a device's forwarding rule after this long without CAPTURE/STOP (and no capture running) (default: 1d)",
    ]) {
      expect(help).toContain(line);
    }
    expect(r.stdout).toContain(`Captures wait for their STOP however long the run lasts: each is a ring of --ring-files x
--ring-size (default 10 x 100 MB per device, the newest packets kept), so the disk stays bounded.
CSYNC/1 has no keep-alive, so a capture without a STOP for --max-duration (default 7d) is taken
for forgotten: stopped, files kept.
`);
    // No duration anywhere as a bare number of milliseconds.
    expect(help).not.toMatch(/\(default: \d{4,}\)/);
    expect(help).not.toMatch(/86400000|604800000|30000\b/);
  });

  it.each([
    [["--max-duration", "0"], "error: option '--max-duration <duration>' argument '0' is invalid. expected a duration like 90s, 15m, 24h, 7d or 'none', got '0'"],
    [["--window", "2x"], "error: option '--window <duration>' argument '2x' is invalid. expected a duration like 90s, 15m, 24h, got '2x'"],
    [["--ring-files", "1"], "error: option '--ring-files <n>' argument '1' is invalid. --ring-files must be an integer from 2 to 10, got '1'"],
    [["--ring-files", "11"], "error: option '--ring-files <n>' argument '11' is invalid. --ring-files must be an integer from 2 to 10, got '11'"],
  ])("%j is refused with exit 2: %s", async (args, message) => {
    const r = await exec(AGENT_CLI, args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(message);
  });
});

describe("cpe-capture validate", () => {
  const DEVICE = `  - address: 192.0.2.10
    type: gwsbc
    username: Admin
    password: { env: P }
`;

  it("no stop.duration: `duration: none` for the run and the device (until the alarm), timeouts as durations", async () => {
    const dir = tempDir("capsync-durations-");
    writeFileSync(join(dir, "run.yaml"), `devices:\n${DEVICE}`);
    const r = await exec(CPE_CLI, ["validate", "--config", join(dir, "run.yaml")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("timeouts:\n  rest: 10s\n  sftp: 1m\n  agent: 8s\n");
    expect(r.stdout).toContain("stop:\n  alarms:\n    - connection-lost\n  maxEventsPerDevice: 1\n  duration: none\n  deviceRetry: 30m\n");
    expect(r.stdout).toMatch(/\n {4}agents: \[\]\n {4}duration: none\n/);
    // What validate prints loads again to the same thing.
    writeFileSync(join(dir, "again.yaml"), r.stdout);
    const again = await exec(CPE_CLI, ["validate", "--config", join(dir, "again.yaml")]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(r.stdout);
  });

  it("given durations print canonically (36h → 1d12h, 5400 s → 1h30m), in YAML and --json", async () => {
    const dir = tempDir("capsync-durations-");
    writeFileSync(join(dir, "run.yaml"), `stop:\n  duration: 36h\n  deviceRetry: 600\ntimeouts: { rest: 1500ms }\ndevices:\n${DEVICE}    duration: 5400\n`);
    const r = await exec(CPE_CLI, ["validate", "--config", join(dir, "run.yaml")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("  rest: 1s500ms\n");
    expect(r.stdout).toContain("  duration: 1d12h\n  deviceRetry: 10m\n");
    expect(r.stdout).toMatch(/\n {4}duration: 1h30m\n/);
    const j = await exec(CPE_CLI, ["validate", "--json", "--config", join(dir, "run.yaml")]);
    const cfg = JSON.parse(j.stdout);
    expect(cfg.stop).toMatchObject({ duration: "1d12h", deviceRetry: "10m" });
    expect(cfg.devices[0].duration).toBe("1h30m");
    expect(cfg.timeouts).toEqual({ rest: "1s500ms", sftp: "1m", agent: "8s" });
  });

  it("`none` is accepted as written; anything else that is not a duration names the field", async () => {
    const dir = tempDir("capsync-durations-");
    writeFileSync(join(dir, "none.yaml"), `stop: { duration: none }\ndevices:\n${DEVICE}`);
    expect((await exec(CPE_CLI, ["validate", "--config", join(dir, "none.yaml")])).stdout).toContain("  duration: none\n");
    writeFileSync(join(dir, "bad.yaml"), `stop: { duration: forever }\ndevices:\n${DEVICE}`);
    const bad = await exec(CPE_CLI, ["validate", "--config", join(dir, "bad.yaml")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("bad.yaml:1 stop.duration: expected a duration like 90s, 15m, 24h, 1d or a number of seconds, got 'forever'");
  });
});
