// "Connection Lost" usually means the device is unreachable when we want to stop it: the agents'
// side is collected at once, the device side is retried with backoff and shows as pending.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SyslogSender, ovocConnectionLostAlarm } from "@capsync/emulators";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { startLab, type Lab } from "../helpers/lab.js";

let lab: Lab;
beforeAll(async () => {
  lab = await startLab([{ type: "msbr", address: "127.0.0.45", password: "Retry-Pw-1" }]);
});
afterAll(async () => lab?.close());

describe("device unreachable at stop time", () => {
  it("collects the agent side at once and the device side when it comes back", async () => {
    const port = await freeUdpPort();
    const cfg = lab.writeConfig("retry.yaml", port, "stop: { deviceRetry: 40s }");
    writeFileSync(cfg, readFileSync(cfg, "utf8").replace("rest: 3s", "rest: 500ms").replace("retries: 1", "retries: 0"));
    const run = runCli(["run", "--config", cfg, "--json"], lab.env);
    await run.waitFor((l) => l.device === "127.0.0.45" && l.event === "state" && l.status === "capturing");
    lab.devices[0]!.setFault({ rest: { kind: "timeout" } });
    const udp = await SyslogSender.open({ host: "127.0.0.1", port });
    await udp.send(ovocConnectionLostAlarm({ deviceIp: "127.0.0.45" }));
    await run.waitFor((l) => l.device === "127.0.0.45" && l.event === "state" && /^device capture pending/.test(l.detail ?? ""));
    const agentDone = await run.waitFor((l) => l.device === "127.0.0.45" && l.source === "collect" && / files$/.test(l.event ?? ""));
    // Still unreachable: the agent side is already in the folder, the device side pending.
    await new Promise((r) => setTimeout(r, 100));
    const mid = JSON.parse(readFileSync(join(lab.work, "runs", readdirSync(join(lab.work, "runs")).sort().at(-1)!, "manifest.json"), "utf8"));
    expect(mid.devices[0].deviceCapture).toBe("pending");
    expect(mid.devices[0].agents[0].capture).toBe("collected");
    lab.devices[0]!.clearFaults();
    const end = await run.waitFor((l) => l.done === true, 60_000);
    await udp.close();
    expect(await run.exited).toBe(0);
    const manifest = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8"));
    const d = manifest.devices[0];
    expect(d.deviceCapture).toBe("collected");
    expect(d.status).toBe("collected");
    expect(readFileSync(join(end.folder!, d.captureName)).equals((await lab.devices[0]!.capturedFile())!)).toBe(true);
    const collected = run.lines.find((l) => l.device === "127.0.0.45" && l.event === "device file")!;
    expect(Date.parse(agentDone.timestamp!)).toBeLessThan(Date.parse(collected.timestamp!));
    expect(collected.detail).toMatch(/after \d+ attempts$/);
    const pending = readFileSync(join(end.folder!, "journal.jsonl"), "utf8").split("\n").filter((l) => l.includes('"device-pending"'));
    expect(pending.length).toBeGreaterThanOrEqual(1);
  });
});
