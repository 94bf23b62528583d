import dgram from "node:dgram";
import { request } from "node:https";
import { afterEach, describe, expect, it } from "vitest";
import { OVOC_CONNECTION_ALARM, parseOvocFilter, startOvocEmulator, type OvocEmulator, type OvocEmulatorOptions } from "./ovoc.js";
import { ovocConnectionEstablished, ovocConnectionLostAlarm } from "./syslog-sender.js";

const USER = "capsync-api";
const PASSWORD = "Ovoc:Secret-4711";
const DEVICE = "192.0.2.10";
const TS = new Date("2026-11-23T10:00:00.000Z");

const open: OvocEmulator[] = [];
const sockets: dgram.Socket[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((e) => e.close()));
  for (const s of sockets.splice(0)) s.close();
});

async function start(o: Partial<OvocEmulatorOptions> = {}): Promise<OvocEmulator> {
  const e = await startOvocEmulator({ username: USER, password: PASSWORD, devices: [{ ipAddress: DEVICE, name: "MSBR-Lab-1" }, { ipAddress: "192.0.2.11" }], ...o });
  open.push(e);
  return e;
}

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: unknown;
}

/** One HTTPS request trusting the emulator's certificate; `body` is sent as given (a string) or as JSON. */
function call(e: OvocEmulator, method: string, path: string, body?: unknown, auth: string | null = `${USER}:${PASSWORD}`): Promise<Res> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body, null, 4);
    const req = request(
      {
        host: e.address,
        port: e.port,
        method,
        path,
        ca: e.certificate,
        headers: {
          ...(auth !== null ? { authorization: `Basic ${Buffer.from(auth).toString("base64")}` } : {}),
          ...(data !== undefined ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {}),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

/** A UDP socket standing in for a syslog receiver. */
async function receiver(): Promise<{ port: number; got: Buffer[] }> {
  const s = dgram.createSocket("udp4");
  sockets.push(s);
  const got: Buffer[] = [];
  s.on("message", (m) => got.push(m));
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  return { port: s.address().port, got };
}

// The body trafficCapture's create_fwd_rule POSTs (json.dumps(indent=4) of these keys, in this order).
const originalCreateBody = (name: string, deviceId: number, port: number) => ({
  ruleDestType: "SYSLOG",
  destSyslog: { syslogServerIP: "127.0.0.1", syslogServerPort: port },
  forwardType: "ALLOW",
  name,
  tenantId: -1,
  alarmTenantsFilter: [],
  alarmRegionsFilter: [],
  alarmEndpointsFilter: [],
  alarmSitesFilter: [],
  alarmDevicesFilter: [deviceId],
  alarmNamesFilter: [OVOC_CONNECTION_ALARM],
});

describe("OVOC REST emulator", () => {
  it("refuses requests without or with wrong Basic credentials (401 with a description)", async () => {
    const e = await start();
    for (const auth of [null, `${USER}:wrong`, `other:${PASSWORD}`]) {
      const r = await call(e, "GET", "/ovoc/v1/alarms/fwdRules", undefined, auth);
      expect(r.status).toBe(401);
      expect(r.headers["www-authenticate"]).toMatch(/^Basic /);
      expect(r.json).toMatchObject({ description: expect.stringContaining("Authentication failed") });
    }
    // A password holding ':' is split at the first colon only.
    expect((await call(e, "GET", "/ovoc/v1/topology/devices?detail=1")).status).toBe(200);
  });

  it("finds a device by the original's exact URL (quotes as %27) and answers 404 for an unknown one", async () => {
    const e = await start();
    const r = await call(e, "GET", `/ovoc/v1/topology/devices?detail=1&filter=(ipAddress=%27${DEVICE}%27)`);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ devices: [expect.objectContaining({ id: 1, name: "MSBR-Lab-1", ipAddress: DEVICE, deviceType: "MSBR" })] });
    expect((await call(e, "GET", "/ovoc/v1/topology/devices?detail=1&filter=(ipAddress='192.0.2.99')")).status).toBe(404);
    const bad = await call(e, "GET", "/ovoc/v1/topology/devices?filter=ipAddress=1");
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ description: expect.stringContaining("bad filter") });
    expect((await call(e, "GET", "/ovoc/v1/topology/devices?filter=(color='red')")).status).toBe(400);
    expect((await call(e, "POST", "/ovoc/v1/topology/devices", {})).status).toBe(405);
    expect((await call(e, "GET", "/ovoc/v1/nothing")).status).toBe(404);
  });

  it("creates (201 with id), lists, filters, reads, updates and deletes forwarding rules; 404 for unknown ids", async () => {
    const e = await start();
    expect((await call(e, "GET", "/ovoc/v1/alarms/fwdRules")).status).toBe(404);
    const created = await call(e, "POST", "/ovoc/v1/alarms/fwdRules", originalCreateBody("Forward Connection Lost from 192.0.2.10", 1, 20001));
    expect(created.status).toBe(201);
    const id = (created.json as { id: number }).id;
    expect(Number.isInteger(id)).toBe(true);
    expect(e.rules()).toEqual([expect.objectContaining({ id, name: "Forward Connection Lost from 192.0.2.10", alarmDevicesFilter: [1], alarmNamesFilter: [OVOC_CONNECTION_ALARM] })]);

    const byName = await call(e, "GET", `/ovoc/v1/alarms/fwdRules?detail=1&filter=(name=%27Forward%20Connection%20Lost%20from%20192.0.2.10%27)`);
    expect(byName.status).toBe(200);
    expect((byName.json as { fwdRules: { id: number }[] }).fwdRules.map((r) => r.id)).toEqual([id]);
    expect((await call(e, "GET", "/ovoc/v1/alarms/fwdRules?detail=1&filter=(name='none')")).status).toBe(404);

    // The original's update_fwd_rule body: destination and filters only.
    const put = await call(e, "PUT", `/ovoc/v1/alarms/fwdRules/${id}`, {
      destSyslog: { syslogServerIP: "127.0.0.2", syslogServerPort: 20002 },
      alarmTenantsFilter: [],
      alarmRegionsFilter: [],
      alarmEndpointsFilter: [],
      alarmSitesFilter: [],
      alarmDevicesFilter: [2],
      alarmNamesFilter: [OVOC_CONNECTION_ALARM],
    });
    expect(put.status).toBe(200);
    expect((await call(e, "GET", `/ovoc/v1/alarms/fwdRules/${id}`)).json).toMatchObject({ id, destSyslog: { syslogServerIP: "127.0.0.2", syslogServerPort: 20002 }, alarmDevicesFilter: [2] });

    expect((await call(e, "DELETE", `/ovoc/v1/alarms/fwdRules/${id}`)).status).toBe(200);
    expect(e.rules()).toEqual([]);
    for (const m of ["GET", "DELETE"]) expect((await call(e, m, `/ovoc/v1/alarms/fwdRules/${id}`)).status).toBe(404);
    expect((await call(e, "PUT", `/ovoc/v1/alarms/fwdRules/${id}`, { alarmNamesFilter: null })).status).toBe(404);
    expect((await call(e, "GET", "/ovoc/v1/alarms/fwdRules/abc")).status).toBe(404);
  });

  it.each([
    ["not JSON", "{nope", "not valid JSON"],
    ["an array", [], "JSON object"],
    ["no name", { ...originalCreateBody("x", 1, 1), name: "" }, "name"],
    ["no destination", { ...originalCreateBody("x", 1, 1), destSyslog: undefined }, "destSyslog"],
    ["a host name as destination", { ...originalCreateBody("x", 1, 1), destSyslog: { syslogServerIP: "orch.example", syslogServerPort: 514 } }, "syslogServerIP"],
    ["port 0", { ...originalCreateBody("x", 1, 1), destSyslog: { syslogServerIP: "127.0.0.1", syslogServerPort: 0 } }, "syslogServerPort"],
    ["an SNMP destination", { ...originalCreateBody("x", 1, 1), ruleDestType: "SNMP" }, "ruleDestType"],
    ["device ids as strings", { ...originalCreateBody("x", 1, 1), alarmDevicesFilter: ["1"] }, "alarmDevicesFilter"],
    ["an unknown device id", originalCreateBody("x", 77, 1), "no device with id 77"],
  ])("answers 400 with a description for a rule with %s", async (_name, body, words) => {
    const e = await start();
    const r = await call(e, "POST", "/ovoc/v1/alarms/fwdRules", body);
    expect(r.status).toBe(400);
    expect((r.json as { description: string }).description).toContain(words);
    expect(e.rules()).toEqual([]);
  });

  it("refuses a second rule of the same name (409) and a bad PUT (400) without changing the rule", async () => {
    const e = await start();
    const first = await call(e, "POST", "/ovoc/v1/alarms/fwdRules", originalCreateBody("dup", 1, 514));
    expect((await call(e, "POST", "/ovoc/v1/alarms/fwdRules", originalCreateBody("dup", 2, 515))).status).toBe(409);
    const id = (first.json as { id: number }).id;
    const bad = await call(e, "PUT", `/ovoc/v1/alarms/fwdRules/${id}`, { destSyslog: { syslogServerIP: "x", syslogServerPort: 1 } });
    expect(bad.status).toBe(400);
    expect(e.rules()[0]!.destSyslog).toEqual({ syslogServerIP: "127.0.0.1", syslogServerPort: 514 });
  });

  it("forwards Connection Lost as the exact OVOC syslog datagram to every matching rule — no rule, no syslog", async () => {
    const orch = await receiver();
    const other = await receiver();
    const e = await start();
    expect(await e.raiseConnectionLost(DEVICE, { at: TS })).toEqual([]);

    await call(e, "POST", "/ovoc/v1/alarms/fwdRules", originalCreateBody("mine", 1, orch.port));
    // Rules that must not fire for 192.0.2.10's Connection Lost: another device, another alarm, a PREVENT rule.
    await call(e, "POST", "/ovoc/v1/alarms/fwdRules", originalCreateBody("other device", 2, other.port));
    await call(e, "POST", "/ovoc/v1/alarms/fwdRules", { ...originalCreateBody("other alarm", 1, other.port), alarmNamesFilter: ["acBoardTemperatureAlarm"] });
    await call(e, "POST", "/ovoc/v1/alarms/fwdRules", { ...originalCreateBody("prevent", 1, other.port), forwardType: "PREVENT" });

    const sent = await e.raiseConnectionLost(DEVICE, { at: TS });
    expect(sent.map((a) => [a.ruleName, a.to, a.error])).toEqual([["mine", { host: "127.0.0.1", port: orch.port }, undefined]]);
    const expected = ovocConnectionLostAlarm({ deviceIp: DEVICE, deviceName: "MSBR-Lab-1", deviceType: "MSBR", timestamp: TS });
    await expect.poll(() => orch.got.length).toBe(1);
    expect(orch.got[0]).toEqual(expected);
    expect(orch.got[0]!.toString("latin1")).toBe(
      "<129>Nov 23 10:00:00 : New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, Device Name: MSBR-Lab-1, Tenant: Default, Region: Default, IP Address: 192.0.2.10, Device Type: MSBR, Device Serial: , Device Description: \0",
    );

    await e.raiseConnectionEstablished(DEVICE, { at: TS });
    await expect.poll(() => orch.got.length).toBe(2);
    expect(orch.got[1]).toEqual(ovocConnectionEstablished({ deviceIp: DEVICE, deviceName: "MSBR-Lab-1", deviceType: "MSBR", timestamp: TS }));

    // A rule with no device and no alarm filter forwards everything, unknown devices included.
    await call(e, "POST", "/ovoc/v1/alarms/fwdRules", { ...originalCreateBody("all", 1, other.port), alarmDevicesFilter: null, alarmNamesFilter: null });
    expect((await e.raiseConnectionLost("198.51.100.7", { at: TS })).map((a) => a.ruleName)).toEqual(["all"]);
    await expect.poll(() => other.got.length).toBe(1);
    expect(other.got[0]!.toString("latin1")).toContain("IP Address: 198.51.100.7,");
    expect(e.alarms.map((a) => `${a.kind} ${a.device} ${a.ruleName}`)).toEqual(["lost 192.0.2.10 mine", "established 192.0.2.10 mine", "lost 198.51.100.7 all"]);
  });

  it("serves faults: 503 for the next request, 403 for an under-privileged account, a request that never answers", async () => {
    const e = await start();
    e.setFault({ kind: "unavailable", times: 1 });
    expect((await call(e, "GET", "/ovoc/v1/alarms/fwdRules")).status).toBe(503);
    expect((await call(e, "GET", "/ovoc/v1/topology/devices?detail=1")).status).toBe(200);
    e.setFault({ kind: "forbidden", on: "fwdRules" });
    expect((await call(e, "POST", "/ovoc/v1/alarms/fwdRules", originalCreateBody("x", 1, 514))).status).toBe(403);
    expect((await call(e, "GET", "/ovoc/v1/topology/devices?detail=1")).status).toBe(200);
    e.setFault({ kind: "timeout" });
    const held = call(e, "GET", "/ovoc/v1/alarms/fwdRules");
    const first = await Promise.race([held.then(() => "answered"), new Promise((r) => setTimeout(() => r("held"), 300))]);
    expect(first).toBe("held");
    await e.close(); // drops the held request
    await expect(held).rejects.toThrow();
    expect(e.requests.map((r) => r.status)).toEqual([503, 200, 403, 200, 0]);
  });

  it("parses only the one filter form capsync and the original use", () => {
    expect(parseOvocFilter("(ipAddress='192.0.2.10')")).toEqual({ field: "ipAddress", value: "192.0.2.10" });
    expect(parseOvocFilter("(name='Forward Connection Lost from 192.0.2.10')")).toEqual({ field: "name", value: "Forward Connection Lost from 192.0.2.10" });
    for (const bad of ["ipAddress='x'", "(ipAddress=x)", "(a='x';b='y')", "('x')", ""]) expect(parseOvocFilter(bad)).toBeUndefined();
  });
});
