// Cisco IOS / IOS-XE system messages (System Message Guide: "%FACILITY-SEVERITY-MNEMONIC: text") and the
// LINK-3-UPDOWN / LINEPROTO-5-UPDOWN bodies. Prefixes vary with `service sequence-numbers`, `service
// timestamps`, `logging origin-id` and clock sync ('*' / '.'), so everything before '%' is read leniently.
// Not handled: IOS-XR ("RP/0/RSP0/CPU0:"-style locations are kept as origin text), NX-OS "%FAC-SEV-MNEM" variants.

export interface IosxeMessage {
  facility: string;
  severity: number;
  mnemonic: string;
  /** Text after "%FAC-SEV-MNEMONIC:" (trimmed). */
  body: string;
  /** The message counter ("000123:" / "45:") when present. */
  sequence: number | null;
  /** As sent, without the clock flag: "Mar  1 00:01:23.456 UTC", or an uptime like "1w2d". */
  timestamp: string | null;
  /** '*' = clock not authoritative (never synced), '.' = was synced and lost sync; null = synced or unknown. */
  clockFlag: "*" | "." | null;
  /** `logging origin-id` value (host name, IP or string) when present. */
  origin: string | null;
}

export interface IosxeUpdown {
  kind: "link" | "lineproto";
  interface: string;
  /** "down", "up", "administratively down", ... as sent. */
  state: string;
}

export type IosxeErrorCode = "no-mnemonic" | "not-updown";
export interface IosxeFailure {
  ok: false;
  code: IosxeErrorCode;
  field: string;
  message: string;
}
export type IosxeResult<T> = { ok: true; value: T } | IosxeFailure;

// First "%FAC-SEV-MNEMONIC:"; FACILITY and MNEMONIC are upper case with digits/underscores.
const MNEMONIC = /%([A-Z][A-Z0-9_]{0,31})-([0-7])-([A-Z][A-Z0-9_]{0,63})\s*:/;
const TIMESTAMP = /^([*.])?((?:[A-Z][a-z]{2}\s+\d{1,2}(?:\s+\d{4})?\s+\d{1,2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:\s+[A-Za-z]{1,6})?)|(?:\d+[wdhms]\d*[wdhms]?(?:\d+[wdhms])?)|(?:\d{1,2}:\d{2}:\d{2}(?:\.\d{1,6})?))$/;

/**
 * Find and split the IOS system message in `text` (a syslog MSG or the raw line).
 * @example parseIosxeSyslog("45: router1: *Mar  1 00:01:23.456 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet1, changed state to down")
 *   → { ok: true, value: { facility: "LINK", severity: 3, mnemonic: "UPDOWN", body: "Interface GigabitEthernet1, changed state to down",
 *        sequence: 45, timestamp: "Mar  1 00:01:23.456 UTC", clockFlag: "*", origin: "router1" } }
 */
export function parseIosxeSyslog(text: string): IosxeResult<IosxeMessage> {
  const m = MNEMONIC.exec(text);
  if (!m) return { ok: false, code: "no-mnemonic", field: "mnemonic", message: "no '%FACILITY-SEVERITY-MNEMONIC:'" };
  const body = text.slice(m.index + m[0].length).trim();
  let sequence: number | null = null;
  let timestamp: string | null = null;
  let clockFlag: "*" | "." | null = null;
  let origin: string | null = null;
  // The prefix is "field: field: ... : " — timestamps contain ':' but never ": ".
  for (const raw of text.slice(0, m.index).split(/:\s+/)) {
    const f = raw.trim().replace(/:$/, "");
    if (f === "") continue;
    if (sequence === null && timestamp === null && origin === null && /^\d{1,10}$/.test(f)) {
      sequence = Number(f);
      continue;
    }
    const t: RegExpExecArray | null = timestamp === null ? TIMESTAMP.exec(f) : null;
    if (t) {
      clockFlag = (t[1] as "*" | "." | undefined) ?? null;
      timestamp = t[2]!;
      continue;
    }
    if (origin === null && timestamp === null) origin = f;
  }
  return {
    ok: true,
    value: { facility: m[1]!, severity: Number(m[2]), mnemonic: m[3]!, body, sequence, timestamp, clockFlag, origin },
  };
}

// Interface names never contain ',', so `[^,]+` keeps these linear on hostile input.
const LINK_BODY = /^Interface\s+([^,\s][^,]*),\s*changed state to\s+(\S[^\r\n]*)$/;
const LINEPROTO_BODY = /^Line protocol on Interface\s+([^,\s][^,]*),\s*changed state to\s+(\S[^\r\n]*)$/;

/** LINK-*-UPDOWN and LINEPROTO-*-UPDOWN bodies (any severity digit: platforms differ). */
export function parseIosxeUpdown(msg: IosxeMessage): IosxeResult<IosxeUpdown> {
  if (msg.mnemonic !== "UPDOWN" || (msg.facility !== "LINK" && msg.facility !== "LINEPROTO")) {
    return { ok: false, code: "not-updown", field: "mnemonic", message: `${msg.facility}-${msg.mnemonic} is not an UPDOWN message` };
  }
  const kind = msg.facility === "LINK" ? "link" : "lineproto";
  const m = (kind === "link" ? LINK_BODY : LINEPROTO_BODY).exec(msg.body);
  if (!m) return { ok: false, code: "not-updown", field: "body", message: "UPDOWN body is not 'Interface X, changed state to Y'" };
  return { ok: true, value: { kind, interface: m[1]!.trim(), state: m[2]!.trim() } };
}
