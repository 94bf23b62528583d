// The agent's VERIFY probe settings from its flags and environment: ICMP echo count, and the SNMPv3
// authPriv user with its keys from CAPSYNC_SNMPV3_AUTH_KEY / CAPSYNC_SNMPV3_PRIV_KEY or a 0600
// file holding those two lines (systemd EnvironmentFile syntax). Keys never come from argv, which
// any local user can read in the process list, and no message ever contains one.
import { readSecretFile, snmpv3CredentialsProblem, SNMPV3_AUTH_PROTOCOLS, SNMPV3_PRIV_PROTOCOLS, type Snmpv3Credentials, type VerifyOptions } from "@capsync/common";

export const SNMPV3_AUTH_ENV = "CAPSYNC_SNMPV3_AUTH_KEY";
export const SNMPV3_PRIV_ENV = "CAPSYNC_SNMPV3_PRIV_KEY";

export interface AgentVerifyFlags {
  snmpv3User?: string;
  snmpv3Auth: string;
  snmpv3Priv: string;
  snmpv3Credentials?: string;
  icmpCount: number;
}

export type AgentVerify = { ok: true; options: VerifyOptions; secrets: string[]; summary: string } | { ok: false; message: string };

/** The file: `CAPSYNC_SNMPV3_AUTH_KEY=…` and `CAPSYNC_SNMPV3_PRIV_KEY=…` lines; `#` comments and blank lines ignored. */
export function loadSnmpv3Keys(path: string): { authKey: string; privKey: string } {
  const text = readSecretFile(path, "SNMPv3 credentials file", "utf8", (m) => new Error(m));
  const keys: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === "" || t.startsWith("#")) return;
    const eq = t.indexOf("=");
    const name = eq > 0 ? t.slice(0, eq).trim() : "";
    if (name !== SNMPV3_AUTH_ENV && name !== SNMPV3_PRIV_ENV) throw new Error(`SNMPv3 credentials file ${path}: line ${i + 1}: expected ${SNMPV3_AUTH_ENV}=… or ${SNMPV3_PRIV_ENV}=…`);
    keys[name] = unquote(t.slice(eq + 1).trim());
  });
  const authKey = keys[SNMPV3_AUTH_ENV];
  const privKey = keys[SNMPV3_PRIV_ENV];
  if (!authKey || !privKey) throw new Error(`SNMPv3 credentials file ${path}: needs both ${SNMPV3_AUTH_ENV} and ${SNMPV3_PRIV_ENV}`);
  return { authKey, privKey };
}

function unquote(v: string): string {
  return v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0] ? v.slice(1, -1) : v;
}

/** Checks the flags and reads the keys; the error names the flag or variable at fault. */
export function agentVerifyOptions(f: AgentVerifyFlags, env: NodeJS.ProcessEnv = process.env): AgentVerify {
  const icmp = f.icmpCount === 0 ? (false as const) : { count: f.icmpCount };
  const icmpText = icmp === false ? "icmp off" : `icmp ${f.icmpCount} echo(es)`;
  if (f.snmpv3User === undefined) {
    if (f.snmpv3Credentials) return { ok: false, message: "--snmpv3-credentials only applies with --snmpv3-user" };
    return { ok: true, options: { icmp }, secrets: [], summary: `${icmpText}, snmpv3 off (no --snmpv3-user)` };
  }
  const authProtocol = f.snmpv3Auth.toLowerCase().replace(/^sha-?1$/, "sha");
  const privProtocol = f.snmpv3Priv.toLowerCase().replace(/^aes-?128$/, "aes");
  if (!(SNMPV3_AUTH_PROTOCOLS as readonly string[]).includes(authProtocol)) return { ok: false, message: `--snmpv3-auth must be one of ${SNMPV3_AUTH_PROTOCOLS.join("|")}, got '${f.snmpv3Auth}'` };
  if (!(SNMPV3_PRIV_PROTOCOLS as readonly string[]).includes(privProtocol)) return { ok: false, message: `--snmpv3-priv must be one of ${SNMPV3_PRIV_PROTOCOLS.join("|")}, got '${f.snmpv3Priv}'` };
  let keys: { authKey: string; privKey: string };
  if (f.snmpv3Credentials) {
    try {
      keys = loadSnmpv3Keys(f.snmpv3Credentials);
    } catch (e) {
      return { ok: false, message: `--snmpv3-credentials ${(e as Error).message}` };
    }
  } else {
    const authKey = env[SNMPV3_AUTH_ENV];
    const privKey = env[SNMPV3_PRIV_ENV];
    if (!authKey || !privKey) return { ok: false, message: `--snmpv3-user needs its keys: set ${SNMPV3_AUTH_ENV} and ${SNMPV3_PRIV_ENV}, or --snmpv3-credentials <file> (mode 0600)` };
    keys = { authKey, privKey };
  }
  const creds = { user: f.snmpv3User, authProtocol, privProtocol, ...keys } as Snmpv3Credentials;
  const problem = snmpv3CredentialsProblem(creds);
  if (problem) return { ok: false, message: `SNMPv3: ${problem}` };
  return { ok: true, options: { icmp, snmpv3: creds }, secrets: [keys.authKey, keys.privKey], summary: `${icmpText}, snmpv3 user ${creds.user} (${authProtocol}/${privProtocol}, authPriv)` };
}
