/**
 * Ops per training step on the benchmark MLP 784-400-400-10, batch 128 (docs/BENCHMARKS.md,
 * "Fewer ops per step"), three ways, interleaved in one process:
 * - tf.train.adam: tfjs's Adam, ~15 ops per variable (the default before FusedAdam);
 * - FusedAdam: the project's step (gradientStep, createOptimizer), Adam once over flat buffers;
 * - flat parameters: the parameters themselves in one flat variable, read through per-layer views
 *   (one split, aliasing on native), gradients taken with respect to the views, one concat, Adam
 *   and one assign over the flat buffer. An experiment (the model keeps a variable per layer):
 *   it shows what a model stored flat would add to FusedAdam.
 * Kernels per step (tf.profile), wall and CPU ms per step over rounds, and whether the three
 * trained to the same weights. One backend per process:
 *
 *   npm run build && node dist/bench/fused-adam-step.js --backend wasm --rounds 9
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/backend';
import { Rng } from '../src/core/rng';
import { FlatLayout } from '../src/models/flat-layout';
import { FusedAdam } from '../src/models/fused-adam';
import { createMlp, logits, median, mlpStep, syntheticBatch } from './mlp-step';

const STEPS_PER_ROUND = 30;

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

interface Contender {
  readonly name: string;
  step(): void;
  /** The trained weights, a tensor per layer variable (the caller disposes them). */
  weights(): tf.Tensor[];
  readonly ms: number[];
  readonly cpuMs: number[];
  kernels: number;
}

/** The project's step with `optimizer` over a variable per layer. */
function perVariable(name: string, optimizer: tf.Optimizer, initial: readonly tf.Variable[], x: tf.Tensor2D, y: tf.Tensor2D): Contender {
  const vars = initial.map((v) => tf.variable(v.clone()));
  return {
    name,
    step: () => mlpStep(optimizer, vars, x, y),
    weights: () => vars.map((v) => v.clone()),
    ms: [],
    cpuMs: [],
    kernels: 0,
  };
}

/** The parameters in one flat variable with per-layer views; tfjs Adam's formula once over it (as FusedAdam). */
function flatParameters(initial: readonly tf.Variable[], x: tf.Tensor2D, y: tf.Tensor2D): Contender {
  const layout = FlatLayout.of(initial);
  const theta = tf.tidy(() => layout.flatten(initial).variable(false));
  const [m, v] = [tf.zeros([layout.size]).variable(false), tf.zeros([layout.size]).variable(false)];
  const [accBeta1, accBeta2] = [tf.scalar(0.9).variable(false), tf.scalar(0.999).variable(false)];
  const [beta1, beta2, learningRate, epsilon] = [0.9, 0.999, 1e-3, tf.backend().epsilon()];
  return {
    name: 'flat parameters (experiment)',
    step: () =>
      tf.tidy(() => {
        const views = layout.pieces(theta as tf.Tensor1D);
        // logits reads its weights as tensors; the views are plain tensors, not variables.
        const { value, grads } = tf.engine().gradients(() => tf.losses.softmaxCrossEntropy(y, logits(views as tf.Variable[], x)) as tf.Scalar, views);
        const gradient = layout.flatten(grads);
        const finite = tf.logicalAnd(tf.all(tf.isFinite(value)), tf.all(tf.isFinite(gradient)));
        const verdict = tf.concat([tf.reshape(tf.cast(finite, 'float32'), [1]), tf.reshape(value, [1])]).dataSync();
        if (verdict[0] !== 1) return;
        const newM = tf.add(tf.mul(m, beta1), tf.mul(gradient, 1 - beta1));
        const newV = tf.add(tf.mul(v, beta2), tf.mul(tf.square(gradient), 1 - beta2));
        const change = tf.mul(tf.div(tf.div(newM, tf.sub(1, accBeta1)), tf.add(tf.sqrt(tf.div(newV, tf.sub(1, accBeta2))), epsilon)), -learningRate);
        m.assign(newM);
        v.assign(newV);
        theta.assign(tf.add(change, theta));
        accBeta1.assign(tf.mul(accBeta1, beta1));
        accBeta2.assign(tf.mul(accBeta2, beta2));
      }),
    weights: () => tf.tidy(() => layout.pieces(theta as tf.Tensor1D)),
    ms: [],
    cpuMs: [],
    kernels: 0,
  };
}

const range = (values: readonly number[]) => `${median(values).toFixed(2)} (${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)})`;

async function main(): Promise<void> {
  const backend = flag('backend', 'wasm') as Parameters<typeof selectBackend>[0];
  const rounds = Number(flag('rounds', '9'));
  await selectBackend(backend, () => undefined);
  const { x, y } = syntheticBatch(128, new Rng(1));
  const initial = createMlp(new Rng(2));
  const contenders = [
    perVariable('tf.train.adam', tf.train.adam(1e-3, 0.9, 0.999), initial, x, y),
    perVariable('FusedAdam (the step)', new FusedAdam(1e-3, 0.9, 0.999), initial, x, y),
    flatParameters(initial, x, y),
  ];
  for (const c of contenders) for (let i = 0; i < 5; i++) c.step();
  for (const c of contenders) c.kernels = (await tf.profile(() => c.step())).kernels.length;
  for (let r = 0; r < rounds; r++) {
    // Rotated order: each contender runs first, second and third equally often.
    for (const c of [...contenders.slice(r % 3), ...contenders.slice(0, r % 3)]) {
      const start = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      for (let i = 0; i < STEPS_PER_ROUND; i++) c.step();
      const used = process.cpuUsage(cpu);
      c.ms.push(Number(process.hrtime.bigint() - start) / 1e6 / STEPS_PER_ROUND);
      c.cpuMs.push((used.user + used.system) / 1e3 / STEPS_PER_ROUND);
    }
  }
  const trained = contenders.map((c) => c.weights().map((t) => {
    const data = t.dataSync() as Float32Array;
    t.dispose();
    return data;
  }));
  const [reference] = trained as [Float32Array[]];
  const maxDifference = (weights: Float32Array[]) => weights.reduce((most, w, i) => w.reduce((m, value, j) => Math.max(m, Math.abs(value - ((reference[i] as Float32Array)[j] as number))), most), 0);
  console.log(`backend ${tf.getBackend()}, ${rounds} interleaved rounds of ${STEPS_PER_ROUND} steps, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('| step | kernels per step | ms per step, wall (median, min–max) | CPU ms per step | largest weight difference to tf.train.adam after all steps |\n|---|---:|---:|---:|---:|');
  contenders.forEach((c, i) => console.log(`| ${c.name} | ${c.kernels} | ${range(c.ms)} | ${range(c.cpuMs)} | ${maxDifference(trained[i] as Float32Array[]).toExponential(1)} |`));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
