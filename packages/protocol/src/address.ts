// Device addresses on the wire: IPv4 dotted-quad or IPv6 literals only (no brackets, no zone, no
// hostnames). Strict on purpose: these strings reach tcpdump filters and file names.
import { isIPv6 } from "node:net";

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isIPv4Literal(s: string): boolean {
  return IPV4.test(s);
}

function isIPv6Literal(s: string): boolean {
  // node's isIPv6 accepts a zone suffix ("fe80::1%eth0"); the wire format forbids it.
  return s.length <= 45 && !s.includes("%") && isIPv6(s);
}

export function isDeviceAddress(s: string): boolean {
  return isIPv4Literal(s) || isIPv6Literal(s);
}

/** A form of the address that is safe inside a file name (IPv6 colons become dashes). */
export function addressToken(address: string): string {
  return address.replace(/:/g, "-");
}

/** Parse "host:port" or "[v6]:port" into parts; undefined when malformed. */
export function parseEndpoint(s: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]]+):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const host = m[1]!;
  const port = Number(m[2]);
  if (!isDeviceAddress(host) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

export function formatEndpoint(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
