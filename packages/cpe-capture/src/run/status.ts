// Live status while running: a compact table redrawn in place on a TTY, plain lines otherwise,
// JSON lines with --json (for scripts).
import type { Writable } from "node:stream";
import { formatSkew } from "@capsync/protocol";
import type { EventRow } from "../artifacts/events.js";
import { VERSION } from "../version.js";
import type { DeviceRecord, PathHopRecord } from "./model.js";

export type StatusMode = "table" | "lines" | "json";

export class StatusView {
  private readonly rows = new Map<string, DeviceRecord>();
  private lastDrawn = 0;
  private timer?: NodeJS.Timeout;
  private dirty = false;
  private lastLine = new Map<string, string>();

  constructor(
    private readonly out: Writable,
    readonly mode: StatusMode,
  ) {}

  update(rec: DeviceRecord): void {
    this.rows.set(rec.device, rec);
    if (this.mode === "lines") {
      const line = summaryLine(rec);
      if (this.lastLine.get(rec.device) !== line) {
        this.lastLine.set(rec.device, line);
        this.out.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
      }
    } else if (this.mode === "table") {
      this.dirty = true;
      // At most ~8 redraws a second, however many devices change.
      this.timer ??= setInterval(() => this.draw(), 125);
    }
  }

  event(row: EventRow): void {
    if (this.mode === "json") this.out.write(JSON.stringify(row) + "\n");
  }

  private draw(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const lines = renderTable([...this.rows.values()]);
    // Move up over the previous table and redraw it.
    const up = this.lastDrawn ? `\x1b[${this.lastDrawn}A` : "";
    this.out.write(up + lines.map((l) => `\x1b[2K${l}\n`).join(""));
    this.lastDrawn = lines.length;
  }

  private closed = false;

  close(): void {
    // Idempotent: a second redraw would overwrite the final summary printed after the table.
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.mode === "table") {
      this.dirty = true;
      this.draw();
    }
  }
}

function agentSummary(rec: DeviceRecord): string {
  if (!rec.agents.length) return "-";
  const counts = new Map<string, number>();
  for (const a of rec.agents) counts.set(a.capture, (counts.get(a.capture) ?? 0) + 1);
  return [...counts].map(([k, n]) => (rec.agents.length === 1 ? k : `${n} ${k}`)).join(", ");
}

/** Agents that created the alarm forwarding for this device, e.g. "1/1", "0/1 failed". */
function registration(rec: DeviceRecord): string {
  if (!rec.agents.length) return "-";
  const active = rec.agents.filter((a) => a.registration === "active").length;
  const failed = rec.agents.filter((a) => a.registration === "failed").length;
  return `${active}/${rec.agents.length}${failed ? ` (${failed} failed)` : ""}`;
}

/**
 * The device's agents' clocks against this host's, the farthest off first: "+95.2 s" (one agent
 * measured), "+95.2 s (2)" (the worst of two); "-" before any CSYNC/1 answer.
 */
export function agentClock(rec: DeviceRecord): string {
  const skews = rec.agents.flatMap((a) => (a.clock ? [a.clock.skewMs] : []));
  if (!skews.length) return "-";
  const worst = skews.reduce((w, s) => (Math.abs(s) > Math.abs(w) ? s : w));
  return `${formatSkew(worst)}${skews.length > 1 ? ` (${skews.length})` : ""}`;
}

function summaryLine(rec: DeviceRecord): string {
  const clock = agentClock(rec);
  return `${rec.device} [${rec.type}] device=${rec.state} registered=${registration(rec)} server=${agentSummary(rec)}${clock === "-" ? "" : ` agent-clock=${clock.replace(" s", "s").replace(" (", "(")}`} events=${rec.events}${rec.description ? ` — ${rec.description}` : ""}`;
}

/** The table's title: the product and its version, as the original opened with " Version: 1.0.6 … CPE CAPTURE APP". */
export const TABLE_TITLE = `capsync cpe-capture ${VERSION}`;

export function renderTable(recs: DeviceRecord[]): string[] {
  const header = ["DEVICE", "TYPE", "DEVICE CAPTURE", "REGISTERED", "SERVER CAPTURE", "AGENT CLOCK", "EVENTS", "LAST TASK"];
  const body = recs.map((r) => [r.device, r.type, r.state, registration(r), agentSummary(r), agentClock(r), String(r.events), r.tasks.at(-1) ? `${r.tasks.at(-1)!.name} ${r.tasks.at(-1)!.status}` : "-"]);
  const widths = header.map((h, i) => Math.min(40, Math.max(h.length, ...body.map((b) => b[i]!.length))));
  const fmt = (cells: string[]) => cells.map((c, i) => c.slice(0, widths[i]).padEnd(widths[i]!)).join("  ").trimEnd();
  const n = recs.length;
  const done = recs.filter((r) => r.state === "done" || r.state === "failed").length;
  return [`${TABLE_TITLE} — ${n} device${n === 1 ? "" : "s"}, ${done} finished`, fmt(header), ...body.map(fmt)];
}

export function finalSummary(recs: DeviceRecord[], folder: string, path?: PathHopRecord[]): string {
  const lines = recs.map((r) => {
    const dev = r.deviceFile ? `${r.deviceFile.name} (${r.deviceFile.bytes} B)` : "no device file";
    const srv = r.agents.flatMap((a) => a.files.map((f) => `${f.name}${f.remote ? ` [on ${a.agent}]` : ` (${f.bytes} B)`}`));
    return `  ${r.device.padEnd(16)} ${r.status.padEnd(9)} stop: ${r.stopReason ?? "-"}; ${dev}; server: ${srv.length ? srv.join(", ") : "none"}`;
  });
  const hops = (path ?? []).map((h) => `  hop ${h.hop} ${(h.kind === "device" ? h.name : `agent ${h.agent}`).padEnd(22)} ${h.capture.padEnd(9)} ${h.files.map((f) => `${f.name}${f.remote ? " [on the server]" : ` (${f.bytes} B)`}`).join(", ") || h.error || "no file"}`);
  return [`run folder: ${folder}`, ...lines, ...(hops.length ? ["  flow path:", ...hops] : [])].join("\n");
}
