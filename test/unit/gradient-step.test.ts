import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { classificationLoss, gradientStep, oneHotTargets, type AppliedStep, type StepObjective } from '../../src/models/gradient-step';
import { MlpStrategy } from '../../src/strategies/mlp-strategy';
import type { Regularizer, StepContext } from '../../src/strategies/regularizer';

const values = (t: tf.Tensor) => Array.from(t.dataSync());
const close = (actual: readonly number[], expected: readonly number[], what: string) =>
  actual.forEach((v, i) => assert.ok(Math.abs(v - (expected[i] as number)) < 1e-6, `${what}: ${actual} vs ${expected}`));

/** f(a, b) = sum(a * [1, 2]) + b^2, so df/da = [1, 2] and df/db = 2b. */
function quadratic(a: tf.Variable, b: tf.Variable): () => StepObjective {
  return () => {
    const loss = tf.sum(tf.mul(a, tf.tensor1d([1, 2]))) as tf.Scalar;
    const penalty = tf.sum(tf.square(b)) as tf.Scalar;
    return { objective: tf.add(loss, penalty) as tf.Scalar, loss, penalty };
  };
}

describe('gradient step', () => {
  let a: tf.Variable;
  let b: tf.Variable;
  beforeEach(() => {
    a = tf.variable(tf.tensor1d([0.5, -0.5]));
    b = tf.variable(tf.tensor1d([3]));
  });
  afterEach(() => tf.dispose([a, b]));

  it('applies the gradients the hook returns, runs afterUpdate after the update, and shows observers what was applied', () => {
    const sgd = tf.train.sgd(0.1);
    const seen: { gradients: (number[] | undefined)[]; updates: number[][]; bAfterUpdate: number[] }[] = [];
    let bAfterUpdate: number[] = [];
    try {
      gradientStep({
        optimizer: sgd,
        variables: [a, b],
        objective: quadratic(a, b),
        hooks: {
          // a is frozen, b's gradient doubled.
          transformGradients: (g) => [tf.zerosLike(g[0] as tf.Tensor), tf.mul(g[1] as tf.Tensor, 2)],
          afterUpdate: () => {
            bAfterUpdate = values(b);
            b.assign(tf.add(b, 1));
          },
          observe: (step: AppliedStep) => seen.push({ gradients: step.gradients.map((g) => g && values(g)), updates: step.updates.map(values), bAfterUpdate }),
        },
      });
      close(values(a), [0.5, -0.5], 'a, whose gradient the hook zeroed, did not move');
      close(bAfterUpdate, [3 - 0.1 * 2 * 6], 'b moved by the doubled gradient');
      close(values(b), [3 - 1.2 + 1], 'afterUpdate changed b after the update');
      assert.equal(seen.length, 1);
      assert.deepEqual(seen[0]!.gradients, [[0, 0], [12]]);
      close(seen[0]!.updates[0]!, [0, 0], 'update of a');
      close(seen[0]!.updates[1]!, [-1.2 + 1], 'update of b: optimizer step and afterUpdate');
    } finally {
      sgd.dispose();
    }
  });

  it('downloads one small tensor per step (the finiteness verdict, with the loss and penalty when asked), and hands kept tensors to the caller', () => {
    const adam = tf.train.adam(0.01);
    const proto = tf.Tensor.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const reads = ['dataSync', 'data', 'arraySync', 'array'] as const;
    const originals = reads.map((m) => proto[m] as (...args: unknown[]) => unknown);
    let downloads = 0;
    reads.forEach((m, i) => {
      proto[m] = function (this: tf.Tensor, ...args: unknown[]) {
        downloads++;
        return (originals[i] as (...args: unknown[]) => unknown).apply(this, args);
      };
    });
    try {
      const silent = gradientStep({ optimizer: adam, variables: [a, b], objective: quadratic(a, b) });
      assert.equal(downloads, 1, 'a step that is not asked to read downloads only its finiteness verdict');
      assert.equal(silent.reading, undefined);
      const peek = (t: tf.Tensor) => Array.from((originals[0] as () => Float32Array).call(t));
      const [a0, a1] = peek(a) as [number, number];
      const bNow = peek(b)[0] as number;
      downloads = 0;
      const read = gradientStep({
        optimizer: adam,
        variables: [a, b],
        read: true,
        objective: () => ({ ...quadratic(a, b)(), keep: [tf.mul(b, 10)] }),
      });
      assert.equal(downloads, 1, 'loss and penalty come with the verdict, in the same download');
      assert.ok(read.reading);
      close([read.reading.loss, read.reading.penalty], [a0 + 2 * a1, bNow * bNow], 'loss and penalty before the update');
      assert.equal(read.kept.length, 1);
      close(peek(read.kept[0]!), [bNow * 10], 'kept: b before the update, times 10');
      tf.dispose(read.kept);
      assert.equal(read.kept[0]!.isDisposed, true);
    } finally {
      reads.forEach((m, i) => (proto[m] = originals[i] as (...args: unknown[]) => unknown));
      adam.dispose();
    }
  });

  it('frees every tensor of a step, hooks included, once the optimizer holds its moments', () => {
    const adam = tf.train.adam(0.01);
    try {
      const step = (read: boolean) =>
        gradientStep({
          optimizer: adam,
          variables: [a, b],
          read,
          objective: quadratic(a, b),
          hooks: { transformGradients: (g) => g.map((t) => t && tf.mul(t, 0.5)), afterUpdate: () => b.assign(tf.mul(b, 0.99)), observe: (s) => void tf.addN(s.updates.map((u) => tf.sum(u))) },
        });
      step(false); // Adam creates its moments on the first update
      const steady = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) step(i === 4);
      assert.equal(tf.memory().numTensors, steady);
    } finally {
      adam.dispose();
    }
  });

  it('leaves a variable the objective does not reach untouched, and tells observers it had no gradient', () => {
    const adam = tf.train.adam(0.01);
    const unused = tf.variable(tf.tensor1d([7]));
    try {
      for (let i = 0; i < 3; i++) gradientStep({ optimizer: adam, variables: [a, unused, b], objective: quadratic(a, b), hooks: { observe: (s) => assert.equal(s.gradients[1], undefined) } });
      close(values(unused), [7], 'unreached variable');
      assert.notDeepEqual(values(a), [0.5, -0.5]);
    } finally {
      adam.dispose();
      unused.dispose();
    }
  });

  it('one-hot targets and the classification loss of a one-unit head: loss 0, gradient 0', () => {
    tf.tidy(() => {
      const units = tf.tensor1d([0, 0, 0], 'int32');
      assert.deepEqual(oneHotTargets(units, 1).arraySync(), [[1], [1], [1]]);
      assert.deepEqual(oneHotTargets(tf.tensor1d([1, 0], 'int32'), 3).arraySync(), [[0, 1, 0], [1, 0, 0]]);
      const logits = tf.tensor2d([[2.5], [-1], [40]]);
      const { value, grads } = tf.variableGrads(() => classificationLoss(tf.mul(logits, a.sum()) as tf.Tensor2D, units), [a]);
      assert.equal(value.dataSync()[0], 0);
      assert.deepEqual(values(grads[a.name] as tf.Tensor), [0, 0]);
    });
  });
});

describe('MlpStrategy and Regularizer.afterStep', () => {
  it('shows the regularizer every step with the gradients applied and the parameter change', async () => {
    const steps: { variables: number; gradients: number; moved: boolean }[] = [];
    const observer: Regularizer = {
      penalty: () => undefined,
      afterStep: (c: StepContext) => {
        assert.equal(c.head.key, 'shared');
        steps.push({ variables: c.variables.length, gradients: c.gradients.filter((g) => g !== undefined).length, moved: c.updates.some((u) => tf.any(tf.notEqual(u, 0)).dataSync()[0] === 1) });
      },
      endTask: () => undefined,
      exportState: () => ({ meta: {}, tensors: {} }),
      importState: () => undefined,
      dispose: () => undefined,
    };
    const s = new MlpStrategy('observed', { scenario: 'class-incremental', inputSize: 3, hiddenLayers: [4], outputUnits: 2, optimizer: 'sgd', learningRate: 0.1, stepsPerBatch: 3, seed: 1, params: {} }, observer);
    try {
      const task = { name: 't', index: 0 };
      await s.beginTask(task);
      await s.trainBatch(task, { xs: [Float32Array.from([1, 0, 0.5]), Float32Array.from([0, 1, 0.5])], ys: ['a', 'b'] });
      assert.deepEqual(steps, [1, 2, 3].map(() => ({ variables: 4, gradients: 4, moved: true })));
    } finally {
      s.dispose();
    }
  });
});
