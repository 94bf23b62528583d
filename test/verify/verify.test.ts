// VERIFY as the original sends it: ICMP echo (the real ping) and SNMPv3 authPriv GETs of
// sysDescr.0 beside TCP/443 and the SNMPv2c GET — against the emulated device's SNMP responder on
// loopback, a netns host the test creates, from the orchestrator and from a real server-capture
// agent, with the results in manifest.json and the keys in no log, manifest, state file or argv.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { verifyPath, type Snmpv3Credentials } from "@capsync/common";
import { startAudioCodesDevice, SyslogSender, ovocConnectionLostAlarm, type AudioCodesDevice } from "@capsync/emulators";
import { startSnmpAgent, type SnmpAgentHandle } from "@capsync/emulators/snmp";
import { configFromObject } from "../../packages/cpe-capture/src/config/loader.js";
import { formatForDisplay } from "../../packages/cpe-capture/src/config/display.js";
import { resolveVerifyProbes } from "../../packages/cpe-capture/src/config/verify-secrets.js";
import { agentVerifyOptions } from "../../packages/server-capture/src/verify-options.js";
import { AGENT_CLI, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { createTestHost, type TestHost } from "../helpers/netns.js";

const DEV = "127.0.15.2";
const AUTH = "Auth-Key-7f3a9c!";
const PRIV = "Priv-Key-51d0e2?";
const DEV_PW = "Dev-Pass-v1-4242";
const SYS_DESCR = "AudioCodes MSBR (capsync emulator)";
const CREDS: Snmpv3Credentials = { user: "CaptureScript", authProtocol: "sha", authKey: AUTH, privProtocol: "aes", privKey: PRIV };

let work: string;
let snmp: SnmpAgentHandle;

beforeAll(async () => {
  work = tempDir("capsync-verify-");
  // The device's SNMP port as VERIFY addresses it (161), v2c and v3 on one socket.
  snmp = await startSnmpAgent({ address: DEV, port: 161, uptimeMs: () => 987_650, sysDescr: SYS_DESCR, v3: { ...CREDS, privProtocol: "aes" } });
});
afterAll(async () => {
  await snmp?.close();
  rmSync(work, { recursive: true, force: true });
});

describe("verifyPath: ICMP + SNMPv3 beside TCP/443 and SNMPv2c", () => {
  it("success: 3 echoes answered, 3 authPriv GETs answered with sysDescr, TCP and v2c counted", async () => {
    const r = await verifyPath(DEV, { tries: 3, timeoutMs: 500, icmp: { count: 3 }, snmpv3: CREDS });
    expect(r).toEqual({
      ok: true,
      tcpTries: 3,
      tcpAnswered: 3,
      tcpTimeouts: 0,
      udpSent: 3,
      udpAnswers: 3,
      icmp: { sent: 3, received: 3, rttMs: { min: expect.any(Number), avg: expect.any(Number), max: expect.any(Number) } },
      snmpv3: { ok: true, sent: 3, answered: 3, sysDescr: SYS_DESCR, sysUpTime: expect.any(Number) },
    });
    expect(r.snmpv3!.sysUpTime).toBe(98_765);
  });

  it("a wrong auth key: snmpv3 failed with the agent's wrongDigests reason, one GET, no key in the result", async () => {
    const wrong = "Wrong-Key-000000";
    const r = await verifyPath(DEV, { tries: 3, timeoutMs: 500, icmp: false, snmpv3: { ...CREDS, authKey: wrong } });
    expect(r.icmp).toBeUndefined();
    expect(r.snmpv3).toEqual({ ok: false, sent: 1, answered: 0, error: "Wrong Digest (incorrect password, community or key)" });
    const text = JSON.stringify(r);
    for (const k of [wrong, AUTH, PRIV]) expect(text).not.toContain(k);
  });

  it("a device given by host name: ping gets the address it resolves to", async () => {
    const r = await verifyPath("localhost", { tries: 1, timeoutMs: 300, icmp: { count: 1 } });
    expect(r.icmp).toMatchObject({ sent: 1, received: 1 });
  });

  it("an unknown user: the unknownUserNames reason", async () => {
    const r = await verifyPath(DEV, { tries: 1, timeoutMs: 500, icmp: false, snmpv3: { ...CREDS, user: "nobody" } });
    expect(r.snmpv3).toEqual({ ok: false, sent: 1, answered: 0, error: "Unknown User Name" });
  });
});

describe("verifyPath towards a netns host", () => {
  let host: TestHost;
  beforeAll(() => {
    host = createTestHost("v1vfy", "203.0.113.41", "203.0.113.42");
  });
  afterAll(() => host?.remove());

  it("an address nobody has: ICMP 0 of 3 received, SNMPv3 timed out, TCP timed out", async () => {
    const r = await verifyPath("203.0.113.43", { tries: 1, timeoutMs: 300, icmp: { count: 3, timeoutMs: 500 }, snmpv3: CREDS });
    expect(r.icmp).toEqual({ sent: 3, received: 0 });
    expect(r.snmpv3).toEqual({ ok: false, sent: 1, answered: 0, error: "Request timed out" });
    expect(r.tcpTimeouts).toBe(1);
    expect(r.ok).toBe(false);
  });

  it("a host that ignores echo requests: ICMP 0 received while TCP/443 is answered (RST)", async () => {
    execFileSync("ip", ["netns", "exec", host.ns, "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1"]);
    const r = await verifyPath(host.nsAddr, { tries: 1, timeoutMs: 500, icmp: { count: 2, timeoutMs: 500 } });
    expect(r.icmp).toEqual({ sent: 2, received: 0 });
    expect(r.tcpAnswered).toBe(1);
    expect(r.ok).toBe(true);
  });
});

describe("config: verify: { icmp, snmpv3 }", () => {
  const base = { devices: [{ address: DEV, type: "msbr", interfaces: ["eth-wan"], username: "Admin", password: { env: "DEV_PW" } }] };
  const snmpv3 = { user: "CaptureScript", authProtocol: "sha", authKey: { env: "V1_AUTH" }, privProtocol: "aes", privKey: { file: "priv.key" } };

  it("parses, makes file references absolute, and validate shows references, never keys", () => {
    const c = configFromObject({ ...base, verify: { icmp: { count: 5, timeout: "2s", size: 100 }, snmpv3 } }, { baseDir: work }).config;
    expect(c.verify).toBe(true);
    expect(c.verifyProbes).toEqual({
      icmp: { count: 5, timeoutMs: 2000, size: 100 },
      snmpv3: { user: "CaptureScript", authProtocol: "sha", authKey: { kind: "env", env: "V1_AUTH" }, privProtocol: "aes", privKey: { kind: "file", file: join(work, "priv.key") }, port: 161 },
    });
    expect(JSON.parse(formatForDisplay(c, "json")).verify).toEqual({
      enabled: true,
      icmp: { count: 5, timeout: "2s", size: 100 },
      snmpv3: { user: "CaptureScript", authProtocol: "sha", authKey: { env: "V1_AUTH" }, privProtocol: "aes", privKey: { file: join(work, "priv.key") }, port: 161 },
    });
    // `verify: false` still works, and so does the old boolean display.
    const off = configFromObject({ ...base, verify: false }, { baseDir: work }).config;
    expect([off.verify, off.verifyProbes]).toEqual([false, undefined]);
    expect(JSON.parse(formatForDisplay(off, "json")).verify).toBe(false);
  });

  it("bad values: one clear message per field, the key never echoed", () => {
    let message = "";
    try {
      configFromObject({ ...base, verify: { icmp: { count: 0, timeout: "1ms" }, snmpv3: { ...snmpv3, authKey: AUTH, authProtocol: "sha3", privProtocol: "rc4", user: "" } } }, { baseDir: work }).config;
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain("verify.icmp.count: expected an integer 1..20, got 0");
    expect(message).toContain("verify.icmp.timeout: expected 100ms..10s, got 1ms");
    expect(message).toContain("verify.snmpv3.authKey: expected { env: NAME } or { file: PATH } (never the secret itself), got a string");
    expect(message).toContain("verify.snmpv3.authProtocol: expected md5|sha|sha224|sha256|sha384|sha512, got 'sha3'");
    expect(message).toContain("verify.snmpv3.privProtocol: expected des|aes|aes256b|aes256r, got 'rc4'");
    expect(message).toContain("verify.snmpv3.user: expected a user name of 1..32 characters, got ''");
    expect(message).not.toContain(AUTH);
  });

  it("keys resolved like passwords: a missing variable or a short key is named, its value never", async () => {
    const c = configFromObject({ ...base, verify: { snmpv3 } }, { baseDir: work }).config;
    await expect(resolveVerifyProbes(c.verifyProbes, { env: {} })).rejects.toThrow("verify.snmpv3.authKey: environment variable V1_AUTH is not set");
    writeFileSync(join(work, "priv.key"), "short\n");
    chmodSync(join(work, "priv.key"), 0o600);
    await expect(resolveVerifyProbes(c.verifyProbes, { env: { V1_AUTH: AUTH } })).rejects.toThrow("verify.snmpv3.privKey: must be at least 8 characters (RFC 3414)");
    writeFileSync(join(work, "priv.key"), `${PRIV}\n`);
    const r = await resolveVerifyProbes(c.verifyProbes, { env: { V1_AUTH: AUTH } });
    expect(r.options).toEqual({ icmp: { count: 3, timeoutMs: 1000, size: 56 }, snmpv3: CREDS, snmpv3Port: 161 });
    expect(r.secrets).toEqual([AUTH, PRIV]);
  });
});

describe("server-capture: --snmpv3-user with keys from the environment or a 0600 file", () => {
  const flags = { snmpv3User: "CaptureScript", snmpv3Auth: "SHA", snmpv3Priv: "AES", icmpCount: 3 };

  it("environment, file, and the errors that name the flag or variable", () => {
    expect(agentVerifyOptions(flags, { CAPSYNC_SNMPV3_AUTH_KEY: AUTH, CAPSYNC_SNMPV3_PRIV_KEY: PRIV })).toEqual({
      ok: true,
      options: { icmp: { count: 3 }, snmpv3: CREDS },
      secrets: [AUTH, PRIV],
      summary: "icmp 3 echo(es), snmpv3 user CaptureScript (sha/aes, authPriv)",
    });
    expect(agentVerifyOptions(flags, { CAPSYNC_SNMPV3_AUTH_KEY: AUTH })).toEqual({
      ok: false,
      message: "--snmpv3-user needs its keys: set CAPSYNC_SNMPV3_AUTH_KEY and CAPSYNC_SNMPV3_PRIV_KEY, or --snmpv3-credentials <file> (mode 0600)",
    });
    const file = join(work, "snmpv3.env");
    writeFileSync(file, `# VERIFY keys\nCAPSYNC_SNMPV3_AUTH_KEY=${AUTH}\nCAPSYNC_SNMPV3_PRIV_KEY="${PRIV}"\n`);
    chmodSync(file, 0o644);
    expect(agentVerifyOptions({ ...flags, snmpv3Credentials: file }, {})).toEqual({ ok: false, message: `--snmpv3-credentials SNMPv3 credentials file ${file}: mode 0644 lets group/others read it; run: chmod 600 ${file}` });
    chmodSync(file, 0o600);
    const r = agentVerifyOptions({ ...flags, snmpv3Credentials: file }, {});
    expect(r.ok && r.options.snmpv3).toEqual(CREDS);
    expect(agentVerifyOptions({ ...flags, snmpv3Auth: "sha3" }, {})).toEqual({ ok: false, message: "--snmpv3-auth must be one of md5|sha|sha224|sha256|sha384|sha512, got 'sha3'" });
    expect(agentVerifyOptions({ ...flags, snmpv3User: undefined, snmpv3Credentials: file }, {})).toEqual({ ok: false, message: "--snmpv3-credentials only applies with --snmpv3-user" });
  });

  it("the real CLI: --snmpv3-user without keys exits 2 with the message", () => {
    const env = { ...process.env };
    delete env.CAPSYNC_SNMPV3_AUTH_KEY;
    delete env.CAPSYNC_SNMPV3_PRIV_KEY;
    const key = writeKey(work);
    const r = spawnSync(process.execPath, [AGENT_CLI, "--listen", "127.0.0.1:0", "--dir", join(work, "cli-dir"), "--key-file", key, "--snmpv3-user", "CaptureScript"], { env, encoding: "utf8", timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("server-capture: --snmpv3-user needs its keys: set CAPSYNC_SNMPV3_AUTH_KEY and CAPSYNC_SNMPV3_PRIV_KEY, or --snmpv3-credentials <file> (mode 0600)\n");
  });
});

describe("cpe-capture run: VERIFY on the alarm from both sides, results in manifest.json", () => {
  let agent: AgentProc;
  let device: AudioCodesDevice;
  beforeAll(async () => {
    writeKey(work);
    process.env.CAPSYNC_SNMPV3_AUTH_KEY = AUTH;
    process.env.CAPSYNC_SNMPV3_PRIV_KEY = PRIV;
    try {
      agent = await startAgent(["--key-file", join(work, "agent.key"), "--interface", "lo", "--snmpv3-user", "CaptureScript", "--snmpv3-auth", "sha", "--snmpv3-priv", "aes"]);
    } finally {
      delete process.env.CAPSYNC_SNMPV3_AUTH_KEY;
      delete process.env.CAPSYNC_SNMPV3_PRIV_KEY;
    }
    device = await startAudioCodesDevice({ type: "msbr", address: DEV, username: "Admin", password: DEV_PW, capture: { kind: "synthetic", packetsPerSecond: 100 } });
  });
  afterAll(async () => {
    await device?.close();
    await agent?.stop();
    if (agent) rmSync(agent.dir, { recursive: true, force: true });
  });

  it("orchestrator and agent both send ICMP and SNMPv3; every result is recorded; no key anywhere", async () => {
    // The agent's keys are in its environment, never on its command line.
    const cmdline = readFileSync(`/proc/${agent.child.pid}/cmdline`, "utf8");
    expect(cmdline).toContain("--snmpv3-user");
    for (const k of [AUTH, PRIV]) expect(cmdline).not.toContain(k);

    writeFileSync(join(work, "priv.key"), `${PRIV}\n`);
    chmodSync(join(work, "priv.key"), 0o600);
    const port = await freeUdpPort();
    const cfg = join(work, "run.yaml");
    writeFileSync(
      cfg,
      `output: ./runs
timeouts: { rest: 3s, sftp: 10s, agent: 4s }
retries: 1
agents: { keyFile: ./agent.key }
syslog: { listen: 127.0.0.1:${port} }
stop: { alarms: [connection-lost], duration: 60s }
verify:
  icmp: { count: 2, timeout: 1s }
  snmpv3:
    user: CaptureScript
    authProtocol: sha
    authKey: { env: V1_AUTH }
    privProtocol: aes
    privKey: { file: ./priv.key }
devices:
  - address: ${DEV}
    type: msbr
    interfaces: [eth-wan]
    username: Admin
    password: { env: DEV_PW }
    tls: insecure
    restPort: ${device.restPort}
    sshPort: ${device.sshPort}
    agents: [127.0.0.1:${agent.port}]
`,
    );
    const run = runCli(["run", "--config", cfg, "--json"], { DEV_PW, V1_AUTH: AUTH });
    await run.waitFor((l) => l.device === DEV && l.event === "state" && l.status === "capturing");
    const udp = await SyslogSender.open({ host: "127.0.0.1", port });
    await udp.send(ovocConnectionLostAlarm({ deviceIp: DEV, format: "rfc3164" }));
    const verifyLine = await run.waitFor((l) => l.device === DEV && l.event === "verify");
    const end = await run.waitFor((l) => l.done === true);
    await udp.close();
    expect(await run.exited).toBe(0);
    expect(verifyLine.status).toBe("ok");
    expect(verifyLine.detail).toBe(`orchestrator icmp 2/2 snmpv3 3/3 tcp 3/3 snmp 3/3; 127.0.0.1:${agent.port} 200`);

    const folder = end.folder!;
    const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    const rec = manifest.devices.find((d: { device: string }) => d.device === DEV);
    const rtt = { min: expect.any(Number), avg: expect.any(Number), max: expect.any(Number) };
    expect(rec.verify.orchestrator).toEqual({
      ok: true,
      tcp: "3/3",
      snmp: "3/3",
      icmp: { sent: 2, received: 2, rttMs: rtt },
      snmpv3: { ok: true, sent: 3, answered: 3, sysDescr: SYS_DESCR, sysUpTime: expect.any(Number) },
    });
    expect(rec.verify.agents).toEqual([
      {
        agent: `127.0.0.1:${agent.port}`,
        code: 200,
        details: { tcp: "3/3", snmp: "3/3", icmp: "3/3", icmp_rtt_ms: expect.stringMatching(/^[\d.]+\/[\d.]+\/[\d.]+$/), snmpv3: "3/3", snmpv3_sysdescr: SYS_DESCR },
        icmp: { sent: 3, received: 3, rttMs: rtt },
        snmpv3: { ok: true, sent: 3, answered: 3, sysDescr: SYS_DESCR },
      },
    ]);
    // The agent logs its VERIFY line too.
    const agentLog = readFileSync(join(agent.dir, "server-capture.log"), "utf8");
    expect(agentLog).toMatch(new RegExp(`VERIFY ${DEV.replace(/\./g, "\\.")}: tcp=3/3 snmp=3/3 icmp=3/3 icmp_rtt_ms=\\S+ snmpv3=3/3 snmpv3_sysdescr=AudioCodes MSBR \\(capsync emulator\\)`));
    expect(agentLog).toContain("VERIFY sends icmp 3 echo(es), snmpv3 user CaptureScript (sha/aes, authPriv), TCP/443 and an SNMPv2c GET");

    // Never a key: the run folder (manifest, capsync.log, events, stored config), the agent's folder, the CLI's output.
    expect(grepTree(folder, [AUTH, PRIV])).toEqual([]);
    expect(grepTree(agent.dir, [AUTH, PRIV])).toEqual([]);
    for (const text of [run.stdout(), run.stderr(), agent.stdout(), agent.stderr()]) for (const k of [AUTH, PRIV]) expect(text).not.toContain(k);
  });

  it("a wrong auth key in the orchestrator's config: snmpv3 failed with the device's reason in the manifest; the run still collects", async () => {
    const wrong = "Wrong-Auth-9q8w7e";
    const port = await freeUdpPort();
    const cfg = join(work, "wrong.yaml");
    writeFileSync(cfg, readFileSync(join(work, "run.yaml"), "utf8").replace(/listen: 127\.0\.0\.1:\d+/, `listen: 127.0.0.1:${port}`));
    const run = runCli(["run", "--config", cfg, "--json"], { DEV_PW, V1_AUTH: wrong });
    await run.waitFor((l) => l.device === DEV && l.event === "state" && l.status === "capturing");
    const udp = await SyslogSender.open({ host: "127.0.0.1", port });
    await udp.send(ovocConnectionLostAlarm({ deviceIp: DEV, format: "rfc3164" }));
    const verifyLine = await run.waitFor((l) => l.device === DEV && l.event === "verify");
    const end = await run.waitFor((l) => l.done === true);
    await udp.close();
    expect(await run.exited).toBe(0);
    // ICMP, TCP and v2c answered, so the path is up (ok); SNMPv3 names the USM report.
    expect(verifyLine.detail).toBe(`orchestrator icmp 2/2 snmpv3 0/1 (Wrong Digest (incorrect password, community or key)) tcp 3/3 snmp 3/3; 127.0.0.1:${agent.port} 200`);
    const rec = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8")).devices[0];
    expect(rec.verify.orchestrator.snmpv3).toEqual({ ok: false, sent: 1, answered: 0, error: "Wrong Digest (incorrect password, community or key)" });
    expect(rec.verify.agents[0].snmpv3).toEqual({ ok: true, sent: 3, answered: 3, sysDescr: SYS_DESCR });
    expect(grepTree(end.folder!, [wrong, AUTH, PRIV])).toEqual([]);
  });
});

function grepTree(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    let text: string;
    try {
      text = readFileSync(join(dir, f)).toString("latin1");
    } catch {
      continue;
    }
    for (const n of needles) if (text.includes(n)) hits.push(`${f}: ${n}`);
  }
  return hits;
}
