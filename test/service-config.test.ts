import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MODEL_DIRS } from '../src/runtime/default-model.ts';
import { ConfigError, SETTINGS, envName, parseServeConfig, serveUsage } from '../src/service/config.ts';

const MODEL = ['--model', '/some/model'];

describe('serve configuration', () => {
  it('has the documented defaults', () => {
    const c = parseServeConfig(MODEL, {});
    assert.deepEqual(c, {
      model: '/some/model',
      host: '0.0.0.0',
      httpPort: 8080,
      grpcPort: 50051,
      backend: 'auto',
      kernels: 'auto',
      maxBatch: 1024,
      rerank: 4,
      maxQueue: 256,
      admissionWaitMs: 5000,
      maxWaitMs: 0,
      maxEngineRestarts: 5,
      engineRestartDelayMs: 1000,
      bodyLimit: 8 * 1024 * 1024,
      timeoutMs: 30000,
      modelName: 'supsup',
      logLevel: 'info',
      logFormat: 'auto',
      shutdownTimeoutMs: 30000,
      drainDelayMs: 0,
    });
  });

  it('reads every flag, each with a SUPSUP_* variable, and the flag wins', () => {
    const flags = ['--http-port', '0', '--grpc-port', '9001', '--max-batch', '128', '--body-limit', '512kib', '--admin-token', 'x'.repeat(16), '--kernels', 'typescript'];
    const c = parseServeConfig([...MODEL, ...flags], { SUPSUP_HTTP_PORT: '7000', SUPSUP_MAX_QUEUE: '9', SUPSUP_LOG_LEVEL: 'debug', SUPSUP_BACKEND: 'cpu' });
    assert.equal(c.httpPort, 0);
    assert.equal(c.grpcPort, 9001);
    assert.equal(parseServeConfig([...MODEL, '--model-name', 'mnist-tasks']).modelName, 'mnist-tasks');
    assert.equal(parseServeConfig(MODEL, { SUPSUP_MODEL_NAME: 'from-env' }).modelName, 'from-env');
    assert.equal(c.maxBatch, 128);
    assert.equal(c.bodyLimit, 512 * 1024);
    assert.equal(c.adminToken, 'x'.repeat(16));
    assert.equal(c.maxQueue, 9);
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.backend, 'cpu');
    assert.equal(c.kernels, 'typescript');
    assert.equal(parseServeConfig([], { SUPSUP_MODEL: '/from/env' }).model, '/from/env');
    assert.equal(parseServeConfig([...MODEL], { SUPSUP_API_TOKEN: 'y'.repeat(16) }).apiToken, 'y'.repeat(16));
    assert.equal(parseServeConfig([...MODEL], {}).epsilon, undefined, "unset: the model's own ε, else 1/8 (openEngine)");
    assert.equal(parseServeConfig([...MODEL, '--epsilon', '0.25'], {}).epsilon, 0.25);
    assert.equal(parseServeConfig([...MODEL], { SUPSUP_EPSILON: '0' }).epsilon, 0);
    for (const s of SETTINGS) assert.equal(envName(s.flag), `SUPSUP_${s.flag.toUpperCase().replace(/-/g, '_')}`);
    assert.match(serveUsage(), /--shutdown-timeout-ms\s+SUPSUP_SHUTDOWN_TIMEOUT_MS/);
  });

  it('refuses bad values with a message that names the setting', () => {
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--http-port=-1'], {}, /--http-port: must be a whole number/],
      [['--grpc-port', '65536'], {}, /--grpc-port: must be a port number/],
      [['--http-port', '9000', '--grpc-port', '9000'], {}, /--http-port and --grpc-port are both 9000/],
      [['--max-wait-ms', '1.5'], {}, /--max-wait-ms: must be a whole number, got "1.5"/],
      [[], { SUPSUP_TIMEOUT_MS: '0' }, /SUPSUP_TIMEOUT_MS: must be at least 1, got "0"/],
      [[], { SUPSUP_KERNELS: 'gpu' }, /SUPSUP_KERNELS: must be one of auto, native, typescript/],
      [['--log-level', 'loud'], {}, /--log-level: must be one of fatal, error, warn, info, debug, trace, silent/],
      [['--body-limit', '10'], {}, /--body-limit: must be at least 1024/],
      [['--body-limit', '3gb'], {}, /--body-limit: must be a byte count/],
      [['--admin-token', 'has space in it ok'], {}, /--admin-token \/ SUPSUP_ADMIN_TOKEN: must be at least 16 characters with no whitespace/],
      [['--otel-endpoint', 'ftp://collector/v1/traces'], {}, /--otel-endpoint: must be an http:\/\/ or https:\/\/ URL, got "ftp:/],
      [[], { SUPSUP_OTEL_ENDPOINT: 'not a url' }, /SUPSUP_OTEL_ENDPOINT: must be an http:\/\/ or https:\/\/ URL/],
      [[], { SUPSUP_API_TOKEN: 'short' }, /--api-token \/ SUPSUP_API_TOKEN: must be at least 16 characters with no whitespace/],
      [['--drain-delay-ms', '5000', '--shutdown-timeout-ms', '5000'], {}, /--drain-delay-ms \(5000\) must be shorter than --shutdown-timeout-ms/],
      [['--host', ''], {}, /--host: must not be empty/],
      [['--epsilon', 'abc'], {}, /--epsilon: must be a decimal number like 0.125, got "abc"/],
      [[], { SUPSUP_EPSILON: '-0.5' }, /SUPSUP_EPSILON: must be a decimal number/],
      [['--model-name', 'a/b'], {}, /--model-name \/ SUPSUP_MODEL_NAME: must match .*, like a task id, got "a\/b"/],
      [[], { SUPSUP_MODEL_NAME: 'with space' }, /--model-name \/ SUPSUP_MODEL_NAME: must match/],
      [['--nope'], {}, /Unknown option '--nope'/],
      [['extra'], {}, /Unexpected argument 'extra'/],
    ];
    for (const [args, env, message] of cases) {
      assert.throws(() => parseServeConfig([...MODEL, ...args], env), (e: Error) => e instanceof ConfigError && message.test(e.message), `${args.join(' ')} ${JSON.stringify(env)}`);
    }
  });

  it('defaults the model to the first bundled one that exists', () => {
    const c = parseServeConfig([], {});
    assert.ok(DEFAULT_MODEL_DIRS.some((d) => c.model.endsWith(d)), c.model);
  });
});
