import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend';
import { installNativeStepFix, isNativeStepFixInstalled } from '../../src/backend/native-step';

const quiet = (): void => {};

const inputs = [-2, -0, 0, 1e-30, 0.5, 3, NaN, Infinity, -Infinity];

/** step(x) for alpha 0 and 0.2, and the gradient of relu, as plain numbers (NaN compares equal in deepEqual). */
function run(): number[][] {
  return tf.tidy(() => {
    const x = tf.tensor1d(inputs);
    const reluGrad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.relu(t), tf.range(1, inputs.length + 1))))(x);
    return [tf.step(x), tf.step(x, 0.2), reluGrad, tf.step(tf.tensor2d([[-1, 2], [0, NaN]]))].map((t) => Array.from(t.dataSync()));
  });
}

describe('native Step fix: ReLU gradients without uploads', function () {
  let previousBackend: string | undefined;
  let reference: number[][];

  before(async function () {
    previousBackend = tf.getBackend();
    await selectBackend('cpu', quiet);
    reference = run();
    try {
      await selectBackend('tensorflow', quiet);
    } catch {
      // The native backend is optional (npm run setup:native); without it there is nothing to fix.
      if (previousBackend) await tf.setBackend(previousBackend);
      this.skip();
    }
  });

  after(async () => {
    if (previousBackend) await tf.setBackend(previousBackend);
  });

  it('is installed when tensorflow is selected, once', () => {
    assert.ok(isNativeStepFixInstalled());
    const patched = tf.getKernel(tf.Step, 'tensorflow');
    assert.equal(installNativeStepFix(), false);
    assert.equal(tf.getKernel(tf.Step, 'tensorflow'), patched);
  });

  it("gives the cpu backend's values (zeros, NaN and infinities included, alpha other than 0 too) and leaks no tensor", () => {
    const before = tf.memory().numTensors;
    const actual = run();
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(actual, reference);
  });
});
