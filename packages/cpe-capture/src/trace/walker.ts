// The hop-by-hop walk of `cpe-capture trace`, flowtracker's loop: ask the current hop which way the
// flow goes, read the out interface's counters, connect to the next hop (its address, or with
// useMgmt the management address its CDP neighbor entry advertises) and repeat, until the
// destination is attached (out interface from ARP + MAC table) or is the hop itself. Stops on a
// loop, after maxHops, or at a hop that cannot be reached or will not answer. Knows no vendor: hop
// clients come from `connect`, per device type.
import { isIPv4 } from "node:net";
import { redact } from "@capsync/protocol";
import type { FlowQuery, HopClient, InterfaceStats } from "../drivers/hop.js";

export const MAX_HOPS = 32;

export interface HopReport {
  number: number;
  /** The hop's address on the path: the target, then each next hop (what CONNECTED TO shows). */
  address: string;
  /** The address the session went to (a management address with useMgmt). */
  connectedVia: string;
  type: string;
  hostname: string;
  vrf: string;
  loadShareMode: string | undefined;
  outInterface: string;
  /** The next hop as the walk continues to it; the destination when attached; the out interface when local. */
  nextHop: string;
  /** The destination is attached to this hop (the path ends here). */
  attached: boolean;
  /** The destination is this hop itself (the path ends here). */
  local: boolean;
  stats: Omit<InterfaceStats, "raw"> | undefined;
  /** What the hop answered for the route question, as printed. */
  routeText: string;
  /** Things that went wrong without stopping the walk (e.g. no counters). */
  notes: string[];
  elapsedSeconds: number;
}

export type TraceOutcome = "complete" | "loop" | "unreachable" | "failed" | "too-many-hops" | "stopped";

export interface TraceResult {
  hops: HopReport[];
  result: TraceOutcome;
  /** Why the walk stopped short; undefined when complete. */
  reason: string | undefined;
  elapsedSeconds: number;
}

export interface WalkOptions {
  flow: FlowQuery & { vrf: string };
  target: string;
  /** The device types to try for the first hop, in order; later hops try the previous hop's type first, then `allTypes`. */
  firstTypes: readonly string[];
  allTypes: readonly string[];
  connect: (type: string, address: string) => HopClient;
  useMgmt: boolean;
  /** Removed from every reason and note (the password). */
  secrets: readonly string[];
  maxHops?: number;
  /** Called with each finished hop (the text output prints it at once). */
  onHop?: (hop: HopReport) => void;
  /** Asked before connecting to the next hop (interactive mode); false stops the walk. */
  beforeNextHop?: (hop: HopReport, next: string) => Promise<boolean>;
  now?: () => number;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Connects to `address` with the first of `types` whose hop client answers (its hostname). */
async function connectAny(
  o: WalkOptions,
  types: readonly string[],
  address: string,
): Promise<{ ok: true; client: HopClient; type: string; hostname: string } | { ok: false; reason: string }> {
  const failures: string[] = [];
  for (const type of types) {
    const client = o.connect(type, address);
    try {
      const hostname = await client.hostname();
      return { ok: true, client, type, hostname };
    } catch (e) {
      failures.push(types.length > 1 ? `as ${type}: ${message(e)}` : message(e));
      await client.close().catch(() => {});
    }
  }
  return { ok: false, reason: failures.join("; ") || "no device type to try" };
}

export async function walk(o: WalkOptions): Promise<TraceResult> {
  const now = o.now ?? (() => performance.now());
  const maxHops = o.maxHops ?? MAX_HOPS;
  const started = now();
  const hops: HopReport[] = [];
  const scrub = (t: string) => redact(t, [...o.secrets]);
  const done = (result: TraceOutcome, reason?: string): TraceResult => ({
    hops,
    result,
    reason: reason === undefined ? undefined : scrub(reason),
    elapsedSeconds: (now() - started) / 1000,
  });
  /** Path address → hop number; hostnames → hop number. */
  const seenAddress = new Map<string, number>();
  const seenHost = new Map<string, number>();
  let address = o.target;
  let via = o.target;
  let types = o.firstTypes;

  for (let number = 1; ; number++) {
    const t0 = now();
    const conn = await connectAny(o, types, via);
    if (!conn.ok) return done("unreachable", `hop ${number} (${address}${via !== address ? ` via ${via}` : ""}) cannot be reached: ${conn.reason}`);
    const { client, type, hostname } = conn;
    try {
      const again = seenHost.get(hostname.toLowerCase());
      if (again !== undefined) {
        return done("loop", `routing loop: hop ${number} (${address}) is ${hostname}, already hop ${again} (${hops[again - 1]!.address})`);
      }
      seenAddress.set(address, number);
      seenHost.set(hostname.toLowerCase(), number);

      let decision;
      try {
        decision = await client.routeFor(o.flow);
      } catch (e) {
        return done("failed", `hop ${number} (${hostname}, ${address}) did not say where the flow goes: ${message(e)}`);
      }
      const notes: string[] = [];
      const attached = !decision.local && (decision.nextHop === undefined || decision.nextHop === o.flow.dst);
      // flowtracker's end test: an out interface named local, or a next hop that is no address.
      const local = Boolean(decision.local) || (!attached && !isIPv4(decision.nextHop ?? ""));
      let outInterface = decision.outInterface;
      if (attached) outInterface = await attachedPort(client, o.flow, outInterface, notes);
      let stats: HopReport["stats"];
      if (!local) {
        try {
          const { raw: _raw, ...s } = await client.interfaceStats(outInterface);
          stats = s;
        } catch (e) {
          notes.push(`no counters for ${outInterface}: ${message(e)}`);
        }
      }
      // A local hop's next hop is its out interface's name, as flowtracker shows it ("sup-eth1").
      const next = attached ? o.flow.dst : local ? (decision.nextHop ?? decision.outInterface.split(/[\s,]/)[0]!) : decision.nextHop!;
      const hop: HopReport = {
        number,
        address,
        connectedVia: via,
        type,
        hostname,
        vrf: decision.vrf,
        loadShareMode: decision.loadShareMode,
        outInterface,
        nextHop: next,
        attached,
        local,
        stats,
        routeText: scrub(decision.raw.trim()),
        notes: notes.map(scrub),
        elapsedSeconds: (now() - t0) / 1000,
      };
      hops.push(hop);
      o.onHop?.(hop);
      if (attached || local) return done("complete");
      const loopAt = seenAddress.get(next);
      if (loopAt !== undefined) return done("loop", `routing loop: hop ${number} (${hostname}) sends the flow to ${next}, which is hop ${loopAt} (${hops[loopAt - 1]!.hostname})`);
      if (number >= maxHops) return done("too-many-hops", `no end after ${maxHops} hops (the next would be ${next})`);
      if (o.beforeNextHop && !(await o.beforeNextHop(hop, next))) return done("stopped", `stopped before hop ${number + 1} (${next})`);
      let connectTo = next;
      if (o.useMgmt) {
        const mgmt = await managementAddress(client, next, outInterface);
        if (!mgmt.ok) return done("unreachable", `hop ${number + 1} (${next}) cannot be reached: ${mgmt.reason}`);
        connectTo = mgmt.address;
      }
      types = [type, ...o.allTypes.filter((x) => x !== type)];
      address = next;
      via = connectTo;
    } finally {
      await client.close().catch(() => {});
    }
  }
}

/** The port the destination hangs off: its ARP entry's interface, refined by the MAC table (a VLAN's member port). */
async function attachedPort(client: HopClient, flow: FlowQuery & { vrf: string }, routed: string, notes: string[]): Promise<string> {
  let arp;
  try {
    arp = (await client.arp(flow.vrf)).find((a) => a.address === flow.dst);
  } catch (e) {
    notes.push(`ARP table not read: ${message(e)}`);
    return routed;
  }
  if (!arp) {
    notes.push(`no ARP entry for ${flow.dst}`);
    return routed;
  }
  try {
    const mac = (await client.macTable()).find((m) => m.mac.toLowerCase() === arp.mac.toLowerCase());
    return mac?.port ?? arp.interface;
  } catch {
    // A routed port has no MAC table (the command is refused there): the ARP interface is the port.
    return arp.interface;
  }
}

/** flowtracker's get_mgmt: the CDP neighbor that advertises `next` (else the one on the out interface), its management address. */
async function managementAddress(client: HopClient, next: string, outInterface: string): Promise<{ ok: true; address: string } | { ok: false; reason: string }> {
  let neighbors;
  try {
    neighbors = await client.cdpNeighbors();
  } catch (e) {
    return { ok: false, reason: `--use_mgmt: CDP neighbors not read: ${message(e)}` };
  }
  const n = neighbors.find((x) => x.addresses.includes(next)) ?? neighbors.find((x) => x.localInterface === outInterface);
  const address = n?.mgmtAddresses.find((a) => isIPv4(a));
  if (!n) return { ok: false, reason: `--use_mgmt: no CDP neighbor advertises ${next} or sits on ${outInterface}` };
  if (!address) return { ok: false, reason: `--use_mgmt: CDP neighbor ${n.deviceId} advertises no IPv4 management address` };
  return { ok: true, address };
}
