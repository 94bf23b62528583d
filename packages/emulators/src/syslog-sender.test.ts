import dgram from "node:dgram";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  SyslogSender,
  bsdTimestamp,
  formatRfc3164,
  formatRfc5424,
  frameForTcp,
  ovocAlarmText,
  ovocConnectionEstablished,
  ovocConnectionLostAlarm,
} from "./syslog-sender.js";

const TS = new Date("2026-11-03T10:15:30.123Z");
const LOST_TEXT =
  "New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, Device Name: MSBR-Lab-1, Tenant: Default, Region: Default, IP Address: 192.0.2.10, Device Type: MSBR, Device Serial: , Device Description: ";

// Golden messages: { name, input (a thunk), expected bytes as latin1 text }.
const GOLDEN: Array<{ name: string; input: () => Uint8Array | string; expected: string }> = [
  {
    name: "OVOC Connection Lost, RFC 3164 (the shape trafficCapture's regex matched, NUL-terminated)",
    input: () => ovocConnectionLostAlarm({ deviceIp: "192.0.2.10", deviceName: "MSBR-Lab-1", timestamp: TS }),
    expected: `<129>Nov  3 10:15:30 : ${LOST_TEXT}\0`,
  },
  {
    name: "OVOC Connection Lost, RFC 5424 with BOM",
    input: () => ovocConnectionLostAlarm({ deviceIp: "192.0.2.10", deviceName: "MSBR-Lab-1", timestamp: TS, format: "rfc5424", ovocHost: "ovoc-srv1" }),
    expected: `<129>1 2026-11-03T10:15:30.123Z ovoc-srv1 OVOC - - - \xef\xbb\xbf${LOST_TEXT}`,
  },
  {
    name: "OVOC Connection established (severity clear → notice), with OVOC host and all fields",
    input: () =>
      ovocConnectionEstablished({
        deviceIp: "2001:db8::10",
        deviceName: "SBC-2",
        timestamp: TS,
        ovocHost: "ovoc-srv1",
        source: "Board#1",
        tenant: "ACME",
        region: "EU",
        deviceType: "Mediant 4000",
        deviceSerial: "A1B2",
        deviceDescription: "core SBC",
        trailingNul: false,
      }),
    expected:
      "<133>Nov  3 10:15:30 ovoc-srv1 : New Alarm - Connection Alarm, Source: Board#1, Description: Connection established, Device Name: SBC-2, Tenant: ACME, Region: EU, IP Address: 2001:db8::10, Device Type: Mediant 4000, Device Serial: A1B2, Device Description: core SBC",
  },
  {
    name: "RFC 3164 with host, tag and pid",
    input: () => formatRfc3164({ facility: 4, severity: 2, timestamp: TS, hostname: "mymachine", tag: "su", pid: 77, message: "'su root' failed" }),
    expected: "<34>Nov  3 10:15:30 mymachine su[77]: 'su root' failed",
  },
  {
    name: "RFC 5424 with escaped structured data, no BOM",
    input: () =>
      formatRfc5424({
        facility: 20,
        severity: 5,
        timestamp: TS,
        hostname: "h",
        appName: "app",
        procId: "1",
        msgId: "ID47",
        structuredData: [{ id: "x@1", params: [["a", 'q"b\\c]d']] }],
        message: "hi",
        bom: false,
      }),
    expected: '<165>1 2026-11-03T10:15:30.123Z h app 1 ID47 [x@1 a="q\\"b\\\\c\\]d"] hi',
  },
  { name: "RFC 5424 header only, NIL timestamp", input: () => formatRfc5424({ timestamp: null }), expected: "<13>1 - - - - - -" },
  { name: "octet-counting frame counts bytes, not characters", input: () => frameForTcp(Buffer.from("<13>é"), "octet-counting"), expected: "6 <13>\xc3\xa9" },
  { name: "newline frame", input: () => frameForTcp(Buffer.from("<13>x"), "newline"), expected: "<13>x\n" },
];

describe("syslog message golden table", () => {
  for (const g of GOLDEN) {
    it(g.name, () => {
      const out = g.input();
      expect(typeof out === "string" ? out : Buffer.from(out).toString("latin1")).toBe(g.expected);
    });
  }

  it("bsdTimestamp pads the day with a space", () => {
    expect(bsdTimestamp(new Date("2026-01-05T03:04:05Z"))).toBe("Jan  5 03:04:05");
    expect(bsdTimestamp(new Date("2026-12-25T23:59:59Z"))).toBe("Dec 25 23:59:59");
  });

  it("ovocAlarmText keeps the original field order", () => {
    const keys = [...ovocAlarmText({ alarmName: "Connection Alarm", description: "Connection Lost", ipAddress: "192.0.2.10" }).matchAll(/(?:^|, )([A-Z][A-Za-z ]+?):/g)].map((m) => m[1]);
    expect(keys).toEqual(["Source", "Description", "Device Name", "Tenant", "Region", "IP Address", "Device Type", "Device Serial", "Device Description"]);
  });

  it("refuses LF inside a newline-framed message", () => {
    expect(() => frameForTcp(Buffer.from("a\nb"), "newline")).toThrow(/cannot use newline framing/);
  });
});

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe("SyslogSender over real sockets on 127.0.0.1", () => {
  it("sends one datagram per message over UDP, from the reported local port", async () => {
    const rx = dgram.createSocket("udp4");
    const got: Array<{ text: string; port: number }> = [];
    const two = new Promise<void>((resolve) =>
      rx.on("message", (m, r) => {
        got.push({ text: m.toString("latin1"), port: r.port });
        if (got.length === 2) resolve();
      }),
    );
    await new Promise<void>((r) => rx.bind(0, "127.0.0.1", () => r()));
    cleanup.push(() => new Promise((r) => rx.close(() => r())));
    const s = await SyslogSender.open({ host: "127.0.0.1", port: rx.address().port });
    cleanup.push(() => s.close());
    await s.send(ovocConnectionLostAlarm({ deviceIp: "192.0.2.10", deviceName: "MSBR-Lab-1", timestamp: TS }));
    await s.send("<13>1 - - - - - - x");
    await two;
    expect(got).toEqual([
      { text: `<129>Nov  3 10:15:30 : ${LOST_TEXT}\0`, port: s.local.port },
      { text: "<13>1 - - - - - - x", port: s.local.port },
    ]);
  });

  for (const framing of ["octet-counting", "newline"] as const) {
    it(`frames TCP with ${framing}, from a chosen loopback address`, async () => {
      const chunks: Buffer[] = [];
      let peer = "";
      const closed = new Promise<void>((resolve) => {
        const server = net.createServer((c) => {
          peer = c.remoteAddress ?? "";
          c.on("data", (d) => chunks.push(d));
          c.on("end", () => {
            c.end();
            server.close();
            resolve();
          });
        });
        server.listen(0, "127.0.0.1", async () => {
          const port = (server.address() as net.AddressInfo).port;
          const s = await SyslogSender.open({ host: "127.0.0.1", port, transport: "tcp", framing, localAddress: "127.0.0.3" });
          await s.send("<13>one");
          await s.send(Buffer.from("<13>two"));
          await s.close();
        });
      });
      await closed;
      expect(peer).toBe("127.0.0.3");
      expect(Buffer.concat(chunks).toString()).toBe(framing === "octet-counting" ? "7 <13>one7 <13>two" : "<13>one\n<13>two\n");
    });
  }

  it("reports a refused TCP connection as CapsyncError syslog-send", async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await expect(SyslogSender.open({ host: "127.0.0.1", port, transport: "tcp" })).rejects.toMatchObject({ code: "syslog-send" });
  });
});
