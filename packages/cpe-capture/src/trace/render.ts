// What `cpe-capture trace` prints: flowtracker's blocks character for character (FLOW OVERVIEW, one
// block per hop between lines of #, "Elapsed Time for Hop"), then one closing line of its own; and
// the single JSON object of --json.
import type { FlowQuery } from "../drivers/hop.js";
import type { HopReport, TraceResult } from "./walker.js";

const RULE = "#".repeat(77);

export type TraceFlow = FlowQuery & { vrf: string };

/** flowtracker's intro as `print` wrote it: a blank line, the block, a blank line. */
export function renderOverview(flow: TraceFlow): string {
  return [
    "",
    "FLOW OVERVIEW:",
    "",
    `SRC: ${flow.src}`,
    `DEST: ${flow.dst}`,
    `PROTO: ${flow.proto ?? "N/A"}`,
    `SRC_PORT: ${flow.sport ?? "N/A"}`,
    `DEST_PORT: ${flow.dport ?? "N/A"}`,
    `VRF: ${flow.vrf || "default"}`,
    "",
    "",
  ].join("\n");
}

/** Python's str() of a float: the shortest form, "2.0" not "2". */
export function pythonSeconds(s: number): string {
  const t = String(Number(s.toFixed(6)));
  return /[.e]/.test(t) ? t : `${t}.0`;
}

/** The number of a resets line ("6 interface resets" → "6"), as flowtracker shows it. */
function resetsCount(resets: string | undefined): string {
  if (resets === undefined) return "N/A";
  return /\d+/.exec(resets)?.[0] ?? resets;
}

/** One hop: flowtracker's block, its trailing blank lines, and the elapsed time line. */
export function renderHop(hop: HopReport, dest: string): string {
  const tx = hop.stats?.txLines ?? (hop.stats ? Object.entries(hop.stats.txStats).map(([k, v]) => `${v} ${k}`) : undefined);
  const counters =
    hop.stats && tx && tx.length > 0
      ? [`  RESETS: ${resetsCount(hop.stats.resets)}`, "  TX_STATS:", ...tx.map((l) => `    ${l}`), "", "", "", ""]
      : [`  RESETS: ${resetsCount(hop.stats?.resets)}`, "  TX_STATS: N/A", "", ""];
  return [
    "",
    RULE,
    "",
    `CONNECTED TO: ${hop.hostname} (${hop.address})`,
    `HOP NUMBER: ${hop.number}`,
    "",
    `LOAD_SHARE_MODE: ${hop.loadShareMode ?? "N/A"}`,
    `VRF: ${hop.vrf}`,
    `OUT_IF: ${hop.outInterface}`,
    `DEST: ${dest}`,
    `NEXT_HOP: ${hop.nextHop}`,
    "",
    "OUT_IF:",
    ...counters,
    `Elapsed Time for Hop: ${pythonSeconds(hop.elapsedSeconds)} seconds.`,
    "",
  ].join("\n");
}

/** After the last block: capsync's one-line verdict (flowtracker prints none). */
export function renderClosing(r: TraceResult, dest: string): string {
  const n = r.hops.length;
  const time = `${r.elapsedSeconds.toFixed(3)} seconds`;
  if (r.result === "complete") {
    const last = r.hops[n - 1];
    const how = last?.local ? `${dest} is ${last.hostname} itself` : `${dest} is attached to ${last?.hostname} on ${last?.outInterface}`;
    return ["", RULE, "", `TRACE COMPLETE: ${n} hop${n === 1 ? "" : "s"} in ${time}; ${how}.`, ""].join("\n");
  }
  const notes = r.hops.flatMap((h) => h.notes.map((x) => `  hop ${h.number}: ${x}`));
  return ["", RULE, "", `TRACE ${r.result === "stopped" ? "STOPPED" : "INCOMPLETE"} (${r.result}) after ${n} hop${n === 1 ? "" : "s"} in ${time}:`, `  ${r.reason ?? r.result}`, ...notes, ""].join(
    "\n",
  );
}

/** --json: one object. */
export function traceJson(flow: TraceFlow, r: TraceResult): Record<string, unknown> {
  return {
    flow: { src: flow.src, dest: flow.dst, proto: flow.proto ?? null, srcPort: flow.sport ?? null, destPort: flow.dport ?? null, vrf: flow.vrf },
    hops: r.hops.map((h) => ({
      hop: h.number,
      address: h.address,
      connectedVia: h.connectedVia,
      type: h.type,
      hostname: h.hostname,
      vrf: h.vrf,
      loadShareMode: h.loadShareMode ?? null,
      outInterface: h.outInterface,
      nextHop: h.nextHop,
      attached: h.attached,
      local: h.local,
      resets: h.stats?.resets === undefined ? null : Number(resetsCount(h.stats.resets)),
      txStats: h.stats?.txStats ?? null,
      routeText: h.routeText,
      notes: h.notes,
      elapsedSeconds: Number(h.elapsedSeconds.toFixed(6)),
    })),
    result: r.result,
    reason: r.reason ?? null,
    elapsedSeconds: Number(r.elapsedSeconds.toFixed(6)),
  };
}
