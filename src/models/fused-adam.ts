/**
 * Adam with its moments in one flat buffer for the whole variable list (the multi-tensor idea of
 * PyTorch's foreach/fused Adam): an update is one concat of the flattened gradients, Adam's
 * element-wise math once over the flat tensors, one split back and an add per variable, instead
 * of ~14 small ops per variable. Per-op overhead, not arithmetic, dominates a step on native
 * TensorFlow (issue 16), so the op count is what this saves.
 *
 * Numerics are tfjs's AdamOptimizer's exactly (tfjs-core optimizers/adam_optimizer.js): the same
 * element-wise operations in the same order with the same float32 constants, so every element is
 * rounded as there and results are bit-identical; concat, split and reshape only move bytes.
 * Its contract is tfjs's too, so checkpoints keep their layout: moments keyed by position in the
 * variable list, created as zeros the first time a position is seen (with or without a
 * gradient), left alone where a gradient is missing, and getWeights/setWeights as [iteration
 * count, first moments by position, second moments by position].
 */
import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';

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

/** One variable's place in the flat buffers. */
interface Segment {
  readonly shape: readonly number[];
  readonly size: number;
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
  private segments: Segment[] = [];
  /** Moments of every segment, flattened and concatenated in position order; undefined before the first. */
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
    this.appendSegments(values);
    tf.tidy(() => {
      const oneMinusAccBeta1 = tf.sub(1, this.accBeta1);
      const oneMinusAccBeta2 = tf.sub(1, this.accBeta2);
      const present = named.map((n) => n.tensor != null);
      const every = present.length === this.segments.length && present.every(Boolean);
      values.forEach((value, i) => {
        const segment = this.segments[i] as Segment;
        if (present[i] && !tf.util.arraysEqual(value.shape, segment.shape as number[])) throw new StrategyError(`optimizer position ${i} holds moments of shape [${segment.shape}], the variable [${value.shape}]`);
      });
      // Positions without a gradient (or beyond the list) take zeros and keep their old moments below.
      const gradient = tf.concat(this.segments.map((s, i) => (present[i] ? tf.reshape(named[i]?.tensor as tf.Tensor, [-1]) : tf.zeros([s.size]))));
      const m = this.firstMoment as tf.Variable;
      const v = this.secondMoment as tf.Variable;
      let newFirstMoment = tf.add(tf.mul(m, this.beta1), tf.mul(gradient, 1 - this.beta1));
      let newSecondMoment = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(gradient), 1 - this.beta2));
      const biasCorrectedFirstMoment = tf.div(newFirstMoment, oneMinusAccBeta1);
      const biasCorrectedSecondMoment = tf.div(newSecondMoment, oneMinusAccBeta2);
      const change = tf.mul(tf.div(biasCorrectedFirstMoment, tf.add(tf.sqrt(biasCorrectedSecondMoment), this.epsilon)), -this.learningRate);
      if (!every) {
        const mask = tf.concat(this.segments.map((s, i) => present[i] ? tf.ones([s.size], 'bool') : tf.zeros([s.size], 'bool')));
        newFirstMoment = tf.where(mask, newFirstMoment, m);
        newSecondMoment = tf.where(mask, newSecondMoment, v);
      }
      m.assign(newFirstMoment);
      v.assign(newSecondMoment);
      const changes = this.segments.length === 1 ? [change] : tf.split(change, this.segments.map((s) => s.size));
      values.forEach((value, i) => {
        if (present[i]) value.assign(tf.add(tf.reshape(changes[i] as tf.Tensor, value.shape), value));
      });
      this.accBeta1.assign(tf.mul(this.accBeta1, this.beta1));
      this.accBeta2.assign(tf.mul(this.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }

  /** Zero moments for positions seen for the first time, as tfjs creates them (zerosLike the variable). */
  private appendSegments(values: readonly tf.Variable[]): void {
    if (values.length <= this.segments.length) return;
    const added = values.slice(this.segments.length).map((v) => ({ shape: [...v.shape], size: v.size }));
    const zeros = added.reduce((n, s) => n + s.size, 0);
    this.segments = [...this.segments, ...added];
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
    const segment = this.segments[index];
    if (!segment) return;
    if (segment.shape.length !== variable.shape.length) throw new StrategyError(`optimizer slot ${index} has shape [${segment.shape}], the variable [${variable.shape}]`);
    const offset = this.segments.slice(0, index).reduce((n, s) => n + s.size, 0);
    const grown: Segment = { shape: [...variable.shape], size: variable.size };
    const widen = (moment: tf.Variable) => {
      const wider = tf.tidy(() => {
        const old = tf.reshape(tf.slice(moment, offset, segment.size), segment.shape as number[]);
        const padded = tf.pad(old, segment.shape.map((d, i) => [0, (variable.shape[i] as number) - d] as [number, number]));
        const after = moment.size - offset - segment.size;
        // Native TensorFlow's concat refuses empty pieces.
        const pieces = [offset > 0 ? tf.slice(moment, 0, offset) : undefined, tf.reshape(padded, [-1]), after > 0 ? tf.slice(moment, offset + segment.size) : undefined];
        return tf.concat(pieces.filter((p): p is tf.Tensor => p !== undefined)).variable(false);
      });
      moment.dispose();
      return wider;
    };
    this.firstMoment = widen(this.firstMoment as tf.Variable);
    this.secondMoment = widen(this.secondMoment as tf.Variable);
    this.segments = this.segments.map((s, i) => (i === index ? grown : s));
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
      if (!moment || this.segments.length === 0) return [];
      const parts = tf.tidy(() => tf.split(moment, this.segments.map((s) => s.size)).map((t, i) => tf.reshape(t, this.segments[i]?.shape as number[])));
      return parts.map((tensor, i) => ({ name: `${i}/${suffix}`, tensor }));
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
    this.segments = moments.slice(0, count).map(({ tensor }) => ({ shape: [...tensor.shape], size: tensor.size }));
    const flat = (part: NamedTensor[]) => tf.tidy(() => (part.length === 0 ? tf.zeros([0]) : tf.concat(part.map(({ tensor }) => tf.reshape(tensor, [-1])))).variable(false));
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
