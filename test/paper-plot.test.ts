import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { type CurvePoint } from '../src/eval/evaluate.ts';
import { PAPER_FIGURES, writePaperFigures } from '../src/eval/paper-figures.ts';
import { paperFigureSvg } from '../src/eval/paper-plot.ts';

const point = (tasks: number, gg: number, gn: number): CurvePoint => ({ tasks, evaluatedTasks: tasks, gg, gn, taskIdAccuracy: 1, unknownRate: 0 });
const curve = [point(1, 0.97, 0.97), point(10, 0.96, 0.955), point(250, 0.962, 0.96)];

describe('paper figure', () => {
  it('draws GG and GN of every run and the paper point where its numbers put them', () => {
    const svg = paperFigureSvg(
      [
        { label: 'ours A', curve, color: '#ff0000' },
        { label: 'ours B', curve: curve.map((p) => ({ ...p, gg: p.gg - 0.02, gn: p.gn - 0.03 })), color: '#0000ff' },
      ],
      [{ tasks: 250, accuracy: 0.9491, label: 'paper' }],
      { title: 'T & <x>' },
    );
    assert.match(svg, /^<svg /);
    assert.ok(svg.includes('T &amp; &lt;x&gt;'), 'title escaped');
    assert.equal(svg.match(/<polyline /g)?.length, 4, 'GG and GN per run');
    for (const label of ['ours A: task given (GG)', 'ours A: task inferred (GN)', 'ours B: task inferred (GN)', 'paper: 94.91% at 250 tasks']) {
      assert.ok(svg.includes(label), label);
    }
    // Log x: 1 task at the left edge (x = 60), 250 at the right (640 − 20); the paper's square centred on 250.
    const polys = [...svg.matchAll(/<polyline points="([^"]+)"/g)].map((m) => m[1].split(' ').map((xy) => xy.split(',').map(Number)));
    assert.equal(polys[0][0][0], 60);
    assert.equal(polys[0][2][0], 620);
    const square = svg.match(/<rect x="([\d.]+)" y="([\d.]+)" width="10"/);
    assert.ok(square);
    assert.equal(Number(square[1]) + 5, 620);
    // y: the paper's 94.91% lies below every point of run A (higher accuracy is higher up, smaller y).
    assert.ok(Number(square[2]) + 5 > Math.max(...polys[1].map(([, y]) => y)));
  });

  it('refuses a figure with no run or an empty curve', () => {
    assert.throws(() => paperFigureSvg([], [], { title: 't' }), /at least one run/);
    assert.throws(() => paperFigureSvg([{ label: 'a', curve: [], color: '#000' }], [], { title: 't' }), /at least one run/);
  });

  it('writes the figures whose reports exist and skips the rest', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'supsup-figures-'));
    try {
      assert.deepEqual(writePaperFigures(dir), []);
      const fc = PAPER_FIGURES.find((f) => f.runs.length === 1)!;
      writeFileSync(path.join(dir, fc.runs[0].report), JSON.stringify({ curve }));
      assert.deepEqual(writePaperFigures(dir), [path.join(dir, fc.file)]);
      assert.ok(readFileSync(path.join(dir, fc.file), 'utf8').includes(fc.runs[0].label));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
