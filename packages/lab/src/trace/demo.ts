// `cpe-capture demo --trace`: the trace lab (./lab.ts) up, two flows traced with the real `cpe-capture
// trace` (one per member of the ECMP pair, every hop checked against its namespace's kernel); then
// one hop drops the flow (nftables, routes intact) while the source sends it, and `trace --capture`
// finds where the packets vanish; then that hop loses its route and the trace stops there, naming
// it. Everything is removed at the end, also on Ctrl-C. Root needed (exit 2 without).
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import { ConfigError } from "@capsync/protocol";
import { installStopSignals } from "@capsync/cpe-capture/triggers/signals";
import type { Io } from "@capsync/cpe-capture/commands/run";
import type { DemoOptions } from "@capsync/cpe-capture/commands/demo";
import { netnsAvailable } from "../netns.js";
import { DemoReporter } from "../reporter.js";
import { checkHops, type CheckedHop } from "./check.js";
import { TraceLab, type LabFlow, type TraceRun } from "./lab.js";
import { dropOnInterface, removeRoute, removeTraceLeftovers, runningTraceLab } from "./network.js";
import { TRACE_PREFIX } from "./plan.js";
import { formatTraceSummary, hopTable, type TraceDemoSummary, type TracedFlow } from "./summary.js";

/** The hop the demo breaks: c8k-core2, the 4th on the path. */
const BREAK_HOP = 4;
const DST_LAN = "198.51.100.0/24";
const TRAFFIC_PPS = 50;
const CAPTURE_DURATION = "6s";

function bad(message: string): ConfigError {
  return new ConfigError(`cpe-capture demo --trace: ${message}`);
}

/** Two source ports the ECMP switch's kernel sends different ways (searched, not assumed: the hash is the kernel's). */
function ecmpFlows(lab: TraceLab): [LabFlow, LabFlow] {
  const p = lab.plan;
  const ecmp = p.switches[p.ecmp.switch - 1]!;
  const base = { src: p.src.address, dst: p.dst.address, proto: "udp" as const, dport: 5060 };
  const byMember = new Map<string, LabFlow>();
  for (let sport = 40000; sport < 40200 && byMember.size < 2; sport++) {
    const d = lab.kernel(ecmp, { ...base, sport });
    if (d.kind === "route" && !byMember.has(d.members[d.chosen]!.dev)) byMember.set(d.members[d.chosen]!.dev, { ...base, sport });
  }
  const [a, b] = p.ecmp.members.map((m) => byMember.get(m));
  if (!a || !b) throw bad(`the kernel of ${ecmp.hostname} sent 200 source ports all one way (is fib_multipath_hash_policy=1 honoured here?)`);
  return [a, b];
}

export async function traceDemo(o: DemoOptions, io: Io, needsRoot: string): Promise<number> {
  if (o.loopback) throw bad("--loopback does not go with --trace (the trace lab needs network namespaces)");
  if (o.keep) throw bad("--keep applies to the capture lab; the trace lab is always removed");
  const a = netnsAvailable();
  if (!a.ok) {
    io.stderr.write(`cpe-capture demo: ${needsRoot}\n  (here: ${a.reason})\n`);
    return 2;
  }
  if (o.clean) {
    const other = runningTraceLab(tmpdir());
    if (other !== undefined) {
      io.stderr.write(`cpe-capture demo: a trace lab is running (pid ${other}); stop it first\n`);
      return 1;
    }
    const left = await removeTraceLeftovers(tmpdir());
    io.stdout.write(`removed ${left.namespaces.length} namespace(s)${left.namespaces.map((n) => ` ${n}`).join("")}, ${left.processes.length} process(es), ${left.dirs.length} lab dir(s)\n`);
    return 0;
  }
  const output = resolve(o.output ?? "./runs");
  const t0 = Date.now();
  const r = new DemoReporter(io.stdout, o.json ?? false, t0);
  const interrupt = new AbortController();
  const signals = installStopSignals((e) => {
    if (e.count === 1) io.stderr.write(`\n${e.signal}: stopping the trace demo and removing the lab\n`);
    interrupt.abort();
  });
  const lab = new TraceLab();
  const p = lab.plan;
  const summary: TraceDemoSummary = { ok: false, problems: [], flows: [], brokenHop: undefined, wallMs: 0 };
  try {
    r.step("start", `capsync trace lab: ${p.switches.length} emulated switches (${p.switches.filter((s) => s.type === "nxos").length} NX-OS, ${p.switches.filter((s) => s.type === "iosxe").length} IOS-XE) in network namespaces ${TRACE_PREFIX}*, answering from their own kernel routes`, {
      mode: "trace",
    });
    const { leftovers } = await lab.start(interrupt.signal);
    if (leftovers.namespaces.length || leftovers.processes.length || leftovers.dirs.length) {
      r.step("leftovers", `removed what an earlier trace lab left: ${leftovers.namespaces.length} namespace(s), ${leftovers.processes.length} process(es), ${leftovers.dirs.length} dir(s)`, { ...leftovers });
    }
    const rows = p.switches.map(
      (s) =>
        `    ${String(s.index).padEnd(3)}${s.hostname.padEnd(12)}${(s.type === "nxos" ? "NX-OS" : "IOS-XE").padEnd(8)}${s.ns.padEnd(14)}mgmt ${s.mgmt.padEnd(15)}${s.interfaces.map((i) => `${i.name} ${i.address}/${i.prefix}`).join(", ")}`,
    );
    r.step("topology", `lab up: ${p.src.ns} ${p.src.address} → 6 routed switches → ${p.dst.ns} ${p.dst.address}; management LAN 203.0.113.0/24 (${p.oob}), orchestrator ${p.orch.ns} ${p.orch.address}\n${rows.join("\n")}`, {
      switches: p.switches.map((s) => ({ ns: s.ns, type: s.type, hostname: s.hostname, mgmt: s.mgmt, interfaces: s.interfaces.map((i) => ({ name: i.name, veth: i.veth, address: `${i.address}/${i.prefix}` })) })),
    });
    const ecmp = p.switches[p.ecmp.switch - 1]!;
    const flows = ecmpFlows(lab);
    r.step("ecmp", `ECMP pair at ${ecmp.hostname}: ${DST_LAN} over ${p.ecmp.members.join(" and ")} (kernel multipath, L4 hash): udp source port ${flows[0].sport} takes ${p.ecmp.members[0]}, ${flows[1].sport} takes ${p.ecmp.members[1]}`, {
      flows,
    });

    const traceOne = async (label: string, flow: LabFlow, extra: string[] = []): Promise<TracedFlow> => {
      r.step("trace", `${label}: cpe-capture ${[...lab.traceArgs(flow), ...extra].join(" ")} (in ${p.orch.ns}; password from CAPSYNC_TRACE_PASSWORD)`);
      const run: TraceRun = await lab.trace(flow, interrupt.signal, extra);
      if (interrupt.signal.aborted) throw bad("interrupted");
      const checked: CheckedHop[] = run.json ? checkHops(lab, flow, run.json.hops) : [];
      const t: TracedFlow = { label, flow, run, checked };
      const json = run.json;
      const head = json
        ? json.result === "complete"
          ? `complete: ${json.hops.length} hops in ${json.elapsedSeconds.toFixed(3)} s (${(json.elapsedSeconds / Math.max(1, json.hops.length)).toFixed(3)} s per hop; ${(run.wallMs / 1000).toFixed(3)} s with the process start)`
          : `INCOMPLETE (${json.result}) after ${json.hops.length} hop(s): ${json.reason}`
        : `no result (exit ${run.exitCode}): ${run.stderr.split("\n").slice(-3).join("; ")}`;
      const vanish = json?.capture ? `\n    capture: ${json.capture.vanish?.text ?? "not started"}${json.capture.folder ? ` (run folder ${json.capture.folder})` : ""}` : "";
      r.step("traced", `${label} ${head}\n${hopTable(checked)}${vanish}`, { label, exitCode: run.exitCode, wallMs: Math.round(run.wallMs), trace: json ?? null, kernelMatch: checked.map((c) => c.match) });
      return t;
    };

    summary.flows.push(await traceOne("trace 1", flows[0]));
    summary.flows.push(await traceOne("trace 2", flows[1]));
    const broken = p.switches[BREAK_HOP - 1]!;
    const out = broken.routes.find((x) => x.prefix === DST_LAN)!.nextHops[0]!.dev;
    const outName = broken.interfaces.find((i) => i.veth === out)!.name;
    await lab.startTraffic(flows[0], TRAFFIC_PPS, interrupt.signal);
    // Every other packet: the report matches packets seen on both sides of a hop to align the clocks, so it needs some to get through.
    dropOnInterface(broken, out, flows[0].src, flows[0].dst, 2);
    summary.brokenHop = { number: BREAK_HOP, hostname: broken.hostname, ns: broken.ns, how: `nftables drops every other packet of the flow leaving on ${outName} (${out}); its routes are intact` };
    r.step("break", `break 1: ${broken.hostname} (hop ${BREAK_HOP}) now drops every other packet of the flow on its way out of ${outName} (nftables in ${broken.ns}); the routes still say the path is fine; the source host sends ${TRAFFIC_PPS} packets/s`, {
      brokenHop: summary.brokenHop,
    });
    summary.flows.push(await traceOne(`trace 3 --capture`, flows[0], ["--capture", "--duration", CAPTURE_DURATION, "-o", output]));
    await lab.stopTraffic();
    removeRoute(broken, DST_LAN);
    r.step("break", `break 2: ${broken.hostname} also loses its route to ${DST_LAN} (ip route del in ${broken.ns})`, { brokenHop: { ...summary.brokenHop, how: `route to ${DST_LAN} removed` } });
    summary.flows.push(await traceOne("trace 4", flows[0]));
  } catch (e) {
    summary.problems.push(interrupt.signal.aborted ? "interrupted (Ctrl-C / SIGTERM): stopped early" : (e as Error).message);
  } finally {
    await lab.stop();
    r.step("teardown", "lab removed: namespaces, switch processes, temp files");
    signals.dispose();
  }
  summary.wallMs = Date.now() - t0;
  summary.ok = verdict(summary);
  const exitCode = summary.ok ? 0 : 1;
  if (o.json) io.stdout.write(JSON.stringify({ done: true, exitCode, summary }) + "\n");
  else io.stdout.write(formatTraceSummary(summary));
  return exitCode;
}

/** OK: both flows as the kernels route them, on different ECMP members; the capture finds the dropping hop; without its route the trace ends there, named. */
function verdict(s: TraceDemoSummary): boolean {
  const [one, two, captured, after] = s.flows;
  const complete = (t: TracedFlow | undefined) => t?.run.json?.result === "complete" && t.checked.length > 0 && t.checked.every((c) => c.match);
  if (!complete(one) || !complete(two)) {
    s.problems.push("a trace before the break did not complete as the kernels route it");
    return false;
  }
  const ecmpHop = (t: TracedFlow) => t.run.json!.hops[1]?.outInterface;
  if (ecmpHop(one!) === ecmpHop(two!)) s.problems.push("both flows left the ECMP switch on the same member");
  const b = s.brokenHop;
  const c = captured?.run.json;
  const found = Boolean(b && c?.result === "complete" && c.capture?.vanish?.text.includes(` and ${b.hostname}`));
  if (!found) s.problems.push(`trace --capture did not find the packets vanishing at hop ${b?.number} (${b?.hostname}): ${c?.capture?.vanish?.text ?? "no capture"}`);
  const j = after?.run.json;
  const named = Boolean(b && j && j.result !== "complete" && j.hops.length === b.number - 1 && j.reason?.includes(`hop ${b.number} (${b.hostname}`));
  if (!named) s.problems.push(`the trace after the route was removed did not stop at hop ${b?.number} (${b?.hostname})`);
  return s.problems.length === 0;
}
