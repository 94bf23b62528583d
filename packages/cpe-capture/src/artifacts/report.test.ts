// The end-of-run report of a fleet run folder: each device is compared only with its own agent
// sides; a device whose agent files stayed on the agent is listed as such, never paired with
// another device (issue 18: 200 devices gave 398 "msbr-…→msbr-… lost 0/0" lines).
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeScenario, type RunReport } from "@capsync/pcap";
import type { AgentSide, DeviceRecord, Manifest } from "../run/model.js";
import { capturePoints, reportRun } from "./report.js";

const work = mkdtempSync(join(tmpdir(), "capsync-run-report-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const AGENT = "127.0.0.1:4000";
const START_MS = 1_790_000_000_000;

function device(address: string, deviceFile: string, agents: AgentSide[]): DeviceRecord {
  const iso = (ms: number) => new Date(START_MS + ms).toISOString();
  return {
    device: address,
    name: `msbr-${address}`,
    type: "msbr",
    state: "done",
    status: "collected",
    severity: "info",
    description: "",
    interfaces: [],
    events: 0,
    stopReason: "manual",
    deviceFile: { name: deviceFile, bytes: 1 },
    tasks: [],
    agents,
    times: { capturing: iso(0), stopped: iso(2_500), agentsStopSent: iso(2_500) },
  };
}
const side = (capture: AgentSide["capture"], files: AgentSide["files"], error?: string): AgentSide => ({ agent: AGENT, registration: "active", capture, answers: [], files, ...(error ? { error } : {}) });

/** A run folder of `n` devices, each with its device capture and its agent's capture of it on disk. */
async function fleetFolder(name: string, n: number, sides: (i: number, serverFile: string) => AgentSide): Promise<{ folder: string; addresses: string[] }> {
  const folder = join(work, name);
  mkdirSync(folder);
  const devices: DeviceRecord[] = [];
  const addresses: string[] = [];
  for (let i = 0; i < n; i++) {
    const address = `127.0.2.${i + 1}`;
    const scratch = join(folder, `scratch-${i}`);
    mkdirSync(scratch);
    await writeScenario(scratch, {
      seed: 7 + i,
      startNanos: BigInt(START_MS) * 1_000_000n,
      durationMs: 2_000,
      forwardIntervalMs: 40,
      reverseIntervalMs: 60,
      points: [{ name: "dev" }, { name: "srv", linktype: "sll2" }],
      hops: [{ delayMs: [2, 4], loss: 0.05 }],
    });
    const devFile = `CPE_device_${address}_2026-12-06T03.00.00.000000.pcap`;
    const srvFile = `OVOC_device_${address}_2026-12-06T03.00.00.000000-0.pcap`;
    renameSync(join(scratch, "dev.pcapng"), join(folder, devFile));
    renameSync(join(scratch, "srv.pcapng"), join(folder, srvFile));
    rmSync(scratch, { recursive: true });
    devices.push(device(address, devFile, [sides(i, srvFile)]));
    addresses.push(address);
  }
  const manifest: Manifest = { tool: "capsync", version: "0.1.0", runId: name, folder, startedAt: new Date(START_MS).toISOString(), status: "done", mode: "v1", config: {}, devices };
  writeFileSync(join(folder, "manifest.json"), JSON.stringify(manifest));
  return { folder, addresses };
}
const report = (folder: string) => JSON.parse(readFileSync(join(folder, "report.json"), "utf8")) as RunReport;

describe("the end-of-run report of many devices", () => {
  it("server files left on the agent: no device is paired with another; each is listed as not collected", async () => {
    // The agent's files exist on disk here but the manifest says they stayed on the agent (legacy
    // agent / no SSH key): the report must go by the manifest, not by what happens to lie around.
    const { folder, addresses } = await fleetFolder("remote", 4, (_i, f) => side("remote", [{ name: f, bytes: 0, remote: `${AGENT}:<capture dir>/${f}` }]));
    const r = await reportRun(folder);
    const json = report(folder);
    expect(json.pairs).toEqual([]);
    expect(json.paths).toEqual([]);
    expect(json.points.map((p) => p.name)).toEqual(addresses.map((a) => `msbr-${a}`));
    expect(json.points.map((p) => p.notCollected)).toEqual(addresses.map(() => [{ role: "server", name: AGENT, reason: "files stay on the agent" }]));
    const packets = json.points.reduce((n, p) => n + p.packets, 0);
    expect(r!.summaryLine).toBe(`capsync report: 4 capture point(s), nothing to match; server side not collected for 4 capture point(s) (${AGENT}); merged ${packets} packets`);
    const txt = readFileSync(join(folder, "report.txt"), "utf8");
    for (const a of addresses) expect(txt).toContain(`\n  ! msbr-${a}: server side not collected: ${AGENT} (files stay on the agent)\n`);
    expect(txt).not.toMatch(/msbr-[\d.]+→msbr-/);
    expect(txt).not.toContain("Pair ");
    const html = readFileSync(join(folder, "report.html"), "utf8");
    expect(html.match(/<span class="err notcollected">server side not collected: 127\.0\.0\.1:4000 \(files stay on the agent\)<\/span>/g)).toHaveLength(4);
  });

  it("some server sides collected, some not: each device only with its own server side", async () => {
    const { folder, addresses } = await fleetFolder("mixed", 4, (i, f) => (i % 2 === 0 ? side("collected", [{ name: f, bytes: 1 }]) : side("failed", [], "STOP answered 503 busy")));
    const { pairs, points } = capturePoints(JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8")) as Manifest, folder);
    expect(pairs).toEqual([
      [`msbr-${addresses[0]}`, `server-${AGENT}-for-${addresses[0]}`],
      [`msbr-${addresses[2]}`, `server-${AGENT}-for-${addresses[2]}`],
    ]);
    expect(points.find((p) => p.name === `msbr-${addresses[1]}`)!.notCollected).toEqual([{ role: "server", name: AGENT, reason: "capture failed: STOP answered 503 busy" }]);
    const r = await reportRun(folder);
    const json = report(folder);
    expect(json.pairs.map((p) => [p.a, p.b])).toEqual(pairs);
    expect(json.paths).toEqual([]);
    // The agent's captures share its clock: both paired devices are placed against one reference;
    // the two without a server side are not.
    const ref = `server-${AGENT}-for-${addresses[0]}`;
    expect(json.reference).toBe(ref);
    expect(json.points.filter((p) => p.clockOffset.nanos !== null).map((p) => p.name)).toEqual([`msbr-${addresses[0]}`, ref, `msbr-${addresses[2]}`, `server-${AGENT}-for-${addresses[2]}`]);
    expect(json.notes).toEqual([1, 3].map((i) => `no clock offset for msbr-${addresses[i]} against ${ref}: its times are shown unadjusted`));
    expect(r!.summaryLine).toMatch(new RegExp(`^capsync report: msbr-127\\.0\\.2\\.1→server-127\\.0\\.0\\.1:4000-for-127\\.0\\.2\\.1 lost \\d+/\\d+.*; server side not collected for 2 capture point(s) \\(127\\.0\\.0\\.1:4000\\)$`.replace("(s)", "\\(s\\)")));
    expect(readFileSync(join(folder, "report.txt"), "utf8")).toContain(`\n  ! msbr-${addresses[3]}: server side not collected: ${AGENT} (capture failed: STOP answered 503 busy)\n`);
  });
});
