import * as assert from 'node:assert/strict';
import { TASK_AGNOSTIC } from '../../src/core/types';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import { builtinStrategies } from '../../src/strategies/registry';
import type { StrategyOptions } from '../../src/strategies/strategy';
import { parseExposition } from '../helpers/exposition';

const options = (scenario: StrategyOptions['scenario']): StrategyOptions => ({ scenario, inputSize: 2, hiddenLayers: [3], outputUnits: 0, optimizer: 'adam', learningRate: 0.01, stepsPerBatch: 1, seed: 1, params: {} });
const xs = [Float32Array.from([0, 1]), Float32Array.from([1, 0]), Float32Array.from([1, 1])];

describe('the label registry', () => {
  it('keeps labels as the producer sent them, in order of first sight, per head ("*" for a shared head)', async () => {
    const shared = builtinStrategies().get('finetune')(options('class-incremental'));
    const perTask = builtinStrategies().get('finetune')(options('task-incremental'));
    try {
      for (const s of [shared, perTask]) {
        await s.beginTask({ name: 'cats', index: 0 });
        await s.trainBatch({ name: 'cats', index: 0 }, { xs, ys: ['siamese', '7', 'siamese'] });
        await s.beginTask({ name: 'dogs', index: 1 });
        await s.trainBatch({ name: 'dogs', index: 1 }, { xs, ys: ['beagle', '7', 'pug'] });
      }
      assert.deepEqual([...(shared.classes?.() ?? [])], [[TASK_AGNOSTIC, ['siamese', '7', 'beagle', 'pug']]]);
      assert.deepEqual([...(perTask.classes?.() ?? [])], [['cats', ['siamese', '7']], ['dogs', ['beagle', '7', 'pug']]]);
      const [answer] = await shared.predict(undefined, xs.slice(0, 1));
      // Sorted: a JSON object lists integer-like keys ("7") first, whatever the unit order.
      assert.deepEqual(Object.keys(answer?.probabilities ?? {}).sort(), ['7', 'beagle', 'pug', 'siamese'], 'predictions name every class');
    } finally {
      shared.dispose();
      perTask.dispose();
    }
  });

  it('is published as lifelong_classes{task}, bounded by the task cap like every task series', async () => {
    const metrics = new LifelongMetrics({ defaultMetrics: false, maxTasks: 2 });
    metrics.setClasses(new Map([[TASK_AGNOSTIC, 4]]));
    metrics.setClasses(new Map([['a', 2], ['b', 3], ['c', 1]]));
    const series = parseExposition(await metrics.metrics()).filter((s) => s.name === 'lifelong_classes');
    assert.deepEqual(series.map((s) => [s.labels.task, s.value]).sort(), [['*', 4], ['b', 3], ['c', 1]]);
  });
});
