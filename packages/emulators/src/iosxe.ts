// Cisco IOS-XE router emulator (C8000V-like, 17.9/17.15 behaviour) for Embedded Packet Capture:
// HTTPS RESTCONF (RFC 8040; Cisco-IOS-XE-rpc monitor/no/delete RPCs, a native GET, errors in the
// ietf-restconf:errors envelope) and SSH (ssh2 Server: exec CLI shell with `terminal length`,
// `monitor capture`, `show monitor capture`, `show version`, `delete`, `dir`; SCP source; SFTP of
// bootflash:). Capture points run the EPC state machine (defined → active → stopped → exported) over
// a synthetic UDP flow, honouring match, direction, buffer and limits; exports are real pcap files.
// Not emulated: configuration mode, access-list/class-map filters, control-plane capture points,
// `stop_export` (needs an export location this emulator does not configure), NETCONF, any other
// YANG model or CLI command.
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createNetServer, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import ssh2 from "ssh2";
import type { Connection, ServerChannel, SFTPWrapper } from "ssh2";
import { formatEndpoint, parsePrefix } from "@capsync/protocol";
import { sharedHostKey } from "@capsync/server-capture/sftp-server";
import { pcapGlobalHeader, SyntheticPacketSource } from "./pcap-synth.js";
import { basicCredentials, closeListener, listen, readBody, safeEqual, sameCredentials, sendJson } from "./http.js";
import { sharedTlsCertificate, type TlsMaterial } from "./tls.js";

const { Server: SshServer, utils } = ssh2;
const SFTP_STATUS = utils.sftp.STATUS_CODE;
const SFTP_OPEN = utils.sftp.OPEN_MODE;

// ---------------------------------------------------------------------------------------------
// Options, faults, state

export interface IosXeInterface {
  /** Full name, e.g. "GigabitEthernet1". */
  name: string;
  vrf?: string;
  /** For `show running-config interface`, e.g. "192.0.2.1 255.255.255.0". */
  ip?: string;
}

export type IosXeRestFaultKind = "timeout" | "busy" | "server-error" | "unavailable";
export interface IosXeRestFault {
  /** timeout: never answers; busy: 409 in-use; server-error: 500 operation-failed; unavailable: 503. */
  kind: IosXeRestFaultKind;
  /** probe: GET requests; rpc: POST operations; default any. Authentication is checked first. */
  on?: "probe" | "rpc" | "any";
  times?: number;
}
export interface IosXeCliFault {
  /** The CLI swallows the command: no output, no prompt. */
  kind: "timeout";
  /** probe: `show version`; capture: monitor/no monitor/show monitor/delete; default any. */
  on?: "probe" | "capture" | "any";
  times?: number;
}
export interface IosXeFileFault {
  /** refuse: every SSH TCP connection is reset before the handshake; truncate: half the file then EOF;
   *  bad-magic: the first 4 bytes read are "XXXX". */
  kind: "refuse" | "truncate" | "bad-magic";
  /** Next `times` connections (refuse) or file opens (the others); default until cleared. */
  times?: number;
}
export interface IosXeFaults {
  rest?: IosXeRestFault | undefined;
  cli?: IosXeCliFault | undefined;
  file?: IosXeFileFault | undefined;
}

/** Texts the device puts in its answers (the contract suite checks that drivers pass them on). */
export const IOSXE_MESSAGES = {
  auth: "Authentication failed: bad username or password",
  busy: "The datastore is locked by another RESTCONF session; try again",
  serverError: "Internal error while running the RPC",
  unavailable: "RESTCONF is starting up; service unavailable",
  notFound: "uri keypath not found",
} as const;

export interface IosXeDeviceOptions {
  /** Loopback address to listen on (default 127.0.0.1); also the device address of the synthetic flow (IPv4). */
  address?: string;
  username: string;
  password: string;
  restPort?: number;
  sshPort?: number;
  hostname?: string;
  /** Product id, as in `show version` and the license UDI (default C8000V). */
  model?: string;
  /** `show version` style, e.g. "17.09.04a" (default). */
  version?: string;
  serial?: string;
  /** Default GigabitEthernet1..3, and GigabitEthernet4 in VRF "MGMT". */
  interfaces?: IosXeInterface[];
  /** The interface the synthetic flow crosses (default: the first interface). */
  flowInterface?: string;
  /** Synthetic packets per second on the flow interface (default 200). */
  packetsPerSecond?: number;
  /** Far end of the synthetic flow (default 192.0.2.1). */
  peer?: string;
  /** `restconf` configured (default true); false: every /restconf request is 404, as on a box without it. */
  restconf?: boolean;
  /** `ip scp server enable` (default true). */
  scp?: boolean;
  /** SFTP subsystem available (default true). */
  sftp?: boolean;
  /** Privilege level SSH users land in: 15 (default, prompt `host#`) or 1 (user EXEC, `host>`, no `monitor`). */
  privilege?: 1 | 15;
  /** Delay before every RESTCONF answer. */
  latencyMs?: number;
  faults?: IosXeFaults;
  tls?: TlsMaterial;
}

export type CapturePointState = "defined" | "active" | "stopped" | "exported";

export interface CapturePointView {
  name: string;
  state: CapturePointState;
  interfaces: { name: string; direction: "in" | "out" | "both" }[];
  match: string | undefined;
  bufferMb: number;
  circular: boolean;
  limit: { duration?: number; packets?: number; packetLen?: number; every?: number; pps?: number };
  /** Packets in the buffer now. */
  packets: number;
  exportedTo?: string;
}

export interface RpcRecord {
  rpc: string;
  input: unknown;
  httpStatus: number;
}

export interface IosXeDeviceState {
  capturePoints: CapturePointView[];
  bootflash: { name: string; size: number }[];
  /** HTTPS requests received (all, answered or not). */
  requests: number;
  /** Last 200 RPCs, oldest first. */
  rpcs: RpcRecord[];
  /** Every CLI line executed, from SSH and as the RPCs' equivalent command, oldest first (last 500). */
  commands: string[];
  sshConnections: number;
  /** SSH connections refused by fault injection. */
  fileRefusals: number;
}

export interface IosXeDevice {
  readonly address: string;
  readonly restPort: number;
  readonly sshPort: number;
  readonly username: string;
  readonly hostname: string;
  /** e.g. https://127.0.0.2:40123 */
  readonly baseUrl: string;
  /** The shared certificate (or `tls.cert`), usable as a client's CA. */
  readonly certificate: string;
  /** The SSH host key as an authorized_keys line. */
  readonly hostKey: string;
  state(): IosXeDeviceState;
  capturePoint(name: string): CapturePointView | undefined;
  /** A bootflash: file as SCP/SFTP serve it. */
  bootflashFile(name: string): Buffer | undefined;
  /** The last file exported (kept after a delete). */
  lastExport(): { name: string; data: Buffer } | undefined;
  setFault(f: IosXeFaults): void;
  clearFaults(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// EPC model: match filters, capture points, the `monitor capture` grammar

type PortOp = { op: "eq" | "gt" | "lt" | "neq"; port: number } | { op: "range"; lo: number; hi: number };
interface Net {
  family: 4 | 6;
  bytes: number[];
  length: number;
}
type Match = { kind: "any" } | { kind: "ip"; family: 4 | 6; proto: number | undefined; src: Net | null; sport?: PortOp; dst: Net | null; dport?: PortOp };

const PROTOCOL_NAMES: Record<string, number> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ahp: 51, ospf: 89, pim: 103, sctp: 132 };
const IOSXE_TYPES: ReadonlyArray<readonly [string, ...string[]]> = [
  ["GigabitEthernet", "gi", "gig"],
  ["TenGigabitEthernet", "te", "ten"],
  ["Loopback", "lo"],
  ["Vlan", "vl"],
  ["Port-channel", "po"],
  ["Tunnel", "tu"],
  ["Cellular", "ce"],
  ["Dialer", "di"],
];

function ipBytes(text: string, family: 4 | 6): number[] {
  if (family === 4) return text.split(".").map(Number);
  // parsePrefix canonicalised the text; expand "::".
  const [h, t] = text.includes("::") ? text.split("::") : [text, undefined];
  const head = h ? h.split(":") : [];
  const tail = t ? t.split(":") : [];
  const groups = t === undefined ? head : [...head, ...Array<string>(8 - head.length - tail.length).fill("0"), ...tail];
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}

function netContains(net: Net | null, family: 4 | 6, addr: number[]): boolean {
  if (!net) return true;
  if (net.family !== family) return false;
  for (let bit = 0; bit < net.length; bit++) {
    const m = 0x80 >> (bit & 7);
    if ((net.bytes[bit >> 3]! & m) !== (addr[bit >> 3]! & m)) return false;
  }
  return true;
}

function portMatches(op: PortOp | undefined, port: number | undefined): boolean {
  if (!op) return true;
  if (port === undefined) return false;
  switch (op.op) {
    case "eq":
      return port === op.port;
    case "neq":
      return port !== op.port;
    case "gt":
      return port > op.port;
    case "lt":
      return port < op.port;
    case "range":
      return port >= op.lo && port <= op.hi;
  }
}

interface Tuple {
  family: 4 | 6;
  src: number[];
  dst: number[];
  proto: number;
  sport?: number;
  dport?: number;
}

/** IPv4 5-tuple of an Ethernet II frame; undefined for anything else (bounds-checked). */
function frameTuple(frame: Buffer): Tuple | undefined {
  if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800) return undefined;
  const ip = frame.subarray(14);
  const ihl = (ip[0]! & 0x0f) * 4;
  if (ip[0]! >> 4 !== 4 || ihl < 20 || ip.length < ihl) return undefined;
  const proto = ip[9]!;
  const t: Tuple = { family: 4, src: [...ip.subarray(12, 16)], dst: [...ip.subarray(16, 20)], proto };
  if ((proto === 6 || proto === 17) && ip.length >= ihl + 4) {
    t.sport = ip.readUInt16BE(ihl);
    t.dport = ip.readUInt16BE(ihl + 2);
  }
  return t;
}

function matchFrame(m: Match, frame: Buffer): boolean {
  if (m.kind === "any") return true;
  const t = frameTuple(frame);
  if (!t || t.family !== m.family) return false;
  if (m.proto !== undefined && t.proto !== m.proto) return false;
  return netContains(m.src, t.family, t.src) && netContains(m.dst, t.family, t.dst) && portMatches(m.sport, t.sport) && portMatches(m.dport, t.dport);
}

type Parsed<T> = { ok: true; value: T; next: number } | { ok: false; at: number; message: string };

function parsePort(words: string[], i: number): Parsed<PortOp | undefined> {
  const op = words[i];
  if (op !== "eq" && op !== "gt" && op !== "lt" && op !== "neq" && op !== "range") return { ok: true, value: undefined, next: i };
  const num = (w: string | undefined) => (w !== undefined && /^\d{1,5}$/.test(w) && Number(w) <= 65535 ? Number(w) : undefined);
  if (op === "range") {
    const lo = num(words[i + 1]);
    const hi = num(words[i + 2]);
    if (lo === undefined) return { ok: false, at: i + 1, message: "expected a port number 0..65535" };
    if (hi === undefined || hi < lo) return { ok: false, at: i + 2, message: "expected the upper port of the range" };
    return { ok: true, value: { op, lo, hi }, next: i + 3 };
  }
  const port = num(words[i + 1]);
  if (port === undefined) return { ok: false, at: i + 1, message: "expected a port number 0..65535" };
  return { ok: true, value: { op, port }, next: i + 2 };
}

function parseEndpoint(words: string[], i: number, family: 4 | 6): Parsed<Net | null> {
  const w = words[i];
  if (w === "any") return { ok: true, value: null, next: i + 1 };
  const toNet = (text: string | undefined, mustBeHost: boolean, at: number): Parsed<Net | null> => {
    const p = text === undefined ? undefined : parsePrefix(text);
    if (!p || "error" in p || p.family !== family || (mustBeHost && !p.host) || (!mustBeHost && !text!.includes("/"))) {
      return { ok: false, at, message: `expected ${mustBeHost ? "a host address" : `any, host or a prefix (${family === 4 ? "A.B.C.D/nn" : "X:X:X:X::X/<0-128>"})`}` };
    }
    return { ok: true, value: { family, bytes: ipBytes(p.address, family), length: p.length }, next: at + 1 };
  };
  if (w === "host") return toNet(words[i + 1], true, i + 1);
  return toNet(w, false, i);
}

/** `any` | `ipv4|ipv6 [protocol P] SRC [port-op] DST [port-op]`, starting at words[i]. */
function parseMatch(words: string[], i: number): Parsed<{ match: Match; text: string }> {
  const start = i;
  const w = words[i];
  if (w === "any") return { ok: true, value: { match: { kind: "any" }, text: "any" }, next: i + 1 };
  if (w !== "ipv4" && w !== "ipv6") return { ok: false, at: i, message: "expected any, ipv4 or ipv6 (mac filters are not emulated)" };
  const family = w === "ipv4" ? 4 : 6;
  i++;
  let proto: number | undefined;
  if (words[i] === "protocol") {
    const p = words[i + 1] ?? "";
    const n = /^\d{1,3}$/.test(p) && Number(p) <= 255 ? Number(p) : PROTOCOL_NAMES[p];
    if (n === undefined) return { ok: false, at: i + 1, message: "expected a protocol name or number 0..255" };
    proto = n;
    i += 2;
  }
  const portsAllowed = proto === 6 || proto === 17;
  const src = parseEndpoint(words, i, family);
  if (!src.ok) return src;
  i = src.next;
  const sport = portsAllowed ? parsePort(words, i) : ({ ok: true, value: undefined, next: i } as const);
  if (!sport.ok) return sport;
  i = sport.next;
  const dst = parseEndpoint(words, i, family);
  if (!dst.ok) return dst;
  i = dst.next;
  const dport = portsAllowed ? parsePort(words, i) : ({ ok: true, value: undefined, next: i } as const);
  if (!dport.ok) return dport;
  i = dport.next;
  const match: Match = { kind: "ip", family, proto, src: src.value, dst: dst.value };
  if (sport.value) match.sport = sport.value;
  if (dport.value) match.dport = dport.value;
  return { ok: true, value: { match, text: words.slice(start, i).join(" ") }, next: i };
}

type Direction = "in" | "out" | "both";
type Action = { kind: "start" | "stop" | "stop_export" | "clear" } | { kind: "export"; location: string };
interface MonitorCommand {
  name: string;
  interfaces: { name: string; direction: Direction }[];
  match?: { match: Match; text: string };
  buffer?: { size?: number; circular: boolean };
  limit?: CapturePointView["limit"];
  action?: Action;
}

const LIMIT_RANGES: Record<string, [number, number]> = {
  duration: [1, 1_000_000],
  every: [2, 100_000],
  "packet-len": [64, 9500],
  packets: [1, 100_000],
  pps: [1, 1_000_000],
};
const NAME = /^[A-Za-z0-9_-]{1,32}$/;

/** The words after `monitor capture`. `resolveInterface` maps a typed name to the device's interface. */
function parseMonitor(words: string[], resolveInterface: (n: string) => string | undefined): Parsed<MonitorCommand> {
  const name = words[0];
  if (name === undefined || !NAME.test(name)) return { ok: false, at: 0, message: "expected a capture point name" };
  const cmd: MonitorCommand = { name, interfaces: [] };
  let i = 1;
  if (i >= words.length) return { ok: false, at: i, message: "incomplete command" };
  while (i < words.length) {
    const w = words[i]!;
    switch (w) {
      case "interface": {
        const iface = words[i + 1] === undefined ? undefined : resolveInterface(words[i + 1]!);
        if (!iface) return { ok: false, at: i + 1, message: `no such interface ${words[i + 1] ?? ""}`.trim() };
        const dir = words[i + 2];
        if (dir !== "in" && dir !== "out" && dir !== "both") return { ok: false, at: i + 2, message: "expected in, out or both" };
        cmd.interfaces.push({ name: iface, direction: dir });
        i += 3;
        break;
      }
      case "match": {
        const m = parseMatch(words, i + 1);
        if (!m.ok) return m;
        cmd.match = m.value;
        i = m.next;
        break;
      }
      case "buffer": {
        const b: NonNullable<MonitorCommand["buffer"]> = { circular: false };
        i++;
        let any = false;
        for (;;) {
          if (words[i] === "circular") {
            b.circular = true;
            i++;
          } else if (words[i] === "size") {
            const n = words[i + 1];
            if (n === undefined || !/^\d{1,3}$/.test(n) || Number(n) < 1 || Number(n) > 100) return { ok: false, at: i + 1, message: "buffer size is 1..100 MB" };
            b.size = Number(n);
            i += 2;
          } else break;
          any = true;
        }
        if (!any) return { ok: false, at: i, message: "expected circular or size" };
        cmd.buffer = b;
        break;
      }
      case "limit": {
        const l: CapturePointView["limit"] = {};
        i++;
        while (words[i] !== undefined && words[i]! in LIMIT_RANGES) {
          const k = words[i]!;
          const [lo, hi] = LIMIT_RANGES[k]!;
          const n = words[i + 1];
          if (n === undefined || !/^\d{1,7}$/.test(n) || Number(n) < lo || Number(n) > hi) return { ok: false, at: i + 1, message: `limit ${k} is ${lo}..${hi}` };
          const key = k === "packet-len" ? "packetLen" : (k as "duration" | "every" | "packets" | "pps");
          l[key] = Number(n);
          i += 2;
        }
        if (Object.keys(l).length === 0) return { ok: false, at: i, message: "expected duration, every, packet-len, packets or pps" };
        cmd.limit = { ...cmd.limit, ...l };
        break;
      }
      case "start":
      case "stop":
      case "stop_export":
      case "clear":
        if (cmd.action) return { ok: false, at: i, message: "one action per command" };
        cmd.action = { kind: w };
        i++;
        break;
      case "export": {
        if (cmd.action) return { ok: false, at: i, message: "one action per command" };
        const loc = words[i + 1];
        if (loc === undefined) return { ok: false, at: i + 1, message: "expected an export location" };
        cmd.action = { kind: "export", location: loc };
        i += 2;
        break;
      }
      default:
        return { ok: false, at: i, message: w === "access-list" || w === "class-map" || w === "control-plane" ? `${w} is not emulated` : `unexpected ${w}` };
    }
  }
  return { ok: true, value: cmd, next: i };
}

/** "bootflash:x.pcap", "bootflash:/x.pcap", "/bootflash:/x.pcap", "flash:x.pcap" → "x.pcap". */
export function bootflashName(path: string): string | undefined {
  const m = /^\/?(?:bootflash|flash):\/?([A-Za-z0-9._-]{1,100})$/.exec(path);
  if (!m || m[1] === "." || m[1] === "..") return undefined;
  return m[1];
}

interface Window {
  start: bigint;
  end?: bigint;
}
interface CapturePoint {
  name: string;
  interfaces: Map<string, Direction>;
  match?: { match: Match; text: string };
  bufferMb: number;
  circular: boolean;
  limit: CapturePointView["limit"];
  state: CapturePointState;
  windows: Window[];
  exportedTo?: string;
}

const nowMicros = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));

/** A pcap record whose captured length may be shorter than the frame (limit packet-len). */
function pcapRecordCut(tsMicros: bigint, frame: Buffer, caplen: number): Buffer {
  const n = Math.min(caplen, frame.length);
  const b = Buffer.alloc(16 + n);
  b.writeUInt32LE(Number(tsMicros / 1_000_000n), 0);
  b.writeUInt32LE(Number(tsMicros % 1_000_000n), 4);
  b.writeUInt32LE(n, 8);
  b.writeUInt32LE(frame.length, 12);
  frame.copy(b, 16, 0, n);
  return b;
}

/** Most sequence numbers looked at per window: bounds work for very long captures. */
const MAX_SEQ_PER_WINDOW = 2_000_000;

class Epc {
  readonly points = new Map<string, CapturePoint>();
  readonly bootflash = new Map<string, { data: Buffer; mtime: Date }>();
  lastExport: { name: string; data: Buffer } | undefined;
  constructor(
    private readonly source: SyntheticPacketSource,
    private readonly flowInterface: string,
  ) {}

  /** The packets a capture point holds (and when a packets limit was hit), computed from its windows. */
  collect(cp: CapturePoint, until: bigint): { records: Buffer[]; bytes: number; limitAt?: bigint } {
    const out: Buffer[] = [];
    let bytes = 0;
    const max = cp.bufferMb * 1_000_000;
    const dir = cp.interfaces.get(this.flowInterface);
    if (!dir || !cp.match) return { records: out, bytes };
    const caplen = cp.limit.packetLen ?? 65535;
    let every = 0;
    for (const w of cp.windows) {
      let end = w.end ?? until;
      if (cp.limit.duration !== undefined) {
        const cap = w.start + BigInt(cp.limit.duration) * 1_000_000n;
        if (end > cap) end = cap;
      }
      const due = Math.min(this.source.packetsDue(end - w.start), MAX_SEQ_PER_WINDOW);
      for (let seq = 0; seq < due; seq++) {
        const outbound = seq % 2 === 0; // even: device → peer (pcap-synth)
        if (dir !== "both" && (dir === "out") !== outbound) continue;
        const frame = this.source.frame(seq);
        if (!matchFrame(cp.match.match, frame)) continue;
        if (cp.limit.every !== undefined && every++ % cp.limit.every !== 0) continue;
        const ts = this.source.timestamp(w.start, seq);
        const rec = pcapRecordCut(ts, frame, caplen);
        if (bytes + rec.length > max) {
          if (!cp.circular) continue; // linear buffer full: the rest is dropped
          while (out.length > 0 && bytes + rec.length > max) bytes -= out.shift()!.length;
        }
        out.push(rec);
        bytes += rec.length;
        if (cp.limit.packets !== undefined && out.length >= cp.limit.packets && !cp.circular) return { records: out, bytes, limitAt: ts };
      }
    }
    return { records: out, bytes };
  }

  /** Applies the limits of an active capture point: it stops by itself at its duration or packet count. */
  refresh(cp: CapturePoint): void {
    if (cp.state !== "active") return;
    const w = cp.windows[cp.windows.length - 1]!;
    const now = nowMicros();
    if (cp.limit.duration !== undefined && now >= w.start + BigInt(cp.limit.duration) * 1_000_000n) {
      w.end = w.start + BigInt(cp.limit.duration) * 1_000_000n;
      cp.state = "stopped";
      return;
    }
    if (cp.limit.packets !== undefined) {
      const c = this.collect(cp, now);
      if (c.limitAt !== undefined) {
        w.end = c.limitAt + 1n;
        cp.state = "stopped";
      }
    }
  }

  view(cp: CapturePoint): CapturePointView {
    this.refresh(cp);
    const v: CapturePointView = {
      name: cp.name,
      state: cp.state,
      interfaces: [...cp.interfaces].map(([name, direction]) => ({ name, direction })),
      match: cp.match?.text,
      bufferMb: cp.bufferMb,
      circular: cp.circular,
      limit: { ...cp.limit },
      packets: this.collect(cp, nowMicros()).records.length,
    };
    if (cp.exportedTo) v.exportedTo = cp.exportedTo;
    return v;
  }

  pcap(cp: CapturePoint): Buffer {
    const c = this.collect(cp, nowMicros());
    return Buffer.concat([pcapGlobalHeader({ snaplen: cp.limit.packetLen ?? 65535 }), ...c.records]);
  }

  /** Runs a parsed `monitor capture` command; returns the CLI output. */
  run(cmd: MonitorCommand): string {
    let cp = this.points.get(cmd.name);
    if (cp) this.refresh(cp);
    const defines = cmd.interfaces.length > 0 || cmd.match !== undefined || cmd.buffer !== undefined || cmd.limit !== undefined;
    if (defines) {
      if (cp?.state === "active") return `% Capture point ${cmd.name} is active; stop it before changing its parameters\n`;
      if (!cp) {
        if (this.points.size >= 8) return `% Maximum number of capture points (8) reached\n`;
        cp = { name: cmd.name, interfaces: new Map(), bufferMb: 10, circular: false, limit: {}, state: "defined", windows: [] };
        this.points.set(cmd.name, cp);
      }
      for (const i of cmd.interfaces) cp.interfaces.set(i.name, i.direction);
      if (cmd.match) cp.match = cmd.match;
      if (cmd.buffer) {
        if (cmd.buffer.size !== undefined) cp.bufferMb = cmd.buffer.size;
        cp.circular = cmd.buffer.circular;
      }
      if (cmd.limit) cp.limit = { ...cp.limit, ...cmd.limit };
    }
    const a = cmd.action;
    if (!a) return "";
    if (!cp) return `Capture point ${cmd.name} does not exist\n`;
    switch (a.kind) {
      case "start":
        if (cp.state === "active") return `% Capture point ${cp.name} is already active\n`;
        if (cp.interfaces.size === 0) return `% Capture point ${cp.name} has no attachment point; add 'interface <name> {in|out|both}'\n`;
        if (!cp.match) return `% Capture point ${cp.name} has no filter; add 'match any' or a match filter\n`;
        cp.windows.push({ start: nowMicros() });
        cp.state = "active";
        return `Started capture point : ${cp.name}\n`;
      case "stop": {
        if (cp.state !== "active") return `Capture point ${cp.name} not active\n`;
        const w = cp.windows[cp.windows.length - 1]!;
        w.end = nowMicros();
        cp.state = "stopped";
        const n = this.collect(cp, w.end).records.length;
        const secs = Number((w.end - w.start) / 1_000_000n);
        return (
          `Capture statistics collected at software:\n` +
          `        Capture duration - ${secs} seconds\n` +
          `        Packets received - ${n}\n` +
          `        Packets dropped  - 0\n` +
          `        Packets oversized - 0\n\n` +
          `Stopped capture point : ${cp.name}\n`
        );
      }
      case "clear":
        if (cp.state === "active") cp.windows = [{ start: nowMicros() }];
        else cp.windows = [];
        return "";
      case "stop_export":
        return `% No export location configured for capture point ${cp.name}; use 'monitor capture ${cp.name} export <location>'\n`;
      case "export": {
        if (cp.state === "active") return `% Capture point ${cp.name} is active; stop it before exporting\n`;
        const file = bootflashName(a.location);
        if (!file) return `% Export to ${a.location} is not supported (bootflash:<file> only)\n`;
        const data = this.pcap(cp);
        this.bootflash.set(file, { data, mtime: new Date() });
        this.lastExport = { name: file, data };
        cp.exportedTo = `bootflash:${file}`;
        cp.state = "exported";
        return `Exported Successfully\n`;
      }
    }
  }

  remove(name: string): string {
    const cp = this.points.get(name);
    if (!cp) return `Capture point ${name} does not exist\n`;
    this.points.delete(name);
    return "";
  }

  delete(path: string): string {
    const file = bootflashName(path);
    if (!file || !this.bootflash.delete(file)) return `%Error deleting ${path} (No such file or directory)\n`;
    return "";
  }

  show(cp: CapturePoint): string {
    const v = this.view(cp);
    const lines = [`Status Information for Capture ${v.name}`, `  Target Type:`];
    for (const i of v.interfaces) lines.push(` Interface: ${i.name}, Direction: ${i.direction.toUpperCase()}`);
    lines.push(`   Status : ${v.state === "active" ? "Active" : "Inactive"}`);
    lines.push(`  Filter Details:`);
    const m = cp.match?.match;
    if (!m) lines.push(`   Filter not attached`);
    else if (m.kind === "any") lines.push(`   Capture all packets`);
    else {
      const t = cp.match!.text.split(" ");
      lines.push(`   ${m.family === 4 ? "IPv4" : "IPv6"}`, `    Protocol: ${m.proto ?? "any"}`, `    Filter: ${t.slice(1).join(" ")}`);
    }
    lines.push(`  Buffer Details:`, `   Buffer Type: ${v.circular ? "CIRCULAR" : "LINEAR (default)"}`, `   Buffer Size (in MB): ${v.bufferMb}`);
    lines.push(
      `  Limit Details:`,
      `   Number of Packets to capture: ${v.limit.packets ?? 0}${v.limit.packets ? "" : " (no limit)"}`,
      `   Packet Capture duration: ${v.limit.duration ?? 0}${v.limit.duration ? "" : " (no limit)"}`,
      `   Packet Size to capture: ${v.limit.packetLen ?? 0}${v.limit.packetLen ? "" : " (no limit)"}`,
      `   Packet sampling rate: ${v.limit.every ?? 0}${v.limit.every ? "" : " (no sampling)"}`,
      `   Packets in buffer: ${v.packets}`,
    );
    return lines.join("\n") + "\n";
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const YANG_JSON = "application/yang-data+json";

function sendYang(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, status, body, headers, YANG_JSON, 2);
}

/** RFC 8040 section 7.1: the errors envelope. */
function restconfErrors(type: "transport" | "rpc" | "protocol" | "application", tag: string, message: string, path?: string): unknown {
  return { "ietf-restconf:errors": { error: [{ "error-type": type, "error-tag": tag, ...(path ? { "error-path": path } : {}), "error-message": message }] } };
}

const MAX_BODY = 64 * 1024;

function isEmptyLeaf(v: unknown): boolean {
  return Array.isArray(v) && v.length === 1 && v[0] === null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const DEFAULT_INTERFACES: IosXeInterface[] = [
  { name: "GigabitEthernet1", ip: "192.0.2.1 255.255.255.0" },
  { name: "GigabitEthernet2", ip: "198.51.100.1 255.255.255.0" },
  { name: "GigabitEthernet3" },
  { name: "GigabitEthernet4", vrf: "MGMT", ip: "203.0.113.1 255.255.255.0" },
];

// ---------------------------------------------------------------------------------------------

export async function startIosXeDevice(opts: IosXeDeviceOptions): Promise<IosXeDevice> {
  const address = opts.address ?? "127.0.0.1";
  const hostname = opts.hostname ?? "edge-rtr1";
  const model = opts.model ?? "C8000V";
  const version = opts.version ?? "17.09.04a";
  const serial = opts.serial ?? `9${address.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join("").toUpperCase()}EMU`.slice(0, 11);
  const interfaces = opts.interfaces ?? DEFAULT_INTERFACES;
  const tls = opts.tls ?? (await sharedTlsCertificate());
  const hostKey = sharedHostKey();
  const source = new SyntheticPacketSource({ device: /^\d+\.\d+\.\d+\.\d+$/.test(address) ? address : "192.0.2.254", ...(opts.peer ? { peer: opts.peer } : {}), packetsPerSecond: opts.packetsPerSecond ?? 200 });
  const epc = new Epc(source, opts.flowInterface ?? interfaces[0]?.name ?? "GigabitEthernet1");
  let faults: IosXeFaults = { ...opts.faults };
  const st = { requests: 0, rpcs: [] as RpcRecord[], commands: [] as string[], sshConnections: 0, fileRefusals: 0, closed: false };

  function record(line: string): void {
    st.commands.push(line);
    if (st.commands.length > 500) st.commands.shift();
  }

  function takeFault<K extends keyof IosXeFaults>(key: K, match: (f: NonNullable<IosXeFaults[K]>) => boolean): NonNullable<IosXeFaults[K]> | undefined {
    const f = faults[key];
    if (!f || !match(f as NonNullable<IosXeFaults[K]>)) return undefined;
    if (f.times !== undefined) {
      if (f.times <= 0) return undefined;
      f.times--;
    }
    return f as NonNullable<IosXeFaults[K]>;
  }

  /** Typed names (case-insensitive, IOS abbreviations) → the device's interface, if it has it. */
  function resolveInterface(typed: string): string | undefined {
    const m = /^([A-Za-z-]+)(\d[\d/.:]*)$/.exec(typed);
    if (!m) return undefined;
    const t = m[1]!.toLowerCase();
    const type = IOSXE_TYPES.find(([full, ...ab]) => full.toLowerCase() === t || ab.includes(t))?.[0];
    const full = `${type ?? m[1]}${m[2]}`;
    return interfaces.find((i) => i.name.toLowerCase() === full.toLowerCase())?.name;
  }

  const nativeVersion = version.replace(/^(\d+)\.0?(\d+).*$/, "$1.$2");

  // --- CLI ----------------------------------------------------------------------------------------
  type CliResult = { output: string } | { invalidAt: number; message: string };

  function showVersion(): string {
    return [
      `Cisco IOS XE Software, Version ${version}`,
      `Cisco IOS Software [Cupertino], Virtual XE Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), Version ${version.replace(/\.0(\d)/g, ".$1")}, RELEASE SOFTWARE (fc3)`,
      `Technical Support: http://www.cisco.com/techsupport`,
      `Copyright (c) 1986-2023 by Cisco Systems, Inc.`,
      `Compiled Fri 20-Oct-23 10:44 by mcpre`,
      ``,
      `ROM: IOS-XE ROMMON`,
      ``,
      `${hostname} uptime is 1 hour, 2 minutes`,
      `Uptime for this control processor is 1 hour, 4 minutes`,
      `System returned to ROM by reload`,
      `System image file is "bootflash:packages.conf"`,
      `Last reload reason: reload`,
      ``,
      `This product contains cryptographic features and is subject to United`,
      `States and local country laws governing import, export, transfer and use.`,
      ``,
      `License Level: network-advantage`,
      `License Type: Perpetual`,
      `Next reload license Level: network-advantage`,
      ``,
      `cisco ${model} (VXE) processor (revision VXE) with 2028465K/3075K bytes of memory.`,
      `Processor board ID ${serial}`,
      `Router operating mode: Autonomous`,
      `${interfaces.length} Gigabit Ethernet interfaces`,
      `32768K bytes of non-volatile configuration memory.`,
      `3965112K bytes of physical memory.`,
      `11526144K bytes of virtual hard disk at bootflash:.`,
      ``,
      `Configuration register is 0x2102`,
      ``,
    ].join("\n");
  }

  function runningConfigInterface(name: string): string {
    const i = interfaces.find((x) => x.name === name)!;
    const body = [`interface ${i.name}`, ...(i.vrf ? [` vrf forwarding ${i.vrf}`] : []), i.ip ? ` ip address ${i.ip}` : " no ip address", " negotiation auto", "end"];
    return ["Building configuration...", "", `Current configuration : ${body.join("\n").length + 1} bytes`, "!", ...body, ""].join("\n");
  }

  /** One exec-mode CLI line. */
  function execCli(line: string): CliResult {
    const [cmdPart, ...pipe] = line.split("|");
    const words = cmdPart!.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return { output: "" };
    const invalid = (at: number, message = "invalid input"): CliResult => ({ invalidAt: at, message });
    let out: CliResult;
    const w0 = words[0]!;
    if (w0 === "terminal" && (words[1] === "length" || words[1] === "width") && /^\d+$/.test(words[2] ?? "") && words.length === 3) {
      out = { output: "" };
    } else if (w0 === "show" && words[1] === "version" && words.length === 2) {
      out = { output: showVersion() };
    } else if (w0 === "show" && (words[1] === "running-config" || words[1] === "run") && words[2] === "interface") {
      const name = words[3] === undefined ? undefined : resolveInterface(words[3]);
      out = name && words.length === 4 ? { output: runningConfigInterface(name) } : invalid(3);
    } else if (w0 === "show" && words[1] === "monitor" && words[2] === "capture") {
      if (words.length === 3) out = { output: [...epc.points.values()].map((cp) => epc.show(cp)).join("\n") };
      else if (words.length === 4) {
        const cp = epc.points.get(words[3]!);
        out = { output: cp ? epc.show(cp) : `Capture point ${words[3]} does not exist\n` };
      } else out = invalid(4);
    } else if (w0 === "monitor" && words[1] === "capture") {
      const p = parseMonitor(words.slice(2), resolveInterface);
      out = p.ok ? { output: epc.run(p.value) } : invalid(p.at + 2, p.message);
    } else if (w0 === "no" && words[1] === "monitor" && words[2] === "capture") {
      out = words.length === 4 && NAME.test(words[3]!) ? { output: epc.remove(words[3]!) } : invalid(4);
    } else if (w0 === "delete") {
      const force = words[1] === "/force";
      const path = words[force ? 2 : 1];
      // Without /force IOS asks "Delete filename [...]?" interactively; only /force is emulated.
      out = force && path && words.length === 3 ? { output: epc.delete(path) } : invalid(force ? 2 : 1);
    } else if (w0 === "dir" && (words[1] === "bootflash:" || words[1] === undefined) && words.length <= 2) {
      const rows = [...epc.bootflash].map(([n, f], i) => `${String(i + 11).padStart(6)}  -rw-  ${String(f.data.length).padStart(12)}  ${f.mtime.toUTCString()}  ${n}`);
      out = { output: ["Directory of bootflash:/", "", ...rows, "", "11526144000 bytes total (10000000000 bytes free)", ""].join("\n") };
    } else {
      out = invalid(0);
    }
    if ("output" in out && pipe.length > 0) {
      const m = /^\s*(include|exclude|i|e)\s+(.+?)\s*$/.exec(pipe.join("|"));
      if (!m) return invalid(words.length);
      let re: RegExp;
      try {
        re = new RegExp(m[2]!);
      } catch {
        return invalid(words.length);
      }
      const keep = m[1]!.startsWith("i");
      out = { output: out.output.split("\n").filter((l) => re.test(l) === keep).join("\n") + "\n" };
    }
    return out;
  }

  function cliClass(line: string): "probe" | "capture" | "other" {
    if (/^\s*show\s+version/.test(line)) return "probe";
    if (/^\s*(no\s+)?monitor\s+capture|^\s*show\s+monitor|^\s*delete\s/.test(line)) return "capture";
    return "other";
  }

  // --- RESTCONF -----------------------------------------------------------------------------------
  const RPC_PREFIX = "/restconf/operations/Cisco-IOS-XE-rpc:";
  const NATIVE = "/restconf/data/Cisco-IOS-XE-native:native";

  function nativeBody(fields: string | null): Record<string, unknown> {
    const all: Record<string, unknown> = {
      version: nativeVersion,
      hostname,
      license: { udi: { pid: model, sn: serial } },
      interface: { GigabitEthernet: interfaces.filter((i) => i.name.startsWith("GigabitEthernet")).map((i) => ({ name: i.name.slice("GigabitEthernet".length), ...(i.vrf ? { vrf: { forwarding: i.vrf } } : {}) })) },
    };
    if (!fields) return all;
    const out: Record<string, unknown> = {};
    for (const f of fields.split(";")) {
      const [top, ...rest] = f.split("/");
      let v: unknown = all[top!];
      for (const k of rest) v = isObject(v) ? v[k] : undefined;
      if (v === undefined) continue;
      // Rebuild the path down to the selected node.
      let node: Record<string, unknown> = out;
      const keys = [top!, ...rest];
      keys.forEach((k, i) => {
        if (i === keys.length - 1) node[k] = v;
        else node = (node[k] ??= {}) as Record<string, unknown>;
      });
    }
    return out;
  }

  function validateMonitorInput(input: Record<string, unknown>): { words: string[] } | { tag: string; message: string; path: string } {
    const base = "/Cisco-IOS-XE-rpc:monitor/input";
    const bad = (leaf: string, message: string, tag = "invalid-value") => ({ tag, message, path: `${base}/${leaf}` });
    const known = ["capture", "match", "interface", "both", "in", "out", "buffer", "limit", "start", "stop", "stop_export", "export", "access-list", "control-plane", "inner", "pcm-tracer"];
    for (const k of Object.keys(input)) if (!known.includes(k)) return bad(k, `unknown element ${k}`, "unknown-element");
    for (const k of ["access-list", "control-plane", "inner", "pcm-tracer"]) if (k in input) return bad(k, `${k} is not supported by this device`, "operation-not-supported");
    const name = input.capture;
    if (typeof name !== "string" || !NAME.test(name)) return bad("capture", "capture: a capture point name (1..32 letters, digits, _ -) is required");
    const words = [name];
    const dirs = (["both", "in", "out"] as const).filter((d) => d in input);
    for (const d of dirs) if (!isEmptyLeaf(input[d])) return bad(d, `${d} is an empty leaf: [null]`);
    if (dirs.length > 1) return bad(dirs[1]!, "only one of both, in, out");
    if (input.interface !== undefined) {
      if (typeof input.interface !== "string") return bad("interface", "interface must be a string");
      const iface = resolveInterface(input.interface);
      if (!iface) return bad("interface", `Invalid interface name: ${input.interface} does not exist on this device`);
      if (dirs.length === 0) return bad("interface", "interface needs a direction: both, in or out");
      words.push("interface", iface, dirs[0]!);
    } else if (dirs.length > 0) return bad(dirs[0]!, "a direction needs an interface");
    if (input.match !== undefined) {
      if (typeof input.match !== "string") return bad("match", "match must be a string");
      const mw = input.match.trim().split(/\s+/);
      const m = parseMatch(mw, 0);
      if (!m.ok || m.next !== mw.length) return bad("match", `invalid match filter '${input.match}'${m.ok ? "" : `: ${m.message}`}`);
      words.push("match", ...mw);
    }
    if (input.buffer !== undefined) {
      const b = input.buffer;
      if (!isObject(b)) return bad("buffer", "buffer must be a container");
      for (const k of Object.keys(b)) if (k !== "size" && k !== "circular") return bad(`buffer/${k}`, `unknown element ${k}`, "unknown-element");
      words.push("buffer");
      if (b.circular !== undefined) {
        if (!isEmptyLeaf(b.circular)) return bad("buffer/circular", "circular is an empty leaf: [null]");
        words.push("circular");
      }
      if (b.size !== undefined) {
        if (typeof b.size !== "number" || !Number.isInteger(b.size) || b.size < 1 || b.size > 100) return bad("buffer/size", `"${String(b.size)}" is not a valid value: range 1..100`);
        words.push("size", String(b.size));
      }
      if (words[words.length - 1] === "buffer") return bad("buffer", "buffer needs size or circular");
    }
    if (input.limit !== undefined) {
      const l = input.limit;
      if (!isObject(l)) return bad("limit", "limit must be a container");
      words.push("limit");
      for (const [k, v] of Object.entries(l)) {
        const r = LIMIT_RANGES[k];
        if (!r) return bad(`limit/${k}`, `unknown element ${k}`, "unknown-element");
        if (typeof v !== "number" || !Number.isInteger(v) || v < r[0] || v > r[1]) return bad(`limit/${k}`, `"${String(v)}" is not a valid value: range ${r[0]}..${r[1]}`);
        words.push(k, String(v));
      }
      if (words[words.length - 1] === "limit") return bad("limit", "limit needs duration, every, packet-len, packets or pps");
    }
    const actions = ["start", "stop", "stop_export", "export"].filter((a) => a in input);
    if (actions.length > 1) return bad(actions[1]!, "only one of start, stop, stop_export, export");
    const a = actions[0];
    if (a === "export") {
      if (typeof input.export !== "string") return bad("export", "export is the location string, e.g. bootflash:cap.pcap");
      words.push("export", input.export);
    } else if (a) {
      if (!isEmptyLeaf(input[a])) return bad(a, `${a} is an empty leaf: [null]`);
      words.push(a);
    }
    if (words.length === 1) return bad("capture", "nothing to do: give an interface, match, buffer, limit or an action");
    return { words };
  }

  async function handleRpc(rpc: string, body: Buffer, res: ServerResponse): Promise<void> {
    const rec: RpcRecord = { rpc, input: undefined, httpStatus: 0 };
    st.rpcs.push(rec);
    if (st.rpcs.length > 200) st.rpcs.shift();
    const answer = (status: number, b: unknown) => {
      rec.httpStatus = status;
      sendYang(res, status, b);
    };
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      return answer(400, restconfErrors("protocol", "malformed-message", "The request body is not valid JSON"));
    }
    const input = isObject(parsed) ? parsed["Cisco-IOS-XE-rpc:input"] : undefined;
    rec.input = input;
    if (!isObject(input) || Object.keys(parsed as object).length !== 1) {
      return answer(400, restconfErrors("protocol", "malformed-message", `expected {"Cisco-IOS-XE-rpc:input": {...}}`));
    }
    const output = (result: string) => answer(200, { "Cisco-IOS-XE-rpc:output": { result } });
    if (rpc === "monitor") {
      const v = validateMonitorInput(input);
      if ("tag" in v) return answer(v.tag === "operation-not-supported" ? 501 : 400, restconfErrors("application", v.tag, v.message, v.path));
      const line = `monitor capture ${v.words.join(" ")}`;
      record(line);
      const r = execCli(line);
      if ("invalidAt" in r) return answer(400, restconfErrors("application", "invalid-value", r.message, "/Cisco-IOS-XE-rpc:monitor/input"));
      return output(r.output);
    }
    if (rpc === "no") {
      const m = input.monitor;
      if (!isObject(m) || Object.keys(input).length !== 1) return answer(400, restconfErrors("application", "invalid-value", "only 'no monitor capture <name>' is supported", "/Cisco-IOS-XE-rpc:no/input"));
      const keys = Object.keys(m);
      if (keys.length !== 1 || typeof m.capture !== "string" || !NAME.test(m.capture)) {
        return answer(400, restconfErrors("application", "invalid-value", "no monitor: give exactly capture <name>", "/Cisco-IOS-XE-rpc:no/input/monitor"));
      }
      const line = `no monitor capture ${m.capture}`;
      record(line);
      return output(epc.remove(m.capture));
    }
    if (rpc === "delete") {
      const f = input["filename-drop-node-name"];
      if (typeof f !== "string" || !/^(bootflash:|harddisk:|flash:|nvram:).+/.test(f) || Object.keys(input).length !== 1) {
        return answer(400, restconfErrors("application", "invalid-value", "filename-drop-node-name must match (bootflash:|harddisk:|flash:|nvram:).*", "/Cisco-IOS-XE-rpc:delete/input/filename-drop-node-name"));
      }
      const line = `delete /force ${f}`;
      record(line);
      return output(epc.delete(f));
    }
    return answer(404, restconfErrors("application", "invalid-value", IOSXE_MESSAGES.notFound));
  }

  const heldSockets = new Set<Socket>();
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    st.requests++;
    if (opts.latencyMs) await sleep(opts.latencyMs);
    if (st.closed) return void req.socket.destroy();
    const url = new URL(req.url ?? "/", "https://device");
    if (opts.restconf === false) {
      res.writeHead(404, { "content-type": "text/html" });
      return void res.end("<html><body>404 Not Found</body></html>");
    }
    const credentials = basicCredentials(req);
    // No header, or one without the colon between user-id and password (RFC 7617 section 2): refused.
    if (credentials?.password === undefined || !sameCredentials(credentials, opts.username, opts.password)) {
      return sendYang(res, 401, restconfErrors("protocol", "access-denied", IOSXE_MESSAGES.auth), { "www-authenticate": 'Basic realm="restconf"' });
    }
    const kind = req.method === "POST" ? "rpc" : "probe";
    const fault = takeFault("rest", (f) => (f.on ?? "any") === "any" || f.on === kind);
    if (fault) {
      switch (fault.kind) {
        case "timeout":
          heldSockets.add(req.socket);
          req.socket.once("close", () => heldSockets.delete(req.socket));
          return;
        case "busy":
          return sendYang(res, 409, restconfErrors("application", "in-use", IOSXE_MESSAGES.busy));
        case "server-error":
          return sendYang(res, 500, restconfErrors("application", "operation-failed", IOSXE_MESSAGES.serverError));
        case "unavailable":
          return sendYang(res, 503, restconfErrors("transport", "resource-denied", IOSXE_MESSAGES.unavailable));
      }
    }
    const accept = req.headers.accept;
    if (accept && !/application\/yang-data\+json|application\/json|\*\/\*/.test(accept)) {
      return sendYang(res, 406, restconfErrors("application", "invalid-value", `Accept ${accept} is not supported; use ${YANG_JSON}`));
    }
    const path = url.pathname;
    if (req.method === "GET" && path === "/.well-known/host-meta") {
      const xrd = `<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n    <Link rel='restconf' href='/restconf'/>\n</XRD>\n`;
      res.writeHead(200, { "content-type": "application/xrd+xml", "content-length": Buffer.byteLength(xrd) });
      return void res.end(xrd);
    }
    if (path.startsWith(RPC_PREFIX)) {
      if (req.method !== "POST") return sendYang(res, 405, restconfErrors("protocol", "operation-not-supported", `${req.method} is not allowed on an operation`), { allow: "POST" });
      const ct = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
      if (ct !== YANG_JSON && ct !== "application/json") return sendYang(res, 415, restconfErrors("protocol", "malformed-message", `Content-Type ${ct || "(none)"} is not supported; use ${YANG_JSON}`));
      const body = await readBody(req, MAX_BODY);
      if (!body) return sendYang(res, 413, restconfErrors("transport", "too-big", "request body too large"));
      return handleRpc(path.slice(RPC_PREFIX.length), body, res);
    }
    if (req.method !== "GET") return sendYang(res, 405, restconfErrors("protocol", "operation-not-supported", `${req.method} is not allowed here`), { allow: "GET" });
    if (path === NATIVE) return sendYang(res, 200, { "Cisco-IOS-XE-native:native": nativeBody(url.searchParams.get("fields")) });
    if (path === `${NATIVE}/hostname`) return sendYang(res, 200, { "Cisco-IOS-XE-native:hostname": hostname });
    if (path === `${NATIVE}/version`) return sendYang(res, 200, { "Cisco-IOS-XE-native:version": nativeVersion });
    const vrf = /^\/restconf\/data\/Cisco-IOS-XE-native:native\/interface\/([A-Za-z-]+)=([^/]+)\/vrf\/forwarding$/.exec(path);
    if (vrf) {
      const name = `${vrf[1]}${decodeURIComponent(vrf[2]!)}`;
      const i = interfaces.find((x) => x.name === name);
      if (!i) return sendYang(res, 404, restconfErrors("application", "invalid-value", IOSXE_MESSAGES.notFound));
      if (!i.vrf) {
        res.writeHead(204);
        return void res.end();
      }
      return sendYang(res, 200, { "Cisco-IOS-XE-native:forwarding": i.vrf });
    }
    return sendYang(res, 404, restconfErrors("application", "invalid-value", IOSXE_MESSAGES.notFound));
  }

  const https: HttpsServer = createHttpsServer({ key: tls.key, cert: tls.cert, keepAliveTimeout: 5000 }, (req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) sendYang(res, 500, restconfErrors("application", "operation-failed", IOSXE_MESSAGES.serverError));
      else res.destroy();
    });
  });
  https.on("tlsClientError", () => {});
  const restSockets = new Set<Socket>();
  const restListener = createNetServer((socket) => {
    if (st.closed) return void socket.destroy();
    restSockets.add(socket);
    socket.once("close", () => restSockets.delete(socket));
    socket.on("error", () => {});
    https.emit("connection", socket);
  });
  const restPort = await listen(restListener, address, opts.restPort ?? 0);

  // --- SSH ----------------------------------------------------------------------------------------
  /** File content as SCP/SFTP serve it, with file faults applied once per open. */
  function fileForTransfer(name: string): Buffer | undefined {
    const f = epc.bootflash.get(name);
    if (!f) return undefined;
    const fault = takeFault("file", (x) => x.kind === "truncate" || x.kind === "bad-magic");
    if (fault?.kind === "bad-magic") {
      const copy = Buffer.from(f.data);
      copy.write("XXXX", 0, Math.min(4, copy.length), "latin1");
      return copy;
    }
    if (fault?.kind === "truncate") return Object.assign(f.data.subarray(0, Math.floor(f.data.length / 2)), { announced: f.data.length });
    return f.data;
  }

  /** SCP source mode (`scp -f <file>`), RCP protocol: wait for \0, send C line, wait, send data + \0. */
  function serveScp(stream: ServerChannel, args: string[]): void {
    const fail = (msg: string) => {
      stream.write(Buffer.concat([Buffer.from([1]), Buffer.from(`scp: ${msg}\n`)]));
      stream.exit(1);
      stream.end();
    };
    const path = args.filter((a) => !a.startsWith("-")).pop();
    if (opts.scp === false) {
      stream.stderr.write("% SCP server is not enabled (ip scp server enable)\n");
      stream.exit(1);
      return void stream.end();
    }
    if (!args.includes("-f")) return fail("only downloads (-f) are supported");
    const name = path ? bootflashName(path) : undefined;
    const file = name ? fileForTransfer(name) : undefined;
    let step = 0;
    stream.on("data", (d: Buffer) => {
      if (d[0] !== 0) {
        stream.exit(1);
        return void stream.end();
      }
      if (step === 0) {
        step = 1;
        if (!name || !file) return fail(`${path ?? "(none)"}: No such file or directory`);
        const size = (file as Buffer & { announced?: number }).announced ?? file.length;
        stream.write(`C0644 ${size} ${name}\n`);
      } else if (step === 1) {
        step = 2;
        stream.write(file!);
        if ((file as Buffer & { announced?: number }).announced !== undefined) {
          // Truncated: the connection drops mid-file.
          stream.exit(1);
          return void stream.end();
        }
        stream.write(Buffer.from([0]));
      } else {
        stream.exit(0);
        stream.end();
      }
    });
  }

  function serveSftp(sftp: SFTPWrapper): void {
    const handles = new Map<number, { name: string; data: Buffer } | { dir: true; done: boolean }>();
    let next = 1;
    const handle = (h: { name: string; data: Buffer } | { dir: true; done: boolean }) => {
      const id = next++;
      handles.set(id, h);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(id);
      return b;
    };
    const get = (b: Buffer) => (b.length === 4 ? handles.get(b.readUInt32BE(0)) : undefined);
    const attrs = (size: number, dir = false) => ({ mode: (dir ? 0o040755 : 0o100644) as number, uid: 0, gid: 0, size, atime: 0, mtime: Math.floor(Date.now() / 1000) });
    const isDir = (p: string) => /^\/?(bootflash|flash):\/?$/.test(p);
    sftp.on("OPEN", (id: number, filename: string, flags: number) => {
      if (flags & (SFTP_OPEN.WRITE | SFTP_OPEN.APPEND | SFTP_OPEN.CREAT | SFTP_OPEN.TRUNC)) return sftp.status(id, SFTP_STATUS.PERMISSION_DENIED, "read-only");
      const name = bootflashName(filename);
      const data = name ? fileForTransfer(name) : undefined;
      if (!name || !data) return sftp.status(id, SFTP_STATUS.NO_SUCH_FILE, "No such file");
      sftp.handle(id, handle({ name, data }));
    });
    sftp.on("READ", (id: number, h: Buffer, offset: number, len: number) => {
      const f = get(h);
      if (!f || "dir" in f) return sftp.status(id, SFTP_STATUS.FAILURE, "invalid handle");
      if (offset >= f.data.length) return sftp.status(id, SFTP_STATUS.EOF);
      sftp.data(id, f.data.subarray(offset, offset + Math.min(len, 32 * 1024)));
    });
    sftp.on("FSTAT", (id: number, h: Buffer) => {
      const f = get(h);
      if (!f) return sftp.status(id, SFTP_STATUS.FAILURE, "invalid handle");
      if ("dir" in f) return sftp.attrs(id, attrs(0, true));
      sftp.attrs(id, attrs((f.data as Buffer & { announced?: number }).announced ?? f.data.length));
    });
    const stat = (id: number, p: string) => {
      if (isDir(p)) return sftp.attrs(id, attrs(0, true));
      const name = bootflashName(p);
      const f = name ? epc.bootflash.get(name) : undefined;
      if (!f) return sftp.status(id, SFTP_STATUS.NO_SUCH_FILE, "No such file");
      sftp.attrs(id, attrs(f.data.length));
    };
    sftp.on("STAT", stat);
    sftp.on("LSTAT", stat);
    sftp.on("CLOSE", (id: number, h: Buffer) => {
      if (h.length === 4) handles.delete(h.readUInt32BE(0));
      sftp.status(id, SFTP_STATUS.OK);
    });
    sftp.on("REALPATH", (id: number, p: string) => {
      const v = p === "." || p === "" ? "/bootflash:" : p;
      sftp.name(id, [{ filename: v, longname: v, attrs: attrs(0, isDir(v)) }]);
    });
    sftp.on("OPENDIR", (id: number, p: string) => {
      if (!isDir(p)) return sftp.status(id, SFTP_STATUS.NO_SUCH_FILE, "No such directory");
      sftp.handle(id, handle({ dir: true, done: false }));
    });
    sftp.on("READDIR", (id: number, h: Buffer) => {
      const d = get(h);
      if (!d || !("dir" in d)) return sftp.status(id, SFTP_STATUS.FAILURE, "invalid handle");
      if (d.done) return sftp.status(id, SFTP_STATUS.EOF);
      d.done = true;
      sftp.name(id, [...epc.bootflash].map(([n, f]) => ({ filename: n, longname: `-rw-r--r--    1 0        0        ${f.data.length} ${n}`, attrs: attrs(f.data.length) })));
    });
    const deny = (id: number) => sftp.status(id, SFTP_STATUS.PERMISSION_DENIED, "read-only");
    for (const ev of ["WRITE", "FSETSTAT", "SETSTAT", "REMOVE", "RMDIR", "MKDIR", "RENAME", "SYMLINK"] as const) sftp.on(ev, deny);
    sftp.on("READLINK", (id: number) => sftp.status(id, SFTP_STATUS.OP_UNSUPPORTED, "not supported"));
    sftp.on("end", () => sftp.end());
  }

  /** The interactive exec shell: echo, prompt, paging by `terminal length`. */
  function serveShell(stream: ServerChannel, pty: { rows: number } | undefined): void {
    let length = pty?.rows && pty.rows > 0 ? pty.rows : 24;
    let buf = "";
    let hung = false;
    let more: string[] | undefined;
    let lastWasCr = false;
    const userExec = opts.privilege === 1;
    const prompt = `${hostname}${userExec ? ">" : "#"}`;
    const write = (s: string) => stream.write(s.replace(/\r?\n/g, "\r\n"));
    const page = () => {
      if (!more) return;
      const take = more.splice(0, Math.max(1, length - 1));
      write(take.join("\n") + "\n");
      if (more.length > 0) stream.write(" --More-- ");
      else {
        more = undefined;
        stream.write(prompt);
      }
    };
    const runLine = (line: string) => {
      const trimmed = line.trim();
      if (trimmed === "") return void stream.write(prompt);
      if (/^(exit|logout|quit)$/.test(trimmed)) {
        stream.exit(0);
        return void stream.end();
      }
      const cls = cliClass(trimmed);
      if (takeFault("cli", (f) => (f.on ?? "any") === "any" || f.on === cls)) {
        hung = true; // the command never returns
        return;
      }
      record(trimmed);
      const t = /^terminal\s+length\s+(\d+)$/.exec(trimmed);
      if (t) length = Number(t[1]);
      // User EXEC knows `show version` and `terminal`, not the privileged commands.
      const r: CliResult = userExec && !/^(show\s+version|terminal\s)/.test(trimmed) ? { invalidAt: 0, message: "privileged command" } : execCli(trimmed);
      let out: string;
      if ("invalidAt" in r) {
        const words = trimmed.split(/\s+/);
        const col = prompt.length + words.slice(0, r.invalidAt).reduce((n, w) => n + w.length + 1, 0);
        out = `${" ".repeat(col)}^\n% Invalid input detected at '^' marker.\n\n`;
      } else out = r.output;
      const lines = out.endsWith("\n") ? out.slice(0, -1).split("\n") : out === "" ? [] : out.split("\n");
      if (length > 0 && lines.length >= length) {
        more = lines;
        return page();
      }
      write(lines.length ? lines.join("\n") + "\n" : "");
      stream.write(prompt);
    };
    stream.on("data", (d: Buffer) => {
      if (hung) return;
      for (const ch of d.toString("utf8")) {
        if (more) {
          // --More--: space pages, return shows a line, anything else ends the listing.
          stream.write("\r          \r");
          if (ch === " ") page();
          else if (ch === "\r" || ch === "\n") {
            const saved = length;
            length = 2;
            page();
            length = saved;
          } else {
            more = undefined;
            stream.write(prompt);
          }
          continue;
        }
        if (ch === "\r" || ch === "\n") {
          if (ch === "\n" && buf === "" && lastWasCr) {
            lastWasCr = false;
            continue;
          }
          lastWasCr = ch === "\r";
          stream.write("\r\n");
          const line = buf;
          buf = "";
          runLine(line);
          if (hung) return;
        } else {
          lastWasCr = false;
          buf += ch;
          stream.write(ch); // echo, as a pty does
        }
      }
    });
    stream.write(`\r\n${prompt}`);
  }

  const ssh = new SshServer({ hostKeys: [{ key: hostKey.parsed }], ident: "Cisco-1.25" });
  ssh.on("connection", (client: Connection) => {
    client.on("error", () => {});
    let failures = 0;
    client.on("authentication", (ctx) => {
      if (ctx.method === "password" && safeEqual(ctx.username, opts.username) && safeEqual(ctx.password, opts.password)) return ctx.accept();
      if (ctx.method !== "none" && ++failures >= 3) return void client.end();
      ctx.reject(["password"]);
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        const session = accept();
        let pty: { rows: number } | undefined;
        session.on("pty", (acceptPty, _reject, info) => {
          pty = { rows: info.rows };
          acceptPty?.();
        });
        session.on("window-change", (acceptWc) => acceptWc?.());
        session.on("env", (acceptEnv) => acceptEnv?.());
        session.on("shell", (acceptShell) => serveShell(acceptShell(), pty));
        session.on("exec", (acceptExec, _reject, info) => {
          const stream = acceptExec();
          const words = info.command.trim().split(/\s+/);
          if (words[0] === "scp") return serveScp(stream, words.slice(1));
          // IOS-XE runs one exec command per channel and closes it.
          record(info.command.trim());
          const r = execCli(info.command);
          stream.write(("output" in r ? r.output : "% Invalid input detected at '^' marker.\n").replace(/\r?\n/g, "\r\n"));
          stream.exit("output" in r ? 0 : 1);
          stream.end();
        });
        // ssh2 raises "sftp" for the sftp subsystem and "subsystem" for any other: none exists here.
        session.on("subsystem", (_accept, rejectSub) => rejectSub());
        session.on("sftp", (acceptSftp, rejectSftp) => {
          if (opts.sftp === false) return rejectSftp();
          serveSftp(acceptSftp());
        });
      });
    });
  });
  const sshSockets = new Set<Socket>();
  const sshListener = createNetServer((socket) => {
    if (st.closed) return void socket.destroy();
    if (takeFault("file", (f) => f.kind === "refuse")) {
      st.fileRefusals++;
      socket.on("error", () => {});
      return void socket.resetAndDestroy();
    }
    st.sshConnections++;
    sshSockets.add(socket);
    socket.once("close", () => sshSockets.delete(socket));
    socket.on("error", () => {});
    ssh.injectSocket(socket);
  });
  let sshPort: number;
  try {
    sshPort = await listen(sshListener, address, opts.sshPort ?? 0);
  } catch (err) {
    restListener.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    address,
    restPort,
    sshPort,
    username: opts.username,
    hostname,
    baseUrl: `https://${formatEndpoint(address, restPort)}`,
    certificate: tls.cert,
    hostKey: hostKey.public,
    state: () => ({
      capturePoints: [...epc.points.values()].map((cp) => epc.view(cp)),
      bootflash: [...epc.bootflash].map(([name, f]) => ({ name, size: f.data.length })),
      requests: st.requests,
      rpcs: st.rpcs.map((r) => ({ ...r })),
      commands: [...st.commands],
      sshConnections: st.sshConnections,
      fileRefusals: st.fileRefusals,
    }),
    capturePoint: (name) => {
      const cp = epc.points.get(name);
      return cp ? epc.view(cp) : undefined;
    },
    bootflashFile: (name) => epc.bootflash.get(name)?.data,
    lastExport: () => epc.lastExport,
    setFault(f) {
      faults = { ...faults, ...f };
    },
    clearFaults() {
      faults = {};
    },
    close() {
      closing ??= (async () => {
        st.closed = true;
        await Promise.all([closeListener(restListener, restSockets, heldSockets), closeListener(sshListener, sshSockets)]);
        https.close();
      })();
      return closing;
    },
  };
}
