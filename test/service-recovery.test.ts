import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TINY, http, randomExamples, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

/** If the engine worker dies, requests fail cleanly, readiness drops, and the worker comes back from the model directory. */
describe('engine worker recovery', () => {
  it('restarts a dead engine worker and is ready again with the same tasks', async () => {
    const tmp = await tempDir();
    const service = await startTestService(testConfig(await tinyModel(tmp.dir, 3)));
    try {
      const x = randomExamples(1, TINY.inputSize, 70);
      const before = await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-2' });
      assert.equal(before.status, 200);
      // Kill the worker from outside, as a crash would.
      await (service.ctx.runtime as any).client.worker.terminate();
      const during = await http('GET', `${service.url}/readyz`);
      assert.equal(during.status, 503);
      assert.equal((await http('GET', `${service.url}/healthz`)).status, 200);
      const deadline = Date.now() + 20_000;
      while ((await http('GET', `${service.url}/readyz`)).status !== 200) {
        assert.ok(Date.now() < deadline, 'ready again within 20 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      const after = await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-2' });
      assert.equal(after.status, 200);
      assert.deepEqual(after.body, before.body);
      assert.equal((await http('GET', `${service.url}/tasks`)).body.tasks.length, 3);
    } finally {
      await service.close();
      await tmp.remove();
    }
  });
});
