// Device TLS: certificates are verified by default. Two emulated AudioCodes devices with self-signed
// certificates in one run: the one with the default `tls` fails with a certificate error (and is
// never sent a password-bearing request that succeeds), the one with `tls: insecure` is captured,
// and the run log and stderr warn about exactly that device.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SyslogSender, ovocConnectionLostAlarm } from "@capsync/emulators";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { startLab, type Lab } from "../helpers/lab.js";

const VERIFIED = "127.0.0.56";
const INSECURE = "127.0.0.57";

describe("device certificates", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab([
      { type: "msbr", address: VERIFIED, password: "Tls-Verify-Pw-1" },
      { type: "gwsbc", address: INSECURE, password: "Tls-Insecure-Pw-2" },
    ]);
  });
  afterAll(async () => lab?.close());

  it("default tls refuses a self-signed device with a certificate error; tls: insecure works and is warned about, per device", async () => {
    const port = await freeUdpPort();
    const cfg = lab.writeConfig("tls.yaml", port, "stop: { duration: 30s }");
    // The lab writes `tls: insecure` for every device; the first one gets the default instead.
    const text = readFileSync(cfg, "utf8");
    const at = text.indexOf("    tls: insecure\n");
    const edited = text.slice(0, at) + text.slice(at + "    tls: insecure\n".length);
    expect(edited.match(/tls: insecure/g)).toHaveLength(1);
    writeFileSync(cfg, edited);

    const run = runCli(["run", "--config", cfg, "--json"], lab.env);
    await run.waitFor((l) => l.device === INSECURE && l.source === "run" && l.event === "state" && l.status === "capturing");
    const failed = await run.waitFor((l) => l.device === VERIFIED && l.source === "run" && l.event === "state" && (l.status === "failed" || l.status === "partial"));
    const udp = await SyslogSender.open({ host: "127.0.0.1", port });
    await udp.send(ovocConnectionLostAlarm({ deviceIp: INSECURE, format: "rfc3164" }));
    const end = await run.waitFor((l) => l.done === true, 60_000);
    await udp.close();
    expect(await run.exited).toBe(1);

    const manifest = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8")) as { devices: { device: string; status: string; description?: string }[] };
    const byDevice = Object.fromEntries(manifest.devices.map((d) => [d.device, d]));
    console.log(`tls: ${VERIFIED} (default) → ${byDevice[VERIFIED]!.status}: ${byDevice[VERIFIED]!.description ?? failed.detail}; ${INSECURE} (insecure) → ${byDevice[INSECURE]!.status}`);
    // The device side failed (the agent side of that device was still captured: "partial").
    expect(byDevice[VERIFIED]!.status).not.toBe("collected");
    expect(`${byDevice[VERIFIED]!.description ?? ""} ${failed.detail ?? ""}`).toMatch(/TLS certificate not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
    expect(byDevice[INSECURE]!.status).toBe("collected");
    // The handshake failed before any request: the device never saw one (so never the password).
    expect(lab.devices[0]!.state().requests).toBe(0);
    expect(lab.devices[0]!.state().capturing).toBe(false);
    expect(lab.devices[1]!.state().requests).toBeGreaterThan(0);

    const log = readFileSync(join(end.folder!, "capsync.log"), "utf8");
    const warnings = log.split("\n").filter((l) => /WARN/.test(l) && /TLS certificate not verified/.test(l));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(INSECURE);
    expect(run.stderr()).toMatch(new RegExp(`warning: ${INSECURE.replace(/\./g, "\\.")}: TLS certificate not verified \\(tls: insecure\\)`));
    expect(run.stderr()).not.toMatch(new RegExp(`warning: ${VERIFIED.replace(/\./g, "\\.")}`));
  });
});
