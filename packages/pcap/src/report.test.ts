// The run report end to end: captures in a run folder → merged.pcapng + report.txt/json/html,
// checked against the scenario's truth, with tshark/capinfos and a headless Chromium render.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeRunReport } from "./report.js";
import type { RunReport } from "./report-types.js";
import { writeScenario, type ScenarioResult } from "./synth.js";

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const CHROMIUM = "/usr/bin/chromium";
const tools = has("tshark") && has("capinfos");
const chromium = existsSync(CHROMIUM);
if (!tools || !chromium) throw new Error("report tests need tshark, capinfos and chromium (Debian: tshark wireshark-common chromium)");

const root = mkdtempSync(join(tmpdir(), "capsync-report-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const START = 1_790_000_000_000_000_000n;

async function twoPointRun(): Promise<{ folder: string; sc: ScenarioResult; out: Awaited<ReturnType<typeof writeRunReport>> }> {
  const folder = join(root, "run-two");
  mkdirSync(folder);
  const sc = await writeScenario(folder, {
    seed: 31,
    durationMs: 20_000,
    forwardIntervalMs: 20,
    reverseIntervalMs: 30,
    points: [{ name: "msbr-192.0.2.10" }, { name: "ovoc-198.51.100.5", linktype: "sll2", clockOffsetNanos: 1_500_000_000n }],
    hops: [{ delayMs: [8, 12], loss: 0.02, blackoutFromMs: 15_000 }],
    unrelated: true,
  });
  // The orchestrator's clock agrees with the server's (1.5 s ahead of true time).
  const orch = (ms: number) => new Date(Number((START + 1_500_000_000n) / 1_000_000n) + ms);
  const alarmAt = orch(17_000); // 2 s into the blackout
  const window = { startedAt: orch(0), stoppedAt: orch(20_500) };
  const out = await writeRunReport(folder, {
    points: [
      { name: "msbr-192.0.2.10", role: "device", files: ["msbr-192.0.2.10.pcapng"], ...window },
      { name: "ovoc-198.51.100.5", role: "server", files: ["ovoc-198.51.100.5.pcapng"], ...window },
    ],
    alarmAt,
  });
  return { folder, sc, out };
}

let two: Awaited<ReturnType<typeof twoPointRun>> | undefined;
const getTwo = async () => (two ??= await twoPointRun());

describe("writeRunReport", () => {
  it("writes merged.pcapng and the three reports; the numbers are the scenario's truth", async () => {
    const { folder, sc, out } = await getTwo();
    expect(out.files.map((f) => f.slice(folder.length + 1))).toEqual(["merged.pcapng", "report.txt", "report.json", "report.html"]);
    const r = JSON.parse(readFileSync(join(folder, "report.json"), "utf8")) as RunReport;
    expect(r.reference).toBe("ovoc-198.51.100.5");
    const lost = (d: 0 | 1) => sc.packets.filter((p) => p.dir === d && p.lostAtHop !== null).length;
    const [fwd, rev] = r.pairs[0]!.directions;
    expect([fwd.from, fwd.to, fwd.lost, fwd.sent]).toEqual(["msbr-192.0.2.10", "ovoc-198.51.100.5", lost(0), sc.packets.filter((p) => p.dir === 0).length]);
    expect(rev.lost).toBe(lost(1));
    // The device clock is 1.5 s behind the server's: offset −1.5 s within the stated uncertainty.
    const dev = r.points[0]!;
    expect(Math.abs(Number(BigInt(dev.clockOffset.nanos!) + 1_500_000_000n))).toBeLessThanOrEqual(dev.clockOffset.uncertaintyNanos!);
    // The blackout is placed on the server's axis, 2 s before the alarm.
    expect(fwd.failure?.kind).toBe("blackout");
    expect(fwd.failure!.beforeAlarmMs).toBeGreaterThan(-2_100);
    expect(fwd.failure!.beforeAlarmMs).toBeLessThan(-1_900);
    expect(fwd.failure!.at.startsWith("2026-09-21T14:13:36.5")).toBe(true);
    expect(fwd.delay!.medianNanos).toBeGreaterThan(9e6);
    expect(fwd.delay!.medianNanos).toBeLessThan(11e6);
    expect(out.summaryLine).toBe(r.summaryLine);
    expect(out.summaryLine).toMatch(new RegExp(`^capsync report: msbr-192\\.0\\.2\\.10→ovoc-198\\.51\\.100\\.5 lost ${lost(0)}/${fwd.sent} \\(\\d+\\.?\\d*%\\) from 14:13:36\\.5\\d\\d, delay p50 \\d+\\.\\d{3} ms; ovoc-198\\.51\\.100\\.5→msbr-192\\.0\\.2\\.10 lost ${lost(1)}/`));
    const txt = readFileSync(join(folder, "report.txt"), "utf8");
    expect(txt).toContain("nothing got through from");
    expect(txt).toContain(`msbr-192.0.2.10 → ovoc-198.51.100.5`);
    expect(txt).toMatch(new RegExp(`\\b${fwd.sent}\\s+${fwd.delivered}\\s+${fwd.lost}\\b`));
    expect(txt.trimEnd().split("\n").pop()).toBe(out.summaryLine);
    expect(r.merged?.interfaces).toEqual(["msbr-192.0.2.10", "ovoc-198.51.100.5"]);
  });

  it("merged.pcapng: capinfos/tshark see every packet and the capture points as interface names", async () => {
    const { folder, sc, out } = await getTwo();
    const merged = join(folder, "merged.pcapng");
    const total = out.report.points.reduce((n, p) => n + p.packets, 0);
    const info = spawnSync("capinfos", ["-c", "-I", "-o", merged], { encoding: "utf8" }).stdout;
    expect(info).toMatch(new RegExp(`Number of packets:\\s+${total}\\b`));
    expect(info).toMatch(/Name = msbr-192\.0\.2\.10/);
    expect(info).toMatch(/Name = ovoc-198\.51\.100\.5/);
    expect(info).toMatch(/Comment = capsync: clock offset -1\d{9} ns/);
    expect(info).toMatch(/Strict time order:\s+True/);
    const names = spawnSync("tshark", ["-r", merged, "-T", "fields", "-e", "frame.interface_name"], { encoding: "utf8" }).stdout.trim().split("\n");
    // The server saw everything it sent and what reached it from the device.
    expect(names.filter((n) => n === "ovoc-198.51.100.5")).toHaveLength(sc.packets.filter((p) => p.dir === 1 || p.lostAtHop === null).length);
  });

  it("report.html renders in headless Chromium, self-contained, with the figures in the DOM", async () => {
    const { folder, out } = await getTwo();
    const html = join(folder, "report.html");
    const page = readFileSync(html, "utf8");
    // No network: nothing to fetch, no scripts.
    expect(page.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, "")).not.toMatch(/https?:|<script|<link|@import|url\(/i);
    const profile = mkdtempSync(join(root, "chromium-"));
    const shot = join(root, "report.png");
    const base = [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      `--user-data-dir=${profile}`,
      "--enable-logging=stderr",
      "--v=0",
    ];
    const s = spawnSync(CHROMIUM, [...base, "--window-size=1100,1600", `--screenshot=${shot}`, `file://${html}`], { encoding: "utf8", timeout: 60_000 });
    expect(s.status).toBe(0);
    expect(statSync(shot).size).toBeGreaterThan(20_000);
    expect(readFileSync(shot).subarray(1, 4).toString()).toBe("PNG");
    const d = spawnSync(CHROMIUM, [...base, "--dump-dom", `file://${html}`], { encoding: "utf8", timeout: 60_000 });
    expect(d.status).toBe(0);
    // Page errors and failed loads show up in Chromium's log as console errors / net errors.
    expect(`${s.stderr}\n${d.stderr}`).not.toMatch(/Uncaught|net::ERR_|Failed to load resource|CONSOLE\(/);
    const dom = d.stdout;
    const fwd = out.report.pairs[0]!.directions[0];
    expect(dom).toContain(`<td class="num lost" data-value="${fwd.lost}">${fwd.lost}</td>`);
    expect(dom).toContain(`<td class="num sent" data-value="${fwd.sent}">${fwd.sent}</td>`);
    expect(dom).toContain(out.summaryLine.replace(/&/g, "&amp;").replace(/>/g, "&gt;"));
    expect(dom).toContain('id="dir-0-0-timeline"');
    expect(dom).toContain('id="dir-0-1-timeline"');
    expect((dom.match(/<rect class="lost"/g) ?? []).length).toBeGreaterThan(10);
    expect(dom).toContain('class="alarm"');
    expect(dom).toContain(fwd.failure!.at);
  });

  it("multi-hop: per hop pair, and where packets vanished", async () => {
    const folder = join(root, "run-hops");
    mkdirSync(folder);
    const sc = await writeScenario(folder, {
      seed: 41,
      durationMs: 8_000,
      forwardIntervalMs: 10,
      reverseIntervalMs: 10,
      points: [{ name: "cpe" }, { name: "edge-router", clockOffsetNanos: 250_000_000n }, { name: "ovoc", clockOffsetNanos: -40_000_000n }],
      hops: [{ delayMs: [1, 2] }, { delayMs: [5, 7], blackoutFromMs: 6_000 }],
    });
    const window = { startedAt: new Date(Number(START / 1_000_000n)), stoppedAt: new Date(Number(START / 1_000_000n) + 8_500) };
    const out = await writeRunReport(folder, {
      points: [
        { name: "cpe", role: "device", files: ["cpe.pcapng"], ...window },
        { name: "edge-router", role: "hop", files: ["edge-router.pcapng"], ...window },
        { name: "ovoc", role: "server", files: ["ovoc.pcapng"], ...window },
      ],
    });
    const r = out.report;
    expect(r.pairs.map((p) => [p.a, p.b])).toEqual([
      ["cpe", "edge-router"],
      ["edge-router", "ovoc"],
    ]);
    const lostAt = (hop: number) => sc.packets.filter((p) => p.dir === 0 && p.lostAtHop === hop).length;
    expect(lostAt(0)).toBe(0);
    expect(r.pairs[0]!.directions[0].lost).toBe(0);
    expect(r.pairs[1]!.directions[0].lost).toBe(lostAt(1));
    expect(r.paths[0]).toMatchObject({ direction: "cpe → ovoc", vanishedBetween: ["edge-router", "ovoc"] });
    expect(r.paths[1]!.vanishedBetween).toBeUndefined();
    // Every point's clock is chained to the reference (the server) through the hop.
    const off = Object.fromEntries(r.points.map((p) => [p.name, p.clockOffset]));
    expect(Math.abs(Number(off["cpe"]!.nanos) - 40_000_000)).toBeLessThanOrEqual(off["cpe"]!.uncertaintyNanos!);
    expect(Math.abs(Number(off["edge-router"]!.nanos) - 290_000_000)).toBeLessThanOrEqual(off["edge-router"]!.uncertaintyNanos!);
    expect(out.summaryLine).toContain("vanished between edge-router and ovoc");
    expect(readFileSync(join(folder, "report.txt"), "utf8")).toContain("packets vanished between edge-router and ovoc");
    expect(r.merged?.interfaces).toEqual(["cpe", "edge-router", "ovoc"]);
  });
});
