import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import type { Label, Prediction } from '../core/types';
import { NON_FINITE_UPDATE } from '../models/gradient-step';
import type { LabelSpace } from '../models/label-space';
import type { StrategyState, TrainRejection, TrainResult } from './strategy';

/**
 * Pieces every gradient strategy needs the same way: batches to tensors, labels to units,
 * probabilities to predictions. The optimizer's life cycle is models/optimizer-state.ts.
 */

/** Why a prediction has no label (Prediction.reason): the answers a strategy cannot give yet. */
export const NO_CLASSES_YET = 'the task has no learned classes yet';
export const NO_TASK_YET = 'the task has not begun: no head or column answers for it yet';
export const NOTHING_LEARNED_YET = 'the model has learned no class yet';

/** The answer for inputs the model knows no class for yet, saying why. */
export function unanswered(xs: readonly unknown[], reason: string): Prediction[] {
  return xs.map(() => ({ label: null, probabilities: {}, reason }));
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
  /** Samples refused because their label would take the head past model.maxClasses. */
  readonly rejected: TrainRejection[];
}

/** Why a sample whose label would take a head past model.maxClasses is refused (TrainRejection.code). */
export const LABEL_CAPACITY = 'label-capacity';

/**
 * Gives each label a unit, new labels the next ones (the head grows to fit them). With a hard cap
 * (model.maxClasses, per head), a label that would be a class beyond it is refused alone.
 */
export function assignUnits(labels: LabelSpace, ys: readonly Label[], maxClasses = 0): AssignedUnits {
  const out: AssignedUnits = { kept: [], units: [], rejected: [] };
  ys.forEach((y, i) => {
    if (maxClasses > 0 && !labels.has(y) && labels.size >= maxClasses) {
      const reason = `label "${y}" would be class ${labels.size + 1} but the head may have at most ${maxClasses} output units (model.maxClasses)`;
      out.rejected.push({ index: i, reason, code: LABEL_CAPACITY });
      return;
    }
    out.units.push(labels.add(y));
    out.kept.push(i);
  });
  return out;
}

/**
 * A batch whose gradient step was refused (models/gradient-step.ts): the labels it added give
 * their units back, and every sample that took part is refused with code non-finite-update,
 * beside those refused before it. The step cannot tell which samples made it non-finite, so the
 * whole batch goes; the loss is 0, as for a batch with nothing trained.
 */
export function refuseBatch(labels: LabelSpace, labelsBefore: number, trained: readonly number[], rejected: readonly TrainRejection[]): TrainResult {
  labels.truncate(labelsBefore);
  const reason = 'the batch gave a non-finite loss or gradient (NaN or Infinity), so its update was not applied';
  const all = [...rejected, ...trained.map((index) => ({ index, reason, code: NON_FINITE_UPDATE }))].sort((a, b) => a.index - b.index);
  return { loss: 0, penalty: 0, rejected: all };
}

/** A head's probabilities as a prediction: the most probable label and every label's probability. */
export function toPrediction(labels: LabelSpace, p: readonly number[], inferredTask?: string): Prediction {
  let top = 0;
  for (let k = 1; k < p.length; k++) if ((p[k] as number) > (p[top] as number)) top = k;
  const probabilities: Record<string, number> = {};
  p.forEach((v, k) => (probabilities[labels.labelOf(k)] = v));
  return { label: labels.labelOf(top), probabilities, ...(inferredTask !== undefined ? { inferredTask } : {}) };
}

/** Refuses another strategy's state, or a layout this code cannot read, with a clear error. */
export function checkStateHeader(state: StrategyState, name: string, format: number): void {
  if (state.strategy !== name) throw new StrategyError(`state is of strategy "${state.strategy}", not "${name}"`);
  if (state.format !== format) throw new StrategyError(`state format ${state.format} is not supported (expected ${format})`);
}

/**
 * Index of the candidate with the highest score (the first on ties), -1 for none: which head or
 * column answers a task-agnostic prediction. A NaN score (an input that overflows the network)
 * never wins, but some candidate always does.
 */
export function argmaxBy<T>(candidates: readonly T[], score: (candidate: T, index: number) => number): number {
  let best = -1;
  let bestScore = -Infinity;
  candidates.forEach((c, i) => {
    const raw = score(c, i);
    const v = Number.isNaN(raw) ? -Infinity : raw;
    if (best === -1 || v > bestScore) {
      bestScore = v;
      best = i;
    }
  });
  return best;
}
