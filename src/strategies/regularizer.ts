import * as tf from '@tensorflow/tfjs';
import type { TaskInfo } from '../core/types';
import type { AppliedStep } from '../models/gradient-step';
import type { Head, HeadGrowth, MultiHeadMlp } from '../models/mlp';
import type { TensorSnapshot } from '../core/tensor-snapshot';

/** What a regularizer sees of the training state: passed in, never shared and mutated. */
export interface TrainingContext {
  readonly model: MultiHeadMlp;
  readonly head: Head;
  readonly task: TaskInfo;
}

/**
 * One gradient step as taken (models/gradient-step.ts): the gradients applied and each trained
 * variable's change, in the order of `variables`. Its tensors are freed when the step ends.
 */
export interface StepContext extends TrainingContext, AppliedStep {}

/** A batch after its gradient steps, as tensors the regularizer must not dispose. */
export interface BatchContext extends TrainingContext {
  readonly x: tf.Tensor2D;
  /** Each sample's output unit in the head. */
  readonly units: tf.Tensor1D;
}

/** A head that has just grown, with the model after the growth. */
export interface GrowthContext {
  readonly model: MultiHeadMlp;
  readonly growth: HeadGrowth;
}

export interface RegularizerState {
  readonly meta: Record<string, unknown>;
  readonly tensors: Record<string, TensorSnapshot>;
}

/**
 * The regularization family as plugins over one gradient learner (strategies/mlp-strategy.ts),
 * after Avalanche's lifecycle: `penalty` is its before_backward, `afterStep` its after_update,
 * `afterBatch` its after_training_iteration, `endTask` its after_training_exp.
 */
export interface Regularizer {
  /** Added to the task loss before the backward pass. Called inside tf.tidy; undefined = none. */
  penalty(context: TrainingContext): tf.Scalar | undefined;
  /**
   * After every gradient step, inside the step's tf.tidy: importances that integrate along the
   * training path (Synaptic Intelligence's -g·Δθ) accumulate here, into variables the regularizer
   * owns. Offline consolidation steps (rehearsal) are steps too. Absent = the step holds no
   * pre-update copy of the variables.
   */
  afterStep?(context: StepContext): void;
  /** After the gradient steps on a batch: accumulate importance while the task streams by. */
  afterBatch?(context: BatchContext): void;
  /** The task's data has gone: consolidate importances and anchors. */
  endTask(context: TrainingContext): void;
  /**
   * A head grew (a new label, between gradient steps): widen every per-parameter tensor kept for
   * its layer (growParameters). Absent = the regularizer keeps nothing per parameter.
   */
  growHead?(context: GrowthContext): void;
  exportState(): RegularizerState;
  importState(state: RegularizerState): void;
  dispose(): void;
}

/** Owned copies of every model variable, keyed like MultiHeadMlp.namedVariables(). */
export type ParameterTensors = Record<string, tf.Tensor>;

export function copyParameters(model: MultiHeadMlp): ParameterTensors {
  const copies: ParameterTensors = {};
  for (const [name, v] of model.namedVariables()) copies[name] = v.clone();
  return copies;
}

export function disposeParameters(params: ParameterTensors | undefined): void {
  if (params) for (const t of Object.values(params)) t.dispose();
}

/**
 * (lambda / 2) * sum_i w_i (theta_i - anchor_i)^2 over the parameters present in `anchor`
 * (a head added after the anchor was taken is not penalised); w = 1 where no importance is given.
 */
export function quadraticPenalty(model: MultiHeadMlp, anchor: ParameterTensors, importance: ParameterTensors | undefined, lambda: number): tf.Scalar {
  const terms: tf.Scalar[] = [];
  for (const [name, v] of model.namedVariables()) {
    const a = anchor[name];
    if (!a) continue;
    const sq = tf.square(tf.sub(v, a));
    const w = importance?.[name];
    terms.push(tf.sum(w ? tf.mul(w, sq) : sq));
  }
  return tf.mul(lambda / 2, terms.length ? tf.addN(terms) : tf.scalar(0));
}

/** Snapshots of a parameter set under a name prefix, for export. */
export function exportParameters(prefix: string, params: ParameterTensors | undefined, into: Record<string, TensorSnapshot>): void {
  if (!params) return;
  for (const [name, t] of Object.entries(params)) into[`${prefix}.${name}`] = { shape: [...t.shape], data: Float32Array.from(t.dataSync() as Float32Array) };
}

/** The inverse of exportParameters; undefined when no tensor has the prefix. */
export function importParameters(prefix: string, tensors: Record<string, TensorSnapshot>): ParameterTensors | undefined {
  const out: ParameterTensors = {};
  let any = false;
  for (const [key, s] of Object.entries(tensors)) {
    if (!key.startsWith(`${prefix}.`)) continue;
    out[key.slice(prefix.length + 1)] = tf.tensor(s.data, [...s.shape], 'float32');
    any = true;
  }
  return any ? out : undefined;
}

/**
 * Widens, in place, the tensors of `params` that belong to a grown layer. Importances of the new
 * units are zero ('zeros': nothing was learned there to protect); anchors take the new units'
 * initial values ('current'), as a pre-sized head's unused units are anchored where they were
 * initialised, so a grown head is regularized as a pre-sized one would be.
 */
export function growParameters(params: ParameterTensors | undefined, { model, growth }: GrowthContext, fill: 'zeros' | 'current'): void {
  if (!params) return;
  const variables = model.namedVariables();
  for (const part of ['kernel', 'bias']) {
    const name = `${growth.layer}.${part}`;
    const old = params[name];
    const variable = variables.get(name);
    if (!old || !variable) continue;
    const axis = old.rank - 1;
    const added = growth.to - (old.shape[axis] as number);
    if (added <= 0) continue;
    params[name] = tf.tidy(() => {
      const begin = old.shape.map((_, i) => (i === axis ? (old.shape[axis] as number) : 0));
      const size = old.shape.map((d, i) => (i === axis ? added : d));
      const tail = fill === 'zeros' ? tf.zeros(size) : tf.slice(variable, begin, size);
      return tf.concat([old, tail], axis);
    });
    old.dispose();
  }
}
