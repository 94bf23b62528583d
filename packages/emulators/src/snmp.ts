// The device's SNMP responder: SNMPv2c (community) and, when a user is configured, SNMPv3 USM
// authPriv (snmp-usm.ts) — what the management server's keep-alive poll and VERIFY ask. The codec
// is in snmp-ber.ts. Not handled: GetNext/GetBulk/Set.
import dgram from "node:dgram";
import { isIPv6 } from "node:net";
import { encodeSnmp, parseSnmp, OID_SYS_DESCR, OID_SYS_NAME, OID_SYS_UPTIME, SNMP_PORT, type SnmpPdu, type VarBind } from "./snmp-ber.js";
import { UsmEngine, snmpVersion, type UsmStats, type UsmUser } from "./snmp-usm.js";

export * from "./snmp-ber.js";
export type { UsmUser, UsmStats } from "./snmp-usm.js";

export interface SnmpAgentOptions {
  address: string;
  /** Default 161; 0 = any free port. */
  port?: number;
  /** Answered as sysUpTime.0 (in hundredths of a second). */
  uptimeMs: () => number;
  sysDescr?: string;
  sysName?: string;
  /** Answer SNMPv3 for this authPriv user (AES-128); without it v3 datagrams are dropped. */
  v3?: UsmUser;
  /** SnmpEngineID; default 80 00 13 8b 04 "capsync-emulator". */
  engineId?: Buffer;
}

export interface SnmpAgentHandle {
  readonly address: string;
  readonly port: number;
  readonly engineId: Buffer | undefined;
  /** requests/answers: v2c and authenticated v3 GETs; usm: the USM reports counted (sent when reportable). */
  stats(): { requests: number; answers: number; dropped: number; usm: UsmStats | undefined };
  close(): Promise<void>;
}

/** A read-only responder for the scalar system OIDs (v2c, and v3 USM authPriv); anything else is noSuchObject. */
export async function startSnmpAgent(o: SnmpAgentOptions): Promise<SnmpAgentHandle> {
  const sock = dgram.createSocket(isIPv6(o.address) ? "udp6" : "udp4");
  const st = { requests: 0, answers: 0, dropped: 0 };
  const usm = o.v3 ? new UsmEngine(o.v3, o.engineId) : undefined;
  const answerPdu = (req: SnmpPdu): SnmpPdu => {
    st.requests++;
    const varbinds = req.varbinds.slice(0, 32).map(({ oid }): VarBind => {
      if (oid === OID_SYS_UPTIME) return { oid, value: { type: "timeticks", value: Math.floor(o.uptimeMs() / 10) } };
      if (oid === OID_SYS_DESCR && o.sysDescr !== undefined) return { oid, value: { type: "octets", value: Buffer.from(o.sysDescr) } };
      if (oid === OID_SYS_NAME && o.sysName !== undefined) return { oid, value: { type: "octets", value: Buffer.from(o.sysName) } };
      return { oid, value: { type: "noSuchObject" } };
    });
    return { ...req, pdu: "response", errorStatus: 0, errorIndex: 0, varbinds };
  };
  const reply = (answer: Buffer, rinfo: dgram.RemoteInfo, counted: boolean) =>
    sock.send(answer, rinfo.port, rinfo.address, (err) => {
      if (!err && counted) st.answers++;
    });
  sock.on("message", (buf, rinfo) => {
    if (snmpVersion(buf) === 3) {
      const before = st.requests;
      const answer = usm?.handle(buf, answerPdu);
      if (answer) reply(answer, rinfo, st.requests > before);
      else if (st.requests === before) st.dropped++;
      return;
    }
    const parsed = parseSnmp(buf);
    if (!parsed.ok || parsed.value.pdu !== "get" || parsed.value.varbinds.length > 32) {
      st.dropped++;
      return;
    }
    reply(encodeSnmp({ ...parsed.value, ...answerPdu(parsed.value) }), rinfo, true);
  });
  sock.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(o.port ?? SNMP_PORT, o.address, () => {
      sock.off("error", reject);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    address: o.address,
    port: sock.address().port,
    engineId: usm?.engineId,
    stats: () => ({ ...st, usm: usm ? { ...usm.stats } : undefined }),
    close: () => (closing ??= new Promise<void>((r) => sock.close(() => r()))),
  };
}
