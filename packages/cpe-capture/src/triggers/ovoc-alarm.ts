// OVOC alarm text as OVOC alarm-forwarding rules (ruleDestType SYSLOG) put it in the syslog MSG:
// "New Alarm - Connection Alarm, Source: ..., Description: Connection Lost, ..., IP Address: 192.0.2.10, ...".
// Fields are found the way trafficCapture v1.0.6 found them (one lazy `Key:(.*?),` search each), so field
// order and extra fields do not matter. Not handled: OVOC's SNMP/mail destinations, localised alarm text.
import { isDeviceAddress } from "@capsync/protocol";

export interface OvocAlarm {
  /** The word before "Alarm -": "New" for raised alarms (the only state the original acted on). */
  state: string;
  /** e.g. "Connection Alarm" */
  alarmName: string;
  description: string;
  source: string | null;
  /** The managed device's address, validated as an IPv4/IPv6 literal. */
  ipAddress: string | null;
  deviceName: string | null;
  tenant: string | null;
  region: string | null;
  deviceType: string | null;
  deviceSerial: string | null;
  deviceDescription: string | null;
}

export type OvocAlarmErrorCode = "not-ovoc-alarm" | "missing-field" | "invalid-field";
export interface OvocAlarmFailure {
  ok: false;
  code: OvocAlarmErrorCode;
  field: string;
  message: string;
}
export type OvocAlarmResult = { ok: true; value: OvocAlarm } | OvocAlarmFailure;

// Callers bound the text (the listener caps message size), and every pattern is a literal key
// followed by one lazy run up to a comma, so matching stays linear.
const HEADER = /(?:^|[^A-Za-z])([A-Z][A-Za-z]*)\s+Alarm\s*-\s*(.*?),/;
const SOURCE = /(?:^|[\s,.])Source:(.*?)(?:,|$)/;
const DESCRIPTION = /,\s*Description:(.*?)(?:,|$)/;
const IP_ADDRESS = /,\s*IP Address:(.*?)(?:,|$)/;
const DEVICE_NAME = /,\s*Device Name:(.*?)(?:,|$)/;
const TENANT = /,\s*Tenant:(.*?)(?:,|$)/;
const REGION = /,\s*Region:(.*?)(?:,|$)/;
const DEVICE_TYPE = /,\s*Device Type:(.*?)(?:,|$)/;
const DEVICE_SERIAL = /,\s*Device Serial:(.*?)(?:,|$)/;
// Free text, last in OVOC's order: everything to the end, like the original's `Device Description:(.*$)`.
const DEVICE_DESCRIPTION = /,\s*Device Description:(.*)$/s;

function field(re: RegExp, s: string): string | null {
  const m = re.exec(s);
  // NULs too: OVOC ends its datagrams with one and callers may hand us the raw frame.
  return m ? m[1]!.replace(/\0+$/, "").trim() : null;
}

/** Cheap test a caller can run before the full parse. */
export function looksLikeOvocAlarm(text: string): boolean {
  return text.includes("Alarm") && HEADER.test(text);
}

/**
 * Parse the OVOC alarm fields out of a syslog MSG (or any text holding one).
 * @example parseOvocAlarm("New Alarm - Connection Alarm, Source: Board#1, Description: Connection Lost, IP Address: 192.0.2.10, Device Type: MSBR")
 *   → { ok: true, value: { state: "New", alarmName: "Connection Alarm", description: "Connection Lost", source: "Board#1",
 *        ipAddress: "192.0.2.10", deviceType: "MSBR", deviceName: null, ... } }
 */
export function parseOvocAlarm(text: string): OvocAlarmResult {
  const header = HEADER.exec(text);
  if (!header) return { ok: false, code: "not-ovoc-alarm", field: "header", message: "no '<State> Alarm - <name>,' header" };
  // Search fields from the comma that ends the header, so "Description:" in a host name cannot count.
  const rest = text.slice(header.index + header[0].length - 1);
  const description = field(DESCRIPTION, rest);
  if (description === null) return { ok: false, code: "missing-field", field: "Description", message: "no 'Description:' field" };
  const ip = field(IP_ADDRESS, rest);
  if (ip !== null && !isDeviceAddress(ip)) {
    return { ok: false, code: "invalid-field", field: "IP Address", message: "'IP Address:' is not an IPv4/IPv6 literal" };
  }
  return {
    ok: true,
    value: {
      state: header[1]!,
      alarmName: header[2]!.trim(),
      description,
      source: field(SOURCE, rest),
      ipAddress: ip,
      deviceName: field(DEVICE_NAME, rest),
      tenant: field(TENANT, rest),
      region: field(REGION, rest),
      deviceType: field(DEVICE_TYPE, rest),
      deviceSerial: field(DEVICE_SERIAL, rest),
      deviceDescription: field(DEVICE_DESCRIPTION, rest),
    },
  };
}

/** acEMSNodeConnectionLostAlarm as raised: "New ... Alarm" with Description "Connection Lost". */
export function isConnectionLost(alarm: OvocAlarm): boolean {
  return alarm.state === "New" && alarm.description.toLowerCase() === "connection lost";
}
