// A/B stand-in: resolves @capsync/pcap's dist files to a saved copy (PCAP_BEFORE_DIST, a copy of
// packages/pcap/dist taken before a change), in this process only, so the report+merge of the old
// and new reader can be run side by side: `node --import ./bench/lib/rss-pcapbefore.mjs bench/report-fleet.mjs`.
import { register } from "node:module";
import { pathToFileURL } from "node:url";

const dir = process.env.PCAP_BEFORE_DIST;
if (!dir) throw new Error("PCAP_BEFORE_DIST=<copy of packages/pcap/dist> is required");
const to = pathToFileURL(dir.endsWith("/") ? dir : `${dir}/`).href;
const hook = `export async function resolve(s, c, next) { const r = await next(s, c); const i = r.url.indexOf("/packages/pcap/dist/"); return i >= 0 ? { ...r, url: ${JSON.stringify(to)} + r.url.slice(i + 20) } : r; }`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
