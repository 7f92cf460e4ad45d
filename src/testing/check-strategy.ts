/**
 * The conformance checks every strategy must pass (River's check_estimator): it learns, frees its
 * tensors, survives export/import unchanged, keeps predictAndTrain equal to predict + trainBatch,
 * and survives degenerate batches. Plain async functions, usable without mocha.
 */
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import { DEFAULT_MAX_ABS_FEATURE } from '../core/sample-limits';
import { SCENARIOS, type Prediction, type Sample, type Scenario, type TaskInfo } from '../core/types';
import { DEFAULT_CAPABILITIES, type StrategyCapabilities, type StrategyDescriptor } from '../strategies/descriptor';
import type { LabelledBatch, Strategy, StrategyFactory, StrategyOptions } from '../strategies/strategy';
import { batches, firstSplitTask, takeSamples } from './mnist-tasks';

export interface CheckStrategyOptions {
  /** strategy.params of every instance checked; default {} (the strategy's defaults). */
  readonly params?: Readonly<Record<string, unknown>>;
  /** Hidden layers of the trunk; default [100, 100]. */
  readonly hiddenLayers?: readonly number[];
  /** Check only these scenarios (of those the strategy supports); default all three. */
  readonly scenarios?: readonly Scenario[];
  /** Training samples of the learning check's task; default 2000. */
  readonly learningSamples?: number;
  /** Held-out accuracy the learning check asks for; default 0.95. */
  readonly minAccuracy?: number;
  /** Batches of 16 the leak check trains after warming up; default 100. */
  readonly leakBatches?: number;
}

export type CheckOutcome = { readonly status: 'passed' } | { readonly status: 'skipped'; readonly reason: string };

/** One conformance check, bound to a strategy. */
export interface StrategyCheck {
  /** What it checks, e.g. "export then import gives identical predictions, also after training on (task-incremental)". */
  readonly name: string;
  readonly scenario?: Scenario;
  /** Resolves with the outcome; throws (an AssertionError, or what the strategy threw) when the check fails. */
  run(): Promise<CheckOutcome>;
}

export interface CheckReport {
  readonly strategy: string;
  readonly results: readonly { readonly check: string; readonly outcome: CheckOutcome }[];
}

const PASSED: CheckOutcome = { status: 'passed' };

/** The ways a batch can be degenerate, each checked in every scenario. */
const DEGENERATE_BATCHES = {
  empty: 'an empty batch',
  'one-sample': 'a batch of one sample',
  'one-class': 'a first batch whose labels are all one class',
  'huge-features': `a first batch of features as large as a Kafka source lets through (±${DEFAULT_MAX_ABS_FEATURE})`,
} as const;
type DegenerateKind = keyof typeof DEGENERATE_BATCHES;

/**
 * The checks of a strategy, one per property and scenario, in order (River's yield_checks): the
 * test suite gives each its own test. A check of a scenario the strategy does not support
 * (capabilities.scenarios) resolves as skipped, saying so. A bare factory is checked with
 * DEFAULT_CAPABILITIES.
 */
export function strategyChecks(subject: StrategyDescriptor | StrategyFactory, options: CheckStrategyOptions = {}): StrategyCheck[] {
  const create: StrategyFactory = typeof subject === 'function' ? subject : subject.create;
  const capabilities: StrategyCapabilities = typeof subject === 'function' ? DEFAULT_CAPABILITIES : subject.capabilities;
  const asked = options.scenarios ?? SCENARIOS;
  const checked = asked.filter((s) => capabilities.scenarios.includes(s));
  const primary = checked.includes('class-incremental') ? 'class-incremental' : checked[0];
  if (primary === undefined) throw new StrategyError(`no scenario to check: asked for ${asked.join(', ')}, the strategy supports ${capabilities.scenarios.join(', ')}`);
  const settings: Settings = {
    create,
    params: options.params ?? {},
    hiddenLayers: options.hiddenLayers ?? [100, 100],
    learningSamples: options.learningSamples ?? 2000,
    minAccuracy: options.minAccuracy ?? 0.95,
    leakBatches: options.leakBatches ?? 100,
  };
  const perScenario = (name: string, check: (scenario: Scenario) => Promise<CheckOutcome>): StrategyCheck[] =>
    asked.map((scenario) => ({
      name: `${name} (${scenario})`,
      scenario,
      run: () => (capabilities.scenarios.includes(scenario) ? check(scenario) : Promise.resolve({ status: 'skipped', reason: `the strategy does not support ${scenario} (capabilities.scenarios)` })),
    }));
  return [
    ...perScenario(`learns one 2-class MNIST task to >= ${Math.round(settings.minAccuracy * 100)}% held-out accuracy`, (scenario) => checkLearning(settings, scenario)),
    { name: `leaks no tensor over ${settings.leakBatches} training batches, across task boundaries, or after dispose`, scenario: primary, run: () => checkNoLeak(settings, primary) },
    { name: 'predictAndTrain, where offered, predicts what predict() would and learns what trainBatch() would', scenario: primary, run: () => checkPredictAndTrain(settings, primary) },
    ...perScenario('export then import gives identical predictions, also after training on', (scenario) => checkExportImport(settings, scenario)),
    ...(Object.keys(DEGENERATE_BATCHES) as DegenerateKind[]).flatMap((kind) => perScenario(`survives ${DEGENERATE_BATCHES[kind]}`, (scenario) => checkDegenerateBatch(settings, scenario, kind))),
  ];
}

/**
 * Runs every check of strategyChecks in turn. Resolves with each check's outcome, or throws a
 * StrategyError naming the first check that failed (its error as `cause`).
 */
export async function checkStrategy(subject: StrategyDescriptor | StrategyFactory, options: CheckStrategyOptions = {}): Promise<CheckReport> {
  const strategy = typeof subject === 'function' ? subject.name || 'strategy' : subject.name;
  const results: { check: string; outcome: CheckOutcome }[] = [];
  for (const check of strategyChecks(subject, options)) {
    try {
      results.push({ check: check.name, outcome: await check.run() });
    } catch (cause) {
      throw new StrategyError(`strategy "${strategy}" fails the check "${check.name}": ${(cause as Error).message}`, { cause });
    }
  }
  return { strategy, results };
}

interface Settings {
  readonly create: StrategyFactory;
  readonly params: Readonly<Record<string, unknown>>;
  readonly hiddenLayers: readonly number[];
  readonly learningSamples: number;
  readonly minAccuracy: number;
  readonly leakBatches: number;
}

function build(settings: Settings, scenario: Scenario, seed: number, outputUnits: number): Strategy {
  const options: StrategyOptions = { scenario, inputSize: 784, hiddenLayers: settings.hiddenLayers, outputUnits, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, seed, params: settings.params };
  return settings.create(options);
}

function labelled(samples: readonly Sample[]): LabelledBatch {
  return { xs: samples.map((s) => s.x), ys: samples.map((s) => s.y as string) };
}

async function train(strategy: Strategy, task: TaskInfo, samples: readonly Sample[], batchSize: number): Promise<void> {
  for (const batch of batches(samples, batchSize)) await strategy.trainBatch(task, labelled(batch));
}

async function accuracy(strategy: Strategy, task: TaskInfo, probe: readonly Sample[]): Promise<number> {
  const predictions = await strategy.predict(task, probe.map((s) => s.x));
  return predictions.filter((p, i) => p.label === probe[i]?.y).length / probe.length;
}

async function checkLearning(settings: Settings, scenario: Scenario): Promise<CheckOutcome> {
  const { source, samples } = await firstSplitTask(scenario, settings.learningSamples);
  const probe = source.probe(source.knownTasks()[0] as string, 500) as Sample[];
  const strategy = build(settings, scenario, 3, source.outputUnits);
  try {
    const task = { name: samples[0]!.task, index: 0 };
    await strategy.beginTask(task);
    await train(strategy, task, samples, 32);
    await strategy.endTask(task);
    const acc = await accuracy(strategy, task, probe);
    assert.ok(acc >= settings.minAccuracy, `held-out accuracy ${acc}`);
  } finally {
    strategy.dispose();
  }
  return PASSED;
}

async function checkNoLeak(settings: Settings, scenario: Scenario): Promise<CheckOutcome> {
  const batchSize = 16;
  const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: Math.max(1700, batchSize * (settings.leakBatches + 1)), seed: 3, scenario });
  const [first, second] = source.knownTasks() as [string, string];
  const before = tf.memory().numTensors;
  const strategy = build(settings, scenario, 5, source.outputUnits);
  const t1 = { name: first, index: 0 };
  const t2 = { name: second, index: 1 };
  const taskOne = samples.filter((s) => s.task === first);
  const taskTwo = samples.filter((s) => s.task === second);
  await strategy.beginTask(t1);
  await train(strategy, t1, taskOne.slice(0, 5 * batchSize), batchSize); // warm-up: optimizer slots exist now
  await strategy.endTask(t1);
  await strategy.beginTask(t2);
  await train(strategy, t2, taskTwo.slice(0, batchSize), batchSize);
  const steady = tf.memory().numTensors;
  await train(strategy, t2, taskTwo.slice(batchSize, batchSize * (settings.leakBatches + 1)), batchSize);
  await strategy.predict(undefined, taskTwo.slice(0, 50).map((s) => s.x));
  await strategy.predict(t1, taskOne.slice(0, 50).map((s) => s.x));
  assert.equal(tf.memory().numTensors, steady, `tensors held after ${settings.leakBatches} more batches and predictions`);
  const state = await strategy.exportState();
  assert.equal(tf.memory().numTensors, steady, 'tensors held after exportState');
  await strategy.importState(state);
  assert.equal(tf.memory().numTensors, steady, 'tensors held after importState');
  await strategy.endTask(t2);
  strategy.dispose();
  strategy.dispose();
  assert.equal(tf.memory().numTensors, before, 'tensors left after dispose');
  return PASSED;
}

async function checkPredictAndTrain(settings: Settings, scenario: Scenario): Promise<CheckOutcome> {
  const probe = build(settings, scenario, 1, 10);
  const offered = typeof probe.predictAndTrain === 'function';
  probe.dispose();
  if (!offered) return { status: 'skipped', reason: 'predictAndTrain is not offered (it is optional)' };
  const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 200, seed: 4, scenario });
  const [first, second] = source.knownTasks() as [string, string];
  const fused = build(settings, scenario, 2, source.outputUnits);
  const plain = build(settings, scenario, 2, source.outputUnits);
  try {
    for (const [index, taskName] of [first, second].entries()) {
      const task = { name: taskName, index };
      await fused.beginTask(task);
      await plain.beginTask(task);
      for (const batch of batches(samples.filter((s) => s.task === taskName), 32)) {
        const b = labelled(batch);
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
  return PASSED;
}

async function checkExportImport(settings: Settings, scenario: Scenario): Promise<CheckOutcome> {
  const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 3, samplesPerTask: 400, seed: 11, scenario });
  const [first, second, third] = source.knownTasks() as [string, string, string];
  const t1 = { name: first, index: 0 };
  const t2 = { name: second, index: 1 };
  const t3 = { name: third, index: 2 };
  const original = build(settings, scenario, 1, source.outputUnits);
  const copy = build(settings, scenario, 99, source.outputUnits);
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

    // And into a task begun after a restore, as a daemon resumes from a checkpoint (the same
    // options, seed included, and the exported state): whatever is built for the new task (a head,
    // a column, units for new classes, a router's autoencoder) is built as the original builds it.
    const resumed = build(settings, scenario, 1, source.outputUnits);
    try {
      await resumed.importState(await original.exportState());
      const taskThree = samples.filter((s) => s.task === third).slice(0, 128);
      for (const strategy of [original, resumed]) {
        await strategy.beginTask(t3);
        await train(strategy, t3, taskThree, 32);
      }
      const all = [...probe, ...(source.probe(third, 100) ?? [])].map((s) => s.x);
      for (const task of [t3, undefined]) assert.deepEqual(await resumed.predict(task, all), await original.predict(task, all), `a task begun after the restore (${task ? 'given' : 'not given'})`);
    } finally {
      resumed.dispose();
    }
  } finally {
    original.dispose();
    copy.dispose();
  }
  return PASSED;
}

/** The degenerate batch a task starts with: taken from the task's samples. */
function degenerateBatch(kind: DegenerateKind, samples: readonly Sample[]): Sample[] {
  switch (kind) {
    case 'empty':
      return [];
    case 'one-sample':
      return samples.slice(0, 1);
    case 'one-class':
      return samples.filter((s) => s.y === samples[0]!.y).slice(0, 16);
    case 'huge-features':
      // Pixels scaled to the bound, every other sample negated: the largest products x·w allowed.
      return samples.slice(0, 16).map((s, i) => ({ ...s, x: s.x.map((v) => (i % 2 === 0 ? 1 : -1) * v * DEFAULT_MAX_ABS_FEATURE) }));
  }
}

/**
 * Each task of two starts with the degenerate batch, then regular batches follow; the weights
 * must stay finite and the predictions well-formed throughout. Where predictAndTrain is offered
 * (the engine's path) it is checked as well as trainBatch, on another instance.
 */
async function checkDegenerateBatch(settings: Settings, scenario: Scenario, kind: DegenerateKind): Promise<CheckOutcome> {
  const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 100, seed: 8, scenario });
  const tasks = source.knownTasks().map((name, index) => ({ name, index }));
  const probe = tasks.flatMap((t) => source.probe(t.name, 20) ?? []).map((s) => s.x);
  const first = build(settings, scenario, 6, source.outputUnits);
  const fused = typeof first.predictAndTrain === 'function';
  first.dispose();
  for (const path of fused ? (['trainBatch', 'predictAndTrain'] as const) : (['trainBatch'] as const)) {
    const strategy = build(settings, scenario, 6, source.outputUnits);
    const learn = async (task: TaskInfo, batch: readonly Sample[], what: string): Promise<void> => {
      if (path === 'predictAndTrain') {
        const { predictions } = await strategy.predictAndTrain!(task, labelled(batch));
        assertWellFormed(predictions, batch.length, `predictAndTrain's predictions for ${what}`);
      } else {
        await strategy.trainBatch(task, labelled(batch));
      }
      assertFiniteWeights(strategy, `after ${what} (${path})`);
    };
    try {
      for (const task of tasks) {
        const taskSamples = samples.filter((s) => s.task === task.name);
        await strategy.beginTask(task);
        await learn(task, degenerateBatch(kind, taskSamples), `${DEGENERATE_BATCHES[kind]} starting ${task.name}`);
        assertWellFormed(await strategy.predict(task, probe), probe.length, `predictions after ${DEGENERATE_BATCHES[kind]} (${path})`);
        for (const batch of batches(taskSamples.slice(0, 64), 32)) await learn(task, batch, `a regular batch after ${DEGENERATE_BATCHES[kind]}`);
        await strategy.endTask(task);
        assertFiniteWeights(strategy, `at the end of ${task.name} (${path})`);
      }
      for (const task of [...tasks, undefined]) assertWellFormed(await strategy.predict(task, probe), probe.length, `predictions for task ${task?.name ?? 'not given'} at the end (${path})`);
    } finally {
      strategy.dispose();
    }
  }
  return PASSED;
}

function assertFiniteWeights(strategy: Strategy, when: string): void {
  for (const [layer, weights] of strategy.layerWeights()) {
    const bad = weights.findIndex((w) => !Number.isFinite(w));
    assert.ok(bad < 0, `layer ${layer} has a non-finite weight (${weights[bad]} at ${bad}) ${when}`);
  }
}

/** One prediction per input; probabilities finite in [0, 1] summing to 1; the label among them. */
function assertWellFormed(predictions: readonly Prediction[], inputs: number, what: string): void {
  assert.equal(predictions.length, inputs, `${what}: one prediction per input`);
  predictions.forEach((p, i) => {
    const values = Object.values(p.probabilities);
    assert.ok(values.every((v) => Number.isFinite(v) && v >= 0 && v <= 1 + 1e-6), `${what}: prediction ${i} has probabilities outside [0, 1]: ${JSON.stringify(p.probabilities)}`);
    if (p.label === null) return;
    assert.ok(p.label in p.probabilities, `${what}: prediction ${i}'s label ${p.label} has no probability`);
    const sum = values.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-3, `${what}: prediction ${i}'s probabilities sum to ${sum}`);
  });
}
