import { readFileSync } from "node:fs";
import { join } from "node:path";
import { capturePoints } from "@capsync/cpe-capture/artifacts/report";
import { ReportModel } from "@capsync/pcap/report-model";
import { mergeCaptures } from "@capsync/pcap";
const folder = process.env.FOLDER;
const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
const { points, pairs } = capturePoints(manifest, folder);
const abs = points.map((p) => ({ ...p, files: p.files.map((f) => join(folder, f)) }));
let peak = 0;
const t = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 10);
const m = (l) => { const u = process.memoryUsage(); console.log(l, "rss", (u.rss/1048576).toFixed(0), "peak", (peak/1048576).toFixed(0), "heap", (u.heapUsed/1048576).toFixed(0), "ext", (u.external/1048576).toFixed(0), "ab", (u.arrayBuffers/1048576).toFixed(0)); peak = 0; };
m("start");
const model = await ReportModel.build({ points: abs, pairs, ...(process.env.MS ? { match: { maxSamples: Number(process.env.MS) } } : {}) });
m("pass1"); global.gc?.(); m("pass1 gc");
while (await model.matchNext());
m("pass2"); global.gc?.(); m("pass2 gc");
if (process.env.MERGE) { await mergeCaptures(abs.map((p) => ({ name: p.name, files: p.files })), "/tmp/report-bench/m.pcapng"); m("merge"); }
clearInterval(t);
