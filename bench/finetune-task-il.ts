/**
 * Issue 18: why finetune in Task-IL split MNIST scores higher in lifelong (94.9) than in the
 * authors' code (89.7 on the same fixed pairs; paper 87.2). The same network and protocol as the
 * `three-scenarios-split-mnist` suite (784-400-400, ReLU, Adam lr 1e-3, batch 128, 2000 iterations
 * per task, all test images), with the training choices where the two codes differ as options,
 * one factor at a time:
 *
 *   --heads separate|masked   one 2-unit head per task (lifelong) | one shared 10-unit layer, loss
 *                             and prediction restricted to the task's two units (the authors' code)
 *   --adam rebuilt|kept       a fresh Adam at every task boundary (lifelong) | one Adam for all
 *                             tasks, its moments and step count carried over (the authors' code)
 *   --init glorot|torch       Glorot-uniform weights, zero biases (lifelong, tfjs/Keras) | weights
 *                             and biases uniform in ±1/sqrt(fan_in) (PyTorch's nn.Linear)
 *   --pairs fixed|random      (0,1)...(8,9) | a seeded random assignment of digits to pairs
 *   --epsilon E               Adam's epsilon (tfjs 1e-7, PyTorch 1e-8)
 *   --adam-code written|tfjs  the Adam below, or tf.train.adam as MlpStrategy builds it (fresh per task only)
 *
 * and, to find where `lifelong bench` (the engine) differs from this script with lifelong's choices:
 *
 *   --stream script|revisiting   batches drawn here (a fresh shuffle per epoch, the last partial
 *                                batch dropped) | the engine's own stream, RevisitingSource's samples
 *                                cut into consecutive batches of 128, as the engine's micro-batcher does
 *   --learner script|strategy    the network and Adam written here | the built-in finetune strategy
 *                                (MlpStrategy: its MultiHeadMlp, tf.train.adam rebuilt per task), fed
 *                                through beginTask / trainBatch / endTask and scored with predict()
 *
 * Adam is written out here (not tf.train.adam) so that "kept" can carry moments over for a
 * variable that gets no gradient in a step, as PyTorch does for masked units (zero gradient,
 * moments still decaying, so the parameter keeps moving) and does not for a head outside the
 * graph (no gradient at all: untouched).
 *
 *   npm run build && node dist/bench/finetune-task-il.js --seeds 1,2,3 --adam kept
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/backend';
import { Rng } from '../src/core/rng';
import { loadMnist, MNIST_CLASSES, MNIST_PIXELS, type MnistSplit } from '../src/data/mnist';
import { splitPairs, type SplitPairs } from '../src/data/task-streams';
import { RevisitingSource } from '../src/suites/revisiting-source';
import { builtinStrategies } from '../src/strategies/registry';
import type { Strategy } from '../src/strategies/strategy';

type Heads = 'separate' | 'masked';
type AdamLife = 'rebuilt' | 'kept';
type Init = 'glorot' | 'torch';
/** written: the Adam below; tfjs: tf.train.adam, as MlpStrategy builds it (rebuilt only). */
type AdamCode = 'written' | 'tfjs';
/** script: batches drawn here; revisiting: the engine's stream (suites/revisiting-source.ts). */
type Stream = 'script' | 'revisiting';
/** script: the network and Adam below; strategy: the built-in finetune MlpStrategy. */
type LearnerKind = 'script' | 'strategy';

interface Variant {
  readonly heads: Heads;
  readonly adam: AdamLife;
  readonly init: Init;
  readonly pairs: SplitPairs;
  readonly epsilon: number;
  readonly adamCode: AdamCode;
  readonly stream: Stream;
  readonly learner: LearnerKind;
  readonly iterations: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly hidden: readonly number[];
}

interface Layer {
  readonly kernel: tf.Variable;
  readonly bias: tf.Variable;
}

function layer(rng: Rng, fanIn: number, units: number, init: Init): Layer {
  return tf.tidy(() => {
    const limit = init === 'torch' ? 1 / Math.sqrt(fanIn) : Math.sqrt(6 / (fanIn + units));
    const kernel = tf.variable(tf.randomUniform([fanIn, units], -limit, limit, 'float32', rng.seed()));
    const bias = tf.variable(init === 'torch' ? tf.randomUniform([units], -limit, limit, 'float32', rng.seed()) : tf.zeros([units]));
    return { kernel, bias };
  });
}

/** Adam as PyTorch and tfjs compute it, its state per variable kept until reset(). */
class Adam {
  private step = 0;
  private readonly moments = new Map<tf.Variable, { m: tf.Variable; v: tf.Variable }>();
  constructor(
    private readonly lr: number,
    private readonly epsilon: number,
  ) {}

  /** Applies grads; variables in `carried` without a gradient still move on their moments (PyTorch's zero-gradient case). */
  apply(grads: ReadonlyMap<tf.Variable, tf.Tensor>, carried: readonly tf.Variable[]): void {
    this.step++;
    const c1 = 1 - 0.9 ** this.step;
    const c2 = 1 - 0.999 ** this.step;
    tf.tidy(() => {
      const targets = new Set<tf.Variable>([...grads.keys(), ...carried.filter((v) => this.moments.has(v))]);
      for (const variable of targets) {
        let state = this.moments.get(variable);
        if (!state) {
          state = { m: tf.variable(tf.zerosLike(variable), false), v: tf.variable(tf.zerosLike(variable), false) };
          this.moments.set(variable, state);
        }
        const g = grads.get(variable) ?? tf.zerosLike(variable);
        state.m.assign(tf.add(tf.mul(state.m, 0.9), tf.mul(g, 0.1)));
        state.v.assign(tf.add(tf.mul(state.v, 0.999), tf.mul(tf.square(g), 0.001)));
        const update = tf.div(tf.div(state.m, c1), tf.add(tf.sqrt(tf.div(state.v, c2)), this.epsilon));
        variable.assign(tf.sub(variable, tf.mul(update, this.lr)));
      }
    });
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }
}

interface TaskData {
  readonly digits: readonly [number, number];
  readonly train: Int32Array;
  readonly test: Int32Array;
}

function indicesOf(split: MnistSplit, digits: readonly number[]): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < split.count; i++) if (digits.includes(split.labels[i] as number)) out.push(i);
  return Int32Array.from(out);
}

interface Batch {
  readonly x: tf.Tensor2D;
  readonly y: tf.Tensor1D;
  /** The same batch as rows and labels ("0" / "1"), for a Strategy. */
  readonly rows: Float32Array[];
  readonly labels: string[];
}

function batchOf(split: MnistSplit, indices: ArrayLike<number>, digits: readonly number[]): Batch {
  const xs = new Float32Array(indices.length * MNIST_PIXELS);
  const ys = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k] as number;
    const raw = split.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS);
    for (let p = 0; p < MNIST_PIXELS; p++) xs[k * MNIST_PIXELS + p] = (raw[p] as number) / 255;
    ys[k] = digits.indexOf(split.labels[i] as number);
  }
  const rows = Array.from({ length: indices.length }, (_, k) => xs.subarray(k * MNIST_PIXELS, (k + 1) * MNIST_PIXELS));
  return { x: tf.tensor2d(xs, [indices.length, MNIST_PIXELS]), y: tf.tensor1d(ys, 'int32'), rows, labels: Array.from(ys, String) };
}

/** What trains on the batches and answers the test images: this script's network, or MlpStrategy. */
interface Learner {
  beginTask(t: number): Promise<void>;
  train(t: number, batch: Batch): Promise<void>;
  /** Correct answers on a task's test batch. */
  correct(t: number, batch: Batch): Promise<number>;
  dispose(): void;
}

function scriptLearner(variant: Variant, rng: Rng, tasks: number): Learner {
  const sizes = [MNIST_PIXELS, ...variant.hidden];
  const trunk = sizes.slice(1).map((units, i) => layer(rng, sizes[i] as number, units, variant.init));
  const shared = variant.heads === 'masked' ? layer(rng, sizes[sizes.length - 1] as number, MNIST_CLASSES, variant.init) : undefined;
  const heads = Array.from({ length: tasks }, () => (shared ? undefined : layer(rng, sizes[sizes.length - 1] as number, 2, variant.init)));
  const units = (t: number) => tf.tensor1d([2 * t, 2 * t + 1], 'int32');
  const logitsOf = (x: tf.Tensor2D, t: number): tf.Tensor2D => {
    let h: tf.Tensor2D = x;
    for (const l of trunk) h = tf.relu(tf.add(tf.matMul(h, l.kernel as tf.Variable<tf.Rank.R2>), l.bias)) as tf.Tensor2D;
    if (shared) return tf.gather(tf.add(tf.matMul(h, shared.kernel as tf.Variable<tf.Rank.R2>), shared.bias), units(t), 1) as tf.Tensor2D;
    const head = heads[t] as Layer;
    return tf.add(tf.matMul(h, head.kernel as tf.Variable<tf.Rank.R2>), head.bias);
  };
  if (variant.adamCode === 'tfjs' && (variant.adam === 'kept' || variant.heads === 'masked')) throw new Error('--adam-code tfjs goes with --adam rebuilt --heads separate');
  let adam = new Adam(variant.learningRate, variant.epsilon);
  let tfjsAdam: tf.Optimizer | undefined;
  let trained: tf.Variable[] = [];
  return {
    async beginTask(t) {
      if (variant.adam === 'rebuilt' && t > 0) {
        adam.dispose();
        adam = new Adam(variant.learningRate, variant.epsilon);
      }
      tfjsAdam?.dispose();
      tfjsAdam = variant.adamCode === 'tfjs' ? tf.train.adam(variant.learningRate, 0.9, 0.999) : undefined;
      trained = [...trunk, shared ?? (heads[t] as Layer)].flatMap((l) => [l.kernel, l.bias]);
    },
    async train(t, { x, y }) {
      const { grads } = tf.variableGrads(() => tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 2), logitsOf(x, t)) as tf.Scalar), trained);
      const byVariable = new Map<tf.Variable, tf.Tensor>(trained.map((v) => [v, grads[v.name] as tf.Tensor]));
      if (tfjsAdam) tfjsAdam.applyGradients(trained.map((v) => ({ name: v.name, tensor: grads[v.name] as tf.Tensor })));
      else adam.apply(byVariable, trained);
      tf.dispose(Object.values(grads));
    },
    async correct(t, { x, y }) {
      return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logitsOf(x, t), 1), y), 'float32')).dataSync()[0] as number);
    },
    dispose() {
      adam.dispose();
      tfjsAdam?.dispose();
      tf.dispose([...trunk, ...(shared ? [shared] : []), ...heads.filter((h): h is Layer => h !== undefined)].flatMap((l) => [l.kernel, l.bias]));
    },
  };
}

/** The built-in finetune strategy with the options `lifelong bench` gives it (suites/run-bench.ts pipelineOf). */
function strategyLearner(variant: Variant, seed: number, names: readonly string[]): Learner {
  const strategy: Strategy = builtinStrategies()
    .describe('finetune')
    .create({ scenario: 'task-incremental', inputSize: MNIST_PIXELS, hiddenLayers: variant.hidden, outputUnits: 2, optimizer: 'adam', learningRate: variant.learningRate, stepsPerBatch: 1, seed, params: {} });
  const task = (t: number) => ({ name: names[t] as string, index: t });
  return {
    async beginTask(t) {
      if (t > 0) await strategy.endTask(task(t - 1));
      await strategy.beginTask(task(t));
    },
    async train(t, { rows, labels }) {
      await strategy.trainBatch(task(t), { xs: rows, ys: labels });
    },
    async correct(t, { rows, labels }) {
      const predictions = await strategy.predict(task(t), rows);
      return predictions.filter((p, k) => p.label === labels[k]).length;
    },
    dispose() {
      strategy.dispose();
    },
  };
}

/** Epochs of each task's images in a fresh random order each, batch after batch (the last partial one dropped). */
function scriptBatches(variant: Variant, order: Rng, tasks: readonly TaskData[]): number[][][] {
  return tasks.map((task) => {
    const batches: number[][] = [];
    let epoch: number[] = [];
    for (let it = 0; it < variant.iterations; it++) {
      if (epoch.length < variant.batchSize) epoch = order.shuffle(Array.from({ length: task.train.length }, (_, i) => i));
      batches.push(epoch.splice(0, variant.batchSize).map((i) => task.train[i] as number));
    }
    return batches;
  });
}

/** The engine's stream: RevisitingSource's samples (MNIST index from the id "train-N"), cut into consecutive batches. */
async function revisitingBatches(variant: Variant, seed: number, tasks: readonly TaskData[], labels: Uint8Array): Promise<number[][][]> {
  const source = new RevisitingSource({ dataset: 'split-mnist', tasks: tasks.length, samplesPerTask: 0, seed, scenario: 'task-incremental', pairs: variant.pairs }, variant.iterations, variant.batchSize);
  const byTask = new Map<string, number[]>();
  const samples = source.open({ reject: () => undefined, log: () => undefined });
  for (let next = await samples.next(); !next.done; next = await samples.next()) {
    const { task, id } = next.value;
    const indices = byTask.get(task) ?? [];
    indices.push(Number(String(id).slice('train-'.length)));
    byTask.set(task, indices);
  }
  await source.close();
  const streams = [...byTask.values()];
  return tasks.map((task, t) => {
    const indices = streams[t] as number[];
    if (!indices.every((i) => task.digits.includes(labels[i] as number))) throw new Error(`RevisitingSource's task ${t + 1} is not digits ${task.digits.join('/')}`);
    return Array.from({ length: Math.floor(indices.length / variant.batchSize) }, (_, b) => indices.slice(b * variant.batchSize, (b + 1) * variant.batchSize));
  });
}

/** Final average Task-IL accuracy (%) and each task's accuracy after the last task. */
async function runOnce(variant: Variant, seed: number): Promise<{ average: number; perTask: number[] }> {
  const mnist = loadMnist();
  const rng = new Rng(seed);
  const pairs = splitPairs(variant.pairs, seed);
  const tasks: TaskData[] = pairs.map((digits) => ({ digits, train: indicesOf(mnist.train, digits), test: indicesOf(mnist.test, digits) }));
  const names = pairs.map(([a, b]) => `split-mnist-${a}-${b}`);
  const learner = variant.learner === 'strategy' ? strategyLearner(variant, seed, names) : scriptLearner(variant, rng, tasks.length);
  const batches = variant.stream === 'revisiting' ? await revisitingBatches(variant, seed, tasks, mnist.train.labels) : scriptBatches(variant, new Rng(rng.seed()), tasks);
  for (let t = 0; t < tasks.length; t++) {
    const task = tasks[t] as TaskData;
    await learner.beginTask(t);
    for (const indices of batches[t] as number[][]) {
      const batch = batchOf(mnist.train, indices, task.digits);
      await learner.train(t, batch);
      tf.dispose([batch.x, batch.y]);
    }
  }
  const perTask: number[] = [];
  for (const [t, task] of tasks.entries()) {
    const batch = batchOf(mnist.test, task.test, task.digits);
    perTask.push((100 * (await learner.correct(t, batch))) / task.test.length);
    tf.dispose([batch.x, batch.y]);
  }
  learner.dispose();
  return { average: perTask.reduce((a, b) => a + b, 0) / perTask.length, perTask };
}

function option(args: readonly string[], name: string, fallback: string): string {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? (args[at + 1] as string) : fallback;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], name: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`--${name} must be one of ${allowed.join(', ')}, got ${value}`);
  return value as T;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  await selectBackend(oneOf(option(args, 'backend', process.env.LIFELONG_BACKEND ?? 'tensorflow'), ['tensorflow', 'wasm', 'cpu'] as const, 'backend'), () => undefined);
  const variant: Variant = {
    heads: oneOf(option(args, 'heads', 'separate'), ['separate', 'masked'] as const, 'heads'),
    adam: oneOf(option(args, 'adam', 'rebuilt'), ['rebuilt', 'kept'] as const, 'adam'),
    init: oneOf(option(args, 'init', 'glorot'), ['glorot', 'torch'] as const, 'init'),
    pairs: oneOf(option(args, 'pairs', 'fixed'), ['fixed', 'random'] as const, 'pairs'),
    epsilon: Number(option(args, 'epsilon', '1e-7')),
    adamCode: oneOf(option(args, 'adam-code', 'written'), ['written', 'tfjs'] as const, 'adam-code'),
    stream: oneOf(option(args, 'stream', 'script'), ['script', 'revisiting'] as const, 'stream'),
    learner: oneOf(option(args, 'learner', 'script'), ['script', 'strategy'] as const, 'learner'),
    iterations: Number(option(args, 'iterations', '2000')),
    batchSize: 128,
    learningRate: 1e-3,
    hidden: [400, 400],
  };
  const seeds = option(args, 'seeds', '1,2,3').split(',').map(Number);
  const label = `heads=${variant.heads} adam=${variant.adam} init=${variant.init} pairs=${variant.pairs} eps=${variant.epsilon} adam-code=${variant.adamCode} stream=${variant.stream} learner=${variant.learner} it=${variant.iterations} backend=${tf.getBackend()}`;
  const averages: number[] = [];
  for (const seed of seeds) {
    const started = Date.now();
    const { average, perTask } = await runOnce(variant, seed);
    averages.push(average);
    console.log(`${label} seed=${seed} avg=${average.toFixed(2)} tasks=${perTask.map((a) => a.toFixed(1)).join('/')} s=${((Date.now() - started) / 1000).toFixed(0)}`);
  }
  const mean = averages.reduce((a, b) => a + b, 0) / averages.length;
  const std = Math.sqrt(averages.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, averages.length - 1));
  console.log(`${label} SUMMARY n=${averages.length} mean=${mean.toFixed(2)} std=${std.toFixed(2)} min=${Math.min(...averages).toFixed(2)} max=${Math.max(...averages).toFixed(2)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
