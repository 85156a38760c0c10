/**
 * deploy/k8s/*.yaml against the Kubernetes OpenAPI schemas (npm `kubernetes-models`: the official API
 * schemas compiled to JSON Schema validators), plus what a schema cannot see: every Secret key, selector and
 * scale target refers to something that exists, probes hit routes the server has, and the Prometheus
 * configuration passes `promtool check config` where promtool is installed.
 * No cluster runs here: this is as far as the manifests can be checked without one. The KServe
 * InferenceService has no schema in our registries; its embedded containers and volumes are checked as
 * core/v1 objects and its top level by hand.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as apps from 'kubernetes-models/apps/v1';
import * as autoscaling from 'kubernetes-models/autoscaling/v2';
import * as batch from 'kubernetes-models/batch/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as rbac from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as core from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { parseServeConfig } from '../src/service/config.ts';

const DIR = new URL('../deploy/k8s/', import.meta.url).pathname;

type Doc = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: any };
type Validatable = new (data: any) => { validate(): void };

const MODELS: Record<string, Validatable> = {
  'v1/Secret': core.Secret,
  'v1/Service': core.Service,
  'v1/ConfigMap': core.ConfigMap,
  'v1/ServiceAccount': core.ServiceAccount,
  'apps/v1/Deployment': apps.Deployment,
  'apps/v1/StatefulSet': apps.StatefulSet,
  'batch/v1/Job': batch.Job,
  'policy/v1/PodDisruptionBudget': policy.PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': autoscaling.HorizontalPodAutoscaler,
  'rbac.authorization.k8s.io/v1/ClusterRole': rbac.ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': rbac.ClusterRoleBinding,
};

function load(): { file: string; doc: Doc }[] {
  const out: { file: string; doc: Doc }[] = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.yaml'))) {
    for (const d of parseAllDocuments(readFileSync(join(DIR, file), 'utf8'))) {
      assert.equal(d.errors.length, 0, `${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      out.push({ file, doc: d.toJS() as Doc });
    }
  }
  return out;
}

const docs = load();
const find = (kind: string, name: string) => docs.find((d) => d.doc.kind === kind && d.doc.metadata.name === name)?.doc;
const podSpecs = () =>
  docs.flatMap(({ doc }) => {
    if (doc.kind === 'InferenceService') return [{ where: `InferenceService/${doc.metadata.name}`, spec: doc.spec.predictor, labels: {} }];
    const t = doc.spec?.template ?? doc.spec?.jobTemplate?.spec?.template;
    return t ? [{ where: `${doc.kind}/${doc.metadata.name}`, spec: t.spec, labels: t.metadata?.labels ?? {} }] : [];
  });

test('every manifest passes the Kubernetes API schema of its kind', () => {
  assert.ok(docs.length >= 15, `only ${docs.length} objects found in deploy/k8s`);
  for (const { file, doc } of docs) {
    if (doc.kind === 'InferenceService') continue;
    const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
    assert.ok(Model, `${file}: ${doc.apiVersion} ${doc.kind} has no schema here`);
    assert.doesNotThrow(() => new Model(doc).validate(), `${file}: ${doc.kind}/${doc.metadata.name}`);
  }
});

test('a broken manifest is caught (the validator is not a no-op)', () => {
  const d = structuredClone(find('Deployment', 'supsup')!);
  d.spec.template.spec.containers[0].ports[0].containerPort = '8080';
  assert.throws(() => new apps.Deployment(d).validate(), /containerPort must be integer/);
});

test('the KServe InferenceService: OIP v2 probes, one port, containers and volumes valid as core/v1', () => {
  const isvc = find('InferenceService', 'supsup')!;
  assert.equal(isvc.apiVersion, 'serving.kserve.io/v1beta1');
  const [container, ...rest] = isvc.spec.predictor.containers;
  assert.equal(rest.length, 0, 'KServe takes one serving container');
  assert.equal(container.name, 'kserve-container');
  new core.Container(container).validate();
  for (const v of isvc.spec.predictor.volumes) new core.Volume(v).validate();
  assert.equal(container.ports.length, 1);
  assert.equal(container.readinessProbe.httpGet.path, '/v2/health/ready');
  assert.equal(container.livenessProbe.httpGet.path, '/v2/health/live');
});

test('references resolve: Secret keys, selectors, the HPA and PDB targets, probe routes', () => {
  const routes = readFileSync(new URL('../src/service/http/health-routes.ts', import.meta.url), 'utf8') + readFileSync(new URL('../src/service/oip/rest-routes.ts', import.meta.url), 'utf8');
  for (const { where, spec } of podSpecs()) {
    for (const c of spec.containers) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const secret = find('Secret', ref.name);
        assert.ok(secret?.stringData?.[ref.key] !== undefined, `${where}: Secret ${ref.name} has no key ${ref.key}`);
      }
      if (!String(c.image).startsWith('supsup:')) continue;
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) {
        if (probe.httpGet) assert.ok(routes.includes(`'${probe.httpGet.path}'`), `${where}: probe path ${probe.httpGet.path} is not a route of the server`);
      }
    }
  }
  const deployment = find('Deployment', 'supsup')!;
  const labels = deployment.spec.template.metadata.labels;
  const matches = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
  assert.ok(matches(find('Service', 'supsup')!.spec.selector), 'Service supsup selects no supsup pod');
  assert.ok(matches(find('PodDisruptionBudget', 'supsup')!.spec.selector.matchLabels), 'the PDB selects no supsup pod');
  const hpa = find('HorizontalPodAutoscaler', 'supsup')!;
  assert.equal(hpa.spec.scaleTargetRef.name, 'supsup');
  assert.ok(hpa.spec.minReplicas > find('PodDisruptionBudget', 'supsup')!.spec.minAvailable, 'the PDB must leave room for one voluntary eviction');
  assert.ok(hpa.spec.metrics.some((m: any) => m.pods?.metric.name === 'supsup_queue_depth'));
  const adapter = find('ConfigMap', 'supsup-adapter-rules')!.data['config.yaml'];
  assert.match(adapter, /as: supsup_queue_depth/, 'the HPA metric is served by the adapter rules');
  const metrics = readFileSync(new URL('../src/service/metrics.ts', import.meta.url), 'utf8');
  assert.ok(metrics.includes("'supsup_queue_depth'"), 'supsup_queue_depth is a metric the server exports');
  const grace = deployment.spec.template.spec.terminationGracePeriodSeconds * 1000;
  const shutdown = Number(deployment.spec.template.spec.containers[0].env.find((e: any) => e.name === 'SUPSUP_SHUTDOWN_TIMEOUT_MS').value);
  assert.ok(grace > shutdown, 'terminationGracePeriodSeconds must exceed SUPSUP_SHUTDOWN_TIMEOUT_MS');
});

test('every supsup serve container starts with settings the server accepts (flags and SUPSUP_* from the manifests)', () => {
  for (const { where, spec } of podSpecs()) {
    for (const c of spec.containers.filter((c: any) => String(c.image).startsWith('supsup:') && !c.command)) {
      const env: Record<string, string> = {};
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        env[e.name] = ref ? find('Secret', ref.name)!.stringData[ref.key] : e.value;
      }
      const config = parseServeConfig(c.args, env);
      assert.ok(config.store, `${where}: runs without the shared store`);
      for (const p of c.ports) assert.ok([config.httpPort, config.grpcPort].includes(p.containerPort), `${where}: port ${p.containerPort} is not one the server listens on`);
    }
  }
});

const promtool = (() => {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();

test('the Prometheus configuration passes promtool check config (pod discovery aside)', { skip: promtool ? undefined : 'promtool is not installed (apt-get install prometheus)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'supsup-k8s-'));
  try {
    const file = join(dir, 'prometheus.yml');
    // Debian's Prometheus is built without Kubernetes discovery, so its promtool refuses kubernetes_sd_configs;
    // swapped for a static target, everything else (relabelling rules and their regexes) is still checked.
    const config = find('ConfigMap', 'prometheus-config')!.data['prometheus.yml'] as string;
    assert.match(config, /kubernetes_sd_configs:\n\s+- role: pod\n/);
    writeFileSync(file, config.replace(/kubernetes_sd_configs:\n(\s+)- role: pod\n/, "static_configs:\n$1- targets: ['127.0.0.1:8080']\n"));
    execFileSync('promtool', ['check', 'config', file], { stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
