// OVOC's Connection Lost relayed by a real rsyslog (Debian package `rsyslog`; run with its own config,
// pid file and work dir in a temp dir, inputs on loopback) to the orchestrator's SyslogListener over
// UDP, TCP with RFC 6587 octet counting, and TCP with newline framing — each must give a StopEvent.
// The omfwd actions are the ones the README gives for sites that relay alarms through rsyslog.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { SyslogSender, ovocConnectionEstablished, ovocConnectionLostAlarm } from "@capsync/emulators";
import { SyslogListener } from "@capsync/cpe-capture/triggers/listener";
import type { SyslogEvent } from "@capsync/cpe-capture/triggers/matchers";
import { tempDir } from "../helpers/agent-proc.js";
import { freeUdpPort } from "../helpers/cli-proc.js";

const RSYSLOGD = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"].find((p) => spawnSync(p, ["-v"]).status === 0);
const PROBE = "127.0.0.40";
const VIA_UDP = "127.0.0.41";
const VIA_TCP_OCTETS = "127.0.0.42";
const VIA_TCP_LF = "127.0.0.43";

type Out = "udp" | "tcp-octet-counted" | "tcp-newline";
const OUTS: Out[] = ["udp", "tcp-octet-counted", "tcp-newline"];

let rsyslog: ChildProcess | undefined;
let rsyslogErr = "";
let inputs: { udp: number; tcp: number };
const listeners = new Map<Out, { listener: SyslogListener; events: SyslogEvent[] }>();

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const p = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** rsyslog's config: the two inputs, and one forwarding action per orchestrator listener. */
function config(dir: string, out: Record<Out, number>): string {
  return `# capsync test relay (no imuxsock/imklog: this rsyslogd never touches the system's logs)
global(workDirectory="${dir}/work" net.enableDNS="off")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="${inputs.udp}" ruleset="to-capsync")
input(type="imtcp" address="127.0.0.1" port="${inputs.tcp}" ruleset="to-capsync")
ruleset(name="to-capsync") {
  action(type="omfwd" target="127.0.0.1" port="${out.udp}" protocol="udp")
  action(type="omfwd" target="127.0.0.1" port="${out["tcp-octet-counted"]}" protocol="tcp" TCP_Framing="octet-counted"
         queue.type="LinkedList" queue.size="10000" action.resumeRetryCount="-1" action.resumeInterval="1")
  action(type="omfwd" target="127.0.0.1" port="${out["tcp-newline"]}" protocol="tcp" TCP_Framing="traditional"
         queue.type="LinkedList" queue.size="10000" action.resumeRetryCount="-1" action.resumeInterval="1")
}
`;
}

beforeAll(async () => {
  if (!RSYSLOGD) throw new Error("rsyslogd not found: this test needs the Debian package 'rsyslog' (apt-get install -y rsyslog)");
  const devices = [PROBE, VIA_UDP, VIA_TCP_OCTETS, VIA_TCP_LF];
  const ports = {} as Record<Out, number>;
  for (const out of OUTS) {
    const events: SyslogEvent[] = [];
    const listener = new SyslogListener({
      onEvent: (e) => events.push(e),
      devices,
      ...(out === "udp" ? { udp: { address: "127.0.0.1", port: 0 } } : { udp: false as const, tcp: { address: "127.0.0.1", port: 0 } }),
    });
    const a = await listener.listen();
    ports[out] = (out === "udp" ? a.udp : a.tcp)!.port;
    listeners.set(out, { listener, events });
  }
  inputs = { udp: await freeUdpPort(), tcp: await freeTcpPort() };
  const dir = tempDir("capsync-rsyslog-");
  mkdirSync(join(dir, "work"));
  const conf = join(dir, "rsyslog.conf");
  writeFileSync(conf, config(dir, ports));
  rsyslog = spawn(RSYSLOGD, ["-n", "-f", conf, "-i", join(dir, "rsyslogd.pid")], { stdio: ["ignore", "pipe", "pipe"] });
  rsyslog.stdout!.on("data", (d: Buffer) => (rsyslogErr += d.toString()));
  rsyslog.stderr!.on("data", (d: Buffer) => (rsyslogErr += d.toString()));

  // Ready when a probe ("Connection established": logged, never a stop) has crossed rsyslog to every listener.
  // An unconnected socket: before rsyslog binds its port the kernel answers port-unreachable, which a
  // connected UDP socket would raise as an error.
  const probe = dgram.createSocket("udp4");
  probe.on("error", () => undefined);
  const until = Date.now() + 15_000;
  try {
    while (![...listeners.values()].every((l) => l.events.some((e) => e.device === PROBE))) {
      if (rsyslog.exitCode !== null) throw new Error(`rsyslogd exited with ${rsyslog.exitCode}: ${rsyslogErr}`);
      if (Date.now() > until) throw new Error(`rsyslog relay not ready after 15 s: ${rsyslogErr}`);
      probe.send(ovocConnectionEstablished({ deviceIp: PROBE }), inputs.udp, "127.0.0.1");
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    probe.close();
  }
}, 30_000);

afterAll(async () => {
  if (rsyslog && rsyslog.exitCode === null) {
    const exited = new Promise((r) => rsyslog!.once("exit", r));
    rsyslog.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (rsyslog.exitCode === null) rsyslog.kill("SIGKILL");
  }
  await Promise.all([...listeners.values()].map((l) => l.listener.close()));
});

describe("Connection Lost relayed by rsyslog", () => {
  it("reaches the orchestrator over UDP, TCP octet-counted and TCP newline framing, whichever way it entered rsyslog", async () => {
    const into = [
      { device: VIA_UDP, open: { transport: "udp" as const }, nul: true },
      { device: VIA_TCP_OCTETS, open: { transport: "tcp" as const, framing: "octet-counting" as const }, nul: true },
      // A NUL inside an LF-framed stream would end the frame early; TCP senders do not add it.
      { device: VIA_TCP_LF, open: { transport: "tcp" as const, framing: "newline" as const }, nul: false },
    ];
    for (const i of into) {
      const s = await SyslogSender.open({ host: "127.0.0.1", port: i.open.transport === "udp" ? inputs.udp : inputs.tcp, ...i.open });
      await s.send(ovocConnectionLostAlarm({ deviceIp: i.device, deviceName: `msbr-${i.device}`, trailingNul: i.nul }));
      await s.close();
    }
    for (const out of OUTS) {
      const { events } = listeners.get(out)!;
      for (const { device } of into) {
        await expect.poll(() => events.find((e) => e.kind === "stop" && e.device === device), { timeout: 10_000, message: `${out}: no stop for ${device}; rsyslog said: ${rsyslogErr}` }).toBeDefined();
        const stop = events.find((e) => e.kind === "stop" && e.device === device)!;
        expect(stop).toMatchObject({ kind: "stop", device, via: "alarm", count: 1 });
        expect(stop.message).toContain(`Description: Connection Lost, Device Name: msbr-${device}`);
        // The relay, not the device or OVOC, is the sender.
        expect(stop.from.address).toBe("127.0.0.1");
      }
      // The probes were logged, never a stop.
      expect(events.filter((e) => e.device === PROBE).every((e) => e.kind === "log")).toBe(true);
    }
    const st = listeners.get("tcp-octet-counted")!.listener.stats();
    expect(st.tcpFramingErrors).toBe(0);
    expect(listeners.get("tcp-newline")!.listener.stats().tcpFramingErrors).toBe(0);
  });
});
