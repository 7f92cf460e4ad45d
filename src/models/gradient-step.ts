/**
 * The one optimizer step every trained network takes (the strategies' classifiers, DEN, the
 * progressive columns, DGR's generators), in one tfjs memory idiom: the objective and its
 * gradients are computed by tf.variableGrads inside one tf.tidy, together with the update and
 * the hooks, so every intermediate is freed when the step returns; only what the caller asks
 * for (the loss and penalty to read, tensors to keep) leaves the scope.
 *
 * It lives with the models, below the strategies, so that the generators (models/vae.ts,
 * models/wgan-gp.ts) take the same step as the classifiers.
 *
 * A step whose objective or any gradient is not finite is refused before anything changes: one
 * NaN or Infinity applied would spread through the shared weights to every task learned so far.
 * Deciding needs one download per step (a flag, with the loss and penalty when they are read);
 * on the CPU and wasm backends that is a copy of a few bytes. Checking on the device instead
 * could restore the weights and moments, but not the optimizer's step count, which tfjs keeps
 * in JavaScript.
 */
import * as tf from '@tensorflow/tfjs';
import { FusedAdam } from './fused-adam';

/** Why a strategy refuses the samples of a step that was refused (TrainResult.rejected, dead letters, metrics). */
export const NON_FINITE_UPDATE = 'non-finite-update';

/** What one step minimises, built inside the step's scope (and gradient tape) from the current variables. */
export interface StepObjective {
  /** The scalar the optimizer minimises. */
  readonly objective: tf.Scalar;
  /** The loss reported to the caller (a strategy's task loss, without its penalty); read on request. */
  readonly loss: tf.Scalar;
  /** The penalty reported beside it; 0 when absent. */
  readonly penalty?: tf.Scalar;
  /** Tensors the caller needs after the step (e.g. the logits before the update); the caller then owns them. */
  readonly keep?: readonly tf.Tensor[];
}

/** One variable's gradient, as the optimizer receives it; undefined where the objective does not reach the variable (the optimizer then leaves it alone). */
export type StepGradient = tf.Tensor | undefined;

/** A step as it was taken, for observers (e.g. Synaptic Intelligence's path integral of -g·Δθ). */
export interface AppliedStep {
  readonly variables: readonly tf.Variable[];
  /** The gradients applied, in the order of `variables`. */
  readonly gradients: readonly StepGradient[];
  /** Each variable's change over the whole step (optimizer update and afterUpdate), in the order of `variables`. */
  readonly updates: readonly tf.Tensor[];
}

/**
 * Hooks into a step, all called inside its scope: tensors they create are freed when the step
 * returns, so an observer that accumulates must assign into variables it owns (or tf.keep).
 */
export interface StepHooks {
  /** The gradients to apply instead of the computed ones (DEN: masked to the phase's trainable weights). */
  transformGradients?(gradients: readonly StepGradient[]): StepGradient[];
  /** After the optimizer's update: changes to the variables that are no gradient step (DEN's proximal steps). */
  afterUpdate?(): void;
  /**
   * Sees the step as taken. Only when it is given are the variables' values before the step held
   * and the updates computed, so a step without observers costs nothing more.
   */
  observe?(step: AppliedStep): void;
}

export interface GradientStep {
  readonly optimizer: tf.Optimizer;
  /**
   * The trained variables. tfjs optimizers key their moments by position in this list: it must
   * keep its order for the optimizer's whole life.
   */
  readonly variables: readonly tf.Variable[];
  readonly objective: () => StepObjective;
  /** Read the loss and penalty: a download, which stalls the backend, so only on a batch's last step. */
  readonly read?: boolean;
  readonly hooks?: StepHooks;
}

export interface StepResult {
  /**
   * False when the step was refused (a non-finite objective or gradient): the variables, the
   * optimizer (moments, beta powers, step count) and everything the hooks own are as they were;
   * afterUpdate and observe were not called.
   */
  readonly applied: boolean;
  /** The objective's loss and penalty, when the step was asked to read them and was applied. */
  readonly reading?: { readonly loss: number; readonly penalty: number };
  /** The objective's `keep` tensors; the caller disposes them. */
  readonly kept: tf.Tensor[];
}

/** Takes one optimizer step, unless its objective or a gradient is not finite (see StepResult.applied). */
export function gradientStep(step: GradientStep): StepResult {
  const { optimizer, variables, hooks, read = false } = step;
  const result: { applied: boolean; reading?: { loss: number; penalty: number }; kept: tf.Tensor[] } = { applied: false, kept: [] };
  tf.tidy(() => {
    const before = hooks?.observe ? variables.map((v) => v.clone()) : undefined;
    let readParts: tf.Scalar[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const parts = step.objective();
      // Clones: the objective may be the loss itself, and kept tensors must outlive the tape's scope.
      readParts = read ? [tf.keep(parts.loss.clone()), tf.keep(parts.penalty ? parts.penalty.clone() : tf.scalar(0))] : [];
      result.kept = (parts.keep ?? []).map((t) => tf.keep(t.clone()));
      return parts.objective;
    }, [...variables]);
    const computed = variables.map((v) => grads[v.name] ?? undefined);
    const gradients = hooks?.transformGradients ? hooks.transformGradients(computed) : computed;
    // FusedAdam needs the gradients in one flat tensor anyway, so it is checked in one op; another
    // optimizer (the generators' tf.train.adam) gets a check per gradient rather than a copy of
    // every gradient made only to be checked.
    const flat = optimizer instanceof FusedAdam ? optimizer.flatGradient(variables, gradients) : undefined;
    const checked = flat !== undefined ? [value, flat] : [value, ...gradients.filter((g): g is tf.Tensor => g !== undefined)];
    // One download decides and reads: [all finite, loss, penalty].
    const finite = tf.all(tf.stack(checked.map((t) => tf.all(tf.isFinite(t)))));
    const verdict = tf.concat([tf.reshape(tf.cast(finite, 'float32'), [1]), ...readParts.map((t) => tf.reshape(t, [1]))]).dataSync();
    tf.dispose(readParts);
    if (verdict[0] !== 1) return;
    if (read) result.reading = { loss: verdict[1] as number, penalty: verdict[2] as number };
    if (flat !== undefined) (optimizer as FusedAdam).applyFlatGradient(variables, gradients.map((g) => g !== undefined), flat);
    // A list, not a map: tfjs keys moments by position, and an object's numeric-looking keys
    // (tfjs names variables by number) would be ordered by number, not by this list.
    else optimizer.applyGradients(variables.map((v, i) => ({ name: v.name, tensor: gradients[i] as tf.Tensor })));
    hooks?.afterUpdate?.();
    if (before && hooks?.observe) hooks.observe({ variables, gradients, updates: variables.map((v, i) => tf.sub(v, before[i] as tf.Tensor)) });
    result.applied = true;
  });
  return result;
}

/**
 * One-hot targets over `depth` units. tf.oneHot refuses depth 1, the depth of a head that knows a
 * single label (a first batch of one class): a one-unit softmax is certain, so its target is 1.
 */
export function oneHotTargets(units: tf.Tensor1D, depth: number): tf.Tensor2D {
  return depth === 1 ? tf.ones([units.shape[0], 1], 'int32') : (tf.oneHot(units, depth) as tf.Tensor2D);
}

/**
 * Mean softmax cross-entropy of logits over a head's active units against each sample's unit:
 * the classification loss of every strategy's step. With one unit it is 0, with zero gradient.
 */
export function classificationLoss(logits: tf.Tensor2D, units: tf.Tensor1D): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(oneHotTargets(units, logits.shape[1]), logits) as tf.Scalar;
}

/**
 * Binary cross-entropy of a sigmoid output given by its logits, summed over features, per sample
 * (a Bernoulli reconstruction error: the VAE's loss, Expert Gate's task score). Stable form:
 * max(l, 0) - l * x + log(1 + exp(-|l|)). Call inside tf.tidy.
 */
export function reconstructionCrossEntropy(logits: tf.Tensor2D, target: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.add(tf.sub(tf.relu(logits), tf.mul(logits, target)), tf.log1p(tf.exp(tf.neg(tf.abs(logits))))), 1) as tf.Tensor1D;
}
