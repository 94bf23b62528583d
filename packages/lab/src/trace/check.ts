// Each hop of a trace compared with what that switch's kernel does with the flow (`ip route get`
// in its namespace): the out interface (the veth under the switch's interface name) and the next
// hop (the destination itself when attached). The demo prints it; the summary's verdict uses it.
import type { KernelDecision } from "./kernel-route.js";
import type { LabFlow, TraceJsonHop, TraceLab } from "./lab.js";
import { switchInterfaceName } from "./plan.js";

export interface CheckedHop {
  hop: TraceJsonHop;
  /** The kernel's member: veth and next hop; undefined when the kernel has no route. */
  kernel: { dev: string; via: string; expectedInterface: string } | { none: string };
  match: boolean;
}

/** Eth1/2 = Ethernet1/2, Gi2 = GigabitEthernet2 (NX-OS prints short names in routes, long in ARP). */
export function sameInterface(a: string, b: string): boolean {
  const norm = (x: string) =>
    x
      .trim()
      .toLowerCase()
      .replace(/^eth(?:ernet)?(?=\d)/, "ethernet")
      .replace(/^gi(?:gabitethernet)?(?=\d)/, "gigabitethernet");
  return norm(a) === norm(b);
}

function member(d: KernelDecision, dst: string): { dev: string; via: string } | { none: string } {
  if (d.kind === "none") return { none: d.reason };
  if (d.kind === "local") return { none: "local" };
  const m = d.members[d.chosen]!;
  return { dev: m.dev, via: m.via ?? dst };
}

export function checkHops(lab: TraceLab, flow: LabFlow, hops: TraceJsonHop[]): CheckedHop[] {
  return hops.map((hop) => {
    const sw = lab.switchByHostname(hop.hostname);
    if (!sw) return { hop, kernel: { none: `no lab switch named ${hop.hostname}` }, match: false };
    const m = member(lab.kernel(sw, flow), flow.dst);
    if ("none" in m) return { hop, kernel: m, match: false };
    const expectedInterface = switchInterfaceName(sw.type, m.dev);
    return { hop, kernel: { ...m, expectedInterface }, match: sameInterface(hop.outInterface, expectedInterface) && hop.nextHop === m.via };
  });
}
