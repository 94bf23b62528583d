// The OVOC registrar against the OVOC REST emulator (a test-only use of @capsync/emulators).
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startOvocEmulator, type OvocEmulator } from "@capsync/emulators/ovoc";
import { OvocRegistrar, loadOvocCredentials, ovocCredentialsFromEnv, parseOvocUrl, ruleName, type OvocRegistrarOptions } from "./ovoc-registrar.js";

const USER = "capsync-api";
const PASSWORD = "Ovoc:S3cret-pw!";
const DEV = "192.0.2.10";
const ORCH = { address: "127.0.0.1", port: 20514 };

const emulators: OvocEmulator[] = [];
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.close()));
});

async function emulator(): Promise<OvocEmulator> {
  const e = await startOvocEmulator({
    username: USER,
    password: PASSWORD,
    devices: [{ ipAddress: DEV, name: "msbr-10" }, { ipAddress: "192.0.2.11" }, { ipAddress: "2001:db8::12" }],
    // Rules an operator made by hand (one the original tool would have made): never read back, changed or deleted.
    rules: [
      { name: "NOC syslog", destSyslog: { syslogServerIP: "198.51.100.1", syslogServerPort: 514 }, alarmNamesFilter: null, alarmDevicesFilter: null },
      { name: `Forward Connection Lost from ${DEV}`, destSyslog: { syslogServerIP: "198.51.100.2", syslogServerPort: 20001 }, alarmNamesFilter: ["acEMSNodeConnectionLostAlarm"], alarmDevicesFilter: [1] },
    ],
  });
  emulators.push(e);
  return e;
}

function registrar(e: OvocEmulator, o: Partial<OvocRegistrarOptions> = {}): OvocRegistrar {
  return new OvocRegistrar({ url: e.baseUrl, credentials: { username: USER, password: PASSWORD }, tls: { mode: "ca", ca: e.certificate }, timeoutMs: 2000, ...o });
}

const ours = (e: OvocEmulator) => e.rules().filter((r) => r.name.startsWith("capsync-"));
const writes = (e: OvocEmulator) => e.requests.filter((r) => r.method !== "GET").map((r) => `${r.method} ${r.url} ${r.status}`);
const b64 = Buffer.from(`${USER}:${PASSWORD}`).toString("base64");

describe("OvocRegistrar", () => {
  it("finds the device, creates capsync-<device> for the Connection Lost alarm to the orchestrator, and reads it back", async () => {
    const e = await emulator();
    const r = registrar(e);
    expect(await r.register(DEV, ORCH)).toEqual({ ok: true });
    expect(e.requests.map((q) => `${q.method} ${q.url} ${q.status}`)).toEqual([
      `GET /ovoc/v1/topology/devices?detail=1&filter=(ipAddress=%27${DEV}%27) 200`,
      `GET /ovoc/v1/alarms/fwdRules?detail=1&filter=(name=%27capsync-${DEV}%27) 404`,
      "POST /ovoc/v1/alarms/fwdRules 201",
      "GET /ovoc/v1/alarms/fwdRules/3 200",
    ]);
    expect(ours(e)).toEqual([
      {
        id: 3,
        name: `capsync-${DEV}`,
        ruleDestType: "SYSLOG",
        forwardType: "ALLOW",
        tenantId: -1,
        destSyslog: { syslogServerIP: "127.0.0.1", syslogServerPort: 20514 },
        alarmNamesFilter: ["acEMSNodeConnectionLostAlarm"],
        alarmDevicesFilter: [1],
        alarmTenantsFilter: [],
        alarmRegionsFilter: [],
        alarmEndpointsFilter: [],
        alarmSitesFilter: [],
      },
    ]);
    expect(e.requests.every((q) => q.user === USER)).toBe(true);
  });

  it("leaves a rule that is already right alone, updates one with another destination (PUT), never makes a second", async () => {
    const e = await emulator();
    const r = registrar(e);
    await r.register(DEV, ORCH);
    await r.register(DEV, ORCH);
    expect(writes(e)).toEqual(["POST /ovoc/v1/alarms/fwdRules 201"]);
    expect(await r.register(DEV, { address: "127.0.0.1", port: 40000 })).toEqual({ ok: true });
    expect(writes(e)).toEqual(["POST /ovoc/v1/alarms/fwdRules 201", "PUT /ovoc/v1/alarms/fwdRules/3 200"]);
    expect(ours(e).map((x) => x.destSyslog.syslogServerPort)).toEqual([40000]);
    // IPv6 devices and orchestrators work the same.
    expect(await r.register("2001:db8::12", { address: "::1", port: 20514 })).toEqual({ ok: true });
    expect(ours(e).find((x) => x.name === "capsync-2001:db8::12")).toMatchObject({ alarmDevicesFilter: [3], destSyslog: { syslogServerIP: "::1" } });
  });

  it("joins concurrent REGISTERs of one device (legacy resends) into one registration", async () => {
    const e = await emulator();
    const r = registrar(e);
    const all = await Promise.all([r.register(DEV, ORCH), r.register(DEV, ORCH), r.register(DEV, ORCH)]);
    expect(all).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(writes(e)).toEqual(["POST /ovoc/v1/alarms/fwdRules 201"]);
  });

  it("unregister deletes only its own rule, is quiet when there is none, and finds the rule by name after a restart", async () => {
    const e = await emulator();
    const before = e.rules().map((x) => x.id);
    const r = registrar(e);
    await r.register(DEV, ORCH);
    await r.unregister(DEV);
    expect(ours(e)).toEqual([]);
    await r.unregister(DEV);
    await r.unregister("192.0.2.11");
    expect(writes(e)).toEqual(["POST /ovoc/v1/alarms/fwdRules 201", "DELETE /ovoc/v1/alarms/fwdRules/3 200"]);

    await r.register(DEV, ORCH);
    const restarted = registrar(e); // knows no rule ids
    await restarted.unregister(DEV);
    expect(ours(e)).toEqual([]);
    expect(e.rules().map((x) => x.id)).toEqual(before);
    // Other rules were never touched, only listed by our own name.
    expect(e.requests.filter((q) => /fwdRules\/[12]\b/.test(q.url) || (q.url.includes("name=") && !q.url.includes("capsync-")))).toEqual([]);
  });

  it("register after unregister of the same device runs in order", async () => {
    const e = await emulator();
    const r = registrar(e);
    await r.register(DEV, ORCH);
    const [, again] = await Promise.all([r.unregister(DEV), r.register(DEV, ORCH)]);
    expect(again).toEqual({ ok: true });
    expect(ours(e)).toHaveLength(1);
  });

  it.each([
    ["wrong password", (e: OvocEmulator) => registrar(e, { credentials: { username: USER, password: "wrong-password" } }), undefined, "ovoc-auth", /refused the credentials \(HTTP 401\).*Authentication failed/],
    ["unknown device", (e: OvocEmulator) => registrar(e), "192.0.2.99", "ovoc-device-unknown", /does not manage a device with IP address 192\.0\.2\.99/],
    ["an account below Operator", (e: OvocEmulator) => (e.setFault({ kind: "forbidden", on: "fwdRules" }), registrar(e)), undefined, "ovoc-forbidden", /HTTP 403; it needs the Operator security level/],
    ["a server in trouble", (e: OvocEmulator) => (e.setFault({ kind: "unavailable" }), registrar(e)), undefined, "ovoc-unavailable", /failed with HTTP 503/],
    ["a server that never answers", (e: OvocEmulator) => (e.setFault({ kind: "timeout" }), registrar(e, { timeoutMs: 300 })), undefined, "ovoc-timeout", /no answer within 300 ms/],
    ["an untrusted certificate (verify by default)", (e: OvocEmulator) => registrar(e, { tls: { mode: "verify" } }), undefined, "ovoc-tls", /TLS certificate not trusted \(\w+\); give the server's CA with --ovoc-ca/],
  ])("answers 503 with a reason for %s, never with the password", async (_n, make, device, reason, message) => {
    const e = await emulator();
    const res = await make(e).register(device ?? DEV, ORCH);
    expect(res).toMatchObject({ ok: false, reason, message: expect.stringMatching(message) });
    expect(JSON.stringify(res)).not.toContain(PASSWORD);
    expect(JSON.stringify(res)).not.toContain(b64);
    expect(ours(e)).toEqual([]);
  });

  it("reports an unreachable server, and trusts any certificate only with tls insecure", async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const dead = new OvocRegistrar({ url: `https://127.0.0.1:${port}`, credentials: { username: USER, password: PASSWORD }, tls: { mode: "verify" } });
    expect(await dead.register(DEV, ORCH)).toMatchObject({ ok: false, reason: "ovoc-unreachable", message: expect.stringContaining("ECONNREFUSED") });
    await expect(dead.unregister(DEV)).rejects.toMatchObject({ code: "ovoc-unreachable", message: expect.stringContaining(`could not delete OVOC rule ${ruleName(DEV)}`) });

    const e = await emulator();
    expect(await registrar(e, { tls: { mode: "insecure" } }).register(DEV, ORCH)).toEqual({ ok: true });
  });
});

describe("OVOC credentials and URL", () => {
  const dir = mkdtempSync(join(tmpdir(), "capsync-ovoc-cred-"));
  const file = (name: string, text: string, mode = 0o600) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    chmodSync(p, mode);
    return p;
  };

  it("reads one line user:password (colons allowed in the password) from a 0600 file", () => {
    expect(loadOvocCredentials(file("ok", `${USER}:${PASSWORD}\n`))).toEqual({ username: USER, password: PASSWORD });
  });

  it.each([
    ["group/others can read it", `${USER}:${PASSWORD}\n`, 0o640, /mode 0640 lets group\/others read it; run: chmod 600/],
    ["two lines", `${USER}:${PASSWORD}\nx:y\n`, 0o600, /exactly one line/],
    ["no password", `${USER}:\n`, 0o600, /expected 'user:password'/],
    ["no colon", "just-a-password\n", 0o600, /expected 'user:password'/],
  ])("refuses a file where %s, without echoing it", (name, text, mode, message) => {
    const p = file(name.replace(/\W/g, "-"), text, mode);
    let err: Error | undefined;
    try {
      loadOvocCredentials(p);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(message);
    expect(err?.message).not.toContain(PASSWORD.slice(5));
  });

  it("takes CAPSYNC_OVOC_USER / CAPSYNC_OVOC_PASSWORD, both or neither", () => {
    expect(ovocCredentialsFromEnv({})).toBeUndefined();
    expect(ovocCredentialsFromEnv({ CAPSYNC_OVOC_USER: USER, CAPSYNC_OVOC_PASSWORD: PASSWORD })).toEqual({ username: USER, password: PASSWORD });
    expect(() => ovocCredentialsFromEnv({ CAPSYNC_OVOC_USER: USER })).toThrow(/set both/);
  });

  it("accepts https://host[:port] only", () => {
    expect(parseOvocUrl("https://ovoc.example:8443")).toEqual({ ok: true, url: "https://ovoc.example:8443" });
    expect(parseOvocUrl("https://[2001:db8::1]/")).toEqual({ ok: true, url: "https://[2001:db8::1]" });
    expect(parseOvocUrl("http://ovoc.example")).toMatchObject({ ok: false, message: expect.stringContaining("must be https://") });
    expect(parseOvocUrl(`https://${USER}:${PASSWORD.replace(":", "")}@ovoc.example`)).toMatchObject({ ok: false, message: expect.stringContaining("must not contain credentials") });
    expect(parseOvocUrl("https://ovoc.example/ovoc/v1")).toMatchObject({ ok: false });
    expect(parseOvocUrl("ovoc.example")).toMatchObject({ ok: false });
  });
});
