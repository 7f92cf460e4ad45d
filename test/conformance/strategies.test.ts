import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { Sample, Scenario, TaskInfo } from '../../src/core/types';
import { SCENARIOS } from '../../src/core/types';
import { builtinStrategies } from '../../src/strategies/registry';
import type { Strategy, StrategyOptions } from '../../src/strategies/strategy';
import { batches, firstSplitTask, takeSamples } from '../helpers/mnist-task';

/**
 * One suite run over every registered strategy (River's estimator checks): whatever the method,
 * it must learn, free its tensors, and survive export/import unchanged.
 */
const registry = builtinStrategies();

function options(scenario: Scenario, seed: number, outputUnits: number): StrategyOptions {
  return { scenario, inputSize: 784, hiddenLayers: [100, 100], outputUnits, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, seed, params: {} };
}

async function train(strategy: Strategy, task: TaskInfo, samples: readonly Sample[], batchSize: number): Promise<void> {
  for (const batch of batches(samples, batchSize)) {
    await strategy.trainBatch(task, { xs: batch.map((s) => s.x), ys: batch.map((s) => s.y as string) });
  }
}

async function accuracy(strategy: Strategy, task: TaskInfo, probe: readonly Sample[]): Promise<number> {
  const predictions = await strategy.predict(task, probe.map((s) => s.x));
  return predictions.filter((p, i) => p.label === probe[i]?.y).length / probe.length;
}

for (const name of registry.names()) {
  describe(`strategy conformance: ${name}`, () => {
    for (const scenario of SCENARIOS) {
      it(`learns one 2-class MNIST task to >= 95% held-out accuracy (${scenario})`, async () => {
        const { source, samples } = await firstSplitTask(scenario, 2000);
        const probe = source.probe(source.knownTasks()[0] as string, 500) as Sample[];
        const strategy = registry.get(name)(options(scenario, 3, source.outputUnits));
        try {
          const task = { name: samples[0]!.task, index: 0 };
          await strategy.beginTask(task);
          await train(strategy, task, samples, 32);
          await strategy.endTask(task);
          const acc = await accuracy(strategy, task, probe);
          assert.ok(acc >= 0.95, `held-out accuracy ${acc}`);
        } finally {
          strategy.dispose();
        }
      });
    }

    it('leaks no tensor over 100 training batches, across task boundaries, or after dispose', async () => {
      const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 1700, seed: 3, scenario: 'class-incremental' });
      const [first, second] = source.knownTasks() as [string, string];
      const before = tf.memory().numTensors;
      const strategy = registry.get(name)(options('class-incremental', 5, source.outputUnits));
      const t1 = { name: first, index: 0 };
      const t2 = { name: second, index: 1 };
      const taskOne = samples.filter((s) => s.task === first);
      const taskTwo = samples.filter((s) => s.task === second);
      await strategy.beginTask(t1);
      await train(strategy, t1, taskOne.slice(0, 5 * 16), 16); // warm-up: optimizer slots exist now
      await strategy.endTask(t1);
      await strategy.beginTask(t2);
      await train(strategy, t2, taskTwo.slice(0, 16), 16);
      const steady = tf.memory().numTensors;
      await train(strategy, t2, taskTwo.slice(16, 16 + 100 * 16), 16);
      await strategy.predict(undefined, taskTwo.slice(0, 50).map((s) => s.x));
      await strategy.predict(t1, taskOne.slice(0, 50).map((s) => s.x));
      assert.equal(tf.memory().numTensors, steady, 'tensors held after 100 more batches and predictions');
      const state = await strategy.exportState();
      assert.equal(tf.memory().numTensors, steady, 'tensors held after exportState');
      await strategy.importState(state);
      assert.equal(tf.memory().numTensors, steady, 'tensors held after importState');
      await strategy.endTask(t2);
      strategy.dispose();
      strategy.dispose();
      assert.equal(tf.memory().numTensors, before, 'tensors left after dispose');
    });

    it('predictAndTrain, where offered, predicts what predict() would and learns what trainBatch() would', async () => {
      const probe = registry.get(name)(options('class-incremental', 1, 10));
      const offered = typeof probe.predictAndTrain === 'function';
      probe.dispose();
      if (!offered) return; // optional capability: nothing to check
      const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 200, seed: 4, scenario: 'class-incremental' });
      const [first, second] = source.knownTasks() as [string, string];
      const fused = registry.get(name)(options('class-incremental', 2, source.outputUnits));
      const plain = registry.get(name)(options('class-incremental', 2, source.outputUnits));
      try {
        for (const [index, taskName] of [first, second].entries()) {
          const task = { name: taskName, index };
          await fused.beginTask(task);
          await plain.beginTask(task);
          for (const batch of batches(samples.filter((s) => s.task === taskName), 32)) {
            const b = { xs: batch.map((s) => s.x), ys: batch.map((s) => s.y as string) };
            const expected = await plain.predict(task, b.xs);
            const plainResult = await plain.trainBatch(task, b);
            const { predictions, result } = await fused.predictAndTrain!(task, b);
            assert.deepEqual(predictions.map((p) => p.label), expected.map((p) => p.label));
            predictions.forEach((p, i) => {
              for (const [label, v] of Object.entries(p.probabilities)) assert.ok(Math.abs(v - (expected[i]!.probabilities[label] ?? NaN)) < 1e-5);
            });
            assert.ok(Math.abs(result.loss - plainResult.loss) < 1e-5);
          }
          await fused.endTask(task);
          await plain.endTask(task);
        }
        const probeSamples = source.probe(second, 100) ?? [];
        assert.deepEqual((await fused.predict(undefined, probeSamples.map((s) => s.x))).map((p) => p.label), (await plain.predict(undefined, probeSamples.map((s) => s.x))).map((p) => p.label));
      } finally {
        fused.dispose();
        plain.dispose();
      }
    });

    for (const scenario of SCENARIOS) {
      it(`export then import gives identical predictions, also after training on (${scenario})`, async () => {
        const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 400, seed: 11, scenario });
        const [first, second] = source.knownTasks() as [string, string];
        const t1 = { name: first, index: 0 };
        const t2 = { name: second, index: 1 };
        const original = registry.get(name)(options(scenario, 1, source.outputUnits));
        const copy = registry.get(name)(options(scenario, 99, source.outputUnits));
        try {
          await original.beginTask(t1);
          await train(original, t1, samples.filter((s) => s.task === first), 32);
          await original.endTask(t1);
          await original.beginTask(t2);
          const taskTwo = samples.filter((s) => s.task === second);
          await train(original, t2, taskTwo.slice(0, 200), 32);

          await copy.importState(await original.exportState());
          const probe = [...(source.probe(first, 100) ?? []), ...(source.probe(second, 100) ?? [])];
          for (const task of [t1, t2, undefined]) {
            assert.deepEqual(await copy.predict(task, probe.map((s) => s.x)), await original.predict(task, probe.map((s) => s.x)));
          }
          assert.equal(copy.parameterCount(), original.parameterCount());

          // The whole state moved: optimizer moments, anchors and importances included.
          await train(original, t2, taskTwo.slice(200, 264), 32);
          await train(copy, t2, taskTwo.slice(200, 264), 32);
          await original.endTask(t2);
          await copy.endTask(t2);
          assert.deepEqual(await copy.predict(t2, probe.map((s) => s.x)), await original.predict(t2, probe.map((s) => s.x)));
        } finally {
          original.dispose();
          copy.dispose();
        }
      });
    }
  });
}
