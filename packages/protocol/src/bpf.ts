// Capture spec → tcpdump: a pcap-filter(7) expression as separate argv words plus tcpdump options
// (tcpdump 4.99 / libpcap 1.10 on Linux). Only conjunctions of primitives: no parentheses needed.
// Not handled: VRFs and interfaces (the agent captures on its own --interface), and shell quoting —
// the words go to tcpdump as an argument array, never through a shell.
import { isIPv6 } from "node:net";
import { filterFamily, type CaptureSpec, type SpecIssue } from "./spec.js";

export interface BpfProgram {
  /** pcap-filter words, e.g. ["host", "192.0.2.10", "and", "udp", "and", "dst", "port", "5060"]; [] captures all. */
  expression: string[];
  /** The expression as tcpdump shows it (words joined by one space). */
  text: string;
  /**
   * tcpdump -Q (Linux; also with `-i any`): packets the capture interface received, or sent; omitted
   * for both. Not the filter words inbound/outbound: after a filter is set libpcap re-checks the
   * first frames in userland, where their ancillary load (SKF_AD_PKTTYPE) never matches, so the
   * first packets of a capture were lost (measured: libpcap 1.10.3). -Q reads the frame header.
   */
  direction?: "in" | "out";
  /** tcpdump -s */
  snaplen?: number;
  /** tcpdump -c */
  packets?: number;
  /** tcpdump -B, in KiB. */
  bufferKiB?: number;
  /** tcpdump -C <fileMb> -W <files>. */
  ring?: { fileMb: number; files: number };
  /** No ring: the agent stops the capture when its file reaches this size. */
  maxBytes?: number;
  /** The agent stops the capture after this long. */
  durationMs?: number;
}

export type BpfResult = { ok: true; program: BpfProgram } | SpecIssue;

export interface BpfOptions {
  /** Scope everything to this address (`host <device>`, what plain CAPTURE captures). */
  host?: string;
}

/**
 * Compiles a validated spec (see validateCaptureSpec). Rejects what tcpdump cannot express, and a
 * filter that can never match inside the `host` scope, naming the field; never throws.
 * @example compileBpf({ filter: { protocol: "udp", dport: 5060 } }, { host: "192.0.2.10" })
 *          → expression ["host", "192.0.2.10", "and", "udp", "and", "dst", "port", "5060"]
 */
export function compileBpf(spec: CaptureSpec, opts: BpfOptions = {}): BpfResult {
  if (spec.interfaces?.length) {
    return { ok: false, field: "interfaces", message: "a server capture runs on the agent's own --interface; device interfaces do not apply to it" };
  }
  if (spec.vrf !== undefined) {
    return { ok: false, field: "vrf", message: "a tcpdump filter cannot select a VRF; run the agent on the VRF's interface instead" };
  }
  const terms: string[][] = [];
  if (opts.host) terms.push(["host", opts.host]);
  const f = spec.filter ?? {};
  const hostV6 = opts.host === undefined ? undefined : isIPv6(opts.host);
  const side = f.src !== undefined ? "src" : f.dst !== undefined ? "dst" : undefined;
  // `host 192.0.2.10 and src net 2001:db8::/32` is a capture that stays empty: refuse it instead.
  if (side && hostV6 !== undefined && (filterFamily(f) === 6) !== hostV6) {
    return { ok: false, field: `filter.${side}`, message: `${f[side]} is IPv${hostV6 ? 4 : 6} but the capture is scoped to ${hostV6 ? "IPv6" : "IPv4"} host ${opts.host}: no packet could match` };
  }
  // Without addresses the scope decides: icmp around an IPv6 device is icmp6.
  const v6 = side ? filterFamily(f) === 6 : hostV6 === true;
  switch (f.protocol) {
    case undefined:
      break;
    case "ip":
      terms.push([v6 ? "ip6" : "ip"]);
      break;
    case "icmp":
      terms.push([v6 ? "icmp6" : "icmp"]);
      break;
    case "tcp":
    case "udp":
      terms.push([f.protocol]);
      break;
    default:
      terms.push([v6 ? "ip6" : "ip", "proto", String(f.protocol)]);
  }
  for (const [side, word] of [["src", "src"], ["dst", "dst"]] as const) {
    const p = f[side];
    if (p) terms.push(p.includes("/") ? [word, "net", p] : [word, "host", p]);
  }
  if (f.sport !== undefined) terms.push(["src", "port", String(f.sport)]);
  if (f.dport !== undefined) terms.push(["dst", "port", String(f.dport)]);
  const expression = terms.flatMap((t, i) => (i === 0 ? t : ["and", ...t]));

  const program: BpfProgram = { expression, text: expression.join(" ") };
  if (spec.direction === "in" || spec.direction === "out") program.direction = spec.direction;
  if (spec.snaplen !== undefined) program.snaplen = spec.snaplen;
  const l = spec.limits ?? {};
  if (l.packets !== undefined) program.packets = l.packets;
  if (l.bufferMb !== undefined) program.bufferKiB = l.bufferMb * 1024;
  if (l.durationSec !== undefined) program.durationMs = l.durationSec * 1000;
  if (l.maxSizeMb !== undefined) {
    if (l.ringFiles !== undefined) program.ring = { fileMb: Math.floor(l.maxSizeMb / l.ringFiles), files: l.ringFiles };
    // tcpdump cannot stop at a size by itself (-C without -W rotates forever): the agent watches it.
    else program.maxBytes = l.maxSizeMb * 1_000_000;
  }
  return { ok: true, program };
}

/** tcpdump options for a program (everything but -i/-w/-Z, which the agent owns). */
export function bpfOptions(p: BpfProgram): string[] {
  const out: string[] = [];
  if (p.direction) out.push("-Q", p.direction);
  if (p.snaplen !== undefined) out.push("-s", String(p.snaplen));
  if (p.packets !== undefined) out.push("-c", String(p.packets));
  if (p.bufferKiB !== undefined) out.push("-B", String(p.bufferKiB));
  if (p.ring) out.push("-C", String(p.ring.fileMb), "-W", String(p.ring.files));
  return out;
}
