// VERIFY's SNMPv3 probe, as the original sends it (`snmpget -v 3 -l authPriv -u <user> -a SHA -x AES
// <device> sysDescr.0`): authenticated, encrypted GETs of sysDescr.0 and sysUpTime.0 through the
// net-snmp library. A wrong key shows as the agent's USM report (Unknown User Name, Wrong Digest),
// so the result tells "path down" from "path up, credentials wrong". Keys never reach a message.
import { getCiphers } from "node:crypto";
import { isIP } from "node:net";
import snmp from "net-snmp";

export const SNMPV3_AUTH_PROTOCOLS = ["md5", "sha", "sha224", "sha256", "sha384", "sha512"] as const;
export const SNMPV3_PRIV_PROTOCOLS = ["des", "aes", "aes256b", "aes256r"] as const;
export type Snmpv3AuthProtocol = (typeof SNMPV3_AUTH_PROTOCOLS)[number];
export type Snmpv3PrivProtocol = (typeof SNMPV3_PRIV_PROTOCOLS)[number];

/** An authPriv user, keys resolved. RFC 3414 passwords are at least 8 characters. */
export interface Snmpv3Credentials {
  user: string;
  authProtocol: Snmpv3AuthProtocol;
  authKey: string;
  privProtocol: Snmpv3PrivProtocol;
  privKey: string;
}

export interface Snmpv3Options {
  port?: number;
  /** GETs sent, one after the other; default 3. */
  tries?: number;
  /** Per GET; default 1000 ms. */
  timeoutMs?: number;
}

export interface Snmpv3Result {
  /** At least one authenticated, decrypted answer. */
  ok: boolean;
  sent: number;
  answered: number;
  /** The last failure: "Request timed out", "Unknown User Name", "Wrong Digest …". */
  error?: string;
  sysDescr?: string;
  /** sysUpTime.0 in hundredths of a second. */
  sysUpTime?: number;
}

export const OID_SYS_DESCR = "1.3.6.1.2.1.1.1.0";
export const OID_SYS_UPTIME = "1.3.6.1.2.1.1.3.0";

/** Why these credentials cannot be used here, or undefined. Never names a key. */
export function snmpv3CredentialsProblem(c: Snmpv3Credentials): string | undefined {
  if (c.user === "" || c.user.length > 32) return "user must be 1..32 characters";
  if (!(SNMPV3_AUTH_PROTOCOLS as readonly string[]).includes(c.authProtocol)) return `authProtocol must be one of ${SNMPV3_AUTH_PROTOCOLS.join("|")}`;
  if (!(SNMPV3_PRIV_PROTOCOLS as readonly string[]).includes(c.privProtocol)) return `privProtocol must be one of ${SNMPV3_PRIV_PROTOCOLS.join("|")}`;
  if (c.authKey.length < 8) return "authKey must be at least 8 characters (RFC 3414)";
  if (c.privKey.length < 8) return "privKey must be at least 8 characters (RFC 3414)";
  if (c.privProtocol === "des" && !desAvailable()) return "privProtocol des needs single-DES, which this Node.js's OpenSSL 3 disables (start node with --openssl-legacy-provider), or use aes";
  return undefined;
}

export function desAvailable(): boolean {
  return getCiphers().includes("des-cbc");
}

const AUTH: Record<Snmpv3AuthProtocol, snmp.AuthProtocols> = {
  md5: snmp.AuthProtocols.md5,
  sha: snmp.AuthProtocols.sha,
  sha224: snmp.AuthProtocols.sha224,
  sha256: snmp.AuthProtocols.sha256,
  sha384: snmp.AuthProtocols.sha384,
  sha512: snmp.AuthProtocols.sha512,
};
const PRIV: Record<Snmpv3PrivProtocol, snmp.PrivProtocols> = {
  des: snmp.PrivProtocols.des,
  aes: snmp.PrivProtocols.aes,
  aes256b: snmp.PrivProtocols.aes256b,
  aes256r: snmp.PrivProtocols.aes256r,
};

/** Never throws: every failure is in `error`, with the keys scrubbed from it. */
export async function snmpv3Get(address: string, c: Snmpv3Credentials, o: Snmpv3Options = {}): Promise<Snmpv3Result> {
  const r: Snmpv3Result = { ok: false, sent: 0, answered: 0 };
  const family = isIP(address);
  const problem = family === 0 ? "not an IP address" : snmpv3CredentialsProblem(c);
  if (problem) return { ...r, error: problem };
  const tries = Math.min(Math.max(1, o.tries ?? 3), 10);
  const timeoutMs = Math.min(Math.max(100, o.timeoutMs ?? 1000), 10_000);
  let session: snmp.Session;
  try {
    session = snmp.createV3Session(
      address,
      { name: c.user, level: snmp.SecurityLevel.authPriv, authProtocol: AUTH[c.authProtocol], authKey: c.authKey, privProtocol: PRIV[c.privProtocol], privKey: c.privKey },
      { port: o.port ?? 161, retries: 0, timeout: timeoutMs, transport: family === 6 ? "udp6" : "udp4" },
    );
  } catch (e) {
    return { ...r, error: scrub((e as Error).message, c) };
  }
  session.on("error", () => undefined);
  try {
    for (let i = 0; i < tries; i++) {
      r.sent++;
      const outcome = await new Promise<{ varbinds?: snmp.Varbind[]; error?: string }>((resolve) => {
        try {
          session.get([OID_SYS_DESCR, OID_SYS_UPTIME], (err, varbinds) => resolve(err ? { error: err.message } : { varbinds: varbinds ?? [] }));
        } catch (e) {
          resolve({ error: (e as Error).message });
        }
      });
      if (outcome.error !== undefined) {
        r.error = scrub(outcome.error, c).slice(0, 200);
        // A USM report is the agent's final word on these credentials: asking again changes nothing.
        if (!/timed out/i.test(outcome.error)) break;
        continue;
      }
      r.answered++;
      for (const vb of outcome.varbinds ?? []) {
        if (snmp.isVarbindError(vb)) continue;
        if (vb.oid === OID_SYS_DESCR && Buffer.isBuffer(vb.value)) r.sysDescr = vb.value.toString("utf8").slice(0, 255);
        if (vb.oid === OID_SYS_UPTIME && typeof vb.value === "number") r.sysUpTime = vb.value;
      }
    }
  } finally {
    try {
      session.close();
    } catch {
      // Already closed by a socket error: nothing left to release.
    }
  }
  r.ok = r.answered > 0;
  if (r.ok) delete r.error;
  return r;
}

function scrub(text: string, c: Snmpv3Credentials): string {
  let out = text;
  for (const s of [c.authKey, c.privKey]) if (s) out = out.split(s).join("***");
  return out;
}
