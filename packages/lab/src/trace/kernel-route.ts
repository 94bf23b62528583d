// Which way a namespace's kernel forwards one flow, as the trace lab's switches answer it: the flow
// enters on the interface towards its source (`ip -j route get <src>`), then `ip -j route get <dst>
// from <src> iif <that> [ipproto N] [sport P dport P] [vrf V]` is the member the kernel's own hash
// picks (L4 with fib_multipath_hash_policy=1) and `ip -j route get fibmatch ...` the whole FIB entry
// (its prefix, every ECMP member). `ip` runs with argument arrays (never a shell), through `run`:
// directly inside the namespace (the switch process) or as `ip -n <ns>` (the lab and its test).
import { execFileSync } from "node:child_process";
import { isIPv4 } from "node:net";
import type { FlowQuery } from "@capsync/cpe-capture/drivers/hop";

/** The traced flow, as `cpe-capture trace` asks it (a VRF other than "default" is a Linux VRF of that name). */
export type KernelFlow = FlowQuery;

export type KernelDecision =
  | { kind: "route"; prefix: string; members: { via: string | undefined; dev: string }[]; chosen: number; iif: string }
  | { kind: "local"; prefix: string }
  | { kind: "none"; reason: string };

/** Runs `ip` with these arguments and returns stdout; throws with ip's message on failure. */
export type IpRunner = (args: string[]) => string;

/** `ip` in this process's own namespace. */
export const ipHere: IpRunner = (args) => execFileSync("ip", args, { encoding: "utf8", timeout: 5000, stdio: ["ignore", "pipe", "pipe"] });

/** `ip -n <ns>` from outside the namespace. */
export const ipIn =
  (ns: string): IpRunner =>
  (args) =>
    ipHere(["-n", ns, ...args]);

const VRF = /^[A-Za-z0-9_.:-]{1,15}$/;

function why(e: unknown): string {
  const err = e as { stderr?: string | Buffer; message?: string };
  return (err.stderr?.toString().trim() || err.message || String(e)).split("\n")[0]!;
}

interface IpRouteJson {
  type?: string;
  dst?: string;
  gateway?: string;
  dev?: string;
  nexthops?: { gateway?: string; dev?: string }[];
}

function first(run: IpRunner, args: string[]): IpRouteJson {
  const list = JSON.parse(run(args)) as IpRouteJson[];
  if (!Array.isArray(list) || !list[0]) throw new Error(`ip ${args.join(" ")}: no answer`);
  return list[0];
}

/** The `ip route get` selectors of a flow after the destination (from, iif, ipproto, ports, vrf). */
export function flowSelectors(flow: KernelFlow, iif: string): string[] {
  const vrf = flow.vrf && flow.vrf !== "default" ? flow.vrf : undefined;
  return [
    "from", flow.src, "iif", iif,
    ...(flow.proto !== undefined ? ["ipproto", String(flow.proto)] : []),
    ...(flow.sport !== undefined ? ["sport", String(flow.sport)] : []),
    ...(flow.dport !== undefined ? ["dport", String(flow.dport)] : []),
    ...(vrf ? ["vrf", vrf] : []),
  ];
}

/** "198.51.100.0/24", "default" → "0.0.0.0/0", a host entry "198.51.100.1" → "198.51.100.1/32". */
function prefixOf(dst: string | undefined, fallback: string): string {
  if (!dst) return `${fallback}/32`;
  if (dst === "default") return "0.0.0.0/0";
  return dst.includes("/") ? dst : `${dst}/32`;
}

export function kernelDecision(flow: KernelFlow, run: IpRunner): KernelDecision {
  if (!isIPv4(flow.src) || !isIPv4(flow.dst)) return { kind: "none", reason: "IPv4 addresses only" };
  if (flow.vrf && flow.vrf !== "default" && !VRF.test(flow.vrf)) return { kind: "none", reason: `not a VRF name: ${flow.vrf}` };
  for (const [k, v, max] of [["proto", flow.proto, 255], ["sport", flow.sport, 65535], ["dport", flow.dport, 65535]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= max)) return { kind: "none", reason: `${k} out of range: ${v}` };
  }
  let iif: string;
  try {
    const back = first(run, ["-j", "route", "get", flow.src]);
    if (!back.dev || back.type === "local") return { kind: "none", reason: `no interface towards ${flow.src}` };
    // A source on this box itself enters on the loopback as far as forwarding is concerned.
    iif = back.dev;
  } catch (e) {
    return { kind: "none", reason: `no route back to ${flow.src}: ${why(e)}` };
  }
  const sel = flowSelectors(flow, iif);
  let hop: IpRouteJson;
  let fib: IpRouteJson;
  try {
    hop = first(run, ["-j", "route", "get", flow.dst, ...sel]);
    fib = first(run, ["-j", "route", "get", "fibmatch", flow.dst, ...sel]);
  } catch (e) {
    return { kind: "none", reason: why(e) };
  }
  if (hop.type === "local") return { kind: "local", prefix: prefixOf(fib.dst, flow.dst) };
  if (!hop.dev) return { kind: "none", reason: `no out interface for ${flow.dst}` };
  const members = (fib.nexthops ?? [{ ...(fib.gateway ? { gateway: fib.gateway } : {}), ...(fib.dev ? { dev: fib.dev } : {}) }]).map((m) => ({ via: m.gateway, dev: m.dev ?? hop.dev! }));
  let chosen = members.findIndex((m) => m.dev === hop.dev && m.via === hop.gateway);
  if (chosen < 0) {
    members.push({ via: hop.gateway, dev: hop.dev });
    chosen = members.length - 1;
  }
  return { kind: "route", prefix: prefixOf(fib.dst, flow.dst), members, chosen, iif };
}
