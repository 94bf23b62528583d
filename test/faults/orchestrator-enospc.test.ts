// The orchestrator's run folder runs out of space mid-run (its own small tmpfs, filled to the last
// block by a filler file right before the stop): the journal and manifest.json writes fail, not
// only the device download. The run must say so clearly (which file, "no space"), lose nothing it
// has acknowledged (every state shown in the --json stream is in journal.jsonl once space returns;
// every journal line whole), and finish — stop, collect, manifest "done" — once space is back.
import { afterAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { startAudioCodesDevice, SyslogSender, ovocConnectionLostAlarm, type AudioCodesDevice } from "@capsync/emulators";
import { tempDir } from "../helpers/agent-proc.js";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { until } from "../helpers/durability.js";
import { diskFaultRunYaml } from "../helpers/run-config.js";

const run = promisify(execFile);
const work = tempDir("capsync-orch-enospc-");
const out = join(work, "runs");
/** Enough devices that their stop's journal lines outgrow the page slack of journal.jsonl (tmpfs pages are 4 KiB). */
const ADDRS = Array.from({ length: 8 }, (_, i) => `127.0.3.${i + 1}`);
const ADDR = ADDRS[0]!;
let mounted = false;
let devices: AudioCodesDevice[] = [];

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close()));
  if (mounted) await run("umount", [out]).catch(() => run("umount", ["-l", out]));
  rmSync(work, { recursive: true, force: true });
});

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/** Fill the file system of `dir` to its last byte; the filler is removed to give the space back. */
function fill(dir: string): string {
  const p = join(dir, "filler.bin");
  const fd = openSync(p, "w");
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  try {
    for (let i = 0; i < 100_000; i++) writeSync(fd, chunk);
    throw new Error("the tmpfs did not fill up");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
    // The last few bytes too, so that even a short line cannot be written.
    for (let n = 4096; n >= 1; n = Math.floor(n / 2)) {
      try {
        for (let i = 0; i < 64; i++) writeSync(fd, chunk, 0, n);
      } catch {
        /* full at this size: try smaller */
      }
    }
  } finally {
    closeSync(fd);
  }
  return p;
}

describe("orchestrator: run folder out of space (journal, manifest, device file)", () => {
  it("says which write failed and why, loses no acknowledged state, and finishes once space returns", async () => {
    mkdirSync(out, { recursive: true });
    await run("mount", ["-t", "tmpfs", "-o", "size=2m,mode=0755", "csft-orch-enospc", out]);
    mounted = true;
    devices = await Promise.all(ADDRS.map((address) => startAudioCodesDevice({ type: "msbr", address, username: "Admin", password: "Enospc-Pw-1", capture: { kind: "synthetic", packetsPerSecond: 200 } })));
    const device = devices[0]!;
    const port = await freeUdpPort();
    const cfg = join(work, "enospc.yaml");
    writeFileSync(cfg, diskFaultRunYaml({ output: out, syslogPort: port, passwordEnv: "ENOSPC_PW", devices }));
    const cli = runCli(["run", "--config", cfg, "--json"], { ENOSPC_PW: "Enospc-Pw-1" });
    try {
      for (const a of ADDRS) await cli.waitFor((l) => l.device === a && l.event === "state" && l.status === "capturing");
      const folder = join(out, readdirSync(out).find((f) => f.startsWith("run-"))!);
      const filler = fill(out);
      const shownBefore = cli.lines.length;
      const udp = await SyslogSender.open({ host: "127.0.0.1", port });
      for (const a of ADDRS) await udp.send(ovocConnectionLostAlarm({ deviceIp: a }));
      await udp.close();
      // The stop goes on without disk: the device is stopped, its download waits for space.
      const pending = await cli.waitFor((l) => l.device === ADDR && l.event === "state" && /^device capture pending/.test(l.detail ?? ""), 20_000);
      await cli.waitFor((l) => l.device === ADDRS.at(-1) && l.event === "state" && /^device capture pending/.test(l.detail ?? ""), 20_000);
      expect(devices.map((x) => x.state().capturing)).toEqual(ADDRS.map(() => false));
      expect(pending.detail).toMatch(/no space/i);
      // Clear errors on stderr naming the journal and the manifest (the manifest's write is held
      // while the alarms' queued work runs, at most a second at a time: wait for it, bounded).
      const errAtFull = await until("stderr to name the manifest write that failed", () => /cannot write manifest\.json/.test(cli.stderr()) && cli.stderr(), 10_000);
      console.log(`[orchestrator-enospc] stderr while full:\n${errAtFull}`);
      expect(errAtFull).toMatch(/cannot write manifest\.json: ENOSPC: no space left on device/);
      expect.soft(errAtFull, "stderr names the journal write that failed").toMatch(/journal\.jsonl.*(ENOSPC|no space)|(ENOSPC|no space).*journal\.jsonl/i);
      const stderrBefore = errAtFull.length;

      rmSync(filler);
      const end = await cli.waitFor((l) => l.done === true, 40_000);
      const code = await cli.exited;
      expect(code, cli.stderr()).toBe(0);
      expect(cli.stderr().slice(stderrBefore)).toMatch(/manifest\.json written again/);
      const m = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8"));
      expect(m.status).toBe("done");
      for (const [i, d] of (m.devices as { device: string; deviceCapture: string; stopReason: string; captureName: string }[]).entries()) {
        expect(d.device).toBe(ADDRS[i]);
        expect(d.deviceCapture).toBe("collected");
        expect(d.stopReason).toBe("alarm");
        expect(sha256(readFileSync(join(folder, d.captureName)))).toBe(sha256((await devices[i]!.capturedFile())!));
      }
      // Every journal line is whole, and every state shown after the disk filled is in it, in order.
      const raw = readFileSync(join(folder, "journal.jsonl"), "utf8");
      expect(raw.endsWith("\n")).toBe(true);
      const journal = raw.trimEnd().split("\n").map((l) => JSON.parse(l) as { kind: string; device?: string; state?: string });
      for (const a of ADDRS) {
        const shown = cli.lines.slice(shownBefore).filter((l) => l.device === a && l.source === "run" && l.event === "state").map((l) => l.status);
        const journaled = journal.filter((l) => l.kind === "device-state" && l.device === a).map((l) => l.state);
        expect(shown.length).toBeGreaterThan(0);
        expect.soft(journaled.slice(-shown.length), `${a}: every state shown after the disk filled is journaled`).toEqual(shown);
        expect.soft(journal.filter((l) => l.kind === "stop-requested" && l.device === a), `${a}: stop-requested journaled`).toHaveLength(1);
        expect(journal.filter((l) => l.kind === "device-collected" && l.device === a)).toHaveLength(1);
      }
      expect(journal.at(-1)!.kind).toBe("run-end");
      expect(readdirSync(folder).filter((f) => f.endsWith(".part") || f.endsWith(".tmp"))).toEqual([]);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill("SIGKILL");
    }
  });
});
