// The trace lab's namespaces and links, made from the plan (./plan.ts) with `ip`, `sysctl` and `nft`
// as argument arrays: every veth is created inside the namespaces (never in the root namespace), the
// switches route with static kernel routes (one multipath route: the ECMP pair), and the
// management LAN is a bridge in its own namespace. Plus the breaks the demo applies, and the
// removal of whatever a crashed or interrupted trace lab left behind (`cstrace-*`).
import { lstatSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { addNamespace, deleteNamespace, ip, listNamespaces, namespacePids, nft, processesMentioning, sysctl, terminate } from "../netns.js";
import { TRACE_DIR_PREFIX, TRACE_PREFIX, traceNamespaceNames, type LabSwitch, type TracePlan } from "./plan.js";

function up(ns: string, dev: string): void {
  ip("-n", ns, "link", "set", dev, "up");
}

function routeArgs(s: LabSwitch, prefix: string): string[] {
  const r = s.routes.find((x) => x.prefix === prefix)!;
  return r.nextHops.length === 1 ? ["via", r.nextHops[0]!.via, "dev", r.nextHops[0]!.dev] : r.nextHops.flatMap((h) => ["nexthop", "via", h.via, "dev", h.dev]);
}

/** Create every namespace, link, address and route; on failure whatever was made is removed before rethrowing. */
export function buildTraceNetwork(p: TracePlan): void {
  const made: string[] = [];
  try {
    for (const ns of traceNamespaceNames(p)) {
      addNamespace(ns);
      made.push(ns);
      sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
      up(ns, "lo");
    }
    ip("-n", p.oob, "link", "add", "br0", "type", "bridge");
    up(p.oob, "br0");
    const mgmtPort = (port: string, ns: string, dev: string, address: string) => {
      ip("-n", p.oob, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", ns);
      ip("-n", p.oob, "link", "set", port, "master", "br0");
      up(p.oob, port);
      ip("-n", ns, "addr", "add", `${address}/${p.mgmtPrefix}`, "dev", dev);
      up(ns, dev);
    };
    mgmtPort("orch", p.orch.ns, "eth0", p.orch.address);
    for (const s of p.switches) {
      sysctl(s.ns, "net.ipv4.ip_forward=1", ...(s.l4Hash ? ["net.ipv4.fib_multipath_hash_policy=1"] : []));
      mgmtPort(`sw${s.index}`, s.ns, "mgmt0", s.mgmt);
    }
    for (const l of p.links) {
      const a = p.switches[l.a - 1]!;
      const b = p.switches[l.b - 1]!;
      const am = a.interfaces.find((i) => i.veth === l.aIf)!.mac;
      const bm = b.interfaces.find((i) => i.veth === l.bIf)!.mac;
      ip("-n", a.ns, "link", "add", l.aIf, "address", am, "type", "veth", "peer", "name", l.bIf, "address", bm, "netns", b.ns);
    }
    for (const [host, s] of [[p.src, p.switches[0]!], [p.dst, p.switches[p.switches.length - 1]!]] as const) {
      const i = s.interfaces.find((x) => x.peer?.host === host.ns)!;
      ip("-n", s.ns, "link", "add", i.veth, "address", i.mac, "type", "veth", "peer", "name", "eth0", "address", host.mac, "netns", host.ns);
      ip("-n", host.ns, "addr", "add", `${host.address}/${host.prefix}`, "dev", "eth0");
      up(host.ns, "eth0");
      ip("-n", host.ns, "route", "add", "default", "via", host.gateway);
    }
    for (const s of p.switches) {
      for (const i of s.interfaces) {
        ip("-n", s.ns, "addr", "add", `${i.address}/${i.prefix}`, "dev", i.veth);
        up(s.ns, i.veth);
      }
    }
    for (const s of p.switches) for (const r of s.routes) ip("-n", s.ns, "route", "add", r.prefix, ...routeArgs(s, r.prefix));
  } catch (e) {
    for (const ns of made) deleteNamespace(ns);
    throw e;
  }
}

export function teardownTraceNetwork(p: TracePlan): void {
  for (const ns of traceNamespaceNames(p)) deleteNamespace(ns);
}

/** The control-plane break: the switch forgets its route to `prefix` (its answer becomes "no route"). */
export function removeRoute(s: LabSwitch, prefix: string): void {
  ip("-n", s.ns, "route", "del", prefix);
}

/**
 * The data-plane break: the switch's kernel drops every `oneIn`-th packet of the flow leaving on
 * `veth` (1: all of them); routes untouched, so only the packets can tell.
 */
export function dropOnInterface(s: LabSwitch, veth: string, src: string, dst: string, oneIn = 1): void {
  const which = oneIn > 1 ? ` numgen inc mod ${oneIn} 0` : "";
  nft(
    s.ns,
    `table ip cstrace {
  chain drop_out {
    type filter hook forward priority 0; policy accept;
    oifname "${veth}" ip saddr ${src} ip daddr ${dst}${which} counter drop
  }
}
`,
  );
}

/**
 * Remove what an earlier trace lab left (crash, kill -9): processes in `cstrace-*` namespaces or
 * naming a trace lab dir, the namespaces, and the dirs (only real directories of ours holding a pid
 * file whose process is gone, so a running lab's dir is never touched).
 */
export async function removeTraceLeftovers(tmpRoot: string, exceptDir?: string): Promise<{ namespaces: string[]; processes: number[]; dirs: string[] }> {
  const namespaces = listNamespaces().filter((n) => n.startsWith(TRACE_PREFIX));
  const dirs = readdirSync(tmpRoot)
    .filter((n) => n.startsWith(TRACE_DIR_PREFIX))
    .map((n) => join(tmpRoot, n))
    .filter((d) => d !== exceptDir && ownLabDir(d));
  const pids = new Set<number>();
  for (const ns of namespaces) for (const pid of namespacePids(ns)) pids.add(pid);
  for (const d of dirs) for (const pid of processesMentioning(d)) pids.add(pid);
  pids.delete(process.pid);
  await terminate([...pids], 2000);
  for (const ns of namespaces) deleteNamespace(ns);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  return { namespaces, processes: [...pids], dirs };
}

export const TRACE_PID_FILE = "trace-lab.pid";

function ownLabDir(d: string): boolean {
  try {
    const st = lstatSync(d);
    return st.isDirectory() && st.uid === process.getuid?.() && lstatSync(join(d, TRACE_PID_FILE)).isFile();
  } catch {
    return false;
  }
}

/** A trace lab still running from another dir (its pid file names a live process), if any. */
export function runningTraceLab(tmpRoot: string, exceptDir?: string): number | undefined {
  for (const n of readdirSync(tmpRoot)) {
    const d = join(tmpRoot, n);
    if (!n.startsWith(TRACE_DIR_PREFIX) || d === exceptDir || !ownLabDir(d)) continue;
    const pid = Number(readFileSync(join(d, TRACE_PID_FILE), "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      return pid;
    } catch {
      /* gone */
    }
  }
  return undefined;
}
