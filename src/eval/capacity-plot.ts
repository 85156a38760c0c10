/**
 * The HopSupSup capacity curve as a hand-written SVG: accuracy with the mask recalled from data, and
 * the fraction of mask bits recalled from a task's cue, against the number of patterns in the reservoir,
 * one colour per storage rule.
 */
import type { CapacityPoint } from './hopsupsup-eval.ts';

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
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  for (let v = 0; v <= 1 + 1e-9; v += 0.1) {
    const y = Y(v).toFixed(1);
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${(v * 100).toFixed(0)}%</text>`);
  }
  for (const n of xs) {
    const x = X(n).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + ph}" stroke="${n === trainedTasks ? '#bbb' : '#f0f0f0'}"/>`);
    out.push(`<text x="${x}" y="${m.top + ph + 16}" text-anchor="middle">${n}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(
    `<text x="${m.left + pw / 2}" y="${m.top + ph + 34}" text-anchor="middle">patterns stored per layer, log scale (trained PermutedMNIST masks up to ${trainedTasks}, random masks past it)</text>`,
  );
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">accuracy / bits recovered</text>`);
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
    out.push(`<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">${esc(`${s.rule}: ${s.what}`)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
