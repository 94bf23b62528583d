// Hostile device answers: whatever answers on the device's address (a broken firmware, a captive
// portal, a man in the middle of a `tls: insecure` device) is untrusted input. 100,000 fast-check
// cases per parser family — AudioCodes REST (parseCliAnswer, parseStatusAnswer, parseShowOutput),
// RESTCONF (parseRestconfErrors, parseRpcOutput, parseNativeFacts, parseVrfForwarding) and IOS-XE
// CLI text (parseShowVersion, parseShowMonitorCapture, epcVerdict, cliErrors) — on bad JSON, wrong
// types, prototype keys, deep nesting and huge strings: never a throw, always ok or a typed code,
// accepted fields are strings; then a hostile HTTPS server against the real driver: 64 MiB bodies,
// endless drips, redirects, oversized headers, HTML, wrong types — every one a typed CapsyncError
// within the time limit, memory bounded, the password never in an error and never sent elsewhere.
import fc from "fast-check";
import { RUNS, bump, heapMb, runHostile } from "../helpers/hostile.js";
import { createServer, type Server } from "node:https";
import { createServer as createHttpServer, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CapsyncError } from "@capsync/protocol";
import { sharedTlsCertificate } from "@capsync/emulators";
import { parseCliAnswer, parseShowOutput, parseStatusAnswer } from "../../packages/cpe-capture/src/drivers/audiocodes/driver.js";
import { parseNativeFacts, parseRestconfErrors, parseRpcOutput, parseVrfForwarding } from "../../packages/cpe-capture/src/drivers/iosxe/restconf.js";
import { epcVerdict, parseShowMonitorCapture, parseShowVersion } from "../../packages/cpe-capture/src/drivers/iosxe/driver.js";
import { cliErrors } from "../../packages/cpe-capture/src/drivers/iosxe/ssh-cli.js";
import { drivers } from "../../packages/cpe-capture/src/drivers/index.js";

const PW = "Rest-Hostile-Pw-3141!";
const BAD_CODES = new Set(["not-json", "not-object", "bad-field"]);


const HOSTILE_JSON_VALUES: unknown[] = [null, true, 0, -1, 1e308, "", "x".repeat(500), [], {}, [1, 2], { __proto__: null }, { toString: "x" }, "Debug capture physical is active", "\u0000", "💥"];
/** Valid answers of each kind, as objects, to be broken field by field. */
const SEEDS: Record<string, unknown>[] = [
  { status: "success", output: "debug capture data physical show\nDebug capture physical is active\n" },
  { status: "failure", description: "Invalid command", output: "" },
  { productType: "Mediant 800 MSBR", versionID: "7.40A.100.001", serialNumber: "12345678" },
  { "ietf-restconf:errors": { error: [{ "error-type": "application", "error-tag": "invalid-value", "error-path": "/x", "error-message": "bad" }] } },
  { "Cisco-IOS-XE-rpc:output": { result: "Started capture point : CAPSYNC" } },
  { "Cisco-IOS-XE-native:native": { version: "17.9", hostname: "rtr1", license: { udi: { pid: "C8000V", sn: "9ABC" } } } },
  { "Cisco-IOS-XE-native:forwarding": "MGMT" },
];

function breakFields(seed: Record<string, unknown>, edits: [number, number, boolean][]): unknown {
  const copy = JSON.parse(JSON.stringify(seed)) as Record<string, unknown>;
  const walk = (o: Record<string, unknown>, path: string[]): string[][] =>
    Object.entries(o).flatMap(([k, v]) => (v && typeof v === "object" && !Array.isArray(v) ? [[...path, k], ...walk(v as Record<string, unknown>, [...path, k])] : [[...path, k]]));
  const paths = walk(copy, []);
  for (const [pi, vi, asKey] of edits) {
    const p = paths[pi % paths.length]!;
    let o: unknown = copy;
    for (const seg of p.slice(0, -1)) o = o && typeof o === "object" ? (o as Record<string, unknown>)[seg] : undefined;
    if (!o || typeof o !== "object") continue; // an earlier edit replaced this branch
    const pick = HOSTILE_JSON_VALUES[vi % HOSTILE_JSON_VALUES.length];
    // A copy: later edits must not reach into (and link up) the shared constants.
    const value: unknown = pick && typeof pick === "object" ? JSON.parse(JSON.stringify(pick)) : pick;
    if (asKey) Object.defineProperty(o, ["__proto__", "constructor", "hasOwnProperty", "toString"][vi % 4]!, { value, enumerable: true, writable: true, configurable: true });
    else (o as Record<string, unknown>)[p.at(-1)!] = value;
  }
  return copy;
}

const textEdits = (base: fc.Arbitrary<string>) =>
  fc.tuple(base, fc.array(fc.record({ at: fc.nat(), del: fc.nat(8), ins: fc.constantFrom("{", "}", "[", "]", '"', ",", ":", "\\", "\\u0000", "\\ud800", "null", "1e999", "-", "\n", "", "physical is not active", "% Invalid input") }), { maxLength: 4 })).map(([t, edits]) => {
    let s = t;
    for (const e of edits) {
      const at = e.at % (s.length + 1);
      s = s.slice(0, at) + e.ins + s.slice(at + e.del);
    }
    return s;
  });

const jsonAnswer = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...SEEDS), fc.array(fc.tuple(fc.nat(), fc.nat(), fc.boolean()), { minLength: 1, maxLength: 3 })).map(([s, e]) => JSON.stringify(breakFields(s, e))) },
  { weight: 3, arbitrary: textEdits(fc.constantFrom(...SEEDS).map((s) => JSON.stringify(s))) },
  { weight: 1, arbitrary: fc.constantFrom(...SEEDS).map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 100 }) },
  { weight: 1, arbitrary: fc.constantFrom("[".repeat(1000), "{\"a\":".repeat(500), "<html><body>Login</body></html>", "", " ", "null", "1", "\uFEFF{}") },
);

/** The expensive shapes, once each rather than thousands of times: huge, deep, unterminated. */
const HEAVY = ["[".repeat(500_000), "{\"a\":".repeat(200_000), `"${"x".repeat(4 << 20)}"`, `{"output":"${"Debug capture physical is active ".repeat(100_000)}"}`, `{"status":"success","output":"${"\\u0000".repeat(200_000)}"}`, "{".repeat(1 << 20)];


function verdict(name: string, r: { ok: boolean; code?: string }, s: Map<string, number>): void {
  if (!r.ok && !BAD_CODES.has(r.code ?? "")) throw new Error(`${name}: untyped ${JSON.stringify(r)}`);
  bump(s, `${name}:${r.ok ? "ok" : r.code}`);
}
function strings(name: string, ...vs: unknown[]): void {
  for (const v of vs) if (v !== undefined && typeof v !== "string") throw new Error(`${name} accepted a ${typeof v}`);
}

describe("hostile device answers, parser by parser", () => {
  it(`AudioCodes REST: ${RUNS.toLocaleString("en")} answers through parseCliAnswer, parseStatusAnswer and parseShowOutput`, () => {
    const seen = runHostile("AudioCodes REST", jsonAnswer, (text, s) => {
      const cli = parseCliAnswer(text);
      verdict("cli", cli, s);
      if (cli.ok) {
        strings("cli", cli.status, cli.output, cli.description);
        const show = parseShowOutput(cli.output);
        if (show !== undefined && show !== "active" && show !== "inactive") throw new Error("show");
      }
      const st = parseStatusAnswer(text);
      verdict("status", st, s);
      if (st.ok) strings("status", st.productType, st.versionID, st.serialNumber);
      parseShowOutput(text);
    });
    for (const k of ["cli:ok", "cli:not-json", "cli:not-object", "cli:bad-field", "status:ok", "status:bad-field"]) expect(seen.get(k) ?? 0, k).toBeGreaterThan(0);
  });

  it(`RESTCONF: ${RUNS.toLocaleString("en")} answers through parseRestconfErrors, parseRpcOutput, parseNativeFacts and parseVrfForwarding`, () => {
    const seen = runHostile("RESTCONF", jsonAnswer, (text, s) => {
      const e = parseRestconfErrors(text);
      verdict("errors", e, s);
      if (e.ok) for (const x of e.errors) strings("errors", x.type, x.tag, x.path, x.message);
      const r = parseRpcOutput(text);
      verdict("rpc", r, s);
      if (r.ok) strings("rpc", r.result);
      const f = parseNativeFacts(text);
      verdict("facts", f, s);
      if (f.ok) strings("facts", f.version, f.hostname, f.pid, f.sn);
      const v = parseVrfForwarding(text);
      verdict("vrf", v, s);
      if (v.ok) strings("vrf", v.vrf);
    });
    for (const k of ["errors:ok", "errors:bad-field", "rpc:ok", "rpc:bad-field", "facts:ok", "facts:bad-field", "vrf:ok", "vrf:bad-field"]) expect(seen.get(k) ?? 0, k).toBeGreaterThan(0);
  });

  it("huge, 500,000-deep and unterminated answers (up to the client's 4 MiB limit): typed, quick, bounded", () => {
    const before = heapMb();
    let worst = 0;
    for (const text of HEAVY) {
      const t = performance.now();
      for (const r of [parseCliAnswer(text), parseStatusAnswer(text), parseRestconfErrors(text), parseRpcOutput(text), parseNativeFacts(text), parseVrfForwarding(text)]) {
        if (!r.ok && !BAD_CODES.has(r.code)) throw new Error(`untyped ${JSON.stringify(r)}`);
      }
      parseShowOutput(text);
      parseShowVersion(text);
      cliErrors(text);
      worst = Math.max(worst, performance.now() - t);
    }
    const grew = heapMb() - before;
    console.log(`heavy device answers: ${HEAVY.length} × 9 parsers, worst ${worst.toFixed(0)} ms per answer, heap ${grew.toFixed(1)} MB`);
    expect(worst).toBeLessThan(2000);
    expect(grew).toBeLessThan(16);
  });

  it(`IOS-XE CLI text: ${RUNS.toLocaleString("en")} outputs through parseShowVersion, parseShowMonitorCapture, epcVerdict and cliErrors`, () => {
    const seeds = [
      "Cisco IOS XE Software, Version 17.09.04a\nrtr1 uptime is 1 day\ncisco C8000V (VXE) processor\nProcessor board ID 9ABCDEF\n",
      "Status Information for Capture CAPSYNC\n  Target Type:\n  Status : Active\n",
      "Status : Inactive\n",
      "% Invalid input detected at '^' marker.\n",
      "Started capture point : CAPSYNC\n",
      "Exported Successfully\n",
      "% Capture point does not exist\n",
    ];
    const text = fc.oneof(
      { weight: 4, arbitrary: textEdits(fc.constantFrom(...seeds)) },
      { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
      { weight: 1, arbitrary: fc.array(fc.constantFrom(...seeds, "Version ", "Processor board ID ", "Status : ", "% ", "\n", " uptime is ", "cisco ", "x".repeat(5000)), { maxLength: 20 }).map((p) => p.join("")) },
    );
    const seen = runHostile("IOS-XE CLI", text, (t, s) => {
      const v = parseShowVersion(t);
      bump(s, v.ok ? "version:ok" : `version:${v.field}`);
      if (v.ok) strings("version", v.version, v.model, v.serial, v.hostname);
      const m = parseShowMonitorCapture(t);
      if (m !== undefined && m !== "active" && m !== "inactive") throw new Error("monitor");
      for (const step of ["define", "start", "stop", "export", "remove", "delete"] as const) {
        const e = epcVerdict(step, t);
        if (!e.ok && typeof e.reason !== "string") throw new Error("epc");
      }
      const errs = cliErrors(t);
      if (!Array.isArray(errs) || errs.some((x) => typeof x !== "string")) throw new Error("cliErrors");
      if (errs.length) bump(s, "cli-errors");
    });
    expect(seen.get("version:ok") ?? 0).toBeGreaterThan(0);
    expect(seen.get("cli-errors") ?? 0).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------
// A hostile HTTPS server in place of the device.

type Mode = "huge" | "drip" | "redirect" | "bad-json" | "wrong-types" | "html" | "deep" | "big-header" | "no-end";

describe("a hostile HTTPS server in place of the device (real AudioCodes driver)", () => {
  let server: Server;
  let port: number;
  let mode: Mode = "huge";
  let elsewhere: HttpServer;
  let elsewhereHits: string[] = [];
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    const tls = await sharedTlsCertificate();
    elsewhere = createHttpServer((req, res) => {
      elsewhereHits.push(`${req.method} ${req.url} auth=${req.headers.authorization ?? "-"}`);
      res.end("{}");
    });
    await new Promise<void>((r) => elsewhere.listen(0, "127.0.0.1", () => r()));
    const elsewherePort = (elsewhere.address() as AddressInfo).port;
    server = createServer({ key: tls.key, cert: tls.cert }, (req, res: ServerResponse) => {
      req.resume();
      switch (mode) {
        case "huge": {
          // 64 MiB, streamed: the client must give up at its limit, not buffer it.
          res.writeHead(200, { "content-type": "application/json" });
          const chunk = Buffer.alloc(1 << 20, 0x20);
          let sent = 0;
          const pump = () => {
            while (sent < 64 && !res.destroyed) {
              sent++;
              if (!res.write(chunk)) return void res.once("drain", pump);
            }
            res.end();
          };
          pump();
          return;
        }
        case "drip": {
          res.writeHead(200, { "content-type": "application/json" });
          const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(" ")), 50);
          res.on("close", () => clearInterval(t));
          return;
        }
        case "no-end":
          res.writeHead(200, { "content-type": "application/json" });
          res.write('{"productType": "x"');
          return;
        case "redirect":
          res.writeHead(302, { location: `http://127.0.0.1:${elsewherePort}/steal` });
          return void res.end();
        case "bad-json":
          res.writeHead(200, { "content-type": "application/json" });
          return void res.end('{"productType": "Mediant", "versionID": ');
        case "wrong-types":
          res.writeHead(200, { "content-type": "application/json" });
          return void res.end(JSON.stringify({ productType: ["Mediant"], versionID: 7.4, serialNumber: { __proto__: { polluted: 1 } }, status: 1, output: null }));
        case "html":
          res.writeHead(200, { "content-type": "text/html" });
          return void res.end(`<html><body>Welcome. Please log in. ${PW.slice(0, 3)}</body></html>`);
        case "deep":
          res.writeHead(200, { "content-type": "application/json" });
          return void res.end("[".repeat(500_000));
        case "big-header":
          res.writeHead(200, { "content-type": "application/json", "x-junk": "x".repeat(64 * 1024) });
          return void res.end("{}");
      }
    });
    server.on("connection", (s: Socket) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server?.close(() => r()));
    await new Promise<void>((r) => elsewhere?.close(() => r()));
  });

  it("every hostile answer to probe() and startCapture() is a typed error within the time limit; memory stays bounded; the password goes nowhere", async () => {
    const outcomes: string[] = [];
    for (const m of ["huge", "drip", "no-end", "redirect", "bad-json", "wrong-types", "html", "deep", "big-header"] as Mode[]) {
      mode = m;
      const driver = drivers.msbr({ address: "127.0.0.1", type: "msbr", username: "Admin", password: PW, restPort: port, tls: "insecure", timeouts: { restMs: 1500, operationMs: 4000 }, retries: { rest: 0, confirm: 0 } });
      const before = heapMb();
      const t0 = Date.now();
      let err: unknown;
      try {
        await driver.probe();
        await driver.startCapture({ interfaces: ["eth-wan"] });
      } catch (e) {
        err = e;
      } finally {
        await driver.cleanup();
      }
      const ms = Date.now() - t0;
      const grew = heapMb() - before;
      outcomes.push(`${m}: ${(err as Error)?.constructor?.name ?? "no error"} ${(err as CapsyncError)?.code ?? ""} in ${ms} ms, heap ${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MB`);
      expect(err, m).toBeInstanceOf(CapsyncError);
      expect(String((err as Error).message)).not.toContain(PW);
      expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain(PW);
      expect(ms, m).toBeLessThan(6000);
      expect(grew, m).toBeLessThan(32);
    }
    console.log(`hostile HTTPS device:\n  ${outcomes.join("\n  ")}`);
    // Redirects are not followed, so the Basic credentials never reached the other server.
    expect(elsewhereHits).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
