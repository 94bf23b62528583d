// Issue 18 item 8, the short soak: 200 emulated devices capturing for 3 minutes through one real
// agent (real tcpdump on lo, a 3 × 1 MB ring per device that wraps under the steady packets) and the
// real `cpe-capture run`, with a trickle of unrelated syslog; then one Connection Lost per device
// stops them all. Runs bench/soak.mjs (the 30-minute benchmark, shortened) as its own process and
// checks its RESULT: RSS and descriptors of both processes flat after the warm-up (first half),
// ring files bounded, every file collected and in the run folder, no tcpdump left.
// The only long test of the suite (5–8 min, most of it the 3 minutes and the 200 devices' start and
// collection): the lead runs it in its own lane.
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../helpers/agent-proc.js";

const DEVICES = 200;
const DURATION_S = 180;
const RING_FILES = 3;
const RING_MB = 1;
/** 20 KiB/s per device: ~3.6 MB in the soak, more than the 3 MB ring, so every ring wraps. */
const DEVICE_BPS = 20_480;
const MAX_GROWTH = 0.1;
/**
 * Warm-up: the first half. The 30-minute benchmark uses its first 20 %; in 3 minutes that is 36 s,
 * while the orchestrator's RSS is still settling from the start of 200 devices (it falls by a third
 * over the first ~2 minutes, a growth figure from there would be a meaningless negative).
 */
const WARMUP = 0.5;

interface Flat {
  samples: number;
  baseline: number;
  end: number;
  growth: number;
  peakGrowth: number;
}

interface SoakResult {
  devices: number;
  warmupS: number;
  flat: { orchestratorRss: Flat; orchestratorFds: Flat; agentRss: Flat; agentFds: Flat };
  ring: { maxFiles: number; maxMb: number; boundFiles: number; boundMb: number; minTcpdumps: number; maxTcpdumps: number };
  traffic: { packets: number; skipped: number; syslog: number; seconds: number };
  collect: {
    exitCode: number;
    devices: number;
    collected: number;
    byAlarm: number;
    manifestFiles: number;
    deviceFiles: number;
    agentFiles: number;
    agentFilesPerDevice: { min: number; max: number };
    folderFiles: number;
    missing: number;
    sizeMismatch: number;
    tcpdumpsLeft: number;
    notCollected: { device: string; status: string; description: string; agents: string[] }[];
  };
  svg: string;
}

function runSoakBench(outDir: string): Promise<{ code: number | null; result?: SoakResult; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, "bench/soak.mjs")], {
      env: {
        ...process.env,
        DEVICES: String(DEVICES),
        DURATION_S: String(DURATION_S),
        SAMPLE_S: "2",
        WARMUP: String(WARMUP),
        RING_MB: String(RING_MB),
        RING_FILES: String(RING_FILES),
        DEVICE_BPS: String(DEVICE_BPS),
        SYSLOG_PER_S: "20",
        // Its own addresses: nothing else on the machine sends to 127.0.66.x.
        FIRST_ADDRESS: "127.0.66.1",
        OUT_DIR: outDir,
        // The stop's 200 alarms 50 ms apart (10 s): back to back, an agent on this machine loaded
        // by the rest of the suite could not acknowledge every STOP within the orchestrator's fixed
        // 8 s (the 30-minute benchmark keeps the burst).
        ALARM_GAP_MS: "50",
        BUDGET_S: "840",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      resolve({ code, stdout: out, stderr: err, ...(line ? { result: JSON.parse(line.slice(7)) as SoakResult } : {}) });
    });
  });
}

describe("soak", () => {
  it(`${DEVICES} devices for ${DURATION_S / 60} min with rotating rings and syslog: memory and descriptors flat, rings bounded, every file collected`, { timeout: 900_000 }, async () => {
    const outDir = mkdtempSync(join(tmpdir(), "capsync-soak-test-"));
    try {
      const run = await runSoakBench(outDir);
      const r = run.result;
      expect(r, `bench/soak.mjs printed no RESULT (exit ${run.code}): ${run.stderr.slice(-3000)}\n${run.stdout.slice(-3000)}`).toBeDefined();
      console.log(`[soak] ${run.stdout.split("\n").filter((l) => !l.startsWith("RESULT ")).join("\n[soak] ")}`);
      const res = r!;
      expect(res.devices).toBe(DEVICES);
      expect(res.warmupS).toBe(DURATION_S * WARMUP);

      // Flat after the warm-up: at least 40 samples behind each figure, growth under 10 %.
      for (const [name, f] of Object.entries(res.flat)) {
        expect(f.samples, name).toBeGreaterThanOrEqual(40);
        expect(f.growth, `${name}: ${f.baseline} → ${f.end}`).toBeLessThan(MAX_GROWTH);
      }

      // The rings: capturing the whole time (one tcpdump per device, or a shared one: the agent's
      // choice), the devices' files and bytes never past the bound, and the traffic did exceed the
      // bound (so the rings wrapped rather than never filled).
      expect(res.ring.minTcpdumps).toBeGreaterThanOrEqual(1);
      expect(res.ring.maxTcpdumps).toBeLessThanOrEqual(DEVICES);
      expect(res.ring.boundFiles).toBe(DEVICES * RING_FILES);
      expect(res.ring.maxFiles).toBeLessThanOrEqual(res.ring.boundFiles);
      expect(res.ring.maxMb).toBeLessThanOrEqual(res.ring.boundMb);
      expect(res.traffic.skipped).toBe(0);
      expect((res.traffic.packets * 8000) / DEVICES / 1e6).toBeGreaterThan(RING_FILES * RING_MB);

      // The stop: every device by its alarm, every file collected, listed once and on disk.
      const c = res.collect;
      expect(c.exitCode, `not collected, e.g. ${JSON.stringify(c.notCollected)}`).toBe(0);
      expect(c.devices).toBe(DEVICES);
      expect(c.collected).toBe(DEVICES);
      expect(c.byAlarm).toBe(DEVICES);
      expect(c.deviceFiles).toBe(DEVICES);
      // A wrapped ring hands over exactly its RING_FILES files.
      expect(c.agentFilesPerDevice).toEqual({ min: RING_FILES, max: RING_FILES });
      expect(c.agentFiles).toBe(DEVICES * RING_FILES);
      expect(c.manifestFiles).toBe(DEVICES * (1 + RING_FILES));
      expect(c.folderFiles).toBe(DEVICES * (1 + RING_FILES));
      expect(c.missing).toBe(0);
      expect(c.sizeMismatch).toBe(0);
      expect(c.tcpdumpsLeft).toBe(0);

      // The curves were drawn.
      expect(existsSync(res.svg)).toBe(true);
      expect(readFileSync(res.svg, "utf8")).toMatch(/^<svg [^>]*>[\s\S]*<polyline[\s\S]*<\/svg>\n$/);
      expect(run.code).toBe(0);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  });
});
