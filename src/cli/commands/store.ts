import { parseArgs } from 'node:util';
import { pullInto, pushFrom } from '../../store/model-copy.ts';
import { PostgresTaskStore } from '../../store/postgres-task-store.ts';
import { parseStoreUrl } from '../../store/store-url.ts';

/**
 * `supsup store push|pull --model DIR --store URL`: copies a model directory into the shared task store
 * (creating the model there) or the store's tasks into a model directory (creating it when absent).
 * Both copy by difference and verify every mask; a task refused as corrupt or conflicting makes the exit code 1.
 */
const USAGE = `usage: supsup store push|pull --model DIR [--store URL]

  push   copy the model directory's tasks into the task store (the model is created there when absent)
  pull   make the model directory hold exactly the store's tasks (created when absent)

  --model DIR   the model directory
  --store URL   postgres://user@host:port/db?model=name (default: SUPSUP_STORE)`;

export async function storeCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { model: { type: 'string' }, store: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  if (values.help) return void console.log(USAGE);
  const [direction, ...extra] = positionals;
  const url = values.store ?? process.env.SUPSUP_STORE;
  if ((direction !== 'push' && direction !== 'pull') || extra.length || !values.model || !url) throw new Error(`store: push or pull, --model and --store are needed\n\n${USAGE}`);
  const store = new PostgresTaskStore(parseStoreUrl(url));
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
