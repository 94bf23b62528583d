// Host names, IP addresses and endpoints in the run config: device addresses, agent endpoints
// (`ip:port`, `[v6]:port` or { host, port }), listen addresses, and the key two spellings of one
// address share.
import { isIPv6 } from "node:net";
import { parsePort, parsePortOrZero } from "./fields.js";
import { describeValue, fail, isPlainObject, ok, prefix, unknownKeys, type Parsed } from "./issues.js";

/** Default UDP port of server-capture agents (legacy and v1). */
export const DEFAULT_AGENT_PORT = 20001;

/**
 * host is an IP literal without brackets (IPv6 lower-case), never a host name: the agent answers
 * from an address and answers are matched on it. port 1..65535.
 */
export interface AgentEndpoint {
  host: string;
  port: number;
}

/** Where the syslog listener binds; port 0 means "any free port". */
export interface ListenAddress {
  host: string;
  port: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export type HostKind = "ipv4" | "ipv6" | "name";

/** An IPv4/IPv6 literal (IPv6 optionally in brackets) or a host name; returns the normal form. */
export function parseHost(text: string): { ok: true; host: string; kind: HostKind } | { ok: false } {
  let s = text.trim();
  if (IPV4.test(s)) return { ok: true, host: s, kind: "ipv4" };
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  if (isIPv6(s)) return { ok: true, host: s.toLowerCase(), kind: "ipv6" };
  const name = s.toLowerCase().replace(/\.$/, "");
  const labels = name.split(".");
  if (
    name.length > 0 &&
    name.length <= 253 &&
    labels.every((l) => LABEL.test(l)) &&
    // An all-numeric last label is a mistyped IPv4 address ("192.0.2.300"), not a host name.
    !/^\d+$/.test(labels[labels.length - 1]!)
  ) {
    return { ok: true, host: name, kind: "name" };
  }
  return { ok: false };
}

/** The form two spellings of one address share, for duplicate detection. */
export function hostKey(host: string, kind: HostKind): string {
  if (kind !== "ipv6") return host;
  const [addr, zone] = host.split("%", 2) as [string, string | undefined];
  let canonical = addr;
  try {
    canonical = new URL(`http://[${addr}]/`).hostname.slice(1, -1);
  } catch {
    // isIPv6 accepted it; URL may still refuse odd forms. The lower-case text is good enough then.
  }
  return zone === undefined ? canonical : `${canonical}%${zone}`;
}

/** A device address: IPv4/IPv6 literal or host name, in its normal form. */
export function parseAddress(v: unknown): Parsed<string> {
  if (typeof v !== "string") return fail(`expected an IPv4/IPv6 address or a host name, got ${describeValue(v)}`);
  const h = parseHost(v);
  return h.ok ? ok(h.host) : fail(`expected an IPv4/IPv6 address or a host name, got ${describeValue(v)}`);
}

/** `a.b.c.d:port`, `[v6]:port`; the port may be left out when `defaultPort` is given. */
export function parseEndpoint(
  text: string,
  opts: { defaultPort?: number; allowPortZero?: boolean } = {},
): { ok: true; value: AgentEndpoint } | { ok: false; message: string } {
  const s = text.trim();
  const shape = `expected IP:port (IPv6 as [addr]:port), got ${describeValue(text)}`;
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
    if (!isIPv6(host)) return { ok: false, message: shape };
  } else if (isIPv6(s)) {
    // "2001:db8::5:20001" is itself a valid IPv6 address, so a port can never follow bare IPv6.
    return { ok: false, message: `write IPv6 endpoints as [addr]:port, got ${describeValue(text)}` };
  } else {
    const i = s.lastIndexOf(":");
    host = i < 0 ? s : s.slice(0, i);
    portText = i < 0 ? undefined : s.slice(i + 1);
    if (!IPV4.test(host)) return { ok: false, message: shape };
  }
  let port: number;
  if (portText === undefined) {
    if (opts.defaultPort === undefined) return { ok: false, message: shape };
    port = opts.defaultPort;
  } else {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    const min = opts.allowPortZero ? 0 : 1;
    if (!(port >= min && port <= 65535)) {
      return { ok: false, message: `port must be ${min}..65535, got ${/^\d+$/.test(portText) ? portText : describeValue(portText)}` };
    }
  }
  return { ok: true, value: { host: host.toLowerCase(), port } };
}

/** An agent: `ip[:port]` or { host, port }; the port defaults to DEFAULT_AGENT_PORT. */
export function parseAgent(v: unknown): Parsed<AgentEndpoint> {
  if (typeof v === "string") {
    const r = parseEndpoint(v, { defaultPort: DEFAULT_AGENT_PORT });
    return r.ok ? ok(r.value) : fail(r.message);
  }
  if (isPlainObject(v)) {
    const issues = unknownKeys(v, ["host", "port"]);
    const host = typeof v.host === "string" ? parseHost(v.host) : { ok: false as const };
    if (!host.ok || host.kind === "name") {
      issues.push({ path: ["host"], message: `expected an IP address, got ${describeValue(v.host)}` });
    }
    const port = v.port === undefined ? ok(DEFAULT_AGENT_PORT) : parsePort(v.port);
    if (!port.ok) issues.push(...prefix(["port"], port.issues));
    if (issues.length > 0 || !host.ok || !port.ok) return { ok: false, issues };
    return ok({ host: host.host, port: port.value });
  }
  return fail(`expected IP:port (IPv6 as [addr]:port), got ${describeValue(v)}`);
}

/** A listen address: `ip:port`, `:port` or a bare port number, both on `defaultHost`; port 0 allowed. */
export function parseListenAddress(v: unknown, defaultHost: string): Parsed<ListenAddress> {
  if (typeof v === "number") {
    const p = parsePortOrZero(v);
    return p.ok ? ok({ host: defaultHost, port: p.value }) : p;
  }
  if (typeof v !== "string") return fail(`expected IP:port (IPv6 as [addr]:port), got ${describeValue(v)}`);
  const s = v.trim().startsWith(":") ? `${defaultHost}${v.trim()}` : v;
  const r = parseEndpoint(s, { allowPortZero: true });
  return r.ok ? ok(r.value) : fail(r.message);
}
