// One figure in the style of the paper's Fig. 3-5: accuracy against the number of tasks in the model (log
// scale), for one or more of our runs, each drawn twice (task given, GG: pale and wide; task inferred, GN:
// narrow on top), with the paper's reported figures as square markers. Pure: curves in, SVG text out.
import { type CurvePoint } from './evaluate.ts';
import { escapeXml, svgFrame, ticks } from './svg-frame.ts';

export interface RunCurve {
  /** E.g. "ours, LeNet s = 100, lr 1e-3". */
  label: string;
  curve: CurvePoint[];
  color: string;
}

/** A figure the paper reports in writing (its plots have no tables). */
export interface PaperPoint {
  tasks: number;
  accuracy: number;
  label: string;
}

export interface PaperFigureOptions {
  title: string;
  width?: number;
  height?: number;
}

const PAPER_COLOR = '#000000';
const LEGEND_ROW = 16;

export function paperFigureSvg(runs: RunCurve[], paper: PaperPoint[], o: PaperFigureOptions): string {
  if (runs.length === 0 || runs.some((r) => r.curve.length === 0)) throw new Error('paperFigureSvg needs at least one run, each with a curve');
  const legendRows = 2 * runs.length + paper.length;
  const W = o.width ?? 640;
  const H = o.height ?? 360 + legendRows * LEGEND_ROW;
  const m = { left: 60, right: 20, top: 40, bottom: 56 + legendRows * LEGEND_ROW };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const xs = [...new Set([...runs.flatMap((r) => r.curve.map((p) => p.tasks)), ...paper.map((p) => p.tasks)])].sort((a, b) => a - b);
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs, xMin + 1);
  const X = (n: number) => m.left + ((Math.log(n) - Math.log(xMin)) / (Math.log(xMax) - Math.log(xMin))) * pw;
  const values = [...runs.flatMap((r) => r.curve.flatMap((p) => [p.gg, p.gn])), ...paper.map((p) => p.accuracy)].filter(Number.isFinite);
  const yMin = Math.max(0, Math.floor(Math.min(...values) * 100 - 1) / 100);
  const yMax = Math.min(1, Math.ceil(Math.max(...values) * 100 + 1) / 100);
  const Y = (v: number) => m.top + (1 - (v - yMin) / (yMax - yMin)) * ph;
  const out = svgFrame({
    width: W,
    height: H,
    margin: m,
    title: o.title,
    yTicks: ticks(yMin, yMax, yMax - yMin <= 0.1 ? 0.01 : 0.05),
    xTicks: xs,
    X,
    Y,
    xLabel: 'number of tasks in the model (log scale)',
    yLabel: 'accuracy',
  });
  let row = 0;
  const legend = (symbol: (y: number) => string, label: string) => {
    const y = m.top + ph + 52 + row++ * LEGEND_ROW;
    out.push(symbol(y));
    out.push(`<text x="${m.left + 30}" y="${y}" dominant-baseline="middle">${escapeXml(label)}</text>`);
  };
  for (const r of runs) {
    const series = [
      { label: `${r.label}: task given (GG)`, width: 6, opacity: 0.35, get: (p: CurvePoint) => p.gg },
      { label: `${r.label}: task inferred (GN)`, width: 2, opacity: 1, get: (p: CurvePoint) => p.gn },
    ];
    for (const s of series) {
      const pts = r.curve.map((p) => `${X(p.tasks).toFixed(1)},${Y(s.get(p)).toFixed(1)}`).join(' ');
      const stroke = `stroke="${r.color}" stroke-width="${s.width}" stroke-opacity="${s.opacity}"`;
      out.push(`<polyline points="${pts}" fill="none" ${stroke}/>`);
      for (const p of r.curve) out.push(`<circle cx="${X(p.tasks).toFixed(1)}" cy="${Y(s.get(p)).toFixed(1)}" r="3" fill="${r.color}" fill-opacity="${s.opacity}"/>`);
      legend((y) => `<line x1="${m.left}" x2="${m.left + 24}" y1="${y}" y2="${y}" ${stroke}/>`, s.label);
    }
  }
  const square = (x: number, y: number) =>
    `<rect x="${(x - 5).toFixed(1)}" y="${(y - 5).toFixed(1)}" width="10" height="10" fill="none" stroke="${PAPER_COLOR}" stroke-width="2"/>`;
  for (const p of paper) {
    out.push(square(X(p.tasks), Y(p.accuracy)));
    legend((y) => square(m.left + 12, y), `${p.label}: ${(p.accuracy * 100).toFixed(2)}% at ${p.tasks} tasks`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
