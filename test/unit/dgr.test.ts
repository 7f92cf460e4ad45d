import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import { main } from '../../src/cli/main';
import { ConfigError, DataFormatError, InvariantError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';
import { SCENARIOS, type Sample, type Scenario, type TaskInfo } from '../../src/core/types';
import { encodeGrayscalePng } from '../../src/data/png';
import { CHECKPOINT_FORMAT, readCheckpoint, writeCheckpoint } from '../../src/engine/checkpoint';
import { DenseStack, leakyRelu, type Generator } from '../../src/models/generator';
import { Vae } from '../../src/models/vae';
import { WganGp } from '../../src/models/wgan-gp';
import { createDgr, DgrStrategy, GenerativeReplay, labelEntropyBits, readDgrParams } from '../../src/strategies/dgr';
import { createFinetune } from '../../src/strategies/finetune';
import type { RehearsalContext } from '../../src/strategies/rehearsal';
import type { Strategy, StrategyOptions, StrategyState } from '../../src/strategies/strategy';
import { batches, takeSamples } from '../helpers/mnist-task';
import { assertFiniteAfterOneLabel, learnOneLabel, oneLabelInputs, oneLabelOptions } from '../helpers/one-label';

function options(scenario: Scenario, over: Partial<StrategyOptions> = {}): StrategyOptions {
  return { scenario, inputSize: 784, hiddenLayers: [100, 100], outputUnits: 10, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, seed: 3, params: {}, ...over };
}

async function train(strategy: Strategy, task: TaskInfo, samples: readonly Sample[], batchSize = 32): Promise<void> {
  for (const batch of batches(samples, batchSize)) await strategy.trainBatch(task, { xs: batch.map((s) => s.x), ys: batch.map((s) => s.y as string) });
}

async function accuracy(strategy: Strategy, probe: readonly Sample[]): Promise<number> {
  const predictions = await strategy.predict(undefined, probe.map((s) => s.x));
  return predictions.filter((p, i) => p.label === probe[i]?.y).length / probe.length;
}

function matrix(samples: readonly Sample[]): tf.Tensor2D {
  return tf.tensor2d(samples.flatMap((s) => [...s.x]), [samples.length, 784]);
}

/** Runs the CLI with stdout and stderr captured. */
async function quietly(run: () => Promise<number>): Promise<{ code: number; printed: string }> {
  const [out, err] = [process.stdout.write, process.stderr.write];
  let printed = '';
  const capture = ((chunk: string) => ((printed += chunk), true)) as typeof process.stdout.write;
  process.stdout.write = capture;
  process.stderr.write = capture;
  try {
    return { code: await run(), printed };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

/** How many predictions name each label. */
const count = (ps: { label: string | null }[]) => ps.reduce<Record<string, number>>((acc, p) => ((acc[String(p.label)] = (acc[String(p.label)] ?? 0) + 1), acc), {});

const SHAPE = { inputSize: 784, hiddenLayers: [64, 32], latent: 16 };

describe('generators of deep generative replay', () => {
  let digits: Sample[];
  before(async () => {
    digits = (await takeSamples({ dataset: 'split-mnist', tasks: 1, samplesPerTask: 128, seed: 2, scenario: 'class-incremental' })).samples;
  });

  const kinds: [string, (seed: number) => Generator, number][] = [
    ['vae', (seed) => new Vae(SHAPE, 0.001, seed), 40],
    ['wgan-gp', (seed) => new WganGp(SHAPE, 0.001, seed), 4],
  ];
  for (const [kind, create, steps] of kinds) {
    it(`${kind}: trains on a weighted mix, exports and imports its whole state, and frees every tensor`, async () => {
      const before = tf.memory().numTensors;
      const real = matrix(digits.slice(0, 64));
      const replayed = matrix(digits.slice(64, 96));
      const generator = create(1);
      const copy = create(2);
      try {
        const rng = new Rng(5);
        const first = generator.train([{ x: real, weight: 0.5 }, { x: replayed, weight: 0.5 }], rng, true) as number;
        const steady = tf.memory().numTensors;
        let last = first;
        for (let i = 0; i < steps; i++) last = generator.train([{ x: real, weight: 0.5 }, { x: replayed, weight: 0.5 }], rng, i === steps - 1) ?? last;
        assert.equal(tf.memory().numTensors, steady, 'training steps keep no tensor');
        assert.ok(Number.isFinite(first) && Number.isFinite(last), `losses ${first} -> ${last}`);
        // The VAE's per-pixel loss must fall on a fixed batch; a GAN's critic loss need not.
        if (kind === 'vae') assert.ok(last < first * 0.8, `VAE loss ${first} -> ${last}`);

        const sample = generator.sample(10, new Rng(9));
        assert.deepEqual(sample.shape, [10, 784]);
        const values = sample.dataSync();
        sample.dispose();
        assert.ok(values.every((v) => v >= 0 && v <= 1), 'samples are pixel intensities in [0, 1]');

        const exported = await generator.exportState('g');
        await copy.importState('g', exported);
        const imported = tf.memory().numTensors;
        await copy.importState('g', exported);
        assert.equal(tf.memory().numTensors, imported, 'import frees what it replaces');
        // Same weights and optimizer moments: the next step and the samples after it agree exactly.
        generator.train([{ x: real, weight: 1 }], new Rng(7), false);
        copy.train([{ x: real, weight: 1 }], new Rng(7), false);
        const [a, b] = [generator.sample(5, new Rng(3)), copy.sample(5, new Rng(3))];
        assert.deepEqual(b.dataSync(), a.dataSync(), 'samples after a step');
        tf.dispose([a, b]);

        const frozen = generator.freeze();
        generator.train([{ x: real, weight: 1 }], new Rng(8), false);
        const [c, d, e] = [frozen.sample(5, new Rng(3)), generator.sample(5, new Rng(3)), copy.sample(5, new Rng(3))];
        const [frozenValues, trainedValues] = [c.dataSync(), d.dataSync()];
        assert.deepEqual(frozenValues, e.dataSync(), 'the frozen copy samples as the generator did when frozen');
        assert.ok(frozenValues.some((v, i) => v !== trainedValues[i]), 'the frozen copy does not follow later training');
        tf.dispose([c, d, e]);
        frozen.dispose();
      } finally {
        generator.dispose();
        generator.dispose();
        copy.dispose();
        tf.dispose([real, replayed]);
      }
      assert.equal(tf.memory().numTensors, before, 'tensors left after dispose');
    });
  }

  it('the critic is twice differentiable: the gradient penalty has the gradient finite differences give', () => {
    const before = tf.memory().numTensors;
    const critic = DenseStack.create('critic', [4, 3, 1], new Rng(1));
    const x = tf.randomNormal([5, 4], 0, 1, 'float32', 3);
    const penalty = () =>
      tf.tidy(() => {
        const g = tf.grad((input: tf.Tensor) => tf.sum(critic.forward(input as tf.Tensor2D, leakyRelu(0.2))))(x);
        return tf.mean(tf.square(tf.sub(tf.sqrt(tf.sum(tf.square(g), 1)), 1))) as tf.Scalar;
      });
    const kernel = critic.layers[0]!.kernel;
    const { grads, value } = tf.variableGrads(penalty, [kernel]);
    const analytic = (grads[kernel.name] as tf.Tensor).arraySync() as number[][];
    const original = kernel.clone();
    const eps = 1e-2;
    for (const [i, j] of [[0, 0], [2, 1], [3, 2]] as const) {
      const at = (delta: number) => {
        tf.tidy(() => kernel.assign(tf.add(original, tf.scatterND([[i, j]], [delta], original.shape))));
        const p = penalty();
        const v = p.dataSync()[0] as number;
        p.dispose();
        return v;
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      assert.ok(Math.abs(numeric - analytic[i]![j]!) < 1e-2 * Math.max(1, Math.abs(numeric)), `d/dW[${i},${j}]: numeric ${numeric}, tf ${analytic[i]![j]}`);
    }
    tf.dispose([original, x, value, ...Object.values(grads)]);
    critic.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
});

describe('dgr strategy', () => {
  it('validates its parameters, naming the key', () => {
    const key = (params: Record<string, unknown>) => {
      try {
        readDgrParams(options('class-incremental', { params }));
        return undefined;
      } catch (error) {
        assert.ok(error instanceof ConfigError, String(error));
        return error.key;
      }
    };
    assert.equal(key({ generatorHiden: [10] }), 'strategy.params.generatorHiden');
    assert.equal(key({ currentWeight: 0 }), 'strategy.params.currentWeight');
    assert.equal(key({ currentWeight: '1/n' }), 'strategy.params.currentWeight');
    assert.equal(key({ generatorHidden: [] }), 'strategy.params.generatorHidden');
    assert.equal(key({ generator: 'gan' }), 'strategy.params.generator');
    assert.equal(key({ temperature: 0 }), 'strategy.params.temperature');
    assert.equal(key({ currentWeight: 0.3, generatorHidden: [20], generator: 'wgan-gp', distill: true }), undefined);
    const defaults = readDgrParams(options('class-incremental', { stepsPerBatch: 4, hiddenLayers: [30, 20] }));
    assert.deepEqual(defaults, { generator: 'vae', latent: 100, distill: false, temperature: 2, currentWeight: 'inverse-tasks', generatorSteps: 4, generatorLearningRate: 0.001, generatorHidden: [30, 20] });
  });

  /** A class-IL (or task-IL) DGR after one task of digits 0/1 and one batch of task 2 (digits 2/3). */
  async function afterOneTask(scenario: Scenario, params: Record<string, unknown>) {
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 160, seed: 4, scenario });
    const opts = options(scenario, { outputUnits: source.outputUnits, hiddenLayers: [32, 32], params: { latent: 8, ...params } });
    const plugin = new GenerativeReplay(readDgrParams(opts), opts);
    const strategy = new DgrStrategy(opts, plugin);
    const [first, second] = source.knownTasks() as [string, string];
    const t1 = { name: first, index: 0 };
    const t2 = { name: second, index: 1 };
    await strategy.beginTask(t1);
    await train(strategy, t1, samples.filter((s) => s.task === first));
    await strategy.endTask(t1);
    await strategy.beginTask(t2);
    await train(strategy, t2, samples.filter((s) => s.task === second).slice(0, 32));
    const head = strategy.model.head(scenario === 'task-incremental' ? second : 'shared');
    const context: RehearsalContext = { model: strategy.model, head, task: t2, tasks: [t1, t2], scenario };
    return { strategy, plugin, context, first };
  }

  it('class-IL: replays the previous solver\'s argmax over its classes, zero-padded to the new ones, at weight 1/t', async () => {
    const { strategy, plugin, context } = await afterOneTask('class-incremental', {});
    try {
      assert.equal(context.head.labels.size, 4);
      const replay = plugin.replay(context, 8);
      assert.ok(replay);
      assert.equal(replay.currentWeight, 0.5);
      assert.equal(replay.groups.length, 1);
      const [group] = replay.groups;
      assert.equal(group!.head, 'shared');
      assert.deepEqual(group!.x.shape, [8, 784]);
      const targets = group!.targets.arraySync() as number[][];
      for (const row of targets) {
        assert.deepEqual([...row].sort(), [0, 0, 0, 1], `one-hot: ${row}`);
        assert.ok(row[0] === 1 || row[1] === 1, `only classes of the previous task: ${row}`);
      }
      tf.dispose(replay.groups.flatMap((g) => [g.x, g.targets]));
      assert.ok((strategy.diagnostics().find((d) => d.name === 'dgr_replayed_samples_per_batch')?.value ?? 0) > 0);
      assert.ok(Number.isFinite(strategy.diagnostics().find((d) => d.name === 'dgr_generator_loss')?.value));
      const entropy = strategy.diagnostics().find((d) => d.name === 'replay_label_entropy')?.value;
      assert.ok(entropy !== undefined && entropy >= 0 && entropy <= 1, `two previous classes: 0..1 bit, got ${entropy}`);
    } finally {
      strategy.dispose();
    }
  });

  it('replay_label_entropy: bits of the argmax labels over all groups, a label of one head distinct from the same index of another', () => {
    const group = (head: string, rows: number[][]) => ({ head, x: tf.zeros([rows.length, 1]) as tf.Tensor2D, targets: tf.tensor2d(rows) });
    const groups = [
      group('shared', [[1, 0], [0, 1], [0.9, 0.1], [0.2, 0.8]]),
    ];
    const collapsed = [group('shared', [[1, 0, 0], [0.6, 0.4, 0], [0.9, 0, 0.1], [1, 0, 0]])];
    const twoHeads = [group('t1', [[1, 0], [1, 0]]), group('t2', [[1, 0], [1, 0]])];
    try {
      const before = tf.memory().numTensors;
      assert.equal(labelEntropyBits(groups), 1);
      assert.equal(labelEntropyBits(collapsed), 0);
      assert.equal(labelEntropyBits(twoHeads), 1);
      assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    } finally {
      tf.dispose([...groups, ...collapsed, ...twoHeads].flatMap((g) => [g.x, g.targets]));
    }
  });

  it('distill: soft targets at the temperature, summing to 1 over the previous classes', async () => {
    const { strategy, plugin, context } = await afterOneTask('class-incremental', { distill: true, temperature: 3, currentWeight: 0.25 });
    try {
      const replay = plugin.replay(context, 8)!;
      assert.equal(replay.currentWeight, 0.25);
      const [group] = replay.groups;
      assert.equal(group!.temperature, 3);
      for (const row of group!.targets.arraySync() as number[][]) {
        assert.ok(Math.abs(row[0]! + row[1]! - 1) < 1e-5 && row[2] === 0 && row[3] === 0, `soft targets ${row}`);
        assert.ok(row[0]! > 0 && row[1]! > 0 && row[0]! < 1, `soft, not one-hot: ${row}`);
      }
      tf.dispose(replay.groups.flatMap((g) => [g.x, g.targets]));
    } finally {
      strategy.dispose();
    }
  });

  it('task-IL: one replay group per old task head', async () => {
    const { strategy, plugin, context, first } = await afterOneTask('task-incremental', {});
    try {
      const replay = plugin.replay(context, 8)!;
      assert.deepEqual(replay.groups.map((g) => g.head), [first]);
      assert.deepEqual(replay.groups[0]!.targets.shape, [8, 2]);
      tf.dispose(replay.groups.flatMap((g) => [g.x, g.targets]));
    } finally {
      strategy.dispose();
    }
  });

  it('wgan-gp: export mid-task then import continues identically across the next task boundary, leak-free', async () => {
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 3, samplesPerTask: 96, seed: 6, scenario: 'class-incremental' });
    const names = source.knownTasks() as string[];
    const of = (name: string) => samples.filter((s) => s.task === name);
    const opts = (seed: number) => options('class-incremental', { outputUnits: source.outputUnits, hiddenLayers: [32, 32], seed, params: { generator: 'wgan-gp', latent: 8 } });
    const before = tf.memory().numTensors;
    const original = createDgr(opts(1));
    const copy = createDgr(opts(50));
    try {
      const [t1, t2, t3] = names.map((name, index) => ({ name, index })) as [TaskInfo, TaskInfo, TaskInfo];
      await original.beginTask(t1);
      await train(original, t1, of(t1.name));
      await original.endTask(t1);
      await original.beginTask(t2);
      await train(original, t2, of(t2.name).slice(0, 32));
      const steady = tf.memory().numTensors;
      await train(original, t2, of(t2.name).slice(32, 64));
      assert.equal(tf.memory().numTensors, steady, 'training with replay keeps no tensor');
      await copy.importState(await original.exportState());
      for (const s of [original, copy]) {
        await train(s, t2, of(t2.name).slice(64));
        await s.endTask(t2);
        await s.beginTask(t3);
        await train(s, t3, of(t3.name));
      }
      const probe = names.flatMap((n) => source.probe(n, 30) ?? []).map((s) => s.x);
      assert.deepEqual(await copy.predict(undefined, probe), await original.predict(undefined, probe));
      assert.deepEqual(copy.generate(4, 1), original.generate(4, 1), 'the generators continued identically');
    } finally {
      original.dispose();
      copy.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'tensors left after dispose');
  });

  it('class-IL split-MNIST, 2 tasks: generated samples of the old classes are recognised as those classes', async () => {
    // A short single-pass run: van de Ven & Tolias's generator, with far fewer steps than their 2000 per task.
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 1500, seed: 8, scenario: 'class-incremental' });
    const [first, second] = source.knownTasks() as [string, string];
    const settings = { outputUnits: source.outputUnits, hiddenLayers: [200, 200], seed: 2 };
    const dgr = createDgr(options('class-incremental', { ...settings, params: { generatorSteps: 5 } }));
    const finetune = createFinetune(options('class-incremental', settings));
    // An independent judge: a classifier trained on real samples of all four classes together.
    const judge = createFinetune(options('class-incremental', { ...settings, seed: 9 }));
    try {
      let replayed: Float32Array[] = [];
      let replayLabels: (string | null)[] = [];
      for (const [index, name] of [first, second].entries()) {
        const task = { name, index };
        for (const s of [dgr, finetune]) {
          await s.beginTask(task);
          await train(s, task, samples.filter((x) => x.task === name));
          await s.endTask(task);
        }
        if (index === 0) {
          // What the first task's scholar replays during the second task: its generator's inputs, its solver's labels.
          replayed = dgr.generate(400, 11);
          replayLabels = (await dgr.predict(undefined, replayed)).map((p) => p.label);
        }
      }
      const all = { name: 'all', index: 0 };
      await judge.beginTask(all);
      await train(judge, all, new Rng(1).shuffle([...samples]));
      const oldProbe = source.probe(first, 300) as Sample[];
      const [dgrOld, finetuneOld] = [await accuracy(dgr, oldProbe), await accuracy(finetune, oldProbe)];
      const solverSays = (await dgr.predict(undefined, replayed)).map((p) => p.label);
      const judgeSays = (await judge.predict(undefined, replayed)).map((p) => p.label);
      const nowGenerated = count(await dgr.predict(undefined, dgr.generate(400, 12)));
      const stats: string[] = [`old-task accuracy: dgr ${dgrOld}, finetune ${finetuneOld}`, `generated after task 2: ${JSON.stringify(nowGenerated)}`];
      const rates = ['0', '1'].map((c) => {
        const ofClass = replayLabels.flatMap((label, i) => (label === c ? [i] : []));
        const solver = ofClass.filter((i) => solverSays[i] === c).length / ofClass.length;
        const judged = ofClass.filter((i) => judgeSays[i] === c).length / ofClass.length;
        stats.push(`class ${c}: ${ofClass.length} replayed, the solver after task 2 agrees on ${solver}, the judge on ${judged}`);
        return { c, n: ofClass.length, solver, judged };
      });
      assert.ok(dgrOld >= 0.6 && dgrOld >= finetuneOld + 0.4, stats.join('; '));
      for (const { c, n, solver, judged } of rates) {
        // Chance: 1 in 4 classes.
        assert.ok(n >= 0.1 * replayed.length, `class ${c} is generated: ${stats.join('; ')}`);
        assert.ok(solver >= 0.75, `the solver still recognises class ${c}: ${stats.join('; ')}`);
        assert.ok(judged >= 0.5, `the judge recognises class ${c}: ${stats.join('; ')}`);
        assert.ok((nowGenerated[c] ?? 0) >= 0.05 * 400, `the current generator still produces class ${c}: ${stats.join('; ')}`);
      }
    } finally {
      dgr.dispose();
      finetune.dispose();
      judge.dispose();
    }
  });
});

describe('png encoder', () => {
  it('writes a valid grayscale PNG: signature, IHDR, CRCs, IDAT inflating to the pixels', () => {
    const width = 5;
    const height = 3;
    const pixels = Uint8Array.from({ length: width * height }, (_, i) => (i * 17) % 256);
    const png = encodeGrayscalePng(width, height, pixels);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const chunks: { type: string; data: Buffer }[] = [];
    for (let at = 8; at < png.length; ) {
      const length = png.readUInt32BE(at);
      const type = png.toString('ascii', at + 4, at + 8);
      const data = png.subarray(at + 8, at + 8 + length);
      assert.equal(png.readUInt32BE(at + 8 + length), zlib.crc32(png.subarray(at + 4, at + 8 + length)) >>> 0, `CRC of ${type}`);
      chunks.push({ type, data });
      at += 12 + length;
    }
    assert.deepEqual(chunks.map((c) => c.type), ['IHDR', 'IDAT', 'IEND']);
    const ihdr = chunks[0]!.data;
    assert.deepEqual([ihdr.readUInt32BE(0), ihdr.readUInt32BE(4), ...ihdr.subarray(8)], [width, height, 8, 0, 0, 0, 0]);
    const raw = zlib.inflateSync(chunks[1]!.data);
    assert.equal(raw.length, height * (width + 1));
    for (let row = 0; row < height; row++) {
      assert.equal(raw[row * (width + 1)], 0, 'filter type None');
      assert.deepEqual([...raw.subarray(row * (width + 1) + 1, (row + 1) * (width + 1))], [...pixels.subarray(row * width, (row + 1) * width)]);
    }
    assert.throws(() => encodeGrayscalePng(2, 2, new Uint8Array(3)), InvariantError);
  });
});

describe('checkpoint files', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-checkpoint-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const state: StrategyState = {
    strategy: 'x',
    format: 3,
    meta: { tasks: [{ name: 'a', index: 0 }], note: 'ü ✓' },
    tensors: {
      w: { shape: [2, 3], data: Float32Array.of(1, -2, 3.5, Number.MIN_VALUE, -0, 1e30) },
      empty: { shape: [0, 784], data: new Float32Array(0) },
      scalar: { shape: [], data: Float32Array.of(7) },
    },
  };
  const opts = options('task-incremental', { params: { lambda: 5 } });

  it('round-trips the header and every tensor bit for bit, leaving no temporary file', async () => {
    const file = path.join(dir, 'a.ckpt');
    await writeCheckpoint(file, { pipeline: 'p', strategyName: 'x', options: opts, state, createdAt: '2024-01-01T00:00:00.000Z' });
    const back = await readCheckpoint(file);
    assert.deepEqual(back, { format: CHECKPOINT_FORMAT, createdAt: '2024-01-01T00:00:00.000Z', pipeline: 'p', strategyName: 'x', options: opts, state });
    assert.deepEqual(fs.readdirSync(dir), ['a.ckpt']);
    // Overwriting replaces the file whole.
    await writeCheckpoint(file, { strategyName: 'y', options: opts, state: { ...state, tensors: {} } });
    assert.equal((await readCheckpoint(file)).strategyName, 'y');
  });

  it('refuses foreign, unsupported and truncated files with a clear error', async () => {
    const file = path.join(dir, 'b.ckpt');
    await writeCheckpoint(file, { strategyName: 'x', options: opts, state });
    const bytes = fs.readFileSync(file);
    const attempt = async (content: Buffer, expected: RegExp) => {
      const bad = path.join(dir, 'bad.ckpt');
      fs.writeFileSync(bad, content);
      await assert.rejects(readCheckpoint(bad), (error: Error) => error instanceof DataFormatError && expected.test(error.message) && error.message.includes(bad));
    };
    await attempt(Buffer.from('{"strategy":"x"}'), /bad magic/);
    await attempt(Buffer.from(bytes.toString('latin1').replace(`lifelong-checkpoint ${CHECKPOINT_FORMAT} `, 'lifelong-checkpoint 99 '), 'latin1'), /unsupported checkpoint format 99/);
    await attempt(bytes.subarray(0, bytes.length - 4), /truncated: tensor/);
    await attempt(bytes.subarray(0, 60), /truncated/);
    await attempt(bytes.subarray(0, 10), /bad magic|truncated/);
  });

  it('lifelong replay-grid renders a trained dgr checkpoint: one row of 28x28 tiles per class', async () => {
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 1, samplesPerTask: 128, seed: 1, scenario: 'class-incremental' });
    const opts = options('class-incremental', { outputUnits: source.outputUnits, hiddenLayers: [32, 32], params: { latent: 8 } });
    const dgr = createDgr(opts);
    const task = { name: samples[0]!.task, index: 0 };
    await dgr.beginTask(task);
    await train(dgr, task, samples);
    await dgr.endTask(task);
    const file = path.join(dir, 'dgr.ckpt');
    await writeCheckpoint(file, { strategyName: 'dgr', options: opts, state: await dgr.exportState() });
    dgr.dispose();
    const out = path.join(dir, 'grid.png');
    const { code, printed } = await quietly(() => main(['replay-grid', '--checkpoint', file, '--out', out, '--per-class', '3', '--seed', '2']));
    assert.equal(code, 0, printed);
    const png = fs.readFileSync(out);
    const ihdr = png.subarray(16, 29);
    // 2 classes (0 and 1) x 3 samples, 28-pixel tiles with 2-pixel gaps.
    assert.deepEqual([ihdr.readUInt32BE(0), ihdr.readUInt32BE(4)], [3 * 28 + 4 * 2, 2 * 28 + 3 * 2]);
    assert.match(printed, /top to bottom: 0, 1\)/);
    const missing = await quietly(() => main(['replay-grid', '--checkpoint', path.join(dir, 'missing.ckpt'), '--out', out]));
    assert.equal(missing.code, 1);
    assert.match(missing.printed, /missing\.ckpt/);
  });
});

describe('dgr: heads that know one label', () => {
  it('trains a first task of one label, then replays it labelled by a one-unit solver, in every scenario', async () => {
    for (const scenario of SCENARIOS) {
      const s = createDgr(oneLabelOptions(scenario, { latent: 3, generatorHidden: [5] }));
      try {
        const results = await learnOneLabel(s, { name: 't1', index: 0 }, 'a');
        // The next task's batch is replayed with targets over the old head's one unit (the shared head, or task 1's).
        const t2 = { name: 't2', index: 1 };
        await s.beginTask(t2);
        results.push(await s.trainBatch(t2, { xs: oneLabelInputs(6, 2), ys: Array(6).fill('a') }));
        assert.ok((s.diagnostics?.().find((d) => d.name === 'dgr_replayed_samples_per_batch')?.value ?? 0) > 0, 'the batch was learned with replay');
        await assertFiniteAfterOneLabel(s, results, 'a');
      } finally {
        s.dispose();
      }
    }
  });
});
