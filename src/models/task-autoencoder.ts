/**
 * The gating autoencoder of Expert Gate (Aljundi, Chakravarty & Tuytelaars, CVPR 2017): one small
 * undercomplete autoencoder per task, trained on that task's inputs only. How well it
 * reconstructs an input says how much the input looks like its task.
 *
 * As in the paper's code (Expert-Gate, `cnn_autoencoder_layer_relusig`): one hidden layer with
 * ReLU, a sigmoid output layer, inputs in [0, 1]. The paper squashes its AlexNet features into
 * [0, 1] with a sigmoid; MNIST pixels are in [0, 1] already, and squashing them again (into
 * [0.5, 0.73]) cost much of the task inference, so features are clipped to [0, 1] instead (as
 * DGR's generators assume, a feature outside saturates). The error is the binary cross-entropy of
 * the reconstruction summed over features, which told split-MNIST's tasks apart better than the
 * squared error, and a ReLU code better than a sigmoid one (docs/BENCHMARKS.md, "Answers without
 * a task"). The paper trains with Adagrad over epochs; here it takes Adam steps on each training
 * batch of the task's single pass, as many as the learner (training.stepsPerBatch).
 */
import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import { Rng } from '../core/rng';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import { gradientStep, reconstructionCrossEntropy } from './gradient-step';
import { assignSnapshot, denseLayer, snapshot, type DenseLayer } from './mlp';
import { exportOptimizer, importOptimizer } from './optimizer-state';

export interface AutoencoderShape {
  readonly inputSize: number;
  /** Units of the code layer; fewer than inputSize (undercomplete). */
  readonly hiddenUnits: number;
}

export interface AutoencoderState {
  readonly meta: { readonly optimizerSlots: number };
  readonly tensors: Record<string, TensorSnapshot>;
}

export class TaskAutoencoder {
  private readonly encoder: DenseLayer;
  private readonly decoder: DenseLayer;
  private optimizer: tf.Optimizer | undefined;
  private disposed = false;

  constructor(
    readonly shape: AutoencoderShape,
    private readonly learningRate: number,
    seed: number,
  ) {
    const rng = new Rng(seed);
    this.encoder = denseLayer('encoder', shape.inputSize, shape.hiddenUnits, rng);
    this.decoder = denseLayer('decoder', shape.hiddenUnits, shape.inputSize, rng);
  }

  /**
   * Reconstruction error of each input (batch): binary cross-entropy summed over features, the
   * error Expert Gate compares across tasks. Call inside tf.tidy.
   */
  errors(x: tf.Tensor2D): tf.Tensor1D {
    const target = tf.clipByValue(x, 0, 1);
    const code = tf.relu(tf.add(tf.matMul(target, this.encoder.kernel), this.encoder.bias));
    const logits = tf.add(tf.matMul(code, this.decoder.kernel), this.decoder.bias);
    return reconstructionCrossEntropy(logits as tf.Tensor2D, target);
  }

  /** One step on the mean error of a batch of the task's inputs; false when the step was refused (non-finite). */
  train(x: tf.Tensor2D): boolean {
    const optimizer = (this.optimizer ??= tf.train.adam(this.learningRate, 0.9, 0.999));
    const { applied } = gradientStep({
      optimizer,
      variables: this.variables(),
      objective: () => {
        const loss = tf.mean(this.errors(x)) as tf.Scalar;
        return { objective: loss, loss };
      },
    });
    return applied;
  }

  parameterCount(): number {
    return this.variables().reduce((n, v) => n + v.size, 0);
  }

  async exportState(prefix: string): Promise<AutoencoderState> {
    const tensors: Record<string, TensorSnapshot> = {};
    for (const [name, v] of this.named()) tensors[`${prefix}.${name}`] = snapshot(v);
    const optimizerSlots = await exportOptimizer(this.optimizer, `${prefix}.optimizer`, tensors);
    return { meta: { optimizerSlots }, tensors };
  }

  async importState(prefix: string, state: AutoencoderState): Promise<void> {
    for (const [name, v] of this.named()) {
      const t = state.tensors[`${prefix}.${name}`];
      if (!t) throw new StrategyError(`state lacks tensor ${prefix}.${name}`);
      assignSnapshot(v, t, `${prefix}.${name}`);
    }
    this.optimizer?.dispose();
    this.optimizer = undefined;
    if (state.meta.optimizerSlots > 0) {
      this.optimizer = tf.train.adam(this.learningRate, 0.9, 0.999);
      await importOptimizer(this.optimizer, `${prefix}.optimizer`, state.meta.optimizerSlots, state.tensors);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.optimizer?.dispose();
    for (const v of this.variables()) v.dispose();
  }

  /** In the order the optimizer keys its moments by. */
  private variables(): tf.Variable[] {
    return [this.encoder.kernel, this.encoder.bias, this.decoder.kernel, this.decoder.bias];
  }

  private named(): [string, tf.Variable][] {
    return [
      ['encoder.kernel', this.encoder.kernel],
      ['encoder.bias', this.encoder.bias],
      ['decoder.kernel', this.decoder.kernel],
      ['decoder.bias', this.decoder.bias],
    ];
  }
}
