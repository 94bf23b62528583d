// A soak's curves as one standalone SVG (no dependency, no script): stacked panels sharing the
// time axis, the warm-up shaded, each series a polyline with its own colour and a legend entry.
//   soakSvg({ title, subtitle: [lines], tS, warmupS, panels: [{ label, unit, series: [{ name, values, color }] }] })

const W = 760;
const PANEL_H = 150;
const LEFT = 62;
const RIGHT = 16;
const GAP = 40;

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

/** "Nice" axis maximum: 1, 2 or 5 × 10^k at or above `v`. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const e = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}

export function soakSvg({ title, subtitle = [], tS, warmupS, panels }) {
  const lines = [subtitle].flat();
  const TOP = 32 + 14 * lines.length;
  const plotW = W - LEFT - RIGHT;
  const H = TOP + panels.length * (PANEL_H + GAP) + 10;
  const tMax = Math.max(1, tS.at(-1) ?? 1);
  const minutes = tMax >= 180;
  const x = (t) => LEFT + (t / tMax) * plotW;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${LEFT}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`);
  lines.forEach((l, i) => out.push(`<text x="${LEFT}" y="${34 + 14 * i}" fill="#555">${esc(l)}</text>`));
  panels.forEach((p, i) => {
    const y0 = TOP + i * (PANEL_H + GAP) + 10;
    const all = p.series.flatMap((s) => s.values.filter(Number.isFinite));
    const yMax = niceMax(Math.max(...all, 0) * 1.1);
    const y = (v) => y0 + PANEL_H - (v / yMax) * PANEL_H;
    out.push(`<rect x="${LEFT}" y="${y0}" width="${x(Math.min(warmupS, tMax)) - LEFT}" height="${PANEL_H}" fill="#f0f0f0"/>`);
    out.push(`<text x="${LEFT + 4}" y="${y0 + 12}" fill="#888">warm-up</text>`);
    for (let k = 0; k <= 4; k++) {
      const v = (yMax * k) / 4;
      out.push(`<line x1="${LEFT}" x2="${W - RIGHT}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
      out.push(`<text x="${LEFT - 4}" y="${y(v) + 4}" text-anchor="end" fill="#555">${fmt(v)}</text>`);
    }
    for (let k = 0; k <= 6; k++) {
      const t = (tMax * k) / 6;
      out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${y0 + PANEL_H}" y2="${y0 + PANEL_H + 4}" stroke="#555"/>`);
      out.push(`<text x="${x(t)}" y="${y0 + PANEL_H + 15}" text-anchor="middle" fill="#555">${minutes ? fmt(t / 60) : fmt(t)}</text>`);
    }
    out.push(`<rect x="${LEFT}" y="${y0}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#555"/>`);
    out.push(`<text x="${LEFT - 48}" y="${y0 + PANEL_H / 2}" transform="rotate(-90 ${LEFT - 48} ${y0 + PANEL_H / 2})" text-anchor="middle">${esc(p.unit)}</text>`);
    out.push(`<text x="${W - RIGHT}" y="${y0 - 4}" text-anchor="end" font-weight="bold">${esc(p.label)}</text>`);
    let lx = LEFT;
    for (const s of p.series) {
      const pts = s.values.map((v, k) => (Number.isFinite(v) ? `${x(tS[k]).toFixed(1)},${y(v).toFixed(1)}` : null)).filter(Boolean);
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${pts.join(" ")}"/>`);
      out.push(`<rect x="${lx}" y="${y0 - 13}" width="10" height="10" fill="${s.color}"/>`);
      out.push(`<text x="${lx + 14}" y="${y0 - 4}">${esc(s.name)}</text>`);
      lx += 24 + 6.2 * s.name.length;
    }
  });
  out.push(`<text x="${LEFT + plotW / 2}" y="${H - 4}" text-anchor="middle" fill="#555">${minutes ? "minutes" : "seconds"} since every device was capturing</text>`);
  out.push("</svg>");
  return out.join("\n") + "\n";
}
