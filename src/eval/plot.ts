// The eval curve as a hand-written SVG: accuracy with the task given (GG), with the task inferred (GN)
// and the task-identification accuracy, against the number of tasks in the model (log scale).
import { type CurvePoint } from './evaluate.ts';
import { escapeXml, svgFrame, ticks } from './svg-frame.ts';

export interface PlotOptions {
  title: string;
  /** Label of the GN series, e.g. "GN, one-shot H, first example". */
  gnLabel: string;
  width?: number;
  height?: number;
}

export function curveSvg(curve: CurvePoint[], o: PlotOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 400;
  const m = { left: 60, right: 20, top: 40, bottom: 104 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const xs = curve.map((p) => p.tasks);
  const xMin = Math.min(...xs, 1);
  const xMax = Math.max(...xs, 2);
  const lx = (n: number) => (xMax === xMin ? 0 : (Math.log(n) - Math.log(xMin)) / (Math.log(xMax) - Math.log(xMin)));
  const values = curve.flatMap((p) => [p.gg, p.gn, p.taskIdAccuracy]).filter(Number.isFinite);
  const lowest = values.length ? Math.min(...values) : 0.9;
  const yMin = Math.max(0, Math.floor((lowest * 100 - 1) / 5) * 5) / 100;
  const yMax = 1;
  const X = (n: number) => m.left + lx(n) * pw;
  const Y = (v: number) => m.top + (1 - (v - yMin) / (yMax - yMin)) * ph;
  // Grid and y ticks every 5 points (or 1 when the range is narrow).
  const step = yMax - yMin <= 0.1 ? 0.01 : 0.05;
  const out = svgFrame({
    width: W,
    height: H,
    margin: m,
    title: o.title,
    yTicks: ticks(yMin, yMax, step),
    xTicks: xs,
    X,
    Y,
    xLabel: 'number of tasks in the model (log scale)',
    yLabel: 'accuracy',
  });
  // GG is drawn wide and pale under GN, so the two stay visible where they coincide (task always found).
  const series: { label: string; color: string; dash: string; width: number; get: (p: CurvePoint) => number }[] = [
    { label: 'task given (GG)', color: '#9ecae1', dash: '', width: 6, get: (p) => p.gg },
    { label: o.gnLabel, color: '#d62728', dash: '', width: 2, get: (p) => p.gn },
    { label: 'task-id accuracy', color: '#2ca02c', dash: '6 4', width: 2, get: (p) => p.taskIdAccuracy },
  ];
  series.forEach((s, i) => {
    const pts = curve.map((p) => `${X(p.tasks).toFixed(1)},${Y(s.get(p)).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="${s.width}" ${s.dash ? `stroke-dasharray="${s.dash}"` : ''}/>`);
    for (const p of curve) out.push(`<circle cx="${X(p.tasks).toFixed(1)}" cy="${Y(s.get(p)).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = m.top + ph + 52 + i * 16;
    const lx0 = m.left;
    out.push(`<line x1="${lx0}" x2="${lx0 + 24}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="${s.width}" ${s.dash ? `stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${lx0 + 30}" y="${ly}" dominant-baseline="middle">${escapeXml(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
