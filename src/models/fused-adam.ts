/**
 * Adam with its moments in one flat buffer for the whole variable list (the multi-tensor idea of
 * PyTorch's foreach/fused Adam): an update is Adam's element-wise math once over the flat
 * gradient (one concat of the flattened gradients, which the training step also checks for
 * finiteness in one op), then a slice and an add per variable, instead of ~14 small ops per
 * variable. Per-op overhead, not arithmetic, dominates a step on native TensorFlow (issue 16),
 * so the op count is what this saves; segments are aligned (flat-layout.ts) so that on native
 * the slices alias the flat change instead of copying it.
 *
 * Numerics are tfjs's AdamOptimizer's exactly (tfjs-core optimizers/adam_optimizer.js): the same
 * element-wise operations in the same order with the same float32 constants, so every element is
 * rounded as there and results are bit-identical; concat, slice and reshape only move bytes.
 * Its contract is tfjs's too, so checkpoints keep their layout: moments keyed by position in the
 * variable list, created as zeros the first time a position is seen (with or without a
 * gradient), left alone where a gradient is missing, and getWeights/setWeights as [iteration
 * count, first moments by position, second moments by position].
 */
import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import { FlatLayout } from './flat-layout';

/**
 * Adam's beta power after `iterations` steps as training keeps it: beta^(iterations+1) as a
 * running float32 product, one multiplication per step. pow(beta, t) differs in the last bits,
 * enough for a restored copy to drift from the original by ~1e-8 per step.
 */
export function betaPower(beta: number, iterations: number): number {
  const b = Math.fround(beta);
  let acc = b;
  for (let i = 0; i < iterations; i++) acc = Math.fround(acc * b);
  return acc;
}

/**
 * `instance instanceof cls` by prototype chain. tfjs's Optimizer overrides instanceof with a duck
 * test that every optimizer passes, so `sgd instanceof tf.AdamOptimizer` is true.
 */
export function isInstanceOf(instance: unknown, cls: abstract new (...args: never[]) => unknown): boolean {
  return typeof instance === 'object' && instance !== null && Object.prototype.isPrototypeOf.call(cls.prototype, instance);
}

/** tfjs's optimizer weight (not exported from its index). */
interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

export class FusedAdam extends tf.Optimizer {
  static get className(): string {
    return 'FusedAdam';
  }

  /** tfjs's Optimizer answers instanceof for any optimizer (duck-typed); this class answers for its own. */
  static override [Symbol.hasInstance](instance: unknown): boolean {
    return isInstanceOf(instance, FusedAdam);
  }

  private readonly epsilon: number;
  private readonly accBeta1: tf.Variable;
  private readonly accBeta2: tf.Variable;
  /** Where each position's moments sit in the flat buffers. */
  private layout = new FlatLayout([]);
  /** Moments of every position in `layout`; undefined before the first. */
  private firstMoment: tf.Variable | undefined;
  private secondMoment: tf.Variable | undefined;

  constructor(
    private readonly learningRate: number,
    private readonly beta1: number,
    private readonly beta2: number,
    epsilon?: number,
  ) {
    super();
    this.epsilon = epsilon ?? tf.backend().epsilon();
    this.accBeta1 = tf.tidy(() => tf.scalar(beta1).variable());
    this.accBeta2 = tf.tidy(() => tf.scalar(beta2).variable());
  }

  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const named = Array.isArray(variableGradients) ? variableGradients : Object.keys(variableGradients).map((name) => ({ name, tensor: variableGradients[name] as tf.Tensor }));
    const values = named.map(({ name }) => {
      const value = tf.engine().registeredVariables[name];
      if (!value) throw new StrategyError(`optimizer: no variable named ${name}`);
      return value;
    });
    const gradients = named.map((n) => n.tensor ?? undefined);
    tf.tidy(() => this.applyFlatGradient(values, gradients.map((g) => g !== undefined), this.flatGradient(values, gradients)));
  }

  /**
   * The gradients of `variables` as one flat tensor in this optimizer's layout (zeros where a
   * gradient is missing), as applyFlatGradient takes it. Call inside tf.tidy.
   */
  flatGradient(variables: readonly tf.Variable[], gradients: readonly (tf.Tensor | undefined)[]): tf.Tensor1D {
    const layout = this.layoutFor(variables);
    gradients.forEach((g, i) => {
      const segment = layout.segments[i];
      if (g && segment && !tf.util.arraysEqual(g.shape, segment.shape as number[])) throw new StrategyError(`optimizer position ${i} holds moments of shape [${segment.shape}], the variable [${g.shape}]`);
    });
    return layout.flatten(gradients);
  }

  /**
   * One Adam update of `variables` from their flat gradient (flatGradient): tfjs Adam's
   * element-wise math once over the flat buffers, then each present variable adds its part of
   * the change (pieces that alias the flat change on native). Positions without a gradient keep their moments
   * and values. Call inside tf.tidy.
   */
  applyFlatGradient(variables: readonly tf.Variable[], present: readonly boolean[], gradient: tf.Tensor1D): void {
    this.appendSegments(variables);
    const layout = this.layout;
    const oneMinusAccBeta1 = tf.sub(1, this.accBeta1);
    const oneMinusAccBeta2 = tf.sub(1, this.accBeta2);
    const m = this.firstMoment as tf.Variable;
    const v = this.secondMoment as tf.Variable;
    let newFirstMoment = tf.add(tf.mul(m, this.beta1), tf.mul(gradient, 1 - this.beta1));
    let newSecondMoment = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(gradient), 1 - this.beta2));
    const biasCorrectedFirstMoment = tf.div(newFirstMoment, oneMinusAccBeta1);
    const biasCorrectedSecondMoment = tf.div(newSecondMoment, oneMinusAccBeta2);
    const change = tf.mul(tf.div(biasCorrectedFirstMoment, tf.add(tf.sqrt(biasCorrectedSecondMoment), this.epsilon)), -this.learningRate) as tf.Tensor1D;
    if (layout.segments.length !== variables.length || present.some((p) => !p)) {
      // Positions without a gradient (or beyond the list) keep their old moments.
      const mask = tf.cast(layout.flatten(layout.segments.map((s, i) => (present[i] ? tf.ones([s.size]) : undefined))), 'bool');
      newFirstMoment = tf.where(mask, newFirstMoment, m);
      newSecondMoment = tf.where(mask, newSecondMoment, v);
    }
    m.assign(newFirstMoment);
    v.assign(newSecondMoment);
    const changes = layout.pieces(change);
    variables.forEach((value, i) => {
      if (present[i]) value.assign(tf.add(changes[i] as tf.Tensor, value));
    });
    this.accBeta1.assign(tf.mul(this.accBeta1, this.beta1));
    this.accBeta2.assign(tf.mul(this.accBeta2, this.beta2));
    this.incrementIterations();
  }

  /** The layout with positions first seen in `variables` appended (created by the next update). */
  private layoutFor(variables: readonly tf.Variable[]): FlatLayout {
    const seen = this.layout.segments.length;
    return variables.length <= seen ? this.layout : this.layout.extended(variables.slice(seen).map((v) => v.shape));
  }

  /** Zero moments for positions seen for the first time, as tfjs creates them (zerosLike the variable). */
  private appendSegments(variables: readonly tf.Variable[]): void {
    const layout = this.layoutFor(variables);
    if (layout === this.layout) return;
    const zeros = layout.size - this.layout.size;
    this.layout = layout;
    this.firstMoment = this.widened(this.firstMoment, zeros);
    this.secondMoment = this.widened(this.secondMoment, zeros);
  }

  private widened(moment: tf.Variable | undefined, zeros: number): tf.Variable {
    const wider = tf.tidy(() => (moment ? tf.concat([moment, tf.zeros([zeros])]) : tf.zeros([zeros])).variable(false));
    moment?.dispose();
    return wider;
  }

  /**
   * After the variable at `index` was replaced by a wider one (a head that grew), widens that
   * position's moments to its shape with zeros: old units keep their moments, new ones start as
   * a fresh variable's would. A position not reached yet gets its moments when it is.
   */
  growSlot(index: number, variable: tf.Variable): void {
    const segment = this.layout.segments[index];
    if (!segment) return;
    if (segment.shape.length !== variable.shape.length) throw new StrategyError(`optimizer slot ${index} has shape [${segment.shape}], the variable [${variable.shape}]`);
    const old = this.layout;
    const grown = old.withShape(index, variable.shape);
    const widen = (moment: tf.Variable) => {
      const wider = tf.tidy(() => {
        const pieces = old.pieces(moment as tf.Tensor1D);
        pieces[index] = tf.pad(pieces[index] as tf.Tensor, segment.shape.map((d, i) => [0, (variable.shape[i] as number) - d] as [number, number]));
        return grown.flatten(pieces).variable(false);
      });
      moment.dispose();
      return wider;
    };
    this.firstMoment = widen(this.firstMoment as tf.Variable);
    this.secondMoment = widen(this.secondMoment as tf.Variable);
    this.layout = grown;
  }

  override dispose(): void {
    this.accBeta1.dispose();
    this.accBeta2.dispose();
    this.firstMoment?.dispose();
    this.secondMoment?.dispose();
  }

  /** [iteration count, first moments by position, second moments by position]: all fresh tensors, the caller's to dispose. */
  override async getWeights(): Promise<NamedTensor[]> {
    const views = (moment: tf.Variable | undefined, suffix: string) => {
      if (!moment) return [];
      return tf.tidy(() => this.layout.pieces(moment as tf.Tensor1D)).map((tensor, i) => ({ name: `${i}/${suffix}`, tensor }));
    };
    return [await this.saveIterations(), ...views(this.firstMoment, 'm'), ...views(this.secondMoment, 'v')];
  }

  /**
   * Loads [iteration count, first moments, second moments] (tfjs Adam's layout), with the beta
   * powers as training keeps them (betaPower).
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const moments = await this.extractIterations(weightValues);
    const count = moments.length / 2;
    this.layout = FlatLayout.of(moments.slice(0, count).map(({ tensor }) => tensor));
    const flat = (part: NamedTensor[]) => tf.tidy(() => this.layout.flatten(part.map(({ tensor }) => tensor)).variable(false));
    this.firstMoment?.dispose();
    this.secondMoment?.dispose();
    this.firstMoment = count > 0 ? flat(moments.slice(0, count)) : undefined;
    this.secondMoment = count > 0 ? flat(moments.slice(count)) : undefined;
    tf.tidy(() => {
      this.accBeta1.assign(tf.scalar(betaPower(this.beta1, this.iterations)));
      this.accBeta2.assign(tf.scalar(betaPower(this.beta2, this.iterations)));
    });
  }

  getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }
}
