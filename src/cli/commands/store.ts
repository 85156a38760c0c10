// `supsup store push|pull --model DIR --store URL`: copies a model directory into the shared task store
// (creating the model there) or the store's tasks into a model directory (creating it when absent).
// Both copy by difference and verify every mask; a task refused as corrupt or conflicting makes the exit code 1.
import { ConfigError, HELP_SWITCH, parseSettings, type Setting, usage } from '../../platform/settings.ts';
import { pullInto, pushFrom } from '../../store/model-copy.ts';
import { PostgresTaskStore } from '../../store/postgres-task-store.ts';
import { parseStoreUrl } from '../../store/store-url.ts';

const DIRECTIONS = ['push', 'pull'] as const;

const SETTINGS = [
  { key: 'model', flag: 'model', kind: 'string', arg: 'DIR', required: true, help: 'the model directory' },
  { key: 'store', flag: 'store', kind: 'string', arg: 'URL', required: true, help: 'postgres://user@host:port/db?model=name' },
  HELP_SWITCH,
] as const satisfies readonly Setting[];

const USAGE = usage(
  `usage: supsup store push|pull --model DIR --store URL

  push   copy the model directory's tasks into the task store (the model is created there when absent)
  pull   make the model directory hold exactly the store's tasks (created when absent)`,
  SETTINGS,
  { env: true },
);

export async function storeCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) return void console.log(USAGE);
  const [direction, ...rest] = argv;
  if (!DIRECTIONS.includes(direction as (typeof DIRECTIONS)[number])) throw new ConfigError(`store: push or pull comes first\n\n${USAGE}`);
  const { values } = parseSettings(SETTINGS, rest, USAGE, process.env);
  const store = new PostgresTaskStore(parseStoreUrl(values.store));
  try {
    const report = direction === 'push' ? await pushFrom(values.model, store) : await pullInto(values.model, store, await snapshotOf(store));
    console.log(JSON.stringify({ direction, model: values.model, store: store.address.shown, ...report }));
    if (report.refused.length) process.exitCode = 1;
  } finally {
    await store.close();
  }
}

async function snapshotOf(store: PostgresTaskStore) {
  await store.migrate();
  return store.snapshot();
}
