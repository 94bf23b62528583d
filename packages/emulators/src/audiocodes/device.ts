// AudioCodes device emulator (MSBR and Mediant GW/SBC, 7.2/7.4 firmware REST API as used by the
// original cpe_capture_app): HTTPS `GET /api/v1/status`, `PUT /api/v1/files/cliScript/incremental`
// with the debug-capture commands, and SFTP of /debug-capture/debug-capture-data.pcap (the agent's
// SFTP server). Not emulated: any other CLI command, other REST resources, sessions/cookies, HTTP
// (plain) access.
import { promises as fsp } from "node:fs";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isIPv4, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { formatEndpoint } from "@capsync/protocol";
import type { SftpServerHandle } from "@capsync/server-capture/sftp-ssh";
import { corruptRead, startDeviceSftp } from "../device-sftp.js";
import { SyntheticPacketSource } from "../synthetic-traffic.js";
import { basicCredentials, holdRequest, listenForTls, readBody, sameCredentials, sendJson } from "../http.js";
import { sharedTlsCertificate, type TlsMaterial } from "../tls.js";
import { SyntheticCapture, TcpdumpCapture, type CaptureSource } from "./capture.js";
import { COMMAND_PREFIX, parseDebugCaptureCommand, parseMultipartFile, type Command } from "./cli-script.js";
import {
  DEBUG_CAPTURE_REMOTE_PATH,
  DESCRIPTIONS,
  type AudioCodesCapture,
  type AudioCodesDevice,
  type AudioCodesDeviceOptions,
  type AudioCodesFaults,
  type AudioCodesType,
  type CliScriptRecord,
  type RestFault,
  type SftpFaultKind,
} from "./types.js";

const CLI_SCRIPT_PATH = "/api/v1/files/cliScript/incremental";
const STATUS_PATH = "/api/v1/status";

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


const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const MAX_BODY = 1024 * 1024;

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
          return holdRequest(req, heldSockets);
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
  const rest = await listenForTls(https, address, opts.restPort ?? 0, () => st.closed);
  const restPort = rest.port;
  routes.set(routeKey(address, restPort), {
    handle: (req, res) =>
      void handle(req, res).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { status: "failure", description: DESCRIPTIONS["server-error"] });
        else res.destroy();
      }),
  });

  let sftp: SftpServerHandle;
  try {
    sftp = await startDeviceSftp(opts, address, {
      root: dataDir,
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
          return corruptRead({ kind: sftpCorruption, at: truncateAt }, position, data);
        },
      },
    });
  } catch (err) {
    routes.delete(routeKey(address, restPort));
    await rest.close();
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
        await rest.close();
        await sftp.close();
        if (st.capturing) await source.stop().catch(() => {});
        if (ownsDataDir) await fsp.rm(dataDir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
