// The emulated switch's NX-API CLI endpoint (HTTPS, as nginx serves it on a Nexus): `POST /ins`
// with Basic auth and a JSON `ins_api` message of type `cli_show_ascii`; commands split on ";",
// one output per command (an object for one, an array for several), `code` "200"/"400", answered
// with HTTP 200. 401 and 404 come as nginx's own HTML pages. Not handled: cli_show (structured
// output: 501), cli_conf, bash, JSON-RPC, XML, chunked output, the nxapi_auth cookie.
import { createServer as createHttpsServer } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { basicCredentials, holdRequest, listenForTls, readBody, sameCredentials, sendJson } from "../http.js";
import type { TlsMaterial } from "../tls.js";
import type { NxosCli } from "./cli.js";
import { NXOS_MESSAGES, type NxosDeviceOptions, type NxosFault } from "./types.js";

function nginxPage(res: ServerResponse, status: number, title: string, headers: Record<string, string> = {}): void {
  const body = `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
  res.writeHead(status, { "content-type": "text/html", "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

export interface NxApiControl {
  mode: "on" | "404";
  /** Takes the fault for a request of this kind, using up one of its `times`. */
  takeFault(on: "probe" | "show"): NxosFault | undefined;
  record(command: string): void;
  closed(): boolean;
}

/** Starts NX-API on `address`; resolves to its port, a request count and how to close it. */
export async function startNxApi(o: NxosDeviceOptions, cli: NxosCli, tls: TlsMaterial, address: string, ctl: NxApiControl): Promise<{ port: number; requests(): number; close(): Promise<void> }> {
  let requests = 0;
  const held = new Set<Socket>();
  const server = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => void handle(req, res));

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    requests++;
    if (ctl.mode === "404" || req.url !== "/ins") return nginxPage(res, 404, NXOS_MESSAGES.notFound);
    if (!sameCredentials(basicCredentials(req), o.username, o.password)) return nginxPage(res, 401, NXOS_MESSAGES.auth, { "www-authenticate": 'Basic realm="Restricted"' });
    if (req.method !== "POST") return nginxPage(res, 405, "405 Not Allowed");
    const raw = await readBody(req, 256 * 1024);
    if (!raw) return;
    let msg: Record<string, unknown> | undefined;
    try {
      const j = JSON.parse(raw.toString("utf8")) as { ins_api?: unknown };
      if (typeof j.ins_api === "object" && j.ins_api !== null) msg = j.ins_api as Record<string, unknown>;
    } catch {
      /* answered below */
    }
    const envelope = (output: unknown) => ({ ins_api: { type: String(msg?.type ?? ""), version: "1.0", sid: "eoc", outputs: { output } } });
    if (!msg || typeof msg.input !== "string" || msg.version !== "1.0") return sendJson(res, 400, envelope({ code: "400", msg: "Request is invalid" }));
    const commands = msg.input.split(";").map((c) => c.trim()).filter((c) => c !== "");
    if (commands.length === 0) return sendJson(res, 400, envelope({ code: "400", msg: "Request is invalid" }));
    const fault = ctl.takeFault(commands[0] === "show version" ? "probe" : "show");
    if (fault?.kind === "timeout") return holdRequest(req, held);
    if (fault?.kind === "server-error") return sendJson(res, 500, envelope({ input: commands[0], code: "500", msg: NXOS_MESSAGES.serverError }));
    const outputs: Record<string, string>[] = [];
    for (const c of commands) {
      ctl.record(c);
      if (msg.type !== "cli_show_ascii") {
        outputs.push({ input: c, code: "501", msg: "Structured output unsupported" });
        continue;
      }
      const a = await cli.run(c);
      if ("invalid" in a) outputs.push({ input: c, code: "400", msg: NXOS_MESSAGES.inputError, clierror: `${NXOS_MESSAGES.invalidCommand}\n` });
      else outputs.push({ input: c, body: a.output, code: "200", msg: "Success" });
    }
    sendJson(res, 200, envelope(outputs.length === 1 ? outputs[0] : outputs));
  }

  const listener = await listenForTls(server, address, o.restPort ?? 0, ctl.closed);
  return {
    port: listener.port,
    requests: () => requests,
    close: () => listener.close(held),
  };
}
