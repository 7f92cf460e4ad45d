import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';
import { SCENARIOS, type Prediction, type Sample, type TaskInfo } from '../../src/core/types';
import { expandLayers } from '../../src/models/den-expansion';
import { Matrix, type NetworkData } from '../../src/models/den-network-data';
import { selectSubnetwork } from '../../src/models/den-selection';
import { splitDrifted } from '../../src/models/den-split';
import { createDen, DenStrategy } from '../../src/strategies/den';
import type { StrategyOptions } from '../../src/strategies/strategy';
import { batches, takeSamples } from '../helpers/mnist-task';
import { assertFiniteAfterOneLabel, learnOneLabel, oneLabelOptions } from '../helpers/one-label';

/**
 * DEN on short task-incremental split-MNIST streams (two tasks of 300 samples, 10 batches each),
 * with the phases shortened to fit: 2 selection batches, then 3 retraining batches before the
 * expansion test.
 */
const SHORT = { selectionBatches: 2, expansionPatience: 3 };

function denOptions(params: Record<string, unknown>, seed = 1): StrategyOptions {
  return { scenario: 'task-incremental', inputSize: 784, hiddenLayers: [100, 100], outputUnits: 2, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, seed, params: { ...SHORT, ...params } };
}

async function twoTasks(): Promise<{ t1: TaskInfo; t2: TaskInfo; one: Sample[]; two: Sample[]; probe1: Sample[]; probe2: Sample[] }> {
  const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 300, seed: 1, scenario: 'task-incremental' });
  const [first, second] = source.knownTasks() as [string, string];
  return {
    t1: { name: first, index: 0 },
    t2: { name: second, index: 1 },
    one: samples.filter((s) => s.task === first),
    two: samples.filter((s) => s.task === second),
    probe1: [...(source.probe(first, 200) ?? [])],
    probe2: [...(source.probe(second, 200) ?? [])],
  };
}

async function learn(strategy: DenStrategy, task: TaskInfo, samples: readonly Sample[]): Promise<void> {
  for (const batch of batches(samples, 32)) await strategy.trainBatch(task, { xs: batch.map((s) => s.x), ys: batch.map((s) => s.y as string) });
}

function diagnostic(strategy: DenStrategy, name: string, labels: Record<string, string> = {}): number[] {
  return strategy
    .diagnostics()
    .filter((d) => d.name === name && Object.entries(labels).every(([k, v]) => d.labels?.[k] === v))
    .map((d) => d.value);
}

function accuracy(predictions: readonly Prediction[], probe: readonly Sample[]): number {
  return predictions.filter((p, i) => p.label === probe[i]?.y).length / probe.length;
}

function maxProbabilityGap(a: readonly Prediction[], b: readonly Prediction[]): number {
  let gap = 0;
  a.forEach((p, i) => {
    for (const [label, v] of Object.entries(p.probabilities)) gap = Math.max(gap, Math.abs(v - (b[i]?.probabilities[label] ?? NaN)));
  });
  return gap;
}

/** A 2-input network by hand: hidden-1 (2 units), hidden-2 (2 units), one head "h" of 2 labels. */
function tinyNetwork(): NetworkData {
  const ones = (r: number, c: number) => new Matrix(r, c, new Float32Array(r * c).fill(1));
  return {
    layers: [
      { kernel: new Matrix(2, 2, Float32Array.from([1, 2, 3, 4])), bias: Float32Array.from([0.1, 0.2]), mask: ones(2, 2), added: [0, 0], retired: [Infinity, Infinity] },
      { kernel: new Matrix(2, 2, Float32Array.from([5, 0, 0, 8])), bias: Float32Array.from([0.3, 0.4]), mask: ones(2, 2), added: [0, 0], retired: [Infinity, Infinity] },
    ],
    heads: new Map([['h', { kernel: new Matrix(2, 2, Float32Array.from([1, 0, 0, 0])), bias: new Float32Array(2) }]]),
  };
}

describe('DEN (Dynamically Expandable Networks)', function () {
  let data: Awaited<ReturnType<typeof twoTasks>>;
  before(async () => {
    data = await twoTasks();
  });

  it('validates its parameters, naming the key', () => {
    assert.throws(() => createDen(denOptions({ tau: 1 })), (e: unknown) => e instanceof ConfigError && e.key === 'strategy.params.tau');
    assert.throws(() => createDen(denOptions({ k: 1.5 })), (e: unknown) => e instanceof ConfigError && e.key === 'strategy.params.k');
    assert.throws(() => createDen(denOptions({ sigma: -1 })), (e: unknown) => e instanceof ConfigError && e.key === 'strategy.params.sigma');
  });

  it('selects the subnetwork breadth-first from the non-zero head rows along non-zero connections', () => {
    const net = tinyNetwork();
    // Head row 0 is non-zero -> hidden-2 unit 0; its only non-zero input is hidden-1 unit 0.
    assert.deepEqual(selectSubnetwork(net, net.heads.get('h')!, 2, 0), [
      [true, false],
      [true, false],
    ]);
    (net.layers[1]!.mask as Matrix).set(0, 0, 0); // a dropped connection does not count
    assert.deepEqual(selectSubnetwork(net, net.heads.get('h')!, 2, 0), [
      [false, false],
      [true, false],
    ]);
  });

  it('splits exactly the units that drifted more than sigma: the copy keeps the new weights, the original gets the old ones back', () => {
    const net = tinyNetwork();
    const previous = net.layers.map((l) => ({ kernel: new Matrix(l.kernel.rows, l.kernel.cols, Float32Array.from(l.kernel.data)), bias: Float32Array.from(l.bias) }));
    const k1 = net.layers[0]!.kernel;
    k1.set(0, 0, k1.get(0, 0) + 0.1); // unit 0 of hidden-1 drifts by 0.1
    k1.set(1, 1, k1.get(1, 1) + 0.01); // unit 1 by 0.01
    const split = splitDrifted(net, previous, 1, 0.05, 10, new Set(['h']));
    assert.deepEqual(split, [[0], []]);
    const l1 = net.layers[0]!;
    assert.deepEqual(l1.added, [0, 0, 1]);
    assert.deepEqual(l1.retired, [1, Infinity, Infinity]);
    assert.deepEqual([l1.kernel.get(0, 0), l1.kernel.get(1, 0)], [1, 3], 'original restored');
    assert.deepEqual([l1.kernel.get(0, 2), l1.kernel.get(1, 2)], [Math.fround(1.1), 3], 'copy has the drifted weights');
    assert.ok(Math.abs(l1.kernel.get(1, 1) - 4.01) < 1e-6, 'below sigma: kept as it is');
    const l2 = net.layers[1]!;
    assert.equal(l2.kernel.rows, 3);
    assert.deepEqual([l2.kernel.get(2, 0), l2.kernel.get(2, 1)], [5, 0], "the copy feeds the next layer like the original");
    // With a limit of 0 splits, nothing happens.
    const again = tinyNetwork();
    again.layers[0]!.kernel.set(0, 0, 9);
    assert.deepEqual(splitDrifted(again, previous, 1, 0.05, 0, new Set(['h'])), [[], []]);
  });

  it('expansion adds units that earlier stages do not see: a task-1 prediction is unchanged by new units', async () => {
    const s = new DenStrategy(denOptions({}));
    try {
      await s.beginTask(data.t1);
      await learn(s, data.t1, data.one);
      await s.endTask(data.t1);
      const xs = data.probe1.map((p) => p.x);
      const before = await s.predict(data.t1, xs);
      const grown = s.network.read();
      expandLayers(grown, 5, 1, data.t1.name, new Rng(3));
      s.network.write(grown);
      assert.equal(s.network.units(0), 105);
      const after = await s.predict(data.t1, xs);
      assert.deepEqual(after.map((p) => p.label), before.map((p) => p.label));
      assert.ok(maxProbabilityGap(after, before) < 1e-5);
      // The same head at the new stage sees the new units (their head rows are random): different.
      s.network.head(data.t1.name).stage = 1;
      assert.ok(maxProbabilityGap(await s.predict(data.t1, xs), before) > 1e-4);
    } finally {
      s.dispose();
    }
  });

  it('adds k units per hidden layer only when the task loss stays above lossThreshold', async () => {
    const run = async (lossThreshold: number) => {
      const s = new DenStrategy(denOptions({ lossThreshold, k: 7, sigma: 1e9, groupLasso: 0 }));
      try {
        await s.beginTask(data.t1);
        await learn(s, data.t1, data.one);
        await s.endTask(data.t1);
        await s.beginTask(data.t2);
        await learn(s, data.t2, data.two);
        const phase = s.phase;
        await s.endTask(data.t2);
        return { phase, added: diagnostic(s, 'den_units_added', { task: data.t2.name }), units: diagnostic(s, 'den_units'), firstTask: diagnostic(s, 'den_units_added', { task: data.t1.name }) };
      } finally {
        s.dispose();
      }
    };
    const never = await run(1e9);
    assert.equal(never.phase, 'retrain');
    assert.deepEqual(never.added, [0, 0]);
    assert.deepEqual(never.units, [100, 100]);
    const always = await run(0);
    assert.equal(always.phase, 'expand');
    assert.deepEqual(always.added, [7, 7]);
    assert.deepEqual(always.units, [107, 107], 'no group lasso: no unit pruned');
    assert.deepEqual(always.firstTask, [0, 0], 'the first task never expands');
  });

  it('deletes expansion units whose incoming weights group sparsity drove to zero', async () => {
    const s = new DenStrategy(denOptions({ lossThreshold: 0, k: 6, sigma: 1e9, groupLasso: 100 }));
    try {
      await s.beginTask(data.t1);
      await learn(s, data.t1, data.one);
      await s.endTask(data.t1);
      await s.beginTask(data.t2);
      await learn(s, data.t2, data.two);
      assert.equal(s.network.units(0), 106);
      await s.endTask(data.t2);
      assert.deepEqual(diagnostic(s, 'den_units_pruned', { task: data.t2.name }), [6, 6]);
      assert.deepEqual(diagnostic(s, 'den_units'), [100, 100]);
    } finally {
      s.dispose();
    }
  });

  it('after the first task, weights below pruneThreshold are dropped and stay zero while later tasks train', async () => {
    const s = new DenStrategy(denOptions({ l1: 3e-4, pruneThreshold: 0.02, lossThreshold: 0, sigma: 0, maxSplits: 1000, regularLambda: 0 }));
    try {
      await s.beginTask(data.t1);
      await learn(s, data.t1, data.one);
      await s.endTask(data.t1);
      const [sparsity] = diagnostic(s, 'den_sparsity', { layer: 'hidden-1' });
      assert.ok(sparsity! > 0.3, `hidden-1 sparsity ${sparsity}`);
      const dropped = s.network.layers[0]!.mask.data.reduce((n, m) => n + (m === 0 ? 1 : 0), 0);
      assert.ok(dropped > 0.3 * 784 * 100);
      const acc = accuracy(await s.predict(data.t1, data.probe1.map((p) => p.x)), data.probe1);
      assert.ok(acc >= 0.95, `task-1 accuracy after pruning ${acc}`);
      const droppedAt = [...s.network.layers[0]!.mask.data.keys()].filter((i) => s.network.layers[0]!.mask.data[i] === 0);
      await s.beginTask(data.t2);
      await learn(s, data.t2, data.two);
      const kernel = s.network.layers[0]!.kernel.dataSync();
      const cols = s.network.units(0);
      // Task 2 grew hidden-1 (columns appended): entry (i, j) moved from i*100+j to i*cols+j.
      assert.ok(droppedAt.every((flat) => kernel[Math.floor(flat / 100) * cols + (flat % 100)] === 0));
    } finally {
      s.dispose();
    }
  });

  it('a split restores the old task: its predictions after task 2 equal those before, and the split leaves task 2 unchanged', async () => {
    const run = async (sigma: number) => {
      // regularLambda 0: nothing holds the subnetwork back, so it drifts.
      const s = new DenStrategy(denOptions({ sigma, maxSplits: 1000, regularLambda: 0, lossThreshold: 0 }));
      try {
        await s.beginTask(data.t1);
        await learn(s, data.t1, data.one);
        await s.endTask(data.t1);
        const xs1 = data.probe1.map((p) => p.x);
        const xs2 = data.probe2.map((p) => p.x);
        const oldBefore = await s.predict(data.t1, xs1);
        await s.beginTask(data.t2);
        await learn(s, data.t2, data.two);
        const newBefore = await s.predict(data.t2, xs2);
        await s.endTask(data.t2);
        return {
          oldBefore,
          oldAfter: await s.predict(data.t1, xs1),
          newBefore,
          newAfter: await s.predict(data.t2, xs2),
          split: diagnostic(s, 'den_units_split', { task: data.t2.name }),
          added: diagnostic(s, 'den_units_added', { task: data.t2.name }),
        };
      } finally {
        s.dispose();
      }
    };
    const splitting = await run(0);
    assert.ok(splitting.split.every((n) => n > 0), `units split per layer: ${splitting.split}`);
    assert.ok(splitting.added.every((n) => n > 0), 'units were added too');
    // Every drifted unit was split and restored: task 1 computes what it did before task 2.
    assert.deepEqual(splitting.oldAfter.map((p) => p.label), splitting.oldBefore.map((p) => p.label));
    assert.ok(maxProbabilityGap(splitting.oldAfter, splitting.oldBefore) < 1e-5);
    // The copies carry task 2's weights and the originals are hidden from it: no change for task 2.
    assert.deepEqual(splitting.newAfter.map((p) => p.label), splitting.newBefore.map((p) => p.label));
    assert.ok(maxProbabilityGap(splitting.newAfter, splitting.newBefore) < 1e-5);

    const drifting = await run(1e9);
    assert.deepEqual(drifting.split, [0, 0]);
    assert.ok(maxProbabilityGap(drifting.oldAfter, drifting.oldBefore) > 1e-3, 'without splits task 1 drifts');
    // The old task's accuracy is kept exactly with splits (without, it may go either way on this easy pair).
    assert.equal(accuracy(splitting.oldAfter, data.probe1), accuracy(splitting.oldBefore, data.probe1));
  });

  it('exports and imports the grown structure mid-expansion: the copy predicts and continues identically', async () => {
    const params = { lossThreshold: 0, sigma: 0.01, maxSplits: 1000, regularLambda: 0.05 };
    const original = new DenStrategy(denOptions(params, 1));
    const copy = new DenStrategy(denOptions(params, 99));
    try {
      await original.beginTask(data.t1);
      await learn(original, data.t1, data.one);
      await original.endTask(data.t1);
      await original.beginTask(data.t2);
      await learn(original, data.t2, data.two.slice(0, 7 * 32));
      assert.equal(original.phase, 'expand');
      await copy.importState(await original.exportState());
      const xs = [...data.probe1, ...data.probe2].map((p) => p.x);
      for (const task of [data.t1, data.t2, undefined]) assert.deepEqual(await copy.predict(task, xs), await original.predict(task, xs));
      assert.equal(copy.parameterCount(), original.parameterCount());
      const rest = data.two.slice(7 * 32);
      await learn(original, data.t2, rest);
      await learn(copy, data.t2, rest);
      await original.endTask(data.t2);
      await copy.endTask(data.t2);
      for (const task of [data.t1, data.t2, undefined]) assert.deepEqual(await copy.predict(task, xs), await original.predict(task, xs));
      assert.deepEqual(copy.diagnostics(), original.diagnostics());
      assert.ok(diagnostic(original, 'den_units_split', { task: data.t2.name }).some((n) => n > 0));
    } finally {
      original.dispose();
      copy.dispose();
    }
  });

  it('leaks no tensor across growth, pruning, splits, export/import and dispose', async () => {
    const before = tf.memory().numTensors;
    const s = new DenStrategy(denOptions({ lossThreshold: 0, sigma: 0, maxSplits: 1000, groupLasso: 0.05 }));
    await s.beginTask(data.t1);
    await learn(s, data.t1, data.one);
    await s.endTask(data.t1);
    await s.beginTask(data.t2);
    const chunks = batches(data.two, 32);
    await s.trainBatch(data.t2, { xs: chunks[0]!.map((p) => p.x), ys: chunks[0]!.map((p) => p.y as string) });
    const steady = tf.memory().numTensors;
    for (const chunk of chunks.slice(1)) {
      await s.trainBatch(data.t2, { xs: chunk.map((p) => p.x), ys: chunk.map((p) => p.y as string) });
      assert.equal(tf.memory().numTensors, steady, `after a batch in phase ${s.phase}`);
    }
    assert.equal(s.phase, 'expand');
    await s.predict(undefined, data.probe1.slice(0, 20).map((p) => p.x));
    await s.predict(data.t1, data.probe1.slice(0, 20).map((p) => p.x));
    assert.equal(tf.memory().numTensors, steady, 'after predictions');
    await s.importState(await s.exportState());
    assert.equal(tf.memory().numTensors, steady, 'after export and import');
    await s.endTask(data.t2);
    assert.ok(diagnostic(s, 'den_units_split').some((n) => n > 0));
    s.dispose();
    s.dispose();
    assert.equal(tf.memory().numTensors, before, 'after dispose');
  });
});

describe('DEN: a first batch of one label', () => {
  it('a head that knows one label trains, in every scenario, to finite weights', async () => {
    for (const scenario of SCENARIOS) {
      const s = createDen(oneLabelOptions(scenario, SHORT));
      try {
        const results = await learnOneLabel(s, { name: 't1', index: 0 }, 'a');
        await assertFiniteAfterOneLabel(s, results, 'a');
      } finally {
        s.dispose();
      }
    }
  });
});
