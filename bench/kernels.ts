// The kernel benchmark as a script (the code is src/bench/kernels.ts, which `supsup bench` runs too):
//
//   node --import tsx bench/kernels.ts [--out .bench/kernels.json] [--runs 15] [--ts-runs 5] [--examples 1]
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { HEADER, benchKernels } from '../src/bench/kernels.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: '.bench/kernels.json' },
      runs: { type: 'string', default: '15' },
      'ts-runs': { type: 'string' },
      examples: { type: 'string', default: '1' },
    },
  });
  console.log(HEADER);
  const rows = await benchKernels({
    runs: Number(values.runs),
    tsRuns: values['ts-runs'] === undefined ? undefined : Number(values['ts-runs']),
    examples: Number(values.examples),
    log: (line) => console.log(line),
  });
  const out = values.out!;
  mkdirSync(dirname(out), { recursive: true });
  const meta = { date: new Date().toISOString(), node: process.version, cpus: cpus()[0]?.model };
  writeFileSync(out, JSON.stringify({ ...meta, rows }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

await main();
