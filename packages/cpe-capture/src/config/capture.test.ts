// The `capture:` sections as a user writes them: polycube's direction words and prefixes with host
// bits are accepted, kept normalised on the run config (what drivers and agents get), and shown
// by `validate` as notes; the legacy agent protocol refuses a direction it cannot carry.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, test } from "vitest";
import { validateCommand } from "../commands/validate.js";
import { agentWireSpec } from "../spec/index.js";
import { captureNotes } from "./capture.js";
import { ConfigFileError, configFromObject, parseConfigText } from "./loader.js";

const CONFIG = `capture:
  direction: ingress
agents: { keyFile: /k }
devices:
  - address: 192.0.2.30
    type: iosxe
    interfaces: [GigabitEthernet1]
    username: u
    password: { env: P }
    capture: { filter: { src: 10.10.10.10/24, dst: "2001:db8::1/64" } }
  - address: 192.0.2.31
    type: iosxe
    interfaces: [GigabitEthernet2]
    username: u
    password: { env: P }
    capture: { direction: egress, filter: { dst: 192.0.2.77/28, protocol: udp } }
    agents: [198.51.100.5:20001]
`.replace('"2001:db8::1/64"', "10.20.30.40/16");

describe("aliases and host bits in a config", () => {
  test("the run config holds the canonical words and networks", () => {
    const { config, notes } = parseConfigText(CONFIG, { file: "/etc/run.yaml", baseDir: "/etc" });
    expect(config.devices.map((d) => d.spec)).toEqual([
      { interfaces: ["GigabitEthernet1"], direction: "in", filter: { src: "10.10.10.0/24", dst: "10.20.0.0/16" } },
      { interfaces: ["GigabitEthernet2"], direction: "out", filter: { dst: "192.0.2.64/28", protocol: "udp" } },
    ]);
    expect(notes).toEqual([
      "/etc/run.yaml:2 capture.direction: ingress → in",
      "/etc/run.yaml:10 devices[0].capture.filter.src: 10.10.10.10/24 → 10.10.10.0/24",
      "/etc/run.yaml:10 devices[0].capture.filter.dst: 10.20.30.40/16 → 10.20.0.0/16",
      "/etc/run.yaml:16 devices[1].capture.direction: egress → out",
      "/etc/run.yaml:16 devices[1].capture.filter.dst: 192.0.2.77/28 → 192.0.2.64/28",
    ]);
    // What the agents of the second device are sent: the canonical JSON every CSYNC/1 agent reads.
    expect(Buffer.from(agentWireSpec(config.devices[1]!.spec)!, "base64url").toString()).toBe('{"direction":"out","filter":{"dst":"192.0.2.64/28","protocol":"udp"}}');
  });

  test("IPv6 prefixes, the flow filter, and configs built in code", () => {
    const raw = {
      capture: { filter: { src: "2001:DB8:0:1::5/64" } },
      flow: { filter: { src: "10.1.0.10", dst: "10.3.0.7/24", protocol: "udp" } },
      devices: [{ capture: { direction: "bidirectional" } }, "junk", { capture: { direction: "sideways", filter: { src: "10.0.0.1/8" } } }],
    };
    expect(captureNotes(raw)).toEqual([
      { path: ["capture", "filter", "src"], message: "2001:DB8:0:1::5/64 → 2001:db8:0:1::/64" },
      { path: ["devices", 0, "capture", "direction"], message: "bidirectional → both" },
      // A bad direction (reported by the checks) does not hide the filter's note.
      { path: ["devices", 2, "capture", "filter", "src"], message: "10.0.0.1/8 → 10.0.0.0/8" },
      { path: ["flow", "filter", "dst"], message: "10.3.0.7/24 → 10.3.0.0/24" },
    ]);
    expect(captureNotes([])).toEqual([]);
    const loaded = configFromObject(
      { devices: [{ address: "192.0.2.40", type: "iosxe", interfaces: ["Gi1"], username: "u", password: { env: "P" }, capture: { direction: "egress" } }] },
      { baseDir: "/" },
    );
    expect(loaded.notes).toEqual(["devices[0].capture.direction: egress → out"]);
    expect(loaded.config.devices[0]!.spec.direction).toBe("out");
  });

  test("a bad direction names the field and the accepted words", () => {
    const bad = CONFIG.replace("direction: egress", "direction: off");
    expect(() => parseConfigText(bad, { file: "run.yaml", baseDir: "/etc" })).toThrow(ConfigFileError);
    expect(() => parseConfigText(bad, { file: "run.yaml", baseDir: "/etc" })).toThrow(
      'run.yaml:16 devices[1].capture.direction: iosxe 192.0.2.31: direction: must be in, out or both (or ingress, egress, bidirectional), got "off"',
    );
  });

  test("legacy agents: one direction cannot travel, both (plain CAPTURE) can", () => {
    const legacy = CONFIG.replace("agents: { keyFile: /k }", "agents: { legacy: true }").replace("capture: { direction: egress, filter: { dst: 192.0.2.77/28, protocol: udp } }", "capture: { direction: egress }");
    expect(() => parseConfigText(legacy, { file: "run.yaml", baseDir: "/etc" })).toThrow(
      "run.yaml:16 devices[1].capture: the legacy agent protocol cannot carry a capture filter, direction or limits (only 'host <device>'); remove them or use CSYNC/1 agents",
    );
    const both = legacy.replace("capture: { direction: egress }", "capture: { direction: bidirectional }").replace("capture:\n  direction: ingress\n", "");
    expect(parseConfigText(both, { file: "run.yaml", baseDir: "/etc" }).config.devices[1]!.spec).toEqual({ interfaces: ["GigabitEthernet2"], direction: "both" });
  });
});

describe("cpe-capture validate shows the normalisation", () => {
  const sink = () => {
    let text = "";
    const stream = new Writable({ write: (c, _e, cb) => ((text += String(c)), cb()) });
    return { stream, text: () => text };
  };
  test("notes on stderr after the warnings, the config unchanged on stdout, exit 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capsync-validate-"));
    const file = join(dir, "run.yaml");
    writeFileSync(file, CONFIG);
    for (const json of [false, true]) {
      const out = sink();
      const err = sink();
      expect(await validateCommand({ config: file, json }, { stdout: out.stream, stderr: err.stream })).toBe(0);
      expect(err.text()).toBe(
        [
          `note: ${file}:2 capture.direction: ingress → in`,
          `note: ${file}:10 devices[0].capture.filter.src: 10.10.10.10/24 → 10.10.10.0/24`,
          `note: ${file}:10 devices[0].capture.filter.dst: 10.20.30.40/16 → 10.20.0.0/16`,
          `note: ${file}:16 devices[1].capture.direction: egress → out`,
          `note: ${file}:16 devices[1].capture.filter.dst: 192.0.2.77/28 → 192.0.2.64/28`,
          `${file}: valid (2 device(s))`,
          "",
        ].join("\n"),
      );
      if (json) expect(JSON.parse(out.text()).devices).toHaveLength(2);
      else expect(out.text()).toMatch(/^output: /);
    }
  });
});
