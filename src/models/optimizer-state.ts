/**
 * An optimizer's life cycle: built from the pipeline's training settings (rebuilt at task
 * boundaries), exported with its moments so that a restored copy continues training identically.
 */
import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import { betaPower, FusedAdam, isInstanceOf } from './fused-adam';
import { fromSnapshot, snapshot } from './mlp';

/** The training settings an optimizer is built from (StrategyOptions has them). */
export interface OptimizerSettings {
  readonly optimizer: 'adam' | 'sgd';
  readonly learningRate: number;
}

/**
 * A fresh optimizer as the pipeline's training settings say. Adam is FusedAdam: tfjs Adam's bytes
 * in a handful of ops for the whole variable list instead of ~14 per variable
 * (docs/BENCHMARKS.md, "Fewer ops per step").
 */
export function createOptimizer(options: OptimizerSettings): tf.Optimizer {
  return options.optimizer === 'sgd' ? tf.train.sgd(options.learningRate) : new FusedAdam(options.learningRate, 0.9, 0.999);
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
  // getWeights returns live moment variables (tfjs's Adam; the optimizer's) and fresh tensors
  // (the iteration count, FusedAdam's moment views; ours).
  for (const w of weights) if (!(w.tensor instanceof tf.Variable)) w.tensor.dispose();
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
 * tfjs's Adam keeps beta^t as a running float32 product, but its setWeights sets it to
 * pow(beta, t), which differs in the last bits (see betaPower): this recomputes the product as
 * training does. FusedAdam's setWeights does it itself.
 */
function restoreAdamBetaPowers(optimizer: tf.Optimizer): void {
  if (!isInstanceOf(optimizer, tf.AdamOptimizer)) return;
  const adam = optimizer as unknown as { beta1: number; beta2: number; accBeta1: tf.Variable; accBeta2: tf.Variable };
  tf.tidy(() => {
    adam.accBeta1.assign(tf.scalar(betaPower(adam.beta1, optimizer.iterations)));
    adam.accBeta2.assign(tf.scalar(betaPower(adam.beta2, optimizer.iterations)));
  });
}

/**
 * After the variable at `index` of an optimizer's list was replaced by a wider one (a head that
 * grew, models/mlp.ts growHead), widens that position's moments to the variable's shape with
 * zeros: the old units keep their moments, the new ones start as a fresh variable's would. Adam
 * keys its moments by position in the list (see gradient-step.ts), so this keeps them in step;
 * a position the optimizer has not reached yet gets its moments from the variable when it does,
 * and SGD keeps none.
 */
export function growOptimizerSlots(optimizer: tf.Optimizer, index: number, variable: tf.Variable): void {
  if (optimizer instanceof FusedAdam) return optimizer.growSlot(index, variable);
  if (!isInstanceOf(optimizer, tf.AdamOptimizer)) {
    if (isInstanceOf(optimizer, tf.SGDOptimizer)) return;
    throw new StrategyError(`cannot widen the moments of a ${optimizer.getClassName()} optimizer`);
  }
  const adam = optimizer as unknown as { accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[]; accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[] };
  for (const slots of [adam.accumulatedFirstMoment, adam.accumulatedSecondMoment]) {
    const slot = slots[index];
    if (!slot) continue;
    const old = slot.variable;
    if (old.shape.length !== variable.shape.length) throw new StrategyError(`optimizer slot ${index} has shape [${old.shape}], the variable [${variable.shape}]`);
    const wider = tf.tidy(() => tf.pad(old, old.shape.map((d, i) => [0, (variable.shape[i] as number) - d] as [number, number])).variable(false));
    slots[index] = { originalName: slot.originalName, variable: wider };
    old.dispose();
  }
}
