import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { stringify } from "yaml";
import { normalisedForDisplay } from "./display.js";
import { configFromObject, ConfigFileError, parseConfigText, type LoadedConfig } from "./loader.js";
import { MSBR_INTERFACES } from "../drivers/audiocodes/interfaces.js";

const EXAMPLE = readFileSync(fileURLToPath(new URL("../../../../examples/run.yaml", import.meta.url)), "utf8");
const PLAIN = "Pw-a1b2c3d4e5";

/** The one allowed failure is a ConfigFileError whose lines point into the text and hide the password. */
function load(text: string, format: "yaml" | "json"): LoadedConfig | ConfigFileError {
  try {
    return parseConfigText(text, { file: `run.${format}`, baseDir: "/cfg", format });
  } catch (e) {
    if (!(e instanceof ConfigFileError)) throw e;
    const lineCount = text.split("\n").length;
    for (const i of e.issues) {
      expect(i.line).toBeGreaterThanOrEqual(1);
      expect(i.line).toBeLessThanOrEqual(lineCount);
    }
    expect(e.message).not.toContain(PLAIN);
    return e;
  }
}

describe("the loader only ever throws ConfigError", () => {
  test("random JSON values, as JSON and as YAML", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        load(JSON.stringify(v, null, 1) ?? "null", "json");
        load(stringify(v), "yaml");
      }),
      { numRuns: 300 },
    );
  });

  test("random text", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (text) => {
        load(text, "json");
        load(text, "yaml");
      }),
      { numRuns: 300 },
    );
  });

  test("random edits of the example", () => {
    const token = fc.constantFrom(":", ": ", "-", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: ", "!t ", "!!binary ", "#", "'", '"', "\\", "\n", "\n  ", " ", "\t", "%YAML 1.1\n---\n", "---\n", "?", "|", ">", "~", "null", "1e999", "__proto__: ");
    const edit = fc.record({ at: fc.nat(), del: fc.nat({ max: 20 }), ins: fc.array(token, { maxLength: 3 }) });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        let text = EXAMPLE;
        for (const e of edits) {
          const at = e.at % (text.length + 1);
          text = text.slice(0, at) + e.ins.join("") + text.slice(at + e.del);
        }
        load(text, "yaml");
      }),
      { numRuns: 400 },
    );
  });

  test("hostile YAML: alias bombs, deep nesting, prototype keys", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 9; i++) bomb.push(`${"bcdefghij"[i]}: &${"bcdefghij"[i]} [${Array(10).fill(`*${"abcdefghij"[i]}`).join(", ")}]`);
    expect(load(bomb.join("\n"), "yaml")).toBeInstanceOf(ConfigFileError);
    expect(load(`${"[".repeat(5000)}${"]".repeat(5000)}`, "yaml")).toBeInstanceOf(ConfigFileError);
    expect(load(`${"[".repeat(5000)}${"]".repeat(5000)}`, "json")).toBeInstanceOf(ConfigFileError);
    const proto = load(`__proto__: { polluted: 1 }\ndevices: []\n`, "yaml") as ConfigFileError;
    expect(proto.message).toBe("run.yaml:1 __proto__: unknown key '__proto__'\nrun.yaml:2 devices: at least one device is required");
    const protoJson = load(`{"__proto__": {"polluted": 1}, "devices": []}`, "json") as ConfigFileError;
    expect(protoJson.message).toBe("run.json:1 __proto__: unknown key '__proto__'\nrun.json:1 devices: at least one device is required");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

// Config-shaped values: mostly valid fields with the occasional wrong one, so runs reach the
// cross-field checks and the success path, not only the first type error.
const junk = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom("", "msb", "1.2.3.4:99999", "eth0", "-1s", null));
const agent = fc.oneof(fc.ipV4().map((ip) => `${ip}:20001`), fc.ipV6().map((ip) => `[${ip}]:${1 + (ip.length % 9)}`), fc.ipV4());
const typeAndInterfaces = fc.oneof(
  fc.record({ type: fc.constant("msbr"), interfaces: fc.uniqueArray(fc.constantFrom(...MSBR_INTERFACES), { minLength: 1 }) }),
  fc.record({ type: fc.constant("gwsbc"), interfaces: fc.constantFrom(undefined, ["eth-lan"], "eth-lan") }),
  fc.record({ type: fc.constant("iosxe"), interfaces: fc.constantFrom(["GigabitEthernet1"], ["Gi0/0/1", "Tunnel1"]) }),
);

/** `junk` = 0: coherent configs (mostly accepted); > 0: that weight of wrong values per field. */
function configValue(junkWeight: number) {
  const maybe = <T>(good: fc.Arbitrary<T>) =>
    junkWeight === 0 ? good : fc.oneof({ weight: 8, arbitrary: good }, { weight: junkWeight, arbitrary: junk });
  const device = fc
    .tuple(
      typeAndInterfaces,
      fc.record(
        {
          name: maybe(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/)),
          address: maybe(fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain())),
          username: maybe(fc.constant("Admin")),
          password: maybe(fc.oneof(fc.record({ env: fc.constantFrom("P1", "P_2") }), fc.record({ file: fc.constantFrom("pw", "/etc/pw") }), fc.constant(PLAIN))),
          allowPlain: maybe(fc.boolean()),
          tls: maybe(fc.constantFrom("verify", "insecure", { ca: "ca.pem" })),
          restPort: maybe(fc.integer({ min: 1, max: 65535 })),
          agents: maybe(fc.array(agent, { maxLength: 3 })),
          duration: maybe(fc.constantFrom("90s", "1d", 30, "1h30m")),
        },
        { requiredKeys: ["address", "username", "password"] },
      ),
      maybe(fc.constant(undefined)),
    )
    .map(([ti, rest, wrongType]) => {
      const d: Record<string, unknown> = { ...rest, type: wrongType ?? ti.type };
      if (ti.interfaces !== undefined) d.interfaces = ti.interfaces;
      return d;
    });
  return fc.record(
    {
      output: maybe(fc.constantFrom("runs", "/var/capsync")),
      concurrency: maybe(fc.integer({ min: 1, max: 4096 })),
      allowPlain: maybe(fc.boolean()),
      timeouts: maybe(fc.record({ rest: fc.constantFrom("5s", 12) }, { requiredKeys: [] })),
      agents: maybe(
        fc.record({ keyFile: fc.constant("agent.key"), legacy: fc.boolean(), answerPort: fc.constantFrom(0, 20002) }, { requiredKeys: ["keyFile"] }),
      ),
      syslog: maybe(fc.record({ listen: fc.constantFrom("0.0.0.0:20514", "[::]:0", 20001), sharePortWithAgents: fc.boolean(), tcp: fc.boolean() }, { requiredKeys: [] })),
      stop: maybe(
        fc.record(
          { alarms: fc.array(fc.oneof(fc.constant("connection-lost"), fc.constant({ pattern: "(?<device>\\S+)", flags: "i" }))), duration: fc.constantFrom("24h", 3600) },
          { requiredKeys: [] },
        ),
      ),
      devices: maybe(fc.array(device, { minLength: 1, maxLength: 4 })),
    },
    { requiredKeys: ["devices", "agents"] },
  );
}

describe("config-shaped documents", () => {
  test("YAML and JSON agree, failures are ConfigErrors, successes survive display → reload", () => {
    let accepted = 0;
    fc.assert(
      // "<<" is YAML's merge key (the config supports it for shared anchors); in JSON it is an
      // ordinary key, so documents using it legitimately differ between the two formats.
      fc.property(fc.oneof(configValue(0), configValue(1)).filter((v) => !JSON.stringify(v).includes('"<<"')), (value) => {
        const fromYaml = load(stringify(value), "yaml");
        const fromJson = load(JSON.stringify(value, null, 2), "json");
        if (fromYaml instanceof ConfigFileError || fromJson instanceof ConfigFileError) {
          expect(fromJson).toBeInstanceOf(ConfigFileError);
          expect(fromYaml).toBeInstanceOf(ConfigFileError);
          // Same problems, only the line numbers differ between the two layouts.
          const strip = (e: unknown) => (e as ConfigFileError).issues.map((i) => `${i.path}: ${i.message.replace(/\(line \d+\)/, "")}`).sort();
          expect(strip(fromJson)).toEqual(strip(fromYaml));
          return;
        }
        accepted++;
        expect({ ...fromJson.config, configFile: "" }).toEqual({ ...fromYaml.config, configFile: "" });
        const config = fromYaml.config;
        const shown = normalisedForDisplay(config) as unknown as { devices: { password: unknown }[] };
        expect(JSON.stringify(shown)).not.toContain(PLAIN);
        shown.devices.forEach((d) => {
          if (d.password === "***") d.password = { env: "SHOWN" };
        });
        const again = configFromObject(shown, { baseDir: "/elsewhere" }).config;
        expect({
          ...again,
          configFile: config.configFile,
          devices: again.devices.map((d, i) => ({ ...d, password: config.devices[i]!.password })),
        }).toEqual(config);
      }),
      { numRuns: 400 },
    );
    // The generator must reach the success path often enough for the round trip to mean something.
    expect(accepted).toBeGreaterThan(50);
  });
});
