// Small SVG figures for the run report: line charts with axes, ticks and a legend, and a scatter
// plot with segments joining pairs. Plain SVG strings, rendered to PNG by resvg (png.ts).

export interface Series {
  name: string;
  points: [number, number][];
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const W = 640;
const H = 360;
const M = { left: 64, right: 16, top: 36, bottom: 44 };

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** About five round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / 5;
  const step = [1, 2, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw))).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const label = (v: number): string =>
  Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4)));

/** At most `max` points, evenly spaced, last point kept: long runs stay light. */
function thin(points: [number, number][], max = 800): [number, number][] {
  if (points.length <= max) return points;
  const every = Math.ceil(points.length / max);
  return points.filter((_, i) => i % every === 0 || i === points.length - 1);
}

/**
 * A line chart of several series on shared axes.
 *
 * @example
 * const svg = lineChart('Loss', 'step', 'loss', [{ name: 'total', points: [[0, 4], [1, 3.5]] }]);
 */
export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (all.length === 0) [x0, x1, y0, y1] = [0, 1, 0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const px = (x: number): number => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (y: number): number => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  for (const t of ticks(y0, y1)) {
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(t)}" y2="${py(t)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${M.left - 6}" y="${py(t) + 4}" text-anchor="end">${label(t)}</text>`);
  }
  for (const t of ticks(x0, x1)) parts.push(`<text x="${px(t)}" y="${H - M.bottom + 16}" text-anchor="middle">${label(t)}</text>`);
  parts.push(
    `<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#888"/>`,
  );
  parts.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 8}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`);
  series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const pts = thin(s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
    if (pts.length === 1) parts.push(`<circle cx="${px(pts[0]![0])}" cy="${py(pts[0]![1])}" r="3" fill="${colour}"/>`);
    else if (pts.length > 1)
      parts.push(
        `<polyline fill="none" stroke="${colour}" stroke-width="1.6" points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`,
      );
    parts.push(`<rect x="${M.left + 8}" y="${M.top + 8 + 16 * i}" width="12" height="3" fill="${colour}"/>`);
    parts.push(`<text x="${M.left + 24}" y="${M.top + 13 + 16 * i}">${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/**
 * Points of two groups in 2-D, each pair (a[i], b[i]) joined by a thin grey segment.
 */
export function pairedScatter(
  title: string,
  a: { name: string; points: [number, number][] },
  b: { name: string; points: [number, number][] },
): string {
  const all = [...a.points, ...b.points];
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const size = 560;
  const m = 30;
  const px = (x: number): number => m + ((x - x0) / (x1 - x0 || 1)) * (size - 2 * m);
  const py = (y: number): number => 40 + ((y1 - y) / (y1 - y0 || 1)) * (size - 2 * m);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size + 30}" viewBox="0 0 ${size} ${size + 30}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
    `<rect width="${size}" height="${size + 30}" fill="white"/>`,
    `<text x="${size / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  a.points.forEach((p, i) => {
    const q = b.points[i];
    if (q) parts.push(`<line x1="${px(p[0])}" y1="${py(p[1])}" x2="${px(q[0])}" y2="${py(q[1])}" stroke="#bbb" stroke-width="0.6"/>`);
  });
  for (const [group, colour] of [
    [a, PALETTE[0]!],
    [b, PALETTE[1]!],
  ] as const) {
    for (const [x, y] of group.points)
      parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="2.6" fill="${colour}" fill-opacity="0.8"/>`);
  }
  parts.push(
    `<circle cx="${m + 6}" cy="${size + 16}" r="4" fill="${PALETTE[0]}"/><text x="${m + 14}" y="${size + 20}">${escapeXml(a.name)}</text>`,
  );
  parts.push(
    `<circle cx="${m + 126}" cy="${size + 16}" r="4" fill="${PALETTE[1]}"/><text x="${m + 134}" y="${size + 20}">${escapeXml(b.name)}</text>`,
  );
  parts.push(`<text x="${m + 246}" y="${size + 20}" fill="#777">grey: an image and its caption</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}
