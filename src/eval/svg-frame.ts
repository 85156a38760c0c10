// The frame both hand-written SVG plots share (eval curve, HopSupSup capacity): the document head, the
// title, a horizontal grid line with a percentage tick per y value, a vertical one with its label per x
// value, the plot border and both axis labels. The caller draws its series inside.

export interface SvgFrame {
  width: number;
  height: number;
  /** Plot area inside the margins. */
  margin: { left: number; right: number; top: number; bottom: number };
  title: string;
  /** Fractions 0..1, ticked as percentages unless `yTickLabel` says otherwise. */
  yTicks: number[];
  yTickLabel?: (v: number) => string;
  xTicks: number[];
  X: (n: number) => number;
  Y: (v: number) => number;
  xLabel: string;
  yLabel: string;
  /** Colour of an x tick's grid line (to pick one out). */
  xLineColor?: (n: number) => string;
}

/** The frame's SVG lines; the caller appends its series and `</svg>`. */
export function svgFrame(f: SvgFrame): string[] {
  const { width: W, height: H, margin: m, X, Y } = f;
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(f.title)}</text>`);
  for (const v of f.yTicks) {
    const y = Y(v).toFixed(1);
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${f.yTickLabel?.(v) ?? `${(v * 100).toFixed(0)}%`}</text>`);
  }
  for (const n of f.xTicks) {
    const x = X(n).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + ph}" stroke="${f.xLineColor?.(n) ?? '#f0f0f0'}"/>`);
    out.push(`<text x="${x}" y="${m.top + ph + 16}" text-anchor="middle">${n}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${m.top + ph + 34}" text-anchor="middle">${escapeXml(f.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(f.yLabel)}</text>`);
  return out;
}

/** Ticks from `from` to `to` (inclusive, within rounding) every `step`. */
export function ticks(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to + 1e-9; v += step) out.push(v);
  return out;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
