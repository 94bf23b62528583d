// The IOS-XE RESTCONF server (RFC 8040 over HTTPS, JSON only): the Cisco-IOS-XE-rpc monitor, no and
// delete operations (run as their CLI equivalents), GETs of the native model's version, hostname,
// license UDI and interface VRFs, /.well-known/host-meta, and errors in the ietf-restconf:errors
// envelope. Not handled: any other YANG model or data node, XML, PATCH/PUT/DELETE of data, NETCONF.
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { basicCredentials, holdRequest, listenForTls, readBody, sameCredentials, sendJson } from "../http.js";
import type { TlsMaterial } from "../tls.js";
import type { DeviceContext } from "./context.js";
import type { ExecCli } from "./exec-cli.js";
import { parseMatch } from "./acl.js";
import { LIMIT_RANGES, NAME } from "./monitor-command.js";
import { IOSXE_MESSAGES, type RpcRecord } from "./types.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const YANG_JSON = "application/yang-data+json";

function sendYang(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, status, body, headers, YANG_JSON, 2);
}

/** RFC 8040 section 7.1: the errors envelope. */
function restconfErrors(type: "transport" | "rpc" | "protocol" | "application", tag: string, message: string, path?: string): unknown {
  return { "ietf-restconf:errors": { error: [{ "error-type": type, "error-tag": tag, ...(path ? { "error-path": path } : {}), "error-message": message }] } };
}

const MAX_BODY = 64 * 1024;

function isEmptyLeaf(v: unknown): boolean {
  return Array.isArray(v) && v.length === 1 && v[0] === null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Starts the device's HTTPS listener on `address`; resolves to its port and how to close it. */
export async function startRestconf(ctx: DeviceContext, cli: ExecCli, tls: TlsMaterial, address: string): Promise<{ port: number; close(): Promise<void> }> {
  const { opts, hostname, model, version, serial, interfaces, epc, st, record, takeFault } = ctx;
  const { execCli, resolveInterface } = cli;
  const nativeVersion = version.replace(/^(\d+)\.0?(\d+).*$/, "$1.$2");
  const RPC_PREFIX = "/restconf/operations/Cisco-IOS-XE-rpc:";
  const NATIVE = "/restconf/data/Cisco-IOS-XE-native:native";

  function nativeBody(fields: string | null): Record<string, unknown> {
    const all: Record<string, unknown> = {
      version: nativeVersion,
      hostname,
      license: { udi: { pid: model, sn: serial } },
      interface: { GigabitEthernet: interfaces.filter((i) => i.name.startsWith("GigabitEthernet")).map((i) => ({ name: i.name.slice("GigabitEthernet".length), ...(i.vrf ? { vrf: { forwarding: i.vrf } } : {}) })) },
    };
    if (!fields) return all;
    const out: Record<string, unknown> = {};
    for (const f of fields.split(";")) {
      const [top, ...rest] = f.split("/");
      let v: unknown = all[top!];
      for (const k of rest) v = isObject(v) ? v[k] : undefined;
      if (v === undefined) continue;
      // Rebuild the path down to the selected node.
      let node: Record<string, unknown> = out;
      const keys = [top!, ...rest];
      keys.forEach((k, i) => {
        if (i === keys.length - 1) node[k] = v;
        else node = (node[k] ??= {}) as Record<string, unknown>;
      });
    }
    return out;
  }

  function validateMonitorInput(input: Record<string, unknown>): { words: string[] } | { tag: string; message: string; path: string } {
    const base = "/Cisco-IOS-XE-rpc:monitor/input";
    const bad = (leaf: string, message: string, tag = "invalid-value") => ({ tag, message, path: `${base}/${leaf}` });
    const known = ["capture", "match", "interface", "both", "in", "out", "buffer", "limit", "start", "stop", "stop_export", "export", "access-list", "control-plane", "inner", "pcm-tracer"];
    for (const k of Object.keys(input)) if (!known.includes(k)) return bad(k, `unknown element ${k}`, "unknown-element");
    for (const k of ["access-list", "control-plane", "inner", "pcm-tracer"]) if (k in input) return bad(k, `${k} is not supported by this device`, "operation-not-supported");
    const name = input.capture;
    if (typeof name !== "string" || !NAME.test(name)) return bad("capture", "capture: a capture point name (1..32 letters, digits, _ -) is required");
    const words = [name];
    const dirs = (["both", "in", "out"] as const).filter((d) => d in input);
    for (const d of dirs) if (!isEmptyLeaf(input[d])) return bad(d, `${d} is an empty leaf: [null]`);
    if (dirs.length > 1) return bad(dirs[1]!, "only one of both, in, out");
    if (input.interface !== undefined) {
      if (typeof input.interface !== "string") return bad("interface", "interface must be a string");
      const iface = resolveInterface(input.interface);
      if (!iface) return bad("interface", `Invalid interface name: ${input.interface} does not exist on this device`);
      if (dirs.length === 0) return bad("interface", "interface needs a direction: both, in or out");
      words.push("interface", iface, dirs[0]!);
    } else if (dirs.length > 0) return bad(dirs[0]!, "a direction needs an interface");
    if (input.match !== undefined) {
      if (typeof input.match !== "string") return bad("match", "match must be a string");
      const mw = input.match.trim().split(/\s+/);
      const m = parseMatch(mw, 0);
      if (!m.ok || m.next !== mw.length) return bad("match", `invalid match filter '${input.match}'${m.ok ? "" : `: ${m.message}`}`);
      words.push("match", ...mw);
    }
    if (input.buffer !== undefined) {
      const b = input.buffer;
      if (!isObject(b)) return bad("buffer", "buffer must be a container");
      for (const k of Object.keys(b)) if (k !== "size" && k !== "circular") return bad(`buffer/${k}`, `unknown element ${k}`, "unknown-element");
      words.push("buffer");
      if (b.circular !== undefined) {
        if (!isEmptyLeaf(b.circular)) return bad("buffer/circular", "circular is an empty leaf: [null]");
        words.push("circular");
      }
      if (b.size !== undefined) {
        if (typeof b.size !== "number" || !Number.isInteger(b.size) || b.size < 1 || b.size > 100) return bad("buffer/size", `"${String(b.size)}" is not a valid value: range 1..100`);
        words.push("size", String(b.size));
      }
      if (words[words.length - 1] === "buffer") return bad("buffer", "buffer needs size or circular");
    }
    if (input.limit !== undefined) {
      const l = input.limit;
      if (!isObject(l)) return bad("limit", "limit must be a container");
      words.push("limit");
      for (const [k, v] of Object.entries(l)) {
        const r = LIMIT_RANGES[k];
        if (!r) return bad(`limit/${k}`, `unknown element ${k}`, "unknown-element");
        if (typeof v !== "number" || !Number.isInteger(v) || v < r[0] || v > r[1]) return bad(`limit/${k}`, `"${String(v)}" is not a valid value: range ${r[0]}..${r[1]}`);
        words.push(k, String(v));
      }
      if (words[words.length - 1] === "limit") return bad("limit", "limit needs duration, every, packet-len, packets or pps");
    }
    const actions = ["start", "stop", "stop_export", "export"].filter((a) => a in input);
    if (actions.length > 1) return bad(actions[1]!, "only one of start, stop, stop_export, export");
    const a = actions[0];
    if (a === "export") {
      if (typeof input.export !== "string") return bad("export", "export is the location string, e.g. bootflash:cap.pcap");
      words.push("export", input.export);
    } else if (a) {
      if (!isEmptyLeaf(input[a])) return bad(a, `${a} is an empty leaf: [null]`);
      words.push(a);
    }
    if (words.length === 1) return bad("capture", "nothing to do: give an interface, match, buffer, limit or an action");
    return { words };
  }

  async function handleRpc(rpc: string, body: Buffer, res: ServerResponse): Promise<void> {
    const rec: RpcRecord = { rpc, input: undefined, httpStatus: 0 };
    st.rpcs.push(rec);
    if (st.rpcs.length > 200) st.rpcs.shift();
    const answer = (status: number, b: unknown) => {
      rec.httpStatus = status;
      sendYang(res, status, b);
    };
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      return answer(400, restconfErrors("protocol", "malformed-message", "The request body is not valid JSON"));
    }
    const input = isObject(parsed) ? parsed["Cisco-IOS-XE-rpc:input"] : undefined;
    rec.input = input;
    if (!isObject(input) || Object.keys(parsed as object).length !== 1) {
      return answer(400, restconfErrors("protocol", "malformed-message", `expected {"Cisco-IOS-XE-rpc:input": {...}}`));
    }
    const output = (result: string) => answer(200, { "Cisco-IOS-XE-rpc:output": { result } });
    if (rpc === "monitor") {
      const v = validateMonitorInput(input);
      if ("tag" in v) return answer(v.tag === "operation-not-supported" ? 501 : 400, restconfErrors("application", v.tag, v.message, v.path));
      const line = `monitor capture ${v.words.join(" ")}`;
      record(line);
      const r = execCli(line);
      if ("invalidAt" in r) return answer(400, restconfErrors("application", "invalid-value", r.message, "/Cisco-IOS-XE-rpc:monitor/input"));
      return output(r.output);
    }
    if (rpc === "no") {
      const m = input.monitor;
      if (!isObject(m) || Object.keys(input).length !== 1) return answer(400, restconfErrors("application", "invalid-value", "only 'no monitor capture <name>' is supported", "/Cisco-IOS-XE-rpc:no/input"));
      const keys = Object.keys(m);
      if (keys.length !== 1 || typeof m.capture !== "string" || !NAME.test(m.capture)) {
        return answer(400, restconfErrors("application", "invalid-value", "no monitor: give exactly capture <name>", "/Cisco-IOS-XE-rpc:no/input/monitor"));
      }
      const line = `no monitor capture ${m.capture}`;
      record(line);
      return output(epc.remove(m.capture));
    }
    if (rpc === "delete") {
      const f = input["filename-drop-node-name"];
      if (typeof f !== "string" || !/^(bootflash:|harddisk:|flash:|nvram:).+/.test(f) || Object.keys(input).length !== 1) {
        return answer(400, restconfErrors("application", "invalid-value", "filename-drop-node-name must match (bootflash:|harddisk:|flash:|nvram:).*", "/Cisco-IOS-XE-rpc:delete/input/filename-drop-node-name"));
      }
      const line = `delete /force ${f}`;
      record(line);
      return output(epc.delete(f));
    }
    return answer(404, restconfErrors("application", "invalid-value", IOSXE_MESSAGES.notFound));
  }

  const heldSockets = new Set<Socket>();
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    st.requests++;
    if (opts.latencyMs) await sleep(opts.latencyMs);
    if (st.closed) return void req.socket.destroy();
    const url = new URL(req.url ?? "/", "https://device");
    if (opts.restconf === false) {
      res.writeHead(404, { "content-type": "text/html" });
      return void res.end("<html><body>404 Not Found</body></html>");
    }
    const credentials = basicCredentials(req);
    // No header, or one without the colon between user-id and password (RFC 7617 section 2): refused.
    if (credentials?.password === undefined || !sameCredentials(credentials, opts.username, opts.password)) {
      return sendYang(res, 401, restconfErrors("protocol", "access-denied", IOSXE_MESSAGES.auth), { "www-authenticate": 'Basic realm="restconf"' });
    }
    const kind = req.method === "POST" ? "rpc" : "probe";
    const fault = takeFault("rest", (f) => (f.on ?? "any") === "any" || f.on === kind);
    if (fault) {
      switch (fault.kind) {
        case "timeout":
          return holdRequest(req, heldSockets);
        case "busy":
          return sendYang(res, 409, restconfErrors("application", "in-use", IOSXE_MESSAGES.busy));
        case "server-error":
          return sendYang(res, 500, restconfErrors("application", "operation-failed", IOSXE_MESSAGES.serverError));
        case "unavailable":
          return sendYang(res, 503, restconfErrors("transport", "resource-denied", IOSXE_MESSAGES.unavailable));
      }
    }
    const accept = req.headers.accept;
    if (accept && !/application\/yang-data\+json|application\/json|\*\/\*/.test(accept)) {
      return sendYang(res, 406, restconfErrors("application", "invalid-value", `Accept ${accept} is not supported; use ${YANG_JSON}`));
    }
    const path = url.pathname;
    if (req.method === "GET" && path === "/.well-known/host-meta") {
      const xrd = `<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n    <Link rel='restconf' href='/restconf'/>\n</XRD>\n`;
      res.writeHead(200, { "content-type": "application/xrd+xml", "content-length": Buffer.byteLength(xrd) });
      return void res.end(xrd);
    }
    if (path.startsWith(RPC_PREFIX)) {
      if (req.method !== "POST") return sendYang(res, 405, restconfErrors("protocol", "operation-not-supported", `${req.method} is not allowed on an operation`), { allow: "POST" });
      const ct = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
      if (ct !== YANG_JSON && ct !== "application/json") return sendYang(res, 415, restconfErrors("protocol", "malformed-message", `Content-Type ${ct || "(none)"} is not supported; use ${YANG_JSON}`));
      const body = await readBody(req, MAX_BODY);
      if (!body) return sendYang(res, 413, restconfErrors("transport", "too-big", "request body too large"));
      return handleRpc(path.slice(RPC_PREFIX.length), body, res);
    }
    if (req.method !== "GET") return sendYang(res, 405, restconfErrors("protocol", "operation-not-supported", `${req.method} is not allowed here`), { allow: "GET" });
    if (path === NATIVE) return sendYang(res, 200, { "Cisco-IOS-XE-native:native": nativeBody(url.searchParams.get("fields")) });
    if (path === `${NATIVE}/hostname`) return sendYang(res, 200, { "Cisco-IOS-XE-native:hostname": hostname });
    if (path === `${NATIVE}/version`) return sendYang(res, 200, { "Cisco-IOS-XE-native:version": nativeVersion });
    const vrf = /^\/restconf\/data\/Cisco-IOS-XE-native:native\/interface\/([A-Za-z-]+)=([^/]+)\/vrf\/forwarding$/.exec(path);
    if (vrf) {
      const name = `${vrf[1]}${decodeURIComponent(vrf[2]!)}`;
      const i = interfaces.find((x) => x.name === name);
      if (!i) return sendYang(res, 404, restconfErrors("application", "invalid-value", IOSXE_MESSAGES.notFound));
      if (!i.vrf) {
        res.writeHead(204);
        return void res.end();
      }
      return sendYang(res, 200, { "Cisco-IOS-XE-native:forwarding": i.vrf });
    }
    return sendYang(res, 404, restconfErrors("application", "invalid-value", IOSXE_MESSAGES.notFound));
  }

  const https: HttpsServer = createHttpsServer({ key: tls.key, cert: tls.cert, keepAliveTimeout: 5000 }, (req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) sendYang(res, 500, restconfErrors("application", "operation-failed", IOSXE_MESSAGES.serverError));
      else res.destroy();
    });
  });
  https.on("tlsClientError", () => {});
  const listener = await listenForTls(https, address, opts.restPort ?? 0, () => st.closed);
  return {
    port: listener.port,
    async close() {
      await listener.close(heldSockets);
      https.close();
    },
  };
}
