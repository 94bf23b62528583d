// The run report with many pairs: servers sharing one clock chain every device to one reference,
// the summary line aggregates (pairs, pairs with loss, the five directions that lost most), report.html shows one row per pair and the worst pairs in full,
// report.txt and report.json every pair in full; and the streamed files are byte for byte what
// the in-memory renderers make of the same report.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fmtDuration, timeOfDay } from "./report-format.js";
import { renderHtml } from "./report-html.js";
import { renderJson, renderText } from "./report-text.js";
import { writeRunReport } from "./report.js";
import type { CapturePoint, RunReport } from "./report-types.js";
import { writeScenario } from "./synth.js";

const CHROMIUM = "/usr/bin/chromium";
if (!existsSync(CHROMIUM)) throw new Error("report tests need chromium (Debian: chromium)");
const root = mkdtempSync(join(tmpdir(), "capsync-report-fleet-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const START = 1_790_000_000_000_000_000n;
const PAIRS = 7;
const LOSS = [0, 0.02, 0.08, 0.01, 0.15, 0.05, 0.11];

let folder = "";
let out: Awaited<ReturnType<typeof writeRunReport>>;
let json: RunReport;

beforeAll(async () => {
  folder = join(root, "run");
  mkdirSync(folder);
  const points: CapturePoint[] = [];
  const pairs: [string, string][] = [];
  const window = { startedAt: new Date(Number(START / 1_000_000n)), stoppedAt: new Date(Number(START / 1_000_000n) + 4_500) };
  for (let i = 0; i < PAIRS; i++) {
    await writeScenario(folder, {
      seed: 100 + i,
      durationMs: 4_000,
      forwardIntervalMs: 20,
      reverseIntervalMs: 30,
      points: [{ name: `dev-${i}` }, { name: `srv-${i}`, linktype: "sll2", clockOffsetNanos: 300_000_000n }],
      hops: [{ delayMs: [4, 6], loss: LOSS[i]! }],
    });
    points.push({ name: `dev-${i}`, role: "device", files: [`dev-${i}.pcapng`], ...window }, { name: `srv-${i}`, role: "server", files: [`srv-${i}.pcapng`], clock: "agent-1", ...window });
    pairs.push([`dev-${i}`, `srv-${i}`]);
  }
  out = await writeRunReport(folder, { points, pairs, htmlDetailPairs: 3 });
  json = JSON.parse(readFileSync(join(folder, "report.json"), "utf8")) as RunReport;
}, 60_000);

describe("writeRunReport with many pairs", () => {
  it("pairs only what it is told to pair; report.json and report.txt hold every pair in full", () => {
    expect(json.pairs.map((p) => [p.a, p.b])).toEqual(LOSS.map((_, i) => [`dev-${i}`, `srv-${i}`]));
    expect(json.pairs[0]!.directions.map((d) => d.lost)).toEqual([0, 0]);
    for (const p of json.pairs.slice(1)) expect(p.directions[0].lost + p.directions[1].lost).toBeGreaterThan(0);
    const txt = readFileSync(join(folder, "report.txt"), "utf8");
    expect(txt.match(/^Pair dev-\d ↔ srv-\d$/gm)).toEqual(LOSS.map((_, i) => `Pair dev-${i} ↔ srv-${i}`));
    // No temporary spool files left behind.
    expect(readdirSync(folder).filter((f) => f.includes(".tmp"))).toEqual([]);
    // Streamed report.json is exactly what JSON.stringify makes of it.
    expect(readFileSync(join(folder, "report.json"), "utf8")).toBe(`${JSON.stringify(json, null, 2)}\n`);
  });

  it("servers on one clock: every device's offset is found through its own pair, against one reference", () => {
    expect(json.reference).toBe("srv-0");
    expect(json.notes).toEqual([]);
    for (const p of json.points) {
      // Each server is the reference's clock; each device 300 ms behind it (scenario truth).
      const want = p.role === "server" ? 0 : -300_000_000;
      expect(Math.abs(Number(p.clockOffset.nanos) - want)).toBeLessThanOrEqual(p.role === "server" ? 0 : p.clockOffset.uncertaintyNanos!);
    }
  });

  it("the summary line aggregates: pairs, pairs with loss, the five directions that lost most", () => {
    const dirs = json.pairs.flatMap((p) => p.directions).filter((d) => d.lost > 0);
    const worst = [...dirs].sort((x, y) => y.lost - x.lost || y.lossPercent - x.lossPercent).slice(0, 5);
    const text = (d: (typeof dirs)[number]) => `${d.from}→${d.to} lost ${d.lost}/${d.sent} (${d.lossPercent}%)${d.failure?.kind === "blackout" ? ` from ${timeOfDay(d.failure.at)}` : ""}, delay p50 ${fmtDuration(d.delay!.medianNanos)}`;
    expect(out.summaryLine).toBe(`capsync report: 7 pairs, 6 with loss; worst: ${worst.map(text).join("; ")}`);
    expect(json.summaryLine).toBe(out.summaryLine);
    // Separate pairs are not one path: nothing "vanished between" two of them.
    expect(json.paths).toEqual([]);
    expect(readFileSync(join(folder, "report.txt"), "utf8").trimEnd().split("\n").pop()).toBe(out.summaryLine);
  });

  it("report.html: one row per pair, the three with most loss in full, rendered by headless Chromium", () => {
    const html = join(folder, "report.html");
    const profile = mkdtempSync(join(root, "chromium-"));
    const d = spawnSync(CHROMIUM, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", `--user-data-dir=${profile}`, "--dump-dom", `file://${html}`], { encoding: "utf8", timeout: 60_000 });
    expect(d.status).toBe(0);
    const dom = d.stdout;
    expect(dom.match(/<tr id="pair-\d-\d">/g)).toHaveLength(2 * PAIRS);
    expect(dom).toContain('id="pairs-overview-note">7 pairs; in full below: the 3 with most loss');
    // Pairs 4 (15 %), 6 (11 %) and 2 (8 %) in full, in pair order, keeping their pair index in ids.
    expect([...dom.matchAll(/<h2>(dev-\d) ↔ srv-\d<\/h2>/g)].map((m) => m[1])).toEqual(["dev-2", "dev-4", "dev-6"]);
    expect(dom).toContain('id="dir-4-0-timeline"');
    expect(dom).not.toContain('id="dir-0-0-timeline"');
    const p4 = json.pairs[4]!.directions[0];
    expect(dom).toContain(`<tr id="pair-4-0"><td rowspan="2">dev-4 ↔ srv-4</td><td>dev-4 → srv-4</td><td class="num sent" data-value="${p4.sent}">${p4.sent}</td><td class="num lost" data-value="${p4.lost}">${p4.lost}</td>`);
    expect(out.report.pairs.map((p) => p.a)).toEqual(["dev-2", "dev-4", "dev-6"]);
  });

  it("a run with few pairs: the streamed files equal the in-memory renderings", async () => {
    const f = join(root, "few");
    mkdirSync(f);
    await writeScenario(f, { seed: 5, durationMs: 2_000, forwardIntervalMs: 20, reverseIntervalMs: 30, points: [{ name: "d" }, { name: "s", clockOffsetNanos: 1_000_000n }], hops: [{ delayMs: [1, 2], loss: 0.05 }] });
    const r = await writeRunReport(f, { points: [{ name: "d", role: "device", files: ["d.pcapng"] }, { name: "s", role: "server", files: ["s.pcapng"] }] });
    expect(r.report.pairs).toHaveLength(1);
    expect(readFileSync(join(f, "report.txt"), "utf8")).toBe(renderText(r.report));
    expect(readFileSync(join(f, "report.json"), "utf8")).toBe(renderJson(r.report));
    expect(readFileSync(join(f, "report.html"), "utf8")).toBe(renderHtml(r.report));
    expect(r.summaryLine).toMatch(/^capsync report: d→s lost \d+\/\d+ \(\d+(\.\d+)?%\), delay p50 \d+\.\d{3} ms; s→d lost /);
  });
});
