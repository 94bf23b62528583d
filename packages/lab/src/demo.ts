// `cpe-capture demo`: the whole product on one machine, on real packets, in under 90 seconds.
// Namespaces, emulated devices with real tcpdump, a real agent, an emulated management server whose
// real "Connection Lost" alarm stops the broken device's captures (netns-lab.ts); or, without
// root, `--loopback` with synthetic captures and an injected alarm (loopback.ts); or
// `--xepacketcap`, a stand-in for a router running xepacketcap (xepacketcap.ts).
// cpe-capture loads this module only for `demo` (its commands/demo.ts), so the product never does.
import { resolve } from "node:path";
import { tmpdir } from "node:os";
import { ConfigError, MAX_DURATION_MS, parseDurationValue } from "@capsync/protocol";
import { installStopSignals } from "@capsync/cpe-capture/triggers/signals";
import type { Io } from "@capsync/cpe-capture/commands/run";
import type { DemoOptions } from "@capsync/cpe-capture/commands/demo";
import { DemoReporter } from "./reporter.js";
import { haveCommand, netnsAvailable, removeLabLeftovers, runningLab } from "./netns.js";
import { runNetnsLab } from "./netns-lab.js";
import { runLoopbackLab } from "./loopback.js";
import { formatSummary } from "./summary.js";
import { MAX_LAB_DEVICES } from "./topology.js";
import { xepacketcapDemo } from "./xepacketcap.js";
import { traceDemo } from "./trace/demo.js";

export const NEEDS_ROOT =
  "the demo lab needs root and `ip netns` (iproute2) to create network namespaces; run it as root, or try `cpe-capture demo --loopback` (no root, emulated captures)";

/** Silence before the management server raises "Connection Lost". */
const LOST_AFTER_MS = 3000;
/** Alarm, STOP, stop and download take a few seconds on top of the silence. */
const ALARM_SLACK_MS = 4000;

/** Bad input: exit 2 with the message (cpe-capture's index.ts prints ConfigError messages as they are). */
function bad(message: string): ConfigError {
  return new ConfigError(`cpe-capture demo: ${message}`);
}

function duration(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const r = parseDurationValue(v, MAX_DURATION_MS);
  if (!r.ok) throw bad(`${flag}: ${r.message}`);
  return r.ms;
}

export async function demoCommand(o: DemoOptions, io: Io): Promise<number> {
  if (o.xepacketcap) return xepacketcapDemo(o, io);
  if (o.trace) return traceDemo(o, io, NEEDS_ROOT);
  if (o.port !== undefined || o.allow !== undefined) throw bad(`${o.port !== undefined ? "--port" : "--allow"} goes with --xepacketcap`);
  const t0 = Date.now();
  const devices = o.devices === undefined ? 2 : /^\d+$/.test(o.devices) ? Number(o.devices) : NaN;
  if (!(devices >= 1 && devices <= MAX_LAB_DEVICES)) throw bad(`--devices: expected a whole number from 1 to ${MAX_LAB_DEVICES}, got '${o.devices}'`);
  const durationMs = duration("--duration", o.duration, 45_000);
  const breakAfterMs = duration("--break-after", o.breakAfter, 12_000);
  const needed = breakAfterMs + (o.loopback ? 0 : LOST_AFTER_MS) + ALARM_SLACK_MS;
  if (needed > durationMs) {
    throw bad(
      `--break-after ${breakAfterMs / 1000}s leaves no time for the alarm before --duration ${durationMs / 1000}s ends (needs at least ${needed / 1000}s); shorten --break-after or lengthen --duration`,
    );
  }
  if (o.keep && o.loopback) throw bad("--keep applies to the namespace lab; --loopback runs everything in this process and has nothing to keep");
  const output = resolve(o.output ?? "./runs");

  if (!o.loopback) {
    const a = netnsAvailable();
    if (!a.ok) {
      io.stderr.write(`cpe-capture demo: ${NEEDS_ROOT}\n  (here: ${a.reason})\n`);
      return 2;
    }
    if (o.clean) {
      const other = runningLab(tmpdir());
      if (other) {
        io.stderr.write(`cpe-capture demo: a demo lab is running (pid ${other.pid}); stop it first\n`);
        return 1;
      }
      const left = await removeLabLeftovers(tmpdir());
      io.stdout.write(`removed ${left.namespaces.length} namespace(s) ${left.namespaces.join(" ")}, ${left.processes.length} process(es), ${left.dirs.length} lab dir(s)\n`);
      return 0;
    }
    const missing = [
      ["tcpdump", "tcpdump", "--version"],
      ["nft", "nftables", "--version"],
      ["sysctl", "procps", "--version"],
    ].filter(([cmd, , arg]) => !haveCommand(cmd!, arg));
    if (missing.length) {
      io.stderr.write(
        `cpe-capture demo: the lab also needs ${missing.map(([c]) => c).join(", ")}: apt-get install -y ${missing.map(([, p]) => p).join(" ")} (or try \`cpe-capture demo --loopback\`)\n`,
      );
      return 2;
    }
  } else if (o.clean) {
    throw bad("--clean removes a namespace lab; it does not go with --loopback");
  }

  const reporter = new DemoReporter(io.stdout, o.json ?? false, t0);
  const interrupt = new AbortController();
  const hurry = new AbortController();
  const signals = installStopSignals((e) => {
    if (e.count === 1) {
      io.stderr.write(`\n${e.signal}: stopping the demo; collecting what there is and removing the lab (again to hurry)\n`);
      interrupt.abort();
    } else hurry.abort();
  });
  reporter.step(
    "start",
    o.loopback
      ? `capsync demo, loopback mode: ${devices} device(s), ${durationMs / 1000} s, alarm for device 1 after ${breakAfterMs / 1000} s`
      : `capsync demo lab: ${devices} device(s), ${durationMs / 1000} s; device 1's path to the management server breaks after ${breakAfterMs / 1000} s`,
    { mode: o.loopback ? "loopback" : "netns", devices, durationMs, breakAfterMs, output },
  );
  try {
    const common = { devices, durationMs, breakAfterMs, output, t0, reporter, signal: interrupt.signal, hurry: hurry.signal };
    const summary = o.loopback ? await runLoopbackLab(common, io) : await runNetnsLab({ ...common, lostAfterMs: LOST_AFTER_MS, keep: o.keep ?? false });
    const exitCode = summary.ok ? 0 : 1;
    if (o.json) io.stdout.write(JSON.stringify({ done: true, exitCode, summary }) + "\n");
    else io.stdout.write(formatSummary(summary));
    return exitCode;
  } finally {
    signals.dispose();
  }
}
