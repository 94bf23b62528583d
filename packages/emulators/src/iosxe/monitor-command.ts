// The IOS-XE `monitor capture <name> ...` command grammar (EPC, IOS-XE 17.x): attachment points,
// the match filter, buffer, limits and one action, and the bootflash: paths exports may name.
// Not handled: access-list/class-map filters, control-plane attachment points, `file` options.
import { parseMatch, type Match, type Parsed } from "./acl.js";
import type { CapturePointView } from "./types.js";

export type Direction = "in" | "out" | "both";
export type Action = { kind: "start" | "stop" | "stop_export" | "clear" } | { kind: "export"; location: string };
export interface MonitorCommand {
  name: string;
  interfaces: { name: string; direction: Direction }[];
  match?: { match: Match; text: string };
  buffer?: { size?: number; circular: boolean };
  limit?: CapturePointView["limit"];
  action?: Action;
}

export const LIMIT_RANGES: Record<string, [number, number]> = {
  duration: [1, 1_000_000],
  every: [2, 100_000],
  "packet-len": [64, 9500],
  packets: [1, 100_000],
  pps: [1, 1_000_000],
};
export const NAME = /^[A-Za-z0-9_-]{1,32}$/;

/** The words after `monitor capture`. `resolveInterface` maps a typed name to the device's interface. */
export function parseMonitor(words: string[], resolveInterface: (n: string) => string | undefined): Parsed<MonitorCommand> {
  const name = words[0];
  if (name === undefined || !NAME.test(name)) return { ok: false, at: 0, message: "expected a capture point name" };
  const cmd: MonitorCommand = { name, interfaces: [] };
  let i = 1;
  if (i >= words.length) return { ok: false, at: i, message: "incomplete command" };
  while (i < words.length) {
    const w = words[i]!;
    switch (w) {
      case "interface": {
        const iface = words[i + 1] === undefined ? undefined : resolveInterface(words[i + 1]!);
        if (!iface) return { ok: false, at: i + 1, message: `no such interface ${words[i + 1] ?? ""}`.trim() };
        const dir = words[i + 2];
        if (dir !== "in" && dir !== "out" && dir !== "both") return { ok: false, at: i + 2, message: "expected in, out or both" };
        cmd.interfaces.push({ name: iface, direction: dir });
        i += 3;
        break;
      }
      case "match": {
        const m = parseMatch(words, i + 1);
        if (!m.ok) return m;
        cmd.match = m.value;
        i = m.next;
        break;
      }
      case "buffer": {
        const b: NonNullable<MonitorCommand["buffer"]> = { circular: false };
        i++;
        let any = false;
        for (;;) {
          if (words[i] === "circular") {
            b.circular = true;
            i++;
          } else if (words[i] === "size") {
            const n = words[i + 1];
            if (n === undefined || !/^\d{1,3}$/.test(n) || Number(n) < 1 || Number(n) > 100) return { ok: false, at: i + 1, message: "buffer size is 1..100 MB" };
            b.size = Number(n);
            i += 2;
          } else break;
          any = true;
        }
        if (!any) return { ok: false, at: i, message: "expected circular or size" };
        cmd.buffer = b;
        break;
      }
      case "limit": {
        const l: CapturePointView["limit"] = {};
        i++;
        while (words[i] !== undefined && words[i]! in LIMIT_RANGES) {
          const k = words[i]!;
          const [lo, hi] = LIMIT_RANGES[k]!;
          const n = words[i + 1];
          if (n === undefined || !/^\d{1,7}$/.test(n) || Number(n) < lo || Number(n) > hi) return { ok: false, at: i + 1, message: `limit ${k} is ${lo}..${hi}` };
          const key = k === "packet-len" ? "packetLen" : (k as "duration" | "every" | "packets" | "pps");
          l[key] = Number(n);
          i += 2;
        }
        if (Object.keys(l).length === 0) return { ok: false, at: i, message: "expected duration, every, packet-len, packets or pps" };
        cmd.limit = { ...cmd.limit, ...l };
        break;
      }
      case "start":
      case "stop":
      case "stop_export":
      case "clear":
        if (cmd.action) return { ok: false, at: i, message: "one action per command" };
        cmd.action = { kind: w };
        i++;
        break;
      case "export": {
        if (cmd.action) return { ok: false, at: i, message: "one action per command" };
        const loc = words[i + 1];
        if (loc === undefined) return { ok: false, at: i + 1, message: "expected an export location" };
        cmd.action = { kind: "export", location: loc };
        i += 2;
        break;
      }
      default:
        return { ok: false, at: i, message: w === "access-list" || w === "class-map" || w === "control-plane" ? `${w} is not emulated` : `unexpected ${w}` };
    }
  }
  return { ok: true, value: cmd, next: i };
}

/** "bootflash:x.pcap", "bootflash:/x.pcap", "/bootflash:/x.pcap", "flash:x.pcap" → "x.pcap". */
export function bootflashName(path: string): string | undefined {
  const m = /^\/?(?:bootflash|flash):\/?([A-Za-z0-9._-]{1,100})$/.exec(path);
  if (!m || m[1] === "." || m[1] === "..") return undefined;
  return m[1];
}
