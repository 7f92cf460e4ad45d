import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/core/rng';
import type { Scenario, TaskInfo } from '../../src/core/types';
import { LabelSpace } from '../../src/models/label-space';
import { MultiHeadMlp, unitsOf } from '../../src/models/mlp';
import { createOptimizer, growOptimizerSlots } from '../../src/models/optimizer-state';
import { NOTHING_LEARNED_YET } from '../../src/strategies/learning-helpers';
import { builtinStrategies, StrategyRegistry } from '../../src/strategies/registry';
import { strategy as synapticIntelligence } from '../../examples/strategies/synaptic-intelligence';
import type { LabelledBatch, Strategy, StrategyOptions, StrategyState } from '../../src/strategies/strategy';

/**
 * Heads that grow (issue 14): a label never seen adds an output unit between gradient steps, the
 * classes known before answer as they did, and everything kept per parameter grows with the head,
 * so that a checkpoint taken mid-growth continues identically and no tensor leaks.
 */

const INPUTS = 6;

/** Inputs in [0, 1] around a centre per label, so that every class is learnable (and a generator can model them). */
function batchOf(labels: readonly string[], n: number, rng: Rng): LabelledBatch {
  const centre = (label: string) => Array.from({ length: INPUTS }, (_, k) => ((label.charCodeAt(0) * 7 + k * 13) % 10) / 10);
  const ys = Array.from({ length: n }, (_, i) => labels[i % labels.length] as string);
  const xs = ys.map((y) => Float32Array.from(centre(y), (c) => Math.min(1, Math.max(0, c + (rng.next() - 0.5) * 0.2))));
  return { xs, ys };
}

function options(scenario: Scenario, params: Record<string, unknown> = {}, seed = 1): StrategyOptions {
  return { scenario, inputSize: INPUTS, hiddenLayers: [8], outputUnits: 0, optimizer: 'adam', learningRate: 0.01, stepsPerBatch: 2, seed, params };
}

/** Every tensor of a state, by name, as plain arrays (shapes included). */
function tensorsOf(state: StrategyState): Record<string, { shape: number[]; data: number[] }> {
  const out: Record<string, { shape: number[]; data: number[] }> = {};
  for (const [name, t] of Object.entries(state.tensors)) out[name] = { shape: [...t.shape], data: Array.from(t.data) };
  return out;
}

type Step = { kind: 'begin' | 'end'; task: TaskInfo } | { kind: 'train'; task: TaskInfo; batch: LabelledBatch; first: boolean };

/** Three tasks of two new classes each; a task's first batch has one class, the next ones both, so a head grows twice within a task. */
function plan(batchesPerTask: number): Step[] {
  const rng = new Rng(5);
  const steps: Step[] = [];
  [['a', 'b'], ['c', 'd'], ['e', 'f']].forEach((labels, index) => {
    const task = { name: `t${index + 1}`, index };
    steps.push({ kind: 'begin', task });
    for (let i = 0; i < batchesPerTask; i++) steps.push({ kind: 'train', task, batch: batchOf(i === 0 ? labels.slice(0, 1) : labels, 8, rng), first: i === 0 });
    steps.push({ kind: 'end', task });
  });
  return steps;
}

/**
 * Runs the plan on `original`; a checkpoint taken after task 2's first batch (a head that grows
 * again at the next batch) is imported into `copy`, which runs the rest of the plan too. After a
 * task's first batch (which creates the rebuilt optimizer's moments and the streamed Fisher),
 * no batch of the original may keep a tensor, whether it grows a head (every task's second
 * batch does) or not.
 */
async function runWithCheckpoint(name: string, original: Strategy, copy: Strategy, steps: readonly Step[]): Promise<void> {
  const checkpointAfter = steps.findIndex((s) => s.kind === 'train' && s.task.index === 1);
  const run = async (s: Strategy, step: Step, leakCheck: boolean) => {
    if (step.kind !== 'train') return step.kind === 'begin' ? s.beginTask(step.task) : s.endTask(step.task);
    const before = tf.memory().numTensors;
    const result = await s.trainBatch(step.task, step.batch);
    assert.equal(result.rejected, undefined, JSON.stringify(result));
    if (leakCheck && !step.first) assert.equal(tf.memory().numTensors, before, `${name}: tensors kept by a batch of ${step.task.name}`);
  };
  for (const [i, step] of steps.entries()) {
    await run(original, step, true);
    if (i === checkpointAfter) await copy.importState(await original.exportState());
    if (i > checkpointAfter) await run(copy, step, false);
  }
}

describe('heads that grow', () => {
  it('adding a unit leaves the logits of the classes known before unchanged', () => {
    const model = new MultiHeadMlp({ inputSize: INPUTS, hiddenLayers: [8, 5], outputUnits: 0 }, 4);
    const x = tf.randomUniform([7, INPUTS], 0, 1, 'float32', 9) as tf.Tensor2D;
    try {
      const head = model.addHead('shared', new LabelSpace());
      assert.equal(unitsOf(head), 0, 'a head with no outputUnits starts empty');
      for (const label of ['a', 'b']) head.labels.add(label);
      assert.deepEqual(model.growHead('shared', 2), { layer: 'head-shared', from: 0, to: 2 });
      const before = tf.tidy(() => model.forward(x, head).logits.arraySync());
      head.labels.add('c');
      model.growHead('shared', 3);
      assert.equal(unitsOf(head), 3);
      const after = tf.tidy(() => model.forward(x, head).logits.arraySync());
      assert.deepEqual(
        after.map((row) => row.slice(0, 2)),
        before,
        'old logits bit-identical',
      );
      const bias = head.layer.bias.arraySync();
      assert.equal(bias[2], 0, 'a new unit starts with a zero bias');
      const limit = Math.sqrt(6 / (5 + 3));
      const kernel = head.layer.kernel.arraySync();
      assert.ok(kernel.every((row) => Math.abs(row[2] as number) <= limit && row[2] !== 0), 'the new column is Glorot-uniform for the grown width');
      assert.throws(() => model.growHead('shared', 3), /can only grow/);
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it("widens Adam's moments of a grown variable with zeros, the old ones kept", async () => {
    const v = tf.variable(tf.ones([3, 2]));
    const optimizer = createOptimizer({ optimizer: 'adam', learningRate: 0.1 });
    let wider: tf.Variable | undefined;
    try {
      optimizer.applyGradients([{ name: v.name, tensor: tf.fill([3, 2], 0.5) }]);
      wider = tf.variable(tf.concat([v, tf.zeros([3, 1])], 1));
      const count = tf.memory().numTensors;
      growOptimizerSlots(optimizer, 0, wider);
      assert.equal(tf.memory().numTensors, count, 'the old moments are freed');
      // [iteration count, first moment, second moment] of the one position.
      const weights = await optimizer.getWeights();
      for (const m of [weights[1], weights[2]]) {
        const rows = m?.tensor.arraySync() as number[][];
        assert.deepEqual(rows.map((r) => r.length), [3, 3, 3]);
        assert.ok(rows.every((r) => r[0] !== 0 && r[1] !== 0 && r[2] === 0), JSON.stringify(rows));
      }
      tf.dispose(weights.map((w) => w.tensor));
      optimizer.applyGradients([{ name: wider.name, tensor: tf.fill([3, 3], 0.5) }]);
    } finally {
      optimizer.dispose();
      v.dispose();
      wider?.dispose();
    }
  });

  it('a pre-sized head grows past outputUnits; model.maxClasses refuses the labels beyond it, alone', async () => {
    const grown = builtinStrategies().get('ewc')({ ...options('class-incremental'), outputUnits: 2 });
    const capped = builtinStrategies().get('ewc')({ ...options('class-incremental'), outputUnits: 2, maxClasses: 3 });
    const task = { name: 't', index: 0 };
    const batch = batchOf(['a', 'b', 'c', 'd'], 8, new Rng(2));
    try {
      for (const s of [grown, capped]) await s.beginTask(task);
      assert.equal((await grown.trainBatch(task, batch)).rejected, undefined);
      assert.deepEqual(Object.keys((await grown.predict(undefined, batch.xs.slice(0, 1)))[0]?.probabilities ?? {}), ['a', 'b', 'c', 'd']);
      const { rejected } = await capped.trainBatch(task, batch);
      assert.deepEqual(rejected?.map((r) => [r.index, r.code]), [[3, 'label-capacity'], [7, 'label-capacity']]);
      assert.match(rejected?.[0]?.reason ?? '', /"d" would be class 4 .* at most 3 output units \(model\.maxClasses\)/);
    } finally {
      grown.dispose();
      capped.dispose();
    }
  });

  it('reads a checkpoint written before heads grew (the width kept as labels.capacity)', async () => {
    const original = builtinStrategies().get('finetune')({ ...options('class-incremental'), outputUnits: 4 });
    const copy = builtinStrategies().get('finetune')({ ...options('class-incremental'), outputUnits: 4 });
    const task = { name: 't', index: 0 };
    const batch = batchOf(['a', 'b'], 8, new Rng(2));
    try {
      await original.beginTask(task);
      await original.trainBatch(task, batch);
      const state = await original.exportState();
      const model = state.meta.model as { heads: { key: string; labels: { labels: string[] } }[] };
      const old = { ...model, growthSeed: undefined, heads: model.heads.map((h) => ({ key: h.key, labels: { capacity: 4, labels: h.labels.labels } })) };
      await copy.importState({ ...state, meta: { ...state.meta, model: old } });
      assert.deepEqual(await copy.predict(undefined, batch.xs), await original.predict(undefined, batch.xs));
    } finally {
      original.dispose();
      copy.dispose();
    }
  });

  // The built-ins, and a user's regularizer written against the public API (growParameters).
  const registry = builtinStrategies();
  registry.register(synapticIntelligence as Parameters<StrategyRegistry['register']>[0]);
  for (const name of ['finetune', 'l2', 'ewc', 'online-ewc', 'replay', 'dgr', 'si']) {
    it(`${name}: class-incremental from no units to 6; state consistent; a checkpoint mid-growth continues identically; no leak`, async () => {
      const params = name === 'dgr' ? { latent: 3, generatorHidden: [8] } : name === 'replay' ? { budget: 40 } : {};
      const baseline = tf.memory().numTensors;
      const original = registry.get(name)(options('class-incremental', params, 1));
      const copy = registry.get(name)(options('class-incremental', params, 77));
      try {
        const probe = batchOf(['a', 'b', 'c', 'd', 'e', 'f'], 12, new Rng(8)).xs;
        assert.deepEqual((await original.predict(undefined, probe.slice(0, 1)))[0], { label: null, probabilities: {}, reason: NOTHING_LEARNED_YET });
        await runWithCheckpoint(name, original, copy, plan(5));

        const state = await original.exportState();
        const model = state.meta.model as { heads: { key: string; labels: { labels: string[] }; units: number }[] };
        assert.deepEqual(model.heads, [{ key: 'shared', labels: { labels: ['a', 'b', 'c', 'd', 'e', 'f'] }, units: 6 }], 'one unit per class, in order of first sight');
        // Everything kept per parameter of the head has its width (DGR's previous solver too: the model as task 3 ended).
        const heads = Object.entries(state.tensors).filter(([key]) => /head-shared\.(kernel|bias)$/.test(key));
        assert.ok(heads.length >= 2, heads.map(([key]) => key).join(', '));
        for (const [key, t] of heads) assert.equal(t.shape[t.shape.length - 1], 6, `${key}: [${t.shape}]`);
        const slots = Object.entries(state.tensors).filter(([key]) => key.startsWith('optimizer.') && key !== 'optimizer.0');
        assert.ok(slots.some(([, t]) => t.shape.length === 2 && t.shape[1] === 6), "Adam's moments of the head are as wide");

        assert.deepEqual(tensorsOf(await copy.exportState()), tensorsOf(state), 'the copy restored mid-growth continued bit-identically');
        assert.deepEqual(await copy.predict(undefined, probe), await original.predict(undefined, probe));
        const labels = (await original.predict(undefined, probe)).map((p) => p.label);
        assert.ok(labels.every((l) => l !== null && 'abcdef'.includes(l)), JSON.stringify(labels));
      } finally {
        original.dispose();
        copy.dispose();
      }
      assert.equal(tf.memory().numTensors, baseline, `${name}: every tensor freed`);
    });
  }

  for (const [name, scenario, params] of [
    ['ewc', 'task-incremental', {}],
    ['replay', 'task-incremental', { budget: 40 }],
    ['dgr', 'task-incremental', { latent: 3, generatorHidden: [8] }],
    ['joint', 'class-incremental', {}],
    ['replay', 'domain-incremental', { budget: 40 }],
    ['progressive', 'task-incremental', {}],
    ['den', 'task-incremental', { selectionBatches: 1, expansionPatience: 2, lossThreshold: 0 }],
    ['den', 'class-incremental', { selectionBatches: 1, expansionPatience: 2, lossThreshold: 0 }],
  ] as const) {
    it(`${name} (${scenario}): heads grow from no units to a unit per class, a checkpoint mid-growth continues identically, no leak`, async () => {
      const baseline = tf.memory().numTensors;
      const original = builtinStrategies().get(name)(options(scenario, params, 1));
      const copy = builtinStrategies().get(name)(options(scenario, params, 77));
      try {
        await runWithCheckpoint(name, original, copy, plan(6));
        assert.deepEqual(tensorsOf(await copy.exportState()), tensorsOf(await original.exportState()), 'the copy restored mid-growth continued bit-identically');
        const probe = batchOf(['a', 'b', 'c', 'd', 'e', 'f'], 12, new Rng(8)).xs;
        const tasks = scenario === 'task-incremental' ? [0, 1, 2].map((index) => ({ name: `t${index + 1}`, index })) : [undefined];
        for (const task of tasks) {
          const answers = await original.predict(task, probe);
          assert.deepEqual(await copy.predict(task, probe), answers);
          const known = task ? ['ab', 'cd', 'ef'][task.index] : 'abcdef';
          assert.ok(answers.every((p) => p.label !== null && known?.includes(p.label) && Object.keys(p.probabilities).length === known.length), JSON.stringify(answers[0]));
        }
      } finally {
        original.dispose();
        copy.dispose();
      }
      assert.equal(tf.memory().numTensors, baseline, `${name}: every tensor freed`);
    });
  }
});
