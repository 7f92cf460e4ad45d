import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/core/rng';
import type { Sample, Scenario, TaskInfo } from '../../src/core/types';
import { NoRegularizer } from '../../src/strategies/finetune';
import { MlpStrategy } from '../../src/strategies/mlp-strategy';
import { builtinStrategies } from '../../src/strategies/registry';
import type { Rehearsal, RehearsalContext, ReplayBatch } from '../../src/strategies/rehearsal';
import { SampleBuffer } from '../../src/strategies/replay';
import type { Strategy, StrategyOptions } from '../../src/strategies/strategy';
import { batches, takeSamples } from '../helpers/mnist-task';

const registry = builtinStrategies();

function options(scenario: Scenario, over: Partial<StrategyOptions> = {}): StrategyOptions {
  return { scenario, inputSize: 784, hiddenLayers: [100, 100], outputUnits: 10, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, seed: 3, params: {}, ...over };
}

async function train(strategy: Strategy, task: TaskInfo, samples: readonly Sample[], batchSize = 32): Promise<void> {
  for (const batch of batches(samples, batchSize)) await strategy.trainBatch(task, { xs: batch.map((s) => s.x), ys: batch.map((s) => s.y as string) });
}

async function accuracy(strategy: Strategy, task: TaskInfo | undefined, probe: readonly Sample[]): Promise<number> {
  const predictions = await strategy.predict(task, probe.map((s) => s.x));
  return predictions.filter((p, i) => p.label === probe[i]?.y).length / probe.length;
}

const features = (i: number) => () => Float32Array.of(i);

describe('replay buffer', () => {
  it('reservoir sampling keeps every part of the stream equally often and never exceeds the budget', () => {
    const budget = 500;
    const offered = 10_000;
    const buffer = new SampleBuffer(budget, false);
    const rng = new Rng(17);
    for (let i = 0; i < offered; i++) {
      buffer.offer('t', String(i % 10), features(i), rng);
      assert.ok(buffer.size <= budget, `size ${buffer.size} after ${i + 1} offers`);
    }
    assert.equal(buffer.size, budget);
    assert.equal(buffer.seen, offered);
    // Each tenth of the stream should hold budget / 10 = 50 samples (sd about 6.7); a buffer that
    // kept the first or the last samples would put 500 or 0 in the extreme tenths.
    const perTenth = new Array<number>(10).fill(0);
    for (const s of buffer.stored()) perTenth[Math.floor((s.x[0] as number) / (offered / 10))]! += 1;
    for (const [tenth, n] of perTenth.entries()) assert.ok(n >= 25 && n <= 75, `tenth ${tenth} of the stream holds ${n} samples: ${perTenth}`);
  });

  it('class-balanced mode keeps small classes whole and gives large classes equal quotas', () => {
    const budget = 300;
    // 2000 of class a, 600 of c, 100 of b, shuffled into one stream.
    const stream = new Rng(5).shuffle([...Array<string>(2000).fill('a'), ...Array<string>(600).fill('c'), ...Array<string>(100).fill('b')]);
    const balanced = new SampleBuffer(budget, true);
    const reservoir = new SampleBuffer(budget, false);
    const rng = new Rng(9);
    stream.forEach((label, i) => {
      balanced.offer('t', label, features(i), rng);
      reservoir.offer('t', label, features(i), rng);
      assert.ok(balanced.size <= budget);
    });
    const count = (buffer: SampleBuffer, label: string) => buffer.stored().filter((s) => s.label === label).length;
    assert.equal(balanced.size, budget);
    assert.equal(count(balanced, 'b'), 100, 'the small class keeps all its samples');
    assert.ok(Math.abs(count(balanced, 'a') - count(balanced, 'c')) <= 1, `a ${count(balanced, 'a')} vs c ${count(balanced, 'c')}`);
    assert.ok(count(reservoir, 'b') < 40, `plain reservoir keeps b in proportion to the stream (${count(reservoir, 'b')})`);
  });

  it('stores a sample offered again under the same id once (Kafka redelivery, bench revisits), and forgets the id when it is evicted', () => {
    const buffer = new SampleBuffer(3, false);
    const rng = new Rng(5);
    for (let pass = 0; pass < 4; pass++) for (let i = 0; i < 3; i++) buffer.offer('t', String(i), features(i), rng, `id-${i}`);
    assert.equal(buffer.size, 3);
    assert.equal(buffer.seen, 3, 'repeated ids do not count as new offers');
    assert.deepEqual(buffer.stored().map((s) => s.id).sort(), ['id-0', 'id-1', 'id-2']);
    // Samples without ids are never deduplicated.
    const anonymous = new SampleBuffer(10, false);
    for (let k = 0; k < 4; k++) anonymous.offer('t', '0', features(0), rng);
    assert.equal(anonymous.size, 4);
    // Eviction frees the id: after many new samples, an evicted id is stored again when offered.
    for (let i = 3; i < 200; i++) buffer.offer('t', String(i % 10), features(i), rng, `id-${i}`);
    const evicted = ['id-0', 'id-1', 'id-2'].find((id) => !buffer.stored().some((s) => s.id === id));
    assert.ok(evicted, 'reservoir sampling evicted one of the first samples');
    const before = buffer.seen;
    buffer.offer('t', '0', features(0), rng, evicted);
    assert.equal(buffer.seen, before + 1, 'an evicted id is a new offer again');
  });

  it('keeps sample ids through export and import, so a restored buffer still deduplicates', () => {
    const buffer = new SampleBuffer(Infinity, false);
    const rng = new Rng(9);
    for (let i = 0; i < 5; i++) buffer.offer('t', String(i), () => Float32Array.of(i, i), rng, `s${i}`);
    const state = buffer.exportState(2);
    const restored = new SampleBuffer(Infinity, false);
    restored.importState(state.meta, state.tensors.x, 2);
    for (let i = 0; i < 5; i++) restored.offer('t', String(i), () => Float32Array.of(i, i), rng, `s${i}`);
    assert.equal(restored.size, 5);
    restored.offer('t', '9', () => Float32Array.of(9, 9), rng, 's9');
    assert.equal(restored.size, 6);
  });

  it('draws distinct samples, all of them when asked for more than it holds', () => {
    const buffer = new SampleBuffer(50, false);
    const rng = new Rng(1);
    for (let i = 0; i < 50; i++) buffer.offer('t', 'a', features(i), rng);
    const drawn = buffer.draw(20, rng).map((s) => s.x[0]);
    assert.equal(new Set(drawn).size, 20);
    assert.equal(buffer.draw(80, rng).length, 50);
  });
});

/** A rehearsal a test steers: replays what `plan` returns for each step. */
class ScriptedRehearsal implements Rehearsal {
  constructor(private readonly plan: (context: RehearsalContext, batchSize: number) => ReplayBatch | undefined) {}
  replay(context: RehearsalContext, batchSize: number): ReplayBatch | undefined {
    return this.plan(context, batchSize);
  }
  exportState() {
    return { meta: {}, tensors: {} };
  }
  importState(): void {}
  dispose(): void {}
}

describe('rehearsal hook in MlpStrategy', () => {
  const scenario = 'class-incremental';
  let samples: Sample[];
  before(async () => {
    ({ samples } = await takeSamples({ dataset: 'split-mnist', tasks: 1, samplesPerTask: 320, seed: 2, scenario }));
  });
  const task = { name: 'task-1', index: 0 };

  /** Trains finetune and an MlpStrategy with the given rehearsal on the same batches; returns both. */
  async function side(rehearsal: Rehearsal, over: Partial<StrategyOptions> = {}): Promise<{ plain: Strategy; replaying: MlpStrategy; losses: [number, number][] }> {
    const plain = registry.get('finetune')(options(scenario, over));
    const replaying = new MlpStrategy('scripted', options(scenario, over), new NoRegularizer(), rehearsal);
    const losses: [number, number][] = [];
    for (const s of [plain, replaying]) await s.beginTask({ ...task, name: samples[0]!.task });
    for (const batch of batches(samples, 32)) {
      const b = { xs: batch.map((s) => s.x), ys: batch.map((s) => s.y as string) };
      const t = { ...task, name: samples[0]!.task };
      losses.push([(await plain.trainBatch(t, b)).loss, (await replaying.trainBatch(t, b)).loss]);
    }
    return { plain, replaying, losses };
  }

  /** Replays the samples at `offset` of the stream (the batch about to be trained, with offset 0). */
  function replayOf(targets: (context: RehearsalContext, x: tf.Tensor2D, units: number[]) => tf.Tensor2D, currentWeight?: number, temperature?: number) {
    let offset = 0;
    return new ScriptedRehearsal((context, batchSize) => {
      const batch = samples.slice(offset, offset + batchSize);
      offset += batchSize;
      const x = tf.tensor2d(batch.map((s) => Array.from(s.x)));
      const units = batch.map((s) => context.head.labels.unitOf(s.y as string) as number);
      return { groups: [{ head: context.head.key, x, targets: targets(context, x, units), ...(temperature ? { temperature } : {}) }], ...(currentWeight !== undefined ? { currentWeight } : {}) };
    });
  }
  const oneHot = (context: RehearsalContext, _x: tf.Tensor2D, units: number[]) => tf.tidy(() => tf.oneHot(tf.tensor1d(units, 'int32'), context.head.labels.size).toFloat() as tf.Tensor2D);

  it('currentWeight 1 ignores the replayed samples: the model learns exactly what finetune learns', async () => {
    const junk = (context: RehearsalContext, x: tf.Tensor2D) => tf.tidy(() => tf.oneHot(tf.zeros([x.shape[0]], 'int32'), context.head.labels.size).toFloat() as tf.Tensor2D);
    const { plain, replaying, losses } = await side(replayOf(junk, 1));
    try {
      const probe = samples.slice(0, 64).map((s) => s.x);
      assert.deepEqual(await replaying.predict(undefined, probe), await plain.predict(undefined, probe));
      for (const [a, b] of losses) assert.equal(b, a, 'TrainResult.loss is the current batch loss');
    } finally {
      plain.dispose();
      replaying.dispose();
    }
  });

  it('currentWeight 0 with the batch itself replayed learns what finetune learns (weighted CE over replay groups)', async () => {
    const { plain, replaying } = await side(replayOf(oneHot, 0));
    try {
      const probe = samples.slice(0, 64).map((s) => s.x);
      const [p, r] = [await plain.predict(undefined, probe), await replaying.predict(undefined, probe)];
      p.forEach((q, i) => {
        for (const [label, v] of Object.entries(q.probabilities)) assert.ok(Math.abs(v - r[i]!.probabilities[label]!) < 1e-3, `${v} vs ${r[i]!.probabilities[label]}`);
      });
    } finally {
      plain.dispose();
      replaying.dispose();
    }
  });

  it('distillation at temperature T divides the logits by T: self-distillation at T has no gradient', async () => {
    // targets = softmax(logits / T) of the model itself: CE(targets, softmax(logits / T)) is at its
    // minimum, so with currentWeight 0 (SGD, no momentum) the weights must not move.
    const selfTargets = (context: RehearsalContext, x: tf.Tensor2D) => tf.tidy(() => tf.softmax(tf.div(context.model.forward(x, context.head).logits, 2)) as tf.Tensor2D);
    const sgd = { optimizer: 'sgd' as const, learningRate: 0.1 };
    const still = await side(replayOf(selfTargets, 0, 2), sgd);
    const moved = await side(replayOf(selfTargets, 0, 1), sgd); // targets at T=2 but logits at T=1: a real gradient
    try {
      const drift = async (s: MlpStrategy) => {
        const initial = new MlpStrategy('initial', options(scenario, sgd), new NoRegularizer());
        const [w0, w1] = [initial.layerWeights().get('hidden-1')!, s.layerWeights().get('hidden-1')!];
        initial.dispose();
        return Math.max(...w1.map((v, i) => Math.abs(v - w0[i]!)));
      };
      assert.ok((await drift(still.replaying)) < 1e-5, `weights moved by ${await drift(still.replaying)}`);
      assert.ok((await drift(moved.replaying)) > 1e-3, `weights moved by only ${await drift(moved.replaying)}`);
    } finally {
      for (const s of [still.plain, still.replaying, moved.plain, moved.replaying]) s.dispose();
    }
  });

  it('refuses replay groups that do not fit the head', async () => {
    const wrong = new ScriptedRehearsal((context) => ({ groups: [{ head: context.head.key, x: tf.zeros([2, 784]) as tf.Tensor2D, targets: tf.zeros([2, context.head.labels.size + 1]) as tf.Tensor2D }] }));
    const s = new MlpStrategy('scripted', options(scenario), new NoRegularizer(), wrong);
    try {
      await s.beginTask(task);
      const before = tf.memory().numTensors;
      await assert.rejects(s.trainBatch(task, { xs: [samples[0]!.x], ys: ['0'] }), /targets for head "shared" are \[2,2\], expected \[2,1\]/);
      assert.equal(tf.memory().numTensors, before, 'the failed step freed the batch and the replayed tensors');
    } finally {
      s.dispose();
    }
  });
});

describe('replay and joint strategies', () => {
  it('class-incremental split-MNIST: replay keeps task 1 far better than finetune, joint at least as well', async () => {
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 1500, seed: 21, scenario: 'class-incremental' });
    const [first, second] = source.knownTasks() as [string, string];
    const probe = source.probe(first, 400) as Sample[];
    const result: Record<string, number> = {};
    for (const name of ['finetune', 'replay', 'joint']) {
      const strategy = registry.get(name)(options('class-incremental', { seed: 4, outputUnits: source.outputUnits }));
      try {
        for (const [index, taskName] of [first, second].entries()) {
          const task = { name: taskName, index };
          await strategy.beginTask(task);
          await train(strategy, task, samples.filter((s) => s.task === taskName));
          await strategy.endTask(task);
        }
        result[name] = await accuracy(strategy, undefined, probe);
      } finally {
        strategy.dispose();
      }
    }
    process.stderr.write(`task-1 accuracy after task 2: ${JSON.stringify(result)}\n`);
    assert.ok(result.finetune! < 0.2, `finetune forgets task 1 in class-IL (${result.finetune})`);
    assert.ok(result.replay! > 0.8, `replay remembers task 1 (${result.replay})`);
    assert.ok(result.replay! - result.finetune! > 0.6, `replay ${result.replay} vs finetune ${result.finetune}`);
    assert.ok(result.joint! >= result.replay! - 0.05, `joint ${result.joint} vs replay ${result.replay}`);
  });

  it('task-incremental: replayed samples train old heads through the trunk; buffer and diagnostics follow the budget', async () => {
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 300, seed: 8, scenario: 'task-incremental' });
    const [first, second] = source.knownTasks() as [string, string];
    const strategy = registry.get('replay')(options('task-incremental', { params: { budget: 200, replayBatchSize: 16 } }));
    try {
      const t1 = { name: first, index: 0 };
      const t2 = { name: second, index: 1 };
      await strategy.beginTask(t1);
      await train(strategy, t1, samples.filter((s) => s.task === first));
      await strategy.endTask(t1);
      const headBefore = strategy.layerWeights().get(`head-${first}`)!;
      await strategy.beginTask(t2);
      await train(strategy, t2, samples.filter((s) => s.task === second));
      const headAfter = strategy.layerWeights().get(`head-${first}`)!;
      assert.ok(headAfter.some((v, i) => v !== headBefore[i]), "task 1's head learned from replayed task-1 samples during task 2");
      const diagnostics = Object.fromEntries(strategy.diagnostics!().map((d) => [d.name, d.value]));
      assert.equal(diagnostics.replay_buffer_fill, 200);
      assert.equal(diagnostics.replay_samples_per_batch, 16);
    } finally {
      strategy.dispose();
    }
  });

  it('finetune in task-incremental learning leaves old heads untouched (the replay test above is not vacuous)', async () => {
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 100, seed: 8, scenario: 'task-incremental' });
    const [first, second] = source.knownTasks() as [string, string];
    const strategy = registry.get('finetune')(options('task-incremental'));
    try {
      await strategy.beginTask({ name: first, index: 0 });
      await train(strategy, { name: first, index: 0 }, samples.filter((s) => s.task === first));
      const headBefore = strategy.layerWeights().get(`head-${first}`)!;
      await strategy.beginTask({ name: second, index: 1 });
      await train(strategy, { name: second, index: 1 }, samples.filter((s) => s.task === second));
      assert.deepEqual(strategy.layerWeights().get(`head-${first}`), headBefore);
    } finally {
      strategy.dispose();
    }
  });

  for (const scenario of ['task-incremental', 'class-incremental'] as const) {
    it(`leaks no tensor across three task boundaries with predictAndTrain and a checkpoint round trip (${scenario})`, async () => {
      const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 3, samplesPerTask: 160, seed: 6, scenario });
      const before = tf.memory().numTensors;
      for (const name of ['replay', 'joint']) {
        const strategy = registry.get(name)(options(scenario, { params: name === 'replay' ? { budget: 100, classBalanced: true } : {} }));
        const steadyPerTask: number[] = [];
        for (const [index, taskName] of source.knownTasks().entries()) {
          const task = { name: taskName, index };
          const own = samples.filter((s) => s.task === taskName);
          await strategy.beginTask(task);
          await train(strategy, task, own.slice(0, 32)); // optimizer slots exist from here on
          const steady = tf.memory().numTensors;
          for (const batch of batches(own.slice(32), 32)) await strategy.predictAndTrain!(task, { xs: batch.map((s) => s.x), ys: batch.map((s) => s.y as string) });
          await strategy.predict(undefined, own.slice(0, 10).map((s) => s.x));
          assert.equal(tf.memory().numTensors, steady, `${name}: tensors held after training task ${index + 1}`);
          await strategy.importState(await strategy.exportState());
          assert.equal(tf.memory().numTensors, steady, `${name}: tensors held after a checkpoint round trip in task ${index + 1}`);
          await strategy.endTask(task);
          steadyPerTask.push(steady);
        }
        strategy.dispose();
        assert.equal(tf.memory().numTensors, before, `${name}: tensors left after dispose (steady counts per task: ${steadyPerTask})`);
      }
    });
  }
});
