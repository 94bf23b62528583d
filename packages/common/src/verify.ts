// VERIFY: a small, bounded burst of test traffic to the device so both captures show whether the
// path still carries TCP/443 and SNMP (UDP/161). Pure sockets: no shell, no ping binary. ICMP
// needs a raw socket, which node does not offer; TCP and SNMP are what the management path uses.
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { isIPv6 } from "node:net";

export interface VerifyResult {
  ok: boolean;
  tcpTries: number;
  /** Handshake completed, or refused with a RST: either way packets crossed the path both ways. */
  tcpAnswered: number;
  tcpTimeouts: number;
  udpSent: number;
  udpAnswers: number;
}

export interface VerifyOptions {
  tcpPort?: number;
  udpPort?: number;
  tries?: number;
  timeoutMs?: number;
}

// SNMPv2c GetRequest for sysUpTime.0 with community "public": a harmless, standard probe.
const SNMP_GET = Buffer.from("302902010104067075626c6963a01c020400000001020100020100300e300c06082b060102010103000500", "hex");

export async function verifyPath(device: string, o: VerifyOptions = {}): Promise<VerifyResult> {
  const tries = Math.min(o.tries ?? 3, 10);
  const timeoutMs = Math.min(o.timeoutMs ?? 1000, 5000);
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
  r.ok = r.tcpAnswered > 0 || r.udpAnswers > 0;
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
