// The capture spec model: golden validation table, normalisation, merging, the CAPTURE spec= wire
// encoding, and properties (valid specs survive the wire unchanged; junk never throws).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileBpf } from "./bpf.js";
import { agentSpec, canonicalSpecJson, decodeSpecWire, encodeSpecWire, filterFamily, mergeCaptureSpecs, parsePrefix, validateCaptureSpec, type CaptureSpec } from "./spec.js";

describe("validateCaptureSpec (golden)", () => {
  const ok: Array<{ name: string; input: unknown; expected: CaptureSpec }> = [
    { name: "empty", input: {}, expected: {} },
    { name: "any and empty sections drop out", input: { filter: { src: "any", dst: "0.0.0.0/0" }, limits: {}, interfaces: [] }, expected: {} },
    { name: "duplicates collapse", input: { interfaces: ["eth-wan", "eth-wan", "eth-lan"] }, expected: { interfaces: ["eth-wan", "eth-lan"] } },
    { name: "a /32 is a host", input: { filter: { dst: "192.0.2.1/32" } }, expected: { filter: { dst: "192.0.2.1" } } },
    { name: "IPv6 canonical (RFC 5952)", input: { filter: { src: "2001:0DB8:0000:0000:0000:0000:0000:0001", dst: "2001:db8:0:1::/64" } }, expected: { filter: { src: "2001:db8::1", dst: "2001:db8:0:1::/64" } } },
    { name: "protocol numbers with names", input: { filter: { protocol: 17, dport: 53 } }, expected: { filter: { protocol: "udp", dport: 53 } } },
    { name: "other protocol numbers stay", input: { filter: { protocol: 50 } }, expected: { filter: { protocol: 50 } } },
    {
      name: "everything",
      input: { interfaces: ["Gi1"], direction: "in", filter: { protocol: "tcp", sport: 1, dport: 65535 }, vrf: "MGMT", snaplen: 96, limits: { durationSec: 60, packets: 10, maxSizeMb: 8, ringFiles: 2, bufferMb: 4 } },
      expected: { interfaces: ["Gi1"], direction: "in", filter: { protocol: "tcp", sport: 1, dport: 65535 }, vrf: "MGMT", snaplen: 96, limits: { durationSec: 60, packets: 10, maxSizeMb: 8, ringFiles: 2, bufferMb: 4 } },
    },
  ];
  it.each(ok)("accepts $name", ({ input, expected }) => expect(validateCaptureSpec(input)).toEqual({ ok: true, spec: expected }));

  const bad: Array<{ name: string; input: unknown; field: string; message: string }> = [
    { name: "not an object", input: [], field: "", message: "a capture spec must be an object" },
    { name: "unknown key", input: { snapLen: 5 }, field: "snapLen", message: "unknown field; expected one of: interfaces, direction, filter, vrf, snaplen, limits" },
    { name: "unknown filter key", input: { filter: { port: 5 } }, field: "filter.port", message: "unknown field; expected one of: src, dst, protocol, sport, dport" },
    { name: "interface with a space", input: { interfaces: ["eth wan"] }, field: "interfaces.0", message: '"eth wan" is not an interface name (a letter, then letters, digits, / . : _ -; at most 64)' },
    { name: "direction", input: { direction: "inout" }, field: "direction", message: 'must be in, out or both (or ingress, egress, bidirectional), got "inout"' },
    { name: "polycube's off", input: { direction: "off" }, field: "direction", message: 'must be in, out or both (or ingress, egress, bidirectional), got "off"' },
    { name: "aliases are lower case", input: { direction: "Ingress" }, field: "direction", message: 'must be in, out or both (or ingress, egress, bidirectional), got "Ingress"' },
    { name: "no inherited keys as aliases", input: { direction: "toString" }, field: "direction", message: 'must be in, out or both (or ingress, egress, bidirectional), got "toString"' },
    { name: "hostname", input: { filter: { src: "example.com" } }, field: "filter.src", message: '"example.com" is not "any", an IPv4/IPv6 address or a prefix like 192.0.2.0/24' },
    { name: "prefix too long", input: { filter: { dst: "192.0.2.1/33" } }, field: "filter.dst", message: "prefix length 33 is longer than 32" },
    { name: "mixed families", input: { filter: { src: "192.0.2.1", dst: "2001:db8::1" } }, field: "filter.dst", message: "src and dst must both be IPv4 or both IPv6" },
    { name: "port without protocol", input: { filter: { sport: 5 } }, field: "filter.sport", message: "a port needs filter.protocol tcp or udp" },
    { name: "port on icmp", input: { filter: { protocol: "icmp", dport: 5 } }, field: "filter.dport", message: "a port needs filter.protocol tcp or udp" },
    { name: "port 0", input: { filter: { protocol: "tcp", dport: 0 } }, field: "filter.dport", message: "must be 1..65535, got 0" },
    { name: "protocol name", input: { filter: { protocol: "sctp" } }, field: "filter.protocol", message: 'must be ip, tcp, udp, icmp or a protocol number 0..255, got "sctp"' },
    { name: "snaplen fraction", input: { snaplen: 1.5 }, field: "snaplen", message: "must be a whole number of bytes, got 1.5" },
    { name: "ring without size", input: { limits: { ringFiles: 3 } }, field: "limits.ringFiles", message: "needs limits.maxSizeMb (the total size of the ring)" },
    { name: "ring too fine", input: { limits: { ringFiles: 10, maxSizeMb: 5 } }, field: "limits.ringFiles", message: "10 files cannot share 5 MB (at least 1 MB each)" },
    { name: "duration string", input: { limits: { durationSec: "1h" } }, field: "limits.durationSec", message: 'must be a whole number of seconds, got "1h"' },
    { name: "vrf with a space", input: { vrf: "a b" }, field: "vrf", message: '"a b" is not a VRF name (letters, digits, _ . : -; at most 32)' },
  ];
  it.each(bad)("refuses $name, naming the field", ({ input, field, message }) => expect(validateCaptureSpec(input)).toEqual({ ok: false, field, message }));

  it("parsePrefix", () => {
    expect(parsePrefix("10.0.0.0/8")).toEqual({ family: 4, address: "10.0.0.0", length: 8, host: false });
    expect(parsePrefix("::1")).toEqual({ family: 6, address: "::1", length: 128, host: true });
    expect(parsePrefix("::ffff:192.0.2.1")).toEqual({ family: 6, address: "::ffff:c000:201", length: 128, host: true });
    expect(parsePrefix("10.0.0.0/33")).toEqual({ error: "prefix length 33 is longer than 32" });
    expect(parsePrefix("fe80::1%eth0")).toBeUndefined();
    expect(parsePrefix("010.1.1.1")).toBeUndefined();
    // Strict by default (an ACL parser wants the error); "clear" is polycube's reading.
    expect(parsePrefix("10.10.10.10/24")).toEqual({ error: "10.10.10.10/24 has host bits set; the network is 10.10.10.0/24" });
    expect(parsePrefix("10.10.10.10/24", { hostBits: "clear" })).toEqual({ family: 4, address: "10.10.10.0", length: 24, host: false, hostBitsCleared: true });
    expect(parsePrefix("10.10.10.0/24", { hostBits: "clear" })).toEqual({ family: 4, address: "10.10.10.0", length: 24, host: false });
    expect(parsePrefix("2001:db8::1/32", { hostBits: "clear" })).toEqual({ family: 6, address: "2001:db8::", length: 32, host: false, hostBitsCleared: true });
  });
});

describe("polycube's words and prefixes (aliases and host bits, normalised with a note)", () => {
  const table: Array<{ input: Record<string, unknown>; spec: CaptureSpec; notes: Array<{ field: string; from: string; to: string }> }> = [
    { input: { direction: "ingress" }, spec: { direction: "in" }, notes: [{ field: "direction", from: "ingress", to: "in" }] },
    { input: { direction: "egress" }, spec: { direction: "out" }, notes: [{ field: "direction", from: "egress", to: "out" }] },
    { input: { direction: "bidirectional" }, spec: { direction: "both" }, notes: [{ field: "direction", from: "bidirectional", to: "both" }] },
    { input: { filter: { src: "10.10.10.10/24" } }, spec: { filter: { src: "10.10.10.0/24" } }, notes: [{ field: "filter.src", from: "10.10.10.10/24", to: "10.10.10.0/24" }] },
    { input: { filter: { dst: " 10.10.10.10/24 " } }, spec: { filter: { dst: "10.10.10.0/24" } }, notes: [{ field: "filter.dst", from: "10.10.10.10/24", to: "10.10.10.0/24" }] },
    { input: { filter: { src: "192.0.2.77/28", dst: "198.51.100.200/25" } }, spec: { filter: { src: "192.0.2.64/28", dst: "198.51.100.128/25" } }, notes: [{ field: "filter.src", from: "192.0.2.77/28", to: "192.0.2.64/28" }, { field: "filter.dst", from: "198.51.100.200/25", to: "198.51.100.128/25" }] },
    { input: { filter: { src: "10.1.2.3/8" } }, spec: { filter: { src: "10.0.0.0/8" } }, notes: [{ field: "filter.src", from: "10.1.2.3/8", to: "10.0.0.0/8" }] },
    { input: { filter: { src: "2001:DB8:0:1::5/64" } }, spec: { filter: { src: "2001:db8:0:1::/64" } }, notes: [{ field: "filter.src", from: "2001:DB8:0:1::5/64", to: "2001:db8:0:1::/64" }] },
    { input: { filter: { dst: "2001:db8:abcd:12::1/47" } }, spec: { filter: { dst: "2001:db8:abcc::/47" } }, notes: [{ field: "filter.dst", from: "2001:db8:abcd:12::1/47", to: "2001:db8:abcc::/47" }] },
    // Any /0 is "any", dropped like 0.0.0.0/0: nothing left to note.
    { input: { filter: { src: "10.1.2.3/0" } }, spec: {}, notes: [] },
    { input: { direction: "egress", filter: { src: "10.10.10.10/24", protocol: "tcp", dport: 80 } }, spec: { direction: "out", filter: { src: "10.10.10.0/24", protocol: "tcp", dport: 80 } }, notes: [{ field: "direction", from: "egress", to: "out" }, { field: "filter.src", from: "10.10.10.10/24", to: "10.10.10.0/24" }] },
  ];
  it.each(table)("$input", ({ input, spec, notes }) => {
    const r = validateCaptureSpec(input);
    expect(r).toEqual(notes.length ? { ok: true, spec, notes } : { ok: true, spec });
    // Canonical input gives the same spec and no notes: normalising is idempotent.
    expect(validateCaptureSpec(spec)).toEqual({ ok: true, spec });
  });
  it("canonical words and network prefixes give no notes", () => {
    expect(validateCaptureSpec({ direction: "in", filter: { src: "2001:db8:5::/48", dst: "2001:DB8::1" } })).toEqual({ ok: true, spec: { direction: "in", filter: { src: "2001:db8:5::/48", dst: "2001:db8::1" } } });
  });
  it("the wire carries the canonical word, so agents that predate the aliases read it", () => {
    const v = validateCaptureSpec({ direction: "ingress", filter: { src: "10.10.10.10/24" } });
    expect(v.ok && Buffer.from(encodeSpecWire(agentSpec(v.spec)), "base64url").toString()).toBe('{"direction":"in","filter":{"src":"10.10.10.0/24"}}');
  });
});

describe("merging and the agent's view", () => {
  it("run defaults under a device spec: limits merge, a filter is replaced whole", () => {
    const defaults: CaptureSpec = { filter: { protocol: "udp", dport: 5060 }, snaplen: 256, limits: { durationSec: 3600, bufferMb: 10 } };
    const device: CaptureSpec = { interfaces: ["Gi1"], filter: { protocol: "tcp" }, limits: { bufferMb: 20 } };
    expect(mergeCaptureSpecs(defaults, device)).toEqual({ interfaces: ["Gi1"], filter: { protocol: "tcp" }, snaplen: 256, limits: { durationSec: 3600, bufferMb: 20 } });
    expect(mergeCaptureSpecs(undefined, undefined)).toEqual({});
  });
  it("agents get direction, filter, snaplen and limits; not the device's interfaces and VRF", () => {
    expect(agentSpec({ interfaces: ["eth-wan"], direction: "in", vrf: "x", filter: { protocol: "ip" }, snaplen: 64, limits: { packets: 5 } })).toEqual({ direction: "in", filter: { protocol: "ip" }, snaplen: 64, limits: { packets: 5 } });
    expect(agentSpec({ direction: "out" })).toEqual({ direction: "out" });
    // "both" is tcpdump's default: left out, so the agent gets plain CAPTURE (legacy agents too).
    expect(agentSpec({ interfaces: ["eth-wan"], direction: "both", vrf: "x" })).toEqual({});
  });
});

describe("CAPTURE spec= wire encoding", () => {
  it("is base64url of canonical JSON (key order fixed)", () => {
    const a = encodeSpecWire({ snaplen: 64, filter: { dport: 53, protocol: "udp" } });
    const b = encodeSpecWire({ filter: { protocol: "udp", dport: 53 }, snaplen: 64 });
    expect(a).toBe(b);
    expect(Buffer.from(a, "base64url").toString()).toBe('{"filter":{"protocol":"udp","dport":53},"snaplen":64}');
    expect(decodeSpecWire(a)).toEqual({ ok: true, spec: { filter: { protocol: "udp", dport: 53 }, snaplen: 64 } });
  });
  it("refuses what is not canonical base64url JSON of a valid spec", () => {
    expect(decodeSpecWire("e30=")).toMatchObject({ ok: false, field: "spec" });
    expect(decodeSpecWire("eyJ4IjoxfQ")).toEqual({ ok: false, field: "x", message: "unknown field; expected one of: interfaces, direction, filter, vrf, snaplen, limits" });
    expect(decodeSpecWire(Buffer.from("not json").toString("base64url"))).toEqual({ ok: false, field: "spec", message: "is not JSON" });
    expect(decodeSpecWire(Buffer.from([0xff, 0xfe]).toString("base64url"))).toEqual({ ok: false, field: "spec", message: "is not UTF-8" });
    expect(decodeSpecWire("a".repeat(1001))).toMatchObject({ ok: false, field: "spec" });
  });

  const specArb: fc.Arbitrary<CaptureSpec> = fc.record(
    {
      interfaces: fc.array(fc.stringMatching(/^[A-Za-z][A-Za-z0-9/.-]{0,10}$/), { minLength: 1, maxLength: 3 }),
      direction: fc.constantFrom("in" as const, "out" as const, "both" as const),
      filter: fc.record(
        {
          src: fc.ipV4().map((a) => a),
          dst: fc.tuple(fc.ipV4(), fc.integer({ min: 8, max: 32 })).map(([a, n]) => {
            const v = a.split(".").reduce((x, o) => x * 256 + Number(o), 0);
            const net = n === 0 ? 0 : (v >>> (32 - n)) << (32 - n);
            return `${[net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255].join(".")}/${n}`;
          }),
          protocol: fc.constantFrom("tcp" as const, "udp" as const),
          dport: fc.integer({ min: 1, max: 65535 }),
        },
        { requiredKeys: ["protocol"] },
      ),
      snaplen: fc.integer({ min: 1, max: 262144 }),
      limits: fc.record({ durationSec: fc.integer({ min: 1, max: 86400 }), packets: fc.integer({ min: 1, max: 1e6 }), bufferMb: fc.integer({ min: 1, max: 64 }) }, { requiredKeys: [] }),
    },
    { requiredKeys: [] },
  );

  it("property: a validated spec survives the wire unchanged, and validation is idempotent", () => {
    fc.assert(
      fc.property(specArb, (raw) => {
        const v = validateCaptureSpec(raw);
        if (!v.ok) return true; // e.g. a generated prefix the model canonicalises differently
        const wire = encodeSpecWire(v.spec);
        const back = decodeSpecWire(wire);
        expect(back).toEqual({ ok: true, spec: v.spec });
        expect(canonicalSpecJson(validateCaptureSpec(v.spec).ok ? v.spec : {})).toBe(canonicalSpecJson(v.spec));
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it("property: junk never throws, and whatever validates compiles for tcpdump", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.base64String({ maxLength: 200 }).map((s) => s.replace(/[+/=]/g, "_"))), (text) => {
        const r = decodeSpecWire(text);
        const host = r.ok && filterFamily(r.spec.filter) === 6 ? "2001:db8::1" : "192.0.2.1";
        if (r.ok) expect(compileBpf({ ...r.spec, interfaces: [], vrf: undefined } as CaptureSpec, { host }).ok).toBe(true);
        return true;
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = validateCaptureSpec(v);
        expect(typeof r.ok).toBe("boolean");
      }),
      { numRuns: 500 },
    );
  });
});
