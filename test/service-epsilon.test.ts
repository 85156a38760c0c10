import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setUnknownTaskThreshold } from '../src/model/model-store.ts';
import { type TestService, http, randomExamples, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

describe('serve --epsilon', () => {
  let dir: { dir: string; remove: () => Promise<void> };
  let strict: TestService;
  let lenient: TestService;
  let own: TestService;
  let overridden: TestService;
  let plain: TestService;
  before(async () => {
    dir = await tempDir();
    const model = await tinyModel(dir.dir);
    strict = await startTestService(testConfig(model, { epsilon: 1000, logLevel: 'silent' }));
    lenient = await startTestService(testConfig(model, { epsilon: 0, logLevel: 'silent' }));
    plain = await startTestService(testConfig(model, { epsilon: undefined, logLevel: 'silent' }));
    // A model that carries its own threshold (manifest unknownTask): used when --epsilon is unset, a flag overrides it.
    const calibrated = await tinyModel(dir.dir, 4, 'calibrated');
    await setUnknownTaskThreshold(calibrated, { epsilon: 1000, calibration: 'test: flags everything' });
    own = await startTestService(testConfig(calibrated, { epsilon: undefined, logLevel: 'silent' }));
    overridden = await startTestService(testConfig(calibrated, { epsilon: 0, logLevel: 'silent' }));
  });
  after(async () => {
    for (const s of [strict, lenient, own, overridden, plain]) await s?.close();
    await dir?.remove();
  });

  it('reaches the engine: k · max ν < 1 + ε flags every batch at a huge ε and none at ε = 0', async () => {
    const { rows } = randomExamples(3, 784, 11);
    const ask = (s: TestService) => http('POST', `${s.url}/classify`, { inputs: rows });
    const [a, b] = await Promise.all([ask(strict), ask(lenient)]);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(b.status, 200, JSON.stringify(b.body));
    // With k = 4 masks, k · max ν lies in [1, 4]: always below 1 + 1000; at ε = 0 only an exact tie (ν uniform) is unknown.
    assert.ok(a.body.predictions.every((p: { task: { unknown: boolean } }) => p.task.unknown));
    assert.ok(b.body.predictions.every((p: { task: { unknown: boolean; confidence: number } }) => !p.task.unknown && p.task.confidence > 0.25));
    assert.deepEqual(a.body.predictions.map((p: { task: { id: string } }) => p.task.id), b.body.predictions.map((p: { task: { id: string } }) => p.task.id));
  });

  it("uses the model's own ε when --epsilon is unset, the flag when set, else the paper's 1/8", async () => {
    const epsilonOf = async (s: TestService) => (await http('GET', `${s.url}/model`)).body.limits.epsilon;
    assert.deepEqual(await Promise.all([own, overridden, plain].map(epsilonOf)), [1000, 0, 0.125]);
    const { rows } = randomExamples(3, 784, 12);
    const [a, b] = await Promise.all([own, overridden].map((s) => http('POST', `${s.url}/classify`, { inputs: rows })));
    assert.ok(a.body.predictions.every((p: { task: { unknown: boolean } }) => p.task.unknown), JSON.stringify(a.body));
    assert.ok(b.body.predictions.every((p: { task: { unknown: boolean } }) => !p.task.unknown), JSON.stringify(b.body));
  });
});
