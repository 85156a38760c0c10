// `supsup <command>`: one binary, one small module per subcommand, each exporting `(argv) => Promise<void>`.
// Commands are imported lazily so `supsup --help` does not load TensorFlow.js.
// Exit codes: 0 done, 1 a failure while running, 2 a usage error (unknown command or option, bad value: ConfigError).
import { ConfigError } from '../platform/settings.ts';
import { PACKAGE_VERSION, sourceCommit } from '../service/version.ts';

type Command = { summary: string; load: () => Promise<(argv: string[]) => Promise<void>> };

const COMMANDS: Record<string, Command> = {
  serve: { summary: 'serve a model over REST, gRPC and /metrics', load: async () => (await import('./commands/serve.ts')).serveCommand },
  classify: { summary: 'classify examples from a file or the MNIST test set', load: async () => (await import('./commands/classify.ts')).classifyCommand },
  train: { summary: 'train one supermask per task into a model', load: async () => (await import('./commands/train.ts')).trainCommand },
  eval: { summary: 'evaluate a model: task given, task inferred, unknown tasks', load: async () => (await import('./commands/eval.ts')).evalCommand },
  store: { summary: 'copy a model directory into a shared task store (push) or back (pull)', load: async () => (await import('./commands/store.ts')).storeCommand },
  hopsupsup: { summary: 'HopSupSup: train, evaluate and measure a Hopfield reservoir of neuron masks', load: async () => (await import('./commands/hopsupsup.ts')).hopsupsupCommand },
  bench: { summary: 'benchmark the engine and kernels against the memory-read floor', load: async () => (await import('./commands/bench.ts')).benchCommand },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return (
    `usage: supsup <command> [options]\n       supsup help <command>\n       supsup --version\n\ncommands:\n${lines.join('\n')}\n\n` +
    `Run "supsup <command> --help" (or "supsup help <command>") for a command's options.`
  );
}

function version(): string {
  const commit = sourceCommit();
  return `supsup ${PACKAGE_VERSION} (${commit ? `commit ${commit}, ` : ''}node ${process.version})`;
}

const VERSION_FLAGS = ['--version', '-V'];

async function main(argv: string[]): Promise<void> {
  const [first, ...afterFirst] = argv;
  // Also `supsup CMD --version`, so the image (entrypoint `supsup serve`) answers `docker run IMAGE --version`.
  if (VERSION_FLAGS.includes(first) || (argv.length === 2 && VERSION_FLAGS.includes(argv[1]))) return void console.log(version());
  // `supsup help CMD [SUB]` is `supsup CMD [SUB] --help`.
  const [name, ...rest] = first === 'help' ? afterFirst : argv;
  if (first === 'help' && name !== undefined) rest.push('--help');
  if (name === undefined || name === '--help' || name === '-h') return void console.log(usage());
  if (!Object.hasOwn(COMMANDS, name)) throw new ConfigError(`unknown command "${name}"\n\n${usage()}`);
  await (await COMMANDS[name].load())(rest);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // Expected failures (bad flags, corrupt model files) carry a message meant for people: print it, not a stack.
  const message = error instanceof Error ? error.message : String(error);
  console.error(`supsup: ${message}`);
  if (process.env.SUPSUP_DEBUG) console.error(error);
  process.exitCode = error instanceof ConfigError ? 2 : 1;
});
