/**
 * A Wasserstein GAN with gradient penalty (Gulrajani et al. 2017), the generator of Shin et al.'s
 * Deep Generative Replay: gradient penalty 10, 5 critic steps per generator step, z of size 100,
 * Adam(lr, 0.5, 0.9) for both networks. MLPs here: the generator mirrors the classifier's hidden
 * layers (z-h2-h1-input, ReLU, sigmoid output), the critic has them in order (input-h1-h2-1,
 * leaky ReLU 0.2).
 *
 * The penalty differentiates the critic's gradient with respect to its input: tf.grad inside
 * the critic's loss works in tfjs (second-order gradients), provided every op on the path has a
 * gradient itself; tf.leakyRelu does not qualify (see generator.ts leakyRelu), so the critic uses
 * a step-based leaky ReLU.
 */
import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import { Rng } from '../core/rng';
import { gradientStep } from './gradient-step';
import { exportOptimizer, importOptimizer } from './optimizer-state';
import { concatWeighted, DenseStack, leakyRelu, Sampler, type Generator, type GeneratorShape, type GeneratorState, type WeightedInputs } from './generator';

export interface WganGpSettings {
  /** Weight of the gradient penalty (lambda of Gulrajani et al.). */
  readonly gradientPenalty: number;
  /** Critic steps per generator step. */
  readonly criticSteps: number;
}

export const WGAN_GP_DEFAULTS: WganGpSettings = { gradientPenalty: 10, criticSteps: 5 };

const criticActivation = leakyRelu(0.2);

export class WganGp implements Generator {
  readonly kind = 'wgan-gp' as const;
  private readonly generator: Sampler;
  private readonly critic: DenseStack;
  private generatorOptimizer: tf.Optimizer | undefined;
  private criticOptimizer: tf.Optimizer | undefined;
  private disposed = false;

  constructor(
    readonly shape: GeneratorShape,
    private readonly learningRate: number,
    seed: number,
    private readonly settings: WganGpSettings = WGAN_GP_DEFAULTS,
  ) {
    if (shape.hiddenLayers.length === 0) throw new StrategyError('the WGAN-GP needs at least one hidden layer');
    if (!Number.isInteger(settings.criticSteps) || settings.criticSteps < 1) throw new StrategyError(`criticSteps must be a positive integer, got ${settings.criticSteps}`);
    const rng = new Rng(seed);
    this.generator = Sampler.create('generator', shape, rng);
    this.critic = DenseStack.create('critic', [shape.inputSize, ...shape.hiddenLayers, 1], rng);
  }

  /**
   * `criticSteps` critic steps then one generator step. The critic's loss is
   * E[D(fake)] - E_w[D(data)] + lambda E_w[(|grad D(x^)| - 1)^2], E_w the weighted mean over the
   * parts (real current inputs and replayed ones), x^ random points between data and fakes.
   * Returns the critic's loss of the last critic step (minus the Wasserstein estimate, plus the
   * penalty) when `readLoss`.
   */
  train(parts: readonly WeightedInputs[], rng: Rng, readLoss: boolean): number | undefined {
    this.assertLive();
    const criticOptimizer = (this.criticOptimizer ??= tf.train.adam(this.learningRate, 0.5, 0.9));
    const generatorOptimizer = (this.generatorOptimizer ??= tf.train.adam(this.learningRate, 0.5, 0.9));
    const { x, sampleWeights } = concatWeighted(parts);
    const n = x.shape[0];
    const criticVariables = this.critic.variables();
    let loss: number | undefined;
    try {
      for (let step = 0; step < this.settings.criticSteps; step++) {
        const last = step === this.settings.criticSteps - 1;
        // Fakes are constants for the critic: generated outside its loss.
        const fake = this.generator.sample(n, rng);
        const mixSeed = rng.seed();
        try {
          const { reading } = gradientStep({
            optimizer: criticOptimizer,
            variables: criticVariables,
            read: readLoss && last,
            objective: () => {
              const critic = (input: tf.Tensor2D) => this.critic.forward(input, criticActivation);
              const onData = tf.sum(tf.mul(tf.reshape(critic(x), [-1]), sampleWeights));
              const onFake = tf.mean(critic(fake));
              const alpha = tf.randomUniform([n, 1], 0, 1, 'float32', mixSeed);
              const between = tf.add(tf.mul(alpha, x), tf.mul(tf.sub(1, alpha), fake)) as tf.Tensor2D;
              const inputGradient = tf.grad((input: tf.Tensor) => tf.sum(critic(input as tf.Tensor2D)))(between);
              const norm = tf.sqrt(tf.add(tf.sum(tf.square(inputGradient), 1), 1e-12));
              const penalty = tf.sum(tf.mul(tf.square(tf.sub(norm, 1)), sampleWeights));
              const criticLoss = tf.add(tf.sub(onFake, onData), tf.mul(this.settings.gradientPenalty, penalty)) as tf.Scalar;
              return { objective: criticLoss, loss: criticLoss };
            },
          });
          if (reading) loss = reading.loss;
        } finally {
          fake.dispose();
        }
      }
      const noiseSeed = rng.seed();
      gradientStep({
        optimizer: generatorOptimizer,
        variables: this.generator.network.variables(),
        objective: () => {
          const z = tf.randomNormal([n, this.shape.latent], 0, 1, 'float32', noiseSeed) as tf.Tensor2D;
          const generated = tf.sigmoid(this.generator.logits(z));
          const generatorLoss = tf.neg(tf.mean(this.critic.forward(generated, criticActivation))) as tf.Scalar;
          return { objective: generatorLoss, loss: generatorLoss };
        },
      });
    } finally {
      x.dispose();
      sampleWeights.dispose();
    }
    return loss;
  }

  sample(n: number, rng: Rng): tf.Tensor2D {
    this.assertLive();
    return this.generator.sample(n, rng);
  }

  freeze(): Sampler {
    this.assertLive();
    return this.generator.copy();
  }

  async exportState(prefix: string): Promise<GeneratorState> {
    this.assertLive();
    const tensors = {};
    this.generator.network.exportTo(prefix, tensors);
    this.critic.exportTo(prefix, tensors);
    const generatorSlots = await exportOptimizer(this.generatorOptimizer, `${prefix}.generator-optimizer`, tensors);
    const criticSlots = await exportOptimizer(this.criticOptimizer, `${prefix}.critic-optimizer`, tensors);
    return { meta: { kind: this.kind, shape: this.shape, settings: this.settings, generatorSlots, criticSlots }, tensors };
  }

  async importState(prefix: string, state: GeneratorState): Promise<void> {
    this.assertLive();
    const meta = state.meta as { kind?: string; shape?: GeneratorShape; generatorSlots?: number; criticSlots?: number };
    if (meta.kind !== this.kind) throw new StrategyError(`state holds a ${String(meta.kind)} generator, not a ${this.kind}`);
    if (JSON.stringify(meta.shape) !== JSON.stringify(this.shape)) throw new StrategyError(`state's WGAN-GP shape ${JSON.stringify(meta.shape)} does not match ${JSON.stringify(this.shape)}`);
    this.generator.network.importFrom(prefix, state.tensors);
    this.critic.importFrom(prefix, state.tensors);
    this.generatorOptimizer?.dispose();
    this.criticOptimizer?.dispose();
    this.generatorOptimizer = undefined;
    this.criticOptimizer = undefined;
    if ((meta.generatorSlots ?? 0) > 0) {
      this.generatorOptimizer = tf.train.adam(this.learningRate, 0.5, 0.9);
      await importOptimizer(this.generatorOptimizer, `${prefix}.generator-optimizer`, meta.generatorSlots ?? 0, state.tensors);
    }
    if ((meta.criticSlots ?? 0) > 0) {
      this.criticOptimizer = tf.train.adam(this.learningRate, 0.5, 0.9);
      await importOptimizer(this.criticOptimizer, `${prefix}.critic-optimizer`, meta.criticSlots ?? 0, state.tensors);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.generatorOptimizer?.dispose();
    this.criticOptimizer?.dispose();
    this.generator.dispose();
    this.critic.dispose();
  }

  private assertLive(): void {
    if (this.disposed) throw new StrategyError('the WGAN-GP has been disposed');
  }
}
