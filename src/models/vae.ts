/**
 * The variational autoencoder of Deep Generative Replay as van de Ven & Tolias (2019) used it:
 * the classifier's layer sizes mirrored (encoder input-h1-h2-(mu, log variance), decoder
 * z-h2-h1-input with a sigmoid output), latent 100, Bernoulli reconstruction loss plus KL, its own
 * Adam at the solver's learning rate.
 */
import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import { Rng } from '../core/rng';
import { gradientStep, reconstructionCrossEntropy } from './gradient-step';
import { exportOptimizer, importOptimizer } from './optimizer-state';
import { concatWeighted, DenseStack, relu, Sampler, type Generator, type GeneratorShape, type GeneratorState, type WeightedInputs } from './generator';

export class Vae implements Generator {
  readonly kind = 'vae' as const;
  private readonly encoder: DenseStack;
  /** One layer from the encoder's last hidden layer to [mu, log variance] (2 x latent units). */
  private readonly posterior: DenseStack;
  private readonly decoder: Sampler;
  private optimizer: tf.Optimizer | undefined;
  private disposed = false;

  constructor(
    readonly shape: GeneratorShape,
    private readonly learningRate: number,
    seed: number,
  ) {
    if (shape.hiddenLayers.length === 0) throw new StrategyError('the VAE needs at least one hidden layer');
    const rng = new Rng(seed);
    const last = shape.hiddenLayers[shape.hiddenLayers.length - 1] as number;
    this.encoder = DenseStack.create('encoder', [shape.inputSize, ...shape.hiddenLayers], rng);
    this.posterior = DenseStack.create('posterior', [last, 2 * shape.latent], rng);
    this.decoder = Sampler.create('decoder', shape, rng);
  }

  /**
   * One Adam step on the weighted mean of the per-sample loss: binary cross-entropy of the
   * reconstruction summed over pixels plus KL(q(z|x) || N(0, I)), divided by the input size (as
   * van de Ven & Tolias's code does, so the loss is per pixel whatever the image size).
   */
  train(parts: readonly WeightedInputs[], rng: Rng, readLoss: boolean): number | undefined {
    this.assertLive();
    const optimizer = (this.optimizer ??= tf.train.adam(this.learningRate, 0.9, 0.999));
    const { x, sampleWeights } = concatWeighted(parts);
    const epsilonSeed = rng.seed();
    try {
      const { reading } = gradientStep({
        optimizer,
        variables: this.variables(),
        read: readLoss,
        objective: () => {
          const latent = this.shape.latent;
          const stats = this.posterior.forward(relu(this.encoder.forward(x, relu)), relu);
          const mu = tf.slice(stats, [0, 0], [-1, latent]);
          const logVar = tf.slice(stats, [0, latent], [-1, latent]);
          // Reparameterisation: z = mu + sigma * epsilon keeps the sampling differentiable.
          const epsilon = tf.randomNormal(mu.shape, 0, 1, 'float32', epsilonSeed);
          const z = tf.add(mu, tf.mul(tf.exp(tf.mul(0.5, logVar)), epsilon)) as tf.Tensor2D;
          const logits = this.decoder.logits(z);
          const bce = reconstructionCrossEntropy(logits, x);
          const kl = tf.mul(-0.5, tf.sum(tf.sub(tf.sub(tf.add(1, logVar), tf.square(mu)), tf.exp(logVar)), 1));
          const perSample = tf.div(tf.add(bce, kl), this.shape.inputSize);
          const loss = tf.sum(tf.mul(perSample, sampleWeights)) as tf.Scalar;
          return { objective: loss, loss };
        },
      });
      return reading?.loss;
    } finally {
      x.dispose();
      sampleWeights.dispose();
    }
  }

  sample(n: number, rng: Rng): tf.Tensor2D {
    this.assertLive();
    return this.decoder.sample(n, rng);
  }

  freeze(): Sampler {
    this.assertLive();
    return this.decoder.copy();
  }

  async exportState(prefix: string): Promise<GeneratorState> {
    this.assertLive();
    const tensors = {};
    this.encoder.exportTo(prefix, tensors);
    this.posterior.exportTo(prefix, tensors);
    this.decoder.network.exportTo(prefix, tensors);
    const optimizerSlots = await exportOptimizer(this.optimizer, `${prefix}.optimizer`, tensors);
    return { meta: { kind: this.kind, shape: this.shape, optimizerSlots }, tensors };
  }

  async importState(prefix: string, state: GeneratorState): Promise<void> {
    this.assertLive();
    const meta = state.meta as { kind?: string; shape?: GeneratorShape; optimizerSlots?: number };
    if (meta.kind !== this.kind) throw new StrategyError(`state holds a ${String(meta.kind)} generator, not a ${this.kind}`);
    if (JSON.stringify(meta.shape) !== JSON.stringify(this.shape)) throw new StrategyError(`state's VAE shape ${JSON.stringify(meta.shape)} does not match ${JSON.stringify(this.shape)}`);
    this.encoder.importFrom(prefix, state.tensors);
    this.posterior.importFrom(prefix, state.tensors);
    this.decoder.network.importFrom(prefix, state.tensors);
    this.optimizer?.dispose();
    this.optimizer = undefined;
    if ((meta.optimizerSlots ?? 0) > 0) {
      this.optimizer = tf.train.adam(this.learningRate, 0.9, 0.999);
      await importOptimizer(this.optimizer, `${prefix}.optimizer`, meta.optimizerSlots ?? 0, state.tensors);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.optimizer?.dispose();
    this.encoder.dispose();
    this.posterior.dispose();
    this.decoder.dispose();
  }

  /** Trained variables, always in this order (the optimizer's slots follow it). */
  private variables(): tf.Variable[] {
    return [...this.encoder.variables(), ...this.posterior.variables(), ...this.decoder.network.variables()];
  }

  private assertLive(): void {
    if (this.disposed) throw new StrategyError('the VAE has been disposed');
  }
}
