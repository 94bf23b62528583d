// NX-API CLI as Cisco documents it (NX-OS 9.3/10.x Programmability Guide, "NX-API CLI"): one HTTPS
// `POST /ins` with Basic auth and a JSON `ins_api` message of type `cli_show_ascii`, several show
// commands joined by " ;", answered with `ins_api.outputs.output` — one object, or an array with
// one `{code, msg, body|clierror, input}` per command, `code` "200" for success. HTTP only: what
// the bodies mean is the parsers' (./parse/). Not used: cli_show (structured), JSON-RPC, chunking.
import type { HttpsTrust } from "@capsync/common";
import { DeviceHttp, type RestAnswer } from "../common/http.js";
import { jsonObject } from "../common/json.js";

export const INS_PATH = "/ins";

/**
 * The request body for `commands`. Keys in Cisco's documented order: some NX-OS releases misread a
 * message whose `input` comes before `type`.
 * @example insApiRequest(["show hostname"]) → '{"ins_api":{"version":"1.0","type":"cli_show_ascii","chunk":"0","sid":"1","input":"show hostname","output_format":"json"}}'
 */
export function insApiRequest(commands: readonly string[]): string {
  return JSON.stringify({ ins_api: { version: "1.0", type: "cli_show_ascii", chunk: "0", sid: "1", input: commands.join(" ;"), output_format: "json" } });
}

/** One command's answer. `code` is an HTTP-style status as a string ("200", "400", "501"). */
export interface InsOutput {
  code: string;
  msg: string;
  input: string | undefined;
  body: string;
  clierror: string | undefined;
}

export type InsApiAnswer = { ok: true; outputs: InsOutput[] } | { ok: false; code: "not-json" | "not-object" | "bad-field"; field?: string };

/** `{"ins_api": {"outputs": {"output": {…} | [{…}, …]}}}` → the outputs in command order. Never throws. */
export function parseInsApi(text: string): InsApiAnswer {
  const j = jsonObject(text);
  if (!j.ok) return j;
  const ins = j.value.ins_api;
  if (typeof ins !== "object" || ins === null || Array.isArray(ins)) return { ok: false, code: "bad-field", field: "ins_api" };
  const outputs = (ins as Record<string, unknown>).outputs;
  if (typeof outputs !== "object" || outputs === null) return { ok: false, code: "bad-field", field: "outputs" };
  const raw = (outputs as Record<string, unknown>).output;
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (list.length === 0) return { ok: false, code: "bad-field", field: "output" };
  const out: InsOutput[] = [];
  for (const o of list) {
    if (typeof o !== "object" || o === null) return { ok: false, code: "bad-field", field: "output" };
    const r = o as Record<string, unknown>;
    const str = (k: string) => (typeof r[k] === "string" ? (r[k] as string) : undefined);
    const code = str("code") ?? (typeof r.code === "number" ? String(r.code) : undefined);
    if (code === undefined) return { ok: false, code: "bad-field", field: "code" };
    // A structured body (cli_show) is not what was asked for; kept as JSON text rather than refused.
    const body = str("body") ?? (r.body !== undefined && r.body !== null ? JSON.stringify(r.body) : "");
    out.push({ code, msg: str("msg") ?? "", input: str("input"), body, clierror: str("clierror") });
  }
  return { ok: true, outputs: out };
}

/**
 * What an error page says, in one short line: an ins_api `msg`, an HTML `<title>` (NX-API's nginx
 * answers 401/404 with its own pages), or the first text line.
 */
export function describeAnswer(text: string): string {
  const ins = parseInsApi(text);
  if (ins.ok) {
    const o = ins.outputs.find((x) => x.code !== "200") ?? ins.outputs[0]!;
    return [o.msg, o.clierror?.trim()].filter(Boolean).join(": ").slice(0, 200);
  }
  const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1];
  if (title) return title.trim().slice(0, 200);
  return (text.replace(/<[^>]*>/g, " ").split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "").slice(0, 200);
}

export interface NxApiOptions {
  address: string;
  restPort: number;
  username: string;
  password: string;
  tls: HttpsTrust;
}

export class NxApiClient {
  private readonly http: DeviceHttp;

  constructor(opts: NxApiOptions) {
    this.http = new DeviceHttp({ ...opts, accept: "application/json" });
  }

  get baseUrl(): string {
    return this.http.baseUrl;
  }

  scrub(text: string): string {
    return this.http.scrub(text);
  }

  /** One POST /ins running `commands`; any HTTP status is returned as data, transport failures are typed. */
  show(commands: readonly string[], timeoutMs: number): Promise<RestAnswer> {
    return this.http.exchange(`POST ${INS_PATH}`, timeoutMs, { method: "POST", path: INS_PATH, headers: { "Content-Type": "application/json" }, body: insApiRequest(commands) });
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
