import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadPipelineConfig } from '../../src/config/pipeline-config';
import { ConfigError, StrategyError } from '../../src/core/errors';
import { SCENARIOS, TASK_AGNOSTIC_INFO, type Sample, type Scenario, type TaskInfo } from '../../src/core/types';
import { runPipeline } from '../../src/engine/run-pipeline';
import type { EmbeddedSource } from '../../src/sources/embedded';
import { createProgressive, ProgressiveStrategy } from '../../src/strategies/progressive';
import { NO_TASK_YET, NOTHING_LEARNED_YET } from '../../src/strategies/learning-helpers';
import type { StrategyOptions } from '../../src/strategies/strategy';
import { batches, takeSamples } from '../helpers/mnist-task';
import { assertFiniteAfterOneLabel, learnOneLabel, oneLabelOptions } from '../helpers/one-label';

const ADAPTERS = ['linear', 'mlp'] as const;
const REPO = path.resolve(__dirname, '../../..');

function options(scenario: Scenario, outputUnits: number, params: Record<string, unknown> = {}, seed = 1): StrategyOptions {
  return { scenario, inputSize: 784, hiddenLayers: [100, 100], outputUnits, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, seed, params };
}

function progressive(o: StrategyOptions): ProgressiveStrategy {
  return createProgressive(o) as ProgressiveStrategy;
}

async function learnTask(s: ProgressiveStrategy, task: TaskInfo, samples: readonly Sample[]): Promise<void> {
  await s.beginTask(task);
  for (const b of batches(samples.filter((x) => x.task === task.name), 32)) await s.trainBatch(task, { xs: b.map((x) => x.x), ys: b.map((x) => x.y as string) });
  await s.endTask(task);
}

/** Copies of the variables whose names start with `prefix` ("column-1."). */
function values(s: ProgressiveStrategy, prefix: string): Map<string, Float32Array> {
  return new Map([...s.columns.namedVariables()].filter(([n]) => n.startsWith(prefix)).map(([n, v]) => [n, Float32Array.from(v.dataSync() as Float32Array)]));
}

function accuracy(predictions: readonly { label: string | null }[], probe: readonly Sample[]): number {
  return predictions.filter((p, i) => p.label === probe[i]?.y).length / probe.length;
}

describe('progressive networks', () => {
  let source: EmbeddedSource;
  let samples: Sample[];
  let tasks: TaskInfo[];
  before(async () => {
    ({ source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 3, samplesPerTask: 400, seed: 3, scenario: 'task-incremental' }));
    tasks = source.knownTasks().map((name, index) => ({ name, index }));
  });
  const probeOf = (task: TaskInfo) => source.probe(task.name, 200) as Sample[];

  for (const adapter of ADAPTERS) {
    it(`old tasks' probabilities are bit-identical after later tasks are learned, their columns untouched (${adapter} adapter)`, async () => {
      const s = progressive(options('task-incremental', source.outputUnits, { adapter }));
      try {
        const after: { predictions: unknown; weights: Map<string, Float32Array> }[] = [];
        for (const task of tasks) {
          await s.beginTask(task);
          const initial = values(s, `column-${task.index + 1}.`);
          for (const b of batches(samples.filter((x) => x.task === task.name), 32)) await s.trainBatch(task, { xs: b.map((x) => x.x), ys: b.map((x) => x.y as string) });
          await s.endTask(task);
          const weights = values(s, `column-${task.index + 1}.`);
          // The new column, laterals included, did learn: every one of its variables moved.
          for (const [name, w] of weights) assert.notDeepEqual(w, initial.get(name), `${name} was trained`);
          const predictions = await s.predict(task, probeOf(task).map((x) => x.x));
          assert.ok(accuracy(predictions, probeOf(task)) > 0.9, `task ${task.name} learned`);
          after.push({ predictions, weights });
        }
        for (const task of tasks) {
          const then = after[task.index]!;
          assert.deepEqual(await s.predict(task, probeOf(task).map((x) => x.x)), then.predictions, `task ${task.name}'s answers changed`);
          assert.deepEqual(values(s, `column-${task.index + 1}.`), then.weights, `column ${task.index + 1} changed`);
        }
        const layers = [...s.layerWeights().keys()];
        assert.ok(['column-1.hidden-1', 'column-1.head', 'column-3.hidden-2', 'column-3.lateral-hidden-2', 'column-3.lateral-head'].every((l) => layers.includes(l)), layers.join());
        assert.ok(!layers.includes('column-1.lateral-hidden-2') && !layers.includes('column-2.lateral-hidden-1'), 'no laterals in column 1 nor into hidden-1');
      } finally {
        s.dispose();
      }
    });

    it(`laterals connect: changing column 1 changes column 2's answers, never the reverse (${adapter} adapter)`, async () => {
      const s = progressive(options('task-incremental', source.outputUnits, { adapter }));
      try {
        const [t1, t2] = tasks as [TaskInfo, TaskInfo];
        await learnTask(s, t1, samples);
        await learnTask(s, t2, samples);
        const xs = probeOf(t2).map((x) => x.x);
        const original = await s.predict(t2, xs);
        // Column 1's last hidden layer reaches column 2 only through the lateral into its head,
        // its first hidden layer through the lateral into hidden-2 as well.
        for (const layer of ['column-1.hidden-2.kernel', 'column-1.hidden-1.kernel']) {
          const kept = values(s, layer).get(layer) as Float32Array;
          const shape = s.columns.namedVariables().get(layer)!.shape;
          s.assignVariable(layer, { shape, data: kept.map((v) => v * 1.5) });
          assert.notDeepEqual(await s.predict(t2, xs), original, `changing ${layer} reached column 2`);
          s.assignVariable(layer, { shape, data: kept });
          assert.deepEqual(await s.predict(t2, xs), original);
        }
        const before = await s.predict(t1, probeOf(t1).map((x) => x.x));
        const kernel = values(s, 'column-2.hidden-1.kernel').get('column-2.hidden-1.kernel') as Float32Array;
        s.assignVariable('column-2.hidden-1.kernel', { shape: [784, 100], data: kernel.map((v) => -v) });
        assert.deepEqual(await s.predict(t1, probeOf(t1).map((x) => x.x)), before, 'column 1 does not read column 2');
      } finally {
        s.dispose();
      }
    });

    it(`grows by one column per task, leaks no tensor across growth, export/import and dispose (${adapter} adapter)`, async () => {
      const before = tf.memory().numTensors;
      // The count below is the columns' and their optimizer's: without the task router's autoencoders (expert-gate.test.ts counts those).
      const s = progressive(options('task-incremental', source.outputUnits, { adapter, taskInference: 'entropy' }));
      const copy = progressive(options('task-incremental', source.outputUnits, { adapter, taskInference: 'entropy' }, 99));
      try {
        for (const task of tasks) {
          await s.beginTask(task);
          const taskSamples = samples.filter((x) => x.task === task.name).slice(0, 20 * 16);
          for (const b of batches(taskSamples, 16)) await s.trainBatch(task, { xs: b.map((x) => x.x), ys: b.map((x) => x.y as string) });
          await s.predict(undefined, taskSamples.slice(0, 40).map((x) => x.x));
          await s.predict(tasks[0], taskSamples.slice(0, 40).map((x) => x.x));
          // Held now: every column's variables, and the newest column's Adam only (the old
          // columns' optimizers are gone): FusedAdam's two beta powers and two flat moments,
          // whatever the column's variable count.
          assert.equal(tf.memory().numTensors - before, s.columns.namedVariables().size + 2 + 2, `tensors after task ${task.index + 1}`);
          await s.endTask(task);
        }
        assert.equal(s.columns.columns.length, 3);
        const steady = tf.memory().numTensors;
        const state = await s.exportState();
        assert.equal(tf.memory().numTensors, steady, 'exportState holds no tensor');
        await copy.importState(state);
        assert.equal(tf.memory().numTensors - steady, steady - before, 'the copy holds what the original does');
        const xs = tasks.flatMap((t) => probeOf(t).slice(0, 30)).map((x) => x.x);
        for (const task of [...tasks, undefined]) assert.deepEqual(await copy.predict(task, xs), await s.predict(task, xs));
        assert.equal(copy.parameterCount(), s.parameterCount());
        // A fourth column grows alike in both: its initialisation is seeded by the column index.
        const fourth = { name: 'fourth', index: 3 };
        const batch = { xs: xs.slice(0, 16), ys: xs.slice(0, 16).map((_, i) => String(i % 2)) };
        for (const strategy of [s, copy]) {
          await strategy.beginTask(fourth);
          await strategy.trainBatch(fourth, batch);
        }
        assert.deepEqual(await copy.predict(fourth, xs), await s.predict(fourth, xs));
      } finally {
        s.dispose();
        copy.dispose();
        s.dispose();
      }
      assert.equal(tf.memory().numTensors, before, 'tensors left after dispose');
    });
  }

  it('counts every column, lateral and adapter in parameterCount and diagnostics', async () => {
    const [h1, h2] = [100, 100];
    const headOf = (labels: number, earlier: number) => labels * (h2 + 1) + earlier * h2 * labels;
    const linear = (k: number, labels: number) => 784 * h1 + h1 + h1 * h2 + h2 + k * h1 * h2 + headOf(labels, k);
    // 'mlp' with adapterWidth w: per lateral a scale, V (k * source width x w) and U (w x units).
    const mlp = (k: number, labels: number, w: number) =>
      784 * h1 + h1 + h1 * h2 + h2 + labels * (h2 + 1) + (k === 0 ? 0 : 1 + k * h1 * w + w * h2 + 1 + k * h2 * w + w * labels);
    for (const [params, perColumn] of [
      [{ adapter: 'linear' }, (k: number) => linear(k, 2)],
      [{ adapter: 'mlp' }, (k: number) => mlp(k, 2, 100)],
      [{ adapter: 'mlp', adapterWidth: 25 }, (k: number) => mlp(k, 2, 25)],
    ] as const) {
      const s = progressive(options('task-incremental', source.outputUnits, params));
      try {
        for (const task of tasks) await learnTask(s, task, samples.filter((x) => x.task === task.name).slice(0, 32));
        const expected = tasks.map((t) => perColumn(t.index));
        assert.equal(s.parameterCount(), expected.reduce((a, b) => a + b, 0), JSON.stringify(params));
        const diagnostics = s.diagnostics();
        assert.deepEqual(diagnostics.find((d) => d.name === 'progressive_columns')?.value, 3);
        assert.deepEqual(
          diagnostics.filter((d) => d.name === 'progressive_column_parameters').map((d) => [d.labels?.column, d.labels?.task, d.value]),
          tasks.map((t, k) => [String(k + 1), t.name, expected[k]]),
        );
      } finally {
        s.dispose();
      }
    }
  });

  it('a task begun again after later ones trains only its head, leaving the later columns as they were', async () => {
    const s = progressive(options('task-incremental', source.outputUnits));
    try {
      const [t1, t2] = tasks as [TaskInfo, TaskInfo];
      await learnTask(s, t1, samples);
      await learnTask(s, t2, samples);
      const answersOfT2 = await s.predict(t2, probeOf(t2).map((x) => x.x));
      const trunk = values(s, 'column-1.hidden-');
      const head = values(s, 'column-1.head.');
      await s.beginTask(t1);
      assert.equal(s.columns.columns.length, 2, 'no column added for a known task');
      const flipped = samples.filter((x) => x.task === t1.name).slice(0, 64);
      await s.trainBatch(t1, { xs: flipped.map((x) => x.x), ys: flipped.map((x) => x.y as string) });
      assert.deepEqual(values(s, 'column-1.hidden-'), trunk);
      assert.notDeepEqual(values(s, 'column-1.head.'), head);
      assert.deepEqual(await s.predict(t2, probeOf(t2).map((x) => x.x)), answersOfT2);
    } finally {
      s.dispose();
    }
  });

  it('answers nothing for a task without a column, infers the task when none is given', async () => {
    const s = progressive(options('task-incremental', source.outputUnits));
    try {
      const [t1, t2] = tasks as [TaskInfo, TaskInfo];
      const xs = probeOf(t1).slice(0, 5).map((x) => x.x);
      assert.deepEqual(await s.predict(undefined, xs), xs.map(() => ({ label: null, probabilities: {}, reason: NOTHING_LEARNED_YET })));
      await learnTask(s, t1, samples);
      assert.deepEqual(await s.predict(t2, xs), xs.map(() => ({ label: null, probabilities: {}, reason: NO_TASK_YET })), 'no column for t2 yet');
      for (const request of [undefined, TASK_AGNOSTIC_INFO]) {
        const answers = await s.predict(request, xs);
        assert.ok(answers.every((p) => p.inferredTask === t1.name && p.label !== null));
      }
      await assert.rejects(s.trainBatch(t2, { xs, ys: xs.map(() => '0') }), StrategyError);
    } finally {
      s.dispose();
    }
  });

  it('refuses a bad adapter and a checkpoint of another shape, naming the key', async () => {
    assert.throws(() => createProgressive(options('task-incremental', 2, { adapter: 'conv' })), (e: unknown) => e instanceof ConfigError && e.key === 'strategy.params.adapter');
    assert.throws(() => createProgressive(options('task-incremental', 2, { adapterWidth: -1 })), (e: unknown) => e instanceof ConfigError && e.key === 'strategy.params.adapterWidth');
    const linear = progressive(options('task-incremental', 2));
    const mlp = progressive(options('task-incremental', 2, { adapter: 'mlp' }));
    try {
      await linear.beginTask(tasks[0]!);
      await assert.rejects(mlp.importState(await linear.exportState()), /checkpoint columns .*"adapter":"linear".* do not match/);
    } finally {
      linear.dispose();
      mlp.dispose();
    }
  });

  it('infers the task in class-incremental learning well above chance; the default rule is the better one', async () => {
    // Two labels per column (split-MNIST): entropy and top probability rank columns alike, so
    // the rules are compared where they differ, on permuted-MNIST's ten labels per column.
    const report: string[] = [];
    for (const dataset of ['split-mnist', 'permuted-mnist'] as const) {
      const stream = await takeSamples({ dataset, tasks: 3, samplesPerTask: dataset === 'split-mnist' ? 1000 : 2000, seed: 5, scenario: 'class-incremental' });
      const streamTasks = stream.source.knownTasks().map((name, index) => ({ name, index }));
      const probe = streamTasks.flatMap((t) => stream.source.probe(t.name, 300) as Sample[]);
      const taskAccuracy: Record<string, number> = {};
      for (const rule of ['entropy', 'confidence']) {
        const s = progressive(options('class-incremental', stream.source.outputUnits, { taskInference: rule }));
        try {
          for (const task of streamTasks) await learnTask(s, task, stream.samples);
          const answers = await s.predict(undefined, probe.map((x) => x.x));
          taskAccuracy[rule] = answers.filter((p, i) => p.inferredTask === probe[i]?.task).length / probe.length;
          const classAccuracy = accuracy(answers, probe);
          report.push(`${dataset} class-IL, 3 tasks, rule ${rule}: task inferred right ${(100 * taskAccuracy[rule]!).toFixed(1)}%, accuracy ${(100 * classAccuracy).toFixed(1)}%`);
          assert.ok(taskAccuracy[rule]! > 0.5, `task inference ${taskAccuracy[rule]} (chance 1/3)`);
          assert.ok(classAccuracy > 0.5, `class-IL accuracy ${classAccuracy}`);
        } finally {
          s.dispose();
        }
      }
      if (dataset === 'split-mnist') assert.equal(taskAccuracy.entropy, taskAccuracy.confidence, 'with two labels the rules agree');
      else assert.ok(taskAccuracy.entropy! >= taskAccuracy.confidence!, `default rule entropy ${taskAccuracy.entropy} vs confidence ${taskAccuracy.confidence}`);
    }
    process.stderr.write(`      ${report.join('\n      ')}\n`);
  });

  it('runs the shipped pipelines through the engine: one column per task, task inferred where the scenario hides it', async () => {
    for (const file of ['split-mnist-progressive-task.json', 'permuted-mnist-progressive-task.json']) {
      const pipeline = loadPipelineConfig(path.join(REPO, 'pipelines', file));
      assert.equal(pipeline.strategy.name, 'progressive');
      for (const scenario of ['task-incremental', 'class-incremental'] as const) {
        const small = { ...pipeline, scenario, source: { ...pipeline.source, tasks: 2, samplesPerTask: 600 } as typeof pipeline.source, model: { ...pipeline.model, hiddenLayers: [100, 100] } };
        const report = await runPipeline({ pipeline: small, backend: tf.getBackend() });
        const [first, second] = report.parametersAfterTask as [number, number];
        assert.ok(second > 2 * first, `${file} ${scenario}: a second column with laterals (${first} then ${second} parameters)`);
        const last = report.accuracyMatrix[1] as (number | null)[];
        // Chance: one class of a task's (split: 2, permuted: 10), or of both tasks' in class-IL.
        const chance = 1 / ((file.startsWith('split') ? 2 : 10) * (scenario === 'task-incremental' ? 1 : 2));
        assert.ok(last.every((a) => a !== null && a > 1.5 * chance), `${file} ${scenario}: accuracies ${JSON.stringify(last)}`);
      }
    }
  });
});

describe('progressive networks: a first batch of one label', () => {
  for (const adapter of ADAPTERS) {
    it(`a column that knows one label trains, in every scenario, to finite weights (${adapter} adapter)`, async () => {
      for (const scenario of SCENARIOS) {
        const s = progressive(oneLabelOptions(scenario, { adapter }));
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
