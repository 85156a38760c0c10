import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestService, http, randomExamples, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

describe('serve --epsilon', () => {
  let dir: { dir: string; remove: () => Promise<void> };
  let strict: TestService;
  let lenient: TestService;
  before(async () => {
    dir = await tempDir();
    const model = await tinyModel(dir.dir);
    strict = await startTestService(testConfig(model, { epsilon: 1000, logLevel: 'silent' }));
    lenient = await startTestService(testConfig(model, { epsilon: 0, logLevel: 'silent' }));
  });
  after(async () => {
    await strict?.close();
    await lenient?.close();
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
});
