// The filter-change request as the command and the API build it, and the segment file names.
import { describe, expect, it } from "vitest";
import { filterBody } from "../commands/filter.js";
import { changedSpec, parseFilterRequest, segmentFileName } from "./segments.js";

describe("filter change requests", () => {
  it("polycube words, options and --spec give one capture section; options win", () => {
    expect(filterBody(["src=10.10.10.10/24", "l4proto=tcp", "dport=80"], { device: ["rtr1"], snaplen: "128" })).toEqual({
      filter: { src: "10.10.10.10/24", protocol: "tcp", dport: 80 },
      snaplen: 128,
      devices: ["rtr1"],
    });
    expect(filterBody([], { spec: '{"filter": {"protocol": "udp", "dport": 5060}, "direction": "in"}', dport: "5061" })).toEqual({ filter: { protocol: "udp", dport: 5061 }, direction: "in" });
    expect(filterBody(["capture=ingress"], {})).toEqual({ direction: "ingress" });
    expect(filterBody([], { clear: true })).toEqual({ filter: {} });
    expect(() => filterBody(["vlan=7"], {})).toThrow("'vlan=7': unknown field 'vlan'; expected src, dst, l4proto, protocol, sport, dport, snaplen, direction, capture");
    expect(() => filterBody(["dport"], {})).toThrow("'dport': expected field=value");
    expect(() => filterBody([], { device: ["rtr1"] })).toThrow("nothing to change: give field=value words (src=, dst=, l4proto=, sport=, dport=, snaplen=, direction=), their options, --spec or --clear");
    expect(() => filterBody(["dport=1"], { clear: true })).toThrow("--clear: captures without a filter; leave out the filter fields");
  });

  it("only filter, direction and snaplen change; the config's own messages for the rest", () => {
    expect(parseFilterRequest({ filter: { dport: 80 }, devices: "rtr1" })).toEqual({ ok: true, change: { filter: { dport: 80 } }, devices: ["rtr1"] });
    expect(parseFilterRequest({ filter: { dport: 80 }, interfaces: ["Gi2"], vrf: "A", colour: 1, devices: [""] })).toEqual({
      ok: false,
      issues: [
        "devices: expected device names or addresses, got a list",
        "colour: unknown key 'colour'; expected interfaces, direction, filter, vrf, snaplen, limits",
        "interfaces: not changed on a running capture (a filter change sets filter, direction, snaplen); start a new run to change interfaces",
        "vrf: not changed on a running capture (a filter change sets filter, direction, snaplen); start a new run to change vrf",
      ],
    });
    expect(parseFilterRequest({ devices: ["rtr1"] })).toEqual({ ok: false, issues: ["(top level): nothing to change: give filter, direction, snaplen"] });
    expect(parseFilterRequest([1])).toEqual({ ok: false, issues: ["(top level): expected an object with filter, direction, snaplen and optionally devices, got a list"] });
  });

  it("a new filter replaces the running one whole; an empty one clears it; the rest stays", () => {
    const running = { interfaces: ["GigabitEthernet1"], filter: { src: "192.0.2.1", protocol: "udp" as const }, snaplen: 200 };
    expect(changedSpec(running, { filter: { dport: 53, protocol: "udp" } })).toEqual({ interfaces: ["GigabitEthernet1"], filter: { dport: 53, protocol: "udp" }, snaplen: 200 });
    expect(changedSpec(running, { filter: {} })).toEqual({ interfaces: ["GigabitEthernet1"], snaplen: 200 });
    expect(changedSpec(running, { snaplen: 96 })).toEqual({ ...running, snaplen: 96 });
  });

  it("segment 1 keeps the original's name; later ones end in -seg<N>", () => {
    const n = "CPE_device_192.0.2.10_2026-11-23T10.00.00.000000.pcap";
    expect(segmentFileName(n, 1)).toBe(n);
    expect(segmentFileName(n, 2)).toBe("CPE_device_192.0.2.10_2026-11-23T10.00.00.000000-seg2.pcap");
    expect(segmentFileName(n, 12)).toBe("CPE_device_192.0.2.10_2026-11-23T10.00.00.000000-seg12.pcap");
  });
});

describe("an interrupted run after a filter change", () => {
  it("resumes in its last segment: earlier segments kept, the new one's names and files not taken from them", async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { RunFolder } = await import("../artifacts/run-folder.js");
    const { recoverRun } = await import("./recover.js");
    const { deviceRuns } = await import("./assemble.js");
    const dir = mkdtempSync(join(tmpdir(), "capsync-seg-"));
    try {
      const dev = "192.0.2.10";
      const seg1 = "CPE_device_192.0.2.10_2026-11-23T10.00.00.000000.pcap";
      const agentFile = "OVOC_device_192.0.2.10_2026-11-23T10.00.00.000000-0.pcap";
      writeFileSync(join(dir, seg1), "device");
      writeFileSync(join(dir, agentFile), "agent");
      const spec2 = { interfaces: ["GigabitEthernet1"], filter: { protocol: "udp", dport: 5060 } };
      const segments = [
        { segment: 1, spec: { interfaces: ["GigabitEthernet1"] }, filter: { device: "match any" }, captureName: seg1, deviceFile: { name: seg1, bytes: 6 }, agents: [{ agent: "198.51.100.5:20001", capture: "collected", files: [{ name: agentFile, bytes: 5 }] }], endedBy: "filter-change" },
        { segment: 2, spec: spec2, filter: { device: "match udp any any eq 5060" }, agents: [] },
      ];
      const cfgDev = { name: "rtr1", address: dev, type: "iosxe", interfaces: ["GigabitEthernet1"], agents: [{ host: "198.51.100.5", port: 20001 }], spec: { interfaces: ["GigabitEthernet1"] } };
      writeFileSync(join(dir, "run-config.json"), JSON.stringify({ agents: { legacy: false }, devices: [cfgDev] }));
      const rec = { device: dev, name: "rtr1", type: "iosxe", state: "capturing", status: "running", severity: "info", description: "", interfaces: [], events: 0, tasks: [], times: {}, agents: [{ agent: "198.51.100.5:20001", registration: "active", capture: "capturing", answers: [], files: [] }] };
      writeFileSync(join(dir, "manifest.json"), JSON.stringify({ tool: "capsync", runId: "r", folder: dir, status: "running", devices: [rec] }));
      const lines = [
        { kind: "device-capture", device: dev, handle: { device: dev, type: "iosxe", capture: "CAPSYNC1" } },
        { kind: "capture-name", device: dev, captureName: seg1 },
        { kind: "device-collected", device: dev, file: seg1 },
        { kind: "agent-collected", device: dev, agent: "198.51.100.5:20001", files: [agentFile] },
        { kind: "segment-start", device: dev, segment: 2, segments },
        { kind: "device-capture", device: dev, handle: { device: dev, type: "iosxe", capture: "CAPSYNC2" } },
      ];
      writeFileSync(join(dir, "journal.jsonl"), lines.map((l) => JSON.stringify({ t: "2026-11-23T10:00:00.000Z", ...l })).join("\n") + "\n");
      const r = await recoverRun(RunFolder.open(dir));
      const d = r.manifest.devices[0]!;
      expect(d.segments?.map((s) => s.segment)).toEqual([1, 2]);
      expect(d.captureName).toBeUndefined();
      expect(d.deviceFile).toBeUndefined();
      expect(d.agents[0]).toMatchObject({ capture: "capturing", files: [] });
      expect(r.handles[dev]).toMatchObject({ capture: "CAPSYNC2" });
      const runs = deviceRuns(r.config, r.manifest, { manifest: r.manifest, handles: r.handles }, () => ({}) as never);
      expect(runs.get(dev)).toMatchObject({ segment: 2, cfg: { spec: spec2 } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
