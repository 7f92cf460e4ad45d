import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { Scenario } from '../../src/core/types';
import { gradientStep, NON_FINITE_UPDATE } from '../../src/models/gradient-step';
import { builtinStrategies } from '../../src/strategies/registry';
import type { Strategy, StrategyOptions, StrategyState } from '../../src/strategies/strategy';

/** Every byte of a tensor list, for comparisons that must be exact (not approximately equal). */
const bytes = (tensors: readonly tf.Tensor[]) => tensors.map((t) => Buffer.from(new Float32Array(t.dataSync()).buffer).toString('hex'));

/** An Adam optimizer's whole state: its slots (iterations, then moments), beta powers and step count. */
async function adamState(adam: tf.AdamOptimizer): Promise<{ slots: string[]; betaPowers: string[]; iterations: number }> {
  const weights = await adam.getWeights();
  const slots = bytes(weights.map((w) => w.tensor));
  weights[0]?.tensor.dispose(); // the iteration count is a fresh tensor
  const internals = adam as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
  return { slots, betaPowers: bytes([internals.accBeta1, internals.accBeta2]), iterations: adam.iterations };
}

describe('non-finite updates are refused', () => {
  let a: tf.Variable;
  let b: tf.Variable;
  let adam: tf.AdamOptimizer;
  beforeEach(() => {
    a = tf.variable(tf.tensor1d([0.5, -0.5]));
    b = tf.variable(tf.tensor1d([3]));
    adam = tf.train.adam(0.01, 0.9, 0.999);
  });
  afterEach(() => {
    tf.dispose([a, b]);
    adam.dispose();
  });

  const finite = () => ({ objective: tf.sum(tf.square(tf.concat([a, b]))) as tf.Scalar, loss: tf.sum(a) as tf.Scalar });

  for (const [what, objective] of [
    ['a NaN objective', () => ({ objective: tf.mul(tf.sum(a), NaN) as tf.Scalar, loss: tf.sum(a) as tf.Scalar })],
    ['an infinite objective', () => ({ objective: tf.mul(tf.sum(tf.square(a)), Infinity) as tf.Scalar, loss: tf.sum(a) as tf.Scalar })],
    // sqrt at 0: the objective is 0, its gradient infinite.
    ['a finite objective with an infinite gradient', () => ({ objective: tf.sum(tf.sqrt(tf.sub(b, 3))) as tf.Scalar, loss: tf.sum(b) as tf.Scalar })],
  ] as const) {
    it(`${what}: weights, Adam's moments, beta powers and step count stay byte-identical; hooks do not run`, async () => {
      gradientStep({ optimizer: adam, variables: [a, b], objective: finite });
      const weightsBefore = bytes([a, b]);
      const adamBefore = await adamState(adam);
      const tensorsBefore = tf.memory().numTensors;
      const called: string[] = [];
      const step = gradientStep({
        optimizer: adam,
        variables: [a, b],
        read: true,
        objective,
        hooks: { afterUpdate: () => called.push('afterUpdate'), observe: () => called.push('observe') },
      });
      assert.equal(step.applied, false);
      assert.equal(step.reading, undefined, 'a refused step reads nothing');
      assert.deepEqual(called, []);
      assert.deepEqual(bytes([a, b]), weightsBefore);
      assert.deepEqual(await adamState(adam), adamBefore);
      assert.equal(tf.memory().numTensors, tensorsBefore, 'a refused step frees what it made');
      const next = gradientStep({ optimizer: adam, variables: [a, b], read: true, objective: finite });
      assert.equal(next.applied, true, 'the next finite step is taken');
      assert.equal(adam.iterations, adamBefore.iterations + 1);
    });
  }

  it("a refused first step creates no moments: the optimizer is as new", async () => {
    const fresh = await adamState(adam);
    const step = gradientStep({ optimizer: adam, variables: [a, b], objective: () => ({ objective: tf.mul(tf.sum(a), NaN) as tf.Scalar, loss: tf.sum(a) as tf.Scalar }) });
    assert.equal(step.applied, false);
    assert.deepEqual(await adamState(adam), fresh);
  });
});

/** Features far beyond float32's products: x·W overflows to Infinity, so the loss is NaN. */
const poison = (n: number, inputSize: number) => Array.from({ length: n }, () => new Float32Array(inputSize).fill(3e38));
const clean = (n: number, inputSize: number, shift = 0) => Array.from({ length: n }, (_, i) => Float32Array.from({ length: inputSize }, (_, k) => ((i + k + shift) % 5) / 5));

/** The state's tensors as bytes, and its metadata (label spaces, counters) as JSON. */
function stateBytes(state: StrategyState): Record<string, string> {
  // A replay's random draws move on (which stored samples are replayed next); nothing is learned from them.
  const meta = JSON.parse(JSON.stringify(state.meta)) as { rehearsal?: Record<string, unknown> };
  if (meta.rehearsal) meta.rehearsal = { ...meta.rehearsal, draws: undefined, lastReplayed: undefined };
  const out: Record<string, string> = { meta: JSON.stringify(meta) };
  for (const [name, t] of Object.entries(state.tensors)) out[name] = `${t.shape.join('x')}:${Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex')}`;
  return out;
}

describe('strategies report a refused batch as rejected, non-finite-update, and keep their state', () => {
  const cases: { strategy: string; scenario: Scenario; params?: Record<string, unknown> }[] = [
    { strategy: 'ewc', scenario: 'class-incremental' },
    { strategy: 'replay', scenario: 'domain-incremental' },
    { strategy: 'progressive', scenario: 'task-incremental' },
    { strategy: 'den', scenario: 'task-incremental', params: { selectionBatches: 50, expansionPatience: 50 } },
  ];
  for (const { strategy: name, scenario, params } of cases) {
    it(`${name} (${scenario}): byte-identical state after the refused batch, then learns on`, async () => {
      const options: StrategyOptions = { scenario, inputSize: 6, hiddenLayers: [8, 5], outputUnits: 3, optimizer: 'adam', learningRate: 0.01, stepsPerBatch: 3, seed: 4, params: params ?? {} };
      const strategy: Strategy = builtinStrategies().get(name)(options);
      try {
        const task = { name: 't', index: 0 };
        await strategy.beginTask(task);
        await strategy.trainBatch(task, { xs: clean(6, 6), ys: ['a', 'b', 'a', 'b', 'a', 'b'] });
        const before = stateBytes(await strategy.exportState());
        const batch = { xs: [...clean(2, 6, 1), ...poison(2, 6)], ys: ['a', 'b', 'a', 'c'] };
        const result = strategy.predictAndTrain ? (await strategy.predictAndTrain(task, batch)).result : await strategy.trainBatch(task, batch);
        assert.deepEqual(
          result.rejected?.map((r) => [r.index, r.code]),
          [0, 1, 2, 3].map((i) => [i, NON_FINITE_UPDATE]),
          'the step cannot tell the samples apart: the whole batch is refused',
        );
        assert.equal(result.loss, 0);
        assert.deepEqual(stateBytes(await strategy.exportState()), before);
        const after = await strategy.trainBatch(task, { xs: clean(6, 6, 2), ys: ['a', 'b', 'a', 'b', 'a', 'b'] });
        assert.equal(after.rejected, undefined);
        assert.ok(Number.isFinite(after.loss) && after.loss > 0);
        assert.notDeepEqual(stateBytes(await strategy.exportState()), before, 'a clean batch still trains');
        // Inputs that overflow the network (a raised maxAbsFeature lets them through) are answered, not a crash.
        for (const given of [task, undefined]) assert.equal((await strategy.predict(given, poison(3, 6))).length, 3);
      } finally {
        strategy.dispose();
      }
    });
  }
});
