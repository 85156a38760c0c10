/**
 * The CPU image, built here by deploy/container/build-local.sh, run with podman the way a user runs it
 * (.ci/run runs this after the build; all traffic on 127.0.0.1: `--network host`, or ports published on 127.0.0.1).
 *
 *   node --import tsx test/system/podman.ts --image localhost/supsup:cpu --prometheus-image localhost/supsup-prometheus:debian
 *
 * 1. The image: its size; a numeric non-root user (what Kubernetes' runAsNonRoot can verify); its HEALTHCHECK.
 * 2. A container serving a model from a mounted host folder: start-to-ready time, `podman healthcheck run`,
 *    REST, the Python gRPC client (grpc_check.py), a task added with PUT landing in the folder.
 * 3. `podman stop`: readiness false during the drain, liveness still 200, exit code 0.
 * 4. A new container on the same folder: the task added with PUT is there and answers as before;
 *    `supsup bench --quick` runs inside it.
 * 5. docker-compose.yml brought up with podman-compose (supsup + Prometheus from Debian's package), published on
 *    127.0.0.1: Prometheus's HTTP API says up{job="supsup"} == 1 and has supsup_ series.
 *
 * Podman runs with deploy/container/containers.conf unless CONTAINERS_CONF is set. Everything it starts is
 * removed when it ends; closes with `system: N passed, M failed`, exit 1 on any failure.
 */
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel } from '../../src/model/model-store.ts';
import { DEFAULT_MODEL_DIRS } from '../../src/runtime/default-model.ts';
import { pythonGrpcChecks } from './grpc-client.ts';
import { assert, CheckFailure, fetchJson, freePort, run, Suite, waitUntil } from './harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    image: { type: 'string', default: 'localhost/supsup:cpu' },
    'prometheus-image': { type: 'string', default: 'localhost/supsup-prometheus:debian' },
  },
});
const IMAGE = opts.image!;
const PODMAN_ENV = { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? join(ROOT, 'deploy/container/containers.conf') };
const TOTAL_TIMEOUT_MS = Number(process.env.CONTAINER_TIMEOUT_MS ?? 900_000);
const NAME = `supsup-ci-${process.pid}`;
/** The bundled model, copied into the mounted folder under a name the image does not have. */
const SOURCE_MODEL = 'models/example-lenet';
const MOUNTED_MODEL = 'mounted-lenet';
const ADMIN_TOKEN = 'container-test-admin-token-0123456789';
const NEW_TASK = 'added-in-container';
const DRAIN_DELAY_MS = 2000;
const STOP_TIMEOUT_S = 30;

const suite = new Suite();
const work = mkdtempSync(join(tmpdir(), 'supsup-podman-'));
const started: string[] = [];
let composeProject: string | undefined;
console.log(`# container tests of ${IMAGE}; logs in ${work}`);

function podman(args: string[], timeoutMs = 60_000) {
  return run('podman', args, { env: PODMAN_ENV, timeoutMs });
}

async function podmanOut(args: string[], timeoutMs = 60_000): Promise<string> {
  const r = await podman(args, timeoutMs);
  assert(r.code === 0, `podman ${args.join(' ')}: exit ${r.code}\n${(r.stderr + r.stdout).trim().slice(-3000)}`);
  return r.stdout.trim();
}

async function logsOf(name: string): Promise<string> {
  const r = await podman(['logs', '--tail', '40', name]);
  return r.stdout + r.stderr;
}

/** Removes what this run started, synchronously: it also runs from the exit handler. */
function cleanUp(): void {
  const quiet = { env: PODMAN_ENV, stdio: 'ignore' as const, timeout: 120_000 };
  const attempt = (command: string, args: string[]) => {
    try {
      execFileSync(command, args, { ...quiet, cwd: ROOT });
    } catch {
      // best effort: what is already gone is fine
    }
  };
  if (composeProject) {
    attempt('podman-compose', ['-p', composeProject, '-f', 'docker-compose.yml', 'down', '-v']);
    attempt('podman', ['network', 'rm', `${composeProject}_default`]);
  }
  composeProject = undefined;
  if (started.length > 0) attempt('podman', ['rm', '--force', '--ignore', '--time', '0', ...started.splice(0)]);
}

const watchdog = setTimeout(() => {
  suite.fail('the whole container run', new CheckFailure(`still running after ${TOTAL_TIMEOUT_MS} ms: stopped`));
  cleanUp();
  process.exit(suite.finish());
}, TOTAL_TIMEOUT_MS);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    suite.fail('the whole container run', new CheckFailure(`interrupted by ${signal}`));
    cleanUp();
    process.exit(suite.finish());
  });
}
process.on('exit', cleanUp);

interface Endpoint {
  http: string;
  grpc: string;
}

/** `podman run -d` on the host network with the mounted model folder; resolves once /readyz says 200. */
async function startServer(name: string, models: string): Promise<Endpoint & { readyMs: number }> {
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const t0 = Date.now();
  started.push(name);
  // prettier-ignore
  await podmanOut([
    'run', '-d', '--name', name, '--network', 'host',
    '-e', 'SUPSUP_HOST=127.0.0.1', '-e', `SUPSUP_HTTP_PORT=${httpPort}`, '-e', `SUPSUP_GRPC_PORT=${grpcPort}`,
    '-e', `SUPSUP_MODEL=/app/models/${MOUNTED_MODEL}`, '-e', `SUPSUP_ADMIN_TOKEN=${ADMIN_TOKEN}`,
    '-e', `SUPSUP_DRAIN_DELAY_MS=${DRAIN_DELAY_MS}`, '-e', `SUPSUP_SHUTDOWN_TIMEOUT_MS=${(STOP_TIMEOUT_S - 10) * 1000}`,
    '-v', `${models}:/app/models`,
    IMAGE,
  ]);
  const http = `http://127.0.0.1:${httpPort}`;
  await waitUntil(
    async () => {
      try {
        if ((await fetchJson(`${http}/readyz`, {}, 2000)).status === 200) return true;
      } catch {
        // not listening yet
      }
      const state = await podmanOut(['container', 'inspect', '--format', '{{.State.Status}}', name]);
      if (state !== 'running') throw new CheckFailure(`${name} is ${state}:\n${await logsOf(name)}`);
      return undefined;
    },
    150_000,
    `${name}: /readyz 200`,
    500,
  );
  return { http, grpc: `127.0.0.1:${grpcPort}`, readyMs: Date.now() - t0 };
}

/** `podman stop` while probing: readiness turns false during the drain, liveness stays; exit code 0. */
async function drainCheck(name: string, server: Endpoint): Promise<void> {
  await suite.check(`podman stop ${name}: /readyz 503 while /healthz 200 during the drain, then exit code 0`, async () => {
    const t0 = Date.now();
    const stopping = podman(['stop', '-t', String(STOP_TIMEOUT_S), name], (STOP_TIMEOUT_S + 30) * 1000);
    await waitUntil(async () => ((await fetchJson(`${server.http}/readyz`, {}, 1000)).status === 503 ? true : undefined), DRAIN_DELAY_MS + 5000, '/readyz 503 after podman stop', 50);
    const live = await fetchJson(`${server.http}/healthz`, {}, 1000);
    assert(live.status === 200, `/healthz ${live.status} during the drain`);
    const stopped = await stopping;
    const took = Date.now() - t0;
    assert(stopped.code === 0, `podman stop: exit ${stopped.code}\n${stopped.stderr}`);
    const exitCode = await podmanOut(['container', 'inspect', '--format', '{{.State.ExitCode}}', name]);
    const logs = await logsOf(name);
    assert(exitCode === '0', `exit code ${exitCode}\n${logs}`);
    assert(took < STOP_TIMEOUT_S * 1000, `took ${took} ms: podman stop's ${STOP_TIMEOUT_S} s ran out (SIGKILL)`);
    assert(/"clean":true/.test(logs), `no clean "stopped" line in the log:\n${logs}`);
    return `stopped in ${took} ms`;
  }, (STOP_TIMEOUT_S + 40) * 1000);
}

/** A mask of the model's shape for PUT /tasks: ceil(P / 32) random 32-bit words, bits past P zero. */
function randomMask(manifest: { architecture: { inputSize: number; hidden: number[]; outputs: number } }): string {
  const { inputSize, hidden, outputs } = manifest.architecture;
  const sizes = [inputSize, ...hidden, outputs];
  const weights = sizes.slice(1).reduce((sum, n, i) => sum + n * sizes[i], 0);
  const words = randomFillSync(new Uint32Array(Math.ceil(weights / 32)));
  if (weights % 32) words[words.length - 1] &= 2 ** (weights % 32) - 1;
  return Buffer.from(words.buffer).toString('base64');
}

const INPUTS = Array.from({ length: 4 }, (_, i) => Array.from({ length: 784 }, (_, j) => ((i * 37 + j * 11) % 256) / 255));

async function classify(server: Endpoint, task?: string): Promise<{ label: number; probabilities: number[]; task: { id: string; inferred: boolean } }[]> {
  const r = await fetchJson(`${server.http}/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: INPUTS, task }) });
  assert(r.status === 200, `POST /classify${task ? ` task ${task}` : ''}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  assert(r.body.predictions.length === INPUTS.length, 'not one prediction per input');
  return r.body.predictions;
}

async function main(): Promise<void> {
  // --- 1. the image ----------------------------------------------------------------------------------------
  const user = await suite.check(`image ${IMAGE}: exists, docker format with its HEALTHCHECK, numeric non-root USER`, async () => {
    const [info] = JSON.parse(await podmanOut(['image', 'inspect', IMAGE])) as {
      Size: number;
      ManifestType: string;
      Healthcheck?: { Test: string[] };
      Config: { User?: string; ExposedPorts?: Record<string, unknown>; StopSignal?: string };
    }[];
    assert(/docker/.test(info.ManifestType), `manifest ${info.ManifestType}: built without --format docker, so no HEALTHCHECK`);
    assert(/\/readyz/.test(info.Healthcheck?.Test.join(' ') ?? ''), `HEALTHCHECK ${JSON.stringify(info.Healthcheck)}`);
    const m = /^(\d+)(?::(\d+))?$/.exec(info.Config.User ?? '');
    assert(m && m[1] !== '0', `USER ${JSON.stringify(info.Config.User)}: Kubernetes' runAsNonRoot needs a numeric non-zero uid`);
    for (const port of ['8080/tcp', '50051/tcp']) assert(port in (info.Config.ExposedPorts ?? {}), `${port} not exposed`);
    return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]), size: `${Math.round(info.Size / 1e6)} MB` };
  });
  if (!user) return;
  suite.pass('image size', user.size);

  await suite.check('image: /app/models holds the served default and the example only (.dockerignore leaves out the paper runs)', async () => {
    const listed = (await podmanOut(['run', '--rm', '--network', 'none', '--entrypoint', 'ls', IMAGE, '/app/models'])).split(/\s+/).sort();
    const expected = [basename(SOURCE_MODEL), basename(DEFAULT_MODEL_DIRS[0])].sort();
    assert(JSON.stringify(listed) === JSON.stringify(expected), `/app/models holds ${listed.join(', ')}`);
    return listed.join(', ');
  });

  // --- 2. a server with a mounted model ---------------------------------------------------------------------
  const models = join(work, 'models');
  mkdirSync(models);
  cpSync(join(ROOT, SOURCE_MODEL), join(models, MOUNTED_MODEL), { recursive: true, filter: (src) => !src.endsWith('.jsonl') });
  for (const p of [models, join(models, MOUNTED_MODEL), ...readdirSync(join(models, MOUNTED_MODEL)).map((f) => join(models, MOUNTED_MODEL, f))]) chownSync(p, user.uid, user.gid);

  const first = await suite.check(`container ${NAME}-a: model from a mounted folder, --network host on 127.0.0.1: start to ready`, async () => {
    return startServer(`${NAME}-a`, models);
  }, 180_000);
  if (!first) {
    if (started.length) console.log(`--- ${started[0]} log ---\n${await logsOf(started[0])}`);
    return;
  }
  suite.pass('start-to-ready', `${(first.readyMs / 1000).toFixed(1)} s from podman run to /readyz 200`);

  await suite.check('container: the server runs as the image user, not root (/proc/1/status)', async () => {
    const status = await podmanOut(['exec', `${NAME}-a`, 'cat', '/proc/1/status']);
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    assert(uid === String(user.uid), `pid 1 runs as uid ${uid}`);
    return `uid ${uid}`;
  });

  await suite.check('container: `podman healthcheck run` passes; health status healthy', async () => {
    const r = await podman(['healthcheck', 'run', `${NAME}-a`]);
    assert(r.code === 0, `podman healthcheck run: exit ${r.code} ${r.stdout}${r.stderr}`);
    const status = await podmanOut(['container', 'inspect', '--format', '{{.State.Health.Status}}', `${NAME}-a`]);
    assert(status === 'healthy', `health status ${status}`);
    return status;
  });

  const manifest = JSON.parse(readFileSync(join(models, MOUNTED_MODEL, 'manifest.json'), 'utf8'));
  await suite.check('container REST: /healthz, /readyz, /model serves the mounted model, /tasks, POST /classify given and inferred', async () => {
    assert((await fetchJson(`${first.http}/healthz`)).status === 200, '/healthz not 200');
    const model = await fetchJson(`${first.http}/model`);
    assert(model.status === 200 && model.body.dir === `/app/models/${MOUNTED_MODEL}`, `/model dir ${model.body?.dir}`);
    const tasks = (await fetchJson(`${first.http}/tasks`)).body.tasks as { id: string }[];
    assert(tasks.length === manifest.tasks.length, `/tasks has ${tasks.length}, the mounted manifest ${manifest.tasks.length}`);
    const given = await classify(first, tasks[0].id);
    assert(given.every((p) => p.task.id === tasks[0].id && !p.task.inferred), 'given task not used');
    const inferred = await classify(first);
    assert(inferred.every((p) => p.task.inferred), 'task not inferred');
    return `${tasks.length} tasks, backend ${model.body.backend}, kernels ${model.body.kernels}`;
  });

  await pythonGrpcChecks(suite, { root: ROOT, grpc: first.grpc, http: first.http, stubs: join(work, 'python-stubs'), logFile: join(work, 'python.log'), label: 'container gRPC (python grpcio)' });

  const before = await suite.check(`container: PUT /tasks/${NEW_TASK} (admin token) → 201, written into the mounted folder`, async () => {
    const put = await fetchJson(`${first.http}/tasks/${NEW_TASK}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ mask: randomMask(manifest), name: 'Added in a container' }),
    });
    assert(put.status === 201, `PUT: ${put.status} ${JSON.stringify(put.body).slice(0, 300)}`);
    // Read back on the host with the model store's own loader: a PUT appends to the task log, not the manifest.
    const onHost = await loadModel(join(models, MOUNTED_MODEL));
    assert(onHost.manifest.tasks.some((t) => t.id === NEW_TASK), 'the task is not in the model on the host side of the mount');
    return classify(first, NEW_TASK);
  });

  await drainCheck(`${NAME}-a`, first);

  // --- 4. a new container on the same folder ------------------------------------------------------------
  await podman(['rm', started.shift()!]);
  const second = await suite.check(`container ${NAME}-b: a new container on the same folder turns ready`, () => startServer(`${NAME}-b`, models), 180_000);
  if (second) suite.pass('start-to-ready, second container', `${(second.readyMs / 1000).toFixed(1)} s`);
  if (second) {
    await suite.check(`container: the task added with PUT survived the restart and answers as before`, async () => {
      const t = await fetchJson(`${second.http}/tasks/${NEW_TASK}`);
      assert(t.status === 200 && t.body.name === 'Added in a container', `GET /tasks/${NEW_TASK}: ${t.status} ${JSON.stringify(t.body)}`);
      const after = await classify(second, NEW_TASK);
      assert(before !== undefined, 'no answer from before the restart to compare with');
      const round = (ps: typeof after) => JSON.stringify(ps.map((p) => [p.label, p.probabilities.map((x) => x.toFixed(6))]));
      assert(round(after) === round(before), `answers differ after the restart:\n${round(before)}\n${round(after)}`);
      return `${after.length} predictions equal`;
    });

    await suite.check('container: `supsup bench --quick` runs inside the image', async () => {
      const r = await podman(['exec', `${NAME}-b`, 'node', 'bin/supsup.js', 'bench', '--quick', '--out', '/tmp/bench.json'], 300_000);
      assert(r.code === 0, `exit ${r.code}\n${(r.stdout + r.stderr).trim().slice(-2000)}`);
      const report = JSON.parse(await podmanOut(['exec', `${NAME}-b`, 'cat', '/tmp/bench.json']));
      assert(report && typeof report === 'object', 'no JSON report');
      return r.stdout.trim().split('\n').slice(-1)[0];
    }, 320_000);

    await drainCheck(`${NAME}-b`, second);
  }
  cleanUp();

  // --- 5. compose ------------------------------------------------------------------------------------------
  await composeChecks();
}

/**
 * Debian 12's podman-compose (1.0.3) ignores `profiles:`, so without naming the services it would also start
 * supsup-gpu (the gpu profile); `up` names the default profile's services instead.
 */
const COMPOSE_SERVICES = ['supsup', 'prometheus'];

/** docker-compose.yml with podman-compose: published on 127.0.0.1 only, the Prometheus image from build-local.sh. */
async function composeChecks(): Promise<void> {
  const [httpPort, grpcPort, promPort] = [await freePort(), await freePort(), await freePort()];
  const project = `supsupci${process.pid}`;
  const env = {
    ...PODMAN_ENV,
    SUPSUP_IMAGE: IMAGE,
    PROMETHEUS_IMAGE: opts['prometheus-image']!,
    SUPSUP_HTTP_PUBLISH: `127.0.0.1:${httpPort}`,
    SUPSUP_GRPC_PUBLISH: `127.0.0.1:${grpcPort}`,
    PROMETHEUS_PUBLISH: `127.0.0.1:${promPort}`,
  };
  const up = await suite.check(`compose: podman-compose up -d (supsup + ${opts['prometheus-image']}), ports on 127.0.0.1`, async () => {
    composeProject = project;
    const r = await run('podman-compose', ['-p', project, '-f', 'docker-compose.yml', 'up', '-d', '--no-build', ...COMPOSE_SERVICES], { cwd: ROOT, env, timeoutMs: 240_000 });
    assert(r.code === 0, `podman-compose up: exit ${r.code}\n${(r.stdout + r.stderr).trim().slice(-3000)}`);
    await waitUntil(async () => ((await fetchJson(`http://127.0.0.1:${httpPort}/readyz`, {}, 2000)).status === 200 ? true : undefined), 150_000, 'supsup /readyz 200 on the published port', 500);
    return 'supsup ready';
  }, 420_000);
  if (up !== undefined) {
    await suite.check('compose: variables unset in the shell stay unset in the container (PUT /tasks refused: no admin token)', async () => {
      const env = await podmanOut(['exec', `${project}_supsup_1`, 'env']);
      const leaked = env.split('\n').filter((l) => l.includes('${'));
      assert(leaked.length === 0, `uninterpolated variables: ${leaked.join(', ')}`);
      const put = await fetchJson(`http://127.0.0.1:${httpPort}/tasks/x`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: 'Bearer anything-at-all-here' }, body: '{"mask":""}' });
      assert(put.status === 403, `PUT /tasks: ${put.status}, expected 403 (task management off)`);
    });
  }
  if (up !== undefined) {
    const prom = `http://127.0.0.1:${promPort}`;
    await suite.check('compose: Prometheus (in its container) scrapes supsup by its service name: up{job="supsup"} == 1, supsup_ series', async () => {
      const query = async (q: string) => {
        const r = await fetchJson(`${prom}/api/v1/query?query=${encodeURIComponent(q)}`, {}, 5000);
        assert(r.status === 200 && r.body?.status === 'success', `query ${q}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        return r.body.data.result as { metric: Record<string, string>; value: [number, string] }[];
      };
      const up = await waitUntil(async () => {
        const r = await query('up{job="supsup"} == 1');
        return r.length > 0 ? r : undefined;
      }, 90_000, 'up{job="supsup"} == 1', 1000);
      // A scrape from before the model finished loading says 0: wait for one from after.
      const tasks = await waitUntil(async () => {
        const r = await query('supsup_tasks_loaded{job="supsup"} > 0');
        return r.length > 0 ? r : undefined;
      }, 30_000, 'supsup_tasks_loaded > 0 scraped', 1000);
      return `instance ${up[0].metric.instance}, ${tasks[0].value[1]} tasks loaded`;
    }, 130_000);
  }
  await suite.check('compose: podman-compose down -v', async () => {
    const r = await run('podman-compose', ['-p', project, '-f', 'docker-compose.yml', 'down', '-v'], { cwd: ROOT, env, timeoutMs: 180_000 });
    assert(r.code === 0, `podman-compose down: exit ${r.code}\n${(r.stdout + r.stderr).trim().slice(-2000)}`);
    const left = await podmanOut(['ps', '-a', '--filter', `label=io.podman.compose.project=${project}`, '--format', '{{.Names}}']);
    assert(left === '', `containers left: ${left}`);
    const volumes = await podmanOut(['volume', 'ls', '--filter', `label=io.podman.compose.project=${project}`, '--format', '{{.Name}}']);
    assert(volumes === '', `volumes left: ${volumes}`);
    // podman-compose 1.0.3 leaves the project's network behind: removed here.
    await podmanOut(['network', 'rm', `${project}_default`]);
    composeProject = undefined;
  }, 200_000);
}

main()
  .catch((e) => suite.fail('container test driver', e))
  .finally(() => {
    clearTimeout(watchdog);
    cleanUp();
    const code = suite.finish();
    if (code === 0) rmSync(work, { recursive: true, force: true });
    process.exit(code);
  });
