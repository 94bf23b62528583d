// `cpe-capture trace` over real emulated IOS-XE routers on loopback (127.0.216.x, one SSH port for
// all), chained by their routing tables: a 3-hop path ending on a switch port found through ARP + the
// MAC table, the destination as a router's own address, a routing loop, an unreachable and a refusing
// next hop (partial path, exit 1), a router without a route, --use_mgmt through CDP. The walker is
// called in-process; the built CLI runs as a child for the exit codes, the text output and the
// missing-option error without a terminal.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startIosXeDevice, startNxosDevice, type IosXeDevice, type IosXeDeviceOptions, type NxosDevice } from "@capsync/emulators";
import { HOP_TYPES, hopClientFor } from "../../packages/cpe-capture/src/drivers/index.js";
import { walk, type WalkOptions } from "../../packages/cpe-capture/src/trace/walker.js";
import { CPE_CLI } from "../helpers/cli-proc.js";

const USER = "tracer";
const PASS = "Tr4ce-S3cret-216";
const SSH_PORT = 42216;
const NET = "127.0.216";
const REST_PORT = 42443;
const devices: (IosXeDevice | NxosDevice)[] = [];

const FLOW = { src: "10.1.1.10", dst: "10.9.9.20", proto: 6, sport: 1234, dport: 80, vrf: "default" };

async function router(n: number, hostname: string, extra: Partial<IosXeDeviceOptions>): Promise<void> {
  devices.push(await startIosXeDevice({ address: `${NET}.${n}`, sshPort: SSH_PORT, username: USER, password: PASS, hostname, ...extra }));
}

beforeAll(async () => {
  // r1 → r2 → r3 (a Catalyst-like switch: 10.9.9.0/24 on Vlan99, the host on port Gi1/0/5).
  await router(1, "r1", {
    interfaces: [{ name: "GigabitEthernet1", ip: "10.1.1.1 255.255.255.0" }, { name: "GigabitEthernet2", ip: `${NET}.1 255.255.255.0` }],
    routing: {
      routes: [
        { prefix: "10.9.9.0/24", via: `${NET}.2`, interface: "GigabitEthernet2" },
        { prefix: "10.66.0.0/16", via: `${NET}.2`, interface: "GigabitEthernet2" },
        { prefix: "10.77.0.0/16", via: `${NET}.2`, interface: "GigabitEthernet2" },
        { prefix: "10.88.0.0/16", via: `${NET}.6`, interface: "GigabitEthernet2" },
        { prefix: "10.50.0.0/16", via: "10.0.12.2", interface: "GigabitEthernet3" },
        { prefix: "10.44.0.0/16", via: `${NET}.7`, interface: "GigabitEthernet2" },
        { prefix: "10.55.0.0/16", via: `${NET}.5`, interface: "GigabitEthernet2" },
      ],
      cdp: [{ deviceId: "r2.lab", localInterface: "GigabitEthernet3", remoteInterface: "GigabitEthernet1", address: "10.0.12.2", mgmtAddress: `${NET}.2` }],
      counters: { GigabitEthernet2: { outPackets: 235246, outBytes: 24675632, resets: 6 } },
    },
  });
  await router(2, "r2", {
    interfaces: [{ name: "GigabitEthernet1", ip: `${NET}.2 255.255.255.0` }, { name: "GigabitEthernet2", ip: "10.0.23.2 255.255.255.0" }, { name: "GigabitEthernet3", ip: "10.50.0.1 255.255.0.0" }],
    routing: {
      loadSharing: "include-ports source destination",
      routes: [
        { prefix: "10.9.9.0/24", via: `${NET}.3`, interface: "GigabitEthernet2" },
        { prefix: "10.66.0.0/16", via: `${NET}.1`, interface: "GigabitEthernet1" },
        { prefix: "10.77.0.0/16", via: `${NET}.9`, interface: "GigabitEthernet2" },
        { prefix: "10.50.0.0/16", interface: "GigabitEthernet3" },
      ],
      arp: [{ address: "10.50.0.20", mac: "0050.56aa.5020", interface: "GigabitEthernet3" }],
      counters: { GigabitEthernet2: { outPackets: 27150, outBytes: 3490279, resets: 2 } },
    },
  });
  await router(3, "r3", {
    interfaces: [{ name: "GigabitEthernet1/0/1", ip: `${NET}.3 255.255.255.0` }, { name: "Vlan99", ip: "10.9.9.1 255.255.255.0" }, { name: "GigabitEthernet1/0/5" }],
    routing: {
      routes: [
        { prefix: "10.9.9.0/24", interface: "Vlan99" },
        { prefix: "10.44.0.0/16", via: `${NET}.8`, interface: "GigabitEthernet1/0/1" },
      ],
      arp: [{ address: "10.9.9.20", mac: "0050.56AA.0920", interface: "Vlan99" }],
      macTable: [{ mac: "0050.56aa.0920", vlan: "99", port: "GigabitEthernet1/0/5" }],
      counters: { "GigabitEthernet1/0/5": { outPackets: 81, outBytes: 9720, resets: 0 } },
    },
  });
  // Two Nexus switches for the mixed path r1 → n7 → r3 → n8 (10.44.0.20 on n8's Vlan44, port Ethernet1/5).
  const nx = (n: number, hostname: string, extra: Partial<Parameters<typeof startNxosDevice>[0]>) =>
    startNxosDevice({ address: `${NET}.${n}`, sshPort: SSH_PORT, restPort: REST_PORT, username: USER, password: PASS, hostname, ...extra });
  devices.push(
    await nx(7, "n7", {
      interfaces: [{ name: "Ethernet1/51", address: `${NET}.7/24` }, { name: "Ethernet1/52", address: "10.0.73.7/24", resets: 3, tx: { unicast: 1552, multicast: 233683, broadcast: 3, bytes: 24675632 } }],
      routes: [{ prefix: "10.44.0.0/16", nextHops: [{ via: `${NET}.3`, interface: "Ethernet1/52" }] }],
    }),
  );
  devices.push(
    await nx(8, "n8", {
      interfaces: [{ name: "Ethernet1/1", address: `${NET}.8/24` }, { name: "Vlan44", address: "10.44.0.1/16" }, { name: "Ethernet1/5", resets: 1, tx: { unicast: 81, bytes: 3490279 } }],
      routes: [{ prefix: "10.44.0.0/16", nextHops: [{ via: "10.44.0.20", interface: "Vlan44" }] }],
      arp: [{ address: "10.44.0.20", mac: "0050.56aa.4420", interface: "Vlan44" }],
      mac: [{ vlan: "44", mac: "0050.56aa.4420", port: "Eth1/5" }],
    }),
  );
  // A router that lands the trace's user in user EXEC (privilege 1).
  devices.push(await startIosXeDevice({ address: `${NET}.5`, sshPort: SSH_PORT, username: USER, password: PASS, hostname: "r5", privilege: 1 }));
  // A router whose SSH password is another one: it refuses the trace's user.
  devices.push(await startIosXeDevice({ address: `${NET}.6`, sshPort: SSH_PORT, username: USER, password: "other-password", hostname: "r6" }));
}, 60_000);

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close()));
});

function options(over: Partial<WalkOptions> = {}): WalkOptions {
  return {
    flow: FLOW,
    target: `${NET}.1`,
    firstTypes: ["iosxe"],
    allTypes: ["iosxe"],
    connect: (type, address) => hopClientFor(type)({ address, username: USER, password: PASS, sshPort: SSH_PORT, timeoutMs: 10_000 }),
    useMgmt: false,
    secrets: [PASS],
    ...over,
  };
}

describe("trace walker over emulated routers", () => {
  it("follows a path that mixes IOS-XE routers and Nexus switches, each hop asked as the type that answers", async () => {
    const r = await walk(
      options({
        flow: { ...FLOW, dst: "10.44.0.20" },
        // The emulators' shared certificate names 127.0.0.x only, as its comment says: a lab trust.
        firstTypes: HOP_TYPES,
        allTypes: HOP_TYPES,
        connect: (type, address) =>
          hopClientFor(type)({ address, username: USER, password: PASS, sshPort: SSH_PORT, restPort: REST_PORT, tls: { mode: "insecure" }, timeoutMs: 10_000 }),
      }),
    );
    expect(r.reason).toBeUndefined();
    expect(r.result).toBe("complete");
    expect(r.hops.map((h) => [h.number, h.type, h.hostname, h.outInterface, h.nextHop, h.stats?.resets !== undefined])).toEqual([
      [1, "iosxe", "r1", "GigabitEthernet2", `${NET}.7`, true],
      [2, "nxos", "n7", "Eth1/52", `${NET}.3`, true],
      [3, "iosxe", "r3", "GigabitEthernet1/0/1", `${NET}.8`, true],
      [4, "nxos", "n8", "Eth1/5", "10.44.0.20", true],
    ]);
    expect(r.hops[1]!.loadShareMode).toBe("address source-destination port source-destination");
    expect(r.hops[1]!.stats?.txLines?.[0]).toMatch(/^1552 unicast packets\s+233683 multicast packets\s+3 broadcast packets$/);
  });

  it("follows a 3-hop path and finds the switch port of the attached destination (ARP + MAC table)", async () => {
    const r = await walk(options());
    expect(r.result).toBe("complete");
    expect(r.reason).toBeUndefined();
    expect(r.hops.map((h) => [h.number, h.hostname, h.address, h.outInterface, h.nextHop, h.attached])).toEqual([
      [1, "r1", `${NET}.1`, "GigabitEthernet2", `${NET}.2`, false],
      [2, "r2", `${NET}.2`, "GigabitEthernet2", `${NET}.3`, false],
      [3, "r3", `${NET}.3`, "GigabitEthernet1/0/5", "10.9.9.20", true],
    ]);
    expect(r.hops[0]!.stats?.resets).toBe("6 interface resets");
    expect(r.hops[0]!.stats?.txLines?.[0]).toBe("235246 packets output, 24675632 bytes, 0 underruns");
    expect(r.hops[1]!.loadShareMode).toBe("include-ports source destination");
    expect(r.hops[0]!.loadShareMode).toBe("universal");
    expect(r.hops[0]!.routeText).toBe(`10.1.1.10 -> 10.9.9.20 =>IP adj out of GigabitEthernet2, addr ${NET}.2`);
    expect((devices[0] as IosXeDevice).state().commands).toContain("show ip cef exact-route 10.1.1.10 src-port 1234 10.9.9.20 dest-port 80");
    expect((devices[2] as IosXeDevice).state().commands).toEqual(expect.arrayContaining(["show ip arp", "show mac address-table", "show interfaces GigabitEthernet1/0/5"]));
  });

  it("ends at a router whose own address is the destination (CEF receive)", async () => {
    const r = await walk(options({ flow: { ...FLOW, dst: "10.9.9.1" } }));
    expect(r.result).toBe("complete");
    expect(r.hops.map((h) => [h.hostname, h.outInterface, h.local])).toEqual([
      ["r1", "GigabitEthernet2", false],
      ["r2", "GigabitEthernet2", false],
      ["r3", "receive", true],
    ]);
    expect(r.hops[2]!.stats).toBeUndefined();
  });

  it("stops at a routing loop and names both hops", async () => {
    const r = await walk(options({ flow: { ...FLOW, dst: "10.66.1.1" } }));
    expect(r.result).toBe("loop");
    expect(r.hops.map((h) => h.hostname)).toEqual(["r1", "r2"]);
    expect(r.reason).toBe(`routing loop: hop 2 (r2) sends the flow to ${NET}.1, which is hop 1 (r1)`);
  });

  it("reports an unreachable next hop with the partial path", async () => {
    const r = await walk(options({ flow: { ...FLOW, dst: "10.77.1.1" } }));
    expect(r.result).toBe("unreachable");
    expect(r.hops.map((h) => h.hostname)).toEqual(["r1", "r2"]);
    expect(r.reason).toMatch(new RegExp(`^hop 3 \\(${NET}\\.9\\) cannot be reached: CLI ${NET}\\.9:${SSH_PORT}: connect ECONNREFUSED`));
  });

  it("reports a next hop that refuses the login, without the password", async () => {
    const r = await walk(options({ flow: { ...FLOW, dst: "10.88.1.1" } }));
    expect(r.result).toBe("unreachable");
    expect(r.hops.map((h) => h.hostname)).toEqual(["r1"]);
    expect(r.reason).toBe(`hop 2 (${NET}.6) cannot be reached: CLI ${NET}.6:${SSH_PORT}: SSH authentication failed for user ${USER}`);
    expect(JSON.stringify(r)).not.toContain(PASS);
  });

  it("reports a next hop that lands the user in user EXEC", async () => {
    const r = await walk(options({ flow: { ...FLOW, dst: "10.55.1.1" } }));
    expect([r.result, r.hops.length]).toEqual(["unreachable", 1]);
    expect(r.reason).toBe(`hop 2 (${NET}.5) cannot be reached: CLI ${NET}.5:${SSH_PORT}: user ${USER} lands in user EXEC (r5>); capsync needs privilege 15 (r5#)`);
  });

  it("fails at a router with no route, naming it", async () => {
    const r = await walk(options({ flow: { ...FLOW, dst: "192.0.2.99" } }));
    expect(r.result).toBe("failed");
    expect(r.hops).toEqual([]);
    expect(r.reason).toBe(
      `hop 1 (r1, ${NET}.1) did not say where the flow goes: IOS-XE ${NET}.1: show ip cef exact-route 10.1.1.10 src-port 1234 192.0.2.99 dest-port 80: the router has no route for 192.0.2.99 (CEF: no route)`,
    );
  });

  it("--use_mgmt connects to the CDP neighbor's management address", async () => {
    const r = await walk(options({ flow: { ...FLOW, dst: "10.50.0.20" }, useMgmt: true }));
    expect(r.result).toBe("complete");
    expect(r.hops.map((h) => [h.hostname, h.address, h.connectedVia, h.outInterface, h.nextHop])).toEqual([
      ["r1", `${NET}.1`, `${NET}.1`, "GigabitEthernet3", "10.0.12.2"],
      ["r2", "10.0.12.2", `${NET}.2`, "GigabitEthernet3", "10.50.0.20"],
    ]);
    // r2 is a router: its MAC table command is refused, the ARP entry's interface is the port.
    expect(r.hops[1]!.notes).toEqual([]);
  });

  it("stops after maxHops", async () => {
    const r = await walk(options({ maxHops: 2 }));
    expect(r.result).toBe("too-many-hops");
    expect(r.hops).toHaveLength(2);
    expect(r.reason).toBe(`no end after 2 hops (the next would be ${NET}.3)`);
  });
});

const run = promisify(execFile);
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [CPE_CLI, "trace", ...args], { env: { ...process.env, CAPSYNC_TRACE_PASSWORD: PASS, ...env } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}
const BASE = ["--src", "10.1.1.10", "--dest", "10.9.9.20", "--proto", "tcp", "--src_port", "1234", "--dest-port", "80", "--target", `${NET}.1`, "--user", USER, "--ssh-port", String(SSH_PORT), "--type", "iosxe"];
const timesOut = (s: string) => s.replace(/Elapsed Time for Hop: [\d.]+ seconds\./g, "Elapsed Time for Hop: T seconds.").replace(/in [\d.]+ seconds/g, "in T seconds");

describe("cpe-capture trace (the built CLI, no terminal)", () => {
  it("prints flowtracker's blocks and exits 0 on a complete path", async () => {
    const r = await cli(BASE);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(timesOut(r.stdout)).toBe(
      [
        "",
        "FLOW OVERVIEW:",
        "",
        "SRC: 10.1.1.10",
        "DEST: 10.9.9.20",
        "PROTO: 6",
        "SRC_PORT: 1234",
        "DEST_PORT: 80",
        "VRF: default",
        "",
        "",
        "#".repeat(77),
        "",
        `CONNECTED TO: r1 (${NET}.1)`,
        "HOP NUMBER: 1",
        "",
        "LOAD_SHARE_MODE: universal",
        "VRF: default",
        "OUT_IF: GigabitEthernet2",
        "DEST: 10.9.9.20",
        `NEXT_HOP: ${NET}.2`,
        "",
        "OUT_IF:",
        "  RESETS: 6",
        "  TX_STATS:",
        "    235246 packets output, 24675632 bytes, 0 underruns",
        "    Output 3 broadcasts (0 IP multicasts)",
        "    0 output errors, 0 collisions, 6 interface resets",
        "    0 unknown protocol drops",
        "    0 babbles, 0 late collision, 0 deferred",
        "    0 lost carrier, 0 no carrier, 0 pause output",
        "    0 output buffer failures, 0 output buffers swapped out",
        "",
        "",
        "",
        "",
        "Elapsed Time for Hop: T seconds.",
        "",
        "#".repeat(77),
        "",
        `CONNECTED TO: r2 (${NET}.2)`,
        "HOP NUMBER: 2",
        "",
        "LOAD_SHARE_MODE: include-ports source destination",
        "VRF: default",
        "OUT_IF: GigabitEthernet2",
        "DEST: 10.9.9.20",
        `NEXT_HOP: ${NET}.3`,
        "",
        "OUT_IF:",
        "  RESETS: 2",
        "  TX_STATS:",
        "    27150 packets output, 3490279 bytes, 0 underruns",
        "    Output 3 broadcasts (0 IP multicasts)",
        "    0 output errors, 0 collisions, 2 interface resets",
        "    0 unknown protocol drops",
        "    0 babbles, 0 late collision, 0 deferred",
        "    0 lost carrier, 0 no carrier, 0 pause output",
        "    0 output buffer failures, 0 output buffers swapped out",
        "",
        "",
        "",
        "",
        "Elapsed Time for Hop: T seconds.",
        "",
        "#".repeat(77),
        "",
        `CONNECTED TO: r3 (${NET}.3)`,
        "HOP NUMBER: 3",
        "",
        "LOAD_SHARE_MODE: universal",
        "VRF: default",
        "OUT_IF: GigabitEthernet1/0/5",
        "DEST: 10.9.9.20",
        "NEXT_HOP: 10.9.9.20",
        "",
        "OUT_IF:",
        "  RESETS: 0",
        "  TX_STATS:",
        "    81 packets output, 9720 bytes, 0 underruns",
        "    Output 3 broadcasts (0 IP multicasts)",
        "    0 output errors, 0 collisions, 0 interface resets",
        "    0 unknown protocol drops",
        "    0 babbles, 0 late collision, 0 deferred",
        "    0 lost carrier, 0 no carrier, 0 pause output",
        "    0 output buffer failures, 0 output buffers swapped out",
        "",
        "",
        "",
        "",
        "Elapsed Time for Hop: T seconds.",
        "",
        "#".repeat(77),
        "",
        "TRACE COMPLETE: 3 hops in T seconds; 10.9.9.20 is attached to r3 on GigabitEthernet1/0/5.",
        "",
      ].join("\n"),
    );
  });

  it("without --type, a mixed IOS-XE / NX-OS path: each hop asked as the type that answers (--json)", async () => {
    const args = BASE.filter((a, i, all) => a !== "--type" && all[i - 1] !== "--type").map((a) => (a === "10.9.9.20" ? "10.44.0.20" : a));
    const r = await cli([...args, "--rest-port", String(REST_PORT), "--insecure", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { hops: { type: string; hostname: string; outInterface: string }[]; result: string; reason: null };
    expect([j.result, j.reason]).toEqual(["complete", null]);
    expect(j.hops.map((h) => `${h.type}:${h.hostname}:${h.outInterface}`)).toEqual(["iosxe:r1:GigabitEthernet2", "nxos:n7:Eth1/52", "iosxe:r3:GigabitEthernet1/0/1", "nxos:n8:Eth1/5"]);
  });

  it("--json prints one object; an unreachable hop is exit 1 with the partial path and the reason", async () => {
    const r = await cli([...BASE.map((a) => (a === "10.9.9.20" ? "10.77.1.1" : a)), "--json"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("");
    const j = JSON.parse(r.stdout) as { flow: unknown; hops: { hop: number; hostname: string; outInterface: string; nextHop: string; resets: number }[]; result: string; reason: string };
    expect(j.flow).toEqual({ src: "10.1.1.10", dest: "10.77.1.1", proto: 6, srcPort: 1234, destPort: 80, vrf: "default" });
    expect(j.hops.map((h) => [h.hop, h.hostname, h.outInterface, h.nextHop, h.resets])).toEqual([
      [1, "r1", "GigabitEthernet2", `${NET}.2`, 6],
      [2, "r2", "GigabitEthernet2", `${NET}.9`, 2],
    ]);
    expect(j.result).toBe("unreachable");
    expect(j.reason).toMatch(new RegExp(`^hop 3 \\(${NET}\\.9\\) cannot be reached: .*ECONNREFUSED`));
    expect(r.stdout.split("\n").filter(Boolean)).toHaveLength(1);
  });

  it("text mode ends a loop with the reason, exit 1", async () => {
    const r = await cli(BASE.map((a) => (a === "10.9.9.20" ? "10.66.1.1" : a)));
    expect(r.code).toBe(1);
    expect(timesOut(r.stdout).endsWith(["#".repeat(77), "", "TRACE INCOMPLETE (loop) after 2 hops in T seconds:", `  routing loop: hop 2 (r2) sends the flow to ${NET}.1, which is hop 1 (r1)`, ""].join("\n"))).toBe(true);
  });

  it("without a terminal, a missing option is exit 2 naming it", async () => {
    const r = await cli(BASE.filter((a, i, all) => a !== "--dest" && all[i - 1] !== "--dest"));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("--dest is required (no terminal to ask on)\n");
    const p = await cli(BASE, { CAPSYNC_TRACE_PASSWORD: "" });
    expect(p.code).toBe(2);
    expect(p.stderr).toBe("--pwd: the password is empty\n");
  });

  it("refuses bad input with the option named: protocol, port pair, --mode interactive without a terminal, a type that cannot trace", async () => {
    const cases: [string[], string][] = [
      [BASE.map((a) => (a === "tcp" ? "tcpx" : a)), "--proto: expected a protocol name (tcp, udp, icmp, ...) or a number 0..255, got \"tcpx\"\n"],
      [BASE.filter((a, i, all) => a !== "--dest-port" && all[i - 1] !== "--dest-port"), "--src_port and --dest_port must be supplied together\n"],
      [[...BASE, "--mode", "interactive"], "--mode interactive: asks before each hop, which needs a terminal; use --mode auto\n"],
      [BASE.map((a) => (a === "iosxe" ? "iosxe,nosuch" : a)), `--type: "nosuch" cannot answer a path trace; types that can: ${HOP_TYPES.join(", ")}\n`],
      [BASE.map((a) => (a === "10.1.1.10" ? "10.1.1.300" : a)), '--src: "10.1.1.300" is neither an IPv4 address nor a host name\n'],
    ];
    for (const [args, err] of cases) {
      const r = await cli(args);
      expect([r.code, r.stderr]).toEqual([2, err]);
    }
  });

  it("--help names flowtracker's options, both spellings and the password variable", async () => {
    const r = await run(process.execPath, [CPE_CLI, "trace", "--help"], { env: { ...process.env, COLUMNS: "200" } });
    const help = r.stdout.replace(/\s+/g, " ");
    for (const want of ["--src <address>", "--dest <address>", "--proto <proto>", "--src_port <port>", "(also --src-port)", "--dest_port <port>", "--vrf <vrf>", "--target <address>", "--user <user>", "--pwd <password>", "--mode <mode>", "--use_mgmt", "--json", "CAPSYNC_TRACE_PASSWORD", "Exit codes: 0 the path reached the destination, 1 it stopped short"]) {
      expect(help).toContain(want);
    }
  });

  it("the password from --pwd appears nowhere in the output", async () => {
    const r = await cli([...BASE.map((a) => (a === "10.9.9.20" ? "10.88.1.1" : a)), "--pwd", PASS], { CAPSYNC_TRACE_PASSWORD: "" });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`hop 2 (${NET}.6) cannot be reached: CLI ${NET}.6:${SSH_PORT}: SSH authentication failed for user ${USER}`);
    expect(r.stdout + r.stderr).not.toContain(PASS);
  });
});
