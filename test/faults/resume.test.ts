// Orchestrator killed with SIGKILL mid-run: `cpe-capture stop` / `resume` recover from the run
// folder's journal — running captures are stopped and collected, nothing twice, nothing lost.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { SyslogSender, ovocConnectionLostAlarm } from "@capsync/emulators";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { startLab, type Lab } from "../helpers/lab.js";
import { tcpdumpsFor } from "../helpers/procs.js";

let lab: Lab;
beforeAll(async () => {
  lab = await startLab([
    { type: "msbr", address: "127.0.0.41", password: "Resume-Pw-1" },
    { type: "gwsbc", address: "127.0.0.42", password: "Resume-Pw-2", latencyMs: 700 },
  ]);
});
afterAll(async () => lab?.close());

const state = (dev: string, s: string) => (l: { device?: string; source?: string; event?: string; status?: string }) => l.device === dev && l.source === "run" && l.event === "state" && l.status === s;

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const journalOf = (folder: string): Record<string, unknown>[] =>
  readFileSync(join(folder, "journal.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

/** Async on purpose: the emulators live in this process and must keep answering meanwhile. */
async function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const r = runCli(args, lab.env);
  const code = await r.exited;
  return { code, out: r.stdout(), err: r.stderr() };
}

function assertCollectedOnce(folder: string, manifest: { devices: { device: string; captureName: string; status: string }[] }): void {
  const files = readdirSync(folder);
  for (const d of manifest.devices) {
    expect(d.status).toBe("collected");
    expect(files.filter((f) => f.startsWith(`CPE_device_${d.device}_`))).toEqual([d.captureName]);
    const ovoc = d.captureName.replace(/^CPE_/, "OVOC_").replace(/\.pcap$/, "-0.pcap");
    expect(files.filter((f) => f.startsWith(`OVOC_device_${d.device}_`))).toEqual([ovoc]);
    expect(readFileSync(join(folder, ovoc)).equals(readFileSync(join(lab.agent.dir, ovoc)))).toBe(true);
  }
  expect(files.filter((f) => f.endsWith(".part") || f.endsWith(".tmp"))).toEqual([]);
}

describe("SIGKILL of the orchestrator", () => {
  it("while capturing: `cpe-capture stop <folder>` stops and collects everything from the journal", async () => {
    const cfg = lab.writeConfig("kill-capturing.yaml", await freeUdpPort());
    const run = runCli(["run", "--config", cfg, "--json"], lab.env);
    await run.waitFor(state("127.0.0.41", "capturing"));
    await run.waitFor(state("127.0.0.42", "capturing"));
    const folder = join(lab.work, "runs", readdirSync(join(lab.work, "runs")).sort().at(-1)!);
    run.child.kill("SIGKILL");
    await run.exited;
    // Both sides keep capturing without an orchestrator.
    expect(tcpdumpsFor("127.0.0.41")).toHaveLength(1);
    expect(lab.devices[0]!.state().capturing).toBe(true);

    const r = await cli(["stop", folder]);
    expect(r.code, r.err + r.out).toBe(0);
    expect(tcpdumpsFor("127.0.0.41")).toHaveLength(0);
    expect(lab.devices[0]!.state().capturing).toBe(false);
    expect(lab.devices[1]!.state().capturing).toBe(false);
    const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    expect(manifest.status).toBe("done");
    assertCollectedOnce(folder, manifest);
    for (const d of manifest.devices) {
      expect(d.stopReason).toBe("manual");
      expect(readFileSync(join(folder, d.captureName)).equals((await lab.devices.find((x) => x.address === d.device)!.capturedFile())!)).toBe(true);
    }
    const kinds = readFileSync(join(folder, "journal.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).kind);
    expect(kinds.filter((k) => k === "run-resume")).toHaveLength(1);
    expect(kinds.at(-1)).toBe("run-end");
    // A second stop finds nothing to do and changes nothing.
    expect((await cli(["stop", folder])).code).toBe(0);
    assertCollectedOnce(folder, manifest);
  });

  it("while stopping/collecting: `cpe-capture resume <folder>` finishes the stop, collecting each file once", async () => {
    const port = await freeUdpPort();
    const cfg = lab.writeConfig("kill-stopping.yaml", port);
    const run = runCli(["run", "--config", cfg, "--json"], lab.env);
    await run.waitFor(state("127.0.0.41", "capturing"));
    await run.waitFor(state("127.0.0.42", "capturing"));
    const folder = join(lab.work, "runs", readdirSync(join(lab.work, "runs")).sort().at(-1)!);
    const udp = await SyslogSender.open({ host: "127.0.0.1", port });
    await udp.send(ovocConnectionLostAlarm({ deviceIp: "127.0.0.41" }));
    await run.waitFor(state("127.0.0.41", "done"));
    // The slow GW/SBC (700 ms per REST answer): kill while its stop is under way.
    await udp.send(ovocConnectionLostAlarm({ deviceIp: "127.0.0.42" }));
    await run.waitFor(state("127.0.0.42", "stopping"));
    run.child.kill("SIGKILL");
    await run.exited;
    await udp.close();
    const gw = lab.devices[1]!;
    const gwCapturingAtKill = gw.state().capturing;

    // What the dead orchestrator left on disk proves the stop was unfinished: the journal (written
    // before the work it describes) has the GW/SBC stopping and nothing collected for it, and no
    // device file of it is in the folder — while the MSBR's stop had ended, collected once.
    const atKill = journalOf(folder);
    const gwLines = atKill.filter((l) => l.device === "127.0.0.42");
    expect(gwLines.some((l) => l.kind === "stop-requested" && l.reason === "alarm")).toBe(true);
    expect(gwLines.some((l) => l.kind === "device-state" && l.state === "stopping")).toBe(true);
    expect(gwLines.filter((l) => l.kind === "device-collected" || l.kind === "agent-collected" || (l.kind === "device-state" && l.state === "done"))).toEqual([]);
    expect(atKill.filter((l) => l.device === "127.0.0.41" && l.kind === "device-collected")).toHaveLength(1);
    expect(atKill.some((l) => l.kind === "run-end")).toBe(false);
    expect(readdirSync(folder).filter((f) => f.startsWith("CPE_device_127.0.0.42_") && !f.endsWith(".part"))).toEqual([]);

    const r = await cli(["resume", folder, "--json"]);
    expect(r.code, r.err).toBe(0);
    const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    expect(manifest.status).toBe("done");
    assertCollectedOnce(folder, manifest);
    expect(manifest.devices.map((d: { stopReason: string }) => d.stopReason)).toEqual(["alarm", "alarm"]);
    expect(tcpdumpsFor("127.0.0.42")).toHaveLength(0);
    expect(gw.state().capturing).toBe(false);
    // The device file the resume collected is, byte for byte, the file the emulator serves.
    const gwRec = manifest.devices.find((d: { device: string }) => d.device === "127.0.0.42");
    const served = (await gw.capturedFile())!;
    expect(served.length).toBeGreaterThan(24);
    expect(sha256(readFileSync(join(folder, gwRec.captureName)))).toBe(sha256(served));
    // Collected exactly once, by the resume.
    const after = journalOf(folder);
    const resumedAt = after.findIndex((l) => l.kind === "run-resume");
    const collectedGw = after.flatMap((l, i) => (l.device === "127.0.0.42" && l.kind === "device-collected" ? [i] : []));
    expect(collectedGw).toHaveLength(1);
    expect(collectedGw[0]).toBeGreaterThan(resumedAt);
    console.log(`[resume] SIGKILL while stopping: GW/SBC ${gwCapturingAtKill ? "still capturing" : "stopped, not yet downloaded"} at kill; resume collected ${served.length} B, SHA-256 equal to the served file`);
  });
});
