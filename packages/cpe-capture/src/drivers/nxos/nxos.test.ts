// The NX-OS hop client and driver over real sockets: against a tiny NX-API server written here only
// from Cisco's documented request/response (format fidelity, independent of capsync's emulator),
// against the NX-OS emulator over NX-API, and over the SSH CLI when NX-API is off; typed errors.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { inspect } from "node:util";
import { ConfigError, DeviceAuthError, DeviceProtocolError, DeviceUnreachableError } from "@capsync/protocol";
import { ecmpIndex, sharedTlsCertificate, startNxosDevice, type NxosDevice, type NxosDeviceOptions } from "@capsync/emulators";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { DriverTask } from "../driver.js";
import { NxosDriver } from "./driver.js";
import { NxosHopClient } from "./hop-client.js";
import { insApiRequest, parseInsApi } from "./nxapi.js";

const USER = "admin";
const PASS = "Nx-S3cret!pw";
const fixture = (name: string) => readFileSync(path.join(import.meta.dirname, "fixtures", name), "utf8");

function expectNoSecret(...things: unknown[]): void {
  const text = things.map((t) => inspect(t, { depth: 20, showHidden: true })).join("\n");
  expect(text).not.toContain(PASS);
  expect(text).not.toContain(Buffer.from(`${USER}:${PASS}`).toString("base64"));
}

describe("NX-API message format (Cisco's documented ins_api JSON)", () => {
  it("request: version, type, chunk, sid, input, output_format in that order; commands joined by ' ;'", () => {
    expect(insApiRequest(["show hostname", "show version"])).toBe(
      '{"ins_api":{"version":"1.0","type":"cli_show_ascii","chunk":"0","sid":"1","input":"show hostname ;show version","output_format":"json"}}',
    );
  });
  it("answer: one output object or an array; a missing envelope is a typed issue", () => {
    const one = { ins_api: { type: "cli_show_ascii", version: "1.0", sid: "eoc", outputs: { output: { input: "show hostname", msg: "Success", code: "200", body: "n9k-140\n" } } } };
    expect(parseInsApi(JSON.stringify(one))).toEqual({ ok: true, outputs: [{ code: "200", msg: "Success", input: "show hostname", body: "n9k-140\n", clierror: undefined }] });
    const err = { ins_api: { sid: "eoc", type: "cli_show_ascii", version: "1.0", outputs: { output: [{ code: "200", msg: "Success", body: "x", input: "show a" }, { code: "400", msg: "Input CLI command error", clierror: "% Invalid command\n", input: "show b" }] } } };
    expect(parseInsApi(JSON.stringify(err))).toMatchObject({ ok: true, outputs: [{ code: "200" }, { code: "400", msg: "Input CLI command error", clierror: "% Invalid command\n", body: "" }] });
    expect(parseInsApi("<html>")).toEqual({ ok: false, code: "not-json" });
    expect(parseInsApi('{"ins_api":{}}')).toEqual({ ok: false, code: "bad-field", field: "outputs" });
    expect(parseInsApi('{"jsonrpc":"2.0"}')).toEqual({ ok: false, code: "bad-field", field: "ins_api" });
  });
});

/**
 * An NX-API endpoint written from Cisco's programmability guide alone: POST /ins, Basic auth,
 * {"ins_api": {version, type: "cli_show_ascii", chunk, sid, input, output_format: "json"}}, one
 * output per ";"-separated command; a failed command answers HTTP 400 with code "400".
 */
describe("against an NX-API server built from Cisco's documentation", () => {
  const answers: Record<string, string> = {
    "show hostname": "9372-1\n",
    "show routing hash 3.3.3.3 4.4.4.4 ip-proto 6 1234 80": fixture("routing-hash-ecmp.txt"),
    "show routing hash 3.3.3.3 10.9.9.9": fixture("routing-hash-local.txt"),
    "show interface Eth1/52": fixture("show-interface-eth1-52.txt"),
    "show cdp neighbors detail": fixture("cdp-neighbors-detail.txt"),
    "show ip arp": fixture("show-ip-arp.txt"),
    "show mac address-table": fixture("show-mac-address-table.txt"),
    "show version": fixture("show-version-9.3.txt"),
  };
  const seen: { headers: Record<string, unknown>; body: string }[] = [];
  let server: Server;
  let port: number;
  let ca: string;

  beforeAll(async () => {
    const tls = await sharedTlsCertificate();
    ca = tls.cert;
    server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString("utf8")));
      req.on("end", () => {
        seen.push({ headers: req.headers, body });
        if (req.method !== "POST" || req.url !== "/ins") return void res.writeHead(404).end("Not Found");
        if (req.headers.authorization !== `Basic ${Buffer.from(`${USER}:${PASS}`).toString("base64")}`) return void res.writeHead(401, { "content-type": "text/html" }).end("<html><head><title>401 Authorization Required</title></head></html>");
        const ins = (JSON.parse(body) as { ins_api: Record<string, string> }).ins_api;
        const outputs = ins.input!.split(";").map((c) => c.trim()).map((input) =>
          answers[input] !== undefined ? { input, msg: "Success", code: "200", body: answers[input] } : { input, msg: "Input CLI command error", code: "400", clierror: "% Invalid command at '^' marker.\n" },
        );
        const failed = outputs.some((o) => o.code !== "200");
        const text = JSON.stringify({ ins_api: { type: ins.type, version: "1.0", sid: "eoc", outputs: { output: outputs.length === 1 ? outputs[0] : outputs } } });
        res.writeHead(failed ? 400 : 200, { "content-type": "application/json" }).end(text);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const client = (password = PASS) => new NxosHopClient({ address: "127.0.0.1", username: USER, password, restPort: port, sshPort: 1, tls: { mode: "ca", ca }, timeoutMs: 3000 });

  it("sends the documented request and reads every answer the trace needs", async () => {
    const c = client();
    try {
      expect(await c.hostname()).toBe("9372-1");
      expect(seen.at(-1)!.body).toBe('{"ins_api":{"version":"1.0","type":"cli_show_ascii","chunk":"0","sid":"1","input":"show hostname","output_format":"json"}}');
      expect(seen.at(-1)!.headers["content-type"]).toBe("application/json");
      expect(await c.routeFor({ src: "3.3.3.3", dst: "4.4.4.4", proto: 6, sport: 1234, dport: 80 })).toEqual({
        outInterface: "Eth1/52",
        nextHop: "10.10.60.1",
        loadShareMode: "address source-destination port source-destination",
        vrf: "default",
        raw: 'load-share mode: address source-destination port source-destination\nHash for VRF "default"\nHashing to path *10.10.60.1\nOut Interface: Eth1/52',
      });
      expect(await c.routeFor({ src: "3.3.3.3", dst: "10.9.9.9" })).toMatchObject({ outInterface: "sup-eth1 , local, attached", local: true, vrf: "default" });
      expect((await c.routeFor({ src: "3.3.3.3", dst: "10.9.9.9" })).nextHop).toBeUndefined();
      const stats = await c.interfaceStats("Eth1/52");
      expect(stats.resets).toBe("6 interface resets");
      expect(stats.txLines).toEqual(["1552 unicast packets  233683 multicast packets  3 broadcast packets", "235246 output packets  24675632 bytes", "0 jumbo packets", "0 output error  0 collision  0 deferred  0 late collision", "0 lost carrier  0 no carrier  0 babble  0 output discard", "0 Tx pause"]);
      expect(stats.txStats["output packets"]).toBe("235246");
      expect((await c.cdpNeighbors()).map((n) => [n.deviceId, n.addresses, n.mgmtAddresses])).toEqual([["N9K2(FDO21392QKM)", ["10.10.60.1"], ["192.0.2.12"]], ["edge-rtr1", ["10.10.61.1"], ["192.0.2.21"]]]);
      expect(await c.arp()).toEqual([{ address: "10.10.60.1", mac: "00c8.8b2b.1111", interface: "Ethernet1/52" }, { address: "4.4.4.4", mac: "0050.56aa.0404", interface: "Vlan10" }]);
      expect((await c.macTable()).find((m) => m.mac === "0050.56aa.0404")).toEqual({ mac: "0050.56aa.0404", vlan: "10", port: "Eth1/5" });
    } finally {
      await c.close();
    }
  });

  it("a rejected command (HTTP 400, code 400) is a DeviceProtocolError with Cisco's msg and clierror, not retried", async () => {
    const c = client();
    const before = seen.length;
    const err = await c.routeFor({ src: "3.3.3.3", dst: "5.5.5.5" }).catch((e: unknown) => e);
    await c.close();
    expect(err).toBeInstanceOf(DeviceProtocolError);
    expect((err as Error).message).toBe("nxos 127.0.0.1: NX-API: 'show routing hash 3.3.3.3 5.5.5.5': 400 Input CLI command error: % Invalid command at '^' marker.");
    expect(seen.length - before).toBe(1);
  });

  it("401 is a DeviceAuthError naming the user, never the password", async () => {
    const c = client("wrong-password");
    const err = await c.hostname().catch((e: unknown) => e);
    await c.close();
    expect(err).toBeInstanceOf(DeviceAuthError);
    expect((err as Error).message).toBe("nxos 127.0.0.1: NX-API: HTTP 401 401 Authorization Required (user admin)");
    expectNoSecret(err);
  });

  it("the driver's probe reads show version into facts, one task", async () => {
    const tasks: DriverTask[] = [];
    const d = new NxosDriver({ address: "127.0.0.1", type: "nxos", username: USER, password: PASS, restPort: port, tls: { ca }, onTask: (t) => tasks.push(t) });
    expect(await d.probe()).toEqual({ vendor: "Cisco", model: "Nexus9000 93180YC-EX", version: "9.3(5)", serial: "FDO21392QKM", warnings: [] });
    expect(tasks).toEqual([expect.objectContaining({ name: "probe", status: "ok", httpStatus: 200, output: "NX-API show version: n9k-140 Nexus9000 93180YC-EX 9.3(5) FDO21392QKM" })]);
    await d.cleanup();
  });
});

describe("against the NX-OS emulator", () => {
  const base: NxosDeviceOptions = {
    address: "127.0.0.161",
    username: USER,
    password: PASS,
    hostname: "leaf1",
    routes: [
      { prefix: "198.51.100.0/24", nextHops: [{ via: "10.0.1.2", interface: "Ethernet1/1" }, { via: "10.0.2.2", interface: "Ethernet1/2" }], source: "ospf-1, intra" },
      { prefix: "192.0.2.10/32", nextHops: [{ via: "192.0.2.10", interface: "Vlan10" }] },
      { prefix: "10.255.0.1/32", nextHops: [], local: true },
    ],
    interfaces: [
      { name: "Ethernet1/1", address: "10.0.1.1/30", resets: 2, tx: { unicast: 81, multicast: 27053, broadcast: 3, bytes: 3490279 } },
      { name: "Ethernet1/2", address: "10.0.2.1/30" },
    ],
    cdp: [{ deviceId: "spine1(FDO1)", systemName: "spine1", localInterface: "Ethernet1/1", remoteInterface: "Ethernet1/49", addresses: ["10.0.1.2"], mgmtAddresses: ["192.0.2.201"] }],
    arp: [{ address: "192.0.2.10", mac: "0050.56aa.0010", interface: "Vlan10" }],
    mac: [{ vlan: "10", mac: "0050.56aa.0010", port: "Ethernet1/5" }],
  };
  let dev: NxosDevice | undefined;
  afterEach(async () => {
    await dev?.close();
    dev = undefined;
  });
  const hop = (d: NxosDevice, password = PASS) => new NxosHopClient({ address: d.address, username: USER, password, restPort: d.restPort, sshPort: d.sshPort, tls: { mode: "ca", ca: d.certificate }, timeoutMs: 3000 });

  async function walk(d: NxosDevice) {
    const c = hop(d);
    try {
      const flows = Array.from({ length: 8 }, (_, i) => ({ src: "203.0.113.5", dst: "198.51.100.7", proto: 17, sport: 40000 + i, dport: 5060 }));
      const decisions = [];
      for (const f of flows) decisions.push(await c.routeFor(f));
      const expected = flows.map((f) => (ecmpIndex({ ...f, vrf: "default" }, 2) === 0 ? ["Eth1/1", "10.0.1.2"] : ["Eth1/2", "10.0.2.2"]));
      return {
        via: c.via,
        hops: decisions.map((r) => [r.outInterface, r.nextHop]),
        expected,
        attached: await c.routeFor({ src: "203.0.113.5", dst: "192.0.2.10" }),
        local: await c.routeFor({ src: "203.0.113.5", dst: "10.255.0.1" }),
        hostname: await c.hostname(),
        stats: await c.interfaceStats("Eth1/1"),
        cdp: await c.cdpNeighbors(),
        arp: await c.arp(),
        mac: await c.macTable(),
      };
    } finally {
      await c.close();
    }
  }

  it("NX-API: the hash picks the emulator's ECMP member for each flow; both members are used", async () => {
    dev = await startNxosDevice(base);
    const w = await walk(dev);
    expect(w.via).toBe("nxapi");
    expect(w.hops).toEqual(w.expected);
    expect(new Set(w.hops.map((h) => h[0])).size).toBe(2);
    expect(w.attached).toMatchObject({ outInterface: "Vlan10", vrf: "default" });
    expect(w.attached.nextHop).toBeUndefined();
    expect(w.local).toMatchObject({ outInterface: "sup-eth1 , local, attached", local: true });
    expect(w.hostname).toBe("leaf1");
    expect(w.stats).toMatchObject({ resets: "2 interface resets", txStats: { "unicast packets": "81", "output packets": "27137", bytes: "3490279" } });
    expect(w.cdp).toEqual([{ deviceId: "spine1(FDO1)", localInterface: "Ethernet1/1", remoteInterface: "Ethernet1/49", addresses: ["10.0.1.2"], mgmtAddresses: ["192.0.2.201"], platform: "N9K-C93180YC-EX" }]);
    expect(w.arp).toEqual([{ address: "192.0.2.10", mac: "0050.56aa.0010", interface: "Vlan10" }]);
    expect(w.mac).toEqual([{ mac: "0050.56aa.0010", vlan: "10", port: "Eth1/5" }]);
    expect(dev.counts().ssh).toBe(0);
  });

  it.each(["closed", "404"] as const)("NX-API %s → the same answers over the SSH CLI", async (mode) => {
    dev = await startNxosDevice({ ...base, address: mode === "closed" ? "127.0.0.162" : "127.0.0.163", nxapi: mode });
    const w = await walk(dev);
    expect(w.via).toBe("ssh");
    expect(w.hops).toEqual(w.expected);
    expect(w.local).toMatchObject({ local: true });
    expect(w.hostname).toBe("leaf1");
    expect(w.stats.txStats["unicast packets"]).toBe("81");
    expect(w.mac).toEqual([{ mac: "0050.56aa.0010", vlan: "10", port: "Eth1/5" }]);
    expect(dev.counts().ssh).toBeGreaterThan(0);
    expect(dev.commands()).toContain("show routing hash 203.0.113.5 198.51.100.7 ip-proto 17 40000 5060");
  });

  it("wrong password: 401 over NX-API, SSH authentication failure after fallback — typed, no secret", async () => {
    dev = await startNxosDevice({ ...base, address: "127.0.0.164" });
    const a = hop(dev, "Wr0ng-pw");
    const e1 = await a.hostname().catch((e: unknown) => e);
    await a.close();
    expect(e1).toBeInstanceOf(DeviceAuthError);
    expect((e1 as Error).message).toContain("HTTP 401 401 Authorization Required");
    await dev.close();
    dev = await startNxosDevice({ ...base, address: "127.0.0.164", nxapi: "closed" });
    const b = hop(dev, "Wr0ng-pw");
    const e2 = await b.hostname().catch((e: unknown) => e);
    await b.close();
    expect(e2).toBeInstanceOf(DeviceAuthError);
    expect((e2 as Error).message).toContain("SSH authentication failed for user admin");
    expectNoSecret(e1, e2);
  });

  it("an untrusted certificate is refused, not worked around over SSH", async () => {
    dev = await startNxosDevice({ ...base, address: "127.0.0.165" });
    const c = new NxosHopClient({ address: dev.address, username: USER, password: PASS, restPort: dev.restPort, sshPort: dev.sshPort, timeoutMs: 3000 });
    const err = await c.hostname().catch((e: unknown) => e);
    await c.close();
    expect(err).toBeInstanceOf(DeviceUnreachableError);
    expect((err as Error).message).toMatch(/TLS certificate not trusted/);
    expect(dev.counts().ssh).toBe(0);
  });

  it("the capture driver refuses every capture call with a ConfigError and sends nothing", async () => {
    dev = await startNxosDevice({ ...base, address: "127.0.0.166" });
    const d = new NxosDriver({ address: dev.address, type: "nxos", username: USER, password: PASS, restPort: dev.restPort, sshPort: dev.sshPort, tls: { ca: dev.certificate } });
    expect(d.capabilities.capture).toBe(false);
    for (const call of [() => d.startCapture(), () => d.stopCapture(), () => d.fetchCapture()]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toBe(`nxos ${dev.address}: nxos devices are trace hops; they cannot capture in capsync yet; trace through it with cpe-capture trace`);
    }
    expect(dev.commands()).toEqual([]);
    expect(await d.probe()).toEqual({ vendor: "Cisco", model: "Nexus9000 C93180YC-EX", version: "9.3(5)", serial: "FDO21392QKM", warnings: [] });
    await d.cleanup();
  });

  it("a flow that could smuggle CLI words is refused before anything is sent", async () => {
    dev = await startNxosDevice({ ...base, address: "127.0.0.167" });
    const c = hop(dev);
    const err = await c.routeFor({ src: "1.1.1.1 ; reload", dst: "2.2.2.2" }).catch((e: unknown) => e);
    const err2 = await c.interfaceStats("Eth1/1 ; reload").catch((e: unknown) => e);
    await c.close();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err2).toBeInstanceOf(ConfigError);
    expect(dev.commands()).toEqual([]);
  });
});
