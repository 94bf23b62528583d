// The trace lab (`cpe-capture demo --trace`): six namespaces with emulated NX-OS and IOS-XE switches
// answering from their own kernel routes. The path the real `cpe-capture trace` discovers must be the
// kernel's, hop by hop — checked here with `ip -j route get` run by this test in each namespace —
// including which member of the ECMP pair each of two flows takes; after a route is removed the
// trace must stop at, and name, that hop. Then the demo end to end as a process: `trace --capture`
// must find the hop that drops packets (real packets, tcpdump on the switches' veths); also
// interrupted by Ctrl-C, and without root. Nothing may be left: namespaces (`ip netns list`), processes.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TraceLab, type LabFlow, type TraceRun } from "@capsync/lab/trace/lab";
import type { LabSwitch } from "@capsync/lab/trace/plan";
import { CPE_CLI } from "../helpers/cli-proc.js";
import { processesMatching } from "../helpers/procs.js";

const SRC = "192.0.2.10";
const DST = "198.51.100.10";

function traceNamespaces(): string[] {
  return execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(/\s+/)[0]!)
    .filter((n) => n.startsWith("cstrace-"));
}

/** Switch and traffic processes, traces, and the switches' tcpdumps (`tcpdump -i ethN -Q out -U -n -w - ip`). */
function labProcesses(): number[] {
  return processesMatching(
    (a) =>
      a.some((x) => x.includes("capsync-tracelab-") || x.endsWith("trace/switch-main.js") || x.endsWith("trace/traffic-main.js")) ||
      (/(^|\/)tcpdump$/.test(a[0]!) && a.join(" ").includes("-Q out -U -n -w - ip")),
  ).map((p) => p.pid);
}

/** The kernel's answer for the flow in the switch's namespace, asked by the test itself. */
function kernelRoute(sw: LabSwitch, f: LabFlow): { dev: string; gateway?: string } {
  // The flow enters on the interface towards the previous hop (or the source host).
  const iif = sw.interfaces.find((i) => i.peer?.switch === sw.index - 1 || i.peer?.host === "cstrace-src")!.veth;
  const out = execFileSync("ip", ["-n", sw.ns, "-j", "route", "get", f.dst, "from", f.src, "iif", iif, "ipproto", "17", "sport", String(f.sport), "dport", String(f.dport)], { encoding: "utf8" });
  return (JSON.parse(out) as { dev: string; gateway?: string }[])[0]!;
}

/** Ethernet1/3, Eth1/3, GigabitEthernet3 → eth3 (the lab's naming: veth ethN is port N). */
function vethOf(name: string): string {
  const m = /^(?:Eth(?:ernet)?1\/|GigabitEthernet|Gi)(\d+)$/i.exec(name);
  return m ? `eth${m[1]}` : name;
}

const flow = (sport: number): LabFlow => ({ src: SRC, dst: DST, proto: "udp", sport, dport: 5060 });

describe("trace lab: the discovered path is the kernels' (root, network namespaces)", () => {
  const lab = new TraceLab();
  const ecmp = lab.plan.switches[lab.plan.ecmp.switch - 1]!;
  const flows: LabFlow[] = [];
  const runs: TraceRun[] = [];

  beforeAll(async () => {
    await lab.start();
    // Two source ports that the ECMP switch's kernel sends different ways (its own hash decides).
    const seen = new Set<string>();
    for (let sport = 41000; sport < 41200 && flows.length < 2; sport++) {
      const dev = kernelRoute(ecmp, flow(sport)).dev;
      if (!seen.has(dev)) {
        seen.add(dev);
        flows.push(flow(sport));
      }
    }
  }, 60_000);

  afterAll(async () => {
    await lab.stop();
    expect(traceNamespaces()).toEqual([]);
    expect(labProcesses()).toEqual([]);
  }, 30_000);

  it("the lab: 6 switches, NX-OS and IOS-XE mixed, an ECMP pair whose members the kernel's L4 hash splits", () => {
    expect(lab.plan.switches.map((s) => `${s.hostname}:${s.type}`)).toEqual([
      "n9k-leaf1:nxos", "n9k-spine1:nxos", "c8k-core1:iosxe", "c8k-core2:iosxe", "n9k-spine2:nxos", "c8k-edge1:iosxe",
    ]);
    expect(traceNamespaces().sort()).toEqual(["cstrace-dst", "cstrace-oob", "cstrace-orch", "cstrace-src", ...lab.plan.switches.map((s) => s.ns)].sort());
    expect(flows).toHaveLength(2);
    expect(new Set(flows.map((f) => kernelRoute(ecmp, f).dev))).toEqual(new Set(["eth2", "eth3"]));
  });

  it("every hop's OUT_IF and NEXT_HOP equal `ip route get` in that namespace, for two flows on different ECMP members", async () => {
    for (const f of flows) {
      const run = await lab.trace(f);
      runs.push(run);
      expect(run.exitCode).toBe(0);
      const j = run.json!;
      expect(j.result).toBe("complete");
      expect(j.hops.map((h) => h.hostname)).toEqual(lab.plan.switches.map((s) => s.hostname));
      expect(j.hops.map((h) => h.type)).toEqual(["nxos", "nxos", "iosxe", "iosxe", "nxos", "iosxe"]);
      for (const h of j.hops) {
        const sw = lab.switchByHostname(h.hostname)!;
        const k = kernelRoute(sw, f);
        expect({ hop: h.hop, out: vethOf(h.outInterface), next: h.nextHop }).toEqual({ hop: sw.index, out: k.dev, next: k.gateway ?? DST });
      }
      // --use_mgmt: every hop after the first was reached on the management address its CDP neighbor advertised.
      expect(j.hops.map((h) => h.connectedVia)).toEqual(lab.plan.switches.map((s) => s.mgmt));
      const last = j.hops[5]!;
      expect(last).toMatchObject({ attached: true, nextHop: DST, outInterface: "GigabitEthernet2" });
    }
    const ecmpOut = runs.map((r) => r.json!.hops[1]!.outInterface);
    expect(ecmpOut.map(vethOf).sort()).toEqual(["eth2", "eth3"]);
    expect(runs.map((r) => r.json!.hops[1]!.nextHop).sort()).toEqual(["192.0.2.134", "192.0.2.138"]);
    // The 6-hop timing the closing note quotes.
    for (const r of runs) {
      const j = r.json!;
      console.log(`6-hop trace: ${j.elapsedSeconds.toFixed(3)} s (${(j.elapsedSeconds / 6).toFixed(3)} s per hop: ${j.hops.map((h) => h.elapsedSeconds.toFixed(3)).join(", ")}); process wall ${(r.wallMs / 1000).toFixed(3)} s`);
    }
  }, 90_000);

  it("after c8k-core2 loses its route the trace ends there: 3 hops, then hop 4 named (exit 1)", async () => {
    const core2 = lab.plan.switches[3]!;
    execFileSync("ip", ["-n", core2.ns, "route", "del", "198.51.100.0/24"]);
    expect(() => execFileSync("ip", ["-n", core2.ns, "route", "get", DST, "from", SRC, "iif", "eth1"], { stdio: "pipe" })).toThrow();
    const run = await lab.trace(flows[0]!);
    expect(run.exitCode).toBe(1);
    const j = run.json!;
    expect(j.result).toBe("failed");
    expect(j.hops.map((h) => h.hostname)).toEqual(["n9k-leaf1", "n9k-spine1", "c8k-core1"]);
    expect(j.reason).toContain("hop 4 (c8k-core2, 192.0.2.142) did not say where the flow goes");
    expect(j.reason).toContain("no route for 198.51.100.10");
    // The hops before it still answer as their kernels route.
    for (const h of j.hops) {
      const k = kernelRoute(lab.switchByHostname(h.hostname)!, flows[0]!);
      expect([vethOf(h.outInterface), h.nextHop]).toEqual([k.dev, k.gateway ?? DST]);
    }
  }, 60_000);
});

function runDemo(args: string[], o: { asNobody?: boolean; interruptOn?: RegExp } = {}) {
  const argv = [CPE_CLI, "demo", "--trace", ...args];
  const [cmd, cmdArgs] = o.asNobody ? ["setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, ...argv]] : [process.execPath, argv];
  const child = spawn(cmd, cmdArgs, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let interrupted = false;
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (o.interruptOn && !interrupted && o.interruptOn.test(out)) {
      interrupted = true;
      child.kill("SIGINT");
    }
  });
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const t = setTimeout(() => child.kill("SIGKILL"), 140_000);
    child.once("close", (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

describe("cpe-capture demo --trace (the real binary)", () => {
  it("traces both ECMP members, finds the dropping hop with --capture, names it after its route goes, exits 0, removes everything (--json)", async () => {
    const output = mkdtempSync(join(tmpdir(), "cstrace-test-runs-"));
    try {
      const res = await runDemo(["--json", "-o", output]);
      expect(res.err).toBe("");
      expect(res.code).toBe(0);
      const lines = res.out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.map((l) => l.demo ?? "done")).toEqual(["start", "topology", "ecmp", "trace", "traced", "trace", "traced", "break", "trace", "traced", "break", "trace", "traced", "teardown", "done"]);
      type Json = { result: string; hops: { outInterface: string }[]; reason: string | null; capture?: { folder: string; vanish: { text: string; between: number[]; lost: number; sent: number } } };
      const done = lines.at(-1) as { exitCode: number; summary: { ok: boolean; problems: string[]; brokenHop: { number: number; hostname: string }; flows: { run: { json: Json } }[] } };
      expect(done.summary.problems).toEqual([]);
      expect(done.exitCode).toBe(0);
      expect(done.summary.ok).toBe(true);
      expect(done.summary.brokenHop).toMatchObject({ number: 4, hostname: "c8k-core2" });
      const [one, two, captured, after] = done.summary.flows.map((f) => f.run.json);
      expect([one, two, captured, after].map((j) => [j!.result, j!.hops.length])).toEqual([["complete", 6], ["complete", 6], ["complete", 6], ["failed", 3]]);
      expect(one!.hops[1]!.outInterface).not.toBe(two!.hops[1]!.outInterface);
      // Captured on the IOS-XE hops' out interfaces (c8k-core1, c8k-core2, c8k-edge1): every other packet gone at c8k-core2.
      const v = captured!.capture!.vanish;
      expect(v.text).toMatch(/^packets vanish between c8k-core1 \(GigabitEthernet3\) and c8k-core2: lost \d+\/\d+$/);
      expect(v.between).toEqual([1, 2]);
      expect(v.lost / v.sent).toBeGreaterThan(0.4);
      expect(v.lost / v.sent).toBeLessThan(0.6);
      expect(existsSync(join(captured!.capture!.folder, "report.txt"))).toBe(true);
      expect(after!.reason).toContain("hop 4 (c8k-core2, 192.0.2.142) did not say where the flow goes");
      expect(traceNamespaces()).toEqual([]);
      expect(labProcesses()).toEqual([]);
    } finally {
      rmSync(output, { recursive: true, force: true });
    }
  }, 150_000);

  it("Ctrl-C during the first trace: stops, removes the lab, exit 1", async () => {
    const res = await runDemo([], { interruptOn: /trace 1: cpe-capture trace/ });
    expect(res.code).toBe(1);
    expect(res.err).toContain("SIGINT: stopping the trace demo and removing the lab");
    expect(res.out).toContain("lab removed: namespaces, switch processes, temp files");
    expect(res.out).toContain("problem: interrupted (Ctrl-C / SIGTERM): stopped early");
    expect(traceNamespaces()).toEqual([]);
    expect(labProcesses()).toEqual([]);
  }, 100_000);

  it("without root: the lab's clear message, exit 2, nothing created", async () => {
    const res = await runDemo([], { asNobody: true });
    expect(res.code).toBe(2);
    expect(res.err).toContain(
      "cpe-capture demo: the demo lab needs root and `ip netns` (iproute2) to create network namespaces; run it as root, or try `cpe-capture demo --loopback` (no root, emulated captures)\n  (here: not running as root)",
    );
    expect(res.out).toBe("");
    expect(traceNamespaces()).toEqual([]);
  }, 30_000);
});
