// The SNMPv3 keys of `verify.snmpv3` read from their { env } / { file } references just before the
// run, like the device passwords (secrets.ts), and the probe settings verifyPath takes. Messages
// name the reference, never the value; the values go to the redaction list.
import type { Snmpv3Credentials, VerifyOptions } from "@capsync/common";
import { ConfigFileError } from "./loader.js";
import { resolveSecret, type ResolveOptions } from "./secrets.js";
import { ICMP_CONFIG_DEFAULTS, type VerifyProbesConfig } from "./verify.js";

/** RFC 3414 §11.2: agents refuse shorter passwords. */
const MIN_KEY_CHARS = 8;

export interface ResolvedVerify {
  /** For verifyPath; the SNMPv3 keys are values here, never in a log or the manifest. */
  options: Pick<VerifyOptions, "icmp" | "snmpv3" | "snmpv3Port">;
  /** The key values, for redaction. */
  secrets: string[];
  warnings: string[];
}

/**
 * The probe settings with the SNMPv3 keys read (like the device passwords, just before the run).
 * @throws ConfigFileError naming `verify.snmpv3.authKey` / `privKey` and the variable or file, never the value
 */
export async function resolveVerifyProbes(p: VerifyProbesConfig | undefined, opts: ResolveOptions = {}): Promise<ResolvedVerify> {
  const icmp = p?.icmp === false ? false : { ...(p?.icmp ?? ICMP_CONFIG_DEFAULTS) };
  if (!p?.snmpv3) return { options: { icmp }, secrets: [], warnings: [] };
  const s = p.snmpv3;
  const auth = await resolveSecret(s.authKey, "verify.snmpv3.authKey", opts);
  const priv = await resolveSecret(s.privKey, "verify.snmpv3.privKey", opts);
  for (const [label, r] of [["verify.snmpv3.authKey", auth], ["verify.snmpv3.privKey", priv]] as const) {
    if (r.value.length < MIN_KEY_CHARS) throw new ConfigFileError([{ file: undefined, line: 0, path: label, message: `must be at least ${MIN_KEY_CHARS} characters (RFC 3414)` }]);
  }
  const snmpv3: Snmpv3Credentials = { user: s.user, authProtocol: s.authProtocol, authKey: auth.value, privProtocol: s.privProtocol, privKey: priv.value };
  return { options: { icmp, snmpv3, snmpv3Port: s.port }, secrets: [auth.value, priv.value], warnings: [...auth.warnings, ...priv.warnings] };
}
