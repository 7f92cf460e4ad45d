/**
 * The benchmark MLP shared by bench/train-step.ts and bench/peer-step.ts: 784-400-400-10, ReLU,
 * softmax cross-entropy, Adam (lr 1e-3) on tf.variables with plain tfjs ops, trained by the
 * strategies' step (gradientStep, createOptimizer's Adam); bench/peers/torch_step.py is the same
 * network in PyTorch.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/core/rng';
import { gradientStep } from '../src/models/gradient-step';
import { createOptimizer } from '../src/models/optimizer-state';

export const LAYER_SIZES = [784, 400, 400, 10] as const;

/** Glorot-uniform weights and zero biases, one [W, b] pair per layer. */
export function createMlp(rng: Rng): tf.Variable[] {
  // tidy frees the initial values; it never disposes variables.
  return tf.tidy(() => {
    const vars: tf.Variable[] = [];
    for (let i = 0; i + 1 < LAYER_SIZES.length; i++) {
      const fanIn = LAYER_SIZES[i] as number;
      const fanOut = LAYER_SIZES[i + 1] as number;
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      vars.push(tf.variable(tf.randomUniform([fanIn, fanOut], -limit, limit, 'float32', rng.seed()), true, `w${i}`));
      vars.push(tf.variable(tf.zeros([fanOut]), true, `b${i}`));
    }
    return vars;
  });
}

export function logits(vars: readonly tf.Variable[], x: tf.Tensor2D): tf.Tensor2D {
  let h: tf.Tensor2D = x;
  for (let i = 0; i < vars.length; i += 2) {
    h = tf.add(tf.matMul(h, vars[i] as tf.Variable<tf.Rank.R2>), vars[i + 1] as tf.Variable<tf.Rank.R1>);
    if (i + 2 < vars.length) h = tf.relu(h);
  }
  return h;
}

/** A synthetic batch: pixel-like inputs in [0, 1) and one-hot labels of 10 classes. */
export function syntheticBatch(batch: number, rng: Rng): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const features = LAYER_SIZES[0];
  const classes = LAYER_SIZES[LAYER_SIZES.length - 1] as number;
  const xs = new Float32Array(batch * features).map(() => rng.next());
  const ys = new Float32Array(batch * classes);
  for (let i = 0; i < batch; i++) ys[i * classes + rng.int(classes)] = 1;
  return { x: tf.tensor2d(xs, [batch, features]), y: tf.tensor2d(ys, [batch, classes]) };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * The strategies' step on the MLP: the loss read back (which waits for the step to finish, as
 * the engine does when it reports loss) with the finiteness check in the same download.
 */
export function mlpStep(optimizer: tf.Optimizer, vars: readonly tf.Variable[], x: tf.Tensor2D, y: tf.Tensor2D): void {
  gradientStep({
    optimizer,
    variables: vars,
    read: true,
    objective: () => {
      const loss = tf.losses.softmaxCrossEntropy(y, logits(vars, x)) as tf.Scalar;
      return { objective: loss, loss };
    },
  });
}

/** One network, one synthetic batch and an Adam optimizer; `step` trains once and reads the loss. */
export interface MlpTrainer {
  readonly vars: readonly tf.Variable[];
  step(): Promise<void>;
  /** Logits of one sample, read back (what answering a batch-1 prediction costs). */
  predictOne(): Promise<void>;
  dispose(): void;
}

export function mlpTrainer(batch: number, rng: Rng): MlpTrainer {
  const vars = createMlp(rng);
  const { x, y } = syntheticBatch(batch, rng);
  const one = tf.tidy(() => tf.slice(x, [0, 0], [1, LAYER_SIZES[0]]));
  const optimizer = createOptimizer({ optimizer: 'adam', learningRate: 1e-3 });
  return {
    vars,
    async step(): Promise<void> {
      mlpStep(optimizer, vars, x, y);
    },
    async predictOne(): Promise<void> {
      const out = tf.tidy(() => logits(vars, one as tf.Tensor2D));
      await out.data();
      out.dispose();
    },
    dispose(): void {
      optimizer.dispose();
      tf.dispose([x, y, one, ...vars]);
    },
  };
}
