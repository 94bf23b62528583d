// The IOS-XE Embedded Packet Capture state machine (defined → active → stopped → exported) over the
// synthetic UDP flows of the interfaces: per capture point its attachment, match, buffer (linear or
// circular) and limits, the packets a capture window holds, the `show monitor capture` text, and exports to
// bootflash: as classic pcap files.
import { performance } from "node:perf_hooks";
import { encodePcapHeader, encodePcapRecord, LINKTYPE_ETHERNET } from "@capsync/pcap";
import { matchFrame, type Match } from "./acl.js";
import { bootflashName, type Direction, type MonitorCommand } from "./monitor-command.js";
import type { EpcSource } from "./transit.js";
import type { CapturePointState, CapturePointView } from "./types.js";

interface Window {
  start: bigint;
  end?: bigint;
}
interface CapturePoint {
  name: string;
  interfaces: Map<string, Direction>;
  match?: { match: Match; text: string };
  bufferMb: number;
  circular: boolean;
  limit: CapturePointView["limit"];
  state: CapturePointState;
  windows: Window[];
  exportedTo?: string;
}

const nowMicros = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));

/** A pcap record whose captured length may be shorter than the frame (limit packet-len). */
function pcapRecordCut(tsMicros: bigint, frame: Buffer, caplen: number): Buffer {
  return encodePcapRecord(tsMicros * 1000n, frame.subarray(0, Math.min(caplen, frame.length)), { originalLength: frame.length });
}

/** Most sequence numbers looked at per window: bounds work for very long captures. */
const MAX_SEQ_PER_WINDOW = 2_000_000;

export class Epc {
  readonly points = new Map<string, CapturePoint>();
  readonly bootflash = new Map<string, { data: Buffer; mtime: Date }>();
  lastExport: { name: string; data: Buffer } | undefined;
  /** Interface name → the synthetic flow crossing it. */
  private readonly flows: ReadonlyMap<string, EpcSource>;
  constructor(flows: ReadonlyMap<string, EpcSource>) {
    this.flows = flows;
  }

  /**
   * The packets the flows of the attached interfaces put in one window, in time order (several
   * flows are merged by timestamp), direction already applied; at most MAX_SEQ_PER_WINDOW per flow.
   */
  private *windowPackets(cp: CapturePoint, start: bigint, end: bigint): Generator<{ ts: bigint; frame: Buffer }> {
    const streams = [...this.flows]
      .filter(([name]) => cp.interfaces.has(name))
      .map(([name, source]) => {
        const seq = source.firstSeq?.(start) ?? 0;
        return { source, dir: cp.interfaces.get(name)!, seq, due: Math.min(source.endSeq?.(end) ?? source.packetsDue(end - start), seq + MAX_SEQ_PER_WINDOW) };
      });
    const skip = (s: (typeof streams)[number]) =>
      // absent ones never reached the router; even: device → peer (SyntheticPacketSource)
      s.source.present?.(s.seq) === false || (s.dir !== "both" && (s.dir === "out") !== (s.source.outbound?.(s.seq) ?? s.seq % 2 === 0));
    const wanted = (s: (typeof streams)[number]) => {
      while (s.seq < s.due && skip(s)) s.seq++;
      return s.seq < s.due;
    };
    for (;;) {
      let next: (typeof streams)[number] | undefined;
      let nextTs = 0n;
      for (const s of streams) {
        if (!wanted(s)) continue;
        const ts = s.source.timestamp(start, s.seq);
        if (!next || ts < nextTs) [next, nextTs] = [s, ts];
      }
      if (!next) return;
      yield { ts: nextTs, frame: next.source.frame(next.seq++) };
    }
  }

  /** The packets a capture point holds (and when a packets limit was hit), computed from its windows. */
  collect(cp: CapturePoint, until: bigint): { records: Buffer[]; bytes: number; limitAt?: bigint } {
    const out: Buffer[] = [];
    let bytes = 0;
    const max = cp.bufferMb * 1_000_000;
    if (!cp.match) return { records: out, bytes };
    const caplen = cp.limit.packetLen ?? 65535;
    let every = 0;
    for (const w of cp.windows) {
      let end = w.end ?? until;
      if (cp.limit.duration !== undefined) {
        const cap = w.start + BigInt(cp.limit.duration) * 1_000_000n;
        if (end > cap) end = cap;
      }
      for (const { ts, frame } of this.windowPackets(cp, w.start, end)) {
        if (!matchFrame(cp.match.match, frame)) continue;
        if (cp.limit.every !== undefined && every++ % cp.limit.every !== 0) continue;
        const rec = pcapRecordCut(ts, frame, caplen);
        if (bytes + rec.length > max) {
          if (!cp.circular) continue; // linear buffer full: the rest is dropped
          while (out.length > 0 && bytes + rec.length > max) bytes -= out.shift()!.length;
        }
        out.push(rec);
        bytes += rec.length;
        if (cp.limit.packets !== undefined && out.length >= cp.limit.packets && !cp.circular) return { records: out, bytes, limitAt: ts };
      }
    }
    return { records: out, bytes };
  }

  /** Applies the limits of an active capture point: it stops by itself at its duration or packet count. */
  refresh(cp: CapturePoint): void {
    if (cp.state !== "active") return;
    const w = cp.windows[cp.windows.length - 1]!;
    const now = nowMicros();
    if (cp.limit.duration !== undefined && now >= w.start + BigInt(cp.limit.duration) * 1_000_000n) {
      w.end = w.start + BigInt(cp.limit.duration) * 1_000_000n;
      cp.state = "stopped";
      return;
    }
    if (cp.limit.packets !== undefined) {
      const c = this.collect(cp, now);
      if (c.limitAt !== undefined) {
        w.end = c.limitAt + 1n;
        cp.state = "stopped";
      }
    }
  }

  view(cp: CapturePoint): CapturePointView {
    this.refresh(cp);
    const v: CapturePointView = {
      name: cp.name,
      state: cp.state,
      interfaces: [...cp.interfaces].map(([name, direction]) => ({ name, direction })),
      match: cp.match?.text,
      bufferMb: cp.bufferMb,
      circular: cp.circular,
      limit: { ...cp.limit },
      packets: this.collect(cp, nowMicros()).records.length,
    };
    if (cp.exportedTo) v.exportedTo = cp.exportedTo;
    return v;
  }

  pcap(cp: CapturePoint): Buffer {
    const c = this.collect(cp, nowMicros());
    return Buffer.concat([encodePcapHeader({ linktype: LINKTYPE_ETHERNET, snaplen: cp.limit.packetLen ?? 65535 }), ...c.records]);
  }

  /** Runs a parsed `monitor capture` command; returns the CLI output. */
  run(cmd: MonitorCommand): string {
    let cp = this.points.get(cmd.name);
    if (cp) this.refresh(cp);
    const defines = cmd.interfaces.length > 0 || cmd.match !== undefined || cmd.buffer !== undefined || cmd.limit !== undefined;
    if (defines) {
      if (cp?.state === "active") return `% Capture point ${cmd.name} is active; stop it before changing its parameters\n`;
      if (!cp) {
        if (this.points.size >= 8) return `% Maximum number of capture points (8) reached\n`;
        cp = { name: cmd.name, interfaces: new Map(), bufferMb: 10, circular: false, limit: {}, state: "defined", windows: [] };
        this.points.set(cmd.name, cp);
      }
      for (const i of cmd.interfaces) cp.interfaces.set(i.name, i.direction);
      if (cmd.match) cp.match = cmd.match;
      if (cmd.buffer) {
        if (cmd.buffer.size !== undefined) cp.bufferMb = cmd.buffer.size;
        cp.circular = cmd.buffer.circular;
      }
      if (cmd.limit) cp.limit = { ...cp.limit, ...cmd.limit };
    }
    const a = cmd.action;
    if (!a) return "";
    if (!cp) return `Capture point ${cmd.name} does not exist\n`;
    switch (a.kind) {
      case "start":
        if (cp.state === "active") return `% Capture point ${cp.name} is already active\n`;
        if (cp.interfaces.size === 0) return `% Capture point ${cp.name} has no attachment point; add 'interface <name> {in|out|both}'\n`;
        if (!cp.match) return `% Capture point ${cp.name} has no filter; add 'match any' or a match filter\n`;
        cp.windows.push({ start: nowMicros() });
        cp.state = "active";
        return `Started capture point : ${cp.name}\n`;
      case "stop": {
        if (cp.state !== "active") return `Capture point ${cp.name} not active\n`;
        const w = cp.windows[cp.windows.length - 1]!;
        w.end = nowMicros();
        cp.state = "stopped";
        const n = this.collect(cp, w.end).records.length;
        const secs = Number((w.end - w.start) / 1_000_000n);
        return (
          `Capture statistics collected at software:\n` +
          `        Capture duration - ${secs} seconds\n` +
          `        Packets received - ${n}\n` +
          `        Packets dropped  - 0\n` +
          `        Packets oversized - 0\n\n` +
          `Stopped capture point : ${cp.name}\n`
        );
      }
      case "clear":
        if (cp.state === "active") cp.windows = [{ start: nowMicros() }];
        else cp.windows = [];
        return "";
      case "stop_export":
        return `% No export location configured for capture point ${cp.name}; use 'monitor capture ${cp.name} export <location>'\n`;
      case "export": {
        if (cp.state === "active") return `% Capture point ${cp.name} is active; stop it before exporting\n`;
        const file = bootflashName(a.location);
        if (!file) return `% Export to ${a.location} is not supported (bootflash:<file> only)\n`;
        const data = this.pcap(cp);
        this.bootflash.set(file, { data, mtime: new Date() });
        this.lastExport = { name: file, data };
        cp.exportedTo = `bootflash:${file}`;
        cp.state = "exported";
        return `Exported Successfully\n`;
      }
    }
  }

  remove(name: string): string {
    const cp = this.points.get(name);
    if (!cp) return `Capture point ${name} does not exist\n`;
    this.points.delete(name);
    return "";
  }

  delete(path: string): string {
    const file = bootflashName(path);
    if (!file || !this.bootflash.delete(file)) return `%Error deleting ${path} (No such file or directory)\n`;
    return "";
  }

  show(cp: CapturePoint): string {
    const v = this.view(cp);
    const lines = [`Status Information for Capture ${v.name}`, `  Target Type:`];
    for (const i of v.interfaces) lines.push(` Interface: ${i.name}, Direction: ${i.direction.toUpperCase()}`);
    lines.push(`   Status : ${v.state === "active" ? "Active" : "Inactive"}`);
    lines.push(`  Filter Details:`);
    const m = cp.match?.match;
    if (!m) lines.push(`   Filter not attached`);
    else if (m.kind === "any") lines.push(`   Capture all packets`);
    else {
      const t = cp.match!.text.split(" ");
      lines.push(`   ${m.family === 4 ? "IPv4" : "IPv6"}`, `    Protocol: ${m.proto ?? "any"}`, `    Filter: ${t.slice(1).join(" ")}`);
    }
    lines.push(`  Buffer Details:`, `   Buffer Type: ${v.circular ? "CIRCULAR" : "LINEAR (default)"}`, `   Buffer Size (in MB): ${v.bufferMb}`);
    lines.push(
      `  Limit Details:`,
      `   Number of Packets to capture: ${v.limit.packets ?? 0}${v.limit.packets ? "" : " (no limit)"}`,
      `   Packet Capture duration: ${v.limit.duration ?? 0}${v.limit.duration ? "" : " (no limit)"}`,
      `   Packet Size to capture: ${v.limit.packetLen ?? 0}${v.limit.packetLen ? "" : " (no limit)"}`,
      `   Packet sampling rate: ${v.limit.every ?? 0}${v.limit.every ? "" : " (no sampling)"}`,
      `   Packets in buffer: ${v.packets}`,
    );
    return lines.join("\n") + "\n";
  }
}
