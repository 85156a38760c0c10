// Latency against k for every request path, ours (solid) beside the PyTorch peer (dashed), log-log, from
// the JSON bench/rest-scale.ts writes (one entry per k).
import { escapeXml, svgFrame } from '../src/eval/svg-frame.ts';

export interface ScaleRun {
  date: string;
  cpuFlags: string;
  simd: string;
  load: number;
  ours: Record<string, { p50Ms: number; rps: number; connections: number }>;
  peerMs: Record<string, number | null>;
  derived: Record<string, number>;
  /** Rounds over all cases (older runs: one), and each round's figures. */
  rounds?: number;
  perRound?: Record<string, { p50Ms: number; rps: number }[]>;
  peerRounds?: Record<string, number[]>;
}
/** By k (as a string). */
export type ScaleRuns = Record<string, ScaleRun>;

const SERIES: { name: string; label: string; color: string }[] = [
  { name: 'given-b1', label: 'given task, batch 1', color: '#1f77b4' },
  { name: 'given-b128', label: 'given task, batch 128', color: '#ff7f0e' },
  { name: 'oneshot-b1', label: 'one-shot from 1 example', color: '#2ca02c' },
  { name: 'each-b16', label: 'per-example, mixed batch 16', color: '#d62728' },
  { name: 'binary-b1', label: 'binary search from 1 example', color: '#9467bd' },
  { name: 'inferred-b1-c8', label: 'one-shot, 8 clients (p50)', color: '#8c564b' },
];

export function renderScalePlot(runs: ScaleRuns): string {
  const ks = Object.keys(runs).map(Number).sort((a, b) => a - b);
  const all = ks.flatMap((k) => [...Object.values(runs[k].ours).map((r) => r.p50Ms), ...Object.values(runs[k].peerMs).filter((v): v is number => v !== null)]);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...all)))), hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all))));
  const width = 860, height = 520, margin = { left: 70, right: 250, top: 40, bottom: 50 };
  const pw = width - margin.left - margin.right, ph = height - margin.top - margin.bottom;
  const lx = (k: number) => Math.log10(k), ly = (v: number) => Math.log10(v);
  const X = (k: number) => margin.left + ((lx(k) - lx(ks[0])) / Math.max(1e-9, lx(ks[ks.length - 1]) - lx(ks[0]))) * pw;
  const Y = (v: number) => margin.top + ph - ((ly(v) - ly(lo)) / (ly(hi) - ly(lo))) * ph;
  const yTicks: number[] = [];
  for (let v = lo; v <= hi * 1.0001; v *= 10) yTicks.push(v);
  const lines = svgFrame({
    width, height, margin, X, Y, xTicks: ks, yTicks,
    yTickLabel: (v) => (v >= 1 ? `${v} ms` : `${v.toPrecision(1)} ms`),
    title: 'Latency against k through REST (p50, wrk) — ours solid, PyTorch in process dashed',
    xLabel: 'k (stored tasks), LeNet 300-100 s = 500', yLabel: 'latency per request (log scale)',
  });
  SERIES.forEach((s, i) => {
    for (const [who, dash] of [['ours', ''], ['peer', ' stroke-dasharray="6 4"']] as const) {
      const points = ks
        .map((k) => [k, who === 'ours' ? runs[k].ours[s.name]?.p50Ms : runs[k].peerMs[s.name]] as const)
        .filter((p): p is readonly [number, number] => typeof p[1] === 'number');
      if (points.length === 0) continue;
      const d = points.map(([k, v], j) => `${j ? 'L' : 'M'}${X(k).toFixed(1)},${Y(v).toFixed(1)}`).join(' ');
      lines.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
      for (const [k, v] of points) lines.push(`<circle cx="${X(k).toFixed(1)}" cy="${Y(v).toFixed(1)}" r="3" fill="${who === 'ours' ? s.color : 'white'}" stroke="${s.color}"/>`);
    }
    const y = margin.top + 10 + i * 20;
    lines.push(`<line x1="${width - margin.right + 12}" x2="${width - margin.right + 36}" y1="${y}" y2="${y}" stroke="${s.color}" stroke-width="2"/>`);
    lines.push(`<text x="${width - margin.right + 42}" y="${y}" dominant-baseline="middle">${escapeXml(s.label)}</text>`);
  });
  const y = margin.top + 10 + SERIES.length * 20 + 10;
  lines.push(`<line x1="${width - margin.right + 12}" x2="${width - margin.right + 36}" y1="${y}" y2="${y}" stroke="#444" stroke-width="2" stroke-dasharray="6 4"/>`);
  lines.push(`<text x="${width - margin.right + 42}" y="${y}" dominant-baseline="middle">PyTorch peer (same colour)</text>`);
  lines.push('</svg>');
  return lines.join('\n') + '\n';
}

/** The same runs as a markdown table: per k, each path's p50 (PyTorch's median beside it where it ran). */
export function scaleTable(runs: ScaleRuns): string {
  const ks = Object.keys(runs).map(Number).sort((a, b) => a - b);
  const cell = (k: number, name: string) => {
    const ours = runs[k].ours[name], peer = runs[k].peerMs[name];
    const o = name === 'inferred-b1-c8' ? `${ours.p50Ms.toFixed(1)} (${ours.rps.toFixed(0)} req/s)` : ours.p50Ms.toFixed(ours.p50Ms < 10 ? 2 : 1);
    return typeof peer === 'number' ? `${o} / ${peer.toFixed(peer < 10 ? 2 : 0)}` : o;
  };
  const head = `| k | load | ${SERIES.map((s) => s.label).join(' | ')} |`;
  const rows = ks.map((k) => `| ${k} | ${runs[k].load.toFixed(1)} | ${SERIES.map((s) => cell(k, s.name)).join(' | ')} |`);
  return [head, `|${'---|'.repeat(SERIES.length + 2)}`, ...rows].join('\n') + '\n';
}
