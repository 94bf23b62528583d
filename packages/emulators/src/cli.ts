#!/usr/bin/env node
// capsync-emulator: run one emulated device or the management server as its own process (the demo
// lab starts these inside network namespaces). Each prints one `ready ...` line on stdout when it
// listens, logs events as lines, and stops cleanly on SIGTERM/SIGINT.
//
//   capsync-emulator audiocodes --type msbr --address 192.0.2.2 --password-env DEV_PW [--capture tcpdump --iface eth-wan]
//   capsync-emulator nxos --address 192.0.2.40 --password-env SW_PW --table leaf1.json
//   capsync-emulator mgmt --bind 198.51.100.10 --device 192.0.2.2,msbr --syslog 203.0.113.10:20514
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { isIP } from "node:net";
import { parseDuration } from "@capsync/protocol";
import { startAudioCodesDevice, type AudioCodesCapture, type AudioCodesType } from "./audiocodes/index.js";
import { deviceLogin, parseDeviceArgs } from "./device-args.js";
import { ManagementServer } from "./mgmt-server.js";
import { NXOS_USAGE, runNxosEmulator } from "./nxos/command.js";
import { startOvocEmulator } from "./ovoc.js";
import { startSnmpAgent, SNMP_PORT } from "./snmp.js";
import { USM_AUTH, type UsmAuthProtocol, type UsmUser } from "./snmp-usm.js";
import { VERSION } from "./version.js";

const EXIT_BAD_INPUT = 2;

const USAGE = `usage:
  capsync-emulator audiocodes --type msbr|gwsbc --address <ip> --password-env <VAR> [options]
      --username <name>        default Admin
      --rest-port <n>          HTTPS REST port (default 443; 0 = any free port)
      --ssh-port <n>           SFTP port (default 22; 0 = any free port)
      --snmp-port <n>          SNMP keep-alive answers on UDP (default 161; 0 = any free port; -1 = off)
      --snmpv3-user <name>     also answer SNMPv3 authPriv (AES-128) for this user; keys from env
                               CAPSYNC_SNMPV3_AUTH_KEY / CAPSYNC_SNMPV3_PRIV_KEY
      --snmpv3-auth <proto>    md5|sha|sha224|sha256|sha384|sha512 (default sha)
      --capture synthetic|tcpdump   default synthetic
      --iface <name>           interface tcpdump captures on (with --capture tcpdump)
      --pps <n>                synthetic packets per second (default 100)
      --data-dir <dir>         where the capture file lives (default: a temp dir, removed on exit)
${NXOS_USAGE}
  capsync-emulator mgmt --device <ip>[,<type>[,<name>]]... (--ovoc-api <ip:port> | --syslog <ip:port>...) [options]
      --ovoc-api serves the OVOC REST API (password from CAPSYNC_OVOC_PASSWORD); agents' REGISTER
      creates the forwarding rules the alarms go out through
      --bind <ip>              local address for polls and syslog (default any)
      --interval <duration>    poll interval (default 1s)
      --lost-after <duration>  silence before "Connection Lost" (default 3s)
      --snmp-port <n>          the devices' SNMP port (default 161)
      --format rfc3164|rfc5424 syslog format (default rfc3164, as OVOC sends it)
  capsync-emulator --version

The password is read from the environment variable named by --password-env, never from argv.
Exit codes: 0 stopped by a signal, 1 runtime failure, 2 bad input.`;

class UsageError extends Error {}

function int(name: string, v: string | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got '${v}'`);
  return Number(v);
}

function ms(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const r = parseDuration(v);
  if (r === undefined) throw new UsageError(`${name}: expected a duration like 1s or 500ms, got '${v}'`);
  return r;
}

function endpoint(v: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(v) ?? /^([^:[\]]+):(\d{1,5})$/.exec(v);
  if (!m || !isIP(m[1]!) || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new UsageError(`--syslog: expected <ip>:<port>, got '${v}'`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** Resolves when the first of SIGTERM/SIGINT arrives. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    for (const s of ["SIGTERM", "SIGINT"] as const) process.once(s, () => resolve(s));
  });
}

/** --snmpv3-user with its keys from the environment (never argv), or undefined without the flag. */
function snmpv3User(user: string | undefined, auth: string | undefined): UsmUser | undefined {
  if (user === undefined) return undefined;
  const authProtocol = (auth ?? "sha") as UsmAuthProtocol;
  if (!USM_AUTH.includes(authProtocol)) throw new UsageError(`--snmpv3-auth must be one of ${USM_AUTH.join("|")}, got '${auth}'`);
  const authKey = process.env.CAPSYNC_SNMPV3_AUTH_KEY;
  const privKey = process.env.CAPSYNC_SNMPV3_PRIV_KEY;
  if (!authKey || !privKey) throw new UsageError("--snmpv3-user needs CAPSYNC_SNMPV3_AUTH_KEY and CAPSYNC_SNMPV3_PRIV_KEY in the environment");
  return { user, authProtocol, authKey, privProtocol: "aes", privKey };
}

async function audiocodes(args: string[]): Promise<number> {
  const v = parseDeviceArgs(args, {
    type: { type: "string" },
    "snmp-port": { type: "string" },
    "snmpv3-user": { type: "string" },
    "snmpv3-auth": { type: "string" },
    capture: { type: "string" },
    iface: { type: "string" },
    pps: { type: "string" },
    "data-dir": { type: "string" },
  });
  const type = v.type as AudioCodesType | undefined;
  if (type !== "msbr" && type !== "gwsbc") throw new UsageError(`--type must be msbr or gwsbc, got '${v.type ?? ""}'`);
  const { address, password } = deviceLogin(v, (m) => new UsageError(m));
  const snmpPort = int("--snmp-port", v["snmp-port"], SNMP_PORT, -1, 65535);
  const v3 = snmpv3User(v["snmpv3-user"], v["snmpv3-auth"]);
  let capture: AudioCodesCapture;
  if ((v.capture ?? "synthetic") === "synthetic") capture = { kind: "synthetic", packetsPerSecond: int("--pps", v.pps, 100, 1, 100_000) };
  else if (v.capture === "tcpdump") {
    if (!v.iface) throw new UsageError("--capture tcpdump needs --iface <name>");
    capture = { kind: "tcpdump", iface: v.iface };
  } else throw new UsageError(`--capture must be synthetic or tcpdump, got '${v.capture}'`);

  const device = await startAudioCodesDevice({
    type,
    address,
    username: v.username ?? "Admin",
    password,
    restPort: int("--rest-port", v["rest-port"], 443, 0, 65535),
    sshPort: int("--ssh-port", v["ssh-port"], 22, 0, 65535),
    capture,
    ...(v["data-dir"] ? { dataDir: v["data-dir"] } : {}),
  });
  const bootedAt = Date.now();
  let snmp: Awaited<ReturnType<typeof startSnmpAgent>> | undefined;
  try {
    if (snmpPort >= 0) {
      snmp = await startSnmpAgent({ address, port: snmpPort, uptimeMs: () => Date.now() - bootedAt, sysDescr: `AudioCodes ${type} (capsync emulator)`, sysName: `${type}-${address}`, ...(v3 ? { v3 } : {}) });
    }
  } catch (e) {
    await device.close();
    throw e;
  }
  process.stdout.write(`ready audiocodes ${type} ${device.address} rest=${device.restPort} ssh=${device.sshPort} snmp=${snmp?.port ?? "off"}\n`);
  const sig = await untilSignal();
  const st = device.state();
  await snmp?.close();
  await device.close();
  const s = snmp?.stats();
  process.stdout.write(`stopped ${sig}: captures=${st.captures} requests=${st.requests}${s ? ` snmp=${s.requests}/${s.answers}` : ""}\n`);
  return 0;
}

async function mgmt(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    strict: true,
    options: {
      device: { type: "string", multiple: true },
      syslog: { type: "string", multiple: true },
      bind: { type: "string" },
      interval: { type: "string" },
      "lost-after": { type: "string" },
      "snmp-port": { type: "string" },
      format: { type: "string" },
      "ovoc-api": { type: "string" },
      "ovoc-user": { type: "string" },
    },
  });
  const devices = (v.device ?? []).map((d) => {
    const [address, type, name] = d.split(",");
    if (!address || !isIP(address)) throw new UsageError(`--device: expected <ip>[,<type>[,<name>]], got '${d}'`);
    return { address, ...(name ? { name } : {}), deviceType: type === "gwsbc" ? "SBC" : type === "msbr" || !type ? "MSBR" : type };
  });
  if (!devices.length) throw new UsageError("give at least one --device");
  const syslog = (v.syslog ?? []).map(endpoint);
  // With --ovoc-api the alarms go out through the forwarding rules that agents create over the
  // REST API (REGISTER), exactly like OVOC; --syslog adds static rules an operator made by hand.
  const api = v["ovoc-api"] ? endpoint(v["ovoc-api"]) : undefined;
  const apiPassword = process.env.CAPSYNC_OVOC_PASSWORD;
  if (api && !apiPassword) throw new UsageError("--ovoc-api needs the API password in the environment variable CAPSYNC_OVOC_PASSWORD");
  if (!syslog.length && !api) throw new UsageError("give --ovoc-api <ip>:<port> (rules created by REGISTER) or at least one --syslog <ip>:<port>");
  if (v.bind && !isIP(v.bind)) throw new UsageError(`--bind must be an IP address, got '${v.bind}'`);
  const format = v.format ?? "rfc3164";
  if (format !== "rfc3164" && format !== "rfc5424") throw new UsageError(`--format must be rfc3164 or rfc5424, got '${format}'`);
  const intervalMs = ms("--interval", v.interval, 1000);
  const lostAfterMs = ms("--lost-after", v["lost-after"], 3000);
  if (intervalMs < 10 || lostAfterMs < intervalMs) throw new UsageError("--interval must be at least 10ms and --lost-after at least --interval");

  const ovoc = api
    ? await startOvocEmulator({
        username: v["ovoc-user"] ?? "capsync-api",
        password: apiPassword!,
        address: api.host,
        port: api.port,
        devices: devices.map((d) => ({ ipAddress: d.address, ...(d.name ? { name: d.name } : {}) })),
        ...(v.bind ? { syslogBind: v.bind } : {}),
        format,
      })
    : undefined;
  const server = await ManagementServer.start({
    devices,
    ...(v.bind ? { bind: v.bind } : {}),
    poll: { intervalMs, lostAfterMs, port: int("--snmp-port", v["snmp-port"], SNMP_PORT, 1, 65535) },
    syslog,
    format,
    onEvent: (e) => {
      if (!ovoc) return;
      const at = e.at;
      const sent = e.kind === "lost" ? ovoc.raiseConnectionLost(e.device.address, { at }) : ovoc.raiseConnectionEstablished(e.device.address, { at });
      void sent.then((alarms) => {
        for (const a of alarms) process.stdout.write(`alarm ${e.kind} ${e.device.address} ${at.toISOString()} silent=${e.silentMs}ms to=${a.to.host}:${a.to.port} rule=${a.ruleName} via=ovoc-api\n`);
        if (!alarms.length) process.stdout.write(`alarm ${e.kind} ${e.device.address} ${at.toISOString()} silent=${e.silentMs}ms to=- rule=none (no forwarding rule: nobody registered this device)\n`);
      });
    },
    onAlarm: (a) =>
      process.stdout.write(`alarm ${a.kind} ${a.device} ${a.sentAt.toISOString()} silent=${a.silentMs}ms to=${a.to} rule=${a.ruleId}${a.error ? ` error=${JSON.stringify(a.error)}` : ""}\n`),
  });
  if (ovoc) process.stdout.write(`ready ovoc ${ovoc.baseUrl}\n`);
  // "up" the first time each device answers, so an operator (and the demo) sees polling work.
  const seen = new Set<string>();
  const watch = setInterval(() => {
    for (const d of server.devices) {
      if (!seen.has(d.address) && server.poller.state(d.address)?.link === "up") {
        seen.add(d.address);
        process.stdout.write(`up ${d.address} ${new Date().toISOString()}\n`);
      }
    }
  }, 50);
  const local = server.poller.local();
  process.stdout.write(`ready mgmt ${local.address} devices=${devices.length} interval=${intervalMs}ms lost-after=${lostAfterMs}ms syslog=${syslog.map((s) => `${s.host}:${s.port}`).join(",")}\n`);
  const sig = await untilSignal();
  clearInterval(watch);
  await server.close();
  await ovoc?.close();
  process.stdout.write(`stopped ${sig}: alarms=${server.alarms.length + (ovoc?.alarms.length ?? 0)}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  // Whoever started us may go away and leave the lab running (`cpe-capture demo --keep`): a closed
  // stdout must not take the device down with an EPIPE.
  for (const s of [process.stdout, process.stderr]) s.on("error", () => undefined);
  const [cmd, ...rest] = argv;
  try {
    if (cmd === "audiocodes") return await audiocodes(rest);
    if (cmd === "mgmt") return await mgmt(rest);
    if (cmd === "nxos") return await runNxosEmulator(rest, (m) => new UsageError(m), untilSignal);
    if (cmd === "--help" || cmd === "-h" || cmd === "help") {
      process.stdout.write(USAGE + "\n");
      return 0;
    }
    if (cmd === "--version" || cmd === "-V") {
      process.stdout.write(`${VERSION}\n`);
      return 0;
    }
    throw new UsageError(cmd ? `unknown command '${cmd}'` : "no command given");
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`capsync-emulator: ${(e as Error).message}\n${USAGE}\n`);
      return EXIT_BAD_INPUT;
    }
    process.stderr.write(`capsync-emulator: ${(e as Error).message}\n`);
    return 1;
  }
}

function invokedDirectly(): boolean {
  try {
    return realpathSync(process.argv[1] ?? "") === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

// Run when executed (also through the npm bin symlink), not when imported.
if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`capsync-emulator: ${e.message}\n`);
      process.exit(1);
    },
  );
}
