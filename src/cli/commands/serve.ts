import { parseServeConfig, serveUsage } from '../../service/config.ts';

/**
 * `supsup serve`: REST on --http-port, gRPC on --grpc-port, until SIGTERM or SIGINT; then a graceful drain
 * bounded by --shutdown-timeout-ms. Exit code 0 after a clean drain, 1 when the timeout had to cut.
 * A bad setting throws before anything starts, with a message naming the flag and its SUPSUP_* variable.
 */
export async function serveCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(serveUsage());
    return;
  }
  const config = parseServeConfig(argv);
  // The engine worker starts opening the model first, so it loads while this thread loads the runtime's and the
  // servers' modules (a replica's directory is brought up to date from its store before anything opens it, so it waits).
  const { startEngine } = await import('../../runtime/engine-start.ts');
  const started = config.store ? undefined : startEngine({ ...config, dir: config.model });
  // Loaded only once the settings are known good, so a bad one is refused at once.
  const { startService } = await import('../../service/server.ts');
  const service = await startService(config, started);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  service.ctx.log.info({ signal }, `${signal} received`);
  process.once('SIGINT', () => process.exit(130)); // a second Ctrl-C: stop now
  setTimeout(() => process.exit(1), config.shutdownTimeoutMs + 1000).unref(); // backstop
  const clean = await service.stop(config.shutdownTimeoutMs);
  process.exit(clean ? 0 : 1);
}
