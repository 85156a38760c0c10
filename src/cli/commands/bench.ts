import { BACKEND_PREFERENCES, KERNEL_PREFERENCES } from '../../platform/preferences.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { benchEngine, ENGINE_CASES } from '../../bench/engine.ts';
import { benchKernels, formatRow, HEADER } from '../../bench/kernels.ts';
import { selectKernels } from '../../platform/kernels.ts';
import { selectBackend } from '../../platform/backend.ts';
import { HELP_SWITCH, parseSettings, type Setting, usage } from '../../platform/settings.ts';

const SETTINGS = [
  { key: 'out', flag: 'out', kind: 'string', arg: 'FILE', default: '.bench/bench.json', help: 'where the JSON report goes' },
  { key: 'runs', flag: 'runs', kind: 'count', arg: 'N', min: 1, default: '9', help: 'timed runs per case (the median is reported)' },
  { key: 'kernels', flag: 'kernels', kind: 'string', arg: 'NAME', choices: KERNEL_PREFERENCES, default: 'auto', help: KERNEL_PREFERENCES.join(' | ') },
  { key: 'backend', flag: 'backend', kind: 'string', arg: 'NAME', choices: BACKEND_PREFERENCES, default: 'auto', help: BACKEND_PREFERENCES.join(' | ') },
  { key: 'quick', flag: 'quick', kind: 'switch', help: 'only the smallest case (a smoke test of the benchmark itself)' },
  HELP_SWITCH,
] as const satisfies readonly Setting[];

const USAGE = usage(
  `usage: supsup bench [options]

Benchmarks the k-dependent kernel beside the memory-read floor measured in the same process (same bytes,
same threads), and the engine end to end (given task at batch 1 and 128, inferred task at batch 128), for
LeNet 300-100 s=500 at k = 100, 1000, 2500 and FC 1024-1024 s=500 at k = 250. Prints a table and writes JSON.`,
  SETTINGS,
);

export async function benchCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) return void console.log(USAGE);
  const { values } = parseSettings(SETTINGS, argv, USAGE);
  const { out, runs } = values;
  const backend = await selectBackend(values.backend);
  const { kernels, reason } = selectKernels(values.kernels);
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
