// What `cpe-capture demo --trace` prints: one table per trace (the trace's OUT_IF and NEXT_HOP beside
// the kernel's answer in that switch's namespace), and the closing summary (path before and after
// the break, where the capture saw packets vanish, the hop named, the timing of the 6-hop trace).
import type { CheckedHop } from "./check.js";
import type { LabFlow, TraceRun } from "./lab.js";

export interface TracedFlow {
  label: string;
  flow: LabFlow;
  run: TraceRun;
  checked: CheckedHop[];
}

export interface TraceDemoSummary {
  ok: boolean;
  problems: string[];
  flows: TracedFlow[];
  brokenHop: { number: number; hostname: string; ns: string; how: string } | undefined;
  wallMs: number;
}

export function hopTable(checked: CheckedHop[]): string {
  const head = `    ${"hop".padEnd(5)}${"switch".padEnd(12)}${"type".padEnd(7)}${"connected via".padEnd(15)}${"OUT_IF".padEnd(19)}${"NEXT_HOP".padEnd(16)}${"time".padEnd(9)}kernel (ip route get in its namespace)`;
  const rows = checked.map(({ hop: h, kernel: k, match }) => {
    const kernel = "none" in k ? `no route: ${k.none}` : `${k.dev} via ${k.via} = ${k.expectedInterface}`;
    return `    ${String(h.hop).padEnd(5)}${h.hostname.padEnd(12)}${h.type.padEnd(7)}${h.connectedVia.padEnd(15)}${h.outInterface.padEnd(19)}${h.nextHop.padEnd(16)}${`${h.elapsedSeconds.toFixed(3)} s`.padEnd(9)}${kernel}  ${match ? "same" : "DIFFERENT"}`;
  });
  return [head, ...rows].join("\n");
}

export function formatTraceSummary(s: TraceDemoSummary): string {
  const out = ["", `capsync trace lab summary: ${(s.wallMs / 1000).toFixed(1)} s`, ""];
  for (const t of s.flows) {
    const j = t.run.json;
    const path = j ? j.hops.map((h) => `${h.hostname} ${h.outInterface}`).join(" → ") : "(no result)";
    const end = j ? (j.result === "complete" ? `→ ${t.flow.dst}` : `✗ ${j.reason}`) : `exit ${t.run.exitCode}`;
    out.push(`  ${t.label.padEnd(18)} udp ${t.flow.src}:${t.flow.sport} → ${t.flow.dst}:${t.flow.dport}`, `    ${path} ${end}`);
    if (j?.result === "complete") {
      const same = t.checked.every((c) => c.match);
      out.push(`    ${same ? "every hop as the kernel routes it" : "NOT as the kernel routes it"}; ${j.hops.length} hops in ${j.elapsedSeconds.toFixed(3)} s, ${(j.elapsedSeconds / j.hops.length).toFixed(3)} s per hop (${(t.run.wallMs / 1000).toFixed(3)} s with the process start)`);
    }
  }
  if (s.brokenHop) {
    out.push("", `  broken hop       hop ${s.brokenHop.number} ${s.brokenHop.hostname} (${s.brokenHop.ns}): ${s.brokenHop.how}, then its route removed`);
    const captured = s.flows[2]?.run.json;
    if (captured?.capture) out.push(`  the capture says ${captured.capture.vanish?.text ?? "nothing (not started)"}${captured.capture.folder ? `\n                   run folder ${captured.capture.folder} (report.txt, merged.pcapng)` : ""}`);
    const after = s.flows[3]?.run.json;
    if (after && after.result !== "complete") out.push(`  the trace says   partial path of ${after.hops.length} hop(s), then ${after.reason}`);
  }
  if (s.problems.length) out.push("", ...s.problems.map((p) => `  problem: ${p}`));
  out.push("", `result: ${s.ok ? "OK: both flows traced as the kernels route them (one per ECMP member, NX-OS and IOS-XE hops); the capture and the trace both named the broken hop" : "FAILED"}`, "");
  return out.join("\n");
}
