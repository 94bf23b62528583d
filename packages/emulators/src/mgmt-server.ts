// Management server emulator (AudioCodes OVOC, as far as capsync meets it): keep-alive polling of
// the managed devices (SNMPv2c GET sysUpTime.0 over UDP 161, once a second) and OVOC's alarm
// forwarding (ruleDestType SYSLOG) of acEMSNodeConnectionLostAlarm: "Connection Lost" when a device
// has not answered for `lostAfterMs`, once per loss, and "Connection established" when it answers again.
// Not emulated yet: the OVOC REST API (topology, /ovoc/v1/alarms/fwdRules CRUD), other alarms, SNMP traps.
//
// Three separable parts, so the REST emulator can drive the same pieces:
//   DevicePoller     — who answers, who went silent; emits ConnectionEvents, sends no alarms.
//   AlarmForwarder   — OVOC forwarding rules (fwdRules shape) → syslog datagrams; knows nothing of polling.
//   ManagementServer — wires the poller's events into the forwarder and keeps a log of what was sent.
import dgram from "node:dgram";
import { isIPv6 } from "node:net";
import { performance } from "node:perf_hooks";
import { formatEndpoint } from "@capsync/protocol";
import { getRequest, parseSnmp, OID_SYS_UPTIME, SNMP_PORT } from "./snmp.js";
import { SyslogSender, ovocConnectionEstablished, ovocConnectionLostAlarm, type OvocAlarmOptions } from "./syslog-sender.js";

/** The OVOC alarm name forwarding rules filter on (both the loss and its clearing). */
export const CONNECTION_ALARM_NAME = "acEMSNodeConnectionLostAlarm";

export interface ManagedDevice {
  /** OVOC's device id (what alarmDevicesFilter lists). */
  id: number;
  address: string;
  name: string;
  /** Shown in the alarm's "Device Type:" field, e.g. "MSBR". */
  deviceType: string;
}

export interface ConnectionEvent {
  kind: "lost" | "established";
  device: ManagedDevice;
  at: Date;
  /** How long the device had been silent (lost) or was lost (established). */
  silentMs: number;
}

// ---------------------------------------------------------------------------------------------
// Poller

export interface PollerOptions {
  devices: ManagedDevice[];
  /** Default 1000 ms. */
  intervalMs?: number;
  /** Silence before "lost"; default 3000 ms. */
  lostAfterMs?: number;
  /** Local address to poll from (default: any). */
  bind?: string;
  /** Devices' SNMP port (default 161). */
  port?: number;
  community?: string;
  onEvent: (e: ConnectionEvent) => void;
}

export type DeviceLink = "unknown" | "up" | "lost";

export interface DevicePollState {
  link: DeviceLink;
  polls: number;
  answers: number;
  lastAnswerAt: Date | undefined;
}

interface PollEntry {
  device: ManagedDevice;
  link: DeviceLink;
  polls: number;
  answers: number;
  /** performance.now() of the last answer, or of the poller's start before the first one. */
  lastHeard: number;
  lastAnswerAt: Date | undefined;
  lostAt: number;
}

/** Polls every device each interval; a device silent for lostAfterMs is "lost" until it answers. */
export class DevicePoller {
  private readonly entries = new Map<string, PollEntry>();
  /** request-id → device address; ids are never reused within 2^31 polls. */
  private readonly outstanding = new Map<number, string>();
  private nextId = 1;
  private timer: NodeJS.Timeout | undefined;
  private checker: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly o: Required<Omit<PollerOptions, "bind">> & { bind: string | undefined },
    private readonly sock: dgram.Socket,
  ) {
    const now = performance.now();
    for (const device of o.devices) this.entries.set(device.address, { device, link: "unknown", polls: 0, answers: 0, lastHeard: now, lastAnswerAt: undefined, lostAt: 0 });
    sock.on("message", (buf) => this.onAnswer(buf));
  }

  static async open(opts: PollerOptions): Promise<DevicePoller> {
    const o = { intervalMs: 1000, lostAfterMs: 3000, port: SNMP_PORT, community: "public", ...opts, bind: opts.bind };
    if (!(o.intervalMs >= 10) || !(o.lostAfterMs >= o.intervalMs)) throw new RangeError("intervalMs must be >= 10 and lostAfterMs >= intervalMs");
    const v6 = o.bind ? isIPv6(o.bind) : o.devices.some((d) => isIPv6(d.address));
    const sock = dgram.createSocket(v6 ? "udp6" : "udp4");
    // Unreachable devices produce ICMP errors on the socket; they are silence, not failures.
    sock.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.bind({ port: 0, ...(o.bind ? { address: o.bind } : {}) }, () => {
        sock.off("error", reject);
        resolve();
      });
    });
    const poller = new DevicePoller(o, sock);
    poller.tick();
    poller.timer = setInterval(() => poller.tick(), o.intervalMs);
    // Silence is checked more often than polls go out, so "lost" fires lostAfterMs after the last
    // answer (within ~100 ms), not at the next poll after that.
    poller.checker = setInterval(() => poller.checkSilence(), Math.max(10, Math.min(100, o.intervalMs / 4)));
    return poller;
  }

  /** Where the polls leave from. */
  local(): { address: string; port: number } {
    const a = this.sock.address();
    return { address: a.address, port: a.port };
  }

  state(address: string): DevicePollState | undefined {
    const e = this.entries.get(address);
    return e && { link: e.link, polls: e.polls, answers: e.answers, lastAnswerAt: e.lastAnswerAt };
  }

  private checkSilence(): void {
    if (this.closed) return;
    const now = performance.now();
    for (const e of this.entries.values()) {
      if (e.link !== "lost" && now - e.lastHeard >= this.o.lostAfterMs) {
        e.link = "lost";
        e.lostAt = now;
        this.o.onEvent({ kind: "lost", device: e.device, at: new Date(), silentMs: Math.round(now - e.lastHeard) });
      }
    }
  }

  private tick(): void {
    if (this.closed) return;
    this.checkSilence();
    for (const e of this.entries.values()) {
      const id = this.nextId;
      this.nextId = this.nextId >= 0x7fffffff ? 1 : this.nextId + 1;
      this.outstanding.set(id, e.device.address);
      e.polls++;
      this.sock.send(getRequest(id, [OID_SYS_UPTIME], this.o.community), this.o.port, e.device.address, () => undefined);
    }
    // Answers older than the loss window no longer matter; keep the map bounded.
    const keep = this.entries.size * Math.ceil(this.o.lostAfterMs / this.o.intervalMs + 2);
    for (const id of this.outstanding.keys()) {
      if (this.outstanding.size <= keep) break;
      this.outstanding.delete(id);
    }
  }

  private onAnswer(buf: Buffer): void {
    const p = parseSnmp(buf);
    if (!p.ok || p.value.pdu !== "response") return;
    const address = this.outstanding.get(p.value.requestId);
    if (address === undefined) return;
    this.outstanding.delete(p.value.requestId);
    const e = this.entries.get(address);
    if (!e) return;
    const now = performance.now();
    e.answers++;
    e.lastHeard = now;
    e.lastAnswerAt = new Date();
    const was = e.link;
    e.link = "up";
    if (was === "lost") this.o.onEvent({ kind: "established", device: e.device, at: new Date(), silentMs: Math.round(now - e.lostAt) });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    clearInterval(this.checker);
    await new Promise<void>((r) => this.sock.close(() => r()));
  }
}

// ---------------------------------------------------------------------------------------------
// Alarm forwarding

/** One OVOC alarm forwarding rule, in the shape of /ovoc/v1/alarms/fwdRules (SYSLOG destination). */
export interface SyslogForwardingRule {
  id: number;
  name: string;
  ruleDestType: "SYSLOG";
  destSyslog: { syslogServerIP: string; syslogServerPort: number };
  /** Empty: every alarm. */
  alarmNamesFilter: string[];
  /** OVOC device ids; empty: every device. */
  alarmDevicesFilter: number[];
}

export interface ForwardedAlarm {
  kind: ConnectionEvent["kind"];
  device: string;
  ruleId: number;
  /** "host:port" the datagram went to. */
  to: string;
  sentAt: Date;
  silentMs: number;
  error?: string;
}

export interface AlarmForwarderOptions {
  /** Local address the syslog datagrams leave from (default: any). */
  bind?: string;
  format?: "rfc3164" | "rfc5424";
  /** The server's name in RFC 5424 headers. */
  ovocHost?: string;
}

export class AlarmForwarder {
  private readonly rules = new Map<number, SyslogForwardingRule>();
  private readonly senders = new Map<string, Promise<SyslogSender>>();
  private nextRuleId = 1;

  constructor(private readonly o: AlarmForwarderOptions = {}) {}

  listRules(): SyslogForwardingRule[] {
    return [...this.rules.values()].map((r) => structuredClone(r));
  }

  addRule(rule: Omit<SyslogForwardingRule, "id" | "ruleDestType"> & { id?: number }): SyslogForwardingRule {
    const id = rule.id ?? this.nextRuleId;
    if (this.rules.has(id)) throw new RangeError(`forwarding rule ${id} exists`);
    this.nextRuleId = Math.max(this.nextRuleId, id + 1);
    const full: SyslogForwardingRule = { ...structuredClone(rule), id, ruleDestType: "SYSLOG" };
    this.rules.set(id, full);
    return structuredClone(full);
  }

  removeRule(id: number): boolean {
    return this.rules.delete(id);
  }

  /** Sends the event's alarm to every matching rule's destination; failures are recorded, not thrown. */
  async forward(e: ConnectionEvent): Promise<ForwardedAlarm[]> {
    const matching = [...this.rules.values()].filter(
      (r) => (r.alarmNamesFilter.length === 0 || r.alarmNamesFilter.includes(CONNECTION_ALARM_NAME)) && (r.alarmDevicesFilter.length === 0 || r.alarmDevicesFilter.includes(e.device.id)),
    );
    const alarm: OvocAlarmOptions = {
      deviceIp: e.device.address,
      deviceName: e.device.name,
      deviceType: e.device.deviceType,
      timestamp: e.at,
      format: this.o.format ?? "rfc3164",
      ...(this.o.ovocHost ? { ovocHost: this.o.ovocHost } : {}),
    };
    const bytes = e.kind === "lost" ? ovocConnectionLostAlarm(alarm) : ovocConnectionEstablished(alarm);
    return Promise.all(
      matching.map(async (r): Promise<ForwardedAlarm> => {
        const { syslogServerIP: host, syslogServerPort: port } = r.destSyslog;
        const base = { kind: e.kind, device: e.device.address, ruleId: r.id, to: formatEndpoint(host, port), silentMs: e.silentMs };
        try {
          const sender = await this.sender(host, port);
          // Stamped as the datagram is handed over, so the receiver never sees it "before" it was sent.
          const sentAt = new Date();
          await sender.send(bytes);
          return { ...base, sentAt };
        } catch (err) {
          this.senders.delete(`${host}|${port}`);
          return { ...base, sentAt: new Date(), error: (err as Error).message };
        }
      }),
    );
  }

  private sender(host: string, port: number): Promise<SyslogSender> {
    const key = `${host}|${port}`;
    let s = this.senders.get(key);
    if (!s) {
      s = SyslogSender.open({ host, port, transport: "udp", ...(this.o.bind ? { localAddress: this.o.bind } : {}) });
      this.senders.set(key, s);
      s.catch(() => this.senders.delete(key));
    }
    return s;
  }

  async close(): Promise<void> {
    const all = [...this.senders.values()];
    this.senders.clear();
    await Promise.all(all.map((p) => p.then((s) => s.close(), () => undefined)));
  }
}

// ---------------------------------------------------------------------------------------------

export interface ManagementServerOptions {
  devices: Array<{ address: string; name?: string; deviceType?: string }>;
  /** Local address for polls and syslog (default: any). */
  bind?: string;
  poll?: Omit<PollerOptions, "devices" | "onEvent" | "bind">;
  /** Forwarding destinations; each becomes one rule for every device and the connection alarm. */
  syslog?: Array<{ host: string; port: number }>;
  format?: AlarmForwarderOptions["format"];
  ovocHost?: string;
  /** Every poller event, before forwarding. */
  onEvent?: (e: ConnectionEvent) => void;
  /** Every alarm sent (or failed), one per matching rule. */
  onAlarm?: (a: ForwardedAlarm) => void;
}

export class ManagementServer {
  /** What was forwarded, oldest first (the last 1000). */
  readonly alarms: ForwardedAlarm[] = [];
  private pending = new Set<Promise<unknown>>();

  private constructor(
    readonly devices: readonly ManagedDevice[],
    readonly poller: DevicePoller,
    readonly forwarder: AlarmForwarder,
  ) {}

  static async start(o: ManagementServerOptions): Promise<ManagementServer> {
    const devices: ManagedDevice[] = o.devices.map((d, i) => ({ id: i + 1, address: d.address, name: d.name ?? `device-${d.address}`, deviceType: d.deviceType ?? "MSBR" }));
    const forwarder = new AlarmForwarder({ ...(o.bind ? { bind: o.bind } : {}), ...(o.format ? { format: o.format } : {}), ...(o.ovocHost ? { ovocHost: o.ovocHost } : {}) });
    for (const [i, dest] of (o.syslog ?? []).entries()) {
      forwarder.addRule({ name: `syslog-${i + 1}`, destSyslog: { syslogServerIP: dest.host, syslogServerPort: dest.port }, alarmNamesFilter: [CONNECTION_ALARM_NAME], alarmDevicesFilter: [] });
    }
    let server: ManagementServer | undefined;
    const early: ConnectionEvent[] = [];
    const poller = await DevicePoller.open({
      ...o.poll,
      devices,
      ...(o.bind ? { bind: o.bind } : {}),
      onEvent: (e) => (server ? server.onEvent(e, o) : early.push(e)),
    });
    server = new ManagementServer(devices, poller, forwarder);
    for (const e of early) server.onEvent(e, o);
    return server;
  }

  private onEvent(e: ConnectionEvent, o: ManagementServerOptions): void {
    o.onEvent?.(e);
    const p = this.forwarder.forward(e).then((sent) => {
      for (const a of sent) {
        this.alarms.push(a);
        if (this.alarms.length > 1000) this.alarms.shift();
        o.onAlarm?.(a);
      }
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async close(): Promise<void> {
    await this.poller.close();
    await Promise.allSettled([...this.pending]);
    await this.forwarder.close();
  }
}
