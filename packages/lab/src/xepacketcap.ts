// `cpe-capture demo --xepacketcap`: a stand-in for a router running xepacketcap, so a Postman
// collection or pcap-sparkbot can be pointed at it without a router. In this process, all on
// loopback and without root: an emulated IOS-XE router with traffic on its interfaces, an
// S3-compatible store (s3rver) holding the bucket the bot names, and `cpe-capture serve` in
// xepacketcap compatibility mode on 127.0.0.1:5000 (--port). Half the router's traffic is TCP, so
// xepacketcap's own example (proto tcp) finds packets too. Runs until SIGINT/SIGTERM, then stops
// all three and removes its folder.
import S3rver from "@20minutes/s3rver";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@capsync/protocol";
import { interfaceFlows, startIosXeDevice, type IosXeDevice, type IosXeInterface } from "@capsync/emulators";
import { startServe, type ServeHandle } from "@capsync/cpe-capture/serve/start";
import type { Io } from "@capsync/cpe-capture/commands/run";
import type { DemoOptions } from "@capsync/cpe-capture/commands/demo";
import { parseCidr, XEPACKETCAP_DEFAULTS } from "@capsync/cpe-capture/serve/config";
import { installStopSignals } from "@capsync/cpe-capture/triggers/signals";
import { stringify as toYaml } from "yaml";

/** The bucket pcap-sparkbot always names. */
export const XE_BUCKET = "xepacketcap";
/** The store's buckets: the bot's, and the one of xepacketcap's README example (its Postman call). */
export const XE_BUCKETS = [XE_BUCKET, "codefest-pcap"];
export const XE_DEFAULT_PORT = 5000;
const HOST = "127.0.0.1";
const ROUTER = "xe-demo";
/** Per interface, both directions and UDP/TCP together: a 10 s capture holds hundreds of packets. */
const PACKETS_PER_SECOND = 100;
const ROUTER_INTERFACES: IosXeInterface[] = [
  { name: "GigabitEthernet1", ip: "192.0.2.1 255.255.255.0" },
  { name: "GigabitEthernet2", ip: "198.51.100.1 255.255.255.0" },
  { name: "GigabitEthernet3", ip: "203.0.113.1 255.255.255.0" },
];
/** s3rver's built-in access key (it checks signatures against it); not a secret. */
const S3RVER_KEY = { id: "S3RVER", secret: "S3RVER" };
const ENV = { password: "CSLAB_XE_ROUTER_PASSWORD", s3Id: "CSLAB_XE_S3_ACCESS_KEY_ID", s3Secret: "CSLAB_XE_S3_SECRET_ACCESS_KEY" };

function bad(message: string): ConfigError {
  return new ConfigError(`cpe-capture demo: ${message}`);
}

/** --port: 1..65535 (0, "any free port", would leave the user without the URL to type). */
export function parsePort(v: string | undefined): number {
  if (v === undefined) return XE_DEFAULT_PORT;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= 65535)) throw bad(`--port: expected a TCP port 1-65535, got '${v}'`);
  return n;
}

/** --allow: the addresses that need no token, as serve's compat mode takes them (comma-separated). */
export function parseAllow(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return v.split(",").map((s) => {
    const c = parseCidr(s.trim());
    if (!c.ok) throw bad(`--allow: ${c.message} (several: separated by commas)`);
    return `${c.net}/${c.prefix}`;
  });
}

export function portInUse(port: number): string {
  return `port ${port} on ${HOST} is in use (another xepacketcap, serve or demo?); stop it or pick another port with --port`;
}

/** Resolves true when nothing listens on HOST:port (checked by binding it for a moment). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, HOST, () => s.close(() => resolve(true)));
  });
}

/**
 * The curl pair a user pastes into a POSIX shell: start a capture as pcap-sparkbot does (keeping
 * the job id in $JOB), then ask for its status (again until "status" is UPLOADED).
 */
export function curlPair(url: string): [string, string] {
  const start = { iface: "g1", proto: "udp", src: "any", dst: "any", bucket: XE_BUCKET, duration: 10 };
  return [
    `JOB=$(curl -s -X POST ${url}/pcap_json -H 'Content-Type: application/json' -d '${JSON.stringify(start)}' | tr -dc 0-9); echo "job $JOB"`,
    `curl -s -X POST ${url}/status_json -H 'Content-Type: application/json' -d "{\\"job_id\\": $JOB}"`,
  ];
}

export function readyText(o: { url: string; router: IosXeDevice; s3: string; dir: string; allow?: string[] }): string {
  const flows = new Map(interfaceFlows(ROUTER_INTERFACES).map(([name, ip, peer]) => [name, { ip, peer }]));
  const [start, status] = curlPair(o.url);
  const lines = [
    `capsync demo, xepacketcap mode: an emulated IOS-XE router, an S3 store and \`cpe-capture serve\` in xepacketcap compatibility mode`,
    ``,
    `  URL         ${o.url}   (POST /pcap_json, POST /status_json; no token needed from ${(o.allow ?? XEPACKETCAP_DEFAULTS.allow).join(", ")})`,
    `  router      ${o.router.hostname} (emulated C8000V, IOS-XE 17.9), the router every job captures on`,
    ...ROUTER_INTERFACES.map((i, n) => {
      const f = flows.get(i.name)!;
      return `  ${n === 0 ? "interfaces" : "          "}  ${i.name.padEnd(17)} ${f.ip.padEnd(13)} traffic: UDP+TCP ${f.ip}:5060 <-> ${f.peer}:5060, ${PACKETS_PER_SECOND} packets/s`;
    }),
    `  S3 store    ${o.s3}, buckets ${XE_BUCKETS.join(", ")} (s3rver; captures are uploaded here, "url" downloads them)`,
    `  folder      ${o.dir} (serve.yaml, jobs, run folders, the store's files; removed at exit)`,
    ``,
    `Start a capture as pcap-sparkbot does, then poll its status until "status" is UPLOADED and download "url":`,
    `  ${start}`,
    `  ${status}`,
    ``,
    `Running until Ctrl-C (stops the router, the store and serve, and removes the folder).`,
    ``,
  ];
  return lines.join("\n");
}

export async function xepacketcapDemo(o: DemoOptions, io: Io): Promise<number> {
  if (o.loopback || o.keep || o.clean) throw bad("--xepacketcap runs on its own; it does not go with --loopback, --keep or --clean");
  const port = parsePort(o.port);
  const allow = parseAllow(o.allow);
  if (!(await portFree(port))) {
    io.stderr.write(`cpe-capture demo: ${portInUse(port)}\n`);
    return 1;
  }
  const dir = mkdtempSync(join(tmpdir(), "capsync-xedemo-"));
  const stop = new AbortController();
  const signals = installStopSignals((e) => {
    if (e.count === 1) io.stderr.write(`\n${e.signal}: stopping the demo (router, S3 store, serve) and removing ${dir}\n`);
    stop.abort();
  });
  let router: IosXeDevice | undefined;
  let s3: S3rver | undefined;
  let serve: ServeHandle | undefined;
  try {
    const password = randomBytes(12).toString("base64url");
    // serve resolves the config's { env: NAME } references in this environment, not process.env.
    const env = { ...process.env, [ENV.password]: password, [ENV.s3Id]: S3RVER_KEY.id, [ENV.s3Secret]: S3RVER_KEY.secret };
    router = await startIosXeDevice({ address: HOST, username: "admin", password, hostname: ROUTER, interfaces: ROUTER_INTERFACES, trafficOnEveryInterface: true, packetsPerSecond: PACKETS_PER_SECOND });
    s3 = new S3rver({ address: HOST, port: 0, silent: true, directory: join(dir, "s3"), configureBuckets: XE_BUCKETS.map((name) => ({ name })) });
    const s3Port = (await s3.run()).port;
    const s3Url = `http://${HOST}:${s3Port}`;
    const config = {
      // The native API (token only) on any free port; the xepacketcap listener on the one users type.
      listen: `${HOST}:0`,
      dataDir: "./data",
      xepacketcap: { listen: `${HOST}:${port}`, ...(allow ? { allow } : {}) },
      run: {
        retries: 1,
        verify: false,
        timeouts: { rest: "10s", sftp: "20s" },
        storage: { bucket: XE_BUCKET, endpoint: s3Url, region: "us-east-1", credentials: { accessKeyId: { env: ENV.s3Id }, secretAccessKey: { env: ENV.s3Secret } } },
        devices: [
          {
            name: ROUTER,
            address: HOST,
            type: "iosxe",
            interfaces: [ROUTER_INTERFACES[0]!.name],
            username: "admin",
            password: { env: ENV.password },
            tls: "insecure",
            restPort: router.restPort,
            sshPort: router.sshPort,
          },
        ],
      },
    };
    const configFile = join(dir, "serve.yaml");
    writeFileSync(configFile, `# written by cpe-capture demo --xepacketcap\n${toYaml(config)}`, { mode: 0o600 });
    try {
      const log = (level: "info" | "warn" | "error", msg: string) =>
        io.stderr.write(o.json ? JSON.stringify({ t: new Date().toISOString(), level, msg }) + "\n" : `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}\n`);
      serve = await startServe(configFile, { log, env });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") {
        io.stderr.write(`cpe-capture demo: ${portInUse(port)}\n`);
        return 1;
      }
      throw e;
    }
    const url = serve.xepacketcap ?? `http://${HOST}:${port}`;
    if (o.json) {
      io.stdout.write(
        JSON.stringify({ demo: "ready", mode: "xepacketcap", url, router: { name: router.hostname, address: HOST, interfaces: interfaceFlows(ROUTER_INTERFACES).map(([name, ip, peer]) => ({ name, ip, peer })) }, s3: s3Url, buckets: XE_BUCKETS, dir, curl: curlPair(url) }) + "\n",
      );
    } else io.stdout.write(readyText({ url, router, s3: s3Url, dir, ...(allow ? { allow } : {}) }));
    if (!stop.signal.aborted) await new Promise((r) => stop.signal.addEventListener("abort", r, { once: true }));
    return 0;
  } finally {
    await serve?.close().catch(() => undefined);
    await router?.close().catch(() => undefined);
    await s3?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    signals.dispose();
    if (stop.signal.aborted) io.stderr.write("demo stopped; everything removed\n");
  }
}
