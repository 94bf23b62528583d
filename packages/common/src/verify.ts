// VERIFY: a small, bounded burst of test traffic to the device so both captures show whether the
// path still carries it, as the original sends it: ICMP echo (the system ping, icmp.ts), SNMPv3
// authPriv GETs when credentials are given (snmpv3.ts), TCP/443 connects and an SNMPv2c GET. The
// probes run side by side, so the first packet of each kind leaves at once.
import { createSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { connect, isIP, isIPv6 } from "node:net";
import { icmpEcho, type IcmpOptions, type IcmpResult } from "./icmp.js";
import { snmpv3Get, type Snmpv3Credentials, type Snmpv3Result } from "./snmpv3.js";

export interface VerifyResult {
  ok: boolean;
  tcpTries: number;
  /** Handshake completed, or refused with a RST: either way packets crossed the path both ways. */
  tcpAnswered: number;
  tcpTimeouts: number;
  udpSent: number;
  udpAnswers: number;
  /** Absent when ICMP is off (icmp: false). */
  icmp?: IcmpResult;
  /** Absent without SNMPv3 credentials. */
  snmpv3?: Snmpv3Result;
}

export interface VerifyOptions {
  tcpPort?: number;
  udpPort?: number;
  tries?: number;
  timeoutMs?: number;
  /** ICMP echo settings; false = no ICMP. Default: 3 echoes (icmp.ts). */
  icmp?: IcmpOptions | false;
  /** SNMPv3 authPriv GETs of sysDescr.0/sysUpTime.0 with these credentials (tries and timeout as above). */
  snmpv3?: Snmpv3Credentials;
  snmpv3Port?: number;
}

// SNMPv2c GetRequest for sysUpTime.0 with community "public": a harmless, standard probe.
const SNMP_GET = Buffer.from("302902010104067075626c6963a01c020400000001020100020100300e300c06082b060102010103000500", "hex");

export async function verifyPath(device: string, o: VerifyOptions = {}): Promise<VerifyResult> {
  const tries = Math.min(o.tries ?? 3, 10);
  const timeoutMs = Math.min(o.timeoutMs ?? 1000, 5000);
  // A device configured by host name: ping and SNMPv3 get the address it resolves to (once).
  const ip = isIP(device) ? device : await lookup(device).then((a) => a.address, () => device);
  const icmp = o.icmp === false ? undefined : icmpEcho(ip, o.icmp ?? {});
  const v3 = o.snmpv3 ? snmpv3Get(ip, o.snmpv3, { tries, timeoutMs, port: o.snmpv3Port ?? o.udpPort ?? 161 }) : undefined;
  const r: VerifyResult = { ok: false, tcpTries: 0, tcpAnswered: 0, tcpTimeouts: 0, udpSent: 0, udpAnswers: 0 };
  const udp = createSocket(isIPv6(device) ? "udp6" : "udp4");
  udp.on("message", () => r.udpAnswers++);
  udp.on("error", () => undefined);
  await new Promise<void>((res) => udp.bind(0, () => res()));
  for (let i = 0; i < tries; i++) {
    udp.send(SNMP_GET, o.udpPort ?? 161, device, () => undefined);
    r.udpSent++;
    r.tcpTries++;
    const outcome = await tcpProbe(device, o.tcpPort ?? 443, timeoutMs);
    if (outcome === "timeout") r.tcpTimeouts++;
    else r.tcpAnswered++;
  }
  // Let late SNMP answers arrive, bounded.
  await new Promise((res) => setTimeout(res, Math.min(200, timeoutMs)));
  udp.close();
  if (icmp) r.icmp = await icmp;
  if (v3) r.snmpv3 = await v3;
  r.ok = r.tcpAnswered > 0 || r.udpAnswers > 0 || (r.icmp?.received ?? 0) > 0 || (r.snmpv3?.answered ?? 0) > 0;
  return r;
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<"connected" | "refused" | "timeout"> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (v: "connected" | "refused" | "timeout") => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done("timeout"), timeoutMs);
    s.once("connect", () => done("connected"));
    s.once("error", (e: NodeJS.ErrnoException) => done(e.code === "ECONNREFUSED" ? "refused" : "timeout"));
  });
}
