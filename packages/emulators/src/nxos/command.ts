// `capsync-emulator nxos`: one emulated NX-OS switch as its own process (a lab starts one per
// network namespace). Its tables come from a JSON file: { routes, interfaces, cdp, arp, mac } in
// the shapes of NxosDeviceOptions. Prints `ready nxos <address> nxapi=<port|off> ssh=<port>`.
import { readFileSync } from "node:fs";
import { deviceLogin, parseDeviceArgs } from "../device-args.js";
import { startNxosDevice } from "./index.js";
import type { NxosDeviceOptions } from "./types.js";

export const NXOS_USAGE = `  capsync-emulator nxos --address <ip> --password-env <VAR> [options]
      --username <name>        default admin
      --hostname <name>        default n9k-leaf1
      --rest-port <n>          NX-API HTTPS port (default 443; 0 = any free port)
      --ssh-port <n>           SSH CLI port (default 22; 0 = any free port)
      --table <file.json>      { routes, interfaces, cdp, arp, mac } (NxosDeviceOptions shapes)
      --nxapi on|404|closed    NX-API state (default on); the SSH CLI always answers`;

const TABLE_KEYS = ["routes", "interfaces", "cdp", "arp", "mac"] as const;

function port(name: string, v: string | undefined, dflt: number, usage: (m: string) => Error): number {
  if (v === undefined) return dflt;
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw usage(`${name} must be a port number from 0 to 65535, got '${v}'`);
  return Number(v);
}

/** The tables of `--table`, each key checked to be a list; a bad file is a usage error naming it. */
function readTable(file: string, usage: (m: string) => Error): Pick<NxosDeviceOptions, (typeof TABLE_KEYS)[number]> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw usage(`--table ${file}: ${(e as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw usage(`--table ${file}: expected a JSON object with ${TABLE_KEYS.join(", ")}`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(TABLE_KEYS as readonly string[]).includes(k)) throw usage(`--table ${file}: unknown key '${k}' (expected ${TABLE_KEYS.join(", ")})`);
  for (const k of TABLE_KEYS) if (o[k] !== undefined && !Array.isArray(o[k])) throw usage(`--table ${file}: '${k}' must be a list`);
  return o as Pick<NxosDeviceOptions, (typeof TABLE_KEYS)[number]>;
}

export async function runNxosEmulator(args: string[], usage: (m: string) => Error, untilSignal: () => Promise<string>): Promise<number> {
  const v = parseDeviceArgs(args, {
    hostname: { type: "string" },
    table: { type: "string" },
    nxapi: { type: "string" },
  });
  const { address, password } = deviceLogin(v, usage);
  const nxapi = v.nxapi ?? "on";
  if (nxapi !== "on" && nxapi !== "404" && nxapi !== "closed") throw usage(`--nxapi must be on, 404 or closed, got '${nxapi}'`);
  if (v.hostname !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(v.hostname)) throw usage(`--hostname: expected a host name, got '${v.hostname}'`);
  const device = await startNxosDevice({
    address,
    username: v.username ?? "admin",
    password,
    ...(v.hostname ? { hostname: v.hostname } : {}),
    restPort: port("--rest-port", v["rest-port"], 443, usage),
    sshPort: port("--ssh-port", v["ssh-port"], 22, usage),
    nxapi,
    ...(v.table ? readTable(v.table, usage) : {}),
  });
  process.stdout.write(`ready nxos ${device.address} nxapi=${nxapi === "closed" ? "off" : device.restPort} ssh=${device.sshPort}\n`);
  const sig = await untilSignal();
  const c = device.counts();
  await device.close();
  process.stdout.write(`stopped ${sig}: nxapi=${c.nxapi} ssh=${c.ssh} commands=${device.commands().length}\n`);
  return 0;
}
