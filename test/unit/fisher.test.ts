import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/core/rng';
import { MultiHeadMlp } from '../../src/models/mlp';
import { batchFisher } from '../../src/strategies/fisher';
import { StreamingFisher } from '../../src/strategies/streaming-fisher';
import type { TensorSnapshot } from '../../src/strategies/strategy';

/** Squared gradient of -log p(y|x) for one sample, by plain autodiff: the definition. */
function perSampleSquaredGrads(model: MultiHeadMlp, headKey: string, x: number[], unit: number): Map<string, Float32Array> {
  const head = model.head(headKey);
  const vars = model.trainableVariables(head);
  const names = [...model.namedVariables()].filter(([, v]) => vars.includes(v)).map(([n]) => n);
  const out = new Map<string, Float32Array>();
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => {
      const { logits } = model.forward(tf.tensor2d([x]), head);
      return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(tf.tensor1d([unit], 'int32'), logits.shape[1])))) as tf.Scalar;
    }, vars);
    names.forEach((name, i) => {
      const g = grads[(vars[i] as tf.Variable).name] as tf.Tensor;
      out.set(name, tf.square(g).dataSync() as Float32Array);
    });
  });
  return out;
}

describe('batchFisher (per-sample squared gradients in one matmul)', () => {
  let model: MultiHeadMlp;
  const rng = new Rng(5);
  const xs = Array.from({ length: 6 }, () => Array.from({ length: 4 }, () => rng.next() * 2 - 1));
  const labels = [0, 2, 1, 1, 0, 2];

  before(() => {
    model = new MultiHeadMlp({ inputSize: 4, hiddenLayers: [5, 3], outputUnits: 4 }, 9);
    const head = model.addHead('h');
    for (const l of ['a', 'b', 'c']) head.labels.add(l); // 3 of 4 units active
  });
  after(() => model.dispose());

  it('equals the mean over samples of squared per-sample log-likelihood gradients (true labels)', () => {
    const head = model.head('h');
    const x = tf.tensor2d(xs);
    const y = tf.tensor1d(labels, 'int32');
    const before = tf.memory().numTensors;
    const fisher = batchFisher(model, head, x, y, 'true', new Rng(1));
    assert.equal(tf.memory().numTensors, before + Object.keys(fisher).length, 'only the returned tensors remain');
    const expected = new Map<string, Float32Array>();
    xs.forEach((row, i) => {
      for (const [name, g2] of perSampleSquaredGrads(model, 'h', row, labels[i] as number)) {
        const acc = expected.get(name) ?? new Float32Array(g2.length);
        g2.forEach((v, k) => (acc[k] = (acc[k] as number) + v / xs.length));
        expected.set(name, acc);
      }
    });
    assert.deepEqual(Object.keys(fisher).sort(), [...expected.keys()].sort());
    for (const [name, want] of expected) {
      const got = fisher[name]!.dataSync();
      assert.equal(got.length, want.length, name);
      want.forEach((v, k) => assert.ok(Math.abs((got[k] as number) - v) < 1e-5 + 1e-4 * Math.abs(v), `${name}[${k}]: ${got[k]} vs ${v}`));
    }
    // The inactive 4th unit of the head gets no importance.
    const kernel = fisher['head-h.kernel']!.arraySync() as number[][];
    assert.ok(kernel.every((row) => row[3] === 0));
    assert.ok(kernel.some((row) => (row[0] as number) > 0));
    tf.dispose([x, y, ...Object.values(fisher)]);
  });

  it("with 'predicted' labels uses the model's own argmax", () => {
    const head = model.head('h');
    const x = tf.tensor2d(xs);
    const argmax = tf.tidy(() => tf.cast(tf.argMax(model.forward(x, head).logits, 1), 'int32')) as tf.Tensor1D;
    const viaPredicted = batchFisher(model, head, x, tf.tensor1d(labels, 'int32'), 'predicted', new Rng(1));
    const viaArgmax = batchFisher(model, head, x, argmax, 'true', new Rng(1));
    for (const name of Object.keys(viaArgmax)) assert.deepEqual(viaPredicted[name]!.dataSync(), viaArgmax[name]!.dataSync());
    tf.dispose([x, argmax, ...Object.values(viaPredicted), ...Object.values(viaArgmax)]);
  });
});

describe('StreamingFisher measuring every n-th batch', () => {
  it('measures the first batch of a task and every n-th after it, as if only those batches had streamed; counters survive export/import', () => {
    const model = new MultiHeadMlp({ inputSize: 4, hiddenLayers: [5], outputUnits: 2 }, 3);
    const head = model.addHead('h');
    head.labels.add('a');
    head.labels.add('b');
    const rng = new Rng(8);
    const batches = Array.from({ length: 7 }, () => tf.tensor2d(Array.from({ length: 3 }, () => Array.from({ length: 4 }, () => rng.next()))));
    const units = tf.tensor1d([0, 1, 0], 'int32');
    const task = { name: 'h', index: 0 };
    const before = tf.memory().numTensors;
    const sparse = new StreamingFisher(0.5, 'true', 1, 3);
    const dense = new StreamingFisher(0.5, 'true', 1, 1);
    batches.forEach((x, i) => {
      sparse.observe({ model, head, task, x, units });
      if (i % 3 === 0) dense.observe({ model, head, task, x, units }); // batches 1, 4 and 7
    });
    const a = sparse.estimate()!;
    const b = dense.estimate()!;
    for (const name of Object.keys(b)) assert.deepEqual(Array.from(a[name]!.dataSync()), Array.from(b[name]!.dataSync()), name);
    // A checkpoint mid-task resumes the count: the next measured batch is the 10th, not the 8th.
    const tensors: Record<string, TensorSnapshot> = {};
    const counters = sparse.exportTo('f', tensors);
    assert.deepEqual(counters, { batches: 3, offered: 7 });
    const restored = new StreamingFisher(0.5, 'true', 1, 3);
    restored.importFrom('f', tensors, counters);
    restored.observe({ model, head, task, x: batches[0]!, units }); // 8th: skipped
    assert.deepEqual(restored.exportTo('g', {}), { batches: 3, offered: 8 });
    for (const f of [sparse, dense, restored]) f.reset();
    tf.dispose([...Object.values(a), ...Object.values(b)]);
    assert.equal(tf.memory().numTensors, before, 'no tensor leaked');
    tf.dispose([...batches, units]);
    model.dispose();
  });
});
