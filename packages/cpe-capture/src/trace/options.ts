// `cpe-capture trace`'s inputs, flowtracker's way: every option on the command line or, on a terminal,
// asked in flowtracker's order (password hidden); without a terminal a missing one is a ConfigError
// naming it. Names resolve to IPv4 addresses here, once; the walker only sees addresses.
import { lookup } from "node:dns/promises";
import { isIP, isIPv4 } from "node:net";
import { ConfigError } from "@capsync/protocol";
import type { HttpsTrust } from "@capsync/common";
import type { FlowQuery } from "../drivers/hop.js";

/** The environment variable the password may come from (a `--pwd` shows in the process list). */
export const PASSWORD_ENV = "CAPSYNC_TRACE_PASSWORD";

/** What commander hands over: both spellings of the underscore options. */
export interface TraceCliOptions {
  src?: string;
  dest?: string;
  proto?: string;
  srcPort?: string;
  src_port?: string;
  destPort?: string;
  dest_port?: string;
  vrf?: string;
  target?: string;
  user?: string;
  pwd?: string;
  mode?: string;
  useMgmt?: boolean;
  use_mgmt?: boolean;
  type?: string;
  json?: boolean;
  sshPort?: string;
  restPort?: string;
  insecure?: boolean;
  ca?: string;
  timeout?: string;
}

export interface TraceSettings {
  flow: Required<Pick<FlowQuery, "src" | "dst" | "vrf">> & Pick<FlowQuery, "proto" | "sport" | "dport">;
  /** The first hop's address (resolved) and the name it was given as. */
  target: string;
  user: string;
  password: string;
  mode: "interactive" | "auto";
  useMgmt: boolean;
  type: string | undefined;
  json: boolean;
  sshPort: number | undefined;
  restPort: number | undefined;
  tls: HttpsTrust | undefined;
  timeoutMs: number;
}

/** IP protocol names flowtracker and capsync's filters take, and a few more a trace meets. */
const PROTOCOLS: Readonly<Record<string, number>> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, ospf: 89, sctp: 132 };

/** "tcp" → 6, "17" → 17; undefined for anything else. */
export function parseProto(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t in PROTOCOLS) return PROTOCOLS[t];
  return /^\d{1,3}$/.test(t) && Number(t) <= 255 ? Number(t) : undefined;
}

export function parsePort(text: string): number | undefined {
  const t = text.trim();
  return /^\d{1,5}$/.test(t) && Number(t) >= 1 && Number(t) <= 65535 ? Number(t) : undefined;
}

const VRF = /^[A-Za-z0-9_.:-]{1,32}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/;

/** An IPv4 address as given, or the first IPv4 address a name resolves to (node:dns lookup). */
export async function resolveHost(text: string, option: string): Promise<string> {
  const t = text.trim();
  if (isIPv4(t)) return t;
  if (isIP(t) === 6) throw new ConfigError(`${option}: ${t} is IPv6; trace follows IPv4 flows only`);
  if (!HOSTNAME.test(t) || /^[\d.]+$/.test(t)) throw new ConfigError(`${option}: ${JSON.stringify(t)} is neither an IPv4 address nor a host name`);
  try {
    return (await lookup(t, { family: 4 })).address;
  } catch (e) {
    throw new ConfigError(`${option}: cannot resolve ${t} (${(e as { code?: string }).code ?? (e as Error).message})`);
  }
}

/** How the trace asks for what is missing; undefined: no terminal (a missing option is an error). */
export interface Asker {
  text(message: string, validate: (v: string) => true | string, optional?: boolean): Promise<string>;
  secret(message: string): Promise<string>;
  yesNo(message: string): Promise<boolean>;
}

function numberOption(v: string | undefined, option: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new ConfigError(`${option}: expected ${min}..${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

/**
 * The settings of one trace: options first, then (with an asker) flowtracker's questions for the
 * rest, then validation. `env` supplies CAPSYNC_TRACE_PASSWORD; `resolve` turns names into addresses.
 */
export async function settleOptions(
  o: TraceCliOptions,
  ask: Asker | undefined,
  env: NodeJS.ProcessEnv = process.env,
  resolve: (text: string, option: string) => Promise<string> = resolveHost,
): Promise<TraceSettings> {
  const mode = o.mode ?? (ask && !o.json ? "interactive" : "auto");
  if (mode !== "interactive" && mode !== "auto") throw new ConfigError(`--mode: expected interactive or auto, got ${JSON.stringify(mode)}`);
  if (mode === "interactive" && !ask) throw new ConfigError("--mode interactive: asks before each hop, which needs a terminal; use --mode auto");
  const sshPort = numberOption(o.sshPort, "--ssh-port", 1, 65535);
  const restPort = numberOption(o.restPort, "--rest-port", 1, 65535);
  const timeoutS = numberOption(o.timeout, "--timeout", 1, 600);
  if (o.insecure && o.ca) throw new ConfigError("--insecure and --ca exclude each other");
  const sportText = o.srcPort ?? o.src_port;
  const dportText = o.destPort ?? o.dest_port;
  const missing = (option: string): never => {
    throw new ConfigError(`${option} is required (no terminal to ask on)`);
  };
  const need = async (given: string | undefined, option: string, message: string, validate: (v: string) => true | string = (v) => (v.trim() ? true : "Required")) =>
    given ?? (ask ? (await ask.text(message, validate)).trim() : missing(option));

  const user = await need(o.user, "--user", "SSH/NXAPI username:");
  const password = o.pwd ?? env[PASSWORD_ENV] ?? (ask ? await ask.secret("SSH/NXAPI password:") : missing(`--pwd (or ${PASSWORD_ENV})`));
  if (password === "") throw new ConfigError(`--pwd: the password is empty`);
  const hostCheck = (v: string) => (v.trim() ? true : "Enter an IPv4 address or a host name");
  const srcText = await need(o.src, "--src", "Enter source IP of the flow:", hostCheck);
  const src = await resolve(srcText, "--src");
  const dst = await resolve(await need(o.dest, "--dest", "Enter destination IP of the flow:", hostCheck), "--dest");
  const protoText = await need(o.proto, "--proto", "Enter IP protocol(tcp, udp, icmp, <number>):", (v) => (parseProto(v) !== undefined ? true : "tcp, udp, icmp or a number 0..255"));
  const proto = parseProto(protoText);
  if (proto === undefined) throw new ConfigError(`--proto: expected a protocol name (tcp, udp, icmp, ...) or a number 0..255, got ${JSON.stringify(protoText)}`);
  const ported = proto === 6 || proto === 17 || proto === 132;
  let sp = sportText;
  let dp = dportText;
  if (ported && ask) {
    const portCheck = (v: string) => (v.trim() === "" || parsePort(v) !== undefined ? true : "A port 1..65535, or nothing");
    sp ??= (await ask.text("(Optional) TCP/UDP Source Port:", portCheck, true)).trim() || undefined;
    dp ??= (await ask.text("(Optional) TCP/UDP Destination Port:", portCheck, true)).trim() || undefined;
  }
  if ((sp === undefined) !== (dp === undefined)) throw new ConfigError("--src_port and --dest_port must be supplied together");
  if (sp !== undefined && !ported) throw new ConfigError(`--src_port: ports need --proto tcp, udp or sctp (got protocol ${proto})`);
  const sport = sp === undefined ? undefined : parsePort(sp);
  const dport = dp === undefined ? undefined : parsePort(dp);
  if (sp !== undefined && sport === undefined) throw new ConfigError(`--src_port: expected 1..65535, got ${JSON.stringify(sp)}`);
  if (dp !== undefined && dport === undefined) throw new ConfigError(`--dest_port: expected 1..65535, got ${JSON.stringify(dp)}`);
  const target = await resolve(await need(o.target, "--target", "Enter IP or hostname of first switch to connect to:", hostCheck), "--target");
  const useMgmt = o.useMgmt || o.use_mgmt || (ask && !(o.useMgmt || o.use_mgmt) ? await ask.yesNo("Use Management Interfaces for SSH[Y/N]:") : false);
  const vrfText = o.vrf ?? (ask ? (await ask.text("(Optional) VRF of the flow [default]:", (v) => (v.trim() === "" || VRF.test(v.trim()) ? true : "A VRF name (letters, digits, _ . : -)"), true)).trim() : "");
  const vrf = vrfText === "" ? "default" : vrfText;
  if (!VRF.test(vrf)) throw new ConfigError(`--vrf: ${JSON.stringify(vrf)} is not a VRF name (letters, digits, _ . : -; at most 32)`);
  return {
    flow: { src, dst, proto, ...(sport !== undefined ? { sport } : {}), ...(dport !== undefined ? { dport } : {}), vrf },
    target,
    user,
    password,
    mode,
    useMgmt: Boolean(useMgmt),
    type: o.type,
    json: Boolean(o.json),
    sshPort,
    restPort,
    tls: o.insecure ? { mode: "insecure" } : o.ca ? { mode: "ca", ca: o.ca } : undefined,
    timeoutMs: (timeoutS ?? 15) * 1000,
  };
}
