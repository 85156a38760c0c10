// The HopSupSup capacity curve as a hand-written SVG: accuracy with the mask recalled from data, and
// the fraction of mask bits recalled from a task's cue, against the number of patterns in the reservoir,
// one colour per storage rule.
import type { CapacityPoint } from './hopsupsup-eval.ts';
import { escapeXml, svgFrame, ticks } from './svg-frame.ts';

export function capacitySvg(points: CapacityPoint[], title: string, trainedTasks: number): string {
  const W = 680;
  const H = 420;
  const m = { left: 60, right: 20, top: 40, bottom: 110 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const xs = [...new Set(points.map((p) => p.stored))].sort((a, b) => a - b);
  const xMax = Math.max(...xs);
  const X = (n: number) => m.left + (Math.log(n) / Math.log(xMax)) * pw;
  const Y = (v: number) => m.top + (1 - v) * ph;
  const out = svgFrame({
    width: W,
    height: H,
    margin: m,
    title,
    yTicks: ticks(0, 1, 0.1),
    xTicks: xs,
    X,
    Y,
    xLabel: `patterns stored per layer, log scale (trained PermutedMNIST masks up to ${trainedTasks}, random masks past it)`,
    yLabel: 'accuracy / bits recovered',
    xLineColor: (n) => (n === trainedTasks ? '#bbb' : '#f0f0f0'),
  });
  const series = [
    { rule: 'hebbian', what: 'accuracy, mask recalled from data', color: '#d62728', dash: '', get: (p: CapacityPoint) => p.recalledAccuracy },
    { rule: 'storkey', what: 'accuracy, mask recalled from data', color: '#1f77b4', dash: '', get: (p: CapacityPoint) => p.recalledAccuracy },
    { rule: 'hebbian', what: 'bits recalled from the task cue', color: '#d62728', dash: '6 4', get: (p: CapacityPoint) => p.bitsFromCue },
    { rule: 'storkey', what: 'bits recalled from the task cue', color: '#1f77b4', dash: '6 4', get: (p: CapacityPoint) => p.bitsFromCue },
  ];
  series.forEach((s, i) => {
    const pts = points.filter((p) => p.rule === s.rule).sort((a, b) => a.stored - b.stored);
    out.push(`<polyline points="${pts.map((p) => `${X(p.stored).toFixed(1)},${Y(s.get(p)).toFixed(1)}`).join(' ')}" fill="none" stroke="${s.color}" stroke-width="2" ${s.dash ? `stroke-dasharray="${s.dash}"` : ''}/>`);
    for (const p of pts) out.push(`<circle cx="${X(p.stored).toFixed(1)}" cy="${Y(s.get(p)).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = m.top + ph + 54 + (i % 2) * 16;
    const lx = m.left + Math.floor(i / 2) * 300;
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2" ${s.dash ? `stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">${escapeXml(`${s.rule}: ${s.what}`)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
