// Cisco IOS-XE router emulator (C8000V-like, 17.9/17.15 behaviour) for Embedded Packet Capture:
// RESTCONF over HTTPS (restconf.ts), SSH with the exec CLI, SCP and SFTP of bootflash: (ssh.ts,
// exec-cli.ts), and capture points running the EPC state machine (epc.ts) over synthetic UDP flows,
// honouring match (acl.ts), direction, buffer and limits; exports are real pcap files.
// Not emulated: configuration mode, access-list/class-map filters, control-plane capture points,
// `stop_export` (needs an export location this emulator does not configure), NETCONF, any other
// YANG model or CLI command.
import { formatEndpoint } from "@capsync/protocol";
import { sharedHostKey } from "@capsync/server-capture/sftp-keys";
import { SyntheticPacketSource } from "../synthetic-traffic.js";
import { sharedTlsCertificate } from "../tls.js";
import type { DeviceContext } from "./context.js";
import { Epc } from "./epc.js";
import { createExecCli } from "./exec-cli.js";
import { startRestconf } from "./restconf.js";
import { startSsh } from "./ssh.js";
import { TransitFlowSource, type EpcSource } from "./transit.js";
import type { IosXeDevice, IosXeDeviceOptions, IosXeFaults, IosXeInterface } from "./types.js";

export { bootflashName } from "./monitor-command.js";
export * from "./types.js";

const DEFAULT_INTERFACES: IosXeInterface[] = [
  { name: "GigabitEthernet1", ip: "192.0.2.1 255.255.255.0" },
  { name: "GigabitEthernet2", ip: "198.51.100.1 255.255.255.0" },
  { name: "GigabitEthernet3" },
  { name: "GigabitEthernet4", vrf: "MGMT", ip: "203.0.113.1 255.255.255.0" },
];

/** [interface, its address, the neighbour the flow goes to] for every interface with an IPv4 address. */
export function interfaceFlows(interfaces: IosXeInterface[]): [string, string, string][] {
  return interfaces.flatMap((i): [string, string, string][] => {
    const ip = i.ip?.split(" ")[0];
    if (!ip || !/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return [];
    const o = ip.split(".");
    return [[i.name, ip, `${o.slice(0, 3).join(".")}.${o[3] === "10" ? 11 : 10}`]];
  });
}

export async function startIosXeDevice(opts: IosXeDeviceOptions): Promise<IosXeDevice> {
  const address = opts.address ?? "127.0.0.1";
  const interfaces = opts.interfaces ?? DEFAULT_INTERFACES;
  const tls = opts.tls ?? (await sharedTlsCertificate());
  const pps = opts.packetsPerSecond ?? 200;
  const flows = opts.trafficOnEveryInterface
    ? new Map(interfaceFlows(interfaces).map(([name, device, peer]) => [name, new SyntheticPacketSource({ device, peer, packetsPerSecond: pps, tcp: true })]))
    : new Map([[opts.flowInterface ?? interfaces[0]?.name ?? "GigabitEthernet1", new SyntheticPacketSource({ device: /^\d+\.\d+\.\d+\.\d+$/.test(address) ? address : "192.0.2.254", ...(opts.peer ? { peer: opts.peer } : {}), packetsPerSecond: pps })]]);
  const epcFlows: Map<string, EpcSource> = flows;
  if (opts.transit) epcFlows.set(opts.transit.interface, new TransitFlowSource(opts.transit));
  for (const [name, source] of Object.entries(opts.epcSources ?? {})) epcFlows.set(name, source);
  let faults: IosXeFaults = { ...opts.faults };
  const ctx: DeviceContext = {
    opts,
    hostname: opts.hostname ?? "edge-rtr1",
    model: opts.model ?? "C8000V",
    version: opts.version ?? "17.09.04a",
    serial: opts.serial ?? `9${address.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join("").toUpperCase()}EMU`.slice(0, 11),
    interfaces,
    epc: new Epc(epcFlows),
    st: { requests: 0, rpcs: [], commands: [], sshConnections: 0, fileRefusals: 0, closed: false },
    record(line) {
      ctx.st.commands.push(line);
      if (ctx.st.commands.length > 500) ctx.st.commands.shift();
    },
    takeFault(key, match) {
      const f = faults[key];
      if (!f || !match(f as NonNullable<IosXeFaults[typeof key]>)) return undefined;
      if (f.times !== undefined) {
        if (f.times <= 0) return undefined;
        f.times--;
      }
      return f as NonNullable<IosXeFaults[typeof key]>;
    },
  };
  const { epc, st } = ctx;
  const cli = createExecCli(ctx);
  const rest = await startRestconf(ctx, cli, tls, address);
  let ssh: Awaited<ReturnType<typeof startSsh>>;
  try {
    ssh = await startSsh(ctx, cli, address);
  } catch (err) {
    await rest.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    address,
    restPort: rest.port,
    sshPort: ssh.port,
    username: opts.username,
    hostname: ctx.hostname,
    baseUrl: `https://${formatEndpoint(address, rest.port)}`,
    certificate: tls.cert,
    hostKey: sharedHostKey().public,
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
        await Promise.all([rest.close(), ssh.close()]);
      })();
      return closing;
    },
  };
}
