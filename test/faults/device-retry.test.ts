// "Connection Lost" usually means the device is unreachable when we want to stop it: the agents'
// side is collected at once, the device side is retried with backoff and shows as pending.
// The outage is real: the device runs in its own network namespace and its link goes down at
// stop time (the kernel drops everything), then comes back up.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SyslogSender, ovocConnectionLostAlarm } from "@capsync/emulators";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { startLab, type Lab } from "../helpers/lab.js";
import { createTestHost, linkExists, nsExists, type TestHost } from "../helpers/netns.js";
import { setLink, startNsAudioCodes, type NsDevice } from "../helpers/ns-device.js";
import { msbrDevicesYaml } from "../helpers/run-config.js";

const PW = "Retry-Pw-1";
let lab: Lab;
let host: TestHost;
let dev: NsDevice;
beforeAll(async () => {
  host = createTestHost("rty", "203.0.113.221", "203.0.113.222", 30);
  [lab, dev] = await Promise.all([startLab([]), startNsAudioCodes(host.ns, { type: "msbr", address: host.nsAddr, password: PW })]);
});
afterAll(async () => {
  await dev?.stop();
  await lab?.close();
  host?.remove();
  expect(nsExists(host.ns)).toBe(false);
  expect(linkExists(host.hostIf)).toBe(false);
});

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

function writeConfig(port: number): string {
  const cfg = join(lab.work, "retry.yaml");
  writeFileSync(
    cfg,
    `output: ./runs
timeouts: { rest: 500ms, sftp: 10s, agent: 4s }
retries: 0
verify: false
stop: { deviceRetry: 40s }
agents: { keyFile: ./agent.key, sshKeyFile: ./id_ed25519, sftpPort: ${lab.sftpPort} }
syslog: { listen: 127.0.0.1:${port} }
${msbrDevicesYaml([dev], { passwordEnv: "RETRY_PW", agents: [`127.0.0.1:${lab.agent.port}`] })}`,
  );
  return cfg;
}

describe("device unreachable at stop time", () => {
  it("link down at stop: collects the agent side at once and the device side when the link is back up", async () => {
    const D = dev.address;
    const port = await freeUdpPort();
    const run = runCli(["run", "--config", writeConfig(port), "--json"], { RETRY_PW: PW });
    let linkDown = false;
    try {
      await run.waitFor((l) => l.device === D && l.event === "state" && l.status === "capturing");
      setLink(host.hostIf, "down");
      linkDown = true;
      const udp = await SyslogSender.open({ host: "127.0.0.1", port });
      await udp.send(ovocConnectionLostAlarm({ deviceIp: D }));
      await udp.close();
      const pending = await run.waitFor((l) => l.device === D && l.event === "state" && /^device capture pending/.test(l.detail ?? ""));
      const agentDone = await run.waitFor((l) => l.device === D && l.source === "collect" && / files$/.test(l.event ?? ""));
      // The failure is the network's (silence: the kernel drops what goes to the down link), not an answer from the device.
      expect(pending.detail).toMatch(new RegExp(`^device capture pending \\(attempt 1 failed: [A-Z]+ /api/\\S+ to ${D.replace(/\./g, "\\.")}:${dev.restPort}: no answer within 500 ms\\); retrying in 1 s until `));
      // Still unreachable: the agent side is already in the folder, the device side pending.
      const folder = join(lab.work, "runs", readdirSync(join(lab.work, "runs")).sort().at(-1)!);
      const mid = await until(() => {
        try {
          const m = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
          return m.devices[0].deviceCapture === "pending" && m.devices[0].agents[0].capture === "collected" ? m : undefined;
        } catch {
          return undefined;
        }
      }, 5000);
      expect(mid, "manifest: device capture pending, agent side collected").toBeDefined();
      expect(readdirSync(folder).filter((f) => f.startsWith(`CPE_device_${D}_`))).toEqual([]);
      // A retry failed too while the link was down (attempts 1 and 2 journaled), then it comes back.
      const journalPending = () => readFileSync(join(folder, "journal.jsonl"), "utf8").split("\n").filter((l) => l.includes('"device-pending"')).length;
      expect(await until(() => (journalPending() >= 2 ? true : undefined), 10_000), "a second failed attempt while the link is down").toBe(true);
      setLink(host.hostIf, "up");
      linkDown = false;
      const upAt = Date.now();
      const end = await run.waitFor((l) => l.done === true, 60_000);
      expect(await run.exited).toBe(0);
      const manifest = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8"));
      const d = manifest.devices[0];
      expect(d.deviceCapture).toBe("collected");
      expect(d.status).toBe("collected");
      // Byte for byte the file the device serves (SHA-256 of its capture file).
      const served = readFileSync(dev.capturePath);
      expect(served.length).toBeGreaterThan(24);
      expect(sha256(readFileSync(join(end.folder!, d.captureName)))).toBe(sha256(served));
      const collected = run.lines.find((l) => l.device === D && l.event === "device file")!;
      expect(Date.parse(agentDone.timestamp!)).toBeLessThan(Date.parse(collected.timestamp!));
      expect(Date.parse(collected.timestamp!)).toBeGreaterThanOrEqual(upAt - 5);
      expect(collected.detail).toMatch(/after \d+ attempts$/);
      expect(Number(/after (\d+) attempts$/.exec(collected.detail!)![1])).toBeGreaterThanOrEqual(3);
      console.log(`[device-retry] link down at stop: "${pending.detail}"; ${journalPending()} device-pending journal line(s); link up → collected ${Date.parse(collected.timestamp!) - upAt} ms later (${collected.detail}), ${served.length} B, SHA-256 equal`);
    } finally {
      if (linkDown) setLink(host.hostIf, "up");
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
    }
  });
});

async function until<T>(f: () => T | undefined, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}
