// Hostile config files (packages/cpe-capture/src/config/loader.ts): operator input, but also what a
// careless copy-paste or anyone who can write the file hands to the orchestrator. A config check costs
// ~0.2 ms (JSON) to ~0.7 ms (YAML) plus generation, so instead of 100,000 single-field cases per
// reader this file runs fewer, larger mutations: 12,000 objects (configFromObject) and 8,000 JSON
// texts with up to 5 hostile fields each, 2,500 YAML texts with up to 3 hostile fields and up to 6
// structural edits (anchors, aliases, tags, merge keys, indentation): 22,500 configs carrying about
// 60,000 hostile values (config/loader.property.test.ts adds ~1,500 more configs).
// Hostile: shell metacharacters, `..`, NUL, newlines, over-long strings, wrong types, __proto__.
// The only failure is a ConfigFileError with lines inside the file and no plain password in it;
// whatever is accepted is safe in argv, file names and device CLI lines; the prototype is never
// polluted; alias bombs, 100,000-deep nesting and oversized files end in a typed error.
import fc from "fast-check";
import { heapMb } from "../helpers/hostile.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, stringify } from "yaml";
import { ConfigFileError, MAX_CONFIG_BYTES, configFromObject, loadConfig, parseConfigText, type LoadedConfig } from "../../packages/cpe-capture/src/config/loader.js";

const OBJECT_RUNS = 12_000;
const JSON_RUNS = 8_000;
const YAML_RUNS = 2_500;
const PLAIN = "Hostile-Pl4in-Pw!";


const BASE = {
  output: "./runs",
  allowPlain: true,
  retries: 1,
  timeouts: { rest: "3s", sftp: "10s", agent: "4s" },
  agents: { keyFile: "./agent.key", sshKeyFile: "./id_ed25519", sftpPort: 20022 },
  syslog: { listen: "127.0.0.1:20514", tcp: false },
  stop: { alarms: ["connection-lost"], maxEventsPerDevice: 1, duration: "1h" },
  devices: [
    { name: "branch-1", address: "192.0.2.10", type: "msbr", interfaces: ["eth-wan", "cellular-wan"], username: "Admin", password: PLAIN, tls: "insecure", restPort: 443, sshPort: 22, agents: ["198.51.100.5:20001"] },
    { address: "192.0.2.20", type: "gwsbc", username: "Admin", password: { env: "SBC_PW" }, tls: { ca: "./ca.pem" }, agents: ["[2001:db8::5]:20001"], duration: "2d" },
    { name: "rtr", address: "rtr1.example.net", type: "iosxe", interfaces: ["GigabitEthernet1"], username: "capsync", password: { file: "./pw" }, capture: { filter: { protocol: "udp", dport: 5060 }, vrf: "MGMT", snaplen: 256 } },
  ],
};

const HOSTILE_STRINGS = [
  "127.0.0.1;touch /tmp/capsync-pwned",
  "$(touch /tmp/capsync-pwned)",
  "`id`",
  "192.0.2.10 && id",
  "192.0.2.10|id",
  "192.0.2.10\nrm -rf /",
  "192.0.2.10\0",
  "eth-wan;reboot",
  "eth-wan\ndebug capture data physical stop",
  "Gi1 | include",
  "../../../etc/passwd",
  "..",
  "/dev/zero",
  "-oProxyCommand=id",
  "--help",
  "fe80::1%eth0;id",
  "[::1]",
  "192.0.2.10:20001;id",
  "a".repeat(300),
  "x".repeat(5000),
  "\u202e",
  "💥",
  "",
  " ",
  "%YAML",
  "*alias",
  "{ env: X }",
  "__proto__",
  "1e999",
  "0x10",
];
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1.5, 65536, 2 ** 53, -0, 1e308, true, false, null) },
  { weight: 1, arbitrary: fc.constantFrom([], {}, [HOSTILE_STRINGS[0]], { env: "X;id" }, { file: "../../etc/shadow" }, { ca: "/dev/zero" }, { __proto__: { polluted: 1 } }, JSON.parse('{"__proto__":{"polluted":1}}') as unknown) },
  { weight: 1, arbitrary: fc.constantFrom([[[[[]]]]], { a: { b: { c: [1, "x;id"] } } }, [1, "two", null, { three: 3 }], ["eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan", "eth-wan"]) },
);

/** Every path in BASE (and a few keys that are not in it), as [path, container-kind]. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = at.length ? [at] : [];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}
const PATHS = [
  ...paths(BASE),
  ["__proto__"],
  ["constructor"],
  ["devices", 0, "__proto__"],
  ["devices", 0, "capture", "filter", "src"],
  ["devices", 0, "capture", "filter", "dst"],
  ["devices", 2, "capture", "interfaces"],
  ["devices", 2, "interfaces", 1],
  ["devices", 3],
  ["agents", "legacy"],
  ["syslog", "sharePortWithAgents"],
  ["devices", 0, "transport"],
];

function setPath(root: unknown, path: (string | number)[], value: unknown): void {
  let o = root as Record<string | number, unknown>;
  for (const seg of path.slice(0, -1)) {
    if (o[seg] === null || typeof o[seg] !== "object") o[seg] = typeof seg === "number" ? [] : {};
    o = o[seg] as Record<string | number, unknown>;
  }
  // defineProperty so "__proto__" becomes an own key, as JSON.parse and YAML would make it.
  // A copy, so edits of later paths never reach into (and link up) the shared hostile constants.
  const copy: unknown = value === undefined ? undefined : JSON.parse(JSON.stringify(value));
  Object.defineProperty(o, path.at(-1)!, { value: copy, enumerable: true, writable: true, configurable: true });
}

const hostileConfigOf = (maxEdits: number) => fc.array(fc.tuple(fc.constantFrom(...PATHS), hostileValue), { minLength: 1, maxLength: maxEdits }).map((edits) => {
  const c = structuredClone(BASE) as unknown;
  for (const [p, v] of edits) setPath(c, p, v);
  return c;
});
const hostileConfig = hostileConfigOf(5);

const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).sort().join(",");

/** Safe for argv, file names and device CLI lines: no blanks, quotes, shell or control characters. */
const SAFE = /^[A-Za-z0-9._:/%-]+$/;
function checkAccepted(r: LoadedConfig): void {
  for (const d of r.config.devices) {
    if (!/^[A-Za-z0-9.:-]+$/.test(d.address)) throw new Error(`accepted address ${JSON.stringify(d.address)}`);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(d.name) && d.name !== d.address) throw new Error(`accepted name ${JSON.stringify(d.name)}`);
    for (const i of [...d.interfaces, ...(d.spec.interfaces ?? [])]) if (!SAFE.test(i) || i.length > 64) throw new Error(`accepted interface ${JSON.stringify(i)}`);
    if (d.spec.vrf !== undefined && !SAFE.test(d.spec.vrf)) throw new Error(`accepted vrf ${JSON.stringify(d.spec.vrf)}`);
    for (const k of ["src", "dst"] as const) {
      const v = d.spec.filter?.[k];
      if (v !== undefined && !SAFE.test(v)) throw new Error(`accepted filter.${k} ${JSON.stringify(v)}`);
    }
    for (const a of d.agents) if (!/^[0-9a-fA-F.:]+$/.test(a.host) || a.port < 1 || a.port > 65535) throw new Error(`accepted agent ${JSON.stringify(a)}`);
    if (!Number.isInteger(d.restPort) || d.restPort < 1 || d.restPort > 65535) throw new Error("restPort");
  }
}

function attempt(load: () => LoadedConfig, text: string | undefined, seen: Map<string, number>): void {
  let r: LoadedConfig;
  try {
    r = load();
  } catch (e) {
    if (!(e instanceof ConfigFileError)) throw new Error(`not a ConfigFileError: ${(e as Error)?.stack ?? String(e)}`);
    if (e.issues.length === 0 || e.message.includes(PLAIN)) throw new Error(`bad error: ${e.message}\n--- input:\n${text ?? ""}`);
    if (text !== undefined) {
      const lines = text.split("\n").length;
      for (const i of e.issues) if (i.line < 0 || i.line > lines) throw new Error(`issue line ${i.line} of ${lines}`);
    }
    seen.set("rejected", (seen.get("rejected") ?? 0) + 1);
    return;
  }
  checkAccepted(r);
  for (const w of r.warnings) if (w.includes(PLAIN)) throw new Error("warning shows the password");
  seen.set("accepted", (seen.get("accepted") ?? 0) + 1);
}

function run<T>(name: string, arb: fc.Arbitrary<T>, runs: number, check: (x: T, seen: Map<string, number>) => void): Map<string, number> {
  const seen = new Map<string, number>();
  let slowest = 0;
  const before = heapMb();
  const t0 = performance.now();
  fc.assert(
    fc.property(arb, (x) => {
      const t = performance.now();
      check(x, seen);
      slowest = Math.max(slowest, performance.now() - t);
    }),
    { numRuns: runs },
  );
  const grew = heapMb() - before;
  console.log(`${name}: ${runs} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s, slowest ${slowest.toFixed(1)} ms, heap ${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MB; ${[...seen].map(([k, v]) => `${k} ${v}`).join(", ")}`);
  expect(grew).toBeLessThan(16);
  expect(Object.getOwnPropertyNames(Object.prototype).sort().join(",")).toBe(PROTO_KEYS);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  return seen;
}

describe("hostile config values", () => {
  it("the base config is accepted (so the cases below test the hostile edits, not a broken base)", () => {
    attempt(() => configFromObject(structuredClone(BASE), { baseDir: "/cfg" }), undefined, new Map());
    const text = JSON.stringify(BASE, null, 2);
    expect(parseConfigText(text, { file: "run.json", baseDir: "/cfg" }).config.devices).toHaveLength(3);
    expect(parseConfigText(stringify(BASE), { file: "run.yaml", baseDir: "/cfg" }).config.devices).toHaveLength(3);
  });

  it(`configFromObject: ${OBJECT_RUNS.toLocaleString("en")} configs with up to 5 hostile fields each`, () => {
    const seen = run("configFromObject", hostileConfig, OBJECT_RUNS, (c, s) => attempt(() => configFromObject(c, { baseDir: "/cfg" }), undefined, s));
    expect(seen.get("rejected") ?? 0).toBeGreaterThan(OBJECT_RUNS / 2);
    expect(seen.get("accepted") ?? 0).toBeGreaterThan(100);
  });

  it(`parseConfigText (JSON): ${JSON_RUNS.toLocaleString("en")} hostile configs, raw text and text edits`, () => {
    const token = fc.constantFrom("{", "}", "[", "]", ",", ":", '"', "\\", "\\u0000", "\\ud800", "\0", "\n", "1e999", "-", "null", "true", '"__proto__":', "/*", "\uFEFF");
    const edited = fc.tuple(hostileConfig, fc.array(fc.record({ at: fc.nat(), del: fc.nat(10), ins: token }), { maxLength: 4 })).map(([c, edits]) => {
      let text = JSON.stringify(c, null, 1);
      for (const e of edits) {
        const at = e.at % (text.length + 1);
        text = text.slice(0, at) + e.ins + text.slice(at + e.del);
      }
      return text;
    });
    const text = fc.oneof({ weight: 6, arbitrary: edited }, { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) }, { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? "null") });
    const seen = run("parseConfigText json", text, JSON_RUNS, (t, s) => attempt(() => parseConfigText(t, { file: "run.json", baseDir: "/cfg" }), t, s));
    expect(seen.get("rejected") ?? 0).toBeGreaterThan(JSON_RUNS / 2);
    expect(seen.get("accepted") ?? 0).toBeGreaterThan(20);
  });

  it(`parseConfigText (YAML): ${YAML_RUNS.toLocaleString("en")} hostile configs with up to 6 structural edits each`, () => {
    const hostileConfig = hostileConfigOf(3);
    const token = fc.constantFrom(":", ": ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: *a\n", "!!binary ", "!!js/function ", "!t ", "#", "'", '"', "\\", "\n", "\n  ", "\t", "%YAML 1.1\n---\n", "---\n", "? ", "|", ">", "~", "1e999", "__proto__: ", "\0", "\u0085", "\uFEFF", "a: &a [*a]\n");
    const edited = fc.tuple(hostileConfig, fc.array(fc.record({ at: fc.nat(), del: fc.nat(20), ins: fc.array(token, { maxLength: 3 }) }), { maxLength: 6 })).map(([c, edits]) => {
      let text = stringify(c);
      for (const e of edits) {
        const at = e.at % (text.length + 1);
        text = text.slice(0, at) + e.ins.join("") + text.slice(at + e.del);
      }
      return text;
    });
    const seen = run("parseConfigText yaml", fc.oneof({ weight: 8, arbitrary: edited }, { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 300 }) }), YAML_RUNS, (t, s) =>
      attempt(() => parseConfigText(t, { file: "run.yaml", baseDir: "/cfg" }), t, s),
    );
    expect(seen.get("rejected") ?? 0).toBeGreaterThan(YAML_RUNS / 2);
    expect(seen.get("accepted") ?? 0).toBeGreaterThan(10);
  });
});

describe("config bombs", () => {
  const load = (text: string, file = "run.yaml") => {
    const t = performance.now();
    const before = heapMb();
    let err: unknown;
    try {
      parseConfigText(text, { file, baseDir: "/cfg" });
    } catch (e) {
      err = e;
    }
    return { err, ms: performance.now() - t, grewMb: heapMb() - before };
  };

  it("billion laughs (aliases of aliases) ends in a ConfigFileError, quickly and without the expansion", () => {
    let text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
    for (let i = 1; i < 10; i++) text += `a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(",")}]\n`;
    text += "devices: *a9\n";
    const r = load(text);
    console.log(`billion laughs: ${r.ms.toFixed(0)} ms, heap ${r.grewMb.toFixed(1)} MB: ${(r.err as Error).message.split("\n")[0]}`);
    expect(r.err).toBeInstanceOf(ConfigFileError);
    expect(r.ms).toBeLessThan(2000);
    expect(r.grewMb).toBeLessThan(32);
  });

  it("100,000-deep nesting (YAML flow and JSON) ends in a ConfigFileError, not a stack overflow", () => {
    for (const [text, file] of [
      ["devices: " + "[".repeat(100_000) + "]".repeat(100_000), "run.yaml"],
      ['{"devices": ' + "[".repeat(100_000) + "]".repeat(100_000) + "}", "run.json"],
      ["devices:\n" + Array.from({ length: 2000 }, (_, i) => " ".repeat(i + 1) + "- ").join("\n"), "run.yaml"],
    ] as const) {
      const r = load(text, file);
      expect(r.err, file).toBeInstanceOf(ConfigFileError);
      expect(r.ms).toBeLessThan(5000);
    }
  });

  it("a file one byte over the limit (16 MiB) and an endless device are refused before parsing; a non-UTF-8 file is refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capsync-hostile-config-"));
    try {
      writeFileSync(join(dir, "big.yaml"), "#".repeat(MAX_CONFIG_BYTES + 1));
      writeFileSync(join(dir, "latin1.yaml"), Buffer.from([0x6f, 0x75, 0x74, 0x3a, 0x20, 0xe9, 0x0a]));
      for (const [f, why] of [
        [join(dir, "big.yaml"), /too large/],
        ["/dev/zero", /too large/],
        [join(dir, "latin1.yaml"), /not UTF-8/],
        [dir, /folder/],
      ] as const) {
        const before = heapMb();
        await expect(loadConfig(f)).rejects.toThrow(why);
        expect(heapMb() - before).toBeLessThan(16);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a plain password never shows in an error, whatever else is wrong", () => {
    const c = structuredClone(BASE) as { devices: Record<string, unknown>[] };
    c.devices[0]!.type = PLAIN; // the password's value in another field
    c.devices[0]!.interfaces = [PLAIN];
    c.devices[1]!.username = { x: PLAIN };
    for (const text of [stringify(c), JSON.stringify(c)]) {
      let msg = "";
      try {
        parseConfigText(text, { file: text.startsWith("{") ? "run.json" : "run.yaml", baseDir: "/cfg" });
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg).not.toBe("");
      expect(msg).not.toContain(PLAIN);
    }
    expect(parseYaml(stringify(c))).toBeTruthy();
  });
});
