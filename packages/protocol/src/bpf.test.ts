// Capture spec → tcpdump: golden argv for direction (-Q), the address family of protocol words,
// and every refusal naming its field.
import { describe, expect, it } from "vitest";
import { bpfOptions, compileBpf } from "./bpf.js";
import { validateCaptureSpec, type CaptureSpec } from "./spec.js";

/** Validate first, as the agent and the orchestrator do; the compiled expression and options. */
function argv(input: unknown, host?: string): string[] | { field: string; message: string } {
  const v = validateCaptureSpec(input);
  if (!v.ok) return { field: v.field, message: v.message };
  const r = compileBpf(v.spec, host === undefined ? {} : { host });
  return r.ok ? [...bpfOptions(r.program), ...r.program.expression] : { field: r.field, message: r.message };
}

describe("direction → tcpdump -Q", () => {
  it.each([
    [{ direction: "in" }, ["-Q", "in", "host", "192.0.2.10"]],
    [{ direction: "out" }, ["-Q", "out", "host", "192.0.2.10"]],
    // both is tcpdump's default (inout): no option, the same argv as a spec without direction.
    [{ direction: "both" }, ["host", "192.0.2.10"]],
    [{}, ["host", "192.0.2.10"]],
    [{ direction: "ingress" }, ["-Q", "in", "host", "192.0.2.10"]],
    [{ direction: "egress" }, ["-Q", "out", "host", "192.0.2.10"]],
    [{ direction: "bidirectional" }, ["host", "192.0.2.10"]],
    [
      { direction: "egress", filter: { protocol: "udp", src: "10.10.10.10/24", dport: 5060 }, snaplen: 256, limits: { packets: 100 } },
      ["-Q", "out", "-s", "256", "-c", "100", "host", "192.0.2.10", "and", "udp", "and", "src", "net", "10.10.10.0/24", "and", "dst", "port", "5060"],
    ],
  ])("%j", (input, want) => expect(argv(input, "192.0.2.10")).toEqual(want));
  it("without a host scope: -Q and an empty or protocol-only expression", () => {
    expect(argv({ direction: "in" })).toEqual(["-Q", "in"]);
    expect(argv({ direction: "out", filter: { protocol: "icmp" } })).toEqual(["-Q", "out", "icmp"]);
  });
});

describe("protocol words follow the capture's address family", () => {
  it.each([
    [{ filter: { protocol: "icmp" } }, "192.0.2.10", ["host", "192.0.2.10", "and", "icmp"]],
    [{ filter: { protocol: "icmp" } }, "2001:db8::10", ["host", "2001:db8::10", "and", "icmp6"]],
    [{ filter: { protocol: "ip" } }, "2001:db8::10", ["host", "2001:db8::10", "and", "ip6"]],
    [{ filter: { protocol: 47 } }, "2001:db8::10", ["host", "2001:db8::10", "and", "ip6", "proto", "47"]],
    [{ filter: { protocol: "icmp", dst: "2001:db8:1::/48" } }, "2001:db8::10", ["host", "2001:db8::10", "and", "icmp6", "and", "dst", "net", "2001:db8:1::/48"]],
    [{ filter: { protocol: "icmp", dst: "2001:db8:1::/48" } }, undefined, ["icmp6", "and", "dst", "net", "2001:db8:1::/48"]],
  ])("%j around %s", (input, host, want) => expect(argv(input, host)).toEqual(want));
});

describe("what tcpdump cannot honour is refused, naming the field", () => {
  const refused: Array<{ input: CaptureSpec; host?: string; field: string; message: string }> = [
    { input: { interfaces: ["eth0"] }, field: "interfaces", message: "a server capture runs on the agent's own --interface; device interfaces do not apply to it" },
    { input: { vrf: "MGMT" }, field: "vrf", message: "a tcpdump filter cannot select a VRF; run the agent on the VRF's interface instead" },
    {
      input: { filter: { src: "2001:db8::/32" } },
      host: "192.0.2.10",
      field: "filter.src",
      message: "2001:db8::/32 is IPv6 but the capture is scoped to IPv4 host 192.0.2.10: no packet could match",
    },
    {
      input: { filter: { dst: "198.51.100.0/24", protocol: "udp" } },
      host: "2001:db8::10",
      field: "filter.dst",
      message: "198.51.100.0/24 is IPv4 but the capture is scoped to IPv6 host 2001:db8::10: no packet could match",
    },
  ];
  it.each(refused)("$field", ({ input, host, field, message }) => expect(compileBpf(input, host ? { host } : {})).toEqual({ ok: false, field, message }));
});
