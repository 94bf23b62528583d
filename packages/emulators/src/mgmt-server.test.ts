import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { AlarmForwarder, CONNECTION_ALARM_NAME, ManagementServer, type ConnectionEvent } from "./mgmt-server.js";
import { startSnmpAgent, type SnmpAgentHandle } from "./snmp.js";

const DEV1 = "127.0.0.21";
const DEV2 = "127.0.0.22";

interface Sink {
  port: number;
  got: { text: string; from: string }[];
  waitFor(pred: (t: string) => boolean, timeoutMs?: number): Promise<string>;
  close(): void;
}

async function syslogSink(): Promise<Sink> {
  const s = dgram.createSocket("udp4");
  const got: { text: string; from: string }[] = [];
  s.on("message", (m, r) => got.push({ text: m.toString("latin1"), from: r.address }));
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  return {
    port: s.address().port,
    got,
    async waitFor(pred, timeoutMs = 3000) {
      for (let waited = 0; waited < timeoutMs; waited += 20) {
        const hit = got.find((g) => pred(g.text));
        if (hit) return hit.text;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no matching syslog; got: ${got.map((g) => g.text).join(" | ")}`);
    },
    close: () => s.close(),
  };
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe("ManagementServer", () => {
  it("sends Connection Lost once per loss, after lostAfter of silence, and Connection established when the device is back", async () => {
    let a1: SnmpAgentHandle = await startSnmpAgent({ address: DEV1, port: 0, uptimeMs: () => 1 });
    const port = a1.port;
    const a2 = await startSnmpAgent({ address: DEV2, port, uptimeMs: () => 1 });
    cleanup.push(() => a2.close());
    const sink = await syslogSink();
    cleanup.push(() => sink.close());
    const events: ConnectionEvent[] = [];
    const mgmt = await ManagementServer.start({
      devices: [{ address: DEV1, deviceType: "MSBR" }, { address: DEV2, name: "sbc-2", deviceType: "SBC" }],
      bind: "127.0.0.1",
      poll: { intervalMs: 50, lostAfterMs: 300, port },
      syslog: [{ host: "127.0.0.1", port: sink.port }],
      onEvent: (e) => events.push(e),
    });
    cleanup.push(() => mgmt.close());
    for (let i = 0; i < 100 && !(mgmt.poller.state(DEV1)?.link === "up" && mgmt.poller.state(DEV2)?.link === "up"); i++) await new Promise((r) => setTimeout(r, 20));
    expect(mgmt.poller.state(DEV1)?.link).toBe("up");

    const silentFrom = Date.now();
    await a1.close();
    const lost = await sink.waitFor((t) => t.includes("Connection Lost"));
    const after = Date.now() - silentFrom;
    expect(after).toBeGreaterThanOrEqual(250);
    expect(after).toBeLessThan(1500);
    // The OVOC RFC 3164 shape: <PRI>timestamp, bare ": ", the alarm text, a trailing NUL.
    expect(lost).toMatch(/^<129>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d : New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, /);
    expect(lost).toContain(`IP Address: ${DEV1}, Device Type: MSBR`);
    expect(lost.endsWith("\0")).toBe(true);
    expect(sink.got[0]!.from).toBe("127.0.0.1");

    await new Promise((r) => setTimeout(r, 400)); // still silent: no second alarm
    expect(sink.got.filter((g) => g.text.includes("Connection Lost"))).toHaveLength(1);

    a1 = await startSnmpAgent({ address: DEV1, port, uptimeMs: () => 1 });
    cleanup.push(() => a1.close());
    const back = await sink.waitFor((t) => t.includes("Connection established"));
    expect(back).toContain(`IP Address: ${DEV1}`);
    expect(events.map((e) => `${e.kind} ${e.device.address}`)).toEqual([`lost ${DEV1}`, `established ${DEV1}`]);
    expect(mgmt.alarms.map((a) => `${a.kind} ${a.device} ${a.to}`)).toEqual([`lost ${DEV1} 127.0.0.1:${sink.port}`, `established ${DEV1} 127.0.0.1:${sink.port}`]);
    expect(sink.got.some((g) => g.text.includes(DEV2))).toBe(false);
  });
});

describe("AlarmForwarder", () => {
  it("follows the fwdRules filters: alarm names and OVOC device ids", async () => {
    const all = await syslogSink();
    const only2 = await syslogSink();
    const other = await syslogSink();
    cleanup.push(() => all.close(), () => only2.close(), () => other.close());
    const fwd = new AlarmForwarder();
    cleanup.push(() => fwd.close());
    fwd.addRule({ name: "all", destSyslog: { syslogServerIP: "127.0.0.1", syslogServerPort: all.port }, alarmNamesFilter: [], alarmDevicesFilter: [] });
    fwd.addRule({ name: "dev2", destSyslog: { syslogServerIP: "127.0.0.1", syslogServerPort: only2.port }, alarmNamesFilter: [CONNECTION_ALARM_NAME], alarmDevicesFilter: [2] });
    const r3 = fwd.addRule({ name: "other", destSyslog: { syslogServerIP: "127.0.0.1", syslogServerPort: other.port }, alarmNamesFilter: ["acBoardFatalError"], alarmDevicesFilter: [] });
    expect(fwd.listRules().map((r) => [r.id, r.ruleDestType])).toEqual([[1, "SYSLOG"], [2, "SYSLOG"], [3, "SYSLOG"]]);
    const dev = (id: number) => ({ id, address: `192.0.2.${id}`, name: `d${id}`, deviceType: "MSBR" });
    const sent1 = await fwd.forward({ kind: "lost", device: dev(1), at: new Date(), silentMs: 3000 });
    const sent2 = await fwd.forward({ kind: "lost", device: dev(2), at: new Date(), silentMs: 3000 });
    expect(sent1.map((s) => s.ruleId)).toEqual([1]);
    expect(sent2.map((s) => s.ruleId)).toEqual([1, 2]);
    await only2.waitFor((t) => t.includes("IP Address: 192.0.2.2"));
    await all.waitFor((t) => t.includes("IP Address: 192.0.2.2"));
    expect(all.got).toHaveLength(2);
    expect(only2.got).toHaveLength(1);
    expect(other.got).toHaveLength(0);
    expect(fwd.removeRule(r3.id)).toBe(true);
    expect(() => fwd.addRule({ id: 1, name: "dup", destSyslog: { syslogServerIP: "127.0.0.1", syslogServerPort: 9 }, alarmNamesFilter: [], alarmDevicesFilter: [] })).toThrow(/exists/);
  });
});
