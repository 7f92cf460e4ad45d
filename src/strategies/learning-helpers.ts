import * as tf from '@tensorflow/tfjs';
import { StrategyError, ValidationError } from '../core/errors';
import type { Label, Prediction } from '../core/types';
import { fromSnapshot, snapshot } from '../models/mlp';
import type { LabelSpace } from '../models/label-space';
import type { StrategyOptions, StrategyState, TensorSnapshot } from './strategy';

/**
 * Pieces every gradient strategy needs the same way: batches to tensors, labels to units,
 * probabilities to predictions, and the optimizer's life cycle (rebuilt at task boundaries,
 * exported with its moments so a restored copy continues training identically).
 */

/** The answer for inputs the model knows no class for yet. */
export function unanswered(xs: readonly unknown[]): Prediction[] {
  return xs.map(() => ({ label: null, probabilities: {} }));
}

/** Inputs as one batch x inputSize matrix; throws when an input has the wrong length. */
export function toMatrix(xs: readonly Float32Array[], inputSize: number): tf.Tensor2D {
  const flat = new Float32Array(xs.length * inputSize);
  xs.forEach((x, i) => {
    if (x.length !== inputSize) throw new StrategyError(`input ${i} has ${x.length} features, expected ${inputSize}`);
    flat.set(x, i * inputSize);
  });
  return tf.tensor2d(flat, [xs.length, inputSize]);
}

/**
 * Runs `compute` on the inputs as one matrix, inside tidy, and reads each matrix it returns as rows.
 * The reads happen outside tidy (tidy would walk every number of a returned array) and every
 * tensor is freed: the one way predictions leave the tensor world.
 */
export function readMatrices(xs: readonly Float32Array[], inputSize: number, compute: (x: tf.Tensor2D) => tf.Tensor2D[]): number[][][] {
  const x = toMatrix(xs, inputSize);
  let out: tf.Tensor2D[];
  try {
    out = tf.tidy(() => compute(x));
  } finally {
    x.dispose();
  }
  try {
    return out.map((t) => t.arraySync() as number[][]);
  } finally {
    tf.dispose(out);
  }
}

/** A batch's labels as output units of `labels` (new labels are added). */
export interface AssignedUnits {
  /** Indexes in the batch of the samples that got a unit. */
  readonly kept: number[];
  /** The unit of each kept sample, in the order of `kept`. */
  readonly units: number[];
  /** Samples refused because the head has no unit left for their label. */
  readonly rejected: { index: number; reason: string }[];
}

/** Gives each label a unit; a label the head has no unit left for is refused alone. */
export function assignUnits(labels: LabelSpace, ys: readonly Label[]): AssignedUnits {
  const out: AssignedUnits = { kept: [], units: [], rejected: [] };
  ys.forEach((y, i) => {
    try {
      out.units.push(labels.add(y));
      out.kept.push(i);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      out.rejected.push({ index: i, reason: error.message });
    }
  });
  return out;
}

/** A head's probabilities as a prediction: the most probable label and every label's probability. */
export function toPrediction(labels: LabelSpace, p: readonly number[], inferredTask?: string): Prediction {
  let top = 0;
  for (let k = 1; k < p.length; k++) if ((p[k] as number) > (p[top] as number)) top = k;
  const probabilities: Record<string, number> = {};
  p.forEach((v, k) => (probabilities[labels.labelOf(k)] = v));
  return { label: labels.labelOf(top), probabilities, ...(inferredTask !== undefined ? { inferredTask } : {}) };
}

/** A fresh optimizer as the pipeline's training settings say. */
export function createOptimizer(options: Pick<StrategyOptions, 'optimizer' | 'learningRate'>): tf.Optimizer {
  return options.optimizer === 'sgd' ? tf.train.sgd(options.learningRate) : tf.train.adam(options.learningRate, 0.9, 0.999);
}

/**
 * Writes an optimizer's slots (iteration count, then moments in the order of its variable list)
 * as tensors `${prefix}.${i}`; returns how many there are (0 without an optimizer).
 */
export async function exportOptimizer(optimizer: tf.Optimizer | undefined, prefix: string, tensors: Record<string, TensorSnapshot>): Promise<number> {
  if (!optimizer) return 0;
  const weights = await optimizer.getWeights();
  weights.forEach((w, i) => {
    tensors[`${prefix}.${i}`] = snapshot(w.tensor);
  });
  // getWeights returns the live moment variables plus a fresh iteration-count tensor.
  weights[0]?.tensor.dispose();
  return weights.length;
}

/**
 * Loads slots written by exportOptimizer into `optimizer`. The moments are matched to variables
 * by position, so the optimizer must train the same variable list in the same order.
 */
export async function importOptimizer(optimizer: tf.Optimizer, prefix: string, slots: number, tensors: Readonly<Record<string, TensorSnapshot>>): Promise<void> {
  if (slots === 0) return;
  const weights = Array.from({ length: slots }, (_, i) => {
    const s = tensors[`${prefix}.${i}`];
    if (!s) throw new StrategyError(`state lacks tensor ${prefix}.${i}`);
    return { name: `slot-${i}`, tensor: fromSnapshot(s) };
  });
  try {
    await optimizer.setWeights(weights);
  } finally {
    for (const w of weights) w.tensor.dispose();
  }
  restoreAdamBetaPowers(optimizer);
}

/**
 * Adam keeps beta^t as a running float32 product (one multiplication per step), but its setWeights
 * sets it to pow(beta, t): the two differ in the last bits, enough for a restored copy to drift
 * from the original by ~1e-8 per step. This recomputes the product as training does.
 */
function restoreAdamBetaPowers(optimizer: tf.Optimizer): void {
  if (!(optimizer instanceof tf.AdamOptimizer)) return;
  const adam = optimizer as unknown as { beta1: number; beta2: number; accBeta1: tf.Variable; accBeta2: tf.Variable };
  const power = (beta: number) => {
    const b = Math.fround(beta);
    let acc = b;
    for (let i = 0; i < optimizer.iterations; i++) acc = Math.fround(acc * b);
    return acc;
  };
  tf.tidy(() => {
    adam.accBeta1.assign(tf.scalar(power(adam.beta1)));
    adam.accBeta2.assign(tf.scalar(power(adam.beta2)));
  });
}


/** Refuses another strategy's state, or a layout this code cannot read, with a clear error. */
export function checkStateHeader(state: StrategyState, name: string, format: number): void {
  if (state.strategy !== name) throw new StrategyError(`state is of strategy "${state.strategy}", not "${name}"`);
  if (state.format !== format) throw new StrategyError(`state format ${state.format} is not supported (expected ${format})`);
}

/**
 * Index of the candidate with the highest score (the first on ties), -1 for none: which head or
 * column answers a task-agnostic prediction.
 */
export function argmaxBy<T>(candidates: readonly T[], score: (candidate: T, index: number) => number): number {
  let best = -1;
  let bestScore = -Infinity;
  candidates.forEach((c, i) => {
    const v = score(c, i);
    if (v > bestScore) {
      bestScore = v;
      best = i;
    }
  });
  return best;
}
