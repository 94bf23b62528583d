// REGISTER's side effect on an AudioCodes OVOC management server (north-bound REST API over HTTPS,
// Basic auth): find the device (`GET /ovoc/v1/topology/devices?detail=1&filter=(ipAddress='<ip>')`), then
// create or update the SYSLOG forwarding rule `capsync-<device>` for acEMSNodeConnectionLostAlarm to the
// orchestrator (`/ovoc/v1/alarms/fwdRules`, the bodies trafficCapture's ovoc_capture_app sent), and delete
// it again on unregister. Only rules named `capsync-<device>` are ever read back, changed or deleted.
// Not handled: OVOC sessions/tokens, FQDN devices (the agent's devices are IP literals), tenant scoping.
import { isIPv6 } from "node:net";
import axios, { type AxiosInstance } from "axios";
import { CapsyncError, formatEndpoint, redact } from "@capsync/protocol";
import { TLS_TRUST_CODES, basicClientSettings, basicSecrets, httpsAgent, readSecretFile, requestWithin, transportErrorCode, type HttpsTrust } from "@capsync/common";
import type { Registrar } from "./registrar.js";

export const OVOC_ALARM_NAME = "acEMSNodeConnectionLostAlarm";
const OVOC_RULE_PREFIX = "capsync-";

/** The one rule name the agent owns for a device; every other rule on the server is left alone. */
export function ruleName(device: string): string {
  return `${OVOC_RULE_PREFIX}${device}`;
}

export interface OvocCredentials {
  username: string;
  password: string;
}

/** What a winston Logger offers; the agent passes its own. */
export interface RegistrarLog {
  info(message: string): unknown;
  warn(message: string): unknown;
  debug(message: string): unknown;
}

export interface OvocRegistrarOptions {
  /** https://host[:port] of the OVOC server (no path, no credentials). */
  url: string;
  credentials: OvocCredentials;
  /** `ca` is PEM text (the CLI reads --ovoc-ca). */
  tls: HttpsTrust;
  /** Bound on each HTTP exchange (default 5000 ms). */
  timeoutMs?: number;
  log?: RegistrarLog;
}

export class OvocCredentialsError extends CapsyncError {
  constructor(message: string) {
    super("ovoc-credentials", message);
  }
}

/**
 * The credentials file: one line `user:password` (the password may hold further colons), owned by the
 * running user, not readable by group or others. Errors never echo the file's content.
 */
export function loadOvocCredentials(path: string): OvocCredentials {
  const text = readSecretFile(path, "OVOC credentials file", "utf8", (m) => new OvocCredentialsError(m));
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length !== 1) throw new OvocCredentialsError(`OVOC credentials file ${path}: expected exactly one line 'user:password', found ${lines.length}`);
  return splitCredentials(lines[0]!.trim(), `OVOC credentials file ${path}`);
}

/** CAPSYNC_OVOC_USER / CAPSYNC_OVOC_PASSWORD, or undefined when neither is set. */
export function ovocCredentialsFromEnv(env: NodeJS.ProcessEnv = process.env): OvocCredentials | undefined {
  const username = env.CAPSYNC_OVOC_USER;
  const password = env.CAPSYNC_OVOC_PASSWORD;
  if (username === undefined && password === undefined) return undefined;
  if (!username || !password) throw new OvocCredentialsError("set both CAPSYNC_OVOC_USER and CAPSYNC_OVOC_PASSWORD (or use --ovoc-credentials <file>)");
  if (/[:\r\n]/.test(username)) throw new OvocCredentialsError("CAPSYNC_OVOC_USER must not contain ':' or a line break");
  return { username, password };
}

function splitCredentials(line: string, where: string): OvocCredentials {
  const i = line.indexOf(":");
  if (i <= 0 || i === line.length - 1) throw new OvocCredentialsError(`${where}: expected 'user:password' (both non-empty)`);
  return { username: line.slice(0, i), password: line.slice(i + 1) };
}

/** Checks --ovoc-url: https, a host, an optional port, nothing else (credentials never go on the command line). */
export function parseOvocUrl(text: string): { ok: true; url: string } | { ok: false; message: string } {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return { ok: false, message: `expected https://host[:port], got '${text}'` };
  }
  if (u.username || u.password) return { ok: false, message: "must not contain credentials: use --ovoc-credentials <file> or CAPSYNC_OVOC_USER/CAPSYNC_OVOC_PASSWORD" };
  if (u.protocol !== "https:") return { ok: false, message: `must be https:// (the API uses Basic auth), got '${u.protocol}//'` };
  if ((u.pathname !== "/" && u.pathname !== "") || u.search || u.hash) return { ok: false, message: `expected https://host[:port] without a path or query, got '${text}'` };
  return { ok: true, url: `https://${u.host}` };
}

// The original's URL quoting (urllib.quote with safe='/:?&=()'): the filter's quotes go as %27.
function quote(s: string): string {
  return s.replace(/[^A-Za-z0-9_.\-~/:?&=()]/g, (c) =>
    [...Buffer.from(c, "utf8")].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join(""),
  );
}

/** A failed step, as REGISTER's 503 reason/msg. */
class Failure extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

interface Answer {
  status: number;
  body: unknown;
  description: string | undefined;
}

interface RuleRecord {
  id: number;
  name: string;
  destSyslog?: { syslogServerIP?: unknown; syslogServerPort?: unknown };
  alarmNamesFilter?: unknown;
  alarmDevicesFilter?: unknown;
  ruleDestType?: unknown;
  forwardType?: unknown;
}

export class OvocRegistrar implements Registrar {
  readonly url: string;
  private readonly http: AxiosInstance;
  private readonly secrets: string[];
  private readonly timeoutMs: number;
  private readonly log: RegistrarLog | undefined;
  /** Per device: the tail of its operation chain (register/unregister never overlap for one device). */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Per device: the register in flight or queued, so a resent REGISTER joins it instead of repeating it. */
  private readonly pending = new Map<string, { dest: string; promise: Promise<RegisterResult> }>();
  /** Rule ids this agent registered (a hint; unregister also finds its rule by name after a restart). */
  private readonly ruleIds = new Map<string, number>();

  constructor(opts: OvocRegistrarOptions) {
    const parsed = parseOvocUrl(opts.url);
    if (!parsed.ok) throw new CapsyncError("config", `--ovoc-url ${parsed.message}`);
    this.url = parsed.url;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.log = opts.log;
    const { username, password } = opts.credentials;
    this.secrets = basicSecrets(username, password);
    // No proxy among the settings: an HTTPS_PROXY in the service environment must not see the Basic credentials.
    this.http = axios.create(
      basicClientSettings({
        baseURL: this.url,
        agent: httpsAgent(opts.tls, { keepAlive: false }),
        username,
        password,
        headers: { Accept: "application/json", "Cache-Control": "no-cache" },
      }),
    );
  }

  register(device: string, from: { address: string; port: number }): Promise<RegisterResult> {
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; OVOC gets the plain IPv4 address.
    const orchestrator = { address: from.address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, "$1"), port: from.port };
    const dest = formatEndpoint(orchestrator.address, orchestrator.port);
    const same = this.pending.get(device);
    if (same && same.dest === dest) return same.promise;
    const promise = this.enqueue(device, () => this.doRegister(device, orchestrator)).then(
      (r) => r,
      (e: unknown): RegisterResult =>
        e instanceof Failure ? { ok: false, reason: e.reason, message: this.scrub(e.message) } : { ok: false, reason: "ovoc-error", message: this.scrub(String((e as Error)?.message ?? e)) },
    );
    const entry = { dest, promise };
    this.pending.set(device, entry);
    void promise.finally(() => {
      if (this.pending.get(device) === entry) this.pending.delete(device);
    });
    return promise;
  }

  /** Deletes the device's `capsync-<device>` rule if there is one (none is success). Rejects with a message free of secrets. */
  unregister(device: string): Promise<void> {
    return this.enqueue(device, () => this.doUnregister(device)).catch((e: unknown) => {
      throw new CapsyncError(e instanceof Failure ? e.reason : "ovoc-error", `could not delete OVOC rule ${ruleName(device)}: ${this.scrub(e instanceof Error ? e.message : String(e))}`);
    });
  }

  private enqueue<T>(device: string, op: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(device) ?? Promise.resolve();
    const run = prev.then(op, op);
    const tail = run.catch(() => undefined);
    this.chains.set(device, tail);
    void tail.then(() => {
      if (this.chains.get(device) === tail) this.chains.delete(device);
    });
    return run;
  }

  private async doRegister(device: string, orchestrator: { address: string; port: number }): Promise<RegisterResult> {
    const name = ruleName(device);
    const deviceId = await this.findDevice(device);
    const want = {
      destSyslog: { syslogServerIP: orchestrator.address, syslogServerPort: orchestrator.port },
      alarmTenantsFilter: [],
      alarmRegionsFilter: [],
      alarmEndpointsFilter: [],
      alarmSitesFilter: [],
      alarmDevicesFilter: [deviceId],
      alarmNamesFilter: [OVOC_ALARM_NAME],
    };
    const existing = await this.findRule(name);
    let id: number;
    let action: string;
    if (existing) {
      id = existing.id;
      if (ruleMatches(existing, want.destSyslog, deviceId)) {
        action = "already in place";
      } else {
        // The PUT body of trafficCapture's update_fwd_rule: destination and filters, never the name.
        const a = await this.call("PUT", `/ovoc/v1/alarms/fwdRules/${id}`, want);
        if (a.status !== 200) throw this.refused(`update rule ${name} (id ${id})`, a);
        action = "updated";
      }
    } else {
      const a = await this.call("POST", "/ovoc/v1/alarms/fwdRules", { ruleDestType: "SYSLOG", forwardType: "ALLOW", name, tenantId: -1, ...want });
      if (a.status !== 201) throw this.refused(`create rule ${name}`, a);
      const newId = (a.body as { id?: unknown } | undefined)?.id;
      if (typeof newId !== "number" || !Number.isInteger(newId)) throw new Failure("ovoc-error", `OVOC ${this.url}: created rule ${name} but the answer has no id`);
      id = newId;
      action = "created";
    }
    this.ruleIds.set(device, id);
    // 200 OK only once the rule is there as wanted: read it back.
    const check = await this.call("GET", `/ovoc/v1/alarms/fwdRules/${id}`);
    if (check.status !== 200 || !isRule(check.body) || check.body.name !== name || !ruleMatches(check.body, want.destSyslog, deviceId)) {
      throw new Failure("ovoc-error", `OVOC ${this.url}: rule ${name} (id ${id}) is not in place after it was ${action} (HTTP ${check.status})`);
    }
    this.log?.info(`OVOC: rule ${name} (id ${id}) ${action}: ${OVOC_ALARM_NAME} of device id ${deviceId} → syslog ${formatEndpoint(orchestrator.address, orchestrator.port)}`);
    return { ok: true };
  }

  private async doUnregister(device: string): Promise<void> {
    const name = ruleName(device);
    let id = this.ruleIds.get(device);
    if (id !== undefined) {
      // Ids are the server's: make sure it is still our rule before deleting it.
      const a = await this.call("GET", `/ovoc/v1/alarms/fwdRules/${id}`);
      if (a.status === 404) id = undefined;
      else if (a.status !== 200) throw this.refused(`read rule ${name} (id ${id})`, a);
      else if (!isRule(a.body) || a.body.name !== name) id = undefined;
    }
    if (id === undefined) id = (await this.findRule(name))?.id;
    this.ruleIds.delete(device);
    if (id === undefined) {
      this.log?.debug(`OVOC: no rule ${name} to delete`);
      return;
    }
    const a = await this.call("DELETE", `/ovoc/v1/alarms/fwdRules/${id}`);
    if (a.status === 404) return;
    if (a.status !== 200 && a.status !== 204) throw this.refused(`delete rule ${name} (id ${id})`, a);
    this.log?.info(`OVOC: rule ${name} (id ${id}) deleted`);
  }

  private async findDevice(device: string): Promise<number> {
    const a = await this.call("GET", `/ovoc/v1/topology/devices?detail=1&filter=(ipAddress='${device}')`);
    const list = (a.body as { devices?: unknown } | undefined)?.devices;
    if (a.status === 404 || (a.status === 200 && Array.isArray(list) && list.length === 0)) {
      throw new Failure("ovoc-device-unknown", `OVOC ${this.url} does not manage a device with IP address ${device}`);
    }
    if (a.status !== 200) throw this.refused(`look up device ${device}`, a);
    const match = Array.isArray(list) ? list.find((d) => (d as { ipAddress?: unknown })?.ipAddress === device) ?? list[0] : undefined;
    const id = (match as { id?: unknown } | undefined)?.id;
    if (typeof id !== "number" || !Number.isInteger(id)) throw new Failure("ovoc-error", `OVOC ${this.url}: device lookup for ${device} answered without a device id`);
    return id;
  }

  /** The rule named exactly `name`, if any; other rules the filter may return are ignored. */
  private async findRule(name: string): Promise<RuleRecord | undefined> {
    const a = await this.call("GET", `/ovoc/v1/alarms/fwdRules?detail=1&filter=(name='${name}')`);
    if (a.status === 404) return undefined;
    if (a.status !== 200) throw this.refused(`look up rule ${name}`, a);
    const list = (a.body as { fwdRules?: unknown } | undefined)?.fwdRules;
    if (!Array.isArray(list)) return undefined;
    return list.find((r): r is RuleRecord => isRule(r) && r.name === name);
  }

  private refused(what: string, a: Answer): Failure {
    const detail = a.description ? `: ${a.description}` : "";
    if (a.status === 401) return new Failure("ovoc-auth", `OVOC ${this.url} refused the credentials (HTTP 401) to ${what}${detail}`);
    if (a.status === 403) return new Failure("ovoc-forbidden", `OVOC ${this.url}: the account may not ${what} (HTTP 403; it needs the Operator security level)${detail}`);
    return new Failure(a.status >= 500 ? "ovoc-unavailable" : "ovoc-rejected", `OVOC ${this.url}: ${what} failed with HTTP ${a.status}${detail}`);
  }

  /** One HTTP exchange; transport failures become Failures whose messages carry no request data. */
  private async call(method: "GET" | "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<Answer> {
    const res = await requestWithin(
      this.timeoutMs,
      (signal) =>
        this.http.request<string>({
          method,
          url: quote(path),
          signal,
          ...(body !== undefined ? { data: JSON.stringify(body), headers: { "Content-Type": "application/json" } } : {}),
        }),
      (err, timedOut) => this.transportFailure(`OVOC ${this.url}: ${method} ${path.split("?")[0]}`, err, timedOut),
    );
    this.log?.debug(`OVOC ${method} ${path} → ${res.status}`);
    let parsed: unknown;
    const text = typeof res.data === "string" ? res.data : "";
    if (/application\/json/i.test(String(res.headers["content-type"] ?? "")) && text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    const d = (parsed as { description?: unknown } | undefined)?.description;
    return { status: res.status, body: parsed, description: typeof d === "string" ? d.slice(0, 300) : undefined };
  }

  private transportFailure(where: string, err: unknown, timedOut: boolean): Failure {
    const code = transportErrorCode(err);
    if (timedOut) return new Failure("ovoc-timeout", `${where}: no answer within ${this.timeoutMs} ms`);
    if (TLS_TRUST_CODES.has(code)) {
      return new Failure("ovoc-tls", `${where}: TLS certificate not trusted (${code}); give the server's CA with --ovoc-ca <file>, or --ovoc-tls insecure`);
    }
    return new Failure("ovoc-unreachable", `${where}: ${code || ((err as { message?: string }).message ?? "connection failed")}`);
  }

  private scrub(text: string): string {
    return redact(text, this.secrets);
  }
}

export type RegisterResult = { ok: true } | { ok: false; reason: string; message: string };

function isRule(v: unknown): v is RuleRecord {
  return typeof v === "object" && v !== null && typeof (v as RuleRecord).name === "string" && Number.isInteger((v as RuleRecord).id);
}

function ruleMatches(r: RuleRecord, dest: { syslogServerIP: string; syslogServerPort: number }, deviceId: number): boolean {
  const names = r.alarmNamesFilter;
  const devs = r.alarmDevicesFilter;
  return (
    sameAddress(r.destSyslog?.syslogServerIP, dest.syslogServerIP) &&
    r.destSyslog?.syslogServerPort === dest.syslogServerPort &&
    Array.isArray(names) &&
    names.length === 1 &&
    names[0] === OVOC_ALARM_NAME &&
    Array.isArray(devs) &&
    devs.length === 1 &&
    devs[0] === deviceId &&
    (r.ruleDestType === undefined || r.ruleDestType === "SYSLOG") &&
    (r.forwardType === undefined || r.forwardType === "ALLOW")
  );
}

function sameAddress(a: unknown, b: string): boolean {
  if (typeof a !== "string") return false;
  return isIPv6(a) && isIPv6(b) ? a.toLowerCase() === b.toLowerCase() : a === b;
}
