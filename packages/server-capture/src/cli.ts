#!/usr/bin/env node
// server-capture: the root capture agent. Parses flags, checks privileges and the key, starts the
// agent (and its read-only SFTP service when asked), and stops every tcpdump cleanly on SIGTERM/SIGINT.
import { Command, InvalidArgumentError, Option } from "commander";
import { resolve } from "node:path";
import { DEFAULT_PORT, formatDuration, formatEndpoint, parseDuration, isDeviceAddress, keyId, CapsyncError } from "@capsync/protocol";
import { basicSecrets, loadKeyFile, reopenLogFiles, type HttpsTrust } from "@capsync/common";
import { Agent } from "./agent.js";
import { DEFAULT_MAX_DURATION_MS, DEFAULT_MAX_SESSIONS, MAX_SESSIONS_LIMIT, DEFAULT_RING_FILES, DEFAULT_RING_SIZE_MB, isValidCidr, ringBudgetLine } from "./limits.js";
import { canCapture, lookupUser } from "./system.js";
import { canBoundLifetime, isValidInterface } from "./tcpdump.js";
import { HOST_KEY_FILE, loadAuthorizedKeys, loadHostKey, loadOrCreateHostKey, type AuthorizedKey, type HostKey } from "./sftp-keys.js";
import { DEFAULT_SFTP_PORT, startAgentSftp, type AgentSftp } from "./sftp.js";
import { OvocRegistrar, loadOvocCredentials, ovocCredentialsFromEnv, parseOvocUrl, type OvocCredentials } from "./ovoc-registrar.js";
import { readFileSync } from "node:fs";
import { agentVerifyOptions, SNMPV3_AUTH_ENV, SNMPV3_PRIV_ENV } from "./verify-options.js";
import { VERSION } from "./version.js";
import { DEFAULT_LOG_FILE, DEFAULT_LOG_FILES, DEFAULT_LOG_MAX_MB, agentLogger } from "./log-target.js";

const EXIT_BAD_INPUT = 2;

function int(name: string, min: number, max: number) {
  return (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got '${v}'`);
    return Number(v);
  };
}

function listen(defaultPort: number) {
  // "<ip>:<port>", "[<ipv6>]:<port>", or a bare address (default port). Port 0 = any free port.
  return (v: string) => {
    const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(v) ?? /^([^:[\]]+):(\d{1,5})$/.exec(v) ?? /^\[?([^\]]+?)\]?()$/.exec(v);
    const host = m?.[1] ?? "";
    const port = m?.[2] ? Number(m[2]) : defaultPort;
    if (!m || !isDeviceAddress(host) || port > 65535) throw new InvalidArgumentError(`expected <ip>:<port> or [<ipv6>]:<port>, got '${v}'`);
    return { host, port };
  };
}

function duration(v: string) {
  const ms = parseDuration(v);
  if (ms === undefined) throw new InvalidArgumentError(`expected a duration like 90s, 15m, 24h, got '${v}'`);
  return ms;
}

/** A duration option whose help shows its default as a duration ("7d", not 604800000). */
function durationOption(flags: string, description: string, defaultMs: number, parse: (v: string) => number = duration): Option {
  return new Option(flags, description).argParser(parse).default(defaultMs, formatDuration(defaultMs));
}

/** --max-duration: a duration, or `none` (no limit; the ring still bounds the disk). */
function durationOrNone(v: string): number {
  if (v === "none") return Number.POSITIVE_INFINITY;
  const ms = parseDuration(v);
  if (ms === undefined) throw new InvalidArgumentError(`expected a duration like 90s, 15m, 24h, 7d or 'none', got '${v}'`);
  return ms;
}

function collect(v: string, prev: string[] = []) {
  return [...prev, v];
}

export function program(): Command {
  return new Command("server-capture")
    .description("capsync capture agent: runs tcpdump for a device when cpe-capture asks (run as root)")
    .version(VERSION)
    .addOption(new Option("--listen <addr:port>", "UDP address and port to listen on").argParser(listen(DEFAULT_PORT)).default({ host: "0.0.0.0", port: DEFAULT_PORT }, formatEndpoint("0.0.0.0", DEFAULT_PORT)))
    .option("--dir <path>", "capture directory (created if missing)", "/var/lib/capsync/captures")
    .option("--key-file <path>", "CSYNC/1 pre-shared key file, mode 0600; give twice during a key rotation", collect, [])
    .option("--legacy", "speak the original trafficCapture text protocol (no authentication: insecure)", false)
    .option("--allow <cidr>", "accept commands only from this address or CIDR (repeatable; default: any)", collect, [])
    .option("--interface <name>", "interface tcpdump captures on", "any")
    .addOption(
      new Option("--capture-mode <mode>", "shared: one tcpdump per interface, each packet demultiplexed into its device's files (thousands of devices); per-device: one tcpdump per device")
        .choices(["shared", "per-device"])
        .default("per-device")
        .env("CAPSYNC_CAPTURE_MODE"),
    )
    .addOption(
      new Option("--max-sessions <n>", "most concurrent captures; more get 503 max-sessions")
        .argParser(int("--max-sessions", 1, MAX_SESSIONS_LIMIT))
        .default(undefined, `${DEFAULT_MAX_SESSIONS.shared} shared, ${DEFAULT_MAX_SESSIONS["per-device"]} per-device`),
    )
    .addOption(
      durationOption(
        "--max-duration <duration>",
        "stop (and keep) a capture running longer than this: the bound on a capture whose orchestrator never sends STOP; 'none' = no limit",
        DEFAULT_MAX_DURATION_MS,
        durationOrNone,
      ),
    )
    .option("--ring-size <MB>", "rotate capture files at this many MB (tcpdump -C)", int("--ring-size", 1, 1_000_000), DEFAULT_RING_SIZE_MB)
    // At most 10: the STOP answer names every file in one datagram (PROTOCOL.md: 1200 bytes).
    .option("--ring-files <n>", "keep the newest this many files per capture (tcpdump -W, 2..10): disk per capture <= size x files", int("--ring-files", 2, 10), DEFAULT_RING_FILES)
    .option("--no-ring", "one growing file per capture instead of the ring (bounded only by --min-free-disk and --max-duration)")
    .option("--min-free-disk <MB>", "stop captures and refuse new ones below this much free disk", int("--min-free-disk", 0, 10_000_000), 200)
    .addOption(durationOption("--window <duration>", "accepted clock difference for CSYNC/1 timestamps", 30_000))
    .option("--tcpdump-user <user>", "user tcpdump drops privileges to (-Z); 'root' keeps root", "tcpdump")
    .option("--sftp-listen <addr:port>", `serve finished captures read-only over SFTP here (off by default; port default ${DEFAULT_SFTP_PORT})`, listen(DEFAULT_SFTP_PORT))
    .option("--authorized-keys <file>", "OpenSSH authorized_keys file: the public keys allowed to download over SFTP (required with --sftp-listen)")
    .option("--host-key <file>", `SFTP host private key, mode 0600 (default: generated once as <dir>/${HOST_KEY_FILE})`)
    .option("--ovoc-url <url>", "OVOC management server (https://host[:port]): REGISTER creates the device's Connection Lost forwarding rule there")
    .option("--ovoc-credentials <file>", "OVOC API account, one line 'user:password', mode 0600 (default: env CAPSYNC_OVOC_USER / CAPSYNC_OVOC_PASSWORD)")
    .option("--ovoc-ca <file>", "PEM CA certificate(s) to verify the OVOC server's certificate")
    .option("--ovoc-tls <mode>", "verify | insecure (accept any OVOC certificate)", "verify")
    .addOption(durationOption("--ovoc-timeout <duration>", "bound on each OVOC REST call", 5_000))
    .addOption(durationOption("--register-idle <duration>", "delete a device's forwarding rule after this long without CAPTURE/STOP (and no capture running)", 86_400_000))
    .option("--icmp-count <n>", "VERIFY: ICMP echo requests to the device (the system ping); 0 = none", int("--icmp-count", 0, 20), 3)
    .option("--snmpv3-user <name>", `VERIFY: also send SNMPv3 authPriv GETs of sysDescr.0 as this user; keys from env ${SNMPV3_AUTH_ENV} / ${SNMPV3_PRIV_ENV} or --snmpv3-credentials`)
    .option("--snmpv3-auth <protocol>", "SNMPv3 authentication: md5 | sha | sha224 | sha256 | sha384 | sha512", "sha")
    .option("--snmpv3-priv <protocol>", "SNMPv3 privacy: aes | aes256b | aes256r | des", "aes")
    .option("--snmpv3-credentials <file>", `SNMPv3 keys, mode 0600: lines ${SNMPV3_AUTH_ENV}=... and ${SNMPV3_PRIV_ENV}=... (never on the command line)`)
    .option("--on-term <what>", "SIGTERM: 'stop' every capture (files kept) before exiting, or 'keep' them running for the next agent to adopt (restart, upgrade); SIGINT always stops", "stop")
    .option("--log-file <path>", `log file, '-' = stderr only (default: the journal when run by systemd, else ${DEFAULT_LOG_FILE}); reopened on SIGHUP`)
    .option("--log-max-size <MB>", "rotate the log file at this size; 0 = never (leave it to logrotate)", int("--log-max-size", 0, 100_000), DEFAULT_LOG_MAX_MB)
    .option("--log-files <n>", "rotated log files kept (<file>.1 newest ... <file>.<n>)", int("--log-files", 1, 100), DEFAULT_LOG_FILES)
    .option("--log-level <level>", "error | warn | info | debug", "info")
    .addHelpText(
      "after",
      `
Examples:
  server-capture --dir /var/lib/capsync/captures --key-file /etc/capsync/agent.key
  server-capture --legacy --listen 0.0.0.0:20001 --interface eth0   # original cpe_capture_app peers
  server-capture --key-file /etc/capsync/agent.key --sftp-listen 0.0.0.0:${DEFAULT_SFTP_PORT} --authorized-keys /etc/capsync/authorized_keys
  server-capture --key-file /etc/capsync/agent.key --ovoc-url https://127.0.0.1 --ovoc-credentials /etc/capsync/ovoc.cred --ovoc-ca /etc/capsync/ovoc-ca.pem

Captures wait for their STOP however long the run lasts: each is a ring of --ring-files x
--ring-size (default 10 x 100 MB per device, the newest packets kept), so the disk stays bounded.
CSYNC/1 has no keep-alive, so a capture without a STOP for --max-duration (default 7d) is taken
for forgotten: stopped, files kept.

Exit codes: 0 stopped cleanly, 1 runtime failure, 2 bad input.`,
    );
}

async function main(): Promise<number> {
  const cmd = program();
  cmd.exitOverride();
  try {
    cmd.parse(process.argv);
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode ?? 0;
    return code === 0 ? 0 : EXIT_BAD_INPUT;
  }
  const o = cmd.opts<{
    listen: { host: string; port: number };
    dir: string;
    keyFile: string[];
    legacy: boolean;
    allow: string[];
    interface: string;
    captureMode: "shared" | "per-device";
    maxSessions?: number;
    maxDuration: number;
    ringSize: number;
    ringFiles: number;
    ring: boolean;
    minFreeDisk: number;
    window: number;
    tcpdumpUser: string;
    sftpListen?: { host: string; port: number };
    authorizedKeys?: string;
    hostKey?: string;
    ovocUrl?: string;
    ovocCredentials?: string;
    ovocCa?: string;
    ovocTls: string;
    ovocTimeout: number;
    registerIdle: number;
    icmpCount: number;
    snmpv3User?: string;
    snmpv3Auth: string;
    snmpv3Priv: string;
    snmpv3Credentials?: string;
    logFile?: string;
    logMaxSize: number;
    logFiles: number;
    logLevel: string;
    onTerm: string;
  }>();
  const fail = (msg: string, code = EXIT_BAD_INPUT) => {
    process.stderr.write(`server-capture: ${msg}\n`);
    return code;
  };
  if (!isValidInterface(o.interface)) return fail(`--interface '${o.interface}' is not a valid interface name`);
  const badCidr = o.allow.find((c) => !isValidCidr(c));
  if (badCidr) return fail(`--allow '${badCidr}' is not an IP address or CIDR`);
  if (!o.ring && (cmd.getOptionValueSource("ringSize") === "cli" || cmd.getOptionValueSource("ringFiles") === "cli")) return fail("--no-ring excludes --ring-size and --ring-files");
  if (o.onTerm !== "stop" && o.onTerm !== "keep") return fail(`--on-term must be stop or keep, got '${o.onTerm}'`);
  if (!canCapture()) return fail("must run as root (or with CAP_NET_RAW) to capture packets; try: sudo server-capture ...", 1);

  let keys: Buffer[] = [];
  if (o.legacy) {
    if (o.keyFile.length) return fail("--legacy and --key-file exclude each other: the original protocol has no authentication");
  } else {
    if (!o.keyFile.length) return fail("no --key-file given: CSYNC/1 needs a pre-shared key (or pass --legacy for the original, unauthenticated protocol)");
    if (o.keyFile.length > 2) return fail("at most two --key-file (old and new during a rotation)");
    try {
      keys = o.keyFile.map((p) => loadKeyFile(resolve(p)));
    } catch (e) {
      return fail((e as Error).message);
    }
  }
  const dir = resolve(o.dir);

  let sftpKeys: AuthorizedKey[] = [];
  let hostKey: HostKey | undefined;
  if (o.sftpListen) {
    if (!o.authorizedKeys) return fail("--sftp-listen needs --authorized-keys <file>: the public keys allowed to download captures");
    try {
      sftpKeys = loadAuthorizedKeys(resolve(o.authorizedKeys));
    } catch (e) {
      return fail(`--authorized-keys ${(e as Error).message}`);
    }
    try {
      hostKey = o.hostKey ? loadHostKey(resolve(o.hostKey)) : loadOrCreateHostKey(dir);
    } catch (e) {
      return fail(o.hostKey ? `--host-key ${(e as Error).message}` : (e as Error).message);
    }
  } else if (o.authorizedKeys || o.hostKey) {
    return fail("--authorized-keys and --host-key only apply with --sftp-listen");
  }

  // OVOC: credentials from a 0600 file or the environment, never from argv (visible in ps).
  let ovoc: { url: string; credentials: OvocCredentials; tls: HttpsTrust } | undefined;
  if (o.ovocUrl) {
    const u = parseOvocUrl(o.ovocUrl);
    if (!u.ok) return fail(`--ovoc-url ${u.message}`);
    if (o.ovocTls !== "verify" && o.ovocTls !== "insecure") return fail(`--ovoc-tls must be verify or insecure, got '${o.ovocTls}'`);
    if (o.ovocTls === "insecure" && o.ovocCa) return fail("--ovoc-ca and --ovoc-tls insecure exclude each other");
    let credentials: OvocCredentials | undefined;
    try {
      credentials = o.ovocCredentials ? loadOvocCredentials(resolve(o.ovocCredentials)) : ovocCredentialsFromEnv();
    } catch (e) {
      return fail((e as Error).message);
    }
    if (!credentials) return fail("--ovoc-url needs the API account: --ovoc-credentials <file> (one line 'user:password', mode 0600) or CAPSYNC_OVOC_USER and CAPSYNC_OVOC_PASSWORD");
    let tls: HttpsTrust = { mode: o.ovocTls === "insecure" ? "insecure" : "verify" };
    if (o.ovocCa) {
      try {
        const ca = readFileSync(resolve(o.ovocCa), "utf8");
        if (!ca.includes("-----BEGIN CERTIFICATE-----")) return fail(`--ovoc-ca ${o.ovocCa}: no PEM certificate in it`);
        tls = { mode: "ca", ca };
      } catch (e) {
        return fail(`--ovoc-ca ${o.ovocCa}: cannot read (${(e as NodeJS.ErrnoException).code ?? "error"})`);
      }
    }
    ovoc = { url: u.url, credentials, tls };
  } else if (o.ovocCredentials || o.ovocCa || o.ovocTls !== "verify") {
    return fail("--ovoc-credentials, --ovoc-ca and --ovoc-tls only apply with --ovoc-url");
  }
  const ovocSecrets = ovoc ? basicSecrets(ovoc.credentials.username, ovoc.credentials.password) : [];
  const verify = agentVerifyOptions({ ...o, ...(o.snmpv3Credentials ? { snmpv3Credentials: resolve(o.snmpv3Credentials) } : {}) });
  if (!verify.ok) return fail(verify.message);
  const secrets = [...keys.map((k) => k.toString("latin1")), ...ovocSecrets, ...verify.secrets];
  const logged = agentLogger({ ...(o.logFile !== undefined ? { logFile: o.logFile === "-" ? "-" : resolve(o.logFile) } : {}), logMaxSize: o.logMaxSize, logFiles: o.logFiles, logLevel: o.logLevel, secrets: () => secrets });
  if ("error" in logged) return fail(logged.error);
  const log = logged.log;
  if (logged.warning) log.warn(logged.warning);
  if (o.legacy) log.warn("LEGACY MODE: commands are unauthenticated; anyone who can reach this port can start and stop captures. Use --allow.");
  if (ovoc?.tls.mode === "insecure") log.warn(`OVOC ${ovoc.url}: certificate not verified (--ovoc-tls insecure)`);
  const registrar = ovoc ? new OvocRegistrar({ ...ovoc, timeoutMs: o.ovocTimeout, log }) : undefined;
  const tcpdumpUser = o.tcpdumpUser === "root" ? undefined : lookupUser(o.tcpdumpUser) ? o.tcpdumpUser : undefined;
  if (o.tcpdumpUser !== "root" && !tcpdumpUser) log.warn(`user '${o.tcpdumpUser}' does not exist; tcpdump keeps root privileges`);

  const maxSessions = o.maxSessions ?? DEFAULT_MAX_SESSIONS[o.captureMode];
  let agent: Agent;
  try {
    agent = await Agent.start({
      listen: { address: o.listen.host, port: o.listen.port },
      dir,
      keys,
      legacy: o.legacy,
      allow: o.allow,
      iface: o.interface,
      captureMode: o.captureMode,
      maxSessions,
      maxDurationMs: o.maxDuration,
      ...(o.ring ? { ringSizeMb: o.ringSize, ringFiles: o.ringFiles } : {}),
      minFreeMb: o.minFreeDisk,
      windowMs: o.window,
      ...(tcpdumpUser ? { tcpdumpUser } : {}),
      ...(registrar ? { registrar } : {}),
      registerIdleMs: o.registerIdle,
      verify: verify.options,
      log,
    });
  } catch (e) {
    return fail(e instanceof CapsyncError || e instanceof Error ? e.message : String(e), 1);
  }
  let sftp: AgentSftp | undefined;
  if (o.sftpListen && hostKey) {
    try {
      sftp = await startAgentSftp({ dir, listen: { address: o.sftpListen.host, port: o.sftpListen.port }, authorizedKeys: sftpKeys, hostKey: hostKey.key, log });
    } catch (e) {
      await agent.close();
      return fail((e as Error).message, 1);
    }
    log.info(`sftp host key ${hostKey.fingerprint} (${hostKey.created ? "generated " : ""}${hostKey.file}): ${hostKey.publicLine}`);
    log.info(`sftp: serving finished captures read-only on ${sftp.address}:${sftp.port} to ${sftpKeys.length} authorized key(s)`);
  }
  const a = agent.address();
  log.info(`listening on ${a.address}:${a.port} (${o.legacy ? "legacy" : "CSYNC/1"}), captures in ${dir}, interface ${o.interface}, capture mode ${o.captureMode}`);
  const budget = ringBudgetLine({ ...(o.ring ? { ringSizeMb: o.ringSize, ringFiles: o.ringFiles } : {}), maxSessions, maxDurationMs: o.maxDuration, dir });
  log[budget.level](budget.text);
  if (!canBoundLifetime()) log.warn("perl not found: a tcpdump outliving the agent is bounded by its ring only, not by --max-duration (install perl)");
  // A 409 owned-by names its owner by key id: these are the ids of this agent's keys.
  if (!o.legacy) log.info(`CSYNC/1 key id(s) ${keys.map((k) => keyId(k)).join(", ")}: a capture belongs to the key and address that started it`);
  log.info(`VERIFY sends ${verify.summary}, TCP/443 and an SNMPv2c GET`);
  if (registrar) log.info(`REGISTER creates forwarding rules on OVOC ${registrar.url} (user ${ovoc!.credentials.username}); idle rules are deleted after ${formatDuration(o.registerIdle)}`);
  // Tests and service managers wait for these exact lines on stdout: "ready" first, then "sftp"
  // (only with --sftp-listen), in one write so a reader that sees the first sees both.
  process.stdout.write(`server-capture ready ${a.address} ${a.port}\n${sftp ? `server-capture sftp ${sftp.address} ${sftp.port}\n` : ""}`);

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const shutdown = (sig: string) => {
      if (stopping) return;
      stopping = true;
      // A restart or an upgrade (the unit's KillMode=process signals only this process): the
      // tcpdumps run on, bounded by their own ring and alarm, and the next agent adopts them.
      const keep = sig === "SIGTERM" && o.onTerm === "keep";
      const running = agent.devices().filter((d) => d.session && ["starting", "capturing", "stopping"].includes(d.session.state)).length;
      log.info(keep ? `${sig} (--on-term keep): leaving ${running} capture(s) running for the next agent to adopt` : `${sig}: stopping every capture and keeping the files`);
      Promise.all([agent.close({ keepCaptures: keep }), sftp?.close()]).then(
        () => {
          log.info(keep ? `exiting with ${running} capture(s) left running; bye` : "all captures stopped; bye");
          log.on("finish", () => resolveExit(0));
          log.end();
        },
        (e: Error) => {
          log.error(`shutdown failed: ${e.message}`);
          resolveExit(1);
        },
      );
    };
    process.on("SIGTERM", () => shutdown("SIGTERM"));
    // logrotate's postrotate (create mode): a new file at the same path; copytruncate needs nothing.
    process.on("SIGHUP", () => log.info(`SIGHUP: log reopened (${reopenLogFiles(log).join(", ") || "no log file"})`));
    process.on("SIGINT", () => shutdown("SIGINT"));
  });
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`server-capture: ${e.message}\n`);
    process.exit(1);
  },
);
