// IOS-XE RESTCONF transport (RFC 8040 over HTTPS with Basic auth, JSON per RFC 7951 as
// application/yang-data+json): data GETs and Cisco-IOS-XE-rpc operations, plus the parsers of their
// answers. HTTP only: no EPC meaning here. Transport failures become typed errors; HTTP answers of
// any status are returned as data. Not handled: NETCONF, YANG-push, XML encodings, sessions.
import type { HttpsTrust } from "@capsync/common";
import { DeviceHttp, type RestAnswer } from "../common/http.js";
import { jsonObject } from "../common/json.js";

export const YANG_JSON = "application/yang-data+json";

export interface RestconfClientOptions {
  address: string;
  restPort: number;
  username: string;
  password: string;
  tls: HttpsTrust;
}

export class RestconfClient {
  readonly baseUrl: string;
  private readonly http: DeviceHttp;

  constructor(opts: RestconfClientOptions) {
    this.http = new DeviceHttp({ ...opts, accept: YANG_JSON });
    this.baseUrl = this.http.baseUrl;
  }

  /** Removes the password (and its Basic form) from any text that leaves this module. */
  scrub(text: string): string {
    return this.http.scrub(text);
  }

  /** GET a data resource, e.g. "/restconf/data/Cisco-IOS-XE-native:native?fields=hostname". */
  get(path: string, timeoutMs: number): Promise<RestAnswer> {
    return this.http.exchange(`GET ${path}`, timeoutMs, { method: "GET", path });
  }

  /** POST /restconf/operations/Cisco-IOS-XE-rpc:<rpc> with {"Cisco-IOS-XE-rpc:input": input}. */
  rpc(rpc: string, input: unknown, timeoutMs: number): Promise<RestAnswer> {
    const path = `/restconf/operations/Cisco-IOS-XE-rpc:${rpc}`;
    return this.http.exchange(`POST ${path}`, timeoutMs, {
      method: "POST",
      path,
      headers: { "Content-Type": YANG_JSON },
      body: JSON.stringify({ "Cisco-IOS-XE-rpc:input": input }),
    });
  }

  /** Drops keep-alive sockets. Safe twice; the client stays usable. */
  close(): Promise<void> {
    return this.http.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Answer parsers: device input, never thrown on.

export interface RestconfError {
  type: string;
  tag: string;
  path: string | undefined;
  message: string;
}

type Bad = { ok: false; code: "not-json" | "not-object" | "bad-field"; field?: string };

/**
 * RFC 8040 section 7.1 `{"ietf-restconf:errors": {"error": [{error-type, error-tag, error-path?, error-message?}]}}`.
 * @example parseRestconfErrors('{"ietf-restconf:errors":{"error":[{"error-type":"application","error-tag":"invalid-value","error-message":"bad"}]}}')
 *          → { ok: true, errors: [{ type: "application", tag: "invalid-value", path: undefined, message: "bad" }] }
 */
export function parseRestconfErrors(text: string): { ok: true; errors: RestconfError[] } | Bad {
  const j = jsonObject(text);
  if (!j.ok) return j;
  const env = j.value["ietf-restconf:errors"] ?? j.value.errors;
  if (typeof env !== "object" || env === null) return { ok: false, code: "bad-field", field: "ietf-restconf:errors" };
  const list = (env as Record<string, unknown>).error;
  if (!Array.isArray(list) || list.length === 0) return { ok: false, code: "bad-field", field: "error" };
  const errors: RestconfError[] = [];
  for (const e of list) {
    if (typeof e !== "object" || e === null) return { ok: false, code: "bad-field", field: "error" };
    const o = e as Record<string, unknown>;
    const str = (k: string) => (typeof o[k] === "string" ? (o[k] as string) : undefined);
    const tag = str("error-tag");
    if (!tag) return { ok: false, code: "bad-field", field: "error-tag" };
    errors.push({ type: str("error-type") ?? "", tag, path: str("error-path"), message: str("error-message") ?? "" });
  }
  return { ok: true, errors };
}

/** The first error as one line: "invalid-value at /path: message". */
export function describeRestconfErrors(errors: readonly RestconfError[]): string {
  const e = errors[0]!;
  return `${e.message || e.tag}${e.path ? ` (${e.tag} at ${e.path})` : ` (${e.tag})`}`;
}

/** `{"Cisco-IOS-XE-rpc:output": {"result": "..."}}`; a missing result is "" (the YANG leaf is optional). */
export function parseRpcOutput(text: string): { ok: true; result: string } | Bad {
  if (text.trim() === "") return { ok: true, result: "" }; // 204 No Content
  const j = jsonObject(text);
  if (!j.ok) return j;
  const out = j.value["Cisco-IOS-XE-rpc:output"];
  if (typeof out !== "object" || out === null || Array.isArray(out)) return { ok: false, code: "bad-field", field: "Cisco-IOS-XE-rpc:output" };
  const result = (out as Record<string, unknown>).result;
  if (result !== undefined && typeof result !== "string") return { ok: false, code: "bad-field", field: "result" };
  return { ok: true, result: (result as string | undefined) ?? "" };
}

export const NATIVE_FACTS_PATH = "/restconf/data/Cisco-IOS-XE-native:native?fields=version;hostname;license/udi";

/** The probe's native GET: version and hostname required, the license UDI (pid, sn) when the box has one. */
export function parseNativeFacts(text: string): { ok: true; version: string; hostname: string; pid: string | undefined; sn: string | undefined } | Bad {
  const j = jsonObject(text);
  if (!j.ok) return j;
  const n = j.value["Cisco-IOS-XE-native:native"];
  if (typeof n !== "object" || n === null) return { ok: false, code: "bad-field", field: "Cisco-IOS-XE-native:native" };
  const o = n as Record<string, unknown>;
  if (typeof o.version !== "string" || o.version === "") return { ok: false, code: "bad-field", field: "version" };
  if (typeof o.hostname !== "string" || o.hostname === "") return { ok: false, code: "bad-field", field: "hostname" };
  const udi = (o.license as { udi?: { pid?: unknown; sn?: unknown } } | undefined)?.udi;
  return {
    ok: true,
    version: o.version,
    hostname: o.hostname,
    pid: typeof udi?.pid === "string" ? udi.pid : undefined,
    sn: typeof udi?.sn === "string" ? udi.sn : undefined,
  };
}

/** `/restconf/data/Cisco-IOS-XE-native:native/interface/<Type>=<name>/vrf/forwarding` for a full interface name. */
export function vrfForwardingPath(iface: string): string | undefined {
  const m = /^([A-Za-z-]+)(\d.*)$/.exec(iface);
  if (!m) return undefined;
  return `/restconf/data/Cisco-IOS-XE-native:native/interface/${m[1]}=${encodeURIComponent(m[2]!)}/vrf/forwarding`;
}

/** `{"Cisco-IOS-XE-native:forwarding": "MGMT"}` → "MGMT"; an empty body (204) is the global table. */
export function parseVrfForwarding(text: string): { ok: true; vrf: string | undefined } | Bad {
  if (text.trim() === "") return { ok: true, vrf: undefined };
  const j = jsonObject(text);
  if (!j.ok) return j;
  const v = j.value["Cisco-IOS-XE-native:forwarding"];
  if (v !== undefined && typeof v !== "string") return { ok: false, code: "bad-field", field: "forwarding" };
  return { ok: true, vrf: v as string | undefined };
}
