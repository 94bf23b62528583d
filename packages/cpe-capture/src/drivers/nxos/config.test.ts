// A capture run's config refuses an NX-OS switch in `devices` with one clear line: the registry's
// `capabilities.capture: false` is what config reads (it names no vendor).
import { ConfigError } from "@capsync/protocol";
import { describe, expect, it } from "vitest";
import { parseConfigText } from "../../config/loader.js";

const config = (device: string) => `agents: { keyFile: /k }
devices:
${device}
`;

function errorLines(input: string): string[] {
  try {
    parseConfigText(input, { file: "run.yaml", baseDir: "/cfg" });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message.split("\n");
  }
  throw new Error("expected the config to be rejected");
}

describe("config: nxos devices take no capture", () => {
  it("with or without interfaces, one line naming the device's type field", () => {
    const want = ["run.yaml:4 devices[0].type: nxos (Cisco Nexus switch (NX-OS)) takes no capture in capsync yet; it is a trace hop (cpe-capture trace), remove it from devices"];
    expect(errorLines(config("  - address: 192.0.2.40\n    type: nxos\n    username: u\n    password: { env: P }"))).toEqual(want);
    expect(errorLines(config("  - address: 192.0.2.40\n    type: nxos\n    interfaces: [Ethernet1/1]\n    username: u\n    password: { env: P }"))).toEqual(want);
  });
  it("a type that captures is accepted as before", () => {
    const { config: c } = parseConfigText(config("  - address: 192.0.2.41\n    type: gwsbc\n    username: u\n    password: { env: P }"), { file: "run.yaml", baseDir: "/cfg" });
    expect(c.devices.map((d) => d.type)).toEqual(["gwsbc"]);
  });
});
