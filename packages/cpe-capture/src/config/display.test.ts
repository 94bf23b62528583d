import { describe, expect, test } from "vitest";
import { parse } from "yaml";
import { formatForDisplay, normalisedForDisplay } from "./display.js";
import { configFromObject, parseConfigText } from "./loader.js";

const INPUT = `output: runs
agents: { keyFile: agent.key }
stop:
  alarms: [connection-lost, { pattern: "x (?<device>\\\\S+)" }]
  duration: 90m
devices:
  - address: 192.0.2.10
    type: msbr
    interfaces: [eth-wan]
    username: Admin
    password: { env: MSBR1_PASSWORD }
    agents: [198.51.100.5:20001, "[2001:db8::5]:20002"]
  - address: 192.0.2.11
    type: gwsbc
    username: Admin
    password: Sup3rSecret
    allowPlain: true
    tls: { ca: ca.pem }
    duration: 2d
  - address: 192.0.2.12
    name: sbc-3
    type: gwsbc
    username: Admin
    password: { file: /etc/capsync/sbc.pw }
    tls: insecure
`;

describe("normalisedForDisplay", () => {
  const { config } = parseConfigText(INPUT, { file: "/etc/capsync/run.yaml", baseDir: "/etc/capsync" });

  test("exact normalised object; secrets as ***, references as written", () => {
    const device = { interfaces: ["eth-lan"], username: "Admin", restPort: 443, sshPort: 22 };
    expect(normalisedForDisplay(config)).toEqual({
      output: "/etc/capsync/runs",
      concurrency: 64,
      retries: 3,
      verify: true,
      timeouts: { rest: "10s", sftp: "1m", agent: "8s" },
      agents: { keyFile: "/etc/capsync/agent.key", legacy: false, sftpPort: 20022, answerPort: 0 },
      syslog: { listen: "0.0.0.0:20514", tcp: false, sharePortWithAgents: false },
      stop: { alarms: ["connection-lost", { pattern: "x (?<device>\\S+)" }], maxEventsPerDevice: 1, duration: "1h30m", deviceRetry: "30m" },
      devices: [
        {
          ...device,
          address: "192.0.2.10",
          type: "msbr",
          interfaces: ["eth-wan"],
          password: { env: "MSBR1_PASSWORD" },
          tls: "verify",
          agents: ["198.51.100.5:20001", "[2001:db8::5]:20002"],
          duration: "1h30m",
        },
        {
          ...device,
          address: "192.0.2.11",
          type: "gwsbc",
          password: "***",
          tls: { ca: "/etc/capsync/ca.pem" },
          agents: [],
          duration: "2d",
        },
        {
          ...device,
          name: "sbc-3",
          address: "192.0.2.12",
          type: "gwsbc",
          password: { file: "/etc/capsync/sbc.pw" },
          tls: "insecure",
          agents: [],
          duration: "1h30m",
        },
      ],
    });
  });

  test("YAML and JSON text never contain the plain password", () => {
    for (const format of ["yaml", "json"] as const) {
      const text = formatForDisplay(config, format);
      expect(text).not.toContain("Sup3rSecret");
      expect(text).toContain("***");
      expect(format === "json" ? JSON.parse(text) : parse(text)).toEqual(normalisedForDisplay(config));
    }
  });

  test("the display is itself a valid config that loads to the same thing", () => {
    const shown = normalisedForDisplay(config) as unknown as { devices: { password: unknown }[] };
    shown.devices[1]!.password = { env: "SBC_PASSWORD" };
    const again = configFromObject(shown, { baseDir: "/elsewhere" }).config;
    expect(again.devices[1]!.password).toEqual({ kind: "env", env: "SBC_PASSWORD" });
    expect({ ...again, configFile: config.configFile, devices: again.devices.map((d, i) => ({ ...d, password: config.devices[i]!.password })) }).toEqual(config);
  });
});
