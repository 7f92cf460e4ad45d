import * as assert from 'node:assert/strict';
import { ConfigError } from '../../src/core/errors';
import { SCENARIOS } from '../../src/core/types';
import { builtinStrategies } from '../../src/strategies/registry';
import type { StrategyOptions } from '../../src/strategies/strategy';
import { NO_TASK_YET } from '../../src/strategies/learning-helpers';
import { assertFiniteAfterOneLabel, learnOneLabel, oneLabelOptions } from '../helpers/one-label';

const options = (over: Partial<StrategyOptions> = {}): StrategyOptions => ({
  scenario: 'class-incremental',
  inputSize: 3,
  hiddenLayers: [4],
  outputUnits: 2,
  maxClasses: 2,
  optimizer: 'adam',
  learningRate: 0.01,
  stepsPerBatch: 1,
  seed: 1,
  params: {},
  ...over,
});
const x = (v: number) => Float32Array.from([v, 1 - v, 0.5]);

describe('MLP strategies (finetune, l2, ewc, online-ewc)', () => {
  it('refuses a label beyond the head capacity alone, trains the rest, and reports it', async () => {
    const s = builtinStrategies().get('finetune')(options());
    try {
      const task = { name: 't', index: 0 };
      await s.beginTask(task);
      const result = await s.trainBatch(task, { xs: [x(0), x(1), x(0.5)], ys: ['a', 'b', 'c'] });
      assert.equal(result.rejected?.length, 1);
      assert.equal(result.rejected?.[0]?.index, 2);
      assert.match(result.rejected?.[0]?.reason ?? '', /"c".*2 output units/);
      const predictions = await s.predict(undefined, [x(0)]);
      assert.deepEqual(Object.keys(predictions[0]!.probabilities).sort(), ['a', 'b']);
    } finally {
      s.dispose();
    }
  });

  it('predictAndTrain predicts with the model before the update, also when a sample is refused', async () => {
    const s = builtinStrategies().get('finetune')(options({ learningRate: 0.5 }));
    try {
      const task = { name: 't', index: 0 };
      await s.beginTask(task);
      await s.trainBatch(task, { xs: [x(0), x(1)], ys: ['a', 'b'] });
      const batch = { xs: [x(0), x(1), x(0.5)], ys: ['b', 'a', 'c'] };
      const before = await s.predict(task, batch.xs);
      const { predictions, result } = await s.predictAndTrain!(task, batch);
      assert.equal(result.rejected?.length, 1);
      assert.deepEqual(predictions, before);
      assert.notDeepEqual(await s.predict(task, batch.xs), before, 'the update (lr 0.5) changed the answers');
    } finally {
      s.dispose();
    }
  });

  it('task-incremental: one head per task, chosen by task id; task-agnostic requests infer the task', async () => {
    const s = builtinStrategies().get('finetune')(options({ scenario: 'task-incremental' }));
    try {
      const a = { name: 'a', index: 0 };
      const b = { name: 'b', index: 1 };
      assert.deepEqual(await s.predict(a, [x(0)]), [{ label: null, probabilities: {}, reason: NO_TASK_YET }], 'no head before the task');
      await s.beginTask(a);
      for (let i = 0; i < 30; i++) await s.trainBatch(a, { xs: [x(0), x(1)], ys: ['a0', 'a1'] });
      await s.endTask(a);
      const afterA = s.parameterCount();
      await s.beginTask(b);
      for (let i = 0; i < 30; i++) await s.trainBatch(b, { xs: [x(0), x(1)], ys: ['b0', 'b1'] });
      assert.ok(s.parameterCount() > afterA, 'a head was added for task b');
      assert.equal((await s.predict(a, [x(0)]))[0]?.label, 'a0');
      assert.equal((await s.predict(b, [x(1)]))[0]?.label, 'b1');
      const agnostic = (await s.predict(undefined, [x(0)]))[0];
      assert.ok(agnostic?.inferredTask === 'a' || agnostic?.inferredTask === 'b');
      assert.equal(agnostic?.label, `${agnostic?.inferredTask}0`);
    } finally {
      s.dispose();
    }
  });

  it('the EWC penalty is zero on the first task, positive once the weights leave the anchor', async () => {
    const s = builtinStrategies().get('ewc')(options({ params: { lambda: 100 } }));
    try {
      const a = { name: 'a', index: 0 };
      await s.beginTask(a);
      const first = await s.trainBatch(a, { xs: [x(0), x(1)], ys: ['a', 'b'] });
      assert.equal(first.penalty, 0);
      for (let i = 0; i < 10; i++) await s.trainBatch(a, { xs: [x(0), x(1)], ys: ['a', 'b'] });
      await s.endTask(a);
      const b = { name: 'b', index: 1 };
      await s.beginTask(b);
      const atAnchor = await s.trainBatch(b, { xs: [x(0), x(1)], ys: ['b', 'a'] });
      assert.equal(atAnchor.penalty, 0, 'the first step starts at the anchor');
      const moved = await s.trainBatch(b, { xs: [x(0), x(1)], ys: ['b', 'a'] });
      assert.ok(moved.penalty > 0, `penalty ${moved.penalty}`);
    } finally {
      s.dispose();
    }
  });

  it('rejects an unknown or mistyped hyperparameter naming strategy.params.KEY', () => {
    assert.throws(() => builtinStrategies().get('ewc')(options({ params: { lamda: 1 } })), (e: unknown) => e instanceof ConfigError && /strategy\.params\.lamda/.test(e.message));
    assert.throws(() => builtinStrategies().get('online-ewc')(options({ params: { gamma: 'high' } })), /strategy\.params\.gamma.*number/);
    assert.throws(() => builtinStrategies().get('nope'), /unknown strategy "nope"/);
  });
});

describe('MLP strategies: a first batch of one label', () => {
  for (const name of ['finetune', 'l2', 'ewc', 'online-ewc', 'replay', 'joint']) {
    it(`${name} trains a head that knows one label, in every scenario, to finite weights`, async () => {
      for (const scenario of SCENARIOS) {
        const s = builtinStrategies().get(name)(oneLabelOptions(scenario));
        try {
          const results = await learnOneLabel(s, { name: 't1', index: 0 }, 'a');
          await assertFiniteAfterOneLabel(s, results, 'a');
        } finally {
          s.dispose();
        }
      }
    });
  }
});
