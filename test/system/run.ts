/**
 * System tests, run by .ci/run after `npm test` (not part of `npm test`: they need Debian's prometheus,
 * docker-compose, protoc and python3-grpcio, which .ci/run installs).
 *
 *   node --import tsx test/system/run.ts [--model DIR] [--skip-container]
 *
 * 1. The container, as far as it can be checked without a Docker engine (test/system/container.ts).
 * 2. A real `supsup serve` on 127.0.0.1 (ephemeral ports): REST smoke, `promtool check metrics` on /metrics.
 * 3. A real Prometheus (Debian `prometheus`) scraping it every second, queried over its HTTP API for
 *    `up{job="supsup"} == 1`, supsup_ series and the alert rules of deploy/.
 * 4. A Python gRPC client (Debian python3-grpcio; stubs generated now from proto/): Infer with given and
 *    inferred tasks against REST's answers, health Check/Watch, reflection (test/system/grpc_check.py); and
 *    an Open Inference Protocol client written from the published documents, REST by hand and gRPC:
 *    binary tensor data extension, parameters, outputs, versions, per-task models, Triton's model configuration,
 *    statistics and repository index (test/system/oip_check.py).
 * 5. SIGTERM: readiness false and health Watch NOT_SERVING during the drain, exit 0 within the timeout.
 *
 * Prints `ok`/`not ok` per check and closes with `system: N passed, M failed`; exit 1 on any failure.
 * Everything it starts is killed when it ends, and the whole run is bounded (SYSTEM_TIMEOUT_MS, 6 min).
 */
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { containerChecks } from './container.ts';
import { PYTHON, pythonGrpcChecks } from './grpc-client.ts';
import { assert, CheckFailure, fetchJson, freePort, run, Suite, waitUntil } from './harness.ts';

/** The server's log line once both listeners are up and the model is loaded (ports resolved when 0 was asked). */
const READY_LINE = /"msg":"ready: HTTP on [^"]*?:(\d+), gRPC on [^"]*?:(\d+)"/;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { values: opts } = parseArgs({
  options: { model: { type: 'string', default: 'models/example-lenet' }, 'skip-container': { type: 'boolean', default: false } },
});
const TOTAL_TIMEOUT_MS = Number(process.env.SYSTEM_TIMEOUT_MS ?? 360_000);
const DRAIN_DELAY_MS = 1500;
const SHUTDOWN_TIMEOUT_MS = 10_000;

const suite = new Suite();
const work = mkdtempSync(join(tmpdir(), 'supsup-system-'));
console.log(`# system tests; logs in ${work}`);

const watchdog = setTimeout(() => {
  suite.fail('the whole system run', new CheckFailure(`still running after ${TOTAL_TIMEOUT_MS} ms: stopped`));
  process.exitCode = suite.finish();
  process.exit();
}, TOTAL_TIMEOUT_MS);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    suite.fail('the whole system run', new CheckFailure(`interrupted by ${signal}`));
    process.exit(suite.finish());
  });
}
process.on('exit', () => suite.killAll());

async function main(): Promise<void> {
  if (!opts['skip-container']) await containerChecks(suite, { root: ROOT, logDir: work });

  // --- the server ---------------------------------------------------------------------------------
  const server = suite.spawn(
    process.execPath,
    [
      join(ROOT, 'bin/supsup.js'),
      'serve',
      '--model', opts.model!,
      '--host', '127.0.0.1',
      '--http-port', '0',
      '--grpc-port', '0',
      '--drain-delay-ms', String(DRAIN_DELAY_MS),
      '--shutdown-timeout-ms', String(SHUTDOWN_TIMEOUT_MS),
      '--log-level', 'info',
    ],
    join(work, 'server.log'),
    { cwd: ROOT, env: { ...process.env, SUPSUP_ADMIN_TOKEN: '' } },
  );
  suite.whenFailed(() => console.log(`--- server.log (last lines) ---\n${server.tail(60)}`));
  const ports = await suite.check(
    `server: supsup serve --model ${opts.model} on 127.0.0.1 turns ready`,
    async () => {
      const m = await server.waitFor(READY_LINE, 90_000);
      const http = `http://127.0.0.1:${m[1]}`;
      await waitUntil(async () => ((await fetchJson(`${http}/readyz`)).status === 200 ? true : undefined), 60_000, '/readyz 200');
      return { http, httpPort: Number(m[1]), grpc: `127.0.0.1:${m[2]}` };
    },
    150_000,
  );
  if (!ports) return;
  const { http } = ports;

  const tasks = (await suite.check('REST: GET /healthz, /readyz, /tasks, /docs', async () => {
    assert((await fetchJson(`${http}/healthz`)).status === 200, '/healthz not 200');
    assert((await fetchJson(`${http}/readyz`)).status === 200, '/readyz not 200');
    const docs = await fetch(`${http}/docs`, { signal: AbortSignal.timeout(5000) });
    assert(docs.status === 200, `/docs: ${docs.status}`);
    const t = await fetchJson(`${http}/tasks`);
    assert(t.status === 200 && Array.isArray(t.body.tasks) && t.body.tasks.length > 0, `/tasks: ${t.status}`);
    return t.body.tasks as { id: string }[];
  })) ?? [];

  await suite.check('REST: POST /classify, given and inferred task (traffic for the metrics)', async () => {
    const inputs = Array.from({ length: 4 }, (_, i) => Array.from({ length: 784 }, (_, j) => ((i * 31 + j * 7) % 256) / 255));
    for (const body of [{ inputs, task: tasks[0]?.id }, { inputs }, { inputs: [[1, 2]] }]) {
      const r = await fetchJson(`${http}/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const expectOk = body.inputs.length === 4;
      assert(expectOk ? r.status === 200 : r.status === 400, `status ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
      if (expectOk) assert(r.body.predictions.length === 4, 'not one prediction per input');
    }
    return '2 answered, 1 refused';
  });

  await suite.check('metrics: `promtool check metrics` accepts GET /metrics; histograms, counters and gauges present', async () => {
    const res = await fetch(`${http}/metrics`, { signal: AbortSignal.timeout(5000) });
    assert(res.status === 200, `/metrics: ${res.status}`);
    assert((res.headers.get('content-type') ?? '').startsWith('text/plain'), `content-type ${res.headers.get('content-type')}`);
    const text = await res.text();
    writeFileSync(join(work, 'metrics.txt'), text);
    const r = await run('promtool', ['check', 'metrics'], { input: text, timeoutMs: 30_000 });
    assert(r.code === 0, `promtool check metrics: exit ${r.code}\n${r.stdout}${r.stderr}`);
    const types: Record<string, string> = {
      supsup_requests_total: 'counter',
      supsup_request_duration_seconds: 'histogram',
      supsup_queue_wait_seconds: 'histogram',
      supsup_inference_duration_seconds: 'histogram',
      supsup_batch_size: 'histogram',
      supsup_task_inference_total: 'counter',
      supsup_tasks_loaded: 'gauge',
      supsup_mask_bank_bytes: 'gauge',
      supsup_queue_depth: 'gauge',
      supsup_tensors: 'gauge',
      process_resident_memory_bytes: 'gauge',
    };
    for (const [name, type] of Object.entries(types)) {
      const declared = new RegExp(`^# TYPE ${name.replace(/_total$/, '(?:_total)?')} (\\w+)$`, 'm').exec(text)?.[1];
      assert(declared === type, `${name}: TYPE ${declared ?? 'missing'}, expected ${type}`);
    }
    assert(!/^# TYPE \S+ summary$/m.test(text), 'a summary metric is exposed (histograms only)');
    return `${text.split('\n').filter((l) => l.startsWith('# TYPE')).length} families`;
  });

  // --- Prometheus -----------------------------------------------------------------------------------
  const promPort = await freePort();
  const promDir = join(work, 'prometheus');
  const prom = `http://127.0.0.1:${promPort}`;
  copyFileSync(join(ROOT, 'deploy/supsup-alerts.yml'), join(work, 'supsup-alerts.yml'));
  writeFileSync(
    join(work, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      `  - ${join(work, 'supsup-alerts.yml')}`,
      'scrape_configs:',
      '  - job_name: supsup',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${ports.httpPort}']`,
      '',
    ].join('\n'),
  );
  const prometheus = suite.spawn(
    'prometheus',
    [`--config.file=${join(work, 'prometheus.yml')}`, `--storage.tsdb.path=${promDir}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'],
    join(work, 'prometheus.log'),
    { cwd: work },
  );
  suite.whenFailed(() => console.log(`--- prometheus.log (last lines) ---\n${prometheus.tail()}`));
  const query = async (q: string) => {
    const r = await fetchJson(`${prom}/api/v1/query?query=${encodeURIComponent(q)}`);
    assert(r.status === 200 && r.body?.status === 'success', `query ${q}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    return r.body.data.result as { metric: Record<string, string>; value: [number, string] }[];
  };

  const promReady = await suite.check(`prometheus: a real server (Debian prometheus) starts on 127.0.0.1:${promPort}`, async () => {
    await waitUntil(async () => ((await fetchJson(`${prom}/-/ready`)).status === 200 ? true : undefined), 60_000, 'prometheus /-/ready 200', 250);
    const version = await run('prometheus', ['--version'], { timeoutMs: 10_000 });
    return `prometheus ${/prometheus, version (\S+)/.exec(version.stdout + version.stderr)?.[1] ?? '(version unknown)'}`;
  }, 70_000);

  if (promReady !== undefined) {
    await suite.check('prometheus: up{job="supsup"} == 1 through the HTTP API', async () => {
      await waitUntil(async () => ((await query('up{job="supsup"} == 1')).length === 1 ? true : undefined), 30_000, 'up{job="supsup"} == 1', 500);
      const targets = await fetchJson(`${prom}/api/v1/targets`);
      const t = targets.body.data.activeTargets.find((x: { labels: { job: string } }) => x.labels.job === 'supsup');
      assert(t?.health === 'up', `target health ${t?.health}: ${t?.lastError}`);
    }, 40_000);

    await suite.check('prometheus: supsup_requests_total{route="/classify"} and the other supsup_ series are scraped', async () => {
      const series = await waitUntil(
        async () => {
          const r = await query('supsup_requests_total{job="supsup",route="/classify"}');
          return r.length > 0 ? r : undefined;
        },
        30_000,
        'supsup_requests_total{route="/classify"}',
        500,
      );
      const ok = series.find((s) => s.metric.outcome === 'ok');
      assert(ok && Number(ok.value[1]) >= 2, `outcome="ok" ${ok?.value[1]}; series ${JSON.stringify(series.map((s) => s.metric))}`);
      const names = (await fetchJson(`${prom}/api/v1/label/__name__/values`)).body.data as string[];
      const ours = names.filter((n) => n.startsWith('supsup_'));
      for (const n of ['supsup_request_duration_seconds_bucket', 'supsup_tensors', 'supsup_tasks_loaded', 'supsup_batch_size_bucket']) {
        assert(ours.includes(n), `${n} not scraped (have ${ours.join(', ')})`);
      }
      const tasksLoaded = await query('supsup_tasks_loaded');
      assert(Number(tasksLoaded[0]?.value[1]) === tasks.length, `supsup_tasks_loaded ${tasksLoaded[0]?.value[1]}, /tasks has ${tasks.length}`);
      return `${ours.length} supsup_ series names`;
    }, 40_000);

    await suite.check('prometheus: the alert rules of deploy/ load and evaluate without errors; none fires', async () => {
      const groups = await waitUntil(
        async () => {
          const r = await fetchJson(`${prom}/api/v1/rules`);
          const gs = r.body?.data?.groups ?? [];
          const rules = gs.flatMap((g: { rules: unknown[] }) => g.rules) as { name: string; health: string; lastError?: string; state: string }[];
          return rules.length > 0 && rules.every((x) => x.health !== 'unknown') ? rules : undefined;
        },
        20_000,
        'rules evaluated',
        500,
      );
      const bad = groups.filter((r) => r.health !== 'ok');
      assert(bad.length === 0, `rules with errors: ${bad.map((r) => `${r.name}: ${r.lastError}`).join('; ')}`);
      const firing = groups.filter((r) => r.state !== 'inactive');
      assert(firing.length === 0, `alerts pending/firing on a healthy server: ${firing.map((r) => r.name).join(', ')}`);
      return `${groups.length} rules`;
    }, 30_000);
  }
  prometheus.kill('SIGTERM');

  // --- Python gRPC client ---------------------------------------------------------------------------
  const stubs = join(work, 'python-stubs');
  await pythonGrpcChecks(suite, { root: ROOT, grpc: ports.grpc, http, stubs, logFile: join(work, 'python.log'), label: 'python grpcio' });
  const oipStubs = join(work, 'oip-stubs');
  await pythonGrpcChecks(suite, { root: ROOT, grpc: ports.grpc, http, stubs: oipStubs, logFile: join(work, 'oip.log'), label: 'OIP client', client: 'oip' });

  // --- SIGTERM ---------------------------------------------------------------------------------------
  const watcher = suite.spawn(PYTHON, [join(ROOT, 'test/system/grpc_check.py'), '--grpc', ports.grpc, '--stubs', stubs, '--watch', '30'], join(work, 'python-watch.log'), { cwd: ROOT });
  const watching = await suite.check('shutdown: a health Watch stream (Python) is open and says SERVING', () => watcher.waitFor(/"watch": "SERVING"/, 20_000).then(() => 'SERVING'));
  const sentAt = Date.now();
  server.kill('SIGTERM');
  await suite.check(`shutdown: during the drain delay /readyz is 503 while /healthz is 200`, async () => {
    // The signal is delivered asynchronously: poll until readiness turns, then liveness must still answer 200.
    await waitUntil(async () => ((await fetchJson(`${http}/readyz`, {}, 500)).status === 503 ? true : undefined), DRAIN_DELAY_MS, '/readyz 503', 20);
    const live = await fetchJson(`${http}/healthz`, {}, 500);
    assert(Date.now() - sentAt < DRAIN_DELAY_MS, `probes took until ${Date.now() - sentAt} ms, past the drain delay`);
    assert(live.status === 200, `/healthz ${live.status}`);
    return `readiness false ${Date.now() - sentAt} ms after SIGTERM`;
  });
  if (watching) {
    await suite.check('shutdown: the health Watch stream reports NOT_SERVING', async () => {
      const { code } = await Promise.race([watcher.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new CheckFailure('watch did not end')), 15_000))]);
      assert(code === 0 && /"watch": "NOT_SERVING"/.test(watcher.output), `watch exit ${code}: ${watcher.output.trim()}`);
    }, 20_000);
  }
  await suite.check(`shutdown: SIGTERM → exit 0 within --shutdown-timeout-ms ${SHUTDOWN_TIMEOUT_MS}`, async () => {
    const { code, signal } = await Promise.race([
      server.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new CheckFailure(`still running ${SHUTDOWN_TIMEOUT_MS + 2000} ms after SIGTERM`)), SHUTDOWN_TIMEOUT_MS + 2000)),
    ]);
    const took = Date.now() - sentAt;
    assert(code === 0, `exit ${code ?? signal} after ${took} ms`);
    assert(/"clean":true/.test(server.output), 'no clean "stopped" log line');
    return `${took} ms`;
  }, SHUTDOWN_TIMEOUT_MS + 5000);
}

main()
  .catch((e) => suite.fail('system test driver', e))
  .finally(() => {
    clearTimeout(watchdog);
    const code = suite.finish();
    if (code === 0) rmSync(work, { recursive: true, force: true });
    process.exit(code);
  });
