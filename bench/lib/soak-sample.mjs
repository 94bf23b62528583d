// What the soaks measure, from /proc and the file system only (public interfaces: the processes
// under test are never asked anything): a process's RSS (VmRSS) and open file descriptors, the
// capture files under an agent's directory, the tcpdump children of a process; and the flatness
// of a series after its warm-up.
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";

/** VmRSS in MB, or NaN when the process is gone. */
export function rssMb(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Open file descriptors (entries of /proc/<pid>/fd), or NaN when the process is gone. */
export function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** What a process's descriptors point at, counted by kind ("socket", "pipe", "anon_inode:[eventfd]", a file path...): for a leak's cause. */
export function fdKinds(pid) {
  const kinds = {};
  let names = [];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return kinds;
  }
  for (const n of names) {
    let t;
    try {
      t = readlinkSync(`/proc/${pid}/fd/${n}`);
    } catch {
      continue;
    }
    const k = t.startsWith("socket:") ? "socket" : t.startsWith("pipe:") ? "pipe" : t.startsWith("anon_inode:") ? t : "file";
    kinds[k] = (kinds[k] ?? 0) + 1;
  }
  return kinds;
}

/** Direct children of `pid` whose command is `name` (e.g. tcpdump), from /proc/<pid>/task/<pid>/children. */
export function childrenNamed(pid, name) {
  let kids = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return kids.filter((k) => {
    try {
      return readFileSync(`/proc/${k}/comm`, "utf8").trim() === name;
    } catch {
      return false;
    }
  });
}

/** Every process whose command is `name` and whose working directory or arguments lie under `dir`. */
export function processesUnder(name, dir) {
  const out = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/comm`, "utf8").trim() !== name) continue;
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      let cwd = "";
      try {
        cwd = readlinkSync(`/proc/${p}/cwd`);
      } catch {
        /* gone or not ours to read */
      }
      if (cwd === dir || cwd.startsWith(`${dir}/`) || argv.some((a) => a.startsWith(`${dir}/`))) out.push(Number(p));
    } catch {
      /* exited */
    }
  }
  return out;
}

/**
 * Capture files under `dir`, recursively (.pcap, .pcapng, and tcpdump's ring names .pcap0,
 * .pcap1...; not tcpdump's .stderr files): those of one device (a name with `_device_`: the agent's
 * tmp_device_* while capturing, OVOC_device_* once stopped) and any other (a shared capture's spool),
 * each as count and bytes; `live*`: the device files still being written (under a dot-directory
 * such as .incoming).
 */
export function captureFiles(dir) {
  const r = { files: 0, bytes: 0, liveFiles: 0, liveBytes: 0, otherFiles: 0, otherBytes: 0 };
  const walk = (d, live) => {
    let ents = [];
    try {
      ents = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, live || e.name.startsWith("."));
      else if (e.isFile() && /\.pcap(ng)?\d*$/.test(e.name)) {
        let size = 0;
        try {
          size = statSync(p).size;
        } catch {
          continue; // rotated away between the listing and the stat
        }
        if (!e.name.includes("_device_")) {
          r.otherFiles++;
          r.otherBytes += size;
          continue;
        }
        r.files++;
        r.bytes += size;
        if (live) {
          r.liveFiles++;
          r.liveBytes += size;
        }
      }
    }
  };
  walk(dir, false);
  return r;
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length ? (s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2) : NaN;
};

/**
 * Flatness of `values` (one per sample, at `tS` seconds from the start) after a warm-up of
 * `warmupS`: baseline = median of the first tenth of the post-warm-up samples (at least 3), end =
 * median of the last tenth (at least 3); growth = end / baseline - 1. Also the peak over baseline
 * and the least-squares slope per hour (a leak shows as a steady slope however noisy the samples).
 */
export function flatness(tS, values, warmupS) {
  const post = [];
  for (let i = 0; i < values.length; i++) if (tS[i] >= warmupS && Number.isFinite(values[i])) post.push([tS[i], values[i]]);
  if (post.length < 6) return { samples: post.length, baseline: NaN, end: NaN, growth: NaN, peakGrowth: NaN, slopePerHour: NaN };
  const w = Math.max(3, Math.ceil(post.length / 10));
  const baseline = median(post.slice(0, w).map((p) => p[1]));
  const end = median(post.slice(-w).map((p) => p[1]));
  const peak = Math.max(...post.map((p) => p[1]));
  const n = post.length;
  const mt = post.reduce((s, p) => s + p[0], 0) / n;
  const mv = post.reduce((s, p) => s + p[1], 0) / n;
  const cov = post.reduce((s, p) => s + (p[0] - mt) * (p[1] - mv), 0);
  const vt = post.reduce((s, p) => s + (p[0] - mt) ** 2, 0);
  return { samples: n, window: w, baseline, end, growth: end / baseline - 1, peak, peakGrowth: peak / baseline - 1, slopePerHour: vt > 0 ? (cov / vt) * 3600 : 0 };
}
