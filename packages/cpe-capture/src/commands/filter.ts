// `cpe-capture filter <run folder> [field=value ...] [options]`: change the filter of a running
// capture. The words are polycube's (`src= dst= l4proto= sport= dport= snaplen=`), as options or
// as field=value; the running orchestrator checks them like a config's capture section and
// restarts each device and its agents into a new file segment (run/segments.ts).
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { controlRequest } from "../run/control.js";
import type { DeviceOutcome, FilterAnswer } from "../run/segments.js";
import type { Io } from "./run.js";

export interface FilterOptions {
  device?: string[];
  src?: string;
  dst?: string;
  l4proto?: string;
  sport?: string;
  dport?: string;
  snaplen?: string;
  direction?: string;
  spec?: string;
  clear?: boolean;
  json?: boolean;
}

/** field=value words and their place in the capture section (polycube's names and the spec's). */
const WORDS: Record<string, [("filter" | undefined), string]> = {
  src: ["filter", "src"],
  dst: ["filter", "dst"],
  l4proto: ["filter", "protocol"],
  protocol: ["filter", "protocol"],
  sport: ["filter", "sport"],
  dport: ["filter", "dport"],
  snaplen: [undefined, "snaplen"],
  direction: [undefined, "direction"],
  // polycube's `capture=ingress|egress|bidirectional` is the capture's direction.
  capture: [undefined, "direction"],
};

/** Digits become numbers, so ports and lengths are checked as the config's are. */
const value = (v: string): string | number => (/^\d{1,10}$/.test(v) ? Number(v) : v);

class UsageError extends Error {}

function readSpec(arg: string): Record<string, unknown> {
  const text = arg.trim().startsWith("{") ? arg : existsSync(arg) ? readFileSync(arg, "utf8") : undefined;
  if (text === undefined) throw new UsageError(`--spec: ${arg} is neither a file nor a JSON object`);
  let v: unknown;
  try {
    v = parseYaml(text);
  } catch (e) {
    throw new UsageError(`--spec: ${(e as Error).message.split("\n")[0]}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new UsageError("--spec: expected a capture section like {\"filter\": {\"protocol\": \"udp\", \"dport\": 5060}}");
  return v as Record<string, unknown>;
}

/** The request body from the words, the options and --spec (options and words win over --spec). */
export function filterBody(words: string[], o: FilterOptions): Record<string, unknown> {
  const body: Record<string, unknown> = o.spec ? readSpec(o.spec) : {};
  const filter: Record<string, unknown> = typeof body.filter === "object" && body.filter !== null ? { ...(body.filter as Record<string, unknown>) } : {};
  let touched = body.filter !== undefined;
  const set = (key: string, v: string, from: string) => {
    const place = WORDS[key];
    if (!place) throw new UsageError(`${from}: unknown field '${key}'; expected ${Object.keys(WORDS).join(", ")}`);
    if (place[0] === "filter") {
      filter[place[1]] = value(v);
      touched = true;
    } else body[place[1]] = value(v);
  };
  for (const w of words) {
    const m = /^([A-Za-z0-9]+)=(.*)$/.exec(w);
    if (!m) throw new UsageError(`'${w}': expected field=value (src=, dst=, l4proto=, sport=, dport=, snaplen=, direction=)`);
    set(m[1]!.toLowerCase(), m[2]!, `'${w}'`);
  }
  for (const k of ["src", "dst", "l4proto", "sport", "dport", "snaplen", "direction"] as const) if (o[k] !== undefined) set(k, o[k]!, `--${k}`);
  if (o.clear) {
    if (Object.keys(filter).length) throw new UsageError("--clear: captures without a filter; leave out the filter fields");
    body.filter = {};
  } else if (touched) body.filter = filter;
  if (Object.keys(body).length === 0) throw new UsageError("nothing to change: give field=value words (src=, dst=, l4proto=, sport=, dport=, snaplen=, direction=), their options, --spec or --clear");
  if (o.device?.length) body.devices = o.device;
  return body;
}

function describe(d: DeviceOutcome): string {
  const who = d.name === d.device ? d.device : `${d.name} (${d.device})`;
  const kept = `segment ${d.kept.segment} kept: ${d.kept.files.join(", ") || "no files"}`;
  if (!d.ok) return `${who}: ${d.error ?? "failed"}; ${kept}`;
  // A device's plan can be several CLI lines: one line per device here.
  return `${who}: segment ${d.segment} capturing with device filter '${d.filter.device.split("\n").join("; ")}'${d.filter.agents !== undefined ? `, agents '${d.filter.agents}'` : ""}; ${kept}`;
}

export async function filterCommand(dir: string, words: string[], o: FilterOptions, io: Io): Promise<number> {
  let body: Record<string, unknown>;
  try {
    body = filterBody(words, o);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr.write(`cpe-capture filter: ${e.message}\n`);
    return 2;
  }
  const folder = resolve(dir);
  if (!existsSync(resolve(folder, "manifest.json"))) {
    io.stderr.write(`cpe-capture filter: ${folder} is not a capsync run folder (no manifest.json)\n`);
    return 2;
  }
  let answer: FilterAnswer;
  try {
    answer = (await controlRequest(folder, "filter", body)) as FilterAnswer;
  } catch (e) {
    io.stderr.write(`cpe-capture filter: ${(e as Error).message}\n`);
    return 2;
  }
  const b = answer.body;
  if (o.json) io.stdout.write(JSON.stringify({ status: answer.status, ...b }) + "\n");
  else {
    for (const i of b.issues ?? []) io.stderr.write(`${i}\n`);
    for (const d of b.devices ?? []) (d.ok ? io.stdout : io.stderr).write(`${describe(d)}\n`);
    for (const s of b.skipped ?? []) io.stdout.write(`skipped ${s}\n`);
    if (b.error && !b.issues?.length) io.stderr.write(`cpe-capture filter: ${b.error}\n`);
  }
  return answer.status === 200 ? 0 : answer.status === 502 ? 1 : 2;
}
