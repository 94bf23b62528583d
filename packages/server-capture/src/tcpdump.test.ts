// tcpdump's argv from a CAPTURE: the spec= JSON decoded at the agent, compiled, and turned into
// options — direction as -Q in|out (both: no -Q, tcpdump's own default), aliases already named.
import { encodeSpecWire } from "@capsync/protocol";
import { describe, expect, it } from "vitest";
import { captureProgram } from "./sessions.js";
import { tcpdumpArgs } from "./tcpdump.js";

const DEVICE = "192.0.2.10";
const FIXED = ["-i", "any", "-U", "--immediate-mode", "-n", "-w", "/var/capsync/.incoming/x.pcap", "-Z", "root"];

/** The argv the agent spawns tcpdump with for a CAPTURE carrying `spec` (JSON, as the orchestrator sends it). */
function argvFor(spec: Record<string, unknown> | undefined): string[] | string {
  const wire = spec === undefined ? undefined : Buffer.from(JSON.stringify(spec)).toString("base64url");
  const p = captureProgram(DEVICE, wire);
  if (!p.ok) return p.details.msg!;
  const g = p.program;
  return tcpdumpArgs({
    iface: "any",
    outFile: "/var/capsync/.incoming/x.pcap",
    user: "root",
    filter: g.expression,
    ...(g.snaplen !== undefined ? { snaplen: g.snaplen } : {}),
    ...(g.packets !== undefined ? { packets: g.packets } : {}),
    ...(g.bufferKiB !== undefined ? { bufferKiB: g.bufferKiB } : {}),
    ...(g.direction ? { direction: g.direction } : {}),
  });
}

describe("CAPTURE spec= → tcpdump argv (golden)", () => {
  it.each([
    ["plain CAPTURE (legacy and v1 without spec)", undefined, [...FIXED, "host", DEVICE]],
    ["direction in", { direction: "in" }, [...FIXED, "-Q", "in", "host", DEVICE]],
    ["direction out", { direction: "out" }, [...FIXED, "-Q", "out", "host", DEVICE]],
    ["direction both: tcpdump's default, no -Q", { direction: "both" }, [...FIXED, "host", DEVICE]],
    ["polycube ingress", { direction: "ingress" }, [...FIXED, "-Q", "in", "host", DEVICE]],
    ["polycube egress", { direction: "egress" }, [...FIXED, "-Q", "out", "host", DEVICE]],
    ["polycube bidirectional", { direction: "bidirectional" }, [...FIXED, "host", DEVICE]],
    [
      "direction with a filter, snaplen and limits",
      { direction: "out", filter: { protocol: "udp", src: "10.10.10.10/24", dport: 5060 }, snaplen: 128, limits: { packets: 50, bufferMb: 2 } },
      [...FIXED, "-s", "128", "-Q", "out", "-c", "50", "-B", "2048", "host", DEVICE, "and", "udp", "and", "src", "net", "10.10.10.0/24", "and", "dst", "port", "5060"],
    ],
    ["a word tcpdump does not know is refused, not passed on", { direction: "inout" }, 'direction: must be in, out or both (or ingress, egress, bidirectional), got "inout"'],
    ["an IPv6 filter around an IPv4 device", { filter: { src: "2001:db8::/32" } }, "filter.src: 2001:db8::/32 is IPv6 but the capture is scoped to IPv4 host 192.0.2.10: no packet could match"],
  ])("%s", (_name, spec, want) => expect(argvFor(spec)).toEqual(want));

  it("the orchestrator's encoding of a one-direction spec is what the agent reads", () => {
    const p = captureProgram(DEVICE, encodeSpecWire({ direction: "in" }));
    expect(p).toEqual({ ok: true, program: { expression: ["host", DEVICE], text: `host ${DEVICE}`, direction: "in" }, spec: '{"direction":"in"}' });
  });
});
