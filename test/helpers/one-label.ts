import * as assert from 'node:assert/strict';
import type { Scenario, TaskInfo } from '../../src/core/types';
import type { Strategy, StrategyOptions, TrainResult } from '../../src/strategies/strategy';

/**
 * A head that knows a single label has one output unit; tf.oneHot refuses that depth, so these
 * check that a first batch whose labels are all one class trains in every strategy family.
 */
export function oneLabelOptions(scenario: Scenario, params: Record<string, unknown> = {}): StrategyOptions {
  return { scenario, inputSize: 4, hiddenLayers: [6, 5], outputUnits: 3, optimizer: 'adam', learningRate: 0.01, stepsPerBatch: 2, seed: 3, params };
}

/** Inputs in [0, 1] (DGR's generators model pixel intensities). */
export const oneLabelInputs = (n: number, shift = 0): Float32Array[] => Array.from({ length: n }, (_, i) => Float32Array.from([0.1 + 0.2 * ((i + shift) % 4), 0.9, 0.5, 0.05 * i]));

/** Trains `task` on batches whose labels are all `label`: one trainBatch, then one predictAndTrain where offered; the results. */
export async function learnOneLabel(strategy: Strategy, task: TaskInfo, label: string): Promise<TrainResult[]> {
  await strategy.beginTask(task);
  const results = [await strategy.trainBatch(task, { xs: oneLabelInputs(6), ys: Array(6).fill(label) })];
  const next = { xs: oneLabelInputs(6, 1), ys: Array(6).fill(label) };
  if (strategy.predictAndTrain) {
    const { predictions, result } = await strategy.predictAndTrain(task, next, { taskGiven: true });
    assert.ok(predictions.every((p) => p.label === label), `a head of one label answers it: ${JSON.stringify(predictions)}`);
    results.push(result);
  } else {
    results.push(await strategy.trainBatch(task, next));
  }
  await strategy.endTask(task);
  return results;
}

/**
 * Every loss is 0 (a one-unit softmax is certain), every tensor of the strategy's state (weights,
 * moments, importances, generators) finite, and the strategy answers `label`.
 */
export async function assertFiniteAfterOneLabel(strategy: Strategy, results: readonly TrainResult[], label: string): Promise<void> {
  for (const r of results) {
    assert.equal(r.loss, 0, `task loss of a one-label head: ${JSON.stringify(r)}`);
    assert.ok(Number.isFinite(r.penalty), `penalty ${r.penalty}`);
    assert.equal(r.rejected, undefined);
  }
  const state = await strategy.exportState();
  for (const [name, t] of Object.entries(state.tensors)) assert.ok(t.data.every(Number.isFinite), `${name} holds a non-finite value`);
  const [prediction] = await strategy.predict(undefined, oneLabelInputs(1));
  assert.equal(prediction?.label, label);
}
