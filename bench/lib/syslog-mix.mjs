// The message mix of bench/syslog-ingest.mjs, the same bytes for capsync's listener and rsyslog:
// per 100 datagrams, 55 firewall/kernel RFC 3164 lines, 20 RFC 5424 application messages, 15 other
// OVOC alarms, 9 OVOC "Connection established" and 1 OVOC "Connection Lost" for a configured device.
import { formatRfc3164, formatRfc5424, ovocAlarmText, ovocConnectionEstablished, ovocConnectionLostAlarm } from "@capsync/emulators";

export const MIX_DEVICES = Array.from({ length: 1000 }, (_, i) => `10.${20 + (i >> 8)}.${i & 255}.7`);

export function syslogMix() {
  const ts = new Date("2026-11-23T10:00:00Z");
  const out = [];
  for (let i = 0; i < 100; i++) {
    const dev = MIX_DEVICES[(i * 37) % MIX_DEVICES.length];
    if (i < 55) {
      out.push(Buffer.from(formatRfc3164({ timestamp: ts, hostname: `fw${i % 7}`, tag: "kernel", message: `[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC=203.0.113.${i} DST=198.51.100.${(i * 3) % 250} LEN=60 TOS=0x00 PROTO=TCP SPT=${40000 + i} DPT=443 SYN` })));
    } else if (i < 75) {
      out.push(formatRfc5424({ timestamp: ts, hostname: `app${i % 5}.example`, appName: "sbc-monitor", procId: String(1000 + i), msgId: "KPI", structuredData: [{ id: "kpi@32473", params: [["calls", String(i)], ["asr", "0.97"]] }], message: `periodic KPI report for ${dev}: 42 active calls, MOS 4.2` }));
    } else if (i < 90) {
      out.push(Buffer.from(formatRfc3164({ timestamp: ts, tag: "", message: ovocAlarmText({ alarmName: "Power Supply Alarm", description: "Power supply failure", source: "PS#1", ipAddress: dev }) }) + "\0"));
    } else if (i < 99) {
      out.push(ovocConnectionEstablished({ deviceIp: dev, timestamp: ts }));
    } else {
      out.push(ovocConnectionLostAlarm({ deviceIp: dev, timestamp: ts }));
    }
  }
  return out;
}
