import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "@capsync/protocol";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { stringify } from "yaml";
import { configFromObject, ConfigFileError, loadConfig, parseConfigText } from "./loader.js";
import type { RunConfig } from "./run-config.js";

const EXAMPLE = fileURLToPath(new URL("../../../../examples/run.yaml", import.meta.url));

function errorLines(input: string, file = "run.yaml"): string[] {
  try {
    parseConfigText(input, { file, baseDir: "/cfg" });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigFileError);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).code).toBe("config");
    return (e as Error).message.split("\n");
  }
  throw new Error("expected the config to be rejected");
}

// Golden table: each case is a whole file (line numbers in `expected` refer to it) and every line of the error.
interface GoldenCase {
  name: string;
  file?: string;
  input: string;
  expected: string[];
}

const DEVICE = `devices:
  - address: 192.0.2.10
    type: msbr
    interfaces: [eth-wan]
    username: Admin
    password: { env: MSBR1_PASSWORD }
`;

const golden: GoldenCase[] = [
  {
    name: "device type typo (the issue's example)",
    input: `output: ./runs
devices:
  - address: 192.0.2.10
    type: msbr
    interfaces: [eth-wan]
    username: Admin
    password: { env: MSBR1_PASSWORD }
  - address: 192.0.2.11
    type: gwsbc
    username: Admin
    password: { env: SBC1_PASSWORD }
  - address: 192.0.2.12
    username: Admin
    type: msb
    password: { env: MSBR2_PASSWORD }
`,
    expected: [
      "run.yaml:14 devices[2].type: expected msbr|gwsbc|iosxe|nxos, got 'msb'",
    ],
  },
  {
    name: "unknown keys, with and without a suggestion",
    input: `ouptut: ./runs
agents:
  key_file: /etc/capsync/agent.key
  colour: blue
${DEVICE}    pasword: x
`,
    expected: [
      "run.yaml:1 ouptut: unknown key 'ouptut' (did you mean 'output'?)",
      "run.yaml:3 agents.key_file: unknown key 'key_file' (did you mean 'keyFile'?)",
      "run.yaml:4 agents.colour: unknown key 'colour'",
      "run.yaml:11 devices[0].pasword: unknown key 'pasword' (did you mean 'password'?)",
    ],
  },
  {
    name: "duplicate addresses name both lines, IPv6 spellings included",
    input: `devices:
  - address: 192.0.2.10
    type: gwsbc
    username: Admin
    password: { env: A }
  - address: "2001:db8::10"
    type: gwsbc
    username: Admin
    password: { env: B }
  - address: 192.0.2.10
    type: gwsbc
    username: Admin
    password: { env: C }
  - address: "[2001:DB8:0::10]"
    type: gwsbc
    username: Admin
    password: { env: D }
  - address: Rtr1.Example.NET.
    type: iosxe
    interfaces: [GigabitEthernet1]
    username: Admin
    password: { env: E }
  - address: rtr1.example.net
    type: iosxe
    interfaces: [GigabitEthernet1]
    username: Admin
    password: { env: F }
`,
    expected: [
      "run.yaml:10 devices[2].address: duplicate address '192.0.2.10', also used by devices[0] (line 2)",
      "run.yaml:14 devices[3].address: duplicate address '[2001:DB8:0::10]', also used by devices[1] (line 6)",
      "run.yaml:23 devices[5].address: duplicate address 'rtr1.example.net', also used by devices[4] (line 18)",
    ],
  },
  {
    name: "plain-text password refused without echoing it",
    input: `devices:
  - address: 192.0.2.10
    type: gwsbc
    username: Admin
    password: Sup3rSecret!
  - address: 192.0.2.11
    type: gwsbc
    username: Admin
    password: { hunter22: }
  - address: 192.0.2.12
    type: gwsbc
    username: Admin
    password: 123456
  - address: 192.0.2.13
    type: gwsbc
    username: Admin
    password: { env: A, file: ./b }
  - address: 192.0.2.14
    type: gwsbc
    username: Admin
    password: { evn: A }
  - address: 192.0.2.15
    type: gwsbc
    username: Admin
    password: { env: 1BAD }
  - address: 192.0.2.16
    type: gwsbc
    username: Admin
    password: ""
`,
    expected: [
      "run.yaml:5 devices[0].password: plain-text password refused; use { env: NAME } or { file: PATH } (or set allowPlain: true)",
      "run.yaml:9 devices[1].password: expected { env: NAME } or { file: PATH } (a plain string only with allowPlain: true); found another key",
      "run.yaml:13 devices[2].password: expected { env: NAME } or { file: PATH } (a plain string only with allowPlain: true), got a number",
      "run.yaml:17 devices[3].password: use either env or file, not both",
      "run.yaml:21 devices[4].password: expected { env: NAME } or { file: PATH } (a plain string only with allowPlain: true); found another key (did you mean 'env'?)",
      "run.yaml:25 devices[5].password.env: expected an environment variable name like MSBR1_PASSWORD, got '1BAD'",
      "run.yaml:29 devices[6].password: must not be empty",
    ],
  },
  {
    name: "interfaces checked against the device type",
    input: `devices:
  - address: 192.0.2.10
    type: msbr
    username: Admin
    password: { env: A }
  - address: 192.0.2.11
    type: msbr
    interfaces: [eth-wan, cellular-wan, eth-wan, wan0, 5]
    username: Admin
    password: { env: A }
  - address: 192.0.2.12
    type: gwsbc
    interfaces: [eth-wan]
    username: Admin
    password: { env: A }
  - address: 192.0.2.13
    type: iosxe
    interfaces: ["Gig 1"]
    username: Admin
    password: { env: A }
  - address: 192.0.2.14
    type: iosxe
    username: Admin
    password: { env: A }
  - address: 192.0.2.15
    type: msbr
    interfaces: []
    username: Admin
    password: { env: A }
`,
    expected: [
      "run.yaml:2 devices[0].interfaces: required for msbr: one or more of cellular-wan, fiber-wan, xdsl-wan, shdsl-wan, t1-e1-wan, eth-wan, eth-lan",
      "run.yaml:8 devices[1].interfaces[2]: duplicate interface 'eth-wan'",
      "run.yaml:8 devices[1].interfaces[3]: expected cellular-wan|fiber-wan|xdsl-wan|shdsl-wan|t1-e1-wan|eth-wan|eth-lan, got 'wan0'",
      "run.yaml:8 devices[1].interfaces[4]: expected a string, got 5",
      "run.yaml:13 devices[2].interfaces[0]: expected eth-lan (the only capture interface of a gateway/SBC), got 'eth-wan'",
      "run.yaml:18 devices[3].interfaces[0]: expected an IOS-XE interface name like GigabitEthernet1, got 'Gig 1'",
      "run.yaml:21 devices[4].interfaces: required for iosxe: one or more interface names, e.g. GigabitEthernet1",
      "run.yaml:27 devices[5].interfaces: expected at least one interface",
    ],
  },
  {
    name: "addresses",
    input: `devices:
  - address: 192.0.2.300
    type: gwsbc
    username: Admin
    password: { env: A }
  - address: bad_host.example
    type: gwsbc
    username: Admin
    password: { env: A }
  - address: 10
    type: gwsbc
    username: Admin
    password: { env: A }
  - type: gwsbc
    username: Admin
    password: { env: A }
`,
    expected: [
      "run.yaml:2 devices[0].address: expected an IPv4/IPv6 address or a host name, got '192.0.2.300'",
      "run.yaml:6 devices[1].address: expected an IPv4/IPv6 address or a host name, got 'bad_host.example'",
      "run.yaml:10 devices[2].address: expected an IPv4/IPv6 address or a host name, got 10",
      "run.yaml:14 devices[3].address: required",
    ],
  },
  {
    name: "agent endpoints",
    input: `agents:
  keyFile: ./agent.key
devices:
  - address: 192.0.2.10
    type: gwsbc
    username: Admin
    password: { env: A }
    agents:
      - 2001:db8::5
      - 198.51.100.5:0
      - 198.51.100.5:70000
      - agent.example:20001
      - 198.51.100.5
      - 198.51.100.5:20001
      - "[2001:db8::5]:20001"
      - { host: 198.51.100.6, prot: 1 }
      - 7
`,
    expected: [
      "run.yaml:9 devices[0].agents[0]: write IPv6 endpoints as [addr]:port, got '2001:db8::5'",
      "run.yaml:10 devices[0].agents[1]: port must be 1..65535, got 0",
      "run.yaml:11 devices[0].agents[2]: port must be 1..65535, got 70000",
      "run.yaml:12 devices[0].agents[3]: expected IP:port (IPv6 as [addr]:port), got 'agent.example:20001'",
      "run.yaml:14 devices[0].agents[5]: duplicate agent 198.51.100.5:20001, also at agents[4]",
      "run.yaml:16 devices[0].agents[7].prot: unknown key 'prot' (did you mean 'port'?)",
      "run.yaml:17 devices[0].agents[8]: expected IP:port (IPv6 as [addr]:port), got 7",
    ],
  },
  {
    name: "agents need the v1 key unless legacy; legacy is IPv4 only",
    input: `devices:
  - address: 192.0.2.10
    type: gwsbc
    username: Admin
    password: { env: A }
    agents: [198.51.100.5:20001]
`,
    expected: [
      "run.yaml:6 devices[0].agents: needs agents.keyFile (v1 signs every request with that pre-shared key), or agents.legacy: true",
    ],
  },
  {
    name: "keyFile missing inside an agents section",
    input: `agents:
  sftpPort: 20022
devices:
  - address: 192.0.2.10
    type: gwsbc
    username: Admin
    password: { env: A }
    agents: [198.51.100.5:20001]
`,
    expected: [
      "run.yaml:1 agents.keyFile: required when devices list agents (v1 signs every request with this key), or set agents.legacy: true",
    ],
  },
  {
    name: "legacy protocol is IPv4 only",
    input: `agents:
  legacy: true
devices:
  - address: 192.0.2.10
    type: gwsbc
    username: Admin
    password: { env: A }
    agents: ["[2001:db8::5]:20001", 198.51.100.5:20001]
`,
    expected: [
      "run.yaml:8 devices[0].agents[0]: the legacy protocol (agents.legacy: true) is IPv4 only",
    ],
  },
  {
    name: "durations",
    input: `stop:
  duration: 15x
timeouts:
  rest: 0
  sftp: -5
  agent: 1m1h
  pull: 10s
${DEVICE}    duration: 400d
`,
    expected: [
      "run.yaml:2 stop.duration: expected a duration like 90s, 15m, 24h, 1d or a number of seconds, got '15x'",
      "run.yaml:4 timeouts.rest: must be longer than 0, got 0",
      "run.yaml:5 timeouts.sftp: must be longer than 0, got -5",
      "run.yaml:6 timeouts.agent: expected a duration like 90s, 15m, 24h, 1d or a number of seconds, got '1m1h'",
      "run.yaml:7 timeouts.pull: unknown key 'pull'",
      "run.yaml:14 devices[0].duration: must be at most 366d, got '400d'",
    ],
  },
  {
    name: "stop alarms",
    input: `stop:
  alarms:
    - conection-lost
    - pattern: "Link down (?<dev>\\\\S+)"
    - pattern: "(unclosed"
    - { pattern: "(?<device>\\\\S+)", flags: g }
    - { flags: i }
    - { pattern: "(?<device>x)", name: mine }
  maxEventsPerDevice: 0
${DEVICE}`,
    expected: [
      "run.yaml:3 stop.alarms[0]: expected connection-lost|iosxe-link-down|iosxe-lineproto-down or { pattern: REGEX }, got 'conection-lost'",
      "run.yaml:4 stop.alarms[1].pattern: needs a named group (?<device>...) that captures the device address",
      "run.yaml:5 stop.alarms[2].pattern: invalid regular expression: Unterminated group",
      "run.yaml:6 stop.alarms[3].flags: expected some of the flags i, m, s, u, got 'g'",
      "run.yaml:7 stop.alarms[4].pattern: required",
      "run.yaml:8 stop.alarms[5].name: unknown key 'name'",
      "run.yaml:9 stop.maxEventsPerDevice: expected an integer 1..1000000, got 0",
    ],
  },
  {
    name: "shared syslog/agent port must agree",
    input: `agents:
  legacy: true
  answerPort: 20001
syslog:
  listen: 0.0.0.0:20514
  sharePortWithAgents: true
${DEVICE}`,
    expected: [
      "run.yaml:3 agents.answerPort: must be the syslog port 20514 when syslog.sharePortWithAgents is true (or leave it out)",
    ],
  },
  {
    name: "answer port colliding with the syslog port",
    input: `agents:
  answerPort: 20514
syslog:
  listen: "[::]:20514"
  tcp: yes
${DEVICE}`,
    expected: [
      "run.yaml:2 agents.answerPort: is the syslog port too; set syslog.sharePortWithAgents: true to share it",
      "run.yaml:5 syslog.tcp: expected true or false, got 'yes'",
    ],
  },
  {
    name: "numbers and booleans",
    input: `concurrency: 0
retries: 1.5
verify: "true"
devices:
  - address: 192.0.2.10
    type: gwsbc
    username: Admin
    password: { env: A }
    restPort: "443"
    sshPort: 65536
    tls: none
  - address: 192.0.2.11
    type: gwsbc
    username: ""
    password: { env: A }
    tls: { cert: ./x.pem }
    name: "my device"
`,
    expected: [
      "run.yaml:1 concurrency: expected an integer 1..4096, got 0",
      "run.yaml:2 retries: expected an integer 0..100, got 1.5",
      "run.yaml:3 verify: expected true, false or a mapping { enabled, icmp, snmpv3 }, got 'true'",
      "run.yaml:9 devices[0].restPort: expected a port 1..65535, got '443'",
      "run.yaml:10 devices[0].sshPort: expected a port 1..65535, got 65536",
      "run.yaml:11 devices[0].tls: expected verify|insecure or { ca: PATH }, got 'none'",
      "run.yaml:14 devices[1].username: must not be empty",
      "run.yaml:16 devices[1].tls.ca: required",
      "run.yaml:16 devices[1].tls.cert: unknown key 'cert'",
      "run.yaml:17 devices[1].name: expected a name of letters, digits, '.', '_' or '-' (at most 64), got 'my device'",
    ],
  },
  {
    name: "keys with control characters stay on one line",
    file: "run.json",
    input: `{ "devices": [], "a\\nb": 1 }`,
    expected: [
      "run.json:1 devices: at least one device is required",
      "run.json:1 [\"a\\nb\"]: unknown key 'a\\u000ab'",
    ],
  },
  {
    name: "no devices",
    input: `output: ./runs
devices: []
`,
    expected: [
      "run.yaml:2 devices: at least one device is required",
    ],
  },
  {
    name: "devices missing",
    input: `output: ./runs
`,
    expected: [
      "run.yaml:1 devices: required",
    ],
  },
  {
    name: "top level is a list",
    input: `- address: 192.0.2.10
`,
    expected: [
      "run.yaml:1 (top level): expected a mapping of settings (output, agents, syslog, stop, devices), got a list",
    ],
  },
  {
    name: "empty file",
    input: ``,
    expected: [
      "run.yaml:1 (top level): expected a mapping of settings (output, agents, syslog, stop, devices), got an empty value",
    ],
  },
  {
    name: "YAML syntax errors carry line:col",
    input: `devices:
  - address: 192.0.2.10
   type: msbr
    username: [Admin
`,
    expected: [
      "run.yaml:3:1 YAML: Sequence item without - indicator",
      "run.yaml:3:10 YAML: Nested mappings are not allowed in compact mappings",
      "run.yaml:3:10 YAML: Implicit keys need to be on a single line",
      "run.yaml:5:1 YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
    ],
  },
  {
    name: "YAML alias without anchor is reported without its name",
    input: `devices:
  - address: 192.0.2.10
    type: gwsbc
    username: Admin
    password: *Hunter2
`,
    expected: [
      "run.yaml:5:15 YAML: alias (*name) without an anchor (&name) before it",
    ],
  },
  {
    name: "YAML duplicate key",
    input: `output: ./a
output: ./b
${DEVICE}`,
    expected: [
      "run.yaml:2:1 YAML: Map keys must be unique",
    ],
  },
  {
    name: "two documents",
    input: `output: ./a
---
${DEVICE}`,
    expected: [
      "run.yaml:2:1 YAML: only one document is allowed; remove the second '---'",
    ],
  },
  {
    name: "x- keys hold anchors; problems inside a merged block point into it",
    input: `x-msbr: &msbr
  type: msb
  username: Admin
devices:
  - <<: *msbr
    address: 192.0.2.10
    interfaces: [eth-wan]
    password: { env: A }
`,
    expected: [
      "run.yaml:2 devices[0].type: expected msbr|gwsbc|iosxe|nxos, got 'msb'",
    ],
  },
  {
    name: "JSON syntax error with line:col",
    file: "run.json",
    input: `{
  "devices": [
    { "address": "192.0.2.10", "type": "msbr", }
  ]
}
`,
    expected: [
      "run.json:3:48 JSON: expected a property name in double quotes, found '}'",
    ],
  },
  {
    name: "JSON schema errors with lines",
    file: "run.json",
    input: `{
  "output": "./runs",
  "devices": [
    {
      "address": "192.0.2.10",
      "type": "msb",
      "username": "Admin",
      "password": { "env": "A" },
      "agents": ["198.51.100.5:20001"]
    }
  ],
  "stop": { "duration": "1y" }
}
`,
    expected: [
      "run.json:6 devices[0].type: expected msbr|gwsbc|iosxe|nxos, got 'msb'",
      "run.json:9 devices[0].agents: needs agents.keyFile (v1 signs every request with that pre-shared key), or agents.legacy: true",
      "run.json:12 stop.duration: expected a duration like 90s, 15m, 24h, 1d or a number of seconds, got '1y'",
    ],
  },
  {
    name: "JSON duplicate key",
    file: "run.json",
    input: `{ "devices": [], "devices": [] }`,
    expected: [
      "run.json:1:18 JSON: duplicate key \"devices\"",
    ],
  },
];

describe("golden: bad configs → exact error text", () => {
  test.each(golden)("$name", ({ input, file, expected }) => {
    expect(errorLines(input, file)).toEqual(expected);
  });

  test("issues are structured and sorted by line", () => {
    let err: ConfigFileError | undefined;
    try {
      parseConfigText(golden[1]!.input, { file: "run.yaml", baseDir: "/cfg" });
    } catch (e) {
      err = e as ConfigFileError;
    }
    expect(err?.issues).toEqual([
      { file: "run.yaml", line: 1, path: "ouptut", message: "unknown key 'ouptut' (did you mean 'output'?)" },
      { file: "run.yaml", line: 3, path: "agents.key_file", message: "unknown key 'key_file' (did you mean 'keyFile'?)" },
      { file: "run.yaml", line: 4, path: "agents.colour", message: "unknown key 'colour'" },
      { file: "run.yaml", line: 11, path: "devices[0].pasword", message: "unknown key 'pasword' (did you mean 'password'?)" },
    ]);
    for (const c of golden) {
      const lines = errorLines(c.input, c.file).map((l) => Number(/^[^:]+:(\d+)/.exec(l)?.[1]));
      expect(lines).toEqual([...lines].sort((a, b) => a - b));
    }
  });

  test("a plain-text password never appears in any message", () => {
    const secret = "Zq9-not-for-logs";
    const input = `devices:
  - address: 192.0.2.10
    type: msb
    username: ${secret}x
    password: ${secret}
    tls: ${secret}
    ${secret}: 1
`;
    const text = errorLines(input).join("\n");
    expect(text).not.toContain(secret);
    expect(text).toContain("devices[0].password: plain-text password refused");
    expect(text).toContain("run.yaml:7 devices[0].***: unknown key '***'");
  });
});

const GOOD = `# everything that can be set, none of it left at its default
output: ../captures
concurrency: 8
retries: 5
verify: false
timeouts: { rest: 5s, sftp: 2m, agent: 1500ms }
agents:
  keyFile: keys/agent.key
  sshKeyFile: ~/.ssh/capsync_ed25519
  sftpPort: 2222
  answerPort: 20002
syslog:
  listen: "[::]:5514"
  tcp: true
stop:
  alarms:
    - connection-lost
    - { pattern: 'DOWN (?<device>\\S+)', flags: i }
  maxEventsPerDevice: 2
  duration: 1h30m
  deviceRetry: 10m
devices:
  - name: branch-1
    address: 192.0.2.10
    type: msbr
    interfaces: [eth-wan, cellular-wan]
    username: Admin
    password: { env: MSBR1_PASSWORD }
    tls: insecure
    restPort: 8443
    sshPort: 2022
    agents: [198.51.100.5:20001, "[2001:DB8::5]"]
    duration: 600
  - address: "2001:DB8::20"
    type: gwsbc
    username: Admin
    password: { file: secrets/sbc }
    tls: { ca: ca.pem }
  - address: Rtr1.Example.Net
    type: iosxe
    interfaces: GigabitEthernet1
    username: capsync
    password: not-a-good-idea
    allowPlain: true
`;

const GOOD_CONFIG: RunConfig = {
  configFile: "/etc/capsync/run.yaml",
  output: "/etc/captures",
  concurrency: 8,
  retries: 5,
  verify: false,
  timeouts: { restMs: 5_000, sftpMs: 120_000, agentMs: 1_500 },
  agents: {
    keyFile: "/etc/capsync/keys/agent.key",
    legacy: false,
    sshKeyFile: join(homedir(), ".ssh/capsync_ed25519"),
    sftpPort: 2222,
    answerPort: 20002,
  },
  syslog: { listen: { host: "::", port: 5514 }, tcp: true, sharePortWithAgents: false },
  stop: {
    alarms: [
      { kind: "builtin", name: "connection-lost" },
      { kind: "pattern", pattern: "DOWN (?<device>\\S+)", flags: "i" },
    ],
    maxEventsPerDevice: 2,
    durationMs: 5_400_000,
    deviceRetryMs: 600_000,
  },
  devices: [
    {
      name: "branch-1",
      address: "192.0.2.10",
      type: "msbr",
      interfaces: ["eth-wan", "cellular-wan"],
      username: "Admin",
      password: { kind: "env", env: "MSBR1_PASSWORD" },
      tls: { mode: "insecure" },
      restPort: 8443,
      sshPort: 2022,
      agents: [
        { host: "198.51.100.5", port: 20001 },
        { host: "2001:db8::5", port: 20001 },
      ],
      durationMs: 600_000,
      spec: { interfaces: ["eth-wan", "cellular-wan"] },
    },
    {
      name: "2001:db8::20",
      address: "2001:db8::20",
      type: "gwsbc",
      interfaces: ["eth-lan"],
      username: "Admin",
      password: { kind: "file", file: "/etc/capsync/secrets/sbc" },
      tls: { mode: "ca", ca: "/etc/capsync/ca.pem" },
      restPort: 443,
      sshPort: 22,
      agents: [],
      durationMs: 5_400_000,
      spec: { interfaces: ["eth-lan"] },
    },
    {
      name: "rtr1.example.net",
      address: "rtr1.example.net",
      type: "iosxe",
      interfaces: ["GigabitEthernet1"],
      username: "capsync",
      password: { kind: "plain", value: "not-a-good-idea" },
      tls: { mode: "verify" },
      restPort: 443,
      sshPort: 22,
      agents: [],
      durationMs: 5_400_000,
      spec: { interfaces: ["GigabitEthernet1"] },
    },
  ],
};

describe("good configs", () => {
  test("YAML → exact normalised config and warnings", () => {
    const { config, warnings } = parseConfigText(GOOD, { file: "/etc/capsync/run.yaml", baseDir: "/etc/capsync" });
    expect(config).toEqual(GOOD_CONFIG);
    expect(warnings).toEqual([
      "/etc/capsync/run.yaml:43 devices[2].password: plain-text password in the config file; prefer { env: NAME } or { file: PATH }",
    ]);
  });

  test("the same config as JSON gives the same result", async () => {
    const { parse } = await import("yaml");
    const json = JSON.stringify(parse(GOOD), null, 2);
    const { config } = parseConfigText(json, { file: "/etc/capsync/run.json", baseDir: "/etc/capsync" });
    expect(config).toEqual({ ...GOOD_CONFIG, configFile: "/etc/capsync/run.json" });
  });

  test("minimal config gets every default", () => {
    const { config, warnings } = configFromObject(
      { devices: [{ address: "192.0.2.10", type: "gwsbc", username: "Admin", password: { env: "P" } }] },
      { baseDir: "/work" },
    );
    expect(warnings).toEqual([]);
    expect(config).toEqual({
      configFile: undefined,
      output: "/work/runs",
      concurrency: 64,
      retries: 3,
      verify: true,
      timeouts: { restMs: 10_000, sftpMs: 60_000, agentMs: 8_000 },
      agents: { keyFile: undefined, legacy: false, sshKeyFile: undefined, sftpPort: 20022, answerPort: 0 },
      syslog: { listen: { host: "0.0.0.0", port: 20514 }, tcp: false, sharePortWithAgents: false },
      stop: { alarms: [{ kind: "builtin", name: "connection-lost" }], maxEventsPerDevice: 1, durationMs: undefined, deviceRetryMs: 1_800_000 },
      devices: [
        {
          name: "192.0.2.10",
          address: "192.0.2.10",
          type: "gwsbc",
          interfaces: ["eth-lan"],
          username: "Admin",
          password: { kind: "env", env: "P" },
          tls: { mode: "verify" },
          restPort: 443,
          sshPort: 22,
          agents: [],
          // No stop.duration: no limit, the device captures until its alarm.
          durationMs: undefined,
          spec: { interfaces: ["eth-lan"] },
        },
      ],
    } satisfies RunConfig);
  });

  test("legacy setup sharing one UDP port, with its warnings", () => {
    const { config, warnings } = parseConfigText(
      `agents:
  legacy: true
  keyFile: /etc/capsync/agent.key
syslog:
  listen: 20001
  sharePortWithAgents: true
stop:
  alarms: []
devices:
  - address: 192.0.2.10
    type: gwsbc
    username: Admin
    password: { env: P }
    agents: [198.51.100.5]
    tls: !secure insecure
`,
      { file: "run.yaml", baseDir: "/cfg" },
    );
    expect(config.agents).toEqual({ keyFile: undefined, legacy: true, sshKeyFile: undefined, sftpPort: 20022, answerPort: 20001 });
    expect(config.syslog).toEqual({ listen: { host: "0.0.0.0", port: 20001 }, tcp: false, sharePortWithAgents: true });
    expect(config.stop.alarms).toEqual([]);
    expect(warnings).toEqual([
      "run.yaml:15:10 YAML: Unresolved tag: !secure",
      "run.yaml:2 agents.legacy: the legacy protocol has no authentication and is IPv4 only; use it on trusted networks only",
      "run.yaml:3 agents.keyFile: ignored with legacy: true",
      "run.yaml:8 stop.alarms: empty: the run stops only on a signal or a manual stop (no stop.duration either)",
    ]);
  });

  test("JSON with a BOM and CRLF line ends", () => {
    const text = "\uFEFF{\r\n  \"devices\": [\r\n    { \"address\": \"192.0.2.10\", \"type\": \"gwsbc\", \"username\": \"A\", \"password\": 1 }\r\n  ]\r\n}\r\n";
    expect(errorLines(text, "run.json")).toEqual([
      "run.json:3 devices[0].password: expected { env: NAME } or { file: PATH } (a plain string only with allowPlain: true), got a number",
    ]);
  });

  test("the example in examples/run.yaml validates", async () => {
    const { config, warnings } = await loadConfig(EXAMPLE);
    expect(warnings).toEqual([]);
    expect(config.devices.map((d) => [d.name, d.type, d.interfaces])).toEqual([
      ["branch-12", "msbr", ["eth-wan", "cellular-wan"]],
      ["192.0.2.20", "gwsbc", ["eth-lan"]],
      ["core-rtr", "iosxe", ["GigabitEthernet1"]],
    ]);
    expect(config.output).toBe(join(EXAMPLE, "../runs"));
    expect(config.devices[1]?.durationMs).toBe(2 * 86_400_000);
  });
});

describe("loadConfig", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "capsync-config-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("resolves relative paths against the config file's folder", async () => {
    await mkdir(join(dir, "site"));
    const file = join(dir, "site", "run.yml");
    await writeFile(file, stringify({ output: "out", devices: [{ address: "192.0.2.1", type: "gwsbc", username: "a", password: { file: "pw" } }] }));
    const { config } = await loadConfig(file);
    expect(config.configFile).toBe(file);
    expect(config.output).toBe(join(dir, "site", "out"));
    expect(config.devices[0]?.password).toEqual({ kind: "file", file: join(dir, "site", "pw") });
  });

  test("a site's whole fleet fits in one file: 10,000 devices", async () => {
    const file = join(dir, "fleet.yaml");
    const lines = ["output: out", "agents: { keyFile: agent.key }", "devices:"];
    for (let i = 0; i < 10_000; i++) {
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      lines.push(`  - { address: ${address}, type: gwsbc, interfaces: [eth-lan], username: Admin, password: { env: FLEET_PW }, agents: [192.0.2.1:5555] }`);
    }
    const text = `${lines.join("\n")}\n`;
    expect(text.length).toBeGreaterThan(1 << 20);
    await writeFile(file, text);
    const { config } = await loadConfig(file);
    expect(config.devices).toHaveLength(10_000);
    expect(config.devices[9_999]?.address).toBe("10.0.39.15");
  });

  test("unreadable, oversized and non-UTF-8 files are config errors", async () => {
    const missing = join(dir, "nope.yaml");
    await expect(loadConfig(missing)).rejects.toThrow(`${missing}: cannot read the config: no such file`);
    await expect(loadConfig(dir)).rejects.toThrow(`${dir}: cannot read the config: is a folder, not a file`);
    const big = join(dir, "big.yaml");
    await writeFile(big, `# ${"x".repeat(16 << 20)}\n`);
    await expect(loadConfig(big)).rejects.toThrow(`${big}: too large for a config file (over 16777216 bytes)`);
    await expect(loadConfig("/dev/zero")).rejects.toThrow("/dev/zero: too large for a config file");
    const latin1 = join(dir, "latin1.yaml");
    await writeFile(latin1, Buffer.from([0x6f, 0x75, 0x74, 0x70, 0x75, 0x74, 0x3a, 0x20, 0xe9, 0x0a]));
    await expect(loadConfig(latin1)).rejects.toThrow(`${latin1}: not UTF-8 text`);
    const err = await loadConfig(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigFileError);
    expect((err as ConfigFileError).issues).toEqual([{ file: missing, line: 0, path: "", message: "cannot read the config: no such file" }]);
  });

  test("format follows the extension, or the caller", async () => {
    const file = join(dir, "run.conf");
    await writeFile(file, `{"devices": [}`);
    await expect(loadConfig(file, { format: "json" })).rejects.toThrow(`${file}:1:14 JSON: expected a value, found '}'`);
    await expect(loadConfig(file)).rejects.toThrow(/^[^\n]*run\.conf:1:\d+ YAML: /);
    await chmod(file, 0o600);
  });
});


describe("capture specs (run defaults + device overrides, checked per target)", () => {
  const base = `capture:
  filter: { protocol: udp, dport: 161 }
  limits: { duration: 10m, buffer: 10MB }
agents: { keyFile: /k }
devices:
  - address: 192.0.2.30
    type: iosxe
    interfaces: [GigabitEthernet1]
    username: u
    password: { env: P }
    transport: ssh-cli
    capture: { direction: in, limits: { packets: 5000 } }
    agents: [198.51.100.5:20001]
`;
  test("merged, converted and kept on the device", () => {
    const { config } = parseConfigText(base, { file: "/etc/run.yaml", baseDir: "/etc" });
    expect(config.devices[0]!.spec).toEqual({
      interfaces: ["GigabitEthernet1"],
      direction: "in",
      filter: { protocol: "udp", dport: 161 },
      limits: { durationSec: 600, bufferMb: 10, packets: 5000 },
    });
    expect(config.devices[0]!.transport).toBe("ssh-cli");
  });
  test("a spec a target cannot express fails before anything starts, naming device and field", () => {
    const msbr = base.replace("type: iosxe", "type: msbr").replace("[GigabitEthernet1]", "[eth-wan]").replace("    transport: ssh-cli\n", "");
    expect(errorLines(msbr, "run.yaml")).toEqual([
      "run.yaml:11 devices[0].capture.direction: msbr 192.0.2.30: direction: the AudioCodes debug capture records both directions; it cannot keep only one",
    ]);
  });
  test("transport is for iosxe only; sizes need units", () => {
    const bad = base.replace("type: iosxe", "type: gwsbc").replace("    interfaces: [GigabitEthernet1]\n", "").replace("buffer: 10MB", "buffer: lots");
    expect(errorLines(bad, "run.yaml")).toEqual([
      "run.yaml:3 capture.limits.buffer: expected a size like 100MB or 1GB, got 'lots'",
      "run.yaml:10 devices[0].transport: only for iosxe devices (gwsbc has one transport)",
    ]);
  });
});
