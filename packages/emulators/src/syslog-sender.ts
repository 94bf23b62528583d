// A real syslog sender (UDP per RFC 5426; TCP per RFC 6587 with octet counting or LF framing) and the
// messages OVOC's alarm forwarding (ruleDestType SYSLOG) emits for acEMSNodeConnectionLostAlarm, in the
// RFC 3164 shape trafficCapture's regexes were written against and an RFC 5424 variant.
// Not emulated: OVOC's severity remapping beyond the documented table, TLS transport (RFC 5425).
import dgram from "node:dgram";
import net from "node:net";
import { CapsyncError } from "@capsync/protocol";

export type SyslogTransport = "udp" | "tcp";
export type SyslogFraming = "octet-counting" | "newline";

export interface SyslogSenderOptions {
  host: string;
  port: number;
  transport?: SyslogTransport;
  /** TCP only; default octet-counting (RFC 6587 §3.4.1). */
  framing?: SyslogFraming;
  /** Local address to send from (a test can pose as a device with 127.0.0.x). */
  localAddress?: string;
}

/** One connected sender; `send` resolves when the bytes were handed to the kernel. */
export class SyslogSender {
  private constructor(
    private readonly udp: dgram.Socket | null,
    private readonly tcp: net.Socket | null,
    readonly framing: SyslogFraming | null,
    /** Where the messages leave from (the listener sees this as the sender). */
    readonly local: { address: string; port: number },
  ) {}

  static async open(opts: SyslogSenderOptions): Promise<SyslogSender> {
    const transport = opts.transport ?? "udp";
    if (transport === "udp") {
      const sock = dgram.createSocket(net.isIPv6(opts.host) ? "udp6" : "udp4");
      await new Promise<void>((resolve, reject) => {
        sock.once("error", reject);
        sock.bind({ port: 0, ...(opts.localAddress ? { address: opts.localAddress } : {}) }, () => {
          sock.connect(opts.port, opts.host, () => {
            sock.off("error", reject);
            resolve();
          });
        });
      }).catch((err: Error) => {
        sock.close();
        throw new CapsyncError("syslog-send", `cannot open UDP to ${opts.host}:${opts.port}: ${err.message}`, { cause: err });
      });
      const a = sock.address();
      return new SyslogSender(sock, null, null, { address: a.address, port: a.port });
    }
    const sock = net.connect({ host: opts.host, port: opts.port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.once("connect", () => {
        sock.off("error", reject);
        resolve();
      });
    }).catch((err: Error) => {
      sock.destroy();
      throw new CapsyncError("syslog-send", `cannot connect TCP to ${opts.host}:${opts.port}: ${err.message}`, { cause: err });
    });
    sock.setNoDelay(true);
    sock.on("error", () => {
      // Reported by the next write's callback.
    });
    return new SyslogSender(null, sock, opts.framing ?? "octet-counting", {
      address: sock.localAddress ?? "",
      port: sock.localPort ?? 0,
    });
  }

  async send(message: string | Uint8Array): Promise<void> {
    const bytes = typeof message === "string" ? Buffer.from(message, "utf8") : Buffer.from(message);
    if (this.udp) {
      const u = this.udp;
      return new Promise((resolve, reject) => u.send(bytes, (err) => (err ? reject(err) : resolve())));
    }
    const frame = frameForTcp(bytes, this.framing ?? "octet-counting");
    const t = this.tcp!;
    return new Promise((resolve, reject) => t.write(frame, (err) => (err ? reject(err) : resolve())));
  }

  async close(): Promise<void> {
    if (this.udp) {
      const u = this.udp;
      await new Promise<void>((resolve) => u.close(() => resolve()));
    }
    if (this.tcp && !this.tcp.destroyed) {
      const t = this.tcp;
      await new Promise<void>((resolve) => {
        // A peer that never closes its side must not hang the caller.
        const timer = setTimeout(() => t.destroy(), 2000);
        t.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
        t.end();
      });
    }
  }
}

/** RFC 6587 framing of one message: "LEN SP MSG" or "MSG LF" (an LF inside MSG cannot be LF-framed). */
export function frameForTcp(message: Uint8Array, framing: SyslogFraming): Buffer {
  const bytes = Buffer.from(message.buffer, message.byteOffset, message.length);
  if (framing === "octet-counting") return Buffer.concat([Buffer.from(`${bytes.length} `, "ascii"), bytes]);
  if (bytes.includes(0x0a)) throw new CapsyncError("syslog-framing", "a message containing LF cannot use newline framing");
  return Buffer.concat([bytes, Buffer.from("\n")]);
}

// ---------------------------------------------------------------------------------------------
// Message formats

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "Mmm dd hh:mm:ss", day space-padded (RFC 3164 §4.1.2), in UTC so tests are deterministic. */
export function bsdTimestamp(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, " ")} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

export interface Rfc3164Fields {
  facility?: number;
  severity?: number;
  timestamp?: Date;
  /** Omitted (or null): no HOSTNAME field, as many devices and OVOC send. */
  hostname?: string | null;
  /** `tag: ` before the content; "" gives OVOC's bare ": " */
  tag?: string | null;
  pid?: string | number;
  message: string;
}

export function formatRfc3164(f: Rfc3164Fields): string {
  const pri = (f.facility ?? 1) * 8 + (f.severity ?? 5);
  let out = `<${pri}>${bsdTimestamp(f.timestamp ?? new Date())} `;
  if (f.hostname) out += `${f.hostname} `;
  if (f.tag !== undefined && f.tag !== null) out += `${f.tag}${f.pid !== undefined ? `[${f.pid}]` : ""}: `;
  return out + f.message;
}

export interface Rfc5424Fields {
  facility?: number;
  severity?: number;
  timestamp?: Date | null;
  hostname?: string | null;
  appName?: string | null;
  procId?: string | null;
  msgId?: string | null;
  structuredData?: Array<{ id: string; params?: Array<[string, string]> }>;
  message?: string;
  /** Prefix MSG with the UTF-8 BOM (MSG-UTF8, §6.4); default true. */
  bom?: boolean;
}

function escapeParam(v: string): string {
  return v.replace(/[\\"\]]/g, (c) => `\\${c}`);
}

export function formatRfc5424(f: Rfc5424Fields): Buffer {
  const pri = (f.facility ?? 1) * 8 + (f.severity ?? 5);
  const nil = (v: string | null | undefined) => (v === undefined || v === null || v === "" ? "-" : v);
  const ts = f.timestamp === null ? "-" : (f.timestamp ?? new Date()).toISOString();
  const sd =
    f.structuredData && f.structuredData.length > 0
      ? f.structuredData.map((e) => `[${e.id}${(e.params ?? []).map(([k, v]) => ` ${k}="${escapeParam(v)}"`).join("")}]`).join("")
      : "-";
  const head = `<${pri}>1 ${ts} ${nil(f.hostname)} ${nil(f.appName)} ${nil(f.procId)} ${nil(f.msgId)} ${sd}`;
  if (f.message === undefined) return Buffer.from(head, "utf8");
  const bom = (f.bom ?? true) ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0);
  return Buffer.concat([Buffer.from(`${head} `, "utf8"), bom, Buffer.from(f.message, "utf8")]);
}

// ---------------------------------------------------------------------------------------------
// OVOC alarm forwarding

/** OVOC severity → syslog severity, from OVOC's "Forwarding Alarms - Destination Syslog" table. */
const OVOC_SYSLOG_SEVERITY = { critical: 1, major: 2, minor: 3, warning: 4, indeterminate: 6, clear: 5 } as const;
export type OvocSeverity = keyof typeof OVOC_SYSLOG_SEVERITY;

export interface OvocAlarmOptions {
  deviceIp: string;
  deviceName?: string;
  format?: "rfc3164" | "rfc5424";
  timestamp?: Date;
  /** The OVOC server's name in the syslog header; omitted in the RFC 3164 shape by default. */
  ovocHost?: string;
  source?: string;
  tenant?: string;
  region?: string;
  deviceType?: string;
  deviceSerial?: string;
  deviceDescription?: string;
  severity?: OvocSeverity;
  /** Syslog facility (default 16, local0). */
  facility?: number;
  /** OVOC ends the datagram with NUL (the original's regex expects `\x00`); default true for RFC 3164. */
  trailingNul?: boolean;
}

export interface OvocAlarmText {
  state?: string;
  alarmName: string;
  description: string;
  source?: string;
  deviceName?: string;
  tenant?: string;
  region?: string;
  ipAddress: string;
  deviceType?: string;
  deviceSerial?: string;
  deviceDescription?: string;
}

/**
 * The alarm text in the field order trafficCapture's ovoc_capture_app parsed:
 * `New Alarm - <name>, Source: .., Description: .., Device Name: .., Tenant: .., Region: .., IP Address: .., Device Type: .., Device Serial: .., Device Description: ..`
 */
export function ovocAlarmText(a: OvocAlarmText): string {
  return [
    `${a.state ?? "New"} Alarm - ${a.alarmName}`,
    `Source: ${a.source ?? "Board#1"}`,
    `Description: ${a.description}`,
    `Device Name: ${a.deviceName ?? ""}`,
    `Tenant: ${a.tenant ?? "Default"}`,
    `Region: ${a.region ?? "Default"}`,
    `IP Address: ${a.ipAddress}`,
    `Device Type: ${a.deviceType ?? "MSBR"}`,
    `Device Serial: ${a.deviceSerial ?? ""}`,
    `Device Description: ${a.deviceDescription ?? ""}`,
  ].join(", ");
}

function ovocMessage(o: OvocAlarmOptions, description: string, defaultSeverity: OvocSeverity): Buffer {
  const text = ovocAlarmText({
    alarmName: "Connection Alarm",
    description,
    ipAddress: o.deviceIp,
    deviceName: o.deviceName ?? `device-${o.deviceIp}`,
    ...(o.source !== undefined ? { source: o.source } : {}),
    ...(o.tenant !== undefined ? { tenant: o.tenant } : {}),
    ...(o.region !== undefined ? { region: o.region } : {}),
    ...(o.deviceType !== undefined ? { deviceType: o.deviceType } : {}),
    ...(o.deviceSerial !== undefined ? { deviceSerial: o.deviceSerial } : {}),
    ...(o.deviceDescription !== undefined ? { deviceDescription: o.deviceDescription } : {}),
  });
  const severity = OVOC_SYSLOG_SEVERITY[o.severity ?? defaultSeverity];
  const facility = o.facility ?? 16;
  const timestamp = o.timestamp ?? new Date();
  const format = o.format ?? "rfc3164";
  const nul = o.trailingNul ?? format === "rfc3164";
  const body =
    format === "rfc3164"
      ? // `<PRI>Mmm dd hh:mm:ss : New Alarm - ...`: what `<\d+>(.*?)\s*:\s*New Alarm` in the original expects.
        Buffer.from(formatRfc3164({ facility, severity, timestamp, hostname: o.ovocHost ?? null, tag: "", message: text }), "utf8")
      : formatRfc5424({ facility, severity, timestamp, hostname: o.ovocHost ?? null, appName: "OVOC", message: text });
  return nul ? Buffer.concat([body, Buffer.from([0])]) : body;
}

/** acEMSNodeConnectionLostAlarm as OVOC forwards it (OVOC severity critical → syslog alert). */
export function ovocConnectionLostAlarm(o: OvocAlarmOptions): Buffer {
  return ovocMessage(o, "Connection Lost", "critical");
}

/** The same alarm when the device is back: logged by capsync, never a stop. */
export function ovocConnectionEstablished(o: OvocAlarmOptions): Buffer {
  return ovocMessage(o, "Connection established", "clear");
}
