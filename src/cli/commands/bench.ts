import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { benchEngine, ENGINE_CASES } from '../../bench/engine.ts';
import { benchKernels, formatRow, HEADER } from '../../bench/kernels.ts';
import { KERNEL_PREFERENCES, selectKernels } from '../../platform/kernels.ts';
import { BACKEND_PREFERENCES, selectBackend } from '../../platform/backend.ts';
import { COMMON_SWITCHES, int, oneOf, parseFlags, stringFlags } from '../flags.ts';

const HELP = `usage: supsup bench [--out FILE] [--runs N] [--kernels auto|native|typescript] [--backend auto|cuda|wasm|cpu|tensorflow] [--quick]

Benchmarks the k-dependent kernel beside the memory-read floor measured in the same process (same bytes,
same threads), and the engine end to end (given task at batch 1 and 128, inferred task at batch 128), for
LeNet 300-100 s=500 at k = 100, 1000, 2500 and FC 1024-1024 s=500 at k = 250. Prints a table and writes JSON.
--quick runs only the smallest case (a smoke test of the benchmark itself).`;

export async function benchCommand(argv: string[]): Promise<void> {
  const values = parseFlags(argv, { ...stringFlags('out', 'runs', 'kernels', 'backend'), quick: { type: 'boolean' }, help: COMMON_SWITCHES.help }, HELP);
  if (values.help) return void console.log(HELP);
  const out = values.out ?? '.bench/bench.json';
  const runs = int('--runs', values.runs ?? '9', 1);
  const backend = await selectBackend(oneOf('--backend', values.backend ?? 'auto', BACKEND_PREFERENCES));
  const { kernels, reason } = selectKernels(oneOf('--kernels', values.kernels ?? 'auto', KERNEL_PREFERENCES));
  console.log(`backend: ${backend.name} (${backend.reason}); kernels: ${kernels.name} (${reason})`);

  console.log('\nk-dependent kernel (scores for one vector) against the memory-read floor:');
  console.log(HEADER);
  const kernelCases = values.quick ? [{ model: 'LeNet 300-100 s=500', weights: 315_200, k: 100 }] : undefined;
  const kernelRows = await benchKernels({ cases: kernelCases, runs, tsRuns: values.quick ? 1 : 3, log: () => {} });
  for (const r of kernelRows) console.log(formatRow(r));

  console.log('\nengine end to end (median ms):');
  const engineRows = benchEngine(kernels, { cases: values.quick ? ENGINE_CASES.slice(0, 1) : undefined, runs, log: (s) => console.log(s) });

  const report = { date: new Date().toISOString(), backend, kernels: kernels.name, cpus: cpus().length, kernelRows, engineRows };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nwrote ${out}`);
}
