// The figures of docs/results.md that set our runs beside the paper's (Fig. 3-5), drawn from the JSON
// reports `supsup eval --out` wrote into docs/results/. A figure whose reports are not there yet is skipped.
// Run: node --import tsx src/eval/paper-figures.ts [RESULTS_DIR]   (default docs/results)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type EvalReport } from './evaluate.ts';
import { type PaperPoint, paperFigureSvg } from './paper-plot.ts';

interface FigureSpec {
  file: string;
  title: string;
  runs: { report: string; label: string; color: string }[];
  paper: PaperPoint[];
}

/** The paper states this one in its text; its other figures are plots without tables. */
const PAPER_LENET_250: PaperPoint = { tasks: 250, accuracy: 0.9491, label: 'paper, GN one-shot H from 1 example' };

export const PAPER_FIGURES: FigureSpec[] = [
  {
    file: 'fig3-left-permuted-lenet.svg',
    title: 'PermutedMNIST, LeNet 300-100, s = 100 (paper Fig. 3 left)',
    runs: [
      { report: 'permuted-mnist60k-lenet-lr3e-4.json', label: 'ours, RMSProp lr 3e-4', color: '#d62728' },
      { report: 'permuted-mnist60k-lenet-lr3e-4-rerank.json', label: 'ours, lr 3e-4, top 4 of the gradient re-ranked by exact forwards', color: '#2ca02c' },
      { report: 'permuted-mnist60k-lenet.json', label: "ours, lr 1e-4 (the authors' script)", color: '#1f77b4' },
    ],
    paper: [PAPER_LENET_250],
  },
  {
    file: 'fig3-right-permuted-fc.svg',
    title: 'PermutedMNIST, FC 1024-1024, s = 500 (paper Fig. 3 right)',
    runs: [
      { report: 'permuted-mnist60k-fc.json', label: "ours, lr 1e-4 (the authors' script)", color: '#1f77b4' },
      { report: 'permuted-mnist60k-fc-lr3e-4.json', label: 'ours, lr 3e-4 (task inference lost past 5 tasks)', color: '#d62728' },
    ],
    paper: [],
  },
  {
    file: 'fig4-permuted-lenet2500.svg',
    title: 'PermutedMNIST, LeNet 300-100, s = 500, 2500 tasks (paper Fig. 4)',
    runs: [{ report: 'permuted-mnist60k-lenet2500.json', label: "ours, lr 1e-4 (the authors' script)", color: '#1f77b4' }],
    paper: [],
  },
  {
    file: 'fig5-left-rotated-fc.svg',
    title: 'RotatedMNIST, FC 1024-1024, s = 200, 36 tasks of 10° (paper Fig. 5 left)',
    runs: [
      { report: 'rotated-mnist60k-fc-lr1e-4.json', label: 'ours, lr 1e-4', color: '#2ca02c' },
      { report: 'rotated-mnist60k-fc.json', label: 'ours, lr 3e-4', color: '#d62728' },
    ],
    paper: [],
  },
  {
    file: 'nn-permuted-lenet.svg',
    title: 'NN scenario (no task ids at training), PermutedMNIST, LeNet 300-100, s = 100',
    runs: [
      { report: 'permuted-mnist60k-lenet-nn.json', label: 'ours, NN', color: '#9467bd' },
      { report: 'permuted-mnist60k-lenet-lr3e-4.json', label: 'ours, task ids given at training', color: '#d62728' },
    ],
    paper: [PAPER_LENET_250],
  },
];

export function writePaperFigures(dir: string): string[] {
  const written: string[] = [];
  for (const f of PAPER_FIGURES) {
    const paths = f.runs.map((r) => join(dir, r.report));
    if (!paths.every((p) => existsSync(p))) continue;
    const runs = f.runs.map((r, i) => ({ label: r.label, color: r.color, curve: (JSON.parse(readFileSync(paths[i], 'utf8')) as EvalReport).curve }));
    const out = join(dir, f.file);
    writeFileSync(out, paperFigureSvg(runs, f.paper, { title: f.title }));
    written.push(out);
  }
  return written;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const p of writePaperFigures(process.argv[2] ?? 'docs/results')) console.log(p);
}
