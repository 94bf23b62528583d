// Wire identity of the device REST clients (AudioCodes REST, IOS-XE RESTCONF, NX-API): a real TLS
// server on 127.0.0.1 records each request's bytes (request line, headers in order, body) and answers
// from a script; the recordings, the answers the clients return and the errors they throw are
// compared with fixtures/http-wire.golden.json, recorded from the axios-based client this one
// replaced. Normalised: the port, the User-Agent (checked separately: capsync/<version>), and the
// multipart boundary (its format checked separately; Content-Length checked against the body).
// `CAPSYNC_RECORD_WIRE=1 npx vitest run <this file>` rewrites the fixture.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { createServer, type Server, type TLSSocket } from "node:tls";
import { inspect } from "node:util";
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { CapsyncError } from "@capsync/protocol";
import { sharedTlsCertificate } from "@capsync/emulators";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VERSION } from "../../version.js";
import { AudioCodesClient } from "../audiocodes/client.js";
import { NATIVE_FACTS_PATH, RestconfClient, vrfForwardingPath } from "../iosxe/restconf.js";
import { NxApiClient } from "../nxos/nxapi.js";
import type { RestAnswer } from "./http.js";
import { isPermanent } from "./http.js";

const GOLDEN = path.join(import.meta.dirname, "fixtures", "http-wire.golden.json");
const RECORD = process.env.CAPSYNC_RECORD_WIRE === "1";
const USER = "admin";
const PW = "Wire-Secret-Pw-2718!";
const BASIC = Buffer.from(`${USER}:${PW}`).toString("base64");

type Reply = Buffer | "hang" | "close" | "partial" | "partial-gzip";
interface Seen {
  conn: number;
  head: string;
  body: Buffer;
}

/** Parses requests off each TLS connection and answers each with the next scripted reply. */
class Recorder {
  readonly seen: Seen[] = [];
  readonly script: Reply[] = [];
  private conns = 0;
  private readonly sockets = new Set<TLSSocket>();
  private server!: Server;
  port = 0;

  async start(tls: { key: string; cert: string }, host = "127.0.0.1"): Promise<this> {
    this.server = createServer(tls, (sock) => this.serve(sock));
    this.server.on("tlsClientError", () => {});
    await new Promise<void>((r) => this.server.listen(0, host, r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  private serve(sock: TLSSocket): void {
    const conn = this.conns++;
    this.sockets.add(sock);
    sock.on("close", () => this.sockets.delete(sock));
    sock.on("error", () => {});
    let buf = Buffer.alloc(0);
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString("latin1");
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const body = Buffer.from(buf.subarray(end + 4, end + 4 + len));
        buf = buf.subarray(end + 4 + len);
        this.seen.push({ conn, head, body });
        const reply = this.script.shift() ?? ok('{"ok":true}');
        if (reply === "hang") continue;
        if (reply === "close") sock.destroy();
        else if (reply === "partial") {
          sock.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"status\":");
          setTimeout(() => sock.destroy(), 20);
        } else if (reply === "partial-gzip") {
          const z = gzipSync('{"status":"' + "y".repeat(5000) + '"}');
          sock.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${z.length + 100}\r\n\r\n`), z.subarray(0, 30)]));
          setTimeout(() => sock.destroy(), 20);
        } else sock.write(reply);
      }
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

function response(status: string, headers: [string, string][], body: Buffer | string, chunked = false): Buffer {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  const hs = [...headers, chunked ? ["Transfer-Encoding", "chunked"] : ["Content-Length", String(b.length)]];
  const head = Buffer.from(`HTTP/1.1 ${status}\r\n${hs.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`);
  if (!chunked) return Buffer.concat([head, b]);
  const half = Math.ceil(b.length / 2);
  const chunk = (c: Buffer) => Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from("\r\n")]);
  return Buffer.concat([head, chunk(b.subarray(0, half)), chunk(b.subarray(half)), Buffer.from("0\r\n\r\n")]);
}
const ok = (body: string, type = "application/json") => response("200 OK", [["Content-Type", type]], body);
const encoded = (encoding: string, body: Buffer) => response("200 OK", [["Content-Type", "application/json"], ["Content-Encoding", encoding]], body);

/** The request as compared with the golden: port, User-Agent and multipart boundary normalised. */
function normalise(s: Seen, port: number): { conn: number; head: string; body: string; userAgent: string; boundary: string } {
  let head = s.head;
  let body = s.body.toString("utf8");
  const userAgent = /\r\nUser-Agent: ([^\r]*)/i.exec(head)?.[1] ?? "";
  head = head.replace(/(\r\nUser-Agent: )[^\r]*/i, "$1<ua>").replaceAll(`:${port}`, ":<port>");
  const boundary = /boundary=([^\r;]+)/.exec(head)?.[1] ?? "";
  if (boundary) {
    const cl = Number(/\r\nContent-Length: (\d+)/i.exec(head)?.[1]);
    expect(cl, "Content-Length matches the multipart body").toBe(s.body.length);
    head = head.replaceAll(boundary, "<boundary>").replace(/(\r\nContent-Length: )\d+/i, "$1<length>");
    body = body.replaceAll(boundary, "<boundary>");
  }
  return { conn: s.conn, head, body, userAgent, boundary };
}

/** What a client threw, as compared with the golden; the password and its Basic form are nowhere in it. */
function describeError(err: unknown): Record<string, unknown> {
  const text = `${inspect(err, { depth: 6 })} ${JSON.stringify(err, Object.getOwnPropertyNames(err))}`;
  expect(text).not.toContain(PW);
  expect(text).not.toContain(BASIC);
  expect(err).toBeInstanceOf(CapsyncError);
  const e = err as CapsyncError & { cause?: { code?: string; message?: string } };
  const message = e.message.replace(/(127\.0\.0\.1|\[::1\]):\d+/g, "$1:<port>");
  return { class: e.constructor.name, code: e.code, message, permanent: isPermanent(e), causeCode: e.cause?.code ?? null };
}

async function failure(p: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (err) {
    return describeError(err);
  }
  throw new Error("expected a failure");
}

let tls: { key: string; cert: string };
let rec: Recorder;
const golden = RECORD ? undefined : (JSON.parse(readFileSync(GOLDEN, "utf8")) as Record<string, unknown>);
const recorded: Record<string, unknown> = {};

function check(section: string, actual: unknown): void {
  if (RECORD) recorded[section] = actual;
  else expect(actual, section).toEqual(golden![section]);
}

const login = (port: number, over: Partial<{ address: string; tls: unknown }> = {}) => ({
  address: "127.0.0.1",
  restPort: port,
  sshPort: 1,
  username: USER,
  password: PW,
  tls: { mode: "insecure" as const },
  ...over,
}) as ConstructorParameters<typeof AudioCodesClient>[0];

beforeAll(async () => {
  tls = await sharedTlsCertificate();
  rec = await new Recorder().start(tls);
});
afterAll(async () => {
  await rec.stop();
  if (RECORD) writeFileSync(GOLDEN, JSON.stringify(recorded, null, 2) + "\n");
});

describe("device REST on the wire", () => {
  it("every request of the three clients: bytes as recorded, one keep-alive connection per client", async () => {
    const first = rec.seen.length;
    const answers: RestAnswer[] = [];
    const ac = new AudioCodesClient(login(rec.port));
    rec.script.push(ok('{"productType":"Mediant 800 MSBR","versionID":"7.40A.100.001"}'), ok('{"status":"success","output":"done"}'), ok('{"status":"success","output":""}'));
    answers.push(await ac.getStatus(2000));
    answers.push(await ac.putCliScript(["debug capture data physical start", 'debug capture data physical filter "udp port 5060"'], 2000));
    answers.push(await ac.putCliScript(["debug capture data physical stop"], 2000));
    await ac.close();
    const rc = new RestconfClient(login(rec.port));
    rec.script.push(ok('{"Cisco-IOS-XE-native:native":{"version":"17.9","hostname":"r1"}}', "application/yang-data+json"));
    rec.script.push(response("204 No Content", [], ""));
    rec.script.push(ok('{"Cisco-IOS-XE-rpc:output":{"result":"Started"}}', "application/yang-data+json"));
    answers.push(await rc.get(NATIVE_FACTS_PATH, 2000));
    answers.push(await rc.get(vrfForwardingPath("GigabitEthernet1/0/1")!, 2000));
    answers.push(await rc.rpc("exec", { args: "monitor capture CAPSYNC start" }, 2000));
    await rc.close();
    const nx = new NxApiClient(login(rec.port));
    rec.script.push(ok('{"ins_api":{"outputs":{"output":{"code":"200","msg":"Success","body":"n9k\\n"}}}}'));
    answers.push(await nx.show(["show hostname", "show version"], 2000));
    await nx.close();
    const seen = rec.seen.slice(first).map((s) => normalise(s, rec.port));
    const conn0 = seen[0]!.conn;
    check(
      "requests",
      seen.map(({ conn, head, body }) => ({ conn: conn - conn0, head, body })),
    );
    check("requestAnswers", answers);
    for (const s of seen.filter((x) => x.boundary)) expect(s.boundary).toMatch(/^[-\w.]{27,70}$/);
    if (!RECORD) for (const s of seen) expect(s.userAgent).toBe(`capsync/${VERSION}`);
  });

  it("IPv6 literal hosts: the Host header in brackets", async () => {
    const six = await new Recorder().start(tls, "::1");
    try {
      const nx = new NxApiClient(login(six.port, { address: "::1" }));
      const a = await nx.show(["show clock"], 2000);
      await nx.close();
      check("ipv6", { head: normalise(six.seen[0]!, six.port).head, answer: a });
    } finally {
      await six.stop();
    }
  });

  it("answers: decompressed, de-chunked, BOM dropped, any status returned, redirects not followed", async () => {
    const json = Buffer.from('{"productType":"Mediant 800","text":"' + "x".repeat(2000) + '"}');
    const cases: [string, Reply][] = [
      ["chunked", response("200 OK", [["Content-Type", "application/json"]], json, true)],
      ["gzip", encoded("gzip", gzipSync(json))],
      ["x-gzip", encoded("x-gzip", gzipSync(json))],
      ["gzip, chunked", response("200 OK", [["Content-Encoding", "gzip"]], gzipSync(json), true)],
      ["gzip without its trailer", encoded("gzip", gzipSync(json).subarray(0, -8))],
      ["deflate (zlib)", encoded("deflate", deflateSync(json))],
      ["deflate (raw)", encoded("deflate", deflateRawSync(json))],
      ["br", encoded("br", brotliCompressSync(json))],
      ["identity", encoded("identity", json)],
      ["unknown encoding passed through", encoded("zz-unknown", Buffer.from("abc"))],
      ["BOM", ok("\uFEFF{\"a\":1}")],
      ["latin-1 bytes", ok(Buffer.from([0x7b, 0xe9, 0x7d]).toString("latin1"))],
      ["empty 200", ok("")],
      ["204 with Content-Encoding", response("204 No Content", [["Content-Encoding", "gzip"]], "")],
      ["401 html", response("401 Unauthorized", [["Content-Type", "text/html"]], "<html><title>401 Authorization Required</title></html>")],
      ["500", response("500 Internal Server Error", [["Content-Type", "application/json"]], '{"status":"failure","description":"busy"}')],
      ["302 not followed", response("302 Found", [["Location", "https://127.0.0.1:1/elsewhere"]], "")],
      ["503 gzip", response("503 Service Unavailable", [["Content-Encoding", "gzip"]], gzipSync("later"))],
    ];
    const ac = new AudioCodesClient(login(rec.port));
    const first = rec.seen.length;
    const out: Record<string, unknown> = {};
    for (const [name, reply] of cases) {
      rec.script.push(reply);
      const a = await ac.getStatus(2000);
      out[name] = { httpStatus: a.httpStatus, text: a.text.length > 200 ? `${a.text.length} chars, ${a.text.slice(0, 40)}…${a.text.slice(-10)}` : a.text };
    }
    await ac.close();
    check("answers", out);
    expect(new Set(rec.seen.slice(first).map((s) => s.conn)).size, "one keep-alive connection").toBe(1);
  });

  it("failures: typed errors with exact messages, no password anywhere", async () => {
    const out: Record<string, unknown> = {};
    const ac = new AudioCodesClient(login(rec.port));
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x61);
    const fail = async (name: string, reply: Reply, timeoutMs = 2000) => {
      rec.script.push(reply);
      out[name] = await failure(ac.getStatus(timeoutMs));
    };
    await fail("no answer (time limit)", "hang", 300);
    await fail("closed without an answer", "close");
    await fail("closed mid-body", "partial");
    await fail("closed mid-body, gzip", "partial-gzip");
    await fail("body over 4 MiB", ok(big.toString("latin1")));
    await fail("gzip body over 4 MiB", encoded("gzip", gzipSync(big)));
    await fail("corrupt gzip", encoded("gzip", Buffer.from("definitely not gzip")));
    await fail("header over the limit", Buffer.from(`HTTP/1.1 200 OK\r\nX-Big: ${"b".repeat(20_000)}\r\nContent-Length: 0\r\n\r\n`));
    await fail("not HTTP", Buffer.from("SSH-2.0-OpenSSH_9.6\r\n\r\n"));
    await ac.close();

    const closed = await new Recorder().start(tls);
    const closedPort = closed.port;
    await closed.stop();
    out["connection refused"] = await failure(new AudioCodesClient(login(closedPort)).getStatus(2000));
    out["untrusted certificate"] = await failure(new AudioCodesClient(login(rec.port, { tls: { mode: "verify" } })).getStatus(2000));
    out["ca file unreadable"] = await failure(new RestconfClient(login(rec.port, { tls: { mode: "ca", ca: "/nonexistent/ca.pem" } })).get("/x", 2000));

    const other = await generate([{ name: "commonName", value: "elsewhere" }], {
      keyType: "ec",
      curve: "P-256",
      algorithm: "sha256",
      extensions: [{ name: "subjectAltName", altNames: [{ type: 2 as const, value: "elsewhere.invalid" }] }],
    });
    const wrongName = await new Recorder().start({ key: other.private, cert: other.cert });
    try {
      out["hostname mismatch"] = await failure(new NxApiClient(login(wrongName.port, { tls: { mode: "ca", ca: other.cert } })).show(["show clock"], 2000));
    } finally {
      await wrongName.stop();
    }
    // The same CA trusted through a file path and as PEM text: both succeed.
    const rcPem = new RestconfClient(login(rec.port, { tls: { mode: "ca", ca: tls.cert } }));
    out["ca PEM"] = (await rcPem.get("/restconf/data/x", 2000)).httpStatus;
    await rcPem.close();
    const dir = mkdtempSync(path.join(tmpdir(), "capsync-wire-"));
    try {
      writeFileSync(path.join(dir, "ca.pem"), tls.cert);
      const rcFile = new RestconfClient(login(rec.port, { tls: { mode: "ca", ca: path.join(dir, "ca.pem") } }));
      out["ca file"] = (await rcFile.get("/restconf/data/x", 2000)).httpStatus;
      await rcFile.close();
    } finally {
      rmSync(dir, { recursive: true });
    }
    check("errors", out);
  });
});
