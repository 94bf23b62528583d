// The layout rules of DESIGN.md / STYLE.md that a refactor can silently break, checked on the source
// text: file size by job, no import cycle between product files, vendor facts only in their vendor
// folder, and the product package free of the lab and the emulators at run time.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const PACKAGES = path.join(ROOT, "packages");

/** Non-test TypeScript sources under `dir`, as absolute paths. */
function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) {
        if (name !== "node_modules" && name !== "dist") walk(p);
      } else if (name.endsWith(".ts") && !name.endsWith(".test.ts") && !name.endsWith(".d.ts")) {
        out.push(p);
      }
    }
  };
  walk(dir);
  return out.sort();
}

const productFiles = readdirSync(PACKAGES)
  .map((p) => path.join(PACKAGES, p, "src"))
  .filter((d) => existsSync(d))
  .flatMap(sources);
const rel = (p: string): string => path.relative(ROOT, p);
const lineCount = (p: string): number => readFileSync(p, "utf8").split("\n").length - 1;

/** Relative import/export specifiers of a file, resolved to .ts paths (type-only imports included). */
function localImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+["'](\.{1,2}\/[^"']+)["']/gms)) {
    let target = path.resolve(path.dirname(file), m[1]!).replace(/\.js$/, ".ts");
    if (!existsSync(target) && existsSync(target.replace(/\.ts$/, "/index.ts"))) target = target.replace(/\.ts$/, "/index.ts");
    out.push(target);
  }
  return out;
}

/** Every elementary cycle found by a depth-first walk, as a list of files (first == last). */
function importCycles(files: readonly string[]): string[][] {
  const graph = new Map(files.map((f) => [f, localImports(f)] as const));
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (f: string): void => {
    state.set(f, "open");
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (!graph.has(d)) continue;
      if (state.get(d) === "open") cycles.push([...stack.slice(stack.indexOf(d)), d].map(rel));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, "done");
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return cycles;
}

describe("layout", () => {
  it("finds the product sources it checks", () => {
    expect(productFiles.length).toBeGreaterThan(100);
    expect(productFiles.map(rel)).toContain("packages/cpe-capture/src/drivers/index.ts");
  });

  it("no product source file is over 600 lines", () => {
    const big = productFiles.filter((f) => lineCount(f) > 600).map((f) => `${rel(f)} (${lineCount(f)} lines)`);
    expect(big).toEqual([]);
  });

  it("every product source file over 400 lines opens with a comment naming its job", () => {
    const bare = productFiles.filter((f) => lineCount(f) > 400 && !/^(\/\/|\/\*)/.test(readFileSync(f, "utf8"))).map(rel);
    expect(bare).toEqual([]);
  });

  it("no import cycle between product files", () => {
    expect(importCycles(productFiles)).toEqual([]);
  });

  it("the cycle check sees a cycle when there is one", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "capsync-cycle-"));
    try {
      writeFileSync(path.join(dir, "a.ts"), 'import { b } from "./b.js";\nexport const a = 1;\n');
      writeFileSync(path.join(dir, "b.ts"), 'import type { a } from "./a.js";\nexport const b = 2;\n');
      writeFileSync(path.join(dir, "c.ts"), 'import { a } from "./a.js";\n');
      const found = importCycles([path.join(dir, "a.ts"), path.join(dir, "b.ts"), path.join(dir, "c.ts")]);
      expect(found.map((c) => c.map((f) => path.basename(f)))).toEqual([["a.ts", "b.ts", "a.ts"]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("only vendor folders and the registry name a vendor in cpe-capture", () => {
    const src = path.join(PACKAGES, "cpe-capture/src");
    const allowed = (f: string): boolean => {
      const r = path.relative(src, f).split(path.sep);
      if (r[0] === "drivers" && r.length > 2 && r[1] !== "common") return true; // drivers/<vendor>/...
      return r.join("/") === "drivers/index.ts" || r.join("/") === "cli.ts";
    };
    const named = sources(src)
      .filter((f) => !allowed(f) && /iosxe|nxos|audiocodes|msbr|gwsbc/i.test(readFileSync(f, "utf8")))
      .map(rel);
    expect(named).toEqual([]);
  });

  it("cpe-capture has no runtime dependency on the lab, the emulators or the agent", () => {
    const pkg = JSON.parse(readFileSync(path.join(PACKAGES, "cpe-capture/package.json"), "utf8")) as { dependencies?: Record<string, string> };
    const deps = Object.keys(pkg.dependencies ?? {});
    expect(deps.filter((d) => ["@capsync/emulators", "@capsync/lab", "@capsync/server-capture"].includes(d))).toEqual([]);
    const imports = sources(path.join(PACKAGES, "cpe-capture/src")).filter((f) =>
      /from\s+["']@capsync\/(emulators|server-capture)/.test(readFileSync(f, "utf8")),
    );
    expect(imports.map(rel)).toEqual([]);
  });
});
