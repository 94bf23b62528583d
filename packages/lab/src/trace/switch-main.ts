// One emulated switch of the trace lab, as its own process inside its switch namespace:
// `node switch-main.js <spec.json>` starts the NX-OS or IOS-XE emulator on the management address
// with the spec's interfaces, CDP and ARP, and answers every route question from this namespace's
// kernel (./kernel-route.ts); the out interfaces' TX counters follow the veths' own (`ip -s link`),
// and an IOS-XE switch's packet captures hold the packets really leaving its veths (./live-source.ts).
// Prints `ready <type> <hostname> <address>`, stops on SIGTERM/SIGINT.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { startIosXeDevice, startNxosDevice, type IosXeRoute, type NxosInterface, type NxosRoute } from "@capsync/emulators";
import { ipHere, kernelDecision, type KernelFlow } from "./kernel-route.js";
import { LivePacketSource } from "./live-source.js";
import type { SwitchSpec } from "./plan.js";

const COUNTERS_EVERY_MS = 1000;

function mask(prefix: number): string {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join(".");
}

/** The kernel's answer as NX-OS's `show routing hash` route: every member, the kernel's pick starred. */
function nxosRoute(flow: KernelFlow, name: (veth: string) => string): NxosRoute | undefined {
  const d = kernelDecision(flow, ipHere);
  if (d.kind === "none") return undefined;
  if (d.kind === "local") return { prefix: d.prefix, nextHops: [], local: true };
  const attached = d.members.every((m) => m.via === undefined);
  return {
    prefix: d.prefix,
    nextHops: d.members.map((m) => ({ via: m.via ?? flow.dst, interface: name(m.dev) })),
    chosen: d.chosen,
    source: attached ? "direct" : "static",
  };
}

/** The kernel's answer as CEF's exact-route adjacency (IOS-XE prints only the member taken). */
function iosXeRoute(flow: KernelFlow, name: (veth: string) => string): IosXeRoute | undefined {
  const d = kernelDecision(flow, ipHere);
  if (d.kind !== "route") return undefined;
  const m = d.members[d.chosen]!;
  return { prefix: d.prefix, interface: name(m.dev), ...(m.via ? { via: m.via } : {}), ...(flow.vrf && flow.vrf !== "default" ? { vrf: flow.vrf } : {}) };
}

interface LinkStats {
  ifname: string;
  stats64?: { tx?: { packets?: number; bytes?: number; errors?: number; dropped?: number } };
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error("usage: switch-main <spec.json>");
  const spec = JSON.parse(readFileSync(file, "utf8")) as SwitchSpec;
  const password = process.env[spec.passwordEnv];
  if (!password) throw new Error(`environment variable ${spec.passwordEnv} is not set`);
  const byVeth = new Map(spec.interfaces.map((i) => [i.veth, i.name]));
  const name = (veth: string) => byVeth.get(veth) ?? veth;

  const nxosIfs: NxosInterface[] = spec.interfaces.map((i) => ({ name: i.name, address: `${i.address}/${i.prefix}`, tx: {} }));
  const counters: Record<string, { outPackets: number; outBytes: number; resets: number }> = {};
  const refresh = () =>
    execFile("ip", ["-j", "-s", "link", "show"], { timeout: 5000 }, (err, out) => {
      if (err) return;
      for (const l of JSON.parse(out) as LinkStats[]) {
        const n = byVeth.get(l.ifname);
        const tx = l.stats64?.tx;
        if (!n || !tx) continue;
        const i = nxosIfs.find((x) => x.name === n)!;
        i.tx = { unicast: tx.packets ?? 0, bytes: tx.bytes ?? 0, outputErrors: tx.errors ?? 0, discards: tx.dropped ?? 0 };
        counters[n] = { outPackets: tx.packets ?? 0, outBytes: tx.bytes ?? 0, resets: 0 };
      }
    });
  refresh();
  const timer = setInterval(refresh, COUNTERS_EVERY_MS);

  // IOS-XE captures (EPC) hold what really leaves each data interface; NX-OS takes no capture.
  const live = spec.type === "iosxe" ? spec.interfaces.filter((i) => i.veth !== "mgmt0").map((i) => [i.name, new LivePacketSource(i.veth)] as const) : [];
  const common = { address: spec.address, username: spec.username, password, hostname: spec.hostname, restPort: 443, sshPort: 22 };
  const device =
    spec.type === "nxos"
      ? await startNxosDevice({
          ...common,
          interfaces: nxosIfs,
          cdp: spec.cdp.map((c) => ({ deviceId: c.deviceId, systemName: c.deviceId, localInterface: c.localInterface, remoteInterface: c.remoteInterface, addresses: [c.address], mgmtAddresses: [c.mgmtAddress], platform: c.platform })),
          arp: spec.arp,
          mac: [],
          resolve: (flow) => nxosRoute({ ...flow }, name),
        })
      : await startIosXeDevice({
          ...common,
          interfaces: spec.interfaces.map((i) => ({ name: i.name, ip: `${i.address} ${mask(i.prefix)}` })),
          packetsPerSecond: 10,
          epcSources: Object.fromEntries(live),
          routing: {
            routes: [],
            cdp: spec.cdp.map((c) => ({ deviceId: c.deviceId, localInterface: c.localInterface, remoteInterface: c.remoteInterface, address: c.address, mgmtAddress: c.mgmtAddress, platform: c.platform })),
            arp: spec.arp,
            loadSharing: "include-ports source destination",
            counters,
            resolve: (flow) => iosXeRoute(flow, name),
          },
        });
  process.stdout.write(`ready ${spec.type} ${spec.hostname} ${spec.address}\n`);
  await new Promise<void>((resolve) => {
    for (const s of ["SIGTERM", "SIGINT"] as const) process.once(s, () => resolve());
  });
  clearInterval(timer);
  for (const [, l] of live) l.close();
  await device.close();
}

main().catch((e: unknown) => {
  process.stderr.write(`switch: ${(e as Error).message}\n`);
  process.exit(1);
});
