// The trace lab running: the network (./network.ts), one emulated switch process per switch
// namespace (./switch-main.ts, started like the demo lab's emulators: children.ts), and the real
// `cpe-capture trace --json` run in the orchestrator's namespace against the switches' management
// addresses (--use_mgmt: CDP names each next hop's). Used by `cpe-capture demo --trace` and its test.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LabProcess } from "../children.js";
import { LabError, namespacePids, terminate } from "../netns.js";
import { ipIn, kernelDecision, type KernelDecision, type KernelFlow } from "./kernel-route.js";
import { buildTraceNetwork, removeTraceLeftovers, runningTraceLab, teardownTraceNetwork, TRACE_PID_FILE } from "./network.js";
import { planTraceLab, switchSpec, TRACE_DIR_PREFIX, traceNamespaceNames, type LabSwitch, type TracePlan } from "./plan.js";

const READY_TIMEOUT_MS = 20_000;
const TRACE_TIMEOUT_MS = 60_000;
const USERNAME = "admin";
const PASSWORD_ENV = "CSTRACE_PASSWORD";

/** One hop of `cpe-capture trace --json` (the fields the lab reads). */
export interface TraceJsonHop {
  hop: number;
  address: string;
  connectedVia: string;
  type: string;
  hostname: string;
  outInterface: string;
  nextHop: string;
  attached: boolean;
  local: boolean;
  resets: number | null;
  txStats: Record<string, string> | null;
  notes: string[];
  elapsedSeconds: number;
}

export interface TraceJson {
  flow: { src: string; dest: string; proto: number | null; srcPort: number | null; destPort: number | null; vrf: string };
  hops: TraceJsonHop[];
  result: string;
  reason: string | null;
  elapsedSeconds: number;
  /** With --capture: where packets vanish along the path (trace/capture.ts). */
  capture?: { started: boolean; folder?: string; exitCode?: number; vanish?: { text: string; between?: [number, number]; lost?: number; sent?: number }; failed?: string[] };
}

export interface TraceRun {
  argv: string[];
  exitCode: number | null;
  /** The process's wall time (node start included). */
  wallMs: number;
  json: TraceJson | undefined;
  stderr: string;
}

export interface LabFlow {
  src: string;
  dst: string;
  proto: "udp" | "tcp";
  sport: number;
  dport: number;
}

const PROTO_NUMBER = { tcp: 6, udp: 17 } as const;

export function kernelFlow(f: LabFlow): KernelFlow {
  return { src: f.src, dst: f.dst, proto: PROTO_NUMBER[f.proto], sport: f.sport, dport: f.dport };
}

function resolveBin(specifier: string): string {
  try {
    return fileURLToPath(import.meta.resolve(specifier));
  } catch (e) {
    throw new LabError(`cannot find ${specifier} (run \`npm run build\` in the capsync checkout first)`, { cause: e });
  }
}

export class TraceLab {
  readonly plan: TracePlan = planTraceLab();
  private readonly procs: LabProcess[] = [];
  private built = false;
  private stopped = false;
  private labDir = "";
  private env: NodeJS.ProcessEnv = {};

  /** Leftovers of an earlier lab removed, the network built, every switch answering. */
  async start(signal?: AbortSignal): Promise<{ leftovers: { namespaces: string[]; processes: number[]; dirs: string[] } }> {
    const tmpRoot = tmpdir();
    const other = runningTraceLab(tmpRoot);
    if (other !== undefined) throw new LabError(`another trace lab is running (pid ${other}); wait for it to finish or stop it first`);
    const leftovers = await removeTraceLeftovers(tmpRoot);
    const cpeCli = resolveBin("@capsync/cpe-capture");
    this.labDir = mkdtempSync(join(tmpRoot, TRACE_DIR_PREFIX));
    chmodSync(this.labDir, 0o700);
    writeFileSync(join(this.labDir, TRACE_PID_FILE), `${process.pid}\n`);
    mkdirSync(join(this.labDir, "logs"));
    this.cpeCli = cpeCli;
    // One fresh password for every switch (the trace asks for one); only ever in the environment.
    this.env = { ...process.env, [PASSWORD_ENV]: randomBytes(12).toString("base64url") };
    buildTraceNetwork(this.plan);
    this.built = true;
    const main = fileURLToPath(new URL("./switch-main.js", import.meta.url));
    const waits = this.plan.switches.map((s) => {
      const file = join(this.labDir, `${s.hostname}.json`);
      writeFileSync(file, JSON.stringify(switchSpec(this.plan, s, USERNAME, PASSWORD_ENV), null, 2), { mode: 0o600 });
      const p = new LabProcess({ name: s.hostname, ns: s.ns, argv: [process.execPath, main, file], env: this.env, logBase: join(this.labDir, "logs", s.hostname) });
      this.procs.push(p);
      return p.waitForLine(/^ready /, READY_TIMEOUT_MS, signal);
    });
    await Promise.all(waits);
    return { leftovers };
  }

  private cpeCli = "";

  switchByHostname(hostname: string): LabSwitch | undefined {
    return this.plan.switches.find((s) => s.hostname === hostname);
  }

  /** What the switch's kernel does with the flow (the reference every hop is checked against). */
  kernel(s: LabSwitch, f: LabFlow): KernelDecision {
    return kernelDecision(kernelFlow(f), ipIn(s.ns));
  }

  /** The command line of the trace, as a user would type it in the orchestrator's namespace. */
  traceArgs(f: LabFlow): string[] {
    return [
      "trace", "--src", f.src, "--dest", f.dst, "--proto", f.proto, "--src_port", String(f.sport), "--dest_port", String(f.dport),
      "--target", this.plan.switches[0]!.mgmt, "--user", USERNAME, "--mode", "auto", "--use_mgmt", "--type", "nxos,iosxe", "--insecure", "--timeout", "10",
    ];
  }

  /** Runs the real `cpe-capture trace ... --json` in the orchestrator's namespace (password from CAPSYNC_TRACE_PASSWORD). */
  async trace(f: LabFlow, signal?: AbortSignal, extra: string[] = []): Promise<TraceRun> {
    const argv = [...this.traceArgs(f), ...extra, "--json"];
    const n = this.procs.length;
    const t0 = performance.now();
    const p = new LabProcess({
      name: `trace-${n}`,
      ns: this.plan.orch.ns,
      argv: [process.execPath, this.cpeCli, ...argv],
      env: { ...this.env, CAPSYNC_TRACE_PASSWORD: this.env[PASSWORD_ENV] },
      logBase: join(this.labDir, "logs", `trace-${n}`),
    });
    this.procs.push(p);
    const timer = setTimeout(() => void p.stop("SIGTERM", 2000), TRACE_TIMEOUT_MS);
    const onAbort = () => void p.stop("SIGTERM", 2000);
    signal?.addEventListener("abort", onAbort, { once: true });
    const { code } = await p.exited;
    const wallMs = performance.now() - t0;
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    // Let the tail catch the last lines (it reads the log files on a short timer).
    await new Promise((r) => setTimeout(r, 60));
    const lines = p.tail(200).split("\n");
    let json: TraceJson | undefined;
    for (const l of lines) {
      if (!l.startsWith("{")) continue;
      try {
        json = JSON.parse(l) as TraceJson;
      } catch {
        /* not the result */
      }
    }
    return { argv, exitCode: code, wallMs, json, stderr: lines.filter((l) => !l.startsWith("{")).join("\n").trim() };
  }

  /** The flow's packets from the source host (UDP, `pps` a second) until stopTraffic or stop. */
  async startTraffic(f: LabFlow, pps: number, signal?: AbortSignal): Promise<void> {
    const main = fileURLToPath(new URL("./traffic-main.js", import.meta.url));
    const p = new LabProcess({ name: "traffic", ns: this.plan.src.ns, argv: [process.execPath, main, f.src, String(f.sport), f.dst, String(f.dport), String(pps)], env: this.env, logBase: join(this.labDir, "logs", "traffic") });
    this.procs.push(p);
    this.traffic = p;
    await p.waitForLine(/^sending /, READY_TIMEOUT_MS, signal);
  }

  async stopTraffic(): Promise<void> {
    await this.traffic?.stop("SIGTERM", 2000);
    this.traffic = undefined;
  }

  private traffic: LabProcess | undefined;

  /** Processes, namespaces and temp files gone; safe twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.procs.map((p) => p.stop("SIGTERM", 3000)));
    if (this.built) {
      await terminate(traceNamespaceNames(this.plan).flatMap(namespacePids), 2000);
      teardownTraceNetwork(this.plan);
    }
    if (this.labDir) rmSync(this.labDir, { recursive: true, force: true });
  }
}
