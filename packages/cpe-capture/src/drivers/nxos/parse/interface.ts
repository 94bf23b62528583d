// `show interface <name>` (NX-OS 9.3/10.x, Nexus 9000): the `N interface resets` line and the
// counters block under `  TX` (flowtracker prints both per hop). The TX block ends at the next line
// indented no deeper than `  TX` itself, or at the end of the text.
import { firstLine, lines, type Parsed } from "./issue.js";

/** @example { name: "Ethernet1/52", state: "up", resets: "6 interface resets", txBlock: "    1552 unicast packets …", txStats: { "unicast packets": "1552", … } } */
export interface InterfaceCounters {
  name: string;
  /** "up", "down" … as in "<name> is up". */
  state: string | undefined;
  resets: string | undefined;
  /** The TX counter lines as printed (indentation kept, trailing blank lines dropped). */
  txBlock: string;
  /** Each "<n> <label>" pair of the TX block, by label. */
  txStats: Record<string, string>;
}

/** "1552 unicast packets  233683 multicast packets" → [["unicast packets","1552"],["multicast packets","233683"]]. */
export function counterPairs(line: string): [string, string][] {
  const out: [string, string][] = [];
  for (const part of line.trim().split(/\s+(?=\d+\s+[A-Za-z])/)) {
    const m = /^(\d+)\s+(.+?)\s*$/.exec(part);
    if (m) out.push([m[2]!, m[1]!]);
  }
  return out;
}

export function parseShowInterface(text: string): Parsed<InterfaceCounters> {
  const all = lines(text);
  const head = all.map((l) => /^(\S+) is (.+?)\s*$/.exec(l)).find((m) => m !== null);
  if (!head) return { ok: false, code: "no-interface", message: `no '<interface> is <state>' line: ${firstLine(text)}` };
  const resets = all.map((l) => /^\s*(\d+ interface resets)\s*$/.exec(l)?.[1]).find((x) => x !== undefined);
  const at = all.findIndex((l) => /^\s*TX\s*$/.test(l));
  if (at < 0) return { ok: false, code: "no-tx", message: `${head[1]}: no TX counters block` };
  const depth = /^\s*/.exec(all[at]!)![0].length;
  const block: string[] = [];
  for (const l of all.slice(at + 1)) {
    if (l.trim() !== "" && /^\s*/.exec(l)![0].length <= depth) break;
    block.push(l);
  }
  while (block.length > 0 && block[block.length - 1]!.trim() === "") block.pop();
  const txStats: Record<string, string> = {};
  for (const l of block) for (const [k, v] of counterPairs(l)) txStats[k] = v;
  return { ok: true, value: { name: head[1]!, state: head[2]!.split(/[\s(]/)[0], resets, txBlock: block.join("\n"), txStats } };
}
