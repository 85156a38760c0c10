import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { Architecture } from '../src/core/architecture.ts';
import { HopfieldReservoir, agreement } from '../src/core/hopfield-reservoir.ts';
import { recallFromData } from '../src/core/mask-recall.ts';
import { NeuronMaskedNetwork, disposeTrace } from '../src/core/neuron-masked-network.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { type LabelledExamples, maskAccuracy, trainNeuronMasks } from '../src/train/neuron-mask-trainer.ts';

/** Wide enough that one neuron's flip moves the output about as little as in the 2048-wide network. */
const WIDTH = 512;
const SMALL: Architecture = { inputSize: 16, hidden: [WIDTH, WIDTH], outputs: 4, classes: 4 };

/**
 * Task k of a toy continual-learning problem: two classes (2k, 2k+1), inputs that live on the k-th half of
 * the 16 features (two Gaussian blobs there, the other half noise), so each task needs its own neurons.
 */
function toyTask(k: number, count: number, seed: number): LabelledExamples {
  const rng = new Xoshiro128(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.nextFloat())) * Math.cos(2 * Math.PI * rng.nextFloat());
  const images = new Float32Array(count * 16);
  const labels = new Uint8Array(count);
  for (let e = 0; e < count; e++) {
    const c = e % 2;
    labels[e] = 2 * k + c;
    for (let f = 0; f < 16; f++) {
      const onTask = Math.floor(f / 8) === k;
      const centre = onTask ? (c === 0 ? 1.5 : -1.5) * (f % 2 === 0 ? 1 : -1) : 0;
      images[e * 16 + f] = centre + 0.7 * gauss();
    }
  }
  return { images, labels, count };
}

describe('NeuronMaskedNetwork', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('∂obj/∂m matches finite differences through Swish and batch norm', () => {
    const net = new NeuronMaskedNetwork({ inputSize: 5, hidden: [4, 3], outputs: 3, classes: 3 }, 7);
    const x = tf.tensor2d(Float32Array.from({ length: 30 }, (_, i) => Math.sin(i * 1.7) * 2), [6, 5]);
    const values = [[0.3, 1, 0.7, 0.5], [0.9, 0.2, 1]];
    const weight = tf.tensor2d([[1, -2, 0.5]]);
    const objective = (m: number[][]) =>
      tf.tidy(() => tf.sum(tf.mul(tf.square(net.logits(x, m.map((r) => tf.tensor2d([r])))), weight)).dataSync()[0]);
    const masks = values.map((r) => tf.tensor2d([r]));
    const trace = net.trace(x, masks);
    const dLogits = tf.mul(tf.mul(trace.logits, 2), weight) as tf.Tensor2D;
    const grads = net.maskGradients(trace, masks, dLogits).map((g) => Array.from(g.dataSync()));
    disposeTrace(trace);
    for (let l = 0; l < 2; l++) {
      for (let i = 0; i < values[l].length; i++) {
        const up = values.map((r) => r.slice());
        const down = values.map((r) => r.slice());
        up[l][i] += 1e-3;
        down[l][i] -= 1e-3;
        const numeric = (objective(up) - objective(down)) / 2e-3;
        assert.ok(Math.abs(grads[l][i] - numeric) < 2e-3 * Math.max(1, Math.abs(numeric)), `layer ${l} neuron ${i}: ${grads[l][i]} vs ${numeric}`);
      }
    }
    net.dispose();
  });

  it('refuses a batch of one (batch norm over one example is undefined) and masks of the wrong size', () => {
    const net = new NeuronMaskedNetwork(SMALL, 1);
    const masks = [tf.ones([1, WIDTH]) as tf.Tensor2D, tf.ones([1, WIDTH]) as tf.Tensor2D];
    assert.throws(() => net.logits(tf.zeros([1, 16]) as tf.Tensor2D, masks), /at least 2 examples/);
    assert.throws(() => net.logits(tf.zeros([4, 16]) as tf.Tensor2D, [masks[0]]), /one \[1, d\] mask per hidden layer/);
    net.dispose();
  });

  for (const rule of ['hebbian', 'storkey'] as const) {
    it(`${rule}: recall from a task's inputs alone finds that task's stored mask, with the energy falling`, () => {
      const net = new NeuronMaskedNetwork(SMALL, 3);
      const tasks = [toyTask(0, 256, 11), toyTask(1, 256, 12)];
      const masks = tasks.map((t, k) => trainNeuronMasks(net, t, { epochs: 6, batchSize: 32, learningRate: 0.02, seed: 5 + k }));
      const reservoirs = SMALL.hidden.map((d) => new HopfieldReservoir(d));
      for (const m of masks) m.forEach((layer, l) => reservoirs[l].storeMask(layer, rule));
      for (let k = 0; k < tasks.length; k++) {
        const test = toyTask(k, 64, 100 + k);
        assert.ok(maskAccuracy(net, masks[k], test) > 0.9, `task ${k} trained`);
        const x = tf.tensor2d(test.images, [test.count, 16]);
        const result = recallFromData(net, reservoirs, x);
        x.dispose();
        result.masks.forEach((m, l) => assert.equal(agreement(m, masks[k][l]), WIDTH, `task ${k} layer ${l}`));
        assert.ok(result.convergedAfter <= 30);
        assert.ok(result.energies[result.energies.length - 1] < result.energies[0], 'energy fell');
        assert.ok(result.entropies[result.entropies.length - 1] < result.entropies[0], 'entropy fell');
      }
      net.dispose();
    });
  }
});
