#!/usr/bin/env node
// Merge and match benchmark: writes two synthetic captures of ~1 GB in total (device: Ethernet,
// server: Linux SLL2 with its clock 2.5 s ahead, 1 % loss each way) with our pcapng writer into a
// temp dir, then times our mergeCaptures next to `mergecap -w` on the same files (alternating
// who goes first; median and best of ROUNDS), then matchPair over the same files. Prints peak RSS of this process
// (process.resourceUsage().maxRSS, generation included) and the throughput ratio last.
// Targets: merge ≥ 1× mergecap's throughput; RSS < 256 MB whatever the input size.
// Usage: npm run build && node bench/merge.mjs   (TOTAL_MB=1024 ROUNDS=5 by default)
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, openSync, readSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ethernetFrame, ipPacket, matchPair, mergeCaptures, PcapngWriter, prng, sll2Frame } from "@capsync/pcap";

const TOTAL_MB = Number(process.env.TOTAL_MB ?? 1024);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
if (spawnSync("sh", ["-c", "command -v mergecap"]).status !== 0) {
  console.error("mergecap not found (Debian: wireshark-common)");
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "capsync-bench-merge-"));
const mb = (n) => (n / 1e6).toFixed(1);
const secs = (ns) => Number(ns) / 1e9;

/** Frames with a slot for a per-packet counter, so generation is a few byte writes per packet. */
function templates(dev, srv) {
  const sizes = [1400, 60, 576, 1200, 90, 1000];
  return sizes.map((n, i) => {
    const proto = i % 3 === 0 ? "udp" : "tcp";
    const mk = (dir) =>
      ipPacket({ src: dir === 0 ? dev : srv, dst: dir === 0 ? srv : dev, protocol: proto, srcPort: dir === 0 ? 40000 + i : 443, dstPort: dir === 0 ? 443 : 40000 + i, seq: 0, ack: 1, ipId: 0, payload: Buffer.alloc(n, i) });
    return [mk(0), mk(1)];
  });
}

async function generate() {
  const rnd = prng(42);
  const OFFSET = 2_500_000_000n;
  const START = 1_790_000_000_000_000_000n;
  const tpl = templates("10.1.0.2", "10.9.0.5");
  const a = await PcapngWriter.create(join(dir, "device.pcapng"));
  const b = await PcapngWriter.create(join(dir, "server.pcapng"));
  a.addInterface({ linktype: 1, name: "eth-wan" });
  b.addInterface({ linktype: 276, name: "any" });
  const target = (TOTAL_MB * 1e6) / 2;
  // Sends every 20 µs alternately each way; delay 5 ms + up to 8 µs of jitter (below the spacing,
  // so each file stays in time order when its sends and receipts are interleaved).
  const pendingA = []; // receipts at A (b→a), in time order
  const pendingB = [];
  let t = START;
  let i = 0;
  const ids = [0, 0];
  const stamp = (frame, dir, n) => {
    const ip = Buffer.from(frame);
    ip.writeUInt16BE(ids[dir]++ & 0xffff, 4);
    ip.writeUInt32BE(n >>> 0, ip[9] === 6 ? 24 : 28); // TCP seq, or the first UDP payload bytes
    return ip;
  };
  const flush = async (w, q, upTo, mk) => {
    while (q.length > 0 && q[0].t <= upTo) {
      const r = q.shift();
      if (w.writePacket({ interfaceId: 0, tsNanos: r.t, data: mk(r.ip) })) await w.drain();
    }
  };
  while (a.bytesWritten + b.bytesWritten < 2 * target) {
    const dir = i & 1;
    const ip = stamp(tpl[i % tpl.length][dir], dir, i);
    const lost = rnd() < 0.01;
    const arrive = t + 5_000_000n + BigInt(Math.floor(rnd() * 8000));
    if (dir === 0) {
      await flush(a, pendingA, t, ethernetFrame);
      if (a.writePacket({ interfaceId: 0, tsNanos: t, data: ethernetFrame(ip) })) await a.drain();
      if (!lost) pendingB.push({ t: arrive + OFFSET, ip });
    } else {
      await flush(b, pendingB, t + OFFSET, sll2Frame);
      if (b.writePacket({ interfaceId: 0, tsNanos: t + OFFSET, data: sll2Frame(ip) })) await b.drain();
      if (!lost) pendingA.push({ t: arrive, ip });
    }
    t += 20_000n;
    i++;
  }
  await flush(a, pendingA, t + 10n ** 12n, ethernetFrame);
  await flush(b, pendingB, t + 10n ** 12n, sll2Frame);
  await a.close();
  await b.close();
  return { packets: i, files: [join(dir, "device.pcapng"), join(dir, "server.pcapng")] };
}

function warm(files) {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const f of files) {
    const fd = openSync(f, "r");
    while (readSync(fd, buf, 0, buf.length, null) > 0);
    closeSync(fd);
  }
}

try {
  const g0 = process.hrtime.bigint();
  const { packets, files } = await generate();
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  const rssGen = process.resourceUsage().maxRSS / 1024;
  console.log(`generated ${packets} packets, ${mb(bytes)} MB in ${secs(process.hrtime.bigint() - g0).toFixed(1)} s: ${files.map((f) => `${f} ${mb(statSync(f).size)} MB`).join(", ")}`);
  warm(files);
  const out = join(dir, "merged.pcapng");
  const ours = [];
  const theirs = [];
  let mergedPackets = 0;
  const runOurs = async () => {
    rmSync(out, { force: true });
    const t0 = process.hrtime.bigint();
    const res = await mergeCaptures(
      [
        { name: "device", files: [files[0]] },
        { name: "server", files: [files[1]], offsetNanos: 2_500_000_000n, comments: ["clock offset 2500000000 ns removed"] },
      ],
      out,
    );
    mergedPackets = res.packets;
    return secs(process.hrtime.bigint() - t0);
  };
  const runMergecap = () => {
    rmSync(out, { force: true });
    const t0 = process.hrtime.bigint();
    const mc = spawnSync("mergecap", ["-w", out, ...files], { stdio: ["ignore", "ignore", "pipe"] });
    if (mc.status !== 0) throw new Error(`mergecap failed: ${mc.stderr}`);
    return secs(process.hrtime.bigint() - t0);
  };
  // Alternate who goes first: page-cache and writeback state favour neither side.
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) (ours.push(await runOurs()), theirs.push(runMergecap()));
    else (theirs.push(runMergecap()), ours.push(await runOurs()));
    console.log(`round ${r + 1}: ours ${ours[r].toFixed(2)} s (${mb(bytes / ours[r])} MB/s), mergecap ${theirs[r].toFixed(2)} s (${mb(bytes / theirs[r])} MB/s)`);
  }
  rmSync(out, { force: true });
  const rssMerge = process.resourceUsage().maxRSS / 1024;
  if (mergedPackets !== packets + 0 && mergedPackets < packets) console.log(`note: merged ${mergedPackets} packets`);
  const m0 = process.hrtime.bigint();
  const match = await matchPair({ name: "device", files: [files[0]] }, { name: "server", files: [files[1]] });
  const mt = secs(process.hrtime.bigint() - m0);
  const [ab, ba] = match.directions;
  console.log(
    `match: ${mt.toFixed(2)} s (${mb(bytes / mt)} MB/s, two passes); offset ${(Number(match.clock.offsetNanos) / 1e9).toFixed(6)} s ± ${(match.clock.uncertaintyNanos / 1e3).toFixed(1)} µs; ` +
      `device→server lost ${ab.lost}/${ab.sent}, server→device lost ${ba.lost}/${ba.sent}, delay p50 ${(ab.delay.medianNanos / 1e6).toFixed(3)} ms`,
  );
  const bestOurs = Math.min(...ours);
  const bestTheirs = Math.min(...theirs);
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const rss = process.resourceUsage().maxRSS / 1024;
  console.log(`merge throughput: ours ${mb(bytes / median(ours))} MB/s median, ${mb(bytes / bestOurs)} best; mergecap ${mb(bytes / median(theirs))} MB/s median, ${mb(bytes / bestTheirs)} best (${ROUNDS} rounds)`);
  console.log(`peak RSS: ${rss.toFixed(0)} MB (target < 256 MB; after generating ${rssGen.toFixed(0)} MB, after merging ${rssMerge.toFixed(0)} MB)`);
  console.log(`ratio ours/mergecap merge throughput: ${(median(theirs) / median(ours)).toFixed(2)}x median, ${(bestTheirs / bestOurs).toFixed(2)}x best (target ≥ 1.00x)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
