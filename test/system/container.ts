/**
 * What can be checked of the container without a Docker engine (none runs on this project's machines):
 * the Dockerfile's stages, targets and runtime settings; that every path it COPYs from the build context
 * is in the repository and not excluded by .dockerignore; docker-compose.yml against the Compose schema
 * (`docker-compose config`); deploy/prometheus.yml and its rules with `promtool`; and the CPU image's file
 * set, laid out as the image lays it out, started with the image's ENV and ENTRYPOINT and probed with its
 * HEALTHCHECK command.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { assert, CheckFailure, fetchJson, run, type Suite, waitUntil } from './harness.ts';

export interface Instruction {
  cmd: string;
  /** The arguments as written (after the flags), continuation lines joined. */
  rest: string;
  flags: Record<string, string>;
  line: number;
}

export interface Stage {
  base: string;
  name?: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  args: Record<string, string>;
  stages: Stage[];
}

/** A Dockerfile parser sufficient for checking: instructions, `--flags`, stages, global ARG defaults. */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.split('\n');
  const instructions: Instruction[] = [];
  for (let i = 0; i < lines.length; i++) {
    const first = i;
    let line = lines[i];
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      line = line.replace(/\\\s*$/, ' ');
      i++;
      if (/^\s*#/.test(lines[i])) continue; // comment lines inside a continuation are dropped
      line += lines[i];
    }
    const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(line);
    if (!m) throw new CheckFailure(`Dockerfile line ${first + 1}: cannot parse ${JSON.stringify(line)}`);
    let rest = m[2].trim();
    const flags: Record<string, string> = {};
    for (let f = /^--([a-z-]+)(?:=(\S+))?\s*/.exec(rest); f; f = /^--([a-z-]+)(?:=(\S+))?\s*/.exec(rest)) {
      flags[f[1]] = f[2] ?? 'true';
      rest = rest.slice(f[0].length);
    }
    instructions.push({ cmd: m[1].toUpperCase(), rest, flags, line: first + 1 });
  }
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.cmd === 'FROM') {
      const [base, as, name] = ins.rest.split(/\s+/);
      stages.push({ base: substitute(base, args), name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.cmd !== 'ARG') throw new CheckFailure(`Dockerfile line ${ins.line}: ${ins.cmd} before the first FROM`);
      const [k, v] = ins.rest.split('=');
      args[k] = v ?? '';
    } else {
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return { args, stages };
}

function substitute(s: string, args: Record<string, string>): string {
  return s.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, k: string) => args[k] ?? `\${${k}}`);
}

/** The source paths of a COPY/ADD (all arguments but the last), from JSON or whitespace form. */
export function copySources(ins: Instruction): string[] {
  const parts = ins.rest.startsWith('[') ? (JSON.parse(ins.rest) as string[]) : ins.rest.split(/\s+/);
  return parts.slice(0, -1);
}

export function copyDestination(ins: Instruction): string {
  const parts = ins.rest.startsWith('[') ? (JSON.parse(ins.rest) as string[]) : ins.rest.split(/\s+/);
  return parts[parts.length - 1];
}

/** The stage's environment: ENV lines in either `K=V K2=V2` or `K V` form. */
export function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.instructions.filter((i) => i.cmd === 'ENV')) {
    if (/^\S+=/.test(ins.rest)) {
      for (const m of ins.rest.matchAll(/(\S+?)=("(?:[^"\\]|\\.)*"|\S*)/g)) env[m[1]] = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2];
    } else {
      const [k, ...v] = ins.rest.split(/\s+/);
      env[k] = v.join(' ');
    }
  }
  return env;
}

/** .dockerignore patterns (Go filepath.Match with `**`, a match on a directory covers what is inside; `!` re-includes). */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, ''));
      const re = pattern
        .split('/')
        .map((seg) => (seg === '**' ? '(?:.*)' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
        .join('/')
        .replace(/\(\?:\.\*\)\//g, '(?:.*/)?');
      return { negate, re: new RegExp(`^${re}(?:/.*)?$`) };
    });
  return (path: string) => {
    let excluded = false;
    for (const r of rules) if (r.re.test(path)) excluded = !r.negate;
    return excluded;
  };
}

/** Files tracked by git under `root` (what a fresh clone has), or every file when this is not a git checkout. */
export function trackedFiles(root: string): string[] {
  try {
    return execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
      .split('\0')
      .filter((f) => f && existsSync(join(root, f)));
  } catch {
    const out: string[] = [];
    const walk = (rel: string) => {
      for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
        const p = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (e.name !== 'node_modules' && e.name !== '.git') walk(p);
        } else out.push(p);
      }
    };
    walk('');
    return out;
  }
}

export interface ContainerPaths {
  root: string;
  logDir: string;
  python?: string;
}

export async function containerChecks(suite: Suite, { root, logDir }: ContainerPaths): Promise<void> {
  const dockerfileText = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const ignored = dockerignore(existsSync(join(root, '.dockerignore')) ? readFileSync(join(root, '.dockerignore'), 'utf8') : '');
  const tracked = trackedFiles(root);
  let df: Dockerfile | undefined;

  await suite.check('Dockerfile: parses; cpu and gpu targets; every --from names an earlier stage', () => {
    df = parseDockerfile(dockerfileText);
    const names = df.stages.map((s) => s.name);
    for (const t of ['cpu', 'gpu']) assert(names.includes(t), `no stage "${t}" (stages: ${names.join(', ')})`);
    df.stages.forEach((s, i) => {
      const earlier = df!.stages.slice(0, i).map((e) => e.name);
      for (const ins of s.instructions) {
        const from = ins.flags.from;
        if (from) assert(earlier.includes(from), `line ${ins.line}: --from=${from} is not an earlier stage`);
      }
      assert(!s.base.includes('${'), `stage ${s.name ?? i}: base image ${s.base} has an unset ARG`);
    });
    return `${df.stages.length} stages: ${names.filter(Boolean).join(', ')}`;
  });
  if (!df) return;
  const stage = (name: string) => df!.stages.find((s) => s.name === name)!;
  /** A stage's base image, following stages built FROM other stages. */
  const baseImage = (s: Stage): string => {
    const parent = df!.stages.find((p) => p.name === s.base);
    return parent ? baseImage(parent) : s.base;
  };

  await suite.check('Dockerfile: base images match package.json engines; the gpu image is CUDA 13 with our CUDA addon', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
    const nodeMajor = Number(/^node:(\d+)/.exec(baseImage(stage('cpu')))?.[1]);
    const engines = Number(/(\d+)/.exec(pkg.engines?.node ?? '')?.[1]);
    assert(nodeMajor >= engines, `cpu base ${baseImage(stage('cpu'))} is older than engines.node ${pkg.engines?.node}`);
    const gpuBase = baseImage(stage('gpu'));
    const runtime = /^nvidia\/cuda:(13\.\d+\.\d+)-runtime-ubuntu/.exec(gpuBase);
    assert(runtime, `gpu base ${gpuBase}: expected nvidia/cuda:13.x.y-runtime-ubuntu*`);
    const buildBase = baseImage(stage('gpu-build'));
    assert(buildBase.startsWith(`nvidia/cuda:${runtime[1]}-devel-`), `gpu-build base ${buildBase}: expected the devel image of CUDA ${runtime[1]}`);
    const built = stage('gpu-build').instructions.some((i) => i.cmd === 'RUN' && i.rest.includes('native/cuda/build.sh'));
    assert(built, 'gpu-build does not run native/cuda/build.sh');
    const copied = stage('gpu').instructions.some((i) => i.cmd === 'COPY' && i.rest.includes('build/cuda/supsup_cuda.node'));
    assert(copied, 'the gpu image does not copy build/cuda/supsup_cuda.node');
    assert(stageEnv(stage('gpu')).SUPSUP_BACKEND === 'cuda', 'the gpu image does not set SUPSUP_BACKEND=cuda');
    const tfjsCore = lock.packages?.['node_modules/@tensorflow/tfjs-core']?.version;
    const peer = pkg.peerDependencies?.['@tensorflow/tfjs-node-gpu'];
    assert(peer === undefined || peer === tfjsCore, `peerDependencies tfjs-node-gpu ${peer} but @tensorflow/tfjs-core ${tfjsCore} in package-lock.json: they must match`);
    return `node ${nodeMajor}, ${gpuBase}, tfjs ${tfjsCore}`;
  });

  await suite.check('Dockerfile: cpu and gpu images run non-root, EXPOSE 8080 50051, HEALTHCHECK /readyz, STOPSIGNAL SIGTERM, ENTRYPOINT supsup serve', () => {
    for (const t of ['cpu', 'gpu']) {
      const ins = stage(t).instructions;
      const last = (cmd: string) => [...ins].reverse().find((i) => i.cmd === cmd);
      const user = last('USER')?.rest;
      assert(user && !/^(root|0)(:|$)/.test(user), `${t}: no non-root USER`);
      const exposed = ins.filter((i) => i.cmd === 'EXPOSE').flatMap((i) => i.rest.split(/\s+/));
      for (const p of ['8080', '50051']) assert(exposed.includes(p), `${t}: port ${p} not exposed`);
      assert(/\/readyz/.test(last('HEALTHCHECK')?.rest ?? ''), `${t}: HEALTHCHECK does not probe /readyz`);
      assert(last('STOPSIGNAL')?.rest === 'SIGTERM', `${t}: STOPSIGNAL is not SIGTERM`);
      const entry = JSON.parse(last('ENTRYPOINT')?.rest ?? 'null');
      assert(JSON.stringify(entry) === JSON.stringify(['node', 'bin/supsup.js', 'serve']), `${t}: ENTRYPOINT is ${JSON.stringify(entry)}`);
      const env = stageEnv(stage(t));
      assert(env.SUPSUP_HTTP_PORT === '8080' && env.SUPSUP_GRPC_PORT === '50051', `${t}: SUPSUP_HTTP_PORT/SUPSUP_GRPC_PORT not 8080/50051`);
    }
    return 'cpu, gpu';
  });

  await suite.check('Dockerfile: every COPY from the build context is tracked in git and not excluded by .dockerignore', () => {
    let n = 0;
    for (const s of df!.stages) {
      for (const ins of s.instructions.filter((i) => (i.cmd === 'COPY' || i.cmd === 'ADD') && !i.flags.from)) {
        for (const src of copySources(ins)) {
          const rel = posix.normalize(src).replace(/^\.\/?/, '').replace(/\/$/, '');
          assert(!ignored(rel), `line ${ins.line}: ${src} is excluded by .dockerignore`);
          const files = tracked.filter((f) => f === rel || f.startsWith(`${rel}/`));
          assert(files.length > 0, `line ${ins.line}: ${src} is not in the repository (git ls-files)`);
          assert(files.some((f) => !ignored(f)), `line ${ins.line}: everything under ${src} is excluded by .dockerignore`);
          n++;
        }
      }
    }
    return `${n} sources`;
  });

  await suite.check('docker-compose.yml: valid Compose file (docker-compose config), with and without --profile gpu', async () => {
    for (const profile of [[], ['--profile', 'gpu']]) {
      const r = await run('docker-compose', ['-f', 'docker-compose.yml', ...profile, 'config', '-q'], { cwd: root, timeoutMs: 60_000 });
      assert(r.code === 0, `docker-compose ${profile.join(' ')} config: exit ${r.code}\n${r.stderr}${r.stdout}`);
    }
    const services = await run('docker-compose', ['-f', 'docker-compose.yml', '--profile', 'gpu', 'config', '--services'], { cwd: root, timeoutMs: 60_000 });
    const list = services.stdout.trim().split('\n').sort();
    for (const s of ['prometheus', 'supsup', 'supsup-gpu']) assert(list.includes(s), `no service ${s} (${list.join(', ')})`);
    return list.join(', ');
  }, 90_000);

  await suite.check('docker-compose.yml: build targets are Dockerfile stages; mounted files exist; model volume at the image model dir', () => {
    const text = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    const targets = [...text.matchAll(/^\s+target:\s*(\S+)/gm)].map((m) => m[1]);
    assert(targets.length >= 2, 'fewer than two build targets');
    for (const t of targets) assert(df!.stages.some((s) => s.name === t), `build target ${t} is not a Dockerfile stage`);
    for (const m of text.matchAll(/^\s+-\s+(\.\/[^:\s]+):/gm)) assert(existsSync(join(root, m[1])), `mounted ${m[1]} does not exist`);
    const workdir = [...stage('cpu').instructions].reverse().find((i) => i.cmd === 'WORKDIR')?.rest;
    assert(new RegExp(`:\\s*${workdir}/models\\b`).test(text) || text.includes(`:${workdir}/models`), `no volume mounted at ${workdir}/models`);
    return `targets ${targets.join(', ')}`;
  });

  await suite.check('deploy/prometheus.yml: promtool check config (and the alert rules it loads)', async () => {
    const r = await run('promtool', ['check', 'config', 'deploy/prometheus.yml'], { cwd: root, timeoutMs: 30_000 });
    assert(r.code === 0, `promtool check config: exit ${r.code}\n${r.stdout}${r.stderr}`);
    const rules = await run('promtool', ['check', 'rules', 'deploy/supsup-alerts.yml'], { cwd: root, timeoutMs: 30_000 });
    assert(rules.code === 0, `promtool check rules: exit ${rules.code}\n${rules.stdout}${rules.stderr}`);
    return /(\d+) rules found/.exec(rules.stdout)?.[0] ?? 'ok';
  });

  await imageFileSetCheck(suite, root, logDir, df, ignored, tracked);
}

/**
 * The cpu image without Docker: its files laid out as its COPY lines lay them out (from the build context,
 * .dockerignore applied; node_modules and the native addon from this checkout, as the build stage makes
 * them), started in that directory with the stage's ENV and ENTRYPOINT; then its HEALTHCHECK command must
 * pass, and fail again once the server has stopped.
 */
async function imageFileSetCheck(suite: Suite, root: string, logDir: string, df: Dockerfile, ignored: (p: string) => boolean, tracked: string[]): Promise<void> {
  const cpu = df.stages.find((s) => s.name === 'cpu')!;
  const staging = mkdtempSync(join(tmpdir(), 'supsup-image-'));
  const env = stageEnv(cpu);
  const healthcheck = JSON.parse([...cpu.instructions].reverse().find((i) => i.cmd === 'HEALTHCHECK')!.rest.replace(/^.*?CMD\s+/, '')) as string[];
  const entry = JSON.parse([...cpu.instructions].reverse().find((i) => i.cmd === 'ENTRYPOINT')!.rest) as string[];
  try {
    await suite.check('cpu image file set: laid out from the COPY lines', () => {
      let files = 0;
      for (const ins of cpu.instructions.filter((i) => i.cmd === 'COPY')) {
        const dest = copyDestination(ins).replace(/^\.\/?/, '');
        for (const src of copySources(ins)) {
          const rel = posix.normalize(src).replace(/^\.\/?/, '').replace(/\/$/, '');
          const target = join(staging, dest.endsWith('/') || dest === '' ? join(dest, posix.basename(rel)) : dest);
          if (ins.flags.from) {
            // From the build stage: what `npm ci` made in this checkout.
            const local = join(root, rel.replace(/^\/app\//, ''));
            assert(existsSync(local), `${src} (from the build stage) is missing here: run npm ci`);
            mkdirSync(dirname(target), { recursive: true });
            if (statSync(local).isDirectory()) symlinkSync(local, target, 'dir');
            else copyFileSync(local, target);
            files++;
            continue;
          }
          for (const f of tracked.filter((t) => (t === rel || t.startsWith(`${rel}/`)) && !ignored(t))) {
            const out = f === rel ? target : join(target, f.slice(rel.length + 1));
            mkdirSync(dirname(out), { recursive: true });
            copyFileSync(join(root, f), out);
            files++;
          }
        }
      }
      return `${files} files and links in ${staging}`;
    });

    const serverEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...env, SUPSUP_HOST: '127.0.0.1', SUPSUP_HTTP_PORT: '0', SUPSUP_GRPC_PORT: '0', SUPSUP_LOG_LEVEL: 'info' };
    const server = suite.spawn(entry[0], entry.slice(1), join(logDir, 'image-server.log'), { cwd: staging, env: serverEnv });
    suite.whenFailed(() => console.log(`--- image-server.log (last lines) ---\n${server.tail()}`));
    const port = await suite.check(
      'cpu image file set: ENTRYPOINT with the image ENV starts and turns ready',
      async () => {
        const m = await server.waitFor(/"msg":"ready: HTTP on [^"]*?:(\d+),/, 90_000);
        const url = `http://127.0.0.1:${m[1]}`;
        await waitUntil(async () => ((await fetchJson(`${url}/readyz`)).status === 200 ? true : undefined), 60_000, '/readyz 200');
        const backend = /"msg":"backend: (\w+)/.exec(server.output)?.[1];
        assert(backend === env.SUPSUP_BACKEND, `backend ${backend}, the image sets SUPSUP_BACKEND=${env.SUPSUP_BACKEND}`);
        return Number(m[1]);
      },
      120_000,
    );
    if (port === undefined) return;
    const probe = () => run(healthcheck[0], healthcheck.slice(1), { env: { PATH: process.env.PATH, SUPSUP_HTTP_PORT: String(port) }, timeoutMs: 10_000 });
    await suite.check('cpu image file set: the HEALTHCHECK command passes while ready', async () => {
      const r = await probe();
      assert(r.code === 0, `exit ${r.code}: ${r.stderr}`);
    });
    await suite.check('cpu image file set: SIGTERM exits 0; the HEALTHCHECK then fails', async () => {
      server.kill('SIGTERM');
      const { code, signal } = await server.exited;
      assert(code === 0, `exit ${code ?? signal}`);
      const r = await probe();
      assert(r.code === 1, `healthcheck exit ${r.code} against a stopped server`);
    }, 40_000);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
