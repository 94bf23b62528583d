// Cisco NX-OS switch emulator (Nexus 9000-like, NX-OS 9.3 text): NX-API CLI over HTTPS (nxapi.ts)
// and the SSH CLI (ssh.ts) answering flowtracker's show commands (cli.ts) from the routing table,
// interfaces, CDP neighbors, ARP and MAC tables given at start; `show routing hash` picks among
// ECMP next hops with a deterministic hash of the flow. NX-API can be off (404, or a closed port)
// to exercise the SSH fallback; wrong credentials get 401. Not emulated: captures, configuration.
import { createServer } from "node:net";
import { listen } from "../http.js";
import { sharedTlsCertificate } from "../tls.js";
import { createCli } from "./cli.js";
import { startNxApi } from "./nxapi.js";
import { startNxosSsh } from "./ssh.js";
import type { NxosDevice, NxosDeviceOptions, NxosFault } from "./types.js";

export * from "./types.js";
export { ecmpIndex, prefixMatch } from "./cli.js";

/** A port on `address` nothing listens on (bound once, then released): NX-API switched off. */
async function closedPort(address: string): Promise<number> {
  const s = createServer();
  const port = await listen(s, address, 0);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function startNxosDevice(opts: NxosDeviceOptions): Promise<NxosDevice> {
  const address = opts.address ?? "127.0.0.1";
  const tls = opts.tls ?? (await sharedTlsCertificate());
  const facts = {
    hostname: opts.hostname ?? "n9k-leaf1",
    model: opts.model ?? "Nexus9000 C93180YC-EX",
    version: opts.version ?? "9.3(5)",
    serial: opts.serial ?? "FDO21392QKM",
  };
  const cli = createCli(opts, facts);
  const commands: string[] = [];
  let fault: NxosFault | undefined = opts.faults ? { ...opts.faults } : undefined;
  let closed = false;
  let mode: "on" | "404" = opts.nxapi === "404" ? "404" : "on";
  const record = (c: string) => {
    commands.push(c);
    if (commands.length > 500) commands.shift();
  };
  const take = (on: "probe" | "show"): NxosFault | undefined => {
    const f = fault;
    if (!f || ((f.on ?? "any") !== "any" && f.on !== on)) return undefined;
    if (f.times !== undefined) {
      if (f.times <= 0) return undefined;
      f.times--;
    }
    return f;
  };
  const ctl = {
    get mode() {
      return mode;
    },
    takeFault: take,
    record,
    closed: () => closed,
  };
  const api = opts.nxapi === "closed" ? undefined : await startNxApi(opts, cli, tls, address, ctl);
  let ssh: Awaited<ReturnType<typeof startNxosSsh>>;
  try {
    ssh = await startNxosSsh(opts, cli, facts.hostname, address, {
      record,
      hangs: (c) => c !== "terminal length 0" && take(c === "show version" ? "probe" : "show")?.kind === "timeout",
      closed: () => closed,
    });
  } catch (err) {
    await api?.close();
    throw err;
  }
  const restPort = api?.port ?? (await closedPort(address));
  let closing: Promise<void> | undefined;
  return {
    address,
    restPort,
    sshPort: ssh.port,
    hostname: facts.hostname,
    certificate: tls.cert,
    commands: () => [...commands],
    counts: () => ({ nxapi: api?.requests() ?? 0, ssh: ssh.sessions() }),
    setNxapi(m) {
      mode = m;
    },
    setFault(f) {
      fault = f ? { ...f } : undefined;
    },
    close() {
      closing ??= (async () => {
        closed = true;
        await Promise.all([api?.close(), ssh.close()]);
      })();
      return closing;
    },
  };
}
