// OVOC (AudioCodes One Voice Operations Center) north-bound REST emulator, as far as trafficCapture's
// ovoc_capture_app and capsync's agent use it: HTTPS + Basic auth, `GET /ovoc/v1/topology/devices?detail=1&filter=(ipAddress='<ip>')`,
// `GET|POST /ovoc/v1/alarms/fwdRules`, `GET|PUT|DELETE /ovoc/v1/alarms/fwdRules/<id>`, and the alarm
// forwarding itself: raiseConnectionLost/raiseConnectionEstablished send acEMSNodeConnectionLostAlarm as
// syslog (UDP, syslog-sender.ts) to every SYSLOG rule that matches — no rule, no syslog.
// Not emulated: sessions/tokens, paging, filters other than one `(field='value')`, destinations other
// than SYSLOG, tenants/regions/sites as filters (accepted and stored, never matched), other alarms.
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isIP, type Socket } from "node:net";
import { SyslogSender, ovocConnectionEstablished, ovocConnectionLostAlarm, type OvocAlarmOptions } from "./syslog-sender.js";
import { basicCredentials, listen, readBody, sameCredentials, sendJson } from "./http.js";
import type { RequestFault } from "./faults.js";
import { sharedTlsCertificate, type TlsMaterial } from "./tls.js";

/** The alarm name a rule's alarmNamesFilter lists for "Connection Lost" (and its clearing). */
export const OVOC_CONNECTION_ALARM = "acEMSNodeConnectionLostAlarm";
const OVOC_DEVICES_PATH = "/ovoc/v1/topology/devices";
const OVOC_FWD_RULES_PATH = "/ovoc/v1/alarms/fwdRules";

export interface OvocDeviceSpec {
  ipAddress: string;
  /** Default `device-<ip>`. */
  name?: string;
  /** Default: 1, 2, ... in list order (after the highest id given). */
  id?: number;
  /** The alarm's "Device Type:" field (default "MSBR"). */
  deviceType?: string;
  productType?: string;
  serialNumber?: string;
  tenantId?: number;
  regionId?: number;
}

/** One managed device as `GET /ovoc/v1/topology/devices?detail=1` lists it (the original reads only `id`). */
export interface OvocDevice {
  id: number;
  name: string;
  ipAddress: string;
  fqdn: string | null;
  tenantId: number;
  regionId: number;
  productType: string;
  serialNumber: string;
  deviceType: string;
  managed: boolean;
}

/** One alarm forwarding rule, in the shape the original POSTs (create_fwd_rule) and PUTs (update_fwd_rule). */
export interface OvocFwdRule {
  id: number;
  name: string;
  ruleDestType: "SYSLOG";
  forwardType: "ALLOW" | "PREVENT";
  tenantId: number;
  destSyslog: { syslogServerIP: string; syslogServerPort: number };
  /** null or []: every alarm. */
  alarmNamesFilter: string[] | null;
  /** OVOC device ids; null or []: every device. */
  alarmDevicesFilter: number[] | null;
  alarmTenantsFilter: number[] | null;
  alarmRegionsFilter: number[] | null;
  alarmEndpointsFilter: number[] | null;
  alarmSitesFilter: number[] | null;
}

export type OvocRuleInput = Omit<Partial<OvocFwdRule>, "id" | "destSyslog"> & { name: string; destSyslog: OvocFwdRule["destSyslog"] };

export interface OvocForwardedAlarm {
  kind: "lost" | "established";
  device: string;
  ruleId: number;
  ruleName: string;
  to: { host: string; port: number };
  /** The exact datagram sent. */
  bytes: Buffer;
  sentAt: Date;
  error?: string;
}

export interface OvocRequestRecord {
  method: string;
  /** Path and query as received (percent-encoding kept). */
  url: string;
  status: number;
  user: string | null;
}

export type OvocFaultKind = "unavailable" | "server-error" | "timeout" | "forbidden";
/** unavailable 503, server-error 500, forbidden 403 (an account below Operator), timeout: never answers. */
export type OvocFault = RequestFault<OvocFaultKind, "devices" | "fwdRules">;

export interface OvocEmulatorOptions {
  username: string;
  password: string;
  /** Default 127.0.0.1. */
  address?: string;
  /** 0 (default): any free port. */
  port?: number;
  devices?: OvocDeviceSpec[];
  /** Rules present before anyone calls the API (an operator's own rules). */
  rules?: OvocRuleInput[];
  /** Own certificate instead of the shared emulator one. */
  tls?: TlsMaterial;
  /** Local address the forwarded syslog datagrams leave from (default: any). */
  syslogBind?: string;
  /** Default rfc3164 (the shape OVOC forwards and trafficCapture parsed). */
  format?: OvocAlarmOptions["format"];
  /** The server's name in the syslog header (default: none, as OVOC sends RFC 3164). */
  ovocHost?: string;
  /** Delay before every answer. */
  latencyMs?: number;
}

export interface OvocEmulator {
  readonly address: string;
  readonly port: number;
  /** e.g. https://127.0.0.1:40123 */
  readonly baseUrl: string;
  /** PEM; a client's CA for this server (self-signed). */
  readonly certificate: string;
  devices(): OvocDevice[];
  addDevice(d: OvocDeviceSpec): OvocDevice;
  rules(): OvocFwdRule[];
  /** Every request answered (or held), oldest first; the last 1000. */
  readonly requests: readonly OvocRequestRecord[];
  /** Every alarm forwarded, oldest first; the last 1000. */
  readonly alarms: readonly OvocForwardedAlarm[];
  /** "Connection Lost" for the device, to every matching rule. Resolves when handed to the kernel. */
  raiseConnectionLost(deviceIp: string, opts?: { at?: Date }): Promise<OvocForwardedAlarm[]>;
  /** "Connection established" (the clearing alarm of the same name). */
  raiseConnectionEstablished(deviceIp: string, opts?: { at?: Date }): Promise<OvocForwardedAlarm[]>;
  setFault(f: OvocFault | undefined): void;
  /** Closes the HTTPS server (dropping open connections) and the syslog senders. Safe twice. */
  close(): Promise<void>;
}

const DESCRIPTIONS = {
  auth: "Authentication failed: wrong user name or password",
  forbidden: "Operation not permitted for the user's security level",
  notFound: "Resource not found",
  unavailable: "Service temporarily unavailable",
  serverError: "Internal server error",
} as const;

const MAX_BODY = 64 * 1024;
const KEEP = 1000;

/** `(field='value')` → { field, value }; OVOC's filter grammar is larger, capsync and the original use this one form. */
export function parseOvocFilter(filter: string): { field: string; value: string } | undefined {
  const m = /^\(([A-Za-z][A-Za-z0-9]*)\s*=\s*'([^']*)'\)$/.exec(filter.trim());
  return m ? { field: m[1]!, value: m[2]! } : undefined;
}

// --- rule body validation --------------------------------------------------------------------------
type Check<T> = { ok: true; value: T } | { ok: false; description: string };

const idList = (v: unknown, field: string): Check<number[] | null> => {
  if (v === null) return { ok: true, value: null };
  if (!Array.isArray(v) || v.some((x) => !Number.isInteger(x))) return { ok: false, description: `${field} must be an array of integer ids or null` };
  return { ok: true, value: [...(v as number[])] };
};

/** Validates a POST body (all required fields) or a PUT body (`partial`: only what is present). */
function validateRule(body: unknown, partial: boolean): Check<Partial<Omit<OvocFwdRule, "id">>> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { ok: false, description: "request body must be a JSON object" };
  const b = body as Record<string, unknown>;
  const out: Partial<Omit<OvocFwdRule, "id">> = {};
  const has = (k: string) => Object.prototype.hasOwnProperty.call(b, k);
  if (has("name") || !partial) {
    if (typeof b.name !== "string" || b.name.trim() === "" || b.name.length > 100) return { ok: false, description: "name is required: 1 to 100 characters" };
    out.name = b.name;
  }
  if (has("ruleDestType") || !partial) {
    if (b.ruleDestType !== "SYSLOG") return { ok: false, description: `ruleDestType '${String(b.ruleDestType)}' is not supported here; expected SYSLOG` };
    out.ruleDestType = "SYSLOG";
  }
  if (has("destSyslog") || !partial) {
    const d = b.destSyslog as Record<string, unknown> | undefined;
    if (typeof d !== "object" || d === null) return { ok: false, description: "destSyslog is required: { syslogServerIP, syslogServerPort }" };
    if (typeof d.syslogServerIP !== "string" || isIP(d.syslogServerIP) === 0) return { ok: false, description: "destSyslog.syslogServerIP must be an IPv4 or IPv6 address" };
    const port = d.syslogServerPort;
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) return { ok: false, description: "destSyslog.syslogServerPort must be an integer from 1 to 65535" };
    out.destSyslog = { syslogServerIP: d.syslogServerIP, syslogServerPort: port as number };
  }
  if (has("forwardType")) {
    if (b.forwardType !== "ALLOW" && b.forwardType !== "PREVENT") return { ok: false, description: "forwardType must be ALLOW or PREVENT" };
    out.forwardType = b.forwardType;
  }
  if (has("tenantId")) {
    if (!Number.isInteger(b.tenantId)) return { ok: false, description: "tenantId must be an integer" };
    out.tenantId = b.tenantId as number;
  }
  if (has("alarmNamesFilter")) {
    const v = b.alarmNamesFilter;
    if (v !== null && (!Array.isArray(v) || v.some((x) => typeof x !== "string" || x === ""))) return { ok: false, description: "alarmNamesFilter must be an array of alarm names or null" };
    out.alarmNamesFilter = v === null ? null : [...(v as string[])];
  }
  for (const k of ["alarmDevicesFilter", "alarmTenantsFilter", "alarmRegionsFilter", "alarmEndpointsFilter", "alarmSitesFilter"] as const) {
    if (!has(k)) continue;
    const r = idList(b[k], k);
    if (!r.ok) return r;
    out[k] = r.value;
  }
  return { ok: true, value: out };
}

// ---------------------------------------------------------------------------------------------------

export async function startOvocEmulator(opts: OvocEmulatorOptions): Promise<OvocEmulator> {
  const tls = opts.tls ?? (await sharedTlsCertificate());
  const address = opts.address ?? "127.0.0.1";
  const devices = new Map<number, OvocDevice>();
  const rules = new Map<number, OvocFwdRule>();
  const requests: OvocRequestRecord[] = [];
  const alarms: OvocForwardedAlarm[] = [];
  const senders = new Map<string, Promise<SyslogSender>>();
  const held = new Set<Socket>();
  let nextDeviceId = 1;
  let nextRuleId = 1;
  let fault: OvocFault | undefined;
  let closed = false;

  const addDevice = (d: OvocDeviceSpec): OvocDevice => {
    if (isIP(d.ipAddress) === 0) throw new RangeError(`device ipAddress '${d.ipAddress}' is not an IP address`);
    const id = d.id ?? nextDeviceId;
    if (devices.has(id)) throw new RangeError(`device id ${id} exists`);
    nextDeviceId = Math.max(nextDeviceId, id + 1);
    const dev: OvocDevice = {
      id,
      name: d.name ?? `device-${d.ipAddress}`,
      ipAddress: d.ipAddress,
      fqdn: null,
      tenantId: d.tenantId ?? 1,
      regionId: d.regionId ?? 1,
      productType: d.productType ?? "Mediant 500 MSBR",
      serialNumber: d.serialNumber ?? `SN${String(id).padStart(8, "0")}`,
      deviceType: d.deviceType ?? "MSBR",
      managed: true,
    };
    devices.set(id, dev);
    return dev;
  };
  const addRule = (fields: Partial<Omit<OvocFwdRule, "id">>): OvocFwdRule => {
    const rule: OvocFwdRule = {
      id: nextRuleId++,
      name: fields.name ?? "",
      ruleDestType: "SYSLOG",
      forwardType: fields.forwardType ?? "ALLOW",
      tenantId: fields.tenantId ?? -1,
      destSyslog: fields.destSyslog ?? { syslogServerIP: "127.0.0.1", syslogServerPort: 514 },
      alarmNamesFilter: fields.alarmNamesFilter ?? null,
      alarmDevicesFilter: fields.alarmDevicesFilter ?? null,
      alarmTenantsFilter: fields.alarmTenantsFilter ?? null,
      alarmRegionsFilter: fields.alarmRegionsFilter ?? null,
      alarmEndpointsFilter: fields.alarmEndpointsFilter ?? null,
      alarmSitesFilter: fields.alarmSitesFilter ?? null,
    };
    rules.set(rule.id, rule);
    return rule;
  };
  for (const d of opts.devices ?? []) addDevice(d);
  for (const r of opts.rules ?? []) {
    const v = validateRule({ ruleDestType: "SYSLOG", ...r }, false);
    if (!v.ok) throw new RangeError(`rule '${r.name}': ${v.description}`);
    addRule(v.value);
  }

  const record = (r: OvocRequestRecord) => {
    requests.push(r);
    if (requests.length > KEEP) requests.shift();
  };
  const takeFault = (target: "devices" | "fwdRules"): OvocFault | undefined => {
    const f = fault;
    if (!f || (f.on && f.on !== "any" && f.on !== target)) return undefined;
    if (f.times !== undefined) {
      f.times--;
      if (f.times <= 0) fault = undefined;
    }
    return f;
  };
  const duplicateName = (name: string, exceptId?: number) => [...rules.values()].some((r) => r.name === name && r.id !== exceptId);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (opts.latencyMs) await new Promise((r) => setTimeout(r, opts.latencyMs));
    if (closed) return void req.socket.destroy();
    const rawUrl = req.url ?? "/";
    const method = req.method ?? "GET";
    const credentials = basicCredentials(req);
    const answer = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      record({ method, url: rawUrl, status, user: credentials?.user ?? null });
      sendJson(res, status, body, extra);
    };
    if (!sameCredentials(credentials, opts.username, opts.password)) {
      return answer(401, { description: DESCRIPTIONS.auth }, { "www-authenticate": 'Basic realm="OVOC"' });
    }
    const url = new URL(rawUrl, "https://ovoc");
    const path = url.pathname.replace(/\/+$/, "");
    const target = path === OVOC_DEVICES_PATH ? "devices" : path === OVOC_FWD_RULES_PATH || path.startsWith(`${OVOC_FWD_RULES_PATH}/`) ? "fwdRules" : undefined;
    if (!target) return answer(404, { description: DESCRIPTIONS.notFound });
    const f = takeFault(target);
    if (f) {
      if (f.kind === "timeout") {
        // Holds the request until the client gives up or the server closes.
        record({ method, url: rawUrl, status: 0, user: credentials?.user ?? null });
        held.add(req.socket);
        req.socket.once("close", () => held.delete(req.socket));
        return;
      }
      const [status, description] =
        f.kind === "unavailable" ? [503, DESCRIPTIONS.unavailable] : f.kind === "forbidden" ? [403, DESCRIPTIONS.forbidden] : [500, DESCRIPTIONS.serverError];
      return answer(status, { description });
    }

    const filterText = url.searchParams.get("filter");
    const filter = filterText === null ? undefined : parseOvocFilter(filterText);
    if (filterText !== null && !filter) return answer(400, { description: `bad filter '${filterText.slice(0, 100)}': expected (field='value')` });

    if (target === "devices") {
      if (method !== "GET") return answer(405, { description: `Method ${method} not allowed` }, { allow: "GET" });
      let list = [...devices.values()];
      if (filter) {
        if (!["ipAddress", "fqdn", "name", "id"].includes(filter.field)) return answer(400, { description: `unknown filter field '${filter.field}'` });
        list = list.filter((d) => String(d[filter.field as "ipAddress" | "fqdn" | "name" | "id"] ?? "") === filter.value);
      }
      // An empty result is a 404 without a description: trafficCapture's log shows its generic "Failed to
      // get ..." text for a missing rule, the branch for a non-200 answer that has no `description`.
      if (list.length === 0) return answer(404, {});
      const detail = url.searchParams.get("detail") === "1";
      return answer(200, { devices: list.map((d) => (detail ? { ...d } : { id: d.id, name: d.name, ipAddress: d.ipAddress })) });
    }

    // fwdRules
    const idText = path.slice(OVOC_FWD_RULES_PATH.length + 1);
    if (idText === "") {
      if (method === "GET") {
        let list = [...rules.values()];
        if (filter) {
          if (!["name", "id"].includes(filter.field)) return answer(400, { description: `unknown filter field '${filter.field}'` });
          list = list.filter((r) => String(r[filter.field as "name" | "id"]) === filter.value);
        }
        if (list.length === 0) return answer(404, {});
        return answer(200, { fwdRules: list.map((r) => structuredClone(r)) });
      }
      if (method !== "POST") return answer(405, { description: `Method ${method} not allowed` }, { allow: "GET, POST" });
      const body = await parseJsonBody(req);
      if (!body.ok) return answer(400, { description: body.description });
      const v = validateRule(body.value, false);
      if (!v.ok) return answer(400, { description: v.description });
      if (duplicateName(v.value.name!)) return answer(409, { description: `a forwarding rule named '${v.value.name!}' already exists` });
      const unknown = (v.value.alarmDevicesFilter ?? []).find((id) => !devices.has(id));
      if (unknown !== undefined) return answer(400, { description: `alarmDevicesFilter: no device with id ${unknown}` });
      const rule = addRule(v.value);
      return answer(201, structuredClone(rule));
    }
    if (!/^[1-9]\d{0,9}$/.test(idText)) return answer(404, { description: `no forwarding rule '${idText.slice(0, 40)}'` });
    const id = Number(idText);
    const rule = rules.get(id);
    if (!["GET", "PUT", "DELETE"].includes(method)) return answer(405, { description: `Method ${method} not allowed` }, { allow: "GET, PUT, DELETE" });
    if (!rule) return answer(404, { description: `no forwarding rule with id ${id}` });
    if (method === "GET") return answer(200, structuredClone(rule));
    if (method === "DELETE") {
      rules.delete(id);
      return answer(200, { id });
    }
    const body = await parseJsonBody(req);
    if (!body.ok) return answer(400, { description: body.description });
    const v = validateRule(body.value, true);
    if (!v.ok) return answer(400, { description: v.description });
    if (v.value.name !== undefined && duplicateName(v.value.name, id)) return answer(409, { description: `a forwarding rule named '${v.value.name}' already exists` });
    const unknown = (v.value.alarmDevicesFilter ?? []).find((d) => !devices.has(d));
    if (unknown !== undefined) return answer(400, { description: `alarmDevicesFilter: no device with id ${unknown}` });
    Object.assign(rule, v.value);
    return answer(200, structuredClone(rule));
  }

  async function parseJsonBody(req: IncomingMessage): Promise<Check<unknown>> {
    if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) return { ok: false, description: "Content-Type must be application/json" };
    const raw = await readBody(req, MAX_BODY);
    if (raw === undefined) return { ok: false, description: `request body larger than ${MAX_BODY} bytes` };
    try {
      return { ok: true, value: JSON.parse(raw.toString("utf8")) as unknown };
    } catch {
      return { ok: false, description: "request body is not valid JSON" };
    }
  }

  const server: HttpsServer = createHttpsServer({ key: tls.key, cert: tls.cert, keepAliveTimeout: 5000 }, (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { description: DESCRIPTIONS.serverError });
      else res.destroy();
    });
  });
  server.on("tlsClientError", () => {});
  const port = await listen(server, address, opts.port ?? 0);

  const sender = (host: string, p: number): Promise<SyslogSender> => {
    const key = `${host}|${p}`;
    let s = senders.get(key);
    if (!s) {
      s = SyslogSender.open({ host, port: p, transport: "udp", ...(opts.syslogBind ? { localAddress: opts.syslogBind } : {}) });
      senders.set(key, s);
      s.catch(() => senders.delete(key));
    }
    return s;
  };

  async function raise(kind: "lost" | "established", deviceIp: string, at: Date): Promise<OvocForwardedAlarm[]> {
    if (closed) throw new Error("OVOC emulator is closed");
    const dev = [...devices.values()].find((d) => d.ipAddress === deviceIp);
    // A rule forwards when it allows, names this alarm (or every alarm) and this device (or every device).
    // An unknown device can only match rules without a device filter.
    const matching = [...rules.values()].filter(
      (r) =>
        r.forwardType === "ALLOW" &&
        (r.alarmNamesFilter === null || r.alarmNamesFilter.length === 0 || r.alarmNamesFilter.includes(OVOC_CONNECTION_ALARM)) &&
        (r.alarmDevicesFilter === null || r.alarmDevicesFilter.length === 0 || (dev !== undefined && r.alarmDevicesFilter.includes(dev.id))),
    );
    const alarm: OvocAlarmOptions = {
      deviceIp,
      deviceName: dev?.name ?? `device-${deviceIp}`,
      deviceType: dev?.deviceType ?? "MSBR",
      timestamp: at,
      format: opts.format ?? "rfc3164",
      ...(opts.ovocHost ? { ovocHost: opts.ovocHost } : {}),
    };
    const bytes = kind === "lost" ? ovocConnectionLostAlarm(alarm) : ovocConnectionEstablished(alarm);
    const sent = await Promise.all(
      matching.map(async (r): Promise<OvocForwardedAlarm> => {
        const { syslogServerIP: host, syslogServerPort: p } = r.destSyslog;
        const base = { kind, device: deviceIp, ruleId: r.id, ruleName: r.name, to: { host, port: p }, bytes };
        try {
          await (await sender(host, p)).send(bytes);
          return { ...base, sentAt: new Date() };
        } catch (err) {
          senders.delete(`${host}|${p}`);
          return { ...base, sentAt: new Date(), error: (err as Error).message };
        }
      }),
    );
    for (const a of sent) {
      alarms.push(a);
      if (alarms.length > KEEP) alarms.shift();
    }
    return sent;
  }

  return {
    address,
    port,
    baseUrl: `https://${address.includes(":") ? `[${address}]` : address}:${port}`,
    certificate: tls.cert,
    devices: () => [...devices.values()].map((d) => ({ ...d })),
    addDevice: (d) => ({ ...addDevice(d) }),
    rules: () => [...rules.values()].map((r) => structuredClone(r)),
    requests,
    alarms,
    raiseConnectionLost: (ip, o) => raise("lost", ip, o?.at ?? new Date()),
    raiseConnectionEstablished: (ip, o) => raise("established", ip, o?.at ?? new Date()),
    setFault: (f) => {
      fault = f && { ...f };
    },
    close: async () => {
      if (closed) return;
      closed = true;
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      const all = [...senders.values()];
      senders.clear();
      await Promise.all(all.map((p) => p.then((s) => s.close(), () => undefined)));
    },
  };
}
