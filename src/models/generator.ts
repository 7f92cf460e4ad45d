/**
 * What the generative models of Deep Generative Replay (strategies/dgr.ts) share: the Generator
 * contract, a stack of dense layers, and the sampling network (the VAE's decoder and the GAN's
 * generator have the same shape).
 */
import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import type { Rng } from '../core/rng';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import { assignSnapshot, denseLayer, snapshot, variableFrom, type DenseLayer } from './mlp';

export type GeneratorKind = 'vae' | 'wgan-gp';
export const GENERATOR_KINDS: readonly GeneratorKind[] = ['vae', 'wgan-gp'];

export interface GeneratorShape {
  readonly inputSize: number;
  /**
   * Hidden sizes in the classifier's order (input side first): encoders and critics use them as
   * given, decoders and GAN generators in reverse, so the two mirror each other.
   */
  readonly hiddenLayers: readonly number[];
  /** Size of the latent code z ~ N(0, I). */
  readonly latent: number;
}

/** Training inputs with the weight of their mean loss (DGR: 1/t for real, 1 - 1/t for replayed). */
export interface WeightedInputs {
  readonly x: tf.Tensor2D;
  readonly weight: number;
}

export interface GeneratorState {
  readonly meta: Record<string, unknown>;
  readonly tensors: Record<string, TensorSnapshot>;
}

/** A generative model of the inputs, trained online batch by batch. */
export interface Generator {
  readonly kind: GeneratorKind;
  readonly shape: GeneratorShape;
  /**
   * One training step on a weighted mix of inputs (pixel intensities in [0, 1]); returns the
   * step's loss when `readLoss` (a download, so only on a batch's last step). Randomness (latent
   * noise, interpolation) comes from `rng`, so a step is reproducible from its seed.
   */
  train(parts: readonly WeightedInputs[], rng: Rng, readLoss: boolean): number | undefined;
  /** n generated inputs (n x inputSize, in [0, 1]); the caller owns the tensor. */
  sample(n: number, rng: Rng): tf.Tensor2D;
  /** A frozen copy of the sampling network: the generator half of the previous scholar. */
  freeze(): Sampler;
  exportState(prefix: string): Promise<GeneratorState>;
  importState(prefix: string, state: GeneratorState): Promise<void>;
  dispose(): void;
}

export type Activation = (z: tf.Tensor2D) => tf.Tensor2D;

export const relu: Activation = (z) => tf.relu(z);

/**
 * Leaky ReLU written as z * (alpha + (1 - alpha) * step(z)). tf.leakyRelu cannot be used where a
 * gradient is differentiated again (the WGAN-GP penalty): its gradient uses Greater, which has
 * no gradient in tfjs ("gradient function not found for Greater"); Step has one (zero).
 */
export function leakyRelu(alpha: number): Activation {
  return (z) => tf.mul(z, tf.add(alpha, tf.mul(1 - alpha, tf.step(z))));
}

/**
 * Dense layers applied in turn, `activation` after every layer but the last (the caller applies
 * the output's own: sigmoid, identity...). Glorot-uniform kernels, zero biases, as MultiHeadMlp's layers.
 */
export class DenseStack {
  private constructor(readonly layers: readonly DenseLayer[]) {}

  /** `sizes` = [fan-in, units of layer 1, ..., units of the last layer]; layers named NAME.1, NAME.2... */
  static create(name: string, sizes: readonly number[], rng: Rng): DenseStack {
    if (sizes.length < 2) throw new StrategyError(`${name} needs at least one layer`);
    return new DenseStack(
      sizes.slice(1).map((units, i) => denseLayer(`${name}.${i + 1}`, sizes[i] as number, units, rng)),
    );
  }

  /** Pre-activation of the last layer. */
  forward(x: tf.Tensor2D, activation: Activation): tf.Tensor2D {
    let a = x;
    this.layers.forEach((layer, i) => {
      const z = tf.add(tf.matMul(a, layer.kernel), layer.bias) as tf.Tensor2D;
      a = i === this.layers.length - 1 ? z : activation(z);
    });
    return a;
  }

  variables(): tf.Variable[] {
    return this.layers.flatMap((l) => [l.kernel, l.bias]);
  }

  /** A copy with its own variables (tensors are immutable: the copy shares no state that training changes). */
  copy(): DenseStack {
    return new DenseStack(
      this.layers.map((l) => ({
        name: l.name,
        kernel: variableFrom(l.kernel.clone()) as tf.Variable<tf.Rank.R2>,
        bias: variableFrom(l.bias.clone()) as tf.Variable<tf.Rank.R1>,
      })),
    );
  }

  exportTo(prefix: string, into: Record<string, TensorSnapshot>): void {
    for (const l of this.layers) {
      into[`${prefix}.${l.name}.kernel`] = snapshot(l.kernel);
      into[`${prefix}.${l.name}.bias`] = snapshot(l.bias);
    }
  }

  importFrom(prefix: string, tensors: Readonly<Record<string, TensorSnapshot>>): void {
    for (const l of this.layers) {
      for (const [part, v] of [['kernel', l.kernel], ['bias', l.bias]] as const) {
        const key = `${prefix}.${l.name}.${part}`;
        const s = tensors[key];
        if (!s) throw new StrategyError(`state lacks tensor ${key}`);
        assignSnapshot(v, s, key);
      }
    }
  }

  dispose(): void {
    for (const l of this.layers) {
      l.kernel.dispose();
      l.bias.dispose();
    }
  }
}

/**
 * The sampling network: z ~ N(0, I) through the hidden layers in reverse (ReLU) to a sigmoid
 * output, i.e. the VAE's decoder or the GAN's generator.
 */
export class Sampler {
  constructor(
    readonly shape: GeneratorShape,
    readonly network: DenseStack,
  ) {}

  static create(name: string, shape: GeneratorShape, rng: Rng): Sampler {
    return new Sampler(shape, DenseStack.create(name, [shape.latent, ...[...shape.hiddenLayers].reverse(), shape.inputSize], rng));
  }

  /** Logits of the generated inputs for latent codes z; call inside tf.tidy. */
  logits(z: tf.Tensor2D): tf.Tensor2D {
    return this.network.forward(z, relu);
  }

  /** Latent codes; call inside tf.tidy. */
  noise(n: number, rng: Rng): tf.Tensor2D {
    return tf.randomNormal([n, this.shape.latent], 0, 1, 'float32', rng.seed());
  }

  sample(n: number, rng: Rng): tf.Tensor2D {
    if (!Number.isInteger(n) || n < 1) throw new StrategyError(`cannot generate ${n} samples`);
    return tf.tidy(() => tf.sigmoid(this.logits(this.noise(n, rng))));
  }

  /** A frozen copy (the previous scholar's generator). */
  copy(): Sampler {
    return new Sampler(this.shape, this.network.copy());
  }

  dispose(): void {
    this.network.dispose();
  }
}

/**
 * Per-sample weights so that sum_i w_i loss_i = sum_k weight_k * mean(loss over part k): one
 * forward pass over the concatenated parts instead of one per part.
 */
export function concatWeighted(parts: readonly WeightedInputs[]): { x: tf.Tensor2D; sampleWeights: tf.Tensor1D } {
  const used = parts.filter((p) => p.weight > 0 && p.x.shape[0] > 0);
  if (used.length === 0) throw new StrategyError('a generator step needs inputs with a positive weight');
  const n = used.reduce((sum, p) => sum + p.x.shape[0], 0);
  const w = new Float32Array(n);
  let at = 0;
  for (const p of used) {
    w.fill(p.weight / p.x.shape[0], at, at + p.x.shape[0]);
    at += p.x.shape[0];
  }
  return {
    x: used.length === 1 ? (used[0] as WeightedInputs).x.clone() : (tf.concat(used.map((p) => p.x), 0) as tf.Tensor2D),
    sampleWeights: tf.tensor1d(w),
  };
}
