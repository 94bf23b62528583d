// AudioCodes device emulator (MSBR and Mediant GW/SBC, 7.2/7.4 firmware REST API as used by the
// original cpe_capture_app): HTTPS `GET /api/v1/status`, `PUT /api/v1/files/cliScript/incremental`
// with the debug-capture commands, and SFTP of /debug-capture/debug-capture-data.pcap.
// Not emulated: any other CLI command, other REST resources, sessions/cookies, HTTP (plain) access.
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fsp } from "node:fs";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createNetServer, isIPv4, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { formatEndpoint } from "@capsync/protocol";
import { pcapGlobalHeader, SyntheticPacketSource } from "./pcap-synth.js";
import { passwordCheck, sharedHostKey, startSftpServer, type SftpServerHandle } from "@capsync/server-capture/sftp-server";
import { basicCredentials, closeListener, listen, readBody, sameCredentials, sendJson } from "./http.js";
import { sharedTlsCertificate, type TlsMaterial } from "./tls.js";

export type AudioCodesType = "msbr" | "gwsbc";

/** Remote path of the capture file, as the device serves it over SFTP. */
export const DEBUG_CAPTURE_REMOTE_PATH = "/debug-capture/debug-capture-data.pcap";
export const CLI_SCRIPT_PATH = "/api/v1/files/cliScript/incremental";
export const STATUS_PATH = "/api/v1/status";

/** Interfaces the `debug capture ... physical <iface>` command accepts, per device type. */
export const AUDIOCODES_CAPTURE_INTERFACES: Readonly<Record<AudioCodesType, readonly string[]>> = {
  msbr: ["cellular-wan", "fiber-wan", "xdsl-wan", "shdsl-wan", "t1-e1-wan", "eth-wan", "eth-lan"],
  gwsbc: ["eth-lan"],
};
const COMMAND_PREFIX: Record<AudioCodesType, string> = {
  msbr: "debug capture data physical",
  gwsbc: "debug capture voip physical",
};

export type AudioCodesCapture =
  | {
      kind: "synthetic";
      /** Default 100. */
      packetsPerSecond?: number;
      /** Far end of the synthetic flow (default 192.0.2.1). */
      peer?: string;
      /** Capture buffer size of the device: packets beyond it are dropped (default 16 MiB). */
      maxBytes?: number;
      payloadBytes?: number;
    }
  | {
      kind: "tcpdump";
      iface: string;
      /** Run as `ip netns exec <netns> tcpdump …` (demo lab). */
      netns?: string;
      /** Optional BPF filter (default: everything on the interface, like the device's physical capture). */
      filter?: string;
      tcpdumpPath?: string;
      /** How long to wait for tcpdump's "listening on" (default 5000 ms). */
      startTimeoutMs?: number;
    };

export type RestFaultKind = "timeout" | "busy" | "server-error" | "forbidden" | "unavailable" | "bad-json";
export interface RestFault {
  /** timeout: never answers; busy 409; server-error 500; forbidden 403; unavailable 503; bad-json: 200 with a cut body. */
  kind: RestFaultKind;
  /** Which requests it hits (default "any"; authentication is checked first either way). */
  on?: "status" | "cli" | "any";
  /** Hit only the next `times` matching requests (default: until cleared). */
  times?: number;
  /** Overrides the device's description text. */
  description?: string;
}
export type SftpFaultKind = "refuse" | "missing-file" | "truncate" | "bad-magic";
export interface SftpFault {
  /** refuse: TCP reset before the SSH handshake; missing-file: NO_SUCH_FILE; truncate: reads stop at half
   *  the size stat reports; bad-magic: the first 4 bytes read are "XXXX". */
  kind: SftpFaultKind;
  /** Only the next `times` connections (refuse) or opens (the others); default: until cleared. */
  times?: number;
}
export interface AudioCodesFaults {
  rest?: RestFault | undefined;
  sftp?: SftpFault | undefined;
  /** After each start/stop, the next `showLag` `show` commands still report the previous state. */
  showLag?: number | undefined;
}

export const DESCRIPTIONS = {
  auth: "Authentication failed: wrong user name or password",
  busy: "Device is busy: another CLI script is being executed",
  "server-error": "Internal error while executing the CLI script",
  forbidden: "Access denied: the user has no privilege for this action",
  unavailable: "Service temporarily unavailable",
  notFound: "Resource not found",
  noInterface: "No interface selected for debug capture",
} as const;

export interface AudioCodesDeviceOptions {
  type: AudioCodesType;
  /** Loopback address to listen on (default 127.0.0.1); also the "device" address in synthetic packets. */
  address?: string;
  username: string;
  password: string;
  /** 0 (default): any free port. */
  restPort?: number;
  sshPort?: number;
  /** Delay before every REST answer. */
  latencyMs?: number;
  faults?: AudioCodesFaults;
  /** Default: synthetic, 100 packets/s. */
  capture?: AudioCodesCapture;
  productType?: string;
  versionID?: string;
  serialNumber?: string;
  /** CLI prompt name used in outputs (default "MSBR" / "SBC"). */
  hostname?: string;
  /** Directory served over SFTP (default: a fresh temp directory, removed on close). */
  dataDir?: string;
  /** Own TLS certificate instead of the shared one (costs a TLS context per device). */
  tls?: TlsMaterial;
}

export interface CliScriptRecord {
  fileName: string | undefined;
  lines: string[];
  httpStatus: number;
}

export interface AudioCodesDeviceState {
  capturing: boolean;
  interfaces: string[];
  startedAt?: string;
  stoppedAt?: string;
  /** Number of captures started since the device came up. */
  captures: number;
  /** Synthetic packets written to the current/last capture. */
  packets: number;
  /** REST requests received (all paths, all answers). */
  requests: number;
  /** Last 100 CLI scripts received, oldest first. */
  scripts: CliScriptRecord[];
  /** SFTP connections refused by fault injection. */
  sftpRefusals: number;
}

export interface AudioCodesDevice {
  readonly type: AudioCodesType;
  readonly address: string;
  readonly restPort: number;
  readonly sshPort: number;
  readonly username: string;
  /** e.g. https://127.0.0.2:40123 */
  readonly baseUrl: string;
  /** Local path of the file served as DEBUG_CAPTURE_REMOTE_PATH. */
  readonly capturePath: string;
  /** The shared certificate (or `tls.cert`), usable as a client's CA. */
  readonly certificate: string;
  state(): AudioCodesDeviceState;
  /** Merge faults in; a key set to undefined clears that fault. */
  setFault(faults: AudioCodesFaults): void;
  clearFaults(): void;
  /** The current capture file exactly as SFTP serves it (synthetic packets brought up to date), or undefined. */
  capturedFile(): Promise<Buffer | undefined>;
  /** Stops any capture (tcpdump included), closes both servers and drops connections. Safe twice. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// One HTTPS request handler for every device in the process. Devices only own a plain TCP listener
// and hand its sockets to this (never listening) server: one TLS context, one parser pool, and no
// http.Server housekeeping interval per device, which a listening server would start.

interface Route {
  handle(req: IncomingMessage, res: ServerResponse): void;
}
const routes = new Map<string, Route>();
const routeKey = (address: string, port: number): string => `${address.replace(/^::ffff:/, "")}|${port}`;

function makeHttpsServer(tls: TlsMaterial): HttpsServer {
  const srv = createHttpsServer({ key: tls.key, cert: tls.cert, keepAliveTimeout: 5000 }, (req, res) => {
    const route = routes.get(routeKey(req.socket.localAddress ?? "", req.socket.localPort ?? 0));
    if (!route) {
      req.socket.destroy();
      return;
    }
    route.handle(req, res);
  });
  srv.on("tlsClientError", () => {});
  return srv;
}
let sharedHttps: Promise<HttpsServer> | undefined;
function sharedHttpsServer(): Promise<HttpsServer> {
  sharedHttps ??= sharedTlsCertificate().then(makeHttpsServer);
  sharedHttps.catch(() => (sharedHttps = undefined));
  return sharedHttps;
}

// ---------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const nowMicros = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));

const MAX_BODY = 1024 * 1024;

/** The `file` part of a multipart/form-data body (RFC 7578), or why there is none. */
export function parseMultipartFile(contentType: string | undefined, body: Buffer): { ok: true; fileName: string | undefined; content: Buffer } | { ok: false; reason: string } {
  const m = /^multipart\/form-data\s*;.*\bboundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) return { ok: false, reason: "Expected multipart/form-data with a boundary" };
  const delim = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delim);
  while (pos !== -1) {
    const start = pos + delim.length;
    if (body.subarray(start, start + 2).toString() === "--") break;
    const headerEnd = body.indexOf("\r\n\r\n", start);
    if (headerEnd === -1) break;
    const next = body.indexOf(Buffer.concat([Buffer.from("\r\n"), delim]), headerEnd + 4);
    if (next === -1) break;
    const headers = body.subarray(start, headerEnd).toString("latin1");
    const disp = /content-disposition:\s*form-data\s*;([^\r\n]*)/i.exec(headers)?.[1] ?? "";
    const name = /\bname="([^"]*)"/i.exec(disp)?.[1];
    if (name === "file") {
      return { ok: true, fileName: /\bfilename="([^"]*)"/i.exec(disp)?.[1], content: body.subarray(headerEnd + 4, next) };
    }
    pos = next + 2;
  }
  return { ok: false, reason: "Missing multipart part 'file'" };
}

type Command = { kind: "iface"; iface: string } | { kind: "start" } | { kind: "stop" } | { kind: "show" };

/** Parses one CLI line of the debug-capture family; anything else is an error text. */
export function parseDebugCaptureCommand(type: AudioCodesType, line: string): Command | { error: string } {
  const words = line.trim().split(/\s+/);
  const prefix = COMMAND_PREFIX[type].split(" ");
  const rest = words.slice(prefix.length);
  if (words.length !== prefix.length + 1 || prefix.some((w, i) => words[i]?.toLowerCase() !== w)) {
    return { error: `Invalid command: '${line.trim()}'` };
  }
  const arg = rest[0]!.toLowerCase();
  if (arg === "start" || arg === "stop" || arg === "show") return { kind: arg };
  if (AUDIOCODES_CAPTURE_INTERFACES[type].includes(arg)) return { kind: "iface", iface: arg };
  return { error: `Invalid interface '${rest[0]}' (expected one of: ${AUDIOCODES_CAPTURE_INTERFACES[type].join(", ")}, start, stop, show)` };
}

// ---------------------------------------------------------------------------------------------
// Capture sources

interface CaptureSource {
  start(file: string): Promise<void>;
  /** Bring the file up to date (synthetic) — no-op for tcpdump, which writes packet by packet. */
  flush(): Promise<void>;
  stop(): Promise<void>;
  packets(): number;
}

class SyntheticCapture implements CaptureSource {
  private file = "";
  private startMicros = 0n;
  private written = 0;
  private bytes = 0;
  private active = false;
  private io: Promise<void> = Promise.resolve();
  constructor(
    private readonly src: SyntheticPacketSource,
    private readonly maxBytes: number,
  ) {}

  async start(file: string): Promise<void> {
    await this.io;
    this.file = file;
    this.written = 0;
    const header = pcapGlobalHeader();
    this.bytes = header.length;
    await fsp.writeFile(file, header);
    this.startMicros = nowMicros();
    this.active = true;
  }

  flush(): Promise<void> {
    if (!this.active) return this.io;
    const until = nowMicros();
    // Serialised: concurrent SFTP opens and a stop must append each packet exactly once.
    this.io = this.io.then(async () => {
      const due = this.src.packetsDue(until - this.startMicros);
      while (this.written < due && this.bytes < this.maxBytes) {
        const parts: Buffer[] = [];
        let chunk = 0;
        while (this.written < due && chunk < 1 << 20) {
          const rec = this.src.records(this.startMicros, this.written, this.written + 1);
          if (this.bytes + chunk + rec.length > this.maxBytes) {
            this.bytes = this.maxBytes; // buffer full: the device drops the rest
            break;
          }
          parts.push(rec);
          chunk += rec.length;
          this.written++;
        }
        if (parts.length > 0) await fsp.appendFile(this.file, Buffer.concat(parts));
        if (this.bytes < this.maxBytes) this.bytes += chunk;
      }
    });
    return this.io;
  }

  async stop(): Promise<void> {
    await this.flush();
    this.active = false;
  }

  packets(): number {
    return this.written;
  }
}

class TcpdumpCapture implements CaptureSource {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  constructor(private readonly cfg: Extract<AudioCodesCapture, { kind: "tcpdump" }>) {}

  async start(file: string): Promise<void> {
    const tcpdump = this.cfg.tcpdumpPath ?? "tcpdump";
    // --immediate-mode -U: packets reach the file as they arrive (see DESIGN.md "Agent rules").
    // -Z root: Debian's tcpdump would otherwise drop to user tcpdump and be unable to write here.
    const args = ["-i", this.cfg.iface, "--immediate-mode", "-U", "-n", "-Z", "root", "-w", file];
    if (this.cfg.filter) args.push(this.cfg.filter);
    const [cmd, argv] = this.cfg.netns ? ["ip", ["netns", "exec", this.cfg.netns, tcpdump, ...args]] : [tcpdump, args];
    const child = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once("close", () => resolve()));
    let stderr = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`tcpdump did not start listening within ${this.cfg.startTimeoutMs ?? 5000} ms`));
      }, this.cfg.startTimeoutMs ?? 5000);
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (d: string) => {
        stderr += d;
        if (/listening on /.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once("close", (code) => {
        clearTimeout(timer);
        reject(new Error(`tcpdump exited (${code}): ${stderr.trim().split("\n").pop() ?? ""}`));
      });
    });
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGINT");
    const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(killer);
  }

  packets(): number {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------

const DEFAULT_FACTS: Record<AudioCodesType, { productType: string; versionID: string; hostname: string }> = {
  msbr: { productType: "Mediant 500L MSBR", versionID: "7.24A.356.353", hostname: "MSBR" },
  gwsbc: { productType: "Mediant 800 Gateway & E-SBC", versionID: "7.40A.500.786", hostname: "SBC" },
};

function serialFor(address: string, port: number): string {
  const n = isIPv4(address) ? address.split(".").reduce((a, o) => (a * 256 + Number(o)) >>> 0, 0) : port;
  return `EMU${n.toString(16).padStart(8, "0").toUpperCase()}`;
}

export async function startAudioCodesDevice(opts: AudioCodesDeviceOptions): Promise<AudioCodesDevice> {
  const type = opts.type;
  if (!(type in COMMAND_PREFIX)) throw new TypeError(`unknown AudioCodes device type: ${String(type)}`);
  const address = opts.address ?? "127.0.0.1";
  const facts = DEFAULT_FACTS[type];
  const hostname = opts.hostname ?? facts.hostname;
  const ownsDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await fsp.mkdtemp(path.join(tmpdir(), "capsync-audiocodes-")));
  await fsp.mkdir(path.join(dataDir, "debug-capture"), { recursive: true });
  const capturePath = path.join(dataDir, ...DEBUG_CAPTURE_REMOTE_PATH.split("/").filter(Boolean));
  const captureCfg: AudioCodesCapture = opts.capture ?? { kind: "synthetic" };
  const source: CaptureSource =
    captureCfg.kind === "tcpdump"
      ? new TcpdumpCapture(captureCfg)
      : new SyntheticCapture(
          new SyntheticPacketSource({
            // The synthetic frames are IPv4 only; an IPv6-addressed device gets 127.0.0.1 in them.
            device: isIPv4(address) ? address : "127.0.0.1",
            packetsPerSecond: captureCfg.packetsPerSecond ?? 100,
            ...(captureCfg.peer !== undefined ? { peer: captureCfg.peer } : {}),
            ...(captureCfg.payloadBytes !== undefined ? { payloadBytes: captureCfg.payloadBytes } : {}),
          }),
          captureCfg.maxBytes ?? 16 * 1024 * 1024,
        );

  let faults: AudioCodesFaults = { ...opts.faults };
  const st = {
    capturing: false,
    selected: new Set<string>(),
    startedAt: undefined as string | undefined,
    stoppedAt: undefined as string | undefined,
    captures: 0,
    requests: 0,
    scripts: [] as CliScriptRecord[],
    sftpRefusals: 0,
    showLagLeft: 0,
    busy: false,
    closed: false,
  };
  let sftpCorruption: "truncate" | "bad-magic" | undefined;
  let truncateAt = 0;
  const bootTime = Date.now();

  const tls = opts.tls ?? (await sharedTlsCertificate());
  const https = opts.tls ? makeHttpsServer(opts.tls) : await sharedHttpsServer();

  /** Consumes one use of a counted fault; returns whether it applies. */
  function takeRestFault(target: "status" | "cli"): RestFault | undefined {
    const f = faults.rest;
    if (!f || (f.on && f.on !== "any" && f.on !== target)) return undefined;
    if (f.times !== undefined) {
      if (f.times <= 0) return undefined;
      faults = { ...faults, rest: { ...f, times: f.times - 1 } };
    }
    return f;
  }
  function takeSftpFault(kinds: SftpFaultKind[]): SftpFaultKind | undefined {
    const f = faults.sftp;
    if (!f || !kinds.includes(f.kind)) return undefined;
    if (f.times !== undefined) {
      if (f.times <= 0) return undefined;
      faults = { ...faults, sftp: { ...f, times: f.times - 1 } };
    }
    return f.kind;
  }

  function statusBody(): Record<string, unknown> {
    const oct = isIPv4(address) ? address.split(".").map(Number) : [0, 0, 0, 0];
    return {
      localTimeStamp: new Date().toISOString().replace(/\.\d+Z$/, ""),
      ipAddress: address,
      subnetMask: "255.0.0.0",
      defaultGateway: "127.0.0.1",
      productType: opts.productType ?? facts.productType,
      versionID: opts.versionID ?? facts.versionID,
      protocolType: "SIP",
      operationalState: "UNLOCKED",
      highAvailability: "Not Operational",
      serialNumber: opts.serialNumber ?? serialFor(address, restPort),
      macAddress: ["02", "00", ...oct.map((o) => o.toString(16).padStart(2, "0"))].join(":"),
      systemUpTime: Math.floor((Date.now() - bootTime) / 1000),
      saveNeeded: false,
      resetNeeded: false,
    };
  }

  async function setCapturing(on: boolean): Promise<void> {
    if (on) {
      await source.start(capturePath);
      st.capturing = true;
      st.captures++;
      st.startedAt = new Date().toISOString();
      st.stoppedAt = undefined;
    } else {
      await source.stop();
      st.capturing = false;
      st.stoppedAt = new Date().toISOString();
      // The script always re-selects interfaces before start; forgetting them here keeps one run's
      // selection from leaking into the next.
      st.selected.clear();
    }
    st.showLagLeft = faults.showLag ?? 0;
  }

  /** Runs a whole script; parse errors reject it before anything executes. */
  async function runScript(lines: string[]): Promise<{ status: number; body: Record<string, unknown> }> {
    const commands: Array<{ line: string; cmd: Command }> = [];
    for (const [i, raw] of lines.entries()) {
      if (raw.trim() === "") continue;
      const cmd = parseDebugCaptureCommand(type, raw);
      if ("error" in cmd) return { status: 400, body: { status: "failure", description: `Line ${i + 1}: ${cmd.error}`, output: "" } };
      commands.push({ line: raw.trim(), cmd });
    }
    const label = type === "gwsbc" ? "voip physical" : "physical";
    let output = "";
    for (const { line, cmd } of commands) {
      output += `${hostname}# ${line}\n`;
      switch (cmd.kind) {
        case "iface":
          st.selected.add(cmd.iface);
          break;
        case "start":
          if (st.capturing) {
            output += `Debug capture physical is already active\n`;
            break;
          }
          if (st.selected.size === 0) return { status: 400, body: { status: "failure", description: DESCRIPTIONS.noInterface, output } };
          try {
            await setCapturing(true);
          } catch (err) {
            return { status: 500, body: { status: "failure", description: `Debug capture could not start: ${(err as Error).message}`, output } };
          }
          output += `Debug capture ${label} started on ${[...st.selected].join(", ")}\n`;
          break;
        case "stop":
          if (st.capturing) {
            await setCapturing(false);
            output += `Debug capture ${label} stopped\n`;
          } else output += `Debug capture ${label} was not running\n`;
          break;
        case "show": {
          let active = st.capturing;
          if (st.showLagLeft > 0) {
            st.showLagLeft--;
            active = !active;
          }
          output += active
            ? `Debug capture physical is active\nInterfaces: ${[...st.selected].join(", ")}\n`
            : `Debug capture physical is not active\n`;
          break;
        }
      }
    }
    return { status: 200, body: { status: "success", output } };
  }

  const heldSockets = new Set<Socket>();
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    st.requests++;
    if (opts.latencyMs) await sleep(opts.latencyMs);
    if (st.closed) return void req.socket.destroy();
    if (!sameCredentials(basicCredentials(req), opts.username, opts.password)) {
      return sendJson(res, 401, { status: "failure", description: DESCRIPTIONS.auth }, { "www-authenticate": 'Basic realm="AudioCodes"' });
    }
    const url = new URL(req.url ?? "/", "https://device");
    const target = url.pathname === STATUS_PATH ? "status" : url.pathname === CLI_SCRIPT_PATH ? "cli" : undefined;
    if (!target) return sendJson(res, 404, { status: "failure", description: DESCRIPTIONS.notFound });
    if ((target === "status" && req.method !== "GET") || (target === "cli" && req.method !== "PUT")) {
      return sendJson(res, 405, { status: "failure", description: `Method ${req.method} not allowed` }, { allow: target === "status" ? "GET" : "PUT" });
    }
    const fault = takeRestFault(target);
    if (fault) {
      const description = fault.description;
      switch (fault.kind) {
        case "timeout":
          // Keeps the request open until the client gives up or the device closes.
          heldSockets.add(req.socket);
          req.socket.once("close", () => heldSockets.delete(req.socket));
          return;
        case "busy":
          return sendJson(res, 409, { status: "failure", description: description ?? DESCRIPTIONS.busy });
        case "server-error":
          return sendJson(res, 500, { status: "failure", description: description ?? DESCRIPTIONS["server-error"] });
        case "forbidden":
          return sendJson(res, 403, { status: "failure", description: description ?? DESCRIPTIONS.forbidden });
        case "unavailable":
          return sendJson(res, 503, { status: "failure", description: description ?? DESCRIPTIONS.unavailable });
        case "bad-json":
          res.writeHead(200, { "content-type": "application/json" });
          return void res.end('{"status":"success","output":"');
      }
    }
    if (target === "status") return sendJson(res, 200, statusBody());

    const body = await readBody(req, MAX_BODY);
    if (!body) return sendJson(res, 413, { status: "failure", description: "CLI script too large" });
    const part = parseMultipartFile(req.headers["content-type"], body);
    if (!part.ok) return sendJson(res, 400, { status: "failure", description: part.reason });
    const lines = part.content.toString("utf8").split(/\r?\n/);
    const record: CliScriptRecord = { fileName: part.fileName, lines: lines.filter((l) => l.trim() !== ""), httpStatus: 0 };
    st.scripts.push(record);
    if (st.scripts.length > 100) st.scripts.shift();
    // A real device runs one script at a time; a second one meanwhile is told it is busy.
    if (st.busy) {
      record.httpStatus = 409;
      return sendJson(res, 409, { status: "failure", description: DESCRIPTIONS.busy });
    }
    st.busy = true;
    try {
      const answer = await runScript(lines);
      record.httpStatus = answer.status;
      sendJson(res, answer.status, answer.body);
    } finally {
      st.busy = false;
    }
  }

  // --- listeners ---
  const restSockets = new Set<Socket>();
  const restListener = createNetServer((socket) => {
    if (st.closed) return void socket.destroy();
    restSockets.add(socket);
    socket.once("close", () => restSockets.delete(socket));
    socket.on("error", () => {});
    https.emit("connection", socket);
  });
  const restPort = await listen(restListener, address, opts.restPort ?? 0);
  routes.set(routeKey(address, restPort), {
    handle: (req, res) =>
      void handle(req, res).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { status: "failure", description: DESCRIPTIONS["server-error"] });
        else res.destroy();
      }),
  });

  let sftp: SftpServerHandle;
  try {
    sftp = await startSftpServer({
      root: dataDir,
      readOnly: true,
      hostKey: sharedHostKey().parsed,
      auth: { password: passwordCheck(opts.username, opts.password) },
      host: address,
      port: opts.sshPort ?? 0,
      hooks: {
        onConnection: () => {
          if (takeSftpFault(["refuse"])) {
            st.sftpRefusals++;
            return false;
          }
          return true;
        },
        beforeAccess: async (vpath, op) => {
          if (vpath === DEBUG_CAPTURE_REMOTE_PATH) {
            await source.flush();
            if (takeSftpFault(["missing-file"])) throw Object.assign(new Error("missing"), { code: "ENOENT" });
            if (op === "open") {
              sftpCorruption = takeSftpFault(["truncate", "bad-magic"]) as typeof sftpCorruption;
              if (sftpCorruption === "truncate") truncateAt = Math.floor((await fsp.stat(capturePath)).size / 2);
            }
          }
        },
        mapRead: (vpath, position, data) => {
          if (vpath !== DEBUG_CAPTURE_REMOTE_PATH || !sftpCorruption) return data;
          if (sftpCorruption === "truncate") return position >= truncateAt ? Buffer.alloc(0) : data.subarray(0, truncateAt - position);
          if (position > 0) return data;
          const out = Buffer.from(data);
          out.write("XXXX", 0, Math.min(4, out.length), "latin1");
          return out;
        },
      },
    });
  } catch (err) {
    routes.delete(routeKey(address, restPort));
    restListener.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    type,
    address,
    restPort,
    sshPort: sftp.port,
    username: opts.username,
    baseUrl: `https://${formatEndpoint(address, restPort)}`,
    capturePath,
    certificate: tls.cert,
    state: () => ({
      capturing: st.capturing,
      interfaces: [...st.selected],
      ...(st.startedAt ? { startedAt: st.startedAt } : {}),
      ...(st.stoppedAt ? { stoppedAt: st.stoppedAt } : {}),
      captures: st.captures,
      packets: source.packets(),
      requests: st.requests,
      scripts: st.scripts.map((s) => ({ ...s, lines: [...s.lines] })),
      sftpRefusals: st.sftpRefusals,
    }),
    setFault(f) {
      faults = { ...faults, ...f };
    },
    clearFaults() {
      faults = {};
    },
    async capturedFile() {
      await source.flush();
      return fsp.readFile(capturePath).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return undefined;
        throw err;
      });
    },
    close() {
      closing ??= (async () => {
        st.closed = true;
        routes.delete(routeKey(address, restPort));
        await closeListener(restListener, restSockets);
        await sftp.close();
        if (st.capturing) await source.stop().catch(() => {});
        if (ownsDataDir) await fsp.rm(dataDir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------

export interface AudioCodesFleetOptions extends Omit<AudioCodesDeviceOptions, "address" | "type" | "dataDir"> {
  /** First device address (default 127.0.1.1); the next ones count up, skipping .0 and .255. */
  firstAddress?: string;
  /** Device type for all, or per index (default: alternate msbr, gwsbc). */
  type?: AudioCodesType | ((index: number) => AudioCodesType);
  /** Devices started at once (default 50). */
  concurrency?: number;
}

export interface AudioCodesFleet {
  readonly devices: readonly AudioCodesDevice[];
  close(): Promise<void>;
}

/** Consecutive usable host addresses from `first` (IPv4). */
export function fleetAddresses(first: string, n: number): string[] {
  if (!isIPv4(first)) throw new TypeError(`firstAddress must be IPv4: ${first}`);
  let v = first.split(".").reduce((a, o) => a * 256 + Number(o), 0);
  const out: string[] = [];
  while (out.length < n) {
    const last = v & 0xff;
    if (last !== 0 && last !== 255) out.push([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, last].join("."));
    v++;
    if (v > 0x7fffffff) throw new RangeError("ran out of 127.0.0.0/8 addresses");
  }
  return out;
}

/** `n` emulated devices in this process, sharing one TLS certificate, one host key and one temp directory. */
export async function startAudioCodesFleet(n: number, opts: AudioCodesFleetOptions): Promise<AudioCodesFleet> {
  const addresses = fleetAddresses(opts.firstAddress ?? "127.0.1.1", n);
  const typeOf = typeof opts.type === "function" ? opts.type : (i: number) => (opts.type as AudioCodesType | undefined) ?? (i % 2 === 0 ? "msbr" : "gwsbc");
  const root = await fsp.mkdtemp(path.join(tmpdir(), "capsync-audiocodes-fleet-"));
  const devices: AudioCodesDevice[] = new Array(n);
  const { firstAddress: _f, type: _t, concurrency, ...deviceOpts } = opts;
  const close = async (): Promise<void> => {
    await Promise.all(devices.filter(Boolean).map((d) => d.close()));
    await fsp.rm(root, { recursive: true, force: true });
  };
  try {
    const step = concurrency ?? 50;
    for (let i = 0; i < n; i += step) {
      await Promise.all(
        addresses.slice(i, i + step).map(async (address, j) => {
          const dataDir = path.join(root, address);
          devices[i + j] = await startAudioCodesDevice({ ...deviceOpts, address, type: typeOf(i + j), dataDir });
        }),
      );
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { devices, close };
}
